//! The snapshot's views of the core's values: a class's plan, its reasons, a host's status, a
//! desktop and its metadata, login counts. Each is the protocol's own type with its own serde
//! attributes, filled from the core's type by a `From` conversion, so renaming a field of the
//! core changes no JSON (`tests/golden/*.json` pin the form). Each conversion names every field
//! and variant of the core's type: one added there does not compile here until its wire form
//! is chosen.

use std::fmt;

use serde::{Deserialize, Serialize};

use deskpool_core::ledger::LoginStats;
use deskpool_core::model::{DesktopMeta, ObservedDesktop, PoolState};
use deskpool_core::plan::{self, ClassPlan, HostStatus, Reason};

/// Targets and levels of one class after a pass (the core's [`ClassPlan`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassPlanView {
    pub name: String,
    pub production: u32,
    pub buffer: u32,
    pub creation: u32,
    pub production_target: u32,
    pub buffer_target: u32,
    /// Production + buffer wanted.
    pub total_target: u32,
    /// Index of the period in force (looked ahead), if any.
    pub period: Option<usize>,
    /// Buffered desktops on an older seed version.
    pub stale: u32,
    /// What holds the buffer where it is, or moves it.
    #[serde(default)]
    pub reasons: Vec<ReasonView>,
    /// An admin's raised buffer floor in force, and when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raised_floor: Option<RaisedFloorView>,
}

/// A raised buffer floor: `{"floor": 20, "until": "2026-01-05T12:00:00Z"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaisedFloorView {
    pub floor: u32,
    pub until: jiff::Timestamp,
}

impl ClassPlanView {
    /// Why the class is where it is, in one line ("buffer 3 below target 12: 4 in creation,
    /// host h2 at capacity"), worded by the core's one renderer.
    pub fn explanation(&self) -> String {
        let reasons: Vec<Reason> = self.reasons.iter().map(Reason::from).collect();
        plan::render(self.buffer, self.buffer_target, &reasons)
    }
}

impl From<&ClassPlan> for ClassPlanView {
    fn from(plan: &ClassPlan) -> Self {
        let ClassPlan {
            name,
            production,
            buffer,
            creation,
            production_target,
            buffer_target,
            total_target,
            period,
            stale,
            reasons,
            raised_floor,
        } = plan;
        ClassPlanView {
            name: name.clone(),
            production: *production,
            buffer: *buffer,
            creation: *creation,
            production_target: *production_target,
            buffer_target: *buffer_target,
            total_target: *total_target,
            period: *period,
            stale: *stale,
            reasons: reasons.iter().map(ReasonView::from).collect(),
            raised_floor: raised_floor.map(|r| RaisedFloorView {
                floor: r.floor,
                until: r.until,
            }),
        }
    }
}

/// One thing that holds a class's buffer where it is (the core's [`Reason`]), tagged by
/// `reason`: `{"reason": "pacing-limit", "hosts": ["h1"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum ReasonView {
    InCreation {
        count: u32,
    },
    CapReached {
        cap: u32,
    },
    SurplusWaiting {
        count: u32,
        removed_in_secs: i64,
    },
    CreationFailing {
        retry_in_secs: i64,
        error: String,
    },
    PacingLimit {
        hosts: Vec<String>,
    },
    SeedCopyInProgress {
        hosts: Vec<String>,
    },
    SeedMissing {
        pool: String,
        volume: String,
        host: Option<String>,
    },
    SeedCopyOrdered {
        hosts: Vec<String>,
    },
    NoActiveHost {
        count: u32,
    },
    AtCapacity {
        hosts: Vec<String>,
    },
    StaleReplaced {
        count: u32,
    },
    FloorRaised {
        floor: u32,
        ends_in_secs: i64,
    },
    EnginePaused,
}

