//! Why a class is where it is: reasons carrying their numbers (part of the snapshot), and their
//! rendering to one line of English, done here only, for the console, the report and the CLI.

use std::fmt;

use super::index::BusyIndex;
use super::placement::Placement;
use super::recover::Sorted;
use super::seeds::seed_available;
use super::slots::{HostSlot, Hosts};
use crate::policy::ClassSpec;

/// One thing that holds a class's buffer where it is, or is under way to move it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Desktops being made.
    InCreation { count: u32 },
    /// Fewer creations than wanted: the class holds its cap.
    CapReached { cap: u32 },
    /// Fresh desktops above the target, removed once the surplus has lasted the scale-down delay.
    SurplusWaiting { count: u32, removed_in_secs: i64 },
    /// Creations are failing: none are ordered until the retry.
    CreationFailing { retry_in_secs: i64, error: String },
    /// Hosts passed over because they have as many clones in flight as pacing allows.
    PacingLimit { hosts: Vec<String> },
    /// Hosts passed over while their seed copy is being made.
    SeedCopyInProgress { hosts: Vec<String> },
    /// No reachable host (or not the class's pinned `host`) holds the seed volume.
    SeedMissing {
        pool: String,
        volume: String,
        host: Option<String>,
    },
    /// Hosts passed over for lack of a seed copy, which is ordered now.
    SeedCopyOrdered { hosts: Vec<String> },
    /// Desktops that fit nowhere because no host is in service.
    NoActiveHost { count: u32 },
    /// Desktops that fit nowhere: these hosts are full.
    AtCapacity { hosts: Vec<String> },
    /// Buffered desktops that cannot serve a new login, replaced by fresh ones first.
    StaleReplaced { count: u32 },
    /// An admin raised the buffer floor until a time (`ends_in_secs` from the pass).
    FloorRaised { floor: u32, ends_in_secs: i64 },
    /// The engine is paused: it plans but makes and removes nothing (the engine adds this one,
    /// the planner does not know).
    EnginePaused,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::InCreation { count } => write!(f, "{count} in creation"),
            Reason::CapReached { cap } => write!(f, "cap {cap} reached"),
            Reason::SurplusWaiting {
                count,
                removed_in_secs,
            } => write!(f, "{count} surplus, removed in {removed_in_secs}s"),
            Reason::CreationFailing {
                retry_in_secs,
                error,
            } => write!(f, "creation failing, retry in {retry_in_secs}s: {error}"),
            Reason::PacingLimit { hosts } => write!(f, "pacing limit on {}", hosts.join(", ")),
            Reason::SeedCopyInProgress { hosts } => {
                write!(f, "seed copy in progress on {}", hosts.join(", "))
            }
            Reason::SeedMissing { pool, volume, host } => match host {
                Some(h) => write!(f, "seed volume {pool}/{volume} not found on its host {h}"),
                None => write!(
                    f,
                    "seed volume {pool}/{volume} not found on any reachable host"
                ),
            },
            Reason::SeedCopyOrdered { hosts } => {
                write!(f, "seed copy ordered for {}", hosts.join(", "))
            }
            Reason::NoActiveHost { count } => write!(f, "{count} cannot be placed: no active host"),
            Reason::AtCapacity { hosts } => write!(f, "host {} at capacity", hosts.join(", ")),
            Reason::StaleReplaced { count } => write!(
                f,
                "{count} on an old seed, a draining host or undefined, being replaced"
            ),
            Reason::FloorRaised {
                floor,
                ends_in_secs,
            } => write!(
                f,
                "floor raised to {floor} for {}",
                duration_words(*ends_in_secs)
            ),
            Reason::EnginePaused => write!(f, "engine paused: nothing is made or removed"),
        }
    }
}

/// The one-line explanation: the buffer against its target, then the reasons.
pub fn render(buffer: u32, buffer_target: u32, reasons: &[Reason]) -> String {
    let mut line = if buffer < buffer_target {
        format!("buffer {buffer} below target {buffer_target}")
    } else if buffer > buffer_target {
        format!("buffer {buffer} above target {buffer_target}")
    } else {
        format!("buffer at target {buffer_target}")
    };
    for (i, reason) in reasons.iter().enumerate() {
        line.push_str(if i == 0 { ": " } else { ", " });
        line.push_str(&reason.to_string());
    }
    line
}

/// A duration as people say it: "45s", "12 min", "2 h 5 min".
fn duration_words(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{} min", (secs + 59) / 60),
        _ => {
            let minutes = (secs + 59) / 60;
            format!("{} h {} min", minutes / 60, minutes % 60)
        }
    }
}

fn owned(hosts: &[&str]) -> Vec<String> {
    hosts.iter().map(|h| h.to_string()).collect()
}

/// The reasons of `class` after placement; `early` holds those the earlier steps gave (cap,
/// surplus, backoff), in order.
#[allow(clippy::too_many_arguments)]
pub(super) fn class_reasons(
    ci: usize,
    class: &ClassSpec,
    sorted: &Sorted<'_>,
    to_create: u32,
    placement: &Placement<'_>,
    hosts: &Hosts<'_>,
    busy: &BusyIndex<'_>,
    early: Vec<Reason>,
) -> Vec<Reason> {
    let version = class.seed.version.as_str();
    let placed = placement.placed;
    let stale = sorted.stale.len() as u32;
    let mut reasons = Vec::with_capacity(early.len() + 4);
    if sorted.creation > 0 {
        reasons.push(Reason::InCreation {
            count: sorted.creation,
        });
    }
    reasons.extend(early);
    if !placement.paced_hosts.is_empty() && placed < to_create {
        reasons.push(Reason::PacingLimit {
            hosts: owned(&placement.paced_hosts),
        });
    }
    if !placement.seeding_hosts.is_empty() && placed < to_create {
        let copying: Vec<&str> = placement
            .seeding_hosts
            .iter()
            .copied()
            .filter(|h| busy.seed_copy(h, &class.name, version))
            .collect();
        if !copying.is_empty() {
            reasons.push(Reason::SeedCopyInProgress {
                hosts: owned(&copying),
            });
        } else if !seed_available(ci, class, hosts) {
            reasons.push(Reason::SeedMissing {
                pool: class.seed.pool.clone(),
                volume: class.seed.volume.clone(),
                host: class.seed.host.clone(),
            });
        } else {
            reasons.push(Reason::SeedCopyOrdered {
                hosts: owned(&placement.seeding_hosts),
            });
        }
    }
    // A full host passed over is named whenever creations were left unplaced (even when the
    // others are only paced); "no active host" only when none is in service.
    let unplaced = to_create.saturating_sub(placement.placed);
    if unplaced > 0 {
        if !placement.full_hosts.is_empty() {
            reasons.push(Reason::AtCapacity {
                hosts: owned(&placement.full_hosts),
            });
        } else if placement.short_room > 0 && !hosts.slots.iter().any(HostSlot::placeable) {
            reasons.push(Reason::NoActiveHost {
                count: placement.short_room,
            });
        }
    }
    if stale > 0 {
        reasons.push(Reason::StaleReplaced { count: stale });
    }
    reasons
}
