//! The planner: a pure function from (fleet, observed desktops and hosts, work in flight, now)
//! to per class targets and the actions that close the gap. No I/O, no clock, no randomness: the
//! engine, the tests and the simulator all call it the same way.
//!
//! Per class, each pass:
//! 1. production target = the expected production of the period in force now or `ready_secs`
//!    ahead (whichever asks more), never below the desktops actually assigned;
//! 2. buffer target = desktops expected to log in but not yet assigned + the buffer rule's spare
//!    (a percentage of current production between a floor and a ceiling), within the class cap.
//!    A *predictive* class ([`crate::policy::Predictive`]) replaces the percentage with
//!    [`predictive_spare`] of its forecast (`PlanInput::forecasts`), bounded by the larger floor
//!    and the larger ceiling of the rules in force now and `ready_secs` ahead;
//! 3. desktops that cannot serve a new login (old seed version, on a draining host) are
//!    *stale*: fresh ones are made first, and the stale ones are removed once they are covered;
//! 4. a surplus of fresh desktops is removed only after it has lasted `scale_down_delay_secs`
//!    (hysteresis: a target that wobbles never creates and destroys in turn);
//! 5. new desktops go to the least loaded active host that has room, a pacing slot and a
//!    complete seed copy (a copy is ordered first where one is missing).
//!
//! Standby hosts are brought into service when the desktops wanted do not fit on the hosts in
//! service, and drained back to standby once they have been unneeded for `standby_idle_secs`.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::model::{ObservedDesktop, PoolState, SeedCopy};
use crate::policy::{BufferRule, ClassSpec, Fleet, HostSpec, ShutoffAction, Usage};

/// What the engine currently knows about a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum HostStatus {
    /// In service: desktops are placed here.
    Active,
    /// Not in service (a standby host nobody needs, not connected).
    Standby,
    /// Being brought into service (activation command, connection).
    Activating,
    /// No new desktops; buffered ones move away; production ones stay until released.
    /// `by_admin` drains stay until the admin undrains; others return the host to standby.
    Draining { by_admin: bool },
    /// Could not be reached; retried with backoff.
    Down { reason: String },
}

impl HostStatus {
    pub fn label(&self) -> &'static str {
        match self {
            HostStatus::Active => "active",
            HostStatus::Standby => "standby",
            HostStatus::Activating => "activating",
            HostStatus::Draining { .. } => "draining",
            HostStatus::Down { .. } => "down",
        }
    }
}

/// One host as the planner sees it.
#[derive(Debug, Clone)]
pub struct HostView {
    pub name: String,
    pub status: HostStatus,
    /// Seed copies in the host's creation pool.
    pub seed_copies: Vec<SeedCopy>,
    /// Seed source volumes the host holds, as (pool, volume).
    pub seed_sources: Vec<(String, String)>,
    /// Desktop volumes in the creation pool (`dp-*`), for orphan clean-up.
    pub desktop_volumes: Vec<String>,
    /// `dp-*` domains without deskpool metadata (interrupted before their label was written).
    pub unlabelled_desktops: Vec<String>,
}

/// Work the engine has under way or is holding back, so the planner does not order it twice.
#[derive(Debug, Clone, Default)]
pub struct Busy {
    /// Desktops with a job running or a retry pending.
    pub desktops: HashSet<String>,
    /// Volumes being written (a new desktop's disk before its domain exists).
    pub volumes: HashSet<(String, String)>,
    /// Seed copies under way or waiting for a retry: (host, class, version).
    pub seed_copies: HashSet<(String, String, String)>,
    /// Classes whose creations are failing, with until when and why.
    pub class_backoff: HashMap<String, (Timestamp, String)>,
    /// Admin floor raises: class → (floor, expiry).
    pub floor_raises: HashMap<String, (u32, Timestamp)>,
    /// Fresh desktops owed to classes whose policy recycles on logout: each released desktop
    /// is replaced at once, even when the buffer is at its target (a surplus is trimmed later,
    /// after the scale-down delay).
    pub owed_replacements: HashMap<String, u32>,
}

/// What the planner remembers between passes (it is handed back in, never kept inside).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanMemory {
    /// Since when each class has had more fresh desktops than its target.
    pub surplus_since: BTreeMap<String, Timestamp>,
    /// Since when each in-service standby host has been unneeded.
    pub unneeded_since: BTreeMap<String, Timestamp>,
}

