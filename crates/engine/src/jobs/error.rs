//! Why a job failed, typed: the hypervisor's error kind survives up to the state machine, which
//! renders the text only for events and reasons.

use std::process::ExitStatus;
use std::time::Duration;

use deskpool_hypervisor::{HvError, HvErrorKind};

/// What kind of failure a [`JobError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobErrorKind {
    /// A hypervisor call failed, of this kind.
    Hypervisor(HvErrorKind),
    /// The blocking thread running the step panicked or was cancelled.
    WorkerLost,
    /// The desktop's checks found it unusable (not running, its disk gone).
    Unusable,
    /// The step did not finish within its time limit (`create_timeout_secs`,
    /// `remove_timeout_secs`); libvirt may still be working on it.
    Stuck,
}

/// A failed job step: its kind, and the text the event log shows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub kind: JobErrorKind,
    pub message: String,
}

impl JobError {
    pub fn worker_lost(what: &str, detail: impl std::fmt::Display) -> Self {
        JobError {
            kind: JobErrorKind::WorkerLost,
            message: format!("{what}: worker thread failed: {detail}"),
        }
    }

    pub fn stuck(what: &str, limit: Duration) -> Self {
        JobError {
            kind: JobErrorKind::Stuck,
            message: format!(
                "{what} did not finish within {} s; given up as stuck (libvirt may still finish it)",
                limit.as_secs()
            ),
        }
    }

    pub fn unusable(why: impl Into<String>) -> Self {
        JobError {
            kind: JobErrorKind::Unusable,
            message: why.into(),
        }
    }

    /// The same failure, its text prefixed with what was being done.
    pub fn context(self, doing: &str) -> Self {
        JobError {
            message: format!("{doing}: {}", self.message),
            ..self
        }
    }

    /// Whether the failure may say something about the host (it is down, the object is gone):
    /// not when the step was refused before it reached libvirt.
    pub fn may_come_from_the_host(&self) -> bool {
        !matches!(
            self.kind,
            JobErrorKind::Hypervisor(HvErrorKind::InvalidInput | HvErrorKind::Unsupported)
        )
    }

    /// The object the step worked on does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        self.kind == JobErrorKind::Hypervisor(HvErrorKind::NotFound)
    }
}

impl From<HvError> for JobError {
    fn from(e: HvError) -> Self {
        JobError {
            kind: JobErrorKind::Hypervisor(e.kind),
            message: e.to_string(),
        }
    }
}

/// Why a host's activation or deactivation command failed.
#[derive(Debug, thiserror::Error)]
pub enum HostCommandError {
    #[error("cannot run {command:?}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{command:?} did not finish within {}s", .limit.as_secs())]
    Timeout { command: String, limit: Duration },
    #[error("{command:?}: {source}")]
    Wait {
        command: String,
        source: std::io::Error,
    },
    #[error("{command:?} failed ({status}){}", stderr_suffix(.stderr))]
    Failed {
        command: String,
        status: ExitStatus,
        /// What the command wrote on its standard error, trimmed.
        stderr: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}