impl From<&Reason> for ReasonView {
    fn from(reason: &Reason) -> Self {
        match reason.clone() {
            Reason::InCreation { count } => ReasonView::InCreation { count },
            Reason::CapReached { cap } => ReasonView::CapReached { cap },
            Reason::SurplusWaiting {
                count,
                removed_in_secs,
            } => ReasonView::SurplusWaiting {
                count,
                removed_in_secs,
            },
            Reason::CreationFailing {
                retry_in_secs,
                error,
            } => ReasonView::CreationFailing {
                retry_in_secs,
                error,
            },
            Reason::PacingLimit { hosts } => ReasonView::PacingLimit { hosts },
            Reason::SeedCopyInProgress { hosts } => ReasonView::SeedCopyInProgress { hosts },
            Reason::SeedMissing { pool, volume, host } => {
                ReasonView::SeedMissing { pool, volume, host }
            }
            Reason::SeedCopyOrdered { hosts } => ReasonView::SeedCopyOrdered { hosts },
            Reason::NoActiveHost { count } => ReasonView::NoActiveHost { count },
            Reason::AtCapacity { hosts } => ReasonView::AtCapacity { hosts },
            Reason::StaleReplaced { count } => ReasonView::StaleReplaced { count },
            Reason::FloorRaised {
                floor,
                ends_in_secs,
            } => ReasonView::FloorRaised {
                floor,
                ends_in_secs,
            },
            Reason::EnginePaused => ReasonView::EnginePaused,
        }
    }
}

/// Back to the core's reason, for its renderer (a console attached to a broker has only the
/// view).
impl From<&ReasonView> for Reason {
    fn from(reason: &ReasonView) -> Self {
        match reason.clone() {
            ReasonView::InCreation { count } => Reason::InCreation { count },
            ReasonView::CapReached { cap } => Reason::CapReached { cap },
            ReasonView::SurplusWaiting {
                count,
                removed_in_secs,
            } => Reason::SurplusWaiting {
                count,
                removed_in_secs,
            },
            ReasonView::CreationFailing {
                retry_in_secs,
                error,
            } => Reason::CreationFailing {
                retry_in_secs,
                error,
            },
            ReasonView::PacingLimit { hosts } => Reason::PacingLimit { hosts },
            ReasonView::SeedCopyInProgress { hosts } => Reason::SeedCopyInProgress { hosts },
            ReasonView::SeedMissing { pool, volume, host } => {
                Reason::SeedMissing { pool, volume, host }
            }
            ReasonView::SeedCopyOrdered { hosts } => Reason::SeedCopyOrdered { hosts },
            ReasonView::NoActiveHost { count } => Reason::NoActiveHost { count },
            ReasonView::AtCapacity { hosts } => Reason::AtCapacity { hosts },
            ReasonView::StaleReplaced { count } => Reason::StaleReplaced { count },
            ReasonView::FloorRaised {
                floor,
                ends_in_secs,
            } => Reason::FloorRaised {
                floor,
                ends_in_secs,
            },
            ReasonView::EnginePaused => Reason::EnginePaused,
        }
    }
}

impl fmt::Display for ReasonView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Reason::from(self).fmt(f)
    }
}

/// What the engine knows about a host (the core's [`HostStatus`]), tagged by `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum HostStatusView {
    Active,
    Standby,
    Activating,
    /// `by_admin` drains stay until the admin undrains; others return the host to standby.
    Draining {
        by_admin: bool,
    },
    Down {
        reason: String,
    },
}

impl HostStatusView {
    /// The state's name, as its `state` tag spells it.
    pub fn label(&self) -> &'static str {
        match self {
            HostStatusView::Active => "active",
            HostStatusView::Standby => "standby",
            HostStatusView::Activating => "activating",
            HostStatusView::Draining { .. } => "draining",
            HostStatusView::Down { .. } => "down",
        }
    }
}

impl From<&HostStatus> for HostStatusView {
    fn from(status: &HostStatus) -> Self {
        match status {
            HostStatus::Active => HostStatusView::Active,
            HostStatus::Standby => HostStatusView::Standby,
            HostStatus::Activating => HostStatusView::Activating,
            HostStatus::Draining { by_admin } => HostStatusView::Draining {
                by_admin: *by_admin,
            },
            HostStatus::Down { reason } => HostStatusView::Down {
                reason: reason.clone(),
            },
        }
    }
}

/// A desktop the engine knows of (the core's [`ObservedDesktop`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesktopView {
    pub name: String,
    pub host: String,
    pub meta: DesktopMetaView,
    pub running: bool,
    /// Defined on the host (false: a transient domain, gone at its next shutdown).
    #[serde(default = "defined")]
    pub persistent: bool,
    /// Why the desktop cannot run from its disk, when its volume (or a backing image) is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_problem: Option<String>,
    /// Where its display listens (`vnc://host:port`), once the engine has read it (when the
    /// desktop became ready or was handed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// Its guest's network address, as its guest agent reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

fn defined() -> bool {
    true
}

