//! The event loop: replays a trace in virtual time through the real planner.
//!
//! Time starts at midnight (UTC) of the first event's day, with empty hosts, and ends at the
//! last event. The planner ([`deskpool_core::plan::plan`]) runs every `tick_secs` of virtual
//! time and after each batch of trace events at the same second; its actions are carried out
//! in the [`Model`]:
//!
//! - `Create`: the desktop clones for `clone_secs`, boots for `boot_secs`, then joins the
//!   buffer (or goes straight to the first user waiting for its class); by the engine's
//!   readiness rule ([`deskpool_core::readiness::Readiness::boot_outcome`]), a boot longer than
//!   a class's `ready_timeout_secs` (when it waits for its guest agent) is given up at the
//!   timeout instead: the desktop is destroyed, counted as a failure, and the class's next
//!   creation waits out the engine's backoff;
//! - `Destroy`: gone at once; `CopySeed`: complete after `seed_secs` (0: at once);
//! - `ActivateHost`: in service after `activate_secs`; `DrainHost`, `UndrainHost`,
//!   `ReturnToStandby`: at once.
//!
//! Logins are kept in the engine's [`Ledger`]: a login takes the ready desktop the engine would
//! hand out (current seed first, then the one created first; [`deskpool_core::ledger::pick`]),
//! an *instant* login, else waits in its class's FIFO queue for the next desktop that becomes
//! ready (a desktop is owed to each waiting login, as `Busy::owed_replacements`: made even when
//! the buffer is at its target). A login is *refused* when its class's production is at the cap
//! (no desktop can ever be made for it), when it has waited `max_wait_secs` without a desktop,
//! or when its user logs out while still waiting. A logout destroys the user's desktop; under
//! `on_logout = "recycle"` a replacement is owed to the class, as the engine does.
//!
//! A disconnect under the class's `disconnect_grace_secs` keeps the desktop for its user
//! (labelled disconnected, counted as production): their next login of the class within the
//! grace gets it back at once, an instant login; when the grace ends first it is recycled as
//! at a logout. Without a grace a disconnect is a logout. In a class with a grace a logout
//! that is part of a mass logout is taken as a disconnect, the wave's first logouts too (their
//! desktops are still settling when it is recognised). The rules are the ledger's
//! ([`deskpool_core::ledger::holds`], [`deskpool_core::ledger::settling`],
//! [`Ledger::logged_out`], [`Ledger::reconnected`]), the engine's.
//!
//! Predictive classes get the demand model's planning mean of their logins
//! ([`DemandModel::planning_mean`]: the forecast with its learnt clustering) over the horizon
//! creation can deliver ([`DemandModel::lead_horizon`]: `ready_secs`, plus the time the refill
//! rate, pacing × active hosts / `ready_secs`, needs to build the forecast's excess over the
//! desktops ready or in creation). Every login and logout is recorded in the model as it
//! happens, with its user: the model knows only the past.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use jiff::Timestamp;

use super::model::{Model, Phase};
use super::report::{ClassReport, Report, fill_waits};
use super::trace::{EventKind, TraceEvent};
use super::windows::{self, LoginRecord};
use deskpool_core::demand::DemandModel;
use deskpool_core::ledger::{self, Ledger};
use deskpool_core::model::PoolState;
use deskpool_core::plan::{self, Action, HostStatus, PlanInput, PlanMemory};
use deskpool_core::policy::Fleet;
use deskpool_core::readiness::BootOutcome;
use deskpool_core::retry::RetryBounds;
use deskpool_core::timings::{Step, StepTimings};