/// Everything the planner reads.
pub struct PlanInput<'a> {
    pub fleet: &'a Fleet,
    pub hosts: &'a [HostView],
    pub desktops: &'a [ObservedDesktop],
    pub busy: &'a Busy,
    pub memory: &'a PlanMemory,
    pub now: Timestamp,
    /// Per class with a predictive policy: the logins expected during the next `ready_secs`
    /// (from [`super::demand::DemandModel::forecast`], computed by the caller). A predictive
    /// class missing here counts as expecting none (its spare is then the floor, at least 1).
    pub forecasts: &'a HashMap<String, f64>,
}

/// Why a desktop is destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestroyReason {
    /// More buffered desktops than the target, for longer than the scale-down delay.
    Surplus,
    /// Its seed version is no longer current (replaced by a fresh one first).
    StaleSeed,
    /// Its host is draining (replaced elsewhere first).
    HostDraining,
    /// Released by its user, or retired earlier and not yet gone.
    Retired,
    /// Failed too many times to become ready.
    Failed,
    /// Found shut off while it should be ready.
    NotRunning,
    /// Left unlabelled by an interrupted creation.
    Unlabelled,
    /// Undefined on its host behind deskpool's back (it runs on as a transient domain, gone at
    /// its next shutdown): replaced by a fresh one first.
    Undefined,
    /// Its class is no longer configured.
    UnknownClass,
    /// Its own disk volume, or an image backing it, is gone: it can never be used again.
    DiskMissing,
    /// Assigned, found shut off, and its class recycles such desktops (or restarting it failed
    /// too often): its user gets a fresh one at the next login.
    ShutOff,
}

/// A step the engine should take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Copy a class's seed into `host`'s creation pool, from `source_host` (same host: a volume
    /// clone; another host: download/upload streams). `from_copy` reads the source host's seed
    /// copy instead of its seed library.
    CopySeed {
        host: String,
        class: String,
        version: String,
        source_host: String,
        from_copy: bool,
    },
    /// Make a new desktop: overlay volume, domain, boot, buffer.
    Create {
        host: String,
        class: String,
        version: String,
    },
    /// Boot a desktop left defined but not running (an interrupted creation).
    Boot {
        host: String,
        desktop: String,
    },
    /// Start an assigned desktop found shut off again, for its user (its class restarts such
    /// desktops).
    Restart {
        host: String,
        desktop: String,
    },
    /// Move a running desktop from creation to the buffer (an interrupted creation).
    Promote {
        host: String,
        desktop: String,
    },
    Destroy {
        host: String,
        desktop: String,
        reason: DestroyReason,
    },
    /// Delete a desktop volume that no domain uses.
    DeleteVolume {
        host: String,
        volume: String,
    },
    /// Delete a seed copy nothing is backed by any more (or an incomplete one).
    DeleteSeedCopy {
        host: String,
        class: String,
        version: String,
    },
    ActivateHost {
        host: String,
    },
    DrainHost {
        host: String,
    },
    /// A draining host with demand for it again goes back into service.
    UndrainHost {
        host: String,
    },
    ReturnToStandby {
        host: String,
    },
}

/// Targets and levels of one class after a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassPlan {
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
    /// Why the class is where it is, in one line ("buffer 3 below target 12: 4 clones in flight, host h2 at capacity").
    pub explanation: String,
}

impl ClassPlan {
    /// Whether the class holds exactly what its targets ask, with nothing in flight.
    pub fn is_steady(&self) -> bool {
        self.creation == 0 && self.stale == 0 && self.buffer == self.buffer_target
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub classes: Vec<ClassPlan>,
    pub actions: Vec<Action>,
    pub memory: PlanMemory,
}

/// Per host bookkeeping during one pass.
struct HostSlot<'a> {
    view: &'a HostView,
    spec: &'a HostSpec,
    usage: Usage,
    /// Desktops in creation per class (pacing).
    creating: HashMap<&'a str, u32>,
}

impl HostSlot<'_> {
    fn placeable(&self) -> bool {
        self.view.status == HostStatus::Active
    }
    fn seed_ready(&self, class: &str, version: &str) -> Option<&SeedCopy> {
        self.view
            .seed_copies
            .iter()
            .find(|s| s.class == class && s.version == version && s.complete)
    }
    fn load(&self, class: &ClassSpec) -> f64 {
        let total = self.spec.capacity.total_for(class).max(1);
        f64::from(self.usage.desktops) / f64::from(total)
    }
}

