//! The engine's decisions as a state machine without I/O: [`EngineState::apply`] takes what
//! happened (a start, a tick, a command, a finished job) and returns what to do about it (jobs
//! to start, snapshots and events to publish, answers to send). It reads no clock, holds no
//! channel and no host connection: time comes in with every input, and the driver
//! ([`crate::run`]) runs the effects.
//!
//! The state keeps a cache of what the hosts hold, filled by full reads of each host (at
//! connection and every `resync_secs`) and kept current between reads by the results of its own
//! jobs. Every cache entry remembers the sequence number of the last change the engine made to
//! it, so a host read that started before a change cannot undo it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::Timestamp;

use crate::backoffs::{Backoffs, RetryBounds};
use crate::history::{BUCKET_SECS, DemandHistory};
use crate::jobs::{HostCommandError, JobError, Outcome};
use crate::login_window::LoginWindows;
use deskpool_api::{
    ClassStatus, Command, CommandError, CommandResult, Event, EventKind, HostState, Reply,
    SeedProgress, Snapshot,
};
use deskpool_core::demand::DemandModel;
use deskpool_core::ledger::{self, Ledger};
use deskpool_core::model::{HostObservation, ObservedDesktop, PoolState, SeedCopy};
use deskpool_core::plan::{self, Action, Busy, HostStatus, HostView, PlanInput, PlanMemory};
use deskpool_core::policy::{ClassSpec, Fleet};
use deskpool_hypervisor::UnusableDesktop;
use deskpool_hypervisor::conn::DaemonIdentity;

mod commands;
#[cfg(test)]
mod demand_tests;
#[cfg(test)]
mod disconnect_tests;
mod execute;
mod hosts;
mod job;
mod leadership;
mod logins;
#[cfg(test)]
mod mass_logout_tests;
mod outcomes;
mod pass;
mod reload;
#[cfg(test)]
mod tests;

pub use job::{CopyProgress, Job, Pacing};

/// The time an input happened: monotonic (for waits and gaps) and by the wall clock (for what
/// is written on the hosts and shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Since the engine started.
    pub mono: Duration,
    pub wall: Timestamp,
}

/// A request waiting for its answer; the driver holds its reply channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A job the state asked for; its outcome comes back with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// What happened.
// Inputs are made and applied one at a time (or a few, for jobs finished together): their
// size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// The engine starts: connect to every host.
    Started,
    /// Time passed (the periodic tick, or a wake the state asked for).
    Tick,
    Command {
        id: RequestId,
        command: Command,
        actor: String,
    },
    JobDone {
        job_id: JobId,
        outcome: Outcome,
    },
    /// A job ended without an outcome (it panicked, or could not be started).
    JobLost {
        job_id: JobId,
    },
    /// The driver holds no connection to a host the state believed connected: it is down.
    ConnectionLost {
        host: String,
    },
    /// Saving the demand history failed: it is still to be saved.
    HistoryNotSaved,
    /// The configuration file was read again (SIGHUP): the fleet it describes, or why it was
    /// refused. The outcome is told in an event and returned by [`EngineState::last_reload`].
    Reload(Result<Box<Fleet>, String>),
    /// The election's latest verdict (`[ha]`): only a leader acts.
    Leadership(deskpool_core::leadership::Leadership),
    /// Stop: no new work; the state finishes once the jobs under way are done.
    Stop,
}

/// What to do.
#[derive(Debug)]
pub enum Effect {
    StartJob {
        id: JobId,
        job: Job,
    },
    /// A host's new connection (the one its `Connected` outcome came with) is in use: keep it.
    KeepConnection {
        host: String,
    },
    /// A host is down or back on standby: drop its connection.
    DropConnection {
        host: String,
    },
    /// The snapshot to publish (its `events_dropped` is the driver's count).
    Publish(Box<Snapshot>),
    Event(Event),
    Answer {
        id: RequestId,
        result: CommandResult,
    },
    SaveHistory(Box<DemandHistory>),
    /// Send a [`Input::Tick`] at this time (since start) if nothing else came before; at most
    /// one per `apply`, and it replaces any earlier one (none: no wake needed).
    WakeAt(Duration),
    /// Stopped: every job is done and the last snapshot is out.
    Stopped,
}