/// Timings of the host model and of the loop.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Seconds to clone a desktop (its overlay volume and domain).
    pub clone_secs: i64,
    /// Seconds from start to ready.
    pub boot_secs: i64,
    /// Seconds to copy a seed to a host (0: at once).
    pub seed_secs: i64,
    /// Seconds to bring a standby host into service.
    pub activate_secs: i64,
    /// Seconds of virtual time between two planner passes.
    pub tick_secs: i64,
    /// A login waiting this long is refused.
    pub max_wait_secs: i64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            clone_secs: 20,
            boot_secs: 60,
            seed_secs: 0,
            activate_secs: 120,
            tick_secs: 10,
            max_wait_secs: 900,
        }
    }
}

/// What a login got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// A ready desktop at once.
    Instant,
    /// A desktop after waiting for one to become ready.
    Waited,
    /// No desktop.
    Refused,
}

/// One login's outcome, in the order the outcomes happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOut {
    pub user: String,
    pub class: String,
    pub outcome: LoginOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    CloneDone(String),
    BootDone(String),
    /// Not ready within its class's `ready_timeout_secs`: destroyed, its class backs off.
    GivenUp(String),
    SeedDone {
        host: String,
        class: String,
        version: String,
    },
    HostActive(String),
    /// A waiting login's limit: (class, user, login time).
    Deadline(usize, String, i64),
    /// A disconnected desktop's grace ends: (desktop, when it was disconnected).
    GraceOver(String, i64),
}

/// What the ledger does not count: logins asked, each wait (for percentiles), idle time, peak.
#[derive(Default)]
struct ClassStats {
    logins: u64,
    waits: Vec<i64>,
    idle_secs: i64,
    peak: u64,
}

struct Sim<'a> {
    fleet: &'a Fleet,
    opts: &'a SimOptions,
    model: Model,
    now: i64,
    seq: u64,
    queue: BinaryHeap<Reverse<(i64, u64, Ev)>>,
    /// Users waiting (user, since) per class, owed replacements, served/refused counts.
    ledger: Ledger<(String, i64)>,
    /// (class, user) → their desktop, assigned or disconnected.
    desktops_of: HashMap<(usize, String), String>,
    stats: Vec<ClassStats>,
    peak_total: u64,
    host_secs: i64,
    memory: PlanMemory,
    demand: DemandModel,
    forecasts: HashMap<String, f64>,
    passes: u64,
    hand_outs: Vec<HandOut>,
    /// Desktops given up in a row per class (by index), for its backoff.
    give_ups: HashMap<usize, u32>,
    /// Every login's outcome with its time, for the windows and hours of the report.
    logins: Vec<LoginRecord>,
    /// Desktops being made: (host, when their clone began), for the measured time to ready.
    making: HashMap<String, (String, i64)>,
    /// The engine's measurements of making desktops, recorded the same way.
    timings: StepTimings,
}

/// Replays `trace` (parsed against `fleet`) and measures what users saw.
pub fn simulate(fleet: &Fleet, trace: &[TraceEvent], opts: &SimOptions) -> Report {
    simulate_with_hand_outs(fleet, trace, opts).0
}

