//! When a booted desktop may join the buffer: the rule the engine applies to each answer of a
//! readiness probe, and the simulator to its modelled boots, so both give up on a guest at the
//! same moment and for the same reason.
//!
//! A class says how its desktops show they are ready ([`ReadyWhen`]): their guest agent answers
//! (`guest-ping`, then the class's `ready_command` run through the agent exits 0), or their
//! domain merely runs (guests without an agent). A desktop not ready within
//! [`Readiness::timeout_secs`] of its boot is given up: destroyed, and its class's next creation
//! waits out a backoff.

use std::time::Duration;

/// What a booted desktop must show before it joins the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyWhen {
    /// Its guest agent answers `guest-ping` (and the class's ready command exits 0).
    Agent,
    /// Its domain runs (a guest with no agent; nothing proves a user could log in).
    Running,
}

impl ReadyWhen {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyWhen::Agent => "agent",
            ReadyWhen::Running => "running",
        }
    }
    pub fn parse(s: &str) -> Option<ReadyWhen> {
        match s {
            "agent" => Some(ReadyWhen::Agent),
            "running" => Some(ReadyWhen::Running),
            _ => None,
        }
    }
}

/// A class's readiness rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub when: ReadyWhen,
    /// Run through the agent (`guest-exec`: program, then its arguments) once it answers; the
    /// desktop is ready when it exits 0. Only with [`ReadyWhen::Agent`].
    pub command: Option<Vec<String>>,
    /// A desktop not ready this long after its boot is given up.
    pub timeout_secs: u64,
}

/// Ready means the guest can take the user: without an answer from the guest nothing shows it
/// booted at all, so a class must say `ready = "running"` to go without one.
pub const DEFAULT_READY_WHEN: ReadyWhen = ReadyWhen::Agent;
/// Five minutes: a stock Linux guest answers after about 30 s under TCG, a Windows desktop in
/// one to two minutes; several booting at once on a busy host take longer each.
pub const DEFAULT_READY_TIMEOUT_SECS: u64 = 300;
/// The accepted range of `ready_timeout_secs`.
pub const READY_TIMEOUT_RANGE: (u64, u64) = (1, 86_400);
/// Most words of a ready command.
pub const MAX_READY_COMMAND_WORDS: usize = 64;
/// Time between two probes of one desktop that did not answer yet.
pub const PROBE_GAP: Duration = Duration::from_secs(2);

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            when: DEFAULT_READY_WHEN,
            command: None,
            timeout_secs: DEFAULT_READY_TIMEOUT_SECS,
        }
    }
}

impl Readiness {
    /// Whether a probe of the guest decides readiness (otherwise running is enough).
    pub fn needs_probe(&self) -> bool {
        self.when == ReadyWhen::Agent
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// What to do about a desktop booted `since_boot` ago whose latest probe did not show it
    /// ready: probe again after [`PROBE_GAP`], or give up once the timeout has passed.
    pub fn after_no_answer(&self, since_boot: Duration) -> NotReadyYet {
        if since_boot >= self.timeout() {
            NotReadyYet::GiveUp
        } else {
            NotReadyYet::ProbeAgainIn(PROBE_GAP.min(self.timeout() - since_boot))
        }
    }

    /// The rule in a few words, as the console's class detail and `deskpool check` show it:
    /// `when the guest agent answers · given up 300 s after boot`.
    pub fn describe(&self) -> String {
        let when = match (self.when, &self.command) {
            (ReadyWhen::Running, _) => "when the domain runs".to_string(),
            (ReadyWhen::Agent, None) => "when the guest agent answers".to_string(),
            (ReadyWhen::Agent, Some(command)) => format!(
                "when the guest agent answers and `{}` exits 0",
                command.join(" ")
            ),
        };
        match self.when {
            ReadyWhen::Running => when,
            ReadyWhen::Agent => format!("{when} · given up {} s after boot", self.timeout_secs),
        }
    }

    /// The sentence a desktop given up is reported with: `why` is what its last probe saw.
    pub fn given_up_message(&self, why: &str) -> String {
        let waited_for = match (self.when, &self.command) {
            (ReadyWhen::Running, _) => "its domain to run",
            (ReadyWhen::Agent, None) => "its guest agent",
            (ReadyWhen::Agent, Some(_)) => "its guest agent and ready command",
        };
        format!(
            "not ready within {} s (ready_timeout_secs), waiting for {waited_for}: {why}",
            self.timeout_secs
        )
    }
}

impl Readiness {
    /// What becomes of a desktop whose guest answers `answers_after` its boot (the simulator's
    /// model of one), by the same rule the engine applies to each probe: ready then, or given
    /// up when that is past the timeout. A class ready when running is ready at its boot time.
    pub fn boot_outcome(&self, answers_after: Duration) -> BootOutcome {
        if !self.needs_probe() || answers_after < self.timeout() {
            return BootOutcome::ReadyAfter(answers_after);
        }
        // The last probe before the answer would come: the one that gives up.
        let mut since_boot = Duration::ZERO;
        loop {
            match self.after_no_answer(since_boot) {
                NotReadyYet::ProbeAgainIn(gap) => since_boot += gap,
                NotReadyYet::GiveUp => return BootOutcome::GivenUpAfter(since_boot),
            }
        }
    }
}

/// A modelled boot's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootOutcome {
    ReadyAfter(Duration),
    GivenUpAfter(Duration),
}