/// How the engine was started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// Act on nothing and refuse every write (hosts opened read-only).
    pub read_only: bool,
    /// Observe and plan, act on nothing until resumed.
    pub paused: bool,
    /// The demand history is kept (saved with [`Effect::SaveHistory`]).
    pub keep_history: bool,
    /// The clock's seconds per real second (the demo runs faster; 0 reads as 1): measured
    /// step times are kept in the clock's seconds, as the policy's `ready_secs` is.
    pub clock_speed: u32,
}

/// The shortest time between two passes.
const MIN_PASS_GAP: Duration = Duration::from_millis(10);
/// Logins per 5 minutes over the last hour, in each snapshot.
const DEMAND_BUCKETS_SHOWN: usize = 12;
/// How often a changed demand history is saved.
const HISTORY_SAVE_GAP: Duration = Duration::from_secs(60);

/// How long a login may wait, whatever it asked, while the engine first reads its hosts (until
/// then it cannot know whether the user already holds a desktop).
const FIRST_READ_GRACE: Duration = Duration::from_secs(30);

/// How long a login may wait for its user's own desktop to come free (a restart under way),
/// even when it asked not to wait for a new one.
const OWN_DESKTOP_GRACE: Duration = Duration::from_secs(30);

struct HostRuntime {
    status: HostStatus,
    /// The driver holds a connection to the host.
    connected: bool,
    /// Which daemon that connection reached.
    identity: Option<DaemonIdentity>,
    seed_copies: BTreeMap<(String, String), Tracked<SeedCopy>>,
    seed_sources: Vec<(String, String)>,
    desktop_volumes: BTreeMap<String, Tracked<()>>,
    unlabelled: Vec<String>,
    observing: bool,
    last_observed: Option<Timestamp>,
    /// The host was put in service from standby by this engine (or found in service).
    in_service_from_standby: bool,
}

impl HostRuntime {
    /// A host not connected yet: standby ones wait to be needed, the others are activating.
    fn new(standby: bool) -> Self {
        HostRuntime {
            status: if standby {
                HostStatus::Standby
            } else {
                HostStatus::Activating
            },
            connected: false,
            identity: None,
            seed_copies: BTreeMap::new(),
            seed_sources: Vec::new(),
            desktop_volumes: BTreeMap::new(),
            unlabelled: Vec::new(),
            observing: false,
            last_observed: None,
            in_service_from_standby: false,
        }
    }
}

#[derive(Clone)]
struct Tracked<T> {
    value: T,
    /// Sequence number of the engine's last change to this entry.
    touched: u64,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum JobKey {
    Desktop(String),
    Volume(String, String),
    Seed(String, String, String),
    Host(String),
}

/// (host, class, version) of a seed copy.
type SeedKey = (String, String, String);

/// A user asking for a desktop.
struct Login {
    class: String,
    user: String,
    /// Every request of this user for this class while the login is under way: all of them
    /// get the same answer (one desktop per user, however many requests race).
    replies: Vec<RequestId>,
    asked: Duration,
    /// Until when the login may wait for a desktop.
    deadline: Duration,
    /// A desktop was ready when the user asked (no wait for a new one).
    instant: bool,
    /// The user is being given back the desktop they hold (not a new login).
    given_back: bool,
    /// That desktop is one they disconnected from: their reconnect counts as an instant login.
    reconnect: bool,
}

/// What became of a login that was tried.
enum Tried {
    /// A desktop is being labelled for it (or its own checked); the job answers.
    Underway,
    /// No desktop is ready for it.
    NoDesktop(Login),
    /// The user's own desktop is busy (being restarted, say): it waits for that one.
    OwnBusy(Login),
}

/// What ends a user's use of a desktop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The user logged out: counted in the demand history, and a class that recycles is owed a
    /// replacement. In a class with a grace the retired desktop keeps its user's name and
    /// settles (`ledger::settling`): a mass logout recognised meanwhile keeps it for them.
    Logout,
    /// The user logged out while a mass logout of their class was under way: counted as a
    /// logout, and the desktop kept for them as at a disconnect.
    MassLogout,
    /// A settling desktop of a logout that turned out to be part of a mass logout: kept for
    /// its user as at a disconnect (its logout was already counted).
    KeptAfterMassLogout,
    /// A disconnected user's grace ran out: as a logout, but never kept again.
    GraceOver,
    /// The user disconnected: the desktop is kept for them through the class's grace.
    Disconnect,
    /// An admin recycled the desktop.
    Recycle,
}

