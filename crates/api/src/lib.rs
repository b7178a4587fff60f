//! What the engine shows and what it takes: snapshots, events and commands.
//!
//! These are the protocol's own types: what they carry from the core (a class's plan, a
//! desktop, a host's status, login counts, a policy) is converted into types of this crate
//! ([`views`], [`policy`]), so a change inside the core is not a change of the wire.
//! `tests/wire_golden.rs` pins the JSON of each.

pub mod handle;
pub mod policy;
pub mod views;

pub use handle::{Commander, EngineHandle};
pub use policy::{
    BufferRuleWire, EventWire, LogoutActionWire, PacingWire, PeriodWire, PolicyWire,
    PredictiveWire, ShutoffActionWire,
};
pub use views::{
    ClassPlanView, DesktopMetaView, DesktopView, HostStatusView, LoginStatsView, LoginWindowView,
    PoolStateView, RaisedFloorView, ReasonView,
};

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use deskpool_core::policy::{Capacity, Policy};

/// The engine's view of the fleet after a pass, published on a watch channel.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub at: Option<Timestamp>,
    pub paused: bool,
    pub read_only: bool,
    /// Reconcile passes run so far.
    pub passes: u64,
    pub classes: Vec<ClassStatus>,
    pub hosts: Vec<HostState>,
    /// Every desktop the engine knows of, on every host.
    pub desktops: Arc<Vec<DesktopView>>,
    /// Seed copies under way, with their progress.
    pub seed_copies: Vec<SeedProgress>,
    /// Jobs running on the hosts now.
    pub jobs_in_flight: usize,
    /// Every class at its targets, nothing in flight, no standby host being activated. A host
    /// that is down does not keep the fleet from being steady: the others carry its load.
    pub steady: bool,
    /// Events that could not be delivered because nobody read them in time.
    pub events_dropped: u64,
    /// This controller's place in the election (`role: alone` without `[ha]`).
    #[serde(default)]
    pub leadership: deskpool_core::leadership::Leadership,
    /// How long making desktops took, per host and class (recent samples).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timings: Vec<deskpool_core::timings::TimingView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassStatus {
    #[serde(flatten)]
    pub plan: ClassPlanView,
    pub seed_version: String,
    /// Desktops (any pool) on an older seed version.
    pub on_old_seed: u32,
    pub cap: u32,
    pub logins: LoginStatsView,
    /// Logins per 5 minutes over the last hour, oldest first (from the demand history).
    pub demand: Vec<u32>,
}