/// [`simulate`], and what each login got, in the order it happened (those still waiting at the
/// end last, as refused).
pub fn simulate_with_hand_outs(
    fleet: &Fleet,
    trace: &[TraceEvent],
    opts: &SimOptions,
) -> (Report, Vec<HandOut>) {
    let start = trace.first().map_or(0, |e| e.at - e.at.rem_euclid(86_400));
    let end = trace.last().map_or(start, |e| e.at);
    let mut sim = Sim {
        fleet,
        opts,
        model: Model::new(fleet),
        now: start,
        seq: 0,
        queue: BinaryHeap::new(),
        ledger: Ledger::default(),
        desktops_of: HashMap::new(),
        stats: fleet
            .classes
            .iter()
            .map(|_| ClassStats::default())
            .collect(),
        peak_total: 0,
        host_secs: 0,
        memory: PlanMemory::default(),
        demand: DemandModel::with_calendar(fleet),
        forecasts: fleet
            .classes
            .iter()
            .filter(|c| c.policy.predictive.is_some())
            .map(|c| (c.name.clone(), 0.0))
            .collect(),
        passes: 0,
        hand_outs: Vec::new(),
        give_ups: HashMap::new(),
        making: HashMap::new(),
        timings: StepTimings::default(),
        logins: Vec::new(),
    };
    let tick = opts.tick_secs.max(1);
    let mut next_tick = start;
    let mut i = 0;
    loop {
        let next_trace = trace.get(i).map(|e| e.at);
        let next_internal = sim.queue.peek().map(|Reverse((t, _, _))| *t);
        // The earliest of: a trace event, an internal event, the next tick (ties: internal
        // events first, then the trace, then the tick).
        let mut t = next_tick;
        if let Some(x) = next_trace {
            t = t.min(x);
        }
        if let Some(x) = next_internal {
            t = t.min(x);
        }
        if t > end {
            sim.advance(end);
            break;
        }
        sim.advance(t);
        if next_internal == Some(t) {
            if let Some(Reverse((_, _, ev))) = sim.queue.pop() {
                sim.internal(ev);
            }
            continue;
        }
        if next_trace == Some(t) {
            while let Some(e) = trace.get(i).filter(|e| e.at == t) {
                sim.trace_event(e);
                i += 1;
            }
            sim.pass();
            continue;
        }
        sim.pass();
        next_tick += tick;
    }
    // Logins still waiting at the end were never served.
    for (class, queue) in sim.ledger.take_all_waiting() {
        let Some(ci) = sim.model.class_of(&class) else {
            continue;
        };
        for (user, since) in queue {
            sim.note(ci, &user, since, LoginOutcome::Refused);
        }
    }
    let hand_outs = std::mem::take(&mut sim.hand_outs);
    (sim.report(trace, start, end), hand_outs)
}

fn fmt_time(t: i64) -> String {
    Timestamp::from_second(t).map_or_else(|_| t.to_string(), |ts| ts.to_string())
}

