//! What is wrong, in a word or two: each class's status (the dashboard's status column) and the
//! fleet's problems (the status bar). Built from the planner's structured reasons and the login
//! counters; the reasons' sentences stay with their one renderer in the core.

use deskpool_api::{ClassStatus, HostStatusView, ReasonView, Snapshot};

use crate::theme::Slot;

/// How bad a signal is, worst last (the order colours a status by its worst signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Note,
    Warning,
    Problem,
}

impl Severity {
    pub fn slot(self) -> Slot {
        match self {
            Severity::Note => Slot::Accent,
            Severity::Warning => Slot::Warning,
            Severity::Problem => Slot::Error,
        }
    }
}

/// One signal of a class: "paused", "refused 3".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub text: String,
    pub severity: Severity,
}

fn signal(text: impl Into<String>, severity: Severity) -> Signal {
    Signal {
        text: text.into(),
        severity,
    }
}

/// The signals of a class, worst first; empty when all is well.
pub fn class_signals(class: &ClassStatus, on_down_host: bool) -> Vec<Signal> {
    let mut out = Vec::new();
    for reason in &class.plan.reasons {
        let s = match reason {
            ReasonView::EnginePaused => signal("paused", Severity::Warning),
            ReasonView::SeedMissing { .. } => signal("seed missing", Severity::Problem),
            ReasonView::CreationFailing { .. } => signal("failing", Severity::Problem),
            ReasonView::PacingLimit { .. } => signal("paced", Severity::Note),
            ReasonView::SeedCopyInProgress { .. } | ReasonView::SeedCopyOrdered { .. } => {
                signal("seeding", Severity::Note)
            }
            ReasonView::AtCapacity { .. } => signal("hosts full", Severity::Problem),
            ReasonView::NoActiveHost { .. } => signal("no host", Severity::Problem),
            ReasonView::CapReached { .. } => signal("at cap", Severity::Warning),
            ReasonView::FloorRaised { floor, .. } => {
                signal(format!("floor {floor}"), Severity::Note)
            }
            ReasonView::InCreation { .. }
            | ReasonView::SurplusWaiting { .. }
            | ReasonView::StaleReplaced { .. } => continue,
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if on_down_host {
        out.push(signal("host down", Severity::Problem));
    }
    if class.logins.waiting > 0 {
        out.push(signal(
            format!("waiting {}", class.logins.waiting),
            Severity::Warning,
        ));
    }
    if class.logins.last_hour.refused > 0 {
        out.push(signal(
            format!("refused {}", class.logins.last_hour.refused),
            Severity::Problem,
        ));
    }
    if class.on_old_seed > 0 {
        out.push(signal(
            format!("{} old seed", class.on_old_seed),
            Severity::Note,
        ));
    }
    // A buffer below its target with nothing else to say is not "ok": it is refilling (its
    // desktops are being made), or short with nothing under way.
    let p = &class.plan;
    if out.is_empty() && p.buffer < p.buffer_target {
        out.push(if p.creation > 0 {
            signal("refilling", Severity::Note)
        } else {
            signal("below target", Severity::Warning)
        });
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.severity));
    out
}

/// The fleet's problems, for the status bar: hosts down, classes refusing or failing.
pub fn problems(snapshot: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if snapshot.paused && !snapshot.read_only {
        out.push("engine paused".to_string());
    }
    for h in &snapshot.hosts {
        if matches!(h.status, HostStatusView::Down { .. }) {
            out.push(format!("{} down", h.name));
        }
    }
    for c in &snapshot.classes {
        for s in class_signals(c, false) {
            if s.severity == Severity::Problem {
                out.push(format!("{} {}", c.plan.name, s.text));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    fn office() -> ClassStatus {
        let fleet = sample::fleet(1, 1);
        let at: jiff::Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
        sample::snapshot(&fleet, 4, at).classes[0].clone()
    }

    #[test]
    fn a_class_in_trouble_says_what_worst_first() {
        let mut c = office();
        c.plan.reasons = vec![
            ReasonView::EnginePaused,
            ReasonView::PacingLimit {
                hosts: vec!["h1".into()],
            },
            ReasonView::SeedMissing {
                pool: "seeds".into(),
                volume: "office.qcow2".into(),
                host: None,
            },
        ];
        c.logins.waiting = 2;
        c.logins.last_hour.refused = 3;
        let words: Vec<String> = class_signals(&c, true)
            .into_iter()
            .map(|s| s.text)
            .collect();
        assert_eq!(
            words,
            [
                "seed missing",
                "host down",
                "refused 3",
                "paused",
                "waiting 2",
                "paced"
            ]
        );
    }

    #[test]
    fn a_buffer_below_target_says_whether_it_is_refilling() {
        let mut c = office();
        c.plan.reasons.clear();
        c.plan.buffer_target = c.plan.buffer + 2;
        c.plan.creation = 2;
        let words = |c: &ClassStatus| -> Vec<String> {
            class_signals(c, false)
                .into_iter()
                .map(|s| s.text)
                .collect()
        };
        assert_eq!(words(&c), ["refilling"]);
        c.plan.creation = 0;
        assert_eq!(words(&c), ["below target"]);
        // Another signal says why already.
        c.plan.reasons = vec![ReasonView::EnginePaused];
        assert_eq!(words(&c), ["paused"]);
    }

    #[test]
    fn a_healthy_class_has_no_signal() {
        let mut c = office();
        c.plan.reasons = vec![ReasonView::InCreation { count: 1 }];
        assert!(class_signals(&c, false).is_empty());
    }
}