/// A logout, disconnect or recycle whose label is being written; answered once it is on the
/// host.
struct PendingRelease {
    replies: Vec<RequestId>,
    ending: Ending,
    class: String,
    /// The desktop's user (the demand model learns who is logged in).
    user: String,
}

pub struct EngineState {
    fleet: Fleet,
    classes: Arc<Vec<ClassSpec>>,
    read_only: bool,
    paused: bool,
    /// The time of the input being applied.
    now: Now,
    /// What the input being applied asks for, in order.
    effects: Vec<Effect>,
    hosts: BTreeMap<String, HostRuntime>,
    desktops: BTreeMap<String, Tracked<ObservedDesktop>>,
    /// Desktops the engine removed, with the sequence number of the removal.
    removed: HashMap<String, u64>,
    seq: u64,
    /// The key of every job under way, by id (so even a job that was lost is accounted for).
    job_keys: HashMap<JobId, JobKey>,
    in_flight: HashSet<JobKey>,
    last_job_id: u64,
    desktop_retry: Backoffs<String>,
    class_backoff: Backoffs<String>,
    seed_retry: Backoffs<SeedKey>,
    /// Hosts down, until their next connection attempt.
    host_retry: Backoffs<String>,
    floor_raises: HashMap<String, (u32, Timestamp)>,
    memory: PlanMemory,
    /// Bumped when a class's policy changes, so its pacing starts afresh.
    pacing_generation: HashMap<String, u64>,
    seed_progress: HashMap<SeedKey, CopyProgress>,
    /// Logins whose desktop is being labelled (or checked, for its own user), by desktop.
    pending_assign: HashMap<String, Login>,
    /// Releases and recycles whose label is being written, by desktop.
    pending_release: HashMap<String, PendingRelease>,
    /// Hosts whose first connection (or probe) has not answered yet: until none is left, the
    /// engine does not know which desktops exist, and serves no login and no release (for at
    /// most [`FIRST_READ_GRACE`] after the start; a host silent that long is treated as down).
    unread_hosts: HashSet<String>,
    /// Logins waiting for a desktop of their class (oldest first), replacements owed, and
    /// logins served, waited and refused, per class.
    ledger: Ledger<Login>,
    /// Logins and logouts per class.
    history: DemandHistory,
    /// What predictive classes expect, learnt from the history and every login since.
    demand: DemandModel,
    keep_history: bool,
    history_unsaved: bool,
    history_saved: Duration,
    passes: u64,
    /// Something a user asked for changed (a command, a login served): plan and publish now.
    publish_now: bool,
    /// Answers held until the snapshot that shows their effect is published.
    answers: Vec<(RequestId, CommandResult)>,
    last_resync: Option<Duration>,
    last_pass: Option<Duration>,
    /// When the next pass is due, when a pass was held back by [`MIN_PASS_GAP`].
    pass_due: Option<Duration>,
    stopping: bool,
    stopped: bool,
    name_counter: u64,
    /// Each class's logins over the last hour.
    login_windows: LoginWindows,
    /// Classes whose seed volume was missing at the last pass (its event is raised once).
    seeds_missing: HashSet<String>,
    /// Desktops in creation whose guest is awaited, with when they were booted (or first
    /// seen running, for one booted before this engine started).
    booted_at: HashMap<String, Duration>,
    /// How long making desktops took, per host and class (shown, and the planner's look-ahead).
    timings: deskpool_core::timings::StepTimings,
    /// Clone + boot seconds of desktops whose guest is not ready yet, for their whole time.
    made_secs: HashMap<String, f64>,
    /// [`Settings::clock_speed`], at least 1.
    clock_speed: f64,
    /// Desktops whose guest did not answer yet, with when to probe them again.
    probe_due: HashMap<String, Duration>,
    /// Where users reach each desktop, as read when it became ready or was handed out.
    reach: HashMap<String, crate::jobs::Reach>,
    /// What the last reload of the configuration did, until the driver takes it.
    last_reload: Option<Result<String, String>>,
    /// This controller's place in the election (alone without `[ha]`).
    leadership: deskpool_core::leadership::Leadership,
    /// A newer leader's term seen on a desktop while this controller thought it led.
    stale_term: Option<u64>,
}