pub fn plan(input: &PlanInput<'_>) -> Plan {
    let fleet = input.fleet;
    let now = input.now;
    let mut actions = Vec::new();
    let mut memory = PlanMemory::default();

    let mut slots: Vec<HostSlot> = input
        .hosts
        .iter()
        .filter_map(|view| {
            fleet.host(&view.name).map(|spec| HostSlot {
                view,
                spec,
                usage: Usage::default(),
                creating: HashMap::new(),
            })
        })
        .collect();
    let slot_index: HashMap<&str, usize> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| (s.view.name.as_str(), i))
        .collect();

    // Classes by name (the first of a name, as `Fleet::class`), looked up once per desktop.
    let mut classes: HashMap<&str, &ClassSpec> = HashMap::with_capacity(fleet.classes.len());
    for c in &fleet.classes {
        classes.entry(c.name.as_str()).or_insert(c);
    }

    // Usage per host, and desktops grouped per class.
    let mut by_class: HashMap<&str, Vec<&ObservedDesktop>> = HashMap::new();
    for d in input.desktops {
        let Some(&i) = slot_index.get(d.host.as_str()) else {
            continue;
        };
        match classes.get(d.meta.class.as_str()).copied() {
            Some(class) => {
                slots[i].usage.add(class);
                if d.meta.pool == PoolState::Creation {
                    *slots[i].creating.entry(class.name.as_str()).or_default() += 1;
                }
                by_class.entry(class.name.as_str()).or_default().push(d);
            }
            None => {
                slots[i].usage.desktops += 1;
                if !input.busy.desktops.contains(&d.name) {
                    actions.push(Action::Destroy {
                        host: d.host.clone(),
                        desktop: d.name.clone(),
                        reason: DestroyReason::UnknownClass,
                    });
                }
            }
        }
    }

    let draining: HashSet<&str> = slots
        .iter()
        .filter(|s| matches!(s.view.status, HostStatus::Draining { .. }))
        .map(|s| s.view.name.as_str())
        .collect();
    let down: HashSet<&str> = slots
        .iter()
        .filter(|s| matches!(s.view.status, HostStatus::Down { .. }))
        .map(|s| s.view.name.as_str())
        .collect();

    let mut class_plans = Vec::with_capacity(fleet.classes.len());
    // Desktops per class that could not be placed for lack of room (drives standby activation).
    let mut unplaced_for_room: Vec<(&ClassSpec, u32)> = Vec::new();
    let mut total_wanted: Vec<(&ClassSpec, u32)> = Vec::new();

    for class in &fleet.classes {
        let policy = &class.policy;
        let version = class.seed.version.as_str();
        let desktops = by_class
            .get(class.name.as_str())
            .cloned()
            .unwrap_or_default();
        let busy = |d: &ObservedDesktop| input.busy.desktops.contains(&d.name);

        let mut production = 0u32;
        let mut creation = 0u32;
        let mut fresh_buffer: Vec<&ObservedDesktop> = Vec::new();
        let mut stale_buffer: Vec<&ObservedDesktop> = Vec::new();
        for d in &desktops {
            if down.contains(d.host.as_str()) {
                // Unreachable: its users keep their desktops; nothing else there can be used.
                if d.meta.pool == PoolState::Production {
                    production += 1;
                }
                continue;
            }
            match d.meta.pool {
                PoolState::Production => {
                    production += 1;
                    if !busy(d) {
                        recover_production(d, class, fleet, &mut actions);
                    }
                }
                PoolState::Creation => {
                    creation += 1;
                    if !busy(d) {
                        recover_creation(d, class, fleet, &mut actions);
                    }
                }
                PoolState::Buffer => {
                    if d.disk_problem.is_some() {
                        if !busy(d) {
                            actions.push(destroy(d, DestroyReason::DiskMissing));
                        }
                        continue;
                    }
                    if !d.running && !busy(d) {
                        actions.push(destroy(d, DestroyReason::NotRunning));
                        continue;
                    }
                    if d.meta.seed_version != version
                        || draining.contains(d.host.as_str())
                        || !d.persistent
                    {
                        stale_buffer.push(d);
                    } else {
                        fresh_buffer.push(d);
                    }
                }
                PoolState::Retired => {
                    if !busy(d) {
                        actions.push(destroy(d, DestroyReason::Retired));
                    }
                }
            }
        }

        // Targets.
        let ahead = now + SignedDuration::from_secs(policy.ready_secs as i64);
        let tz = &fleet.engine.timezone;
        let now_period = policy.period_at(now, tz);
        let ahead_period = policy.period_at(ahead, tz);
        let expected_of = |p: Option<(usize, &crate::policy::Period)>| {
            p.map_or(policy.production, |(_, p)| p.production)
        };
        let rule_of =
            |p: Option<(usize, &crate::policy::Period)>| p.map_or(policy.buffer, |(_, p)| p.buffer);
        let expected = expected_of(now_period).max(expected_of(ahead_period));
        let spare_rule = pick_larger(rule_of(now_period), rule_of(ahead_period), production);
        let mut spare = match policy.predictive {
            None => spare_rule.spare_for(production),
            Some(predictive) => {
                let (a, b) = (rule_of(now_period), rule_of(ahead_period));
                let expected = input.forecasts.get(&class.name).copied().unwrap_or(0.0);
                predictive_spare(expected, predictive.service_level)
                    .max(a.floor.max(b.floor))
                    .min(a.ceiling.max(b.ceiling))
            }
        };
        if let Some((floor, until)) = input.busy.floor_raises.get(&class.name)
            && *until > now
        {
            spare = spare.max(*floor);
        }
        let production_target = expected.max(production);
        let room_under_cap = policy.cap.saturating_sub(production);
        let buffer_target = (production_target - production + spare).min(room_under_cap);
        let period = ahead_period.or(now_period).map(|(i, _)| i);

        // Fresh supply: ready fresh desktops plus those being made.
        let fresh = fresh_buffer.len() as u32;
        let stale = stale_buffer.len() as u32;
        let supply = fresh + creation;
        let mut notes: Vec<String> = Vec::new();

        // Creations wanted, within the cap (stale desktops make way when the cap is reached).
        let owed = input
            .busy
            .owed_replacements
            .get(&class.name)
            .copied()
            .unwrap_or(0);
        let wanted = buffer_target.saturating_sub(supply).max(owed);
        let in_class = production + supply + stale;
        let cap_room = policy.cap.saturating_sub(in_class);
        let mut stale_sorted = stale_buffer.clone();
        stale_sorted.sort_by(|a, b| {
            (a.meta.seed_version.as_str(), a.meta.created_at)
                .cmp(&(b.meta.seed_version.as_str(), b.meta.created_at))
        });
        let mut stale_to_remove: Vec<&ObservedDesktop> = Vec::new();
        let mut to_create = wanted;
        if wanted > cap_room {
            let make_way = (wanted - cap_room).min(stale);
            stale_to_remove.extend(stale_sorted.iter().take(make_way as usize).copied());
            to_create = cap_room + make_way;
            if to_create < wanted {
                notes.push(format!("cap {} reached", policy.cap));
            }
        }
        // Stale desktops are removed once fresh ones cover the target.
        let fresh_short = buffer_target.saturating_sub(fresh);
        let stale_needed = fresh_short.min(stale);
        for d in stale_sorted.iter().skip(stale_needed as usize) {
            if !stale_to_remove.iter().any(|r| r.name == d.name) {
                stale_to_remove.push(d);
            }
        }
        for d in &stale_to_remove {
            if !busy(d) {
                let reason = if draining.contains(d.host.as_str()) {
                    DestroyReason::HostDraining
                } else if !d.persistent {
                    DestroyReason::Undefined
                } else {
                    DestroyReason::StaleSeed
                };
                actions.push(destroy(d, reason));
            }
        }

        // Surplus of fresh desktops: removed only after it has lasted the scale-down delay.
        let surplus = supply.saturating_sub(buffer_target);
        let removable = surplus.min(fresh);
        if removable > 0 {
            let since = input
                .memory
                .surplus_since
                .get(&class.name)
                .copied()
                .unwrap_or(now);
            memory.surplus_since.insert(class.name.clone(), since);
            let waited = now.duration_since(since).as_secs();
            if waited >= policy.scale_down_delay_secs as i64 {
                let mut candidates: Vec<&&ObservedDesktop> =
                    fresh_buffer.iter().filter(|d| !busy(d)).collect();
                // Oldest seed version first, then the oldest desktop.
                candidates.sort_by(|a, b| {
                    (a.meta.seed_version.as_str(), a.meta.created_at)
                        .cmp(&(b.meta.seed_version.as_str(), b.meta.created_at))
                });
                for d in candidates.into_iter().take(removable as usize) {
                    actions.push(destroy(d, DestroyReason::Surplus));
                }
            } else {
                notes.push(format!(
                    "{removable} surplus, removed in {}s",
                    policy.scale_down_delay_secs as i64 - waited
                ));
            }
        }

        // Place the creations.
        let mut placed = 0u32;
        let mut short_room = 0u32;
        let mut paced_hosts: Vec<&str> = Vec::new();
        let mut full_hosts: Vec<&str> = Vec::new();
        let mut seeding_hosts: Vec<&str> = Vec::new();
        let backoff = input
            .busy
            .class_backoff
            .get(&class.name)
            .filter(|(until, _)| *until > now);
        if let Some((until, why)) = backoff
            && to_create > 0
        {
            notes.push(format!(
                "creation failing, retry in {}s: {why}",
                until.duration_since(now).as_secs().max(1)
            ));
        } else {
            let mut ordered: Vec<usize> =
                (0..slots.len()).filter(|&i| slots[i].placeable()).collect();
            for _ in 0..to_create {
                ordered.sort_by(|&a, &b| {
                    slots[a]
                        .load(class)
                        .partial_cmp(&slots[b].load(class))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                let mut chosen = None;
                for &i in &ordered {
                    let slot = &slots[i];
                    let name = slot.view.name.as_str();
                    if slot.spec.capacity.room_for(&slot.usage, class) == 0 {
                        push_unique(&mut full_hosts, name);
                        continue;
                    }
                    let in_flight = slot.creating.get(class.name.as_str()).copied().unwrap_or(0);
                    if in_flight >= policy.pacing.clones_per_host {
                        push_unique(&mut paced_hosts, name);
                        continue;
                    }
                    if slot.seed_ready(&class.name, version).is_none() {
                        push_unique(&mut seeding_hosts, name);
                        continue;
                    }
                    chosen = Some(i);
                    break;
                }
                let Some(i) = chosen else {
                    break;
                };
                let slot = &mut slots[i];
                slot.usage.add(class);
                *slot.creating.entry(class.name.as_str()).or_default() += 1;
                placed += 1;
                actions.push(Action::Create {
                    host: slot.view.name.clone(),
                    class: class.name.clone(),
                    version: version.to_string(),
                });
            }
            let unplaced = to_create - placed;
            if unplaced > 0 {
                // Hosts that have room but no seed copy get one; only room shortage calls standby hosts.
                let room_elsewhere: u32 = slots
                    .iter()
                    .filter(|s| s.placeable())
                    .filter(|s| s.seed_ready(&class.name, version).is_none())
                    .map(|s| s.spec.capacity.room_for(&s.usage, class))
                    .sum();
                short_room = unplaced.saturating_sub(room_elsewhere);
            }
        }

        // Seed copies where they are missing on hosts that will run the class.
        for slot in slots.iter().filter(|s| s.placeable()) {
            order_seed_copy(slot, class, &slots, input, &mut actions, to_create > placed);
        }

        if creation > 0 {
            notes.insert(0, format!("{creation} in creation"));
        }
        if !paced_hosts.is_empty() && placed < to_create {
            notes.push(format!("pacing limit on {}", paced_hosts.join(", ")));
        }
        if !seeding_hosts.is_empty() && placed < to_create {
            let copying: Vec<&str> = seeding_hosts
                .iter()
                .copied()
                .filter(|h| {
                    input.busy.seed_copies.contains(&(
                        h.to_string(),
                        class.name.clone(),
                        version.to_string(),
                    ))
                })
                .collect();
            if !copying.is_empty() {
                notes.push(format!("seed copy in progress on {}", copying.join(", ")));
            } else if !seed_available(class, &slots) {
                let wherever = match class.seed.host.as_deref() {
                    Some(h) => format!("on its host {h}"),
                    None => "on any reachable host".to_string(),
                };
                notes.push(format!(
                    "seed volume {}/{} not found {wherever}",
                    class.seed.pool, class.seed.volume
                ));
            } else {
                notes.push(format!(
                    "seed copy ordered for {}",
                    seeding_hosts.join(", ")
                ));
            }
        }
        if short_room > 0 {
            if full_hosts.is_empty() {
                notes.push(format!("{short_room} cannot be placed: no active host"));
            } else {
                notes.push(format!("host {} at capacity", full_hosts.join(", ")));
            }
            unplaced_for_room.push((class, short_room));
        }
        if stale > 0 {
            notes.push(format!(
                "{stale} on an old seed, a draining host or undefined, being replaced"
            ));
        }

        let buffer = fresh + stale;
        let head = if buffer < buffer_target {
            format!("buffer {buffer} below target {buffer_target}")
        } else if buffer > buffer_target {
            format!("buffer {buffer} above target {buffer_target}")
        } else {
            format!("buffer at target {buffer_target}")
        };
        let explanation = if notes.is_empty() {
            head
        } else {
            format!("{head}: {}", notes.join(", "))
        };
        total_wanted.push((class, production + buffer_target));
        class_plans.push(ClassPlan {
            name: class.name.clone(),
            production,
            buffer,
            creation,
            production_target,
            buffer_target,
            total_target: production + buffer_target,
            period,
            stale,
            explanation,
        });
    }

    clean_leftovers(input, &slots, &classes, &mut actions);
    plan_hosts(
        input,
        &slots,
        &unplaced_for_room,
        &total_wanted,
        &mut memory,
        &mut actions,
    );

    Plan {
        classes: class_plans,
        actions,
        memory,
    }
}

/// The spare of a predictive buffer: with `expected` logins forecast during the time a new
/// desktop takes to become ready, the desktops to keep (ready or in creation) so that a share
/// `service_level` of logins finds one ready.
///
/// Each login takes a ready desktop and the planner orders its replacement at once, so ready +
/// in creation stays at the target S, and a login finds a ready desktop exactly when fewer than
/// S logins came during the last `ready_secs` (those are the desktops still in creation). With
/// Poisson arrivals of mean `expected` (and Poisson arrivals see time averages), the share served
/// at once is P(N ≤ S − 1); the smallest S reaching `service_level` is the Poisson quantile at
/// `service_level` plus one: the desktop for the login at hand, plus the quantile of logins
/// while its replacement is made. At `expected` = 0 this is 1.
pub fn predictive_spare(expected: f64, service_level: f64) -> u32 {
    poisson_quantile(expected, service_level).saturating_add(1)
}

/// The smallest k with P(N ≤ k) ≥ `p` for N ~ Poisson(`mean`). Terms are summed in log space
/// (no underflow for large means); bounded at mean + 40·√mean + 50.
pub fn poisson_quantile(mean: f64, p: f64) -> u32 {
    if mean.is_nan() || mean <= 0.0 || !mean.is_finite() {
        return 0;
    }
    let limit = mean + 40.0 * mean.sqrt() + 50.0;
    let ln_mean = mean.ln();
    let mut log_pmf = -mean;
    let mut cdf = log_pmf.exp();
    let mut k = 0u32;
    while cdf < p && f64::from(k) < limit {
        k += 1;
        log_pmf += ln_mean - f64::from(k).ln();
        cdf += log_pmf.exp();
    }
    k
}

/// The larger (by spare desktops for the current production) of two buffer rules.
fn pick_larger(a: BufferRule, b: BufferRule, production: u32) -> BufferRule {
    if b.spare_for(production) > a.spare_for(production) {
        b
    } else {
        a
    }
}

fn destroy(d: &ObservedDesktop, reason: DestroyReason) -> Action {
    Action::Destroy {
        host: d.host.clone(),
        desktop: d.name.clone(),
        reason,
    }
}

fn push_unique<'a>(list: &mut Vec<&'a str>, name: &'a str) {
    if !list.contains(&name) {
        list.push(name);
    }
}