// The bounds of the login wait histogram (`LoginStatsView::wait_le`), as the ledger counts them.
pub use deskpool_core::ledger::LOGIN_WAIT_BUCKETS;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostState {
    pub name: String,
    pub uri: String,
    pub status: HostStatusView,
    pub standby: bool,
    pub desktops: u32,
    pub capacity: CapacityView,
    /// Seconds until the next connection attempt, for a down host.
    pub retry_in_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CapacityView {
    pub desktops: Option<u32>,
    pub memory_mib: Option<u64>,
    pub vcpus: Option<u32>,
}

impl From<Capacity> for CapacityView {
    fn from(c: Capacity) -> Self {
        CapacityView {
            desktops: c.desktops,
            memory_mib: c.memory_mib,
            vcpus: c.vcpus,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedProgress {
    pub host: String,
    pub class: String,
    pub version: String,
    pub done_bytes: u64,
    pub total_bytes: u64,
}

/// Something that happened, for the event log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub kind: EventKind,
    pub class: Option<String>,
    pub host: Option<String>,
    pub desktop: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    Provisioned,
    Assigned,
    Released,
    Destroyed,
    Failed,
    SeedCopied,
    HostActivated,
    HostDraining,
    HostStandby,
    HostDown,
    HostUp,
    PolicyChanged,
    AdminAction,
    /// A login got no desktop (none ready and it would not wait, or its wait ran out).
    LoginRefused,
    /// A class's seed volume is not found where it must be read from (raised once when it goes
    /// missing, not on every pass).
    SeedMissing,
    /// The configuration file was read again and applied (`serve` on SIGHUP).
    ConfigReloaded,
    /// The configuration file was read again and refused: the running one is kept.
    ConfigRefused,
    /// A user disconnected: their desktop is kept for them through the class's grace.
    Disconnected,
    /// This controller took the lead, lost it, or found that another one leads (`[ha]`).
    Leadership,
}

/// An order to the engine. Each comes with who asked, for the events and the audit log.
///
/// On the wire (the broker's `POST /v1/command`) a command is an object tagged by `type`:
/// `{"type": "pause"}`, `{"type": "refill", "class": "office"}`, ...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    Pause,
    Resume,
    /// Retry a class's creations now, forgetting its backoff.
    Refill {
        class: String,
    },
    /// Hold at least `floor` buffered desktops until `until`.
    RaiseFloor {
        class: String,
        floor: u32,
        until: Timestamp,
    },
    DrainHost {
        host: String,
    },
    UndrainHost {
        host: String,
    },
    /// The policy is the core's, what the engine applies; on the wire it is a [`PolicyWire`].
    SetPolicy {
        class: String,
        #[serde(with = "policy::as_wire")]
        policy: Box<Policy>,
    },
    /// Hand a buffered desktop of `class` to `user` (the same one again if the user holds one).
    /// With the buffer empty, wait up to `wait_secs` for the next desktop to become ready.
    Assign {
        class: String,
        user: String,
        #[serde(default)]
        wait_secs: u64,
    },
    /// The user logged out: the desktop leaves production and is recycled.
    Release {
        desktop: String,
    },
    /// The user's session ended without a logout: the desktop stays theirs for the class's
    /// `disconnect_grace_secs` (their next assign gets it back), then is recycled as at a
    /// logout. A class without a grace takes it as a release.
    Disconnect {
        desktop: String,
    },
    /// Destroy a desktop (any pool) and let the planner replace it.
    Recycle {
        desktop: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Done,
    Assigned {
        desktop: String,
        host: String,
        /// Where the desktop's display listens (`spice://…`, `vnc://…`), when it has one.
        display: Option<String>,
        /// The guest's network address as its guest agent reports it (`null` for a class
        /// with `ready = "running"`, or a guest without one).
        #[serde(default)]
        address: Option<String>,
        /// The desktop's own display password (VNC) or ticket (SPICE), for this user only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_password: Option<String>,
        /// How long the login waited for a desktop (0 when one was ready).
        waited_ms: u64,
    },
}

/// Why the engine refused a command: a sentence for people, a kind for programs (the broker
/// turns it into an HTTP status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No such class, host or desktop.
    NotFound,
    /// The request is well formed but not allowed (a bad name, an expiry in the past).
    Invalid,
    /// Not now: the object is busy or in the wrong state.
    Conflict,
    /// No desktop could be had (empty buffer, wait ran out), or the engine is not running.
    Unavailable,
    /// The engine (or the console) is read-only.
    ReadOnly,
    /// This controller does not lead (`[ha]`): the message names the leader; retry there or
    /// shortly.
    NotLeader,
}

impl CommandError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CommandError {
        CommandError {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> CommandError {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn invalid(message: impl Into<String>) -> CommandError {
        Self::new(ErrorKind::Invalid, message)
    }
    pub fn conflict(message: impl Into<String>) -> CommandError {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn unavailable(message: impl Into<String>) -> CommandError {
        Self::new(ErrorKind::Unavailable, message)
    }
    pub fn read_only(message: impl Into<String>) -> CommandError {
        Self::new(ErrorKind::ReadOnly, message)
    }
}

/// What the engine answers a command with.
pub type CommandResult = Result<Reply, CommandError>;

pub struct Request {
    pub command: Command,
    pub actor: String,
    pub reply: oneshot::Sender<CommandResult>,
}