impl EngineState {
    /// The state of an engine starting at `now` on `fleet`, with the demand `history` kept so
    /// far.
    pub fn new(fleet: Fleet, settings: Settings, history: DemandHistory, now: Now) -> Self {
        let hosts = fleet
            .hosts
            .iter()
            .map(|h| (h.name.clone(), HostRuntime::new(h.standby)))
            .collect();
        let demand = learn_from(&history, &fleet);
        let unread_hosts = fleet.hosts.iter().map(|h| h.name.clone()).collect();
        EngineState {
            demand,
            history,
            keep_history: settings.keep_history,
            history_unsaved: false,
            history_saved: now.mono,
            classes: Arc::new(fleet.classes.clone()),
            fleet,
            read_only: settings.read_only,
            paused: settings.paused || settings.read_only,
            now,
            effects: Vec::new(),
            hosts,
            desktops: BTreeMap::new(),
            removed: HashMap::new(),
            seq: 0,
            job_keys: HashMap::new(),
            in_flight: HashSet::new(),
            last_job_id: 0,
            desktop_retry: Backoffs::default(),
            class_backoff: Backoffs::default(),
            seed_retry: Backoffs::default(),
            host_retry: Backoffs::default(),
            floor_raises: HashMap::new(),
            memory: PlanMemory::default(),
            pacing_generation: HashMap::new(),
            seed_progress: HashMap::new(),
            pending_assign: HashMap::new(),
            pending_release: HashMap::new(),
            unread_hosts,
            ledger: Ledger::default(),
            passes: 0,
            publish_now: false,
            answers: Vec::new(),
            last_resync: None,
            last_pass: None,
            pass_due: None,
            stopping: false,
            stopped: false,
            name_counter: 0,
            login_windows: LoginWindows::default(),
            seeds_missing: HashSet::new(),
            booted_at: HashMap::new(),
            timings: Default::default(),
            made_secs: HashMap::new(),
            clock_speed: f64::from(settings.clock_speed.max(1)),
            probe_due: HashMap::new(),
            reach: HashMap::new(),
            last_reload: None,
            leadership: Default::default(),
            stale_term: None,
        }
    }

    /// Applies one input that happened at `now`.
    pub fn apply(&mut self, now: Now, input: Input) -> Vec<Effect> {
        self.apply_all(now, [input])
    }

    /// Applies inputs that happened together at `now` (jobs finished at once), then plans
    /// once for all of them.
    pub fn apply_all(&mut self, now: Now, inputs: impl IntoIterator<Item = Input>) -> Vec<Effect> {
        self.now = now;
        for input in inputs {
            self.dispatch(input);
        }
        self.settle();
        std::mem::take(&mut self.effects)
    }

    fn dispatch(&mut self, input: Input) {
        if self.stopped {
            return;
        }
        match input {
            Input::Started => self.connect_all(),
            Input::Tick => {}
            Input::Command { id, command, actor } => self.command(id, command, &actor),
            Input::JobDone { job_id, outcome } => self.job_done(job_id, outcome),
            Input::JobLost { job_id } => self.job_lost(job_id),
            Input::ConnectionLost { host } => {
                self.host_failed(&host, "its connection was closed".into())
            }
            Input::HistoryNotSaved => self.history_unsaved = true,
            Input::Reload(config) => {
                let outcome = self.reload(config);
                self.last_reload = Some(outcome);
            }
            Input::Leadership(l) => self.leadership_changed(l),
            Input::Stop => self.stopping = true,
        }
    }