/// The verdict on a desktop whose probe found it not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReadyYet {
    ProbeAgainIn(Duration),
    GiveUp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_guest_is_probed_again_until_its_timeout_then_given_up() {
        let r = Readiness {
            timeout_secs: 5,
            ..Readiness::default()
        };
        assert_eq!(
            r.after_no_answer(Duration::ZERO),
            NotReadyYet::ProbeAgainIn(PROBE_GAP)
        );
        // The last probe falls on the deadline, not past it.
        assert_eq!(
            r.after_no_answer(Duration::from_millis(4_500)),
            NotReadyYet::ProbeAgainIn(Duration::from_millis(500))
        );
        assert_eq!(
            r.after_no_answer(Duration::from_secs(5)),
            NotReadyYet::GiveUp
        );
        assert_eq!(
            r.after_no_answer(Duration::from_secs(60)),
            NotReadyYet::GiveUp
        );
    }

    #[test]
    fn a_modelled_boot_slower_than_the_timeout_is_given_up_at_the_timeout() {
        let r = Readiness {
            timeout_secs: 7,
            ..Readiness::default()
        };
        let secs = Duration::from_secs;
        assert_eq!(r.boot_outcome(secs(6)), BootOutcome::ReadyAfter(secs(6)));
        assert_eq!(r.boot_outcome(secs(7)), BootOutcome::GivenUpAfter(secs(7)));
        assert_eq!(r.boot_outcome(secs(90)), BootOutcome::GivenUpAfter(secs(7)));
        let running = Readiness {
            when: ReadyWhen::Running,
            ..r
        };
        assert_eq!(
            running.boot_outcome(secs(90)),
            BootOutcome::ReadyAfter(secs(90))
        );
    }

    #[test]
    fn the_default_waits_for_the_guest_agent() {
        let r = Readiness::default();
        assert!(r.needs_probe());
        assert_eq!(r.timeout_secs, 300);
        let running = Readiness {
            when: ReadyWhen::Running,
            ..r.clone()
        };
        assert!(!running.needs_probe());
        assert_eq!(
            r.describe(),
            "when the guest agent answers · given up 300 s after boot"
        );
        assert_eq!(running.describe(), "when the domain runs");
        let command = Readiness {
            command: Some(vec!["systemctl".into(), "is-system-running".into()]),
            ..r.clone()
        };
        assert_eq!(
            command.describe(),
            "when the guest agent answers and `systemctl is-system-running` exits 0 · \
             given up 300 s after boot"
        );
        assert_eq!(
            r.given_up_message("QEMU guest agent is not connected"),
            "not ready within 300 s (ready_timeout_secs), waiting for its guest agent: \
             QEMU guest agent is not connected"
        );
    }

    #[test]
    fn ready_when_reads_back_what_it_writes() {
        for w in [ReadyWhen::Agent, ReadyWhen::Running] {
            assert_eq!(ReadyWhen::parse(w.as_str()), Some(w));
        }
        assert_eq!(ReadyWhen::parse("Agent"), None);
    }
}
