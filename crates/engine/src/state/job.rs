//! The jobs the state asks for: each step on a host with its data. The driver runs them (with
//! the host connections it holds) and brings back their outcomes.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use deskpool_api::EventKind;
use deskpool_core::model::{ObservedDesktop, PoolState, SeedCopy};
use deskpool_core::policy::{ClassSpec, DomainTypeSetting};
use deskpool_core::readiness::Readiness;

/// Bytes done and bytes in all of a seed copy, written by the copying thread and read by the
/// state for its snapshots.
#[derive(Debug, Clone, Default)]
pub struct CopyProgress {
    pub done: Arc<AtomicU64>,
    pub total: Arc<AtomicU64>,
}

/// How many clones and boots of one class may run at once on one host. A new `generation`
/// (the class's policy changed) starts counting afresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacing {
    pub class: String,
    pub generation: u64,
    pub clones: usize,
    pub boots: usize,
}

#[derive(Debug)]
pub enum Job {
    /// Open a host (or read it again through a connection a previous engine left) and read it.
    Connect {
        host: String,
        uri: String,
        /// The domain type its desktops get (`[[hosts]] domain_type`).
        domain_type: DomainTypeSetting,
        read_only: bool,
        /// The creation pool's name and path.
        creation_pool: (String, String),
        classes: Arc<Vec<ClassSpec>>,
        /// A standby host probed (no activation command run).
        probe: bool,
    },
    Observe {
        host: String,
        creation_pool: String,
        classes: Arc<Vec<ClassSpec>>,
        /// The state's sequence number when the read began.
        started_seq: u64,
    },
    Create {
        host: String,
        class: Box<ClassSpec>,
        name: String,
        seed: SeedCopy,
        creation_pool: String,
        now: i64,
        /// The leader's term, written in the desktop's metadata (0 without `[ha]`).
        term: u64,
        pacing: Pacing,
        /// Past this, the disk and definition step, or the boot, is given up as stuck
        /// (`[engine] create_timeout_secs`).
        limit: Duration,
    },
    Boot {
        desktop: ObservedDesktop,
        pacing: Pacing,
        now: i64,
        /// The class waits for its guest to answer: the desktop stays in creation once it
        /// runs (a [`Job::Probe`] moves it on), instead of joining the buffer.
        wait_for_guest: bool,
        limit: Duration,
    },
    /// Ask a running desktop in creation whether its guest is ready (its agent answers, and
    /// the class's ready command exits 0); if so, move it to the buffer.
    Probe {
        desktop: ObservedDesktop,
        ready: Readiness,
        /// How long the ready command may run in this probe.
        command_limit: Duration,
        now: i64,
    },
    Relabel {
        desktop: ObservedDesktop,
        pool: PoolState,
        user: Option<String>,
        now: i64,
        event: Option<(EventKind, String)>,
    },
    Assign {
        desktop: ObservedDesktop,
        user: String,
        now: i64,
        /// Ask the guest agent for the guest's address (its class waits for the agent).
        read_address: bool,
    },
    Reclaim {
        desktop: ObservedDesktop,
        restart: bool,
        now: i64,
        read_address: bool,
    },
    Restart {
        desktop: ObservedDesktop,
    },
    Destroy(crate::jobs::Removal),
    DeleteVolume {
        host: String,
        pool: String,
        volume: String,
        limit: Duration,
    },
    CopySeed {
        host: String,
        source_host: String,
        source_pool: String,
        source_volume: String,
        creation_pool: String,
        class: String,
        version: String,
        progress: CopyProgress,
    },
    DeleteSeedCopy {
        host: String,
        pool: String,
        class: String,
        version: String,
        limit: Duration,
    },
    /// Run the host's activation command (if any), then report it activated.
    Activate {
        host: String,
        command: Option<String>,
    },
    /// Run the host's deactivation command (if any), then report it on standby.
    Deactivate {
        host: String,
        command: Option<String>,
    },
}

impl Job {
    /// Whether the job changes what a host holds (only a controller that leads runs those);
    /// reading a host and asking a guest agent do not.
    pub fn changes_hosts(&self) -> bool {
        !matches!(
            self,
            Job::Connect { .. } | Job::Observe { .. } | Job::Probe { .. }
        )
    }

    /// The hosts whose connections the job needs.
    pub fn hosts(&self) -> Vec<&str> {
        match self {
            Job::Connect { .. } | Job::Activate { .. } | Job::Deactivate { .. } => Vec::new(),
            Job::Observe { host, .. }
            | Job::Create { host, .. }
            | Job::Destroy(crate::jobs::Removal { host, .. })
            | Job::DeleteVolume { host, .. }
            | Job::DeleteSeedCopy { host, .. } => vec![host],
            Job::Boot { desktop, .. }
            | Job::Probe { desktop, .. }
            | Job::Relabel { desktop, .. }
            | Job::Assign { desktop, .. }
            | Job::Reclaim { desktop, .. }
            | Job::Restart { desktop } => vec![&desktop.host],
            Job::CopySeed {
                host, source_host, ..
            } => vec![host, source_host],
        }
    }
}