    /// After the inputs: a pass (at most one per [`MIN_PASS_GAP`], unless a user is waiting
    /// for its result), or the end once stopping and no job is left.
    fn settle(&mut self) {
        if self.stopped {
            return;
        }
        if self.stopping {
            if self.job_keys.is_empty() {
                self.shut_down();
            }
            return;
        }
        // A burst of finished jobs is planned together instead of once per job (a pass reads
        // every desktop). Commands and logins are answered and shown at once; only the bursts
        // of finished provisioning jobs wait for the gap.
        let now = self.now.mono;
        let earliest = self.last_pass.map_or(now, |t| t + MIN_PASS_GAP);
        if earliest <= now || std::mem::take(&mut self.publish_now) {
            self.pass();
            self.send_answers();
            self.last_pass = Some(now);
            self.pass_due = None;
        } else {
            self.pass_due = Some(earliest);
        }
        if let Some(wake) = self.next_wake() {
            self.effects.push(Effect::WakeAt(wake));
        }
    }

    fn shut_down(&mut self) {
        self.save_history(true);
        self.publish(&[]);
        self.send_answers();
        self.stopped = true;
        self.effects.push(Effect::Stopped);
    }

    /// The earliest time something is due: a held-back pass, a waiting login's deadline, or
    /// the next probe of a guest that did not answer yet.
    fn next_wake(&self) -> Option<Duration> {
        let deadline = self.ledger.waiting().map(|(_, l)| l.deadline);
        // A probe past due waits for a pass that may order it (none while paused): waking
        // for it again at once would spin.
        let probes = self
            .probe_due
            .values()
            .copied()
            .filter(|t| *t > self.now.mono);
        self.pass_due
            .into_iter()
            .chain(deadline)
            .chain(probes)
            .min()
    }

    /// Seconds between two periodic ticks.
    pub fn tick_secs(&self) -> u64 {
        self.fleet.engine.tick_secs
    }

    /// Whether the state has stopped (every later input is ignored).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    fn now(&self) -> Timestamp {
        self.now.wall
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn emit(
        &mut self,
        kind: EventKind,
        class: Option<&str>,
        host: Option<&str>,
        desktop: Option<&str>,
        message: String,
    ) {
        match kind {
            EventKind::Failed
            | EventKind::HostDown
            | EventKind::LoginRefused
            | EventKind::SeedMissing
            | EventKind::ConfigRefused => {
                tracing::warn!(?kind, class, host, desktop, "{message}")
            }
            _ => tracing::info!(?kind, class, host, desktop, "{message}"),
        }
        let event = Event {
            at: self.now(),
            kind,
            class: class.map(str::to_string),
            host: host.map(str::to_string),
            desktop: desktop.map(str::to_string),
            message,
        };
        self.effects.push(Effect::Event(event));
    }

    /// Starts a job, unless one with the same key is under way (two jobs on one desktop, seed
    /// copy or host would race; the planner asks again on a later pass if still needed).
    fn spawn(&mut self, key: JobKey, job: Job) {
        if !self.in_flight.insert(key.clone()) {
            tracing::debug!(?key, "job already under way; not started twice");
            return;
        }
        self.last_job_id += 1;
        let id = JobId(self.last_job_id);
        self.job_keys.insert(id, key);
        self.effects.push(Effect::StartJob { id, job });
    }

    /// Whether the driver holds a connection to `host`.
    fn connected(&self, host: &str) -> bool {
        self.hosts.get(host).is_some_and(|rt| rt.connected)
    }
}

fn desktop_name(class: &str, id: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = [b'0'; 10];
    let mut n = id;
    for d in digits.iter_mut().rev() {
        *d = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    format!("dp-{class}-{}", String::from_utf8_lossy(&digits))
}

/// A demand model that has seen every login of the history, in order.
fn learn_from(history: &DemandHistory, fleet: &Fleet) -> DemandModel {
    let mut model = DemandModel::with_calendar(fleet);
    for class in &fleet.classes {
        for bucket in history.buckets(&class.name) {
            // Spread a bucket's logins evenly across it.
            for i in 0..i64::from(bucket.logins) {
                let at = bucket.start + i * BUCKET_SECS / i64::from(bucket.logins);
                if let Ok(at) = Timestamp::from_second(at) {
                    model.record_login(&class.name, at);
                }
            }
        }
    }
    model
}
