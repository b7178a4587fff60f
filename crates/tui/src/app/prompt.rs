//! The answer of a one-line prompt (a user to assign a desktop to, a floor and its duration),
//! read into the effect it asks for.

use jiff::{SignedDuration, Timestamp};

use super::{Effect, PromptPurpose};
use deskpool_api::Command;
use deskpool_core::policy::names::{NameError, check_name};
use deskpool_core::policy::rules::raised_floor_problem;

/// Longest a raised floor lasts: a week, in minutes.
const MAX_FLOOR_MINUTES: i64 = 7 * 24 * 60;

/// Why the answer of a prompt cannot be used; the status line shows the message and the prompt
/// stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("user: {0}")]
    BadUser(NameError),
    #[error("type the floor and the minutes, e.g. 10 30")]
    NotFloorAndMinutes,
    #[error("floor {floor:?} is not a whole number")]
    FloorNotANumber { floor: String },
    #[error("minutes {minutes:?} must be a whole number from 1 to {MAX_FLOOR_MINUTES}")]
    MinutesOutOfRange { minutes: String },
    /// Above the class cap (the engine's own check, [`raised_floor_problem`]).
    #[error("{0}")]
    FloorAboveCap(String),
}

/// The effect of an answered prompt, or why the answer is not usable.
pub(super) fn prompt_effect(
    purpose: &PromptPurpose,
    answer: &str,
    now: Timestamp,
) -> Result<Effect, PromptError> {
    match purpose {
        PromptPurpose::AssignUser { class } => {
            let user = answer.trim();
            check_name(user).map_err(PromptError::BadUser)?;
            Ok(Effect::Engine {
                command: Command::Assign {
                    class: class.clone(),
                    user: user.to_string(),
                    // By hand, an admin gets a ready desktop or is told there is none.
                    wait_secs: 0,
                },
                what: format!(
                    "assign {} {class} desktop to {user}",
                    crate::strings::article(class)
                ),
            })
        }
        PromptPurpose::RaiseFloor { class, cap } => {
            let mut parts = answer.split_whitespace();
            let (Some(floor), Some(minutes), None) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(PromptError::NotFloorAndMinutes);
            };
            let floor: u32 = floor.parse().map_err(|_| PromptError::FloorNotANumber {
                floor: floor.to_string(),
            })?;
            let minutes: i64 = minutes
                .parse()
                .ok()
                .filter(|m| (1..=MAX_FLOOR_MINUTES).contains(m))
                .ok_or_else(|| PromptError::MinutesOutOfRange {
                    minutes: minutes.to_string(),
                })?;
            if let Some(why) = raised_floor_problem(floor, class, *cap) {
                return Err(PromptError::FloorAboveCap(why));
            }
            Ok(Effect::Engine {
                command: Command::RaiseFloor {
                    class: class.clone(),
                    floor,
                    until: now + SignedDuration::from_mins(minutes),
                },
                what: format!("raise {class}'s buffer floor to {floor} for {minutes} min"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raise(answer: &str) -> Result<Effect, PromptError> {
        let purpose = PromptPurpose::RaiseFloor {
            class: "office".into(),
            cap: 60,
        };
        prompt_effect(&purpose, answer, Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn unusable_answers_are_refused_by_kind_with_the_sentence_shown() {
        assert_eq!(raise("10"), Err(PromptError::NotFloorAndMinutes));
        assert_eq!(
            raise("ten 30").unwrap_err().to_string(),
            "floor \"ten\" is not a whole number"
        );
        assert_eq!(
            raise("10 0").unwrap_err().to_string(),
            "minutes \"0\" must be a whole number from 1 to 10080"
        );
        assert!(matches!(
            raise("200 30"),
            Err(PromptError::FloorAboveCap(_))
        ));
        assert_eq!(
            raise("200 30").unwrap_err().to_string(),
            "floor 200 is above the cap of class office (60): raise it to at most 60"
        );
        assert!(raise("60 30").is_ok(), "the cap itself is allowed");
        assert!(raise("10 30").is_ok());
        let assign = PromptPurpose::AssignUser {
            class: "office".into(),
        };
        let bad = prompt_effect(&assign, " a b ", Timestamp::UNIX_EPOCH).unwrap_err();
        assert!(matches!(bad, PromptError::BadUser(_)), "{bad:?}");
        assert!(
            bad.to_string()
                .starts_with("user: name \"a b\" contains ' '"),
            "{bad}"
        );
    }
}