/// An assigned desktop with no job on it that is shut off: start it again for its user, or
/// recycle it when its class says so, when its disk is gone, or when restarting keeps failing.
/// One that still runs is left to its user, even without its disk (destroying it would end a
/// session that may still be saving elsewhere); the user's next login gets a fresh desktop.
fn recover_production(
    d: &ObservedDesktop,
    class: &ClassSpec,
    fleet: &Fleet,
    actions: &mut Vec<Action>,
) {
    if d.running {
        return;
    }
    let restart = restarts_on_shutoff(class)
        && d.disk_problem.is_none()
        && d.meta.attempts < fleet.engine.max_attempts;
    if restart {
        actions.push(Action::Restart {
            host: d.host.clone(),
            desktop: d.name.clone(),
        });
    } else if d.disk_problem.is_some() {
        actions.push(destroy(d, DestroyReason::DiskMissing));
    } else {
        actions.push(destroy(d, DestroyReason::ShutOff));
    }
}

/// Whether an assigned desktop of `class` found shut off is started again for its user.
pub fn restarts_on_shutoff(class: &ClassSpec) -> bool {
    class.policy.on_shutoff == ShutoffAction::Restart
}

/// A desktop found in the creation pool with no job on it: finish it or give up on it.
fn recover_creation(
    d: &ObservedDesktop,
    class: &ClassSpec,
    fleet: &Fleet,
    actions: &mut Vec<Action>,
) {
    if d.disk_problem.is_some() {
        actions.push(destroy(d, DestroyReason::DiskMissing));
    } else if d.meta.attempts >= fleet.engine.max_attempts {
        actions.push(destroy(d, DestroyReason::Failed));
    } else if !d.persistent {
        actions.push(destroy(d, DestroyReason::Undefined));
    } else if d.meta.seed_version != class.seed.version {
        actions.push(destroy(d, DestroyReason::StaleSeed));
    } else if d.running {
        actions.push(Action::Promote {
            host: d.host.clone(),
            desktop: d.name.clone(),
        });
    } else {
        actions.push(Action::Boot {
            host: d.host.clone(),
            desktop: d.name.clone(),
        });
    }
}