impl Sim<'_> {
    /// What the login of `user` at `at` got (served now, or refused now).
    fn note(&mut self, class: usize, user: &str, at: i64, outcome: LoginOutcome) {
        let name = self.fleet.classes[class].name.clone();
        if outcome == LoginOutcome::Refused {
            self.ledger.refused(&name);
        }
        self.logins.push(LoginRecord {
            class,
            user: user.to_string(),
            at,
            outcome,
            wait_secs: self.now - at,
        });
        self.hand_outs.push(HandOut {
            user: user.to_string(),
            class: name,
            outcome,
        });
    }

    fn schedule(&mut self, at: i64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, ev)));
    }

    /// Moves virtual time to `t`, integrating idle desktops and hosts in service.
    fn advance(&mut self, t: i64) {
        let dt = t - self.now;
        if dt > 0 {
            for (s, c) in self.stats.iter_mut().zip(&self.model.counts) {
                s.idle_secs += dt * c.ready as i64;
            }
            self.host_secs += dt * self.model.hosts_in_service() as i64;
            self.now = t;
        }
    }

    fn note_peaks(&mut self) {
        let mut total = 0;
        for (s, c) in self.stats.iter_mut().zip(&self.model.counts) {
            s.peak = s.peak.max(c.total);
            total += c.total;
        }
        self.peak_total = self.peak_total.max(total);
    }

    fn internal(&mut self, ev: Ev) {
        match ev {
            Ev::CloneDone(name) => {
                if let Some((class, _)) = self.model.phase_of(&name) {
                    self.model.set_phase(&name, Phase::Booting, None, self.now);
                    // The engine's readiness rule: a guest slower than its class's timeout is
                    // given up at the timeout.
                    let boot = Duration::from_secs(self.opts.boot_secs.max(0) as u64);
                    let ev = match self.fleet.classes[class].ready.boot_outcome(boot) {
                        BootOutcome::ReadyAfter(after) => (after, Ev::BootDone(name)),
                        BootOutcome::GivenUpAfter(after) => (after, Ev::GivenUp(name)),
                    };
                    self.schedule(self.now + ev.0.as_secs() as i64, ev.1);
                }
            }
            Ev::BootDone(name) => {
                if let Some((class, _)) = self.model.phase_of(&name) {
                    self.give_ups.remove(&class);
                    let class_name = &self.fleet.classes[class].name;
                    self.model.busy.class_backoff.remove(class_name);
                    if let Some((host, began)) = self.making.remove(&name) {
                        let whole = (self.now - began) as f64;
                        self.timings.record(&host, class_name, Step::Whole, whole);
                    }
                    self.ready(class, &name);
                }
            }
            Ev::GivenUp(name) => {
                if let Some((class, _)) = self.model.phase_of(&name) {
                    self.given_up(class, &name);
                }
            }
            Ev::SeedDone {
                host,
                class,
                version,
            } => {
                self.model.add_seed_copy(&host, &class, &version);
                self.model.busy.seed_copies.remove(&(host, class, version));
            }
            Ev::HostActive(host) => {
                if let Some(h) = self.model.host_mut(&host)
                    && h.status == HostStatus::Activating
                {
                    h.status = HostStatus::Active;
                }
            }
            Ev::GraceOver(desktop, since) => {
                // Still disconnected since then (a reconnect relabels it, a logout removes it).
                let user = self
                    .model
                    .meta_of(&desktop)
                    .filter(|m| m.pool == PoolState::Disconnected && m.changed_at == since)
                    .and_then(|m| m.user.clone());
                if let (Some(user), Some((class, _))) = (user, self.model.phase_of(&desktop)) {
                    self.grace_over(class, &user, &desktop);
                }
            }
            Ev::Deadline(class, user, since) => {
                let name = &self.fleet.classes[class].name;
                if self
                    .ledger
                    .take_waiting(name, |(u, s)| *u == user && *s == since)
                    .is_some()
                {
                    self.note(class, &user, since, LoginOutcome::Refused);
                }
            }
        }
    }

    /// A desktop became ready: it joins the buffer, and the users waiting are served from it
    /// first come first served, each with the desktop the engine would hand out.
    /// A desktop not ready within its class's timeout is destroyed, and the class's next
    /// creation waits out the engine's backoff (`retry_base_secs` doubling per desktop given up
    /// in a row, up to `retry_max_secs`).
    fn given_up(&mut self, class: usize, name: &str) {
        let spec = &self.fleet.classes[class];
        self.making.remove(name);
        self.model.remove(name);
        self.ledger.failed(&spec.name);
        let failures = self.give_ups.entry(class).or_default();
        *failures += 1;
        let delay = RetryBounds::of(&self.fleet.engine).delay_secs(*failures);
        if let Ok(until) = Timestamp::from_second(self.now + delay as i64) {
            let why = spec
                .ready
                .given_up_message("the modelled boot takes longer");
            self.model
                .busy
                .class_backoff
                .insert(spec.name.clone(), (until, why));
        }
    }

    fn ready(&mut self, class: usize, name: &str) {
        self.model.set_phase(name, Phase::Ready, None, self.now);
        let spec = &self.fleet.classes[class];
        while self.ledger.waiting_count(&spec.name) > 0 {
            let Some(desktop) = self.model.ready_of(&spec.name, &spec.seed.version) else {
                break;
            };
            let Some((user, since)) = self.ledger.take_first(&spec.name) else {
                break;
            };
            self.model
                .set_phase(&desktop, Phase::Assigned, Some(&user), self.now);
            let waited = self.now - since;
            self.ledger
                .served(&spec.name, Some(Duration::from_secs(waited.max(0) as u64)));
            self.stats[class].waits.push(waited);
            self.note(class, &user, since, LoginOutcome::Waited);
            self.desktops_of.insert((class, user), desktop);
        }
    }

    fn trace_event(&mut self, e: &TraceEvent) {
        let class = e.class;
        match e.kind {
            EventKind::Login => {
                let spec = &self.fleet.classes[class];
                self.stats[class].logins += 1;
                let own = self.desktops_of.get(&(class, e.user.clone())).cloned();
                let held = own
                    .as_ref()
                    .and_then(|d| self.model.meta_of(d))
                    .is_some_and(|m| {
                        m.pool == PoolState::Disconnected
                            && ledger::holds(m, &spec.policy, self.now)
                    });
                if let Some(own) = own.filter(|_| held) {
                    self.model
                        .set_phase(&own, Phase::Assigned, Some(&e.user), self.now);
                    self.ledger.reconnected(&spec.name);
                    if let Ok(at) = Timestamp::from_second(e.at) {
                        self.demand.record_reconnect(&spec.name, &e.user, at);
                    }
                    self.note(class, &e.user, e.at, LoginOutcome::Instant);
                    return;
                }
                if let Ok(at) = Timestamp::from_second(e.at) {
                    self.demand.record_user_login(&spec.name, &e.user, at);
                }
                let ready = self.model.ready_of(&spec.name, &spec.seed.version);
                if let Ok(at) = Timestamp::from_second(e.at) {
                    self.demand.record_outcome(&spec.name, at, ready.is_some());
                }
                if let Some(name) = ready {
                    self.model
                        .set_phase(&name, Phase::Assigned, Some(&e.user), self.now);
                    self.ledger.served(&spec.name, None);
                    self.desktops_of.insert((class, e.user.clone()), name);
                    self.note(class, &e.user, e.at, LoginOutcome::Instant);
                } else if self.model.counts[class].production >= u64::from(spec.policy.cap) {
                    self.note(class, &e.user, e.at, LoginOutcome::Refused);
                } else {
                    // The ledger owes it a desktop: made even if the buffer is at its target.
                    self.ledger.wait(&spec.name, (e.user.clone(), e.at));
                    self.schedule(
                        e.at + self.opts.max_wait_secs,
                        Ev::Deadline(class, e.user.clone(), e.at),
                    );
                }
            }
            EventKind::Disconnect => {
                let policy = &self.fleet.classes[class].policy;
                let own = self.desktops_of.get(&(class, e.user.clone())).cloned();
                match own {
                    Some(desktop) if ledger::keeps_on_disconnect(policy) => {
                        self.keep_for_user(&desktop);
                    }
                    _ => self.logout(class, &e.user),
                }
            }
            EventKind::Logout => self.logout(class, &e.user),
        }
    }

    /// `user` disconnected from `class` under its grace (or logged out during a mass logout):
    /// their desktop is kept for them until the grace ends.
    fn keep_for_user(&mut self, desktop: &str) {
        let grace =
            i64::try_from(self.fleet_policy_of(desktop).disconnect_grace_secs).unwrap_or(i64::MAX);
        self.model
            .set_phase(desktop, Phase::Disconnected, None, self.now);
        self.schedule(
            self.now.saturating_add(grace),
            Ev::GraceOver(desktop.to_string(), self.now),
        );
    }

    fn fleet_policy_of(&self, desktop: &str) -> &deskpool_core::policy::Policy {
        let class = self.model.phase_of(desktop).map_or(0, |(c, _)| c);
        &self.fleet.classes[class].policy
    }

    /// The grace of `user`'s disconnected `desktop` ended: recycled as at a logout, at once
    /// (never kept again by a mass logout).
    fn grace_over(&mut self, class: usize, user: &str, desktop: &str) {
        let spec = &self.fleet.classes[class];
        if let Ok(at) = Timestamp::from_second(self.now) {
            self.demand.record_logout(&spec.name, user, at);
        }
        self.desktops_of.remove(&(class, user.to_string()));
        self.model.remove(desktop);
        self.ledger.logged_out(&spec.name, &spec.policy);
    }

    /// `user` logged out of `class`: their desktop is
    /// destroyed and, when the class recycles, a replacement owed; a login still waiting gave
    /// up. In a class with a grace the desktop is retired first and settles (the planner
    /// destroys it later), and a logout that is part of a mass logout keeps it, and the
    /// wave's settling desktops, for their users as at a disconnect.
    fn logout(&mut self, class: usize, user: &str) {
        let spec = &self.fleet.classes[class];
        let grace = ledger::keeps_on_disconnect(&spec.policy);
        let mut wave = Vec::new();
        if let Ok(at) = Timestamp::from_second(self.now) {
            let in_wave = self.demand.in_mass_logout(&spec.name, at);
            wave = self.demand.record_logout(&spec.name, user, at);
            let own = self.desktops_of.get(&(class, user.to_string())).cloned();
            let assigned = own
                .as_ref()
                .is_some_and(|d| matches!(self.model.phase_of(d), Some((_, Phase::Assigned))));
            if grace && in_wave && assigned {
                self.keep_for_user(&own.unwrap_or_default());
                self.demand.kept_for_reconnect(&spec.name, user);
                return;
            }
        }
        let key = (class, user.to_string());
        match self.desktops_of.get(&key).cloned() {
            Some(name) if grace => {
                // Still the user's mapping: a mass logout recognised now can give it back.
                self.model.set_phase(&name, Phase::Retired, None, self.now);
                self.ledger.logged_out(&spec.name, &spec.policy);
            }
            Some(name) => {
                self.desktops_of.remove(&key);
                self.model.remove(&name);
                self.ledger.logged_out(&spec.name, &spec.policy);
            }
            None => {
                if let Some((_, since)) = self.ledger.take_waiting(&spec.name, |(u, _)| *u == user)
                {
                    // Gave up before a desktop was ready.
                    self.note(class, user, since, LoginOutcome::Refused);
                }
            }
        }
        for other in wave {
            let Some(desktop) = self.desktops_of.get(&(class, other.clone())).cloned() else {
                continue;
            };
            let spec = &self.fleet.classes[class];
            let kept = self
                .model
                .meta_of(&desktop)
                .is_some_and(|m| ledger::kept_after_mass_logout(m, &spec.policy, &other, self.now));
            if kept {
                self.ledger.kept_after_logout(&spec.name, &spec.policy);
                self.demand.kept_for_reconnect(&spec.name, &other);
                self.keep_for_user(&desktop);
            }
        }
    }

    fn pass(&mut self) {
        let Ok(now) = Timestamp::from_second(self.now) else {
            return;
        };
        let active_hosts = self
            .model
            .hosts
            .iter()
            .filter(|h| h.status == HostStatus::Active)
            .count();
        for (class, counts) in self.fleet.classes.iter().zip(&self.model.counts) {
            if let Some(predictive) = class.policy.predictive
                && let Some(f) = self.forecasts.get_mut(&class.name)
            {
                let stock = counts.stock();
                *f = self.demand.plan_mean_for(
                    class,
                    predictive.service_level,
                    now,
                    active_hosts,
                    stock,
                    self.timings.time_to_ready_secs(&class.name),
                );
            }
        }
        let measured_ready = self.timings.measured_ready(self.fleet);
        self.model.busy.owed_replacements = self.ledger.owed_for_plan();
        let plan = plan::plan(&PlanInput {
            fleet: self.fleet,
            hosts: &self.model.hosts,
            desktops: &self.model.observed,
            busy: &self.model.busy,
            memory: &self.memory,
            now,
            forecasts: &self.forecasts,
            measured_ready: &measured_ready,
        });
        self.passes += 1;
        self.memory = plan.memory;
        for action in plan.actions {
            self.execute(action);
        }
        self.note_peaks();
    }

    fn execute(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Create {
                host,
                class,
                version,
            } => {
                let Some(ci) = self.model.class_of(&class) else {
                    return;
                };
                let name = self.model.create(ci, &class, &host, &version, now);
                self.making.insert(name.clone(), (host.clone(), now));
                self.ledger.created(&class);
                self.schedule(now + self.opts.clone_secs, Ev::CloneDone(name));
            }
            Action::Destroy { desktop, .. } => {
                if let Some((_, Phase::Assigned | Phase::Disconnected | Phase::Retired)) =
                    self.model.phase_of(&desktop)
                {
                    self.desktops_of.retain(|_, d| *d != desktop);
                }
                self.model.remove(&desktop);
            }
            Action::Promote { desktop, .. } => {
                if let Some((class, _)) = self.model.phase_of(&desktop) {
                    self.ready(class, &desktop);
                }
            }
            // The model never shuts an assigned desktop off, so it never restarts one.
            Action::Boot { .. } | Action::Restart { .. } | Action::DeleteVolume { .. } => {}
            Action::CopySeed {
                host,
                class,
                version,
                ..
            } => {
                if self.opts.seed_secs <= 0 {
                    self.model.add_seed_copy(&host, &class, &version);
                } else {
                    self.model.busy.seed_copies.insert((
                        host.clone(),
                        class.clone(),
                        version.clone(),
                    ));
                    self.schedule(
                        now + self.opts.seed_secs,
                        Ev::SeedDone {
                            host,
                            class,
                            version,
                        },
                    );
                }
            }
            Action::DeleteSeedCopy {
                host,
                class,
                version,
            } => {
                if let Some(h) = self.model.host_mut(&host) {
                    h.seed_copies
                        .retain(|s| !(s.class == class && s.version == version));
                }
            }
            Action::ActivateHost { host } => {
                if let Some(h) = self.model.host_mut(&host) {
                    h.status = HostStatus::Activating;
                    self.schedule(now + self.opts.activate_secs, Ev::HostActive(host));
                }
            }
            Action::DrainHost { host } => {
                if let Some(h) = self.model.host_mut(&host) {
                    h.status = HostStatus::Draining { by_admin: false };
                }
            }
            Action::UndrainHost { host } => {
                if let Some(h) = self.model.host_mut(&host) {
                    h.status = HostStatus::Active;
                }
            }
            Action::ReturnToStandby { host } => {
                if let Some(h) = self.model.host_mut(&host) {
                    h.status = HostStatus::Standby;
                    h.seed_copies.clear();
                }
            }
        }
    }

    fn report(mut self, trace: &[TraceEvent], start: i64, end: i64) -> Report {
        let mut total = ClassReport {
            name: "total".into(),
            ..ClassReport::default()
        };
        let mut all_waits = Vec::new();
        let mut idle_total = 0;
        let mut classes = Vec::new();
        for (spec, s) in self.fleet.classes.iter().zip(self.stats.iter_mut()) {
            let counts = self.ledger.stats(&spec.name);
            let mut r = ClassReport {
                name: spec.name.clone(),
                logins: s.logins,
                instant: counts.instant,
                waited: counts.served - counts.instant,
                refused: counts.refused,
                idle_desktop_hours: s.idle_secs as f64 / 3600.0,
                peak_desktops: s.peak,
                ..ClassReport::default()
            };
            all_waits.extend_from_slice(&s.waits);
            fill_waits(&mut r, &mut s.waits);
            total.logins += s.logins;
            total.instant += r.instant;
            total.waited += r.waited;
            total.refused += r.refused;
            idle_total += s.idle_secs;
            classes.push(r);
        }
        total.idle_desktop_hours = idle_total as f64 / 3600.0;
        total.peak_desktops = self.peak_total;
        fill_waits(&mut total, &mut all_waits);
        Report {
            start: fmt_time(start),
            end: fmt_time(end),
            classes,
            total,
            host_hours: self.host_secs as f64 / 3600.0,
            passes: self.passes,
            windows: windows::windows(self.fleet, trace, &self.logins),
            hours: windows::hours(self.fleet, &self.logins),
        }
    }
}
