//! The reconcile loop: observe → plan → execute, on a tick, on finished jobs and on commands.
//!
//! The engine keeps a cache of what the hosts hold, filled by full reads of each host (at
//! connection and every `resync_secs`) and kept current between reads by the results of its own
//! jobs. Every cache entry remembers the sequence number of the last change the engine made to
//! it, so a host read that started before a change cannot undo it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::backoffs::{Backoffs, RetryBounds};
use super::history::{BUCKET_SECS, DemandHistory};
use super::jobs::{self, NewDesktop, Outcome, Pacer, SeedJob};
use deskpool_api::{
    ClassStatus, Command, CommandError, CommandResult, EngineHandle, Event, EventKind, HostState,
    Reply, Request, SeedProgress, Snapshot,
};
use deskpool_core::clock::Clock;
use deskpool_core::demand::DemandModel;
use deskpool_core::ledger::{self, Ledger};
use deskpool_core::model::{HostObservation, ObservedDesktop, PoolState, SeedCopy};
use deskpool_core::plan::{self, Action, Busy, HostStatus, HostView, PlanInput, PlanMemory};
use deskpool_core::policy::{ClassSpec, Fleet, LogoutAction};
use deskpool_hypervisor::HostConnection;

mod commands;
mod execute;
mod hosts;
mod logins;
mod outcomes;
mod pass;

/// Host connections, shared so that a new engine can take over an old one's connections (the
/// libvirt test driver keeps a file-backed host's state only while a connection is open).
#[derive(Clone, Default)]
pub struct Connections(Arc<std::sync::Mutex<HashMap<String, HostConnection>>>);