/// Whether some reachable host holds the class's seed volume (where it is pinned, if it is) or
/// a finished copy of its current version, so a copy can be made.
fn seed_available(class: &ClassSpec, slots: &[HostSlot<'_>]) -> bool {
    let source = (class.seed.pool.clone(), class.seed.volume.clone());
    let pinned = class.seed.host.as_deref();
    slots
        .iter()
        .filter(|s| !matches!(s.view.status, HostStatus::Down { .. } | HostStatus::Standby))
        .any(|s| {
            (pinned.is_none_or(|p| p == s.view.name) && s.view.seed_sources.contains(&source))
                || s.seed_ready(&class.name, &class.seed.version).is_some()
        })
}

/// Orders a seed copy onto `slot` when the class will need it there and none is under way.
fn order_seed_copy(
    slot: &HostSlot<'_>,
    class: &ClassSpec,
    slots: &[HostSlot<'_>],
    input: &PlanInput<'_>,
    actions: &mut Vec<Action>,
    needed_now: bool,
) {
    let version = class.seed.version.as_str();
    let host = slot.view.name.as_str();
    if slot.seed_ready(&class.name, version).is_some() {
        return;
    }
    let key = (host.to_string(), class.name.clone(), version.to_string());
    if input.busy.seed_copies.contains(&key) {
        return;
    }
    // Only copy where desktops of the class will go: wanted now, and the host has room for one.
    if !needed_now || slot.spec.capacity.room_for(&slot.usage, class) == 0 {
        return;
    }
    if slot
        .view
        .seed_copies
        .iter()
        .any(|s| s.class == class.name && s.version == version)
    {
        // An incomplete copy with no job on it: it is deleted first (see clean_leftovers).
        return;
    }
    let source = (class.seed.pool.clone(), class.seed.volume.clone());
    let has_source = |s: &HostSlot<'_>| s.view.seed_sources.contains(&source);
    let pinned = class.seed.host.as_deref();
    let (source_host, from_copy) = if pinned.is_none_or(|p| p == host) && has_source(slot) {
        (host.to_string(), false)
    } else if let Some(src) = slots.iter().find(|s| {
        s.view.name != host
            && !matches!(s.view.status, HostStatus::Down { .. } | HostStatus::Standby)
            && pinned.is_none_or(|p| p == s.view.name)
            && has_source(s)
    }) {
        (src.view.name.clone(), false)
    } else if let Some(src) = slots.iter().find(|s| {
        s.view.name != host
            && !matches!(s.view.status, HostStatus::Down { .. } | HostStatus::Standby)
            && s.seed_ready(&class.name, version).is_some()
    }) {
        (src.view.name.clone(), true)
    } else {
        return;
    };
    actions.push(Action::CopySeed {
        host: host.to_string(),
        class: class.name.clone(),
        version: version.to_string(),
        source_host,
        from_copy,
    });
}

/// The desktops of one host, as [`clean_leftovers`] looks them up.
#[derive(Default)]
struct OnHost<'a> {
    names: HashSet<&'a str>,
    /// (class, seed version) of each desktop.
    seeds: HashSet<(&'a str, &'a str)>,
}

/// Volumes, unlabelled domains and seed copies that nothing accounts for.
fn clean_leftovers(
    input: &PlanInput<'_>,
    slots: &[HostSlot<'_>],
    classes: &HashMap<&str, &ClassSpec>,
    actions: &mut Vec<Action>,
) {
    // Per host, the names of its desktops and the (class, seed version) pairs they use, in one
    // pass over the desktops (not one pass per host, and not one per volume).
    let mut on_hosts: HashMap<&str, OnHost<'_>> = HashMap::new();
    for d in input.desktops {
        let on = on_hosts.entry(d.host.as_str()).or_default();
        on.names.insert(d.name.as_str());
        on.seeds
            .insert((d.meta.class.as_str(), d.meta.seed_version.as_str()));
    }
    let nothing = OnHost::default();
    for slot in slots {
        if matches!(
            slot.view.status,
            HostStatus::Down { .. } | HostStatus::Standby
        ) {
            continue;
        }
        let host = slot.view.name.as_str();
        let on_host = on_hosts.get(host).unwrap_or(&nothing);
        for name in &slot.view.unlabelled_desktops {
            if !input.busy.desktops.contains(name) {
                actions.push(Action::Destroy {
                    host: host.to_string(),
                    desktop: name.clone(),
                    reason: DestroyReason::Unlabelled,
                });
            }
        }
        for volume in &slot.view.desktop_volumes {
            let owner = volume.strip_suffix(".qcow2").unwrap_or(volume);
            let owned = on_host.names.contains(owner)
                || slot.view.unlabelled_desktops.iter().any(|u| u == owner)
                || input.busy.desktops.contains(owner)
                || input
                    .busy
                    .volumes
                    .contains(&(host.to_string(), volume.clone()));
            if !owned {
                actions.push(Action::DeleteVolume {
                    host: host.to_string(),
                    volume: volume.clone(),
                });
            }
        }
        for copy in &slot.view.seed_copies {
            let key = (host.to_string(), copy.class.clone(), copy.version.clone());
            if input.busy.seed_copies.contains(&key) {
                continue;
            }
            let current = classes
                .get(copy.class.as_str())
                .is_some_and(|c| c.seed.version == copy.version);
            let backs_something = on_host
                .seeds
                .contains(&(copy.class.as_str(), copy.version.as_str()));
            if !copy.complete || (!current && !backs_something) {
                actions.push(Action::DeleteSeedCopy {
                    host: host.to_string(),
                    class: copy.class.clone(),
                    version: copy.version.clone(),
                });
            }
        }
    }
}

/// Standby hosts: activate when the wanted desktops do not fit; drain when long unneeded.
fn plan_hosts(
    input: &PlanInput<'_>,
    slots: &[HostSlot<'_>],
    unplaced_for_room: &[(&ClassSpec, u32)],
    total_wanted: &[(&ClassSpec, u32)],
    memory: &mut PlanMemory,
    actions: &mut Vec<Action>,
) {
    let engine = &input.fleet.engine;
    let now = input.now;

    // Capacity on its way (activating hosts) covers part of the shortfall first.
    let mut shortfall: Vec<(&ClassSpec, u32)> = unplaced_for_room.to_vec();
    for slot in slots
        .iter()
        .filter(|s| s.view.status == HostStatus::Activating)
    {
        absorb(&mut shortfall, slot);
    }
    // A draining standby host that is wanted again comes back before a new one is woken.
    for slot in slots
        .iter()
        .filter(|s| s.view.status == (HostStatus::Draining { by_admin: false }))
    {
        if shortfall.iter().all(|(_, n)| *n == 0) {
            break;
        }
        actions.push(Action::UndrainHost {
            host: slot.view.name.clone(),
        });
        absorb(&mut shortfall, slot);
    }
    for slot in slots
        .iter()
        .filter(|s| s.view.status == HostStatus::Standby && s.spec.standby)
    {
        if shortfall.iter().all(|(_, n)| *n == 0) {
            break;
        }
        actions.push(Action::ActivateHost {
            host: slot.view.name.clone(),
        });
        absorb(&mut shortfall, slot);
    }

    // In-service standby hosts that the rest could do without.
    let in_service: Vec<&HostSlot> = slots
        .iter()
        .filter(|s| s.view.status == HostStatus::Active)
        .collect();
    let anything_short = unplaced_for_room.iter().any(|(_, n)| *n > 0);
    // Consider the last activated (latest in config order) standby host first.
    // Only the last one in service is considered: hosts are drained one at a time.
    if let Some(candidate) = in_service.iter().rev().find(|s| s.spec.standby) {
        let name = candidate.view.name.as_str();
        let others: Vec<&&HostSlot> = in_service.iter().filter(|s| s.view.name != name).collect();
        let fits = !anything_short && fits_on(total_wanted, others.iter().map(|s| s.spec));
        if fits {
            let since = input
                .memory
                .unneeded_since
                .get(name)
                .copied()
                .unwrap_or(now);
            memory.unneeded_since.insert(name.to_string(), since);
            if now.duration_since(since).as_secs() >= engine.standby_idle_secs as i64 {
                actions.push(Action::DrainHost {
                    host: name.to_string(),
                });
            }
        }
    }
    for slot in slots
        .iter()
        .filter(|s| s.view.status == (HostStatus::Draining { by_admin: false }))
    {
        if slot.usage.desktops == 0
            && slot.spec.standby
            && !actions
                .iter()
                .any(|a| matches!(a, Action::UndrainHost { host } if *host == slot.view.name))
        {
            actions.push(Action::ReturnToStandby {
                host: slot.view.name.clone(),
            });
        }
    }
}

/// Takes `slot`'s capacity off each class's shortfall.
fn absorb(shortfall: &mut [(&ClassSpec, u32)], slot: &HostSlot<'_>) {
    let mut usage = slot.usage;
    for (class, n) in shortfall.iter_mut() {
        let take = slot.spec.capacity.room_for(&usage, class).min(*n);
        usage.add_n(class, take);
        *n -= take;
    }
}

/// Whether the wanted desktops of every class fit on `hosts` (first fit, class by class).
fn fits_on<'a>(wanted: &[(&ClassSpec, u32)], hosts: impl Iterator<Item = &'a HostSpec>) -> bool {
    let hosts: Vec<&HostSpec> = hosts.collect();
    let mut usage = vec![Usage::default(); hosts.len()];
    for (class, n) in wanted {
        let mut left = *n;
        for (h, u) in hosts.iter().zip(usage.iter_mut()) {
            let take = h.capacity.room_for(u, class).min(left);
            u.add_n(class, take);
            left -= take;
        }
        if left > 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