impl From<ObservedDesktop> for DesktopView {
    fn from(desktop: ObservedDesktop) -> Self {
        let ObservedDesktop {
            name,
            host,
            meta,
            running,
            persistent,
            disk_problem,
        } = desktop;
        DesktopView {
            name,
            host,
            meta: meta.into(),
            running,
            persistent,
            disk_problem,
            display: None,
            address: None,
        }
    }
}

impl From<&ObservedDesktop> for DesktopView {
    fn from(desktop: &ObservedDesktop) -> Self {
        desktop.clone().into()
    }
}

/// deskpool's record of a desktop (the core's [`DesktopMeta`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesktopMetaView {
    pub class: String,
    pub pool: PoolStateView,
    pub seed_version: String,
    pub user: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last pool change.
    pub changed_at: i64,
    /// Failed attempts to make this desktop ready.
    pub attempts: u32,
    /// The leader's term that last wrote the metadata (`[ha]` only; absent otherwise).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub term: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<DesktopMeta> for DesktopMetaView {
    fn from(meta: DesktopMeta) -> Self {
        let DesktopMeta {
            class,
            pool,
            seed_version,
            user,
            created_at,
            changed_at,
            attempts,
            term,
        } = meta;
        DesktopMetaView {
            class,
            pool: pool.into(),
            seed_version,
            user,
            created_at,
            changed_at,
            attempts,
            term,
        }
    }
}

/// Which pool a desktop belongs to (the core's [`PoolState`]); ordered as the desktop moves
/// through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolStateView {
    Creation,
    Buffer,
    Production,
    /// Its user disconnected; kept for them through the class's grace.
    Disconnected,
    Retired,
}

impl PoolStateView {
    /// The pool's name, as the wire spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolStateView::Creation => "creation",
            PoolStateView::Buffer => "buffer",
            PoolStateView::Production => "production",
            PoolStateView::Disconnected => "disconnected",
            PoolStateView::Retired => "retired",
        }
    }
}

impl From<PoolState> for PoolStateView {
    fn from(pool: PoolState) -> Self {
        match pool {
            PoolState::Creation => PoolStateView::Creation,
            PoolState::Buffer => PoolStateView::Buffer,
            PoolState::Production => PoolStateView::Production,
            PoolState::Disconnected => PoolStateView::Disconnected,
            PoolState::Retired => PoolStateView::Retired,
        }
    }
}

/// Logins served since the engine started (the core ledger's [`LoginStats`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoginStatsView {
    /// Desktops handed out (a user asking again for the one they hold is not counted).
    pub served: u64,
    /// Of those, served at once from the buffer.
    pub instant: u64,
    /// Logins waiting now for a desktop to become ready.
    pub waiting: u32,
    /// Total and longest wait of the logins that waited, in seconds.
    pub wait_secs_total: f64,
    pub wait_secs_max: f64,
    /// Served logins that waited at most `LOGIN_WAIT_BUCKETS[i]` seconds, cumulative;
    /// `served` is the `+Inf` bucket. Empty from an engine that predates the histogram.
    #[serde(default)]
    pub wait_le: Vec<u64>,
    /// Logins that got no desktop (empty buffer without waiting, or the wait ran out).
    pub refused: u64,
    /// Desktops that failed to become ready.
    pub failures: u64,
    /// The same counts over the last hour (since the start, for a younger engine). Filled by
    /// the engine, which keeps the window; empty from an engine that predates it.
    #[serde(default)]
    pub last_hour: LoginWindowView,
}

/// Logins of one class over a recent window (the engine's rolling last hour).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoginWindowView {
    /// How long the window covers, in seconds (an hour, or less right after a start).
    pub secs: u64,
    pub served: u64,
    pub instant: u64,
    pub refused: u64,
    /// The 95th percentile of the served logins' waits, as the upper bound of its histogram
    /// bucket (`None`: no login served, or it lies beyond the last bound).
    pub p95_wait_secs: Option<f64>,
}

impl From<LoginStats> for LoginStatsView {
    fn from(stats: LoginStats) -> Self {
        let LoginStats {
            served,
            instant,
            waiting,
            wait_secs_total,
            wait_secs_max,
            wait_le,
            refused,
            failures,
        } = stats;
        LoginStatsView {
            served,
            instant,
            waiting,
            wait_secs_total,
            wait_secs_max,
            wait_le,
            refused,
            failures,
            last_hour: LoginWindowView::default(),
        }
    }
}

impl From<&LoginStats> for LoginStatsView {
    fn from(stats: &LoginStats) -> Self {
        stats.clone().into()
    }
}