impl Connections {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn get(&self, host: &str) -> Option<HostConnection> {
        self.lock().get(host).cloned()
    }
    fn put(&self, host: &str, conn: HostConnection) {
        self.lock().insert(host.to_string(), conn);
    }
    fn remove(&self, host: &str) {
        self.lock().remove(host);
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostConnection>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct EngineOptions {
    pub clock: Arc<dyn Clock>,
    /// Open hosts read-only and take no action (the console's `--read-only`).
    pub read_only: bool,
    /// Start paused: observe and plan, act on nothing until resumed.
    pub paused: bool,
    pub connections: Connections,
    /// Where the demand history is kept across restarts (`None`: not kept).
    pub state_dir: Option<std::path::PathBuf>,
}

pub fn start(fleet: Fleet, options: EngineOptions) -> EngineHandle {
    let (snapshot_tx, snapshot) = watch::channel(Arc::new(Snapshot::default()));
    let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
    let (commands, commands_rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = oneshot::channel();
    let engine = Engine::new(fleet, options, snapshot_tx, events_tx);
    let task = tokio::spawn(engine.run(commands_rx, stop_rx));
    EngineHandle::local(snapshot, events, commands, task, stop_tx)
}

const EVENT_BUFFER: usize = 1024;
/// The shortest time between two passes.
const MIN_PASS_GAP: Duration = Duration::from_millis(10);
/// Logins per 5 minutes over the last hour, in each snapshot.
const DEMAND_BUCKETS_SHOWN: usize = 12;
/// How long a host's activation command may take.
const ACTIVATION_LIMIT: Duration = Duration::from_secs(300);

struct HostRuntime {
    status: HostStatus,
    conn: Option<HostConnection>,
    seed_copies: BTreeMap<(String, String), Tracked<SeedCopy>>,
    seed_sources: Vec<(String, String)>,
    desktop_volumes: BTreeMap<String, Tracked<()>>,
    unlabelled: Vec<String>,
    observing: bool,
    last_observed: Option<Timestamp>,
    /// The host was put in service from standby by this engine (or found in service).
    in_service_from_standby: bool,
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
/// Bytes done and bytes in all, written by the copying thread.
type CopyProgress = (Arc<AtomicU64>, Arc<AtomicU64>);

/// A user asking for a desktop.
struct Login {
    class: String,
    user: String,
    /// Every request of this user for this class while the login is under way: all of them
    /// get the same answer (one desktop per user, however many requests race).
    replies: Vec<oneshot::Sender<CommandResult>>,
    asked: tokio::time::Instant,
    /// Until when the login may wait for a desktop.
    deadline: tokio::time::Instant,
    /// A desktop was ready when the user asked (no wait for a new one).
    instant: bool,
    /// The user is being given back the desktop they hold (not a new login).
    given_back: bool,
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

/// A logout or recycle whose label is being written; answered once it is on the host.
struct PendingRelease {
    replies: Vec<oneshot::Sender<CommandResult>>,
    /// A user's logout (counted in the demand history; may owe a replacement).
    logout: bool,
    class: String,
}

/// How long a login may wait, whatever it asked, while the engine first reads its hosts (until
/// then it cannot know whether the user already holds a desktop).
const FIRST_READ_GRACE: Duration = Duration::from_secs(30);

/// How long a login may wait for its user's own desktop to come free (a restart under way),
/// even when it asked not to wait for a new one.
const OWN_DESKTOP_GRACE: Duration = Duration::from_secs(30);

struct Engine {
    fleet: Fleet,
    classes: Arc<Vec<ClassSpec>>,
    clock: Arc<dyn Clock>,
    read_only: bool,
    paused: bool,
    connections: Connections,
    hosts: BTreeMap<String, HostRuntime>,
    desktops: BTreeMap<String, Tracked<ObservedDesktop>>,
    /// Desktops the engine removed, with the sequence number of the removal.
    removed: HashMap<String, u64>,
    seq: u64,
    jobs: JoinSet<Outcome>,
    /// The key of every job under way, by task id (so even a job that panicked is accounted for).
    job_keys: HashMap<tokio::task::Id, JobKey>,
    in_flight: HashSet<JobKey>,
    desktop_retry: Backoffs<String>,
    class_backoff: Backoffs<String>,
    seed_retry: Backoffs<SeedKey>,
    /// Hosts down, until their next connection attempt.
    host_retry: Backoffs<String>,
    floor_raises: HashMap<String, (u32, Timestamp)>,
    memory: PlanMemory,
    pacers: HashMap<(String, String), Pacer>,
    seed_progress: HashMap<SeedKey, CopyProgress>,
    /// Logins whose desktop is being labelled (or checked, for its own user), by desktop.
    pending_assign: HashMap<String, Login>,
    /// Releases and recycles whose label is being written, by desktop.
    pending_release: HashMap<String, PendingRelease>,
    /// Hosts whose first connection (or probe) has not answered yet: until none is left, the
    /// engine does not know which desktops exist, and serves no login and no release.
    unread_hosts: HashSet<String>,
    /// When the engine started (a host that has not answered within [`FIRST_READ_GRACE`] no
    /// longer holds logins back: it is treated as down).
    started: tokio::time::Instant,
    /// Logins waiting for a desktop of their class (oldest first), replacements owed, and
    /// logins served, waited and refused, per class.
    ledger: Ledger<Login>,
    /// Logins and logouts per class, and where they are saved.
    history: DemandHistory,
    /// What predictive classes expect, learnt from the history and every login since.
    demand: DemandModel,
    history_path: Option<std::path::PathBuf>,
    history_unsaved: bool,
    history_saved: tokio::time::Instant,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
    events_tx: mpsc::Sender<Event>,
    events_dropped: u64,
    passes: u64,
    /// Something a user asked for changed (a command, a login served): plan and publish now.
    publish_now: bool,
    /// Answers held until the snapshot that shows their effect is published.
    answers: Vec<(oneshot::Sender<CommandResult>, CommandResult)>,
    last_resync: Option<tokio::time::Instant>,
    name_counter: u64,
}

impl Engine {
    fn new(
        fleet: Fleet,
        options: EngineOptions,
        snapshot_tx: watch::Sender<Arc<Snapshot>>,
        events_tx: mpsc::Sender<Event>,
    ) -> Self {
        let hosts = fleet
            .hosts
            .iter()
            .map(|h| {
                let runtime = HostRuntime {
                    status: if h.standby {
                        HostStatus::Standby
                    } else {
                        HostStatus::Activating
                    },
                    conn: None,
                    seed_copies: BTreeMap::new(),
                    seed_sources: Vec::new(),
                    desktop_volumes: BTreeMap::new(),
                    unlabelled: Vec::new(),
                    observing: false,
                    last_observed: None,
                    in_service_from_standby: false,
                };
                (h.name.clone(), runtime)
            })
            .collect();
        let history_path = options.state_dir.as_ref().map(|d| d.join("demand.json"));
        let history = match history_path.as_deref().map(DemandHistory::load) {
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                // A damaged history only costs the past; the engine carries on without it.
                tracing::warn!("demand history not loaded, starting empty: {e}");
                DemandHistory::default()
            }
            None => DemandHistory::default(),
        };
        let demand = learn_from(&history, &fleet);
        let unread_hosts = fleet.hosts.iter().map(|h| h.name.clone()).collect();
        Engine {
            demand,
            history,
            history_path,
            history_unsaved: false,
            history_saved: tokio::time::Instant::now(),
            classes: Arc::new(fleet.classes.clone()),
            fleet,
            clock: options.clock,
            read_only: options.read_only,
            paused: options.paused || options.read_only,
            connections: options.connections,
            hosts,
            desktops: BTreeMap::new(),
            removed: HashMap::new(),
            seq: 0,
            jobs: JoinSet::new(),
            job_keys: HashMap::new(),
            in_flight: HashSet::new(),
            desktop_retry: Backoffs::default(),
            class_backoff: Backoffs::default(),
            seed_retry: Backoffs::default(),
            host_retry: Backoffs::default(),
            floor_raises: HashMap::new(),
            memory: PlanMemory::default(),
            pacers: HashMap::new(),
            seed_progress: HashMap::new(),
            pending_assign: HashMap::new(),
            pending_release: HashMap::new(),
            unread_hosts,
            started: tokio::time::Instant::now(),
            ledger: Ledger::default(),
            snapshot_tx,
            events_tx,
            events_dropped: 0,
            passes: 0,
            publish_now: false,
            answers: Vec::new(),
            last_resync: None,
            name_counter: 0,
        }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Request>, mut stop: oneshot::Receiver<()>) {
        self.connect_all();
        let mut tick =
            tokio::time::interval(Duration::from_secs(self.fleet.engine.tick_secs.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        let mut last_pass: Option<tokio::time::Instant> = None;
        let mut pass_due: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick(), if !stopping => {}
                _ = sleep_until_or_never(pass_due) => {}
                _ = &mut stop, if !stopping => {
                    stopping = true;
                }
                request = commands.recv(), if !stopping => {
                    match request {
                        Some(request) => self.command(request),
                        None => stopping = true,
                    }
                }
                _ = sleep_until_or_never(self.next_deadline()) => {}
                Some(done) = self.jobs.join_next_with_id() => {
                    self.finish(done);
                    // Take every other finished job before planning again.
                    while let Some(done) = self.jobs.try_join_next_with_id() {
                        self.finish(done);
                    }
                }
            }
            if stopping {
                if self.jobs.is_empty() {
                    break;
                }
                continue;
            }
            // At most one pass per MIN_PASS_GAP: a burst of finished jobs is planned together
            // instead of once per job (a pass reads every desktop).
            // Commands and logins are answered and shown at once; only the bursts of finished
            // provisioning jobs wait for the gap.
            let now = tokio::time::Instant::now();
            let earliest = last_pass.map_or(now, |t| t + MIN_PASS_GAP);
            if earliest <= now || std::mem::take(&mut self.publish_now) {
                self.pass();
                self.send_answers();
                last_pass = Some(now);
                pass_due = None;
            } else {
                pass_due = Some(earliest);
            }
        }
        self.save_history(true);
        self.publish(&[]);
        self.send_answers();
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
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
            EventKind::Failed | EventKind::HostDown => {
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
        if self.events_tx.try_send(event).is_err() {
            self.events_dropped += 1;
        }
    }

    /// Starts a job, unless one with the same key is under way (two jobs on one desktop, seed
    /// copy or host would race; the planner asks again on a later pass if still needed).
    fn spawn(
        &mut self,
        key: JobKey,
        job: impl std::future::Future<Output = Outcome> + Send + 'static,
    ) {
        if !self.in_flight.insert(key.clone()) {
            tracing::debug!(?key, "job already under way; not started twice");
            return;
        }
        let handle = self.jobs.spawn(job);
        self.job_keys.insert(handle.id(), key);
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
    let mut model = DemandModel::new(fleet.engine.timezone.clone());
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

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_or_never(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn desktop_names_are_short_and_sort_by_time() {
        let a = super::desktop_name("office", 1_795_549_401_000_000);
        let b = super::desktop_name("office", 1_795_549_401_000_001);
        assert_eq!(a.len(), "dp-office-".len() + 10);
        assert!(a < b, "{a} < {b}");
        assert!(deskpool_core::policy::names::check_name(&a).is_ok());
    }
}
