//! The election's verdict (`[ha]`): only a controller that leads (or is alone) changes the
//! hosts. A follower keeps reading them and refuses every command with where the leader is;
//! a leader that finds desktops written under a newer term learns that it was replaced (it was
//! paused or cut off past its lease) and stops.

use super::*;
use deskpool_core::leadership::{Leadership, Role};

impl EngineState {
    /// Whether this controller may change the hosts now (as far as the state knows; the driver
    /// checks the lease again before every job).
    pub(super) fn acting(&self) -> bool {
        matches!(self.leadership.role, Role::Alone | Role::Leader) && self.stale_term.is_none()
    }

    /// The refusal of a command sent to a controller that does not act.
    pub(super) fn not_leading(&self) -> CommandError {
        let message = match self.stale_term {
            Some(term) => format!(
                "controller {} found desktops written under a newer leader's term {term}: it acts on nothing until the election says it leads again",
                self.leadership.controller
            ),
            None => self.leadership.not_leading(),
        };
        CommandError::new(deskpool_api::ErrorKind::NotLeader, message)
    }

    pub(super) fn leadership_changed(&mut self, new: Leadership) {
        let was_acting = self.acting();
        let old = std::mem::replace(&mut self.leadership, new);
        let new = &self.leadership;
        if new.role == Role::Leader && self.stale_term.is_some_and(|t| new.term >= t) {
            self.stale_term = None;
        }
        let changed = old.role != new.role || old.term != new.term || old.leader != new.leader;
        if !changed {
            return;
        }
        let message = match new.role {
            Role::Leader => format!("this controller leads (term {})", new.term),
            Role::Follower => match &new.leader {
                Some(leader) => format!("this controller follows {leader} (term {})", new.term),
                None => "this controller follows; no leader is known yet".to_string(),
            },
            Role::Lost => format!(
                "this controller acts on nothing: {}",
                new.why
                    .as_deref()
                    .unwrap_or("the election cannot be reached")
            ),
            Role::Alone => return,
        };
        self.emit(EventKind::Leadership, None, None, None, message);
        if was_acting && !self.acting() {
            self.turn_away_waiting_logins();
        }
        self.publish_now = true;
    }

    /// Logins waiting here when this controller stops acting would wait for desktops it no
    /// longer builds: they are told where the leader is at once, so the broker asks it.
    fn turn_away_waiting_logins(&mut self) {
        let refusal = self.not_leading();
        for (_, queue) in self.ledger.take_all_waiting() {
            for login in queue {
                self.answer_login(login, Err(refusal.clone()));
            }
        }
    }

    /// A leader that finds a desktop written under a newer term than its own stops acting:
    /// another controller was elected while this one could not renew its lease.
    pub(super) fn check_terms(&mut self) {
        if self.leadership.role != Role::Leader || self.stale_term.is_some() {
            return;
        }
        let ours = self.leadership.term;
        let newest = self
            .desktops
            .values()
            .map(|d| (d.value.meta.term, d.value.name.as_str()))
            .max();
        if let Some((term, name)) = newest
            && term > ours
        {
            let message = format!(
                "desktop {name} was written under term {term}, newer than this controller's {ours}: another controller leads; this one acts on nothing"
            );
            let name = name.to_string();
            self.emit(EventKind::Leadership, None, None, Some(&name), message);
            self.stale_term = Some(term);
            self.turn_away_waiting_logins();
            self.publish_now = true;
        }
    }
}
