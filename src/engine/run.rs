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

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::api::{
    ClassStatus, Command, CommandError, CommandResult, Event, EventKind, HostState, Reply, Request,
    SeedProgress, Snapshot,
};
use super::clock::Clock;
use super::demand::DemandModel;
use super::history::{BUCKET_SECS, DemandHistory};
use super::jobs::{self, NewDesktop, Outcome, Pacer, SeedJob};
use super::ledger::{self, Ledger};
use super::plan::{self, Action, Busy, HostStatus, HostView, PlanInput, PlanMemory};
use crate::hypervisor::HostConnection;
use crate::hypervisor::model::{HostObservation, ObservedDesktop, PoolState, SeedCopy};
use crate::policy::{ClassSpec, Fleet, LogoutAction};

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

/// The console's and the CLI's handle on a running engine: one started in this process
/// ([`start`]), or one in another process reached through its broker socket
/// (`broker::client::attach`, built with [`EngineHandle::from_parts`]).
pub struct EngineHandle {
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub events: mpsc::Receiver<Event>,
    commands: mpsc::Sender<Request>,
    task: tokio::task::JoinHandle<()>,
    /// `None` for an attached engine: shutting the handle down stops only the local task.
    shutdown: Option<oneshot::Sender<()>>,
}

/// A cloneable way to send commands to the engine (from tasks of the console).
#[derive(Clone)]
pub struct Commander(mpsc::Sender<Request>);

impl Commander {
    /// Sends a command and waits for its result.
    pub async fn send(&self, command: Command, actor: &str) -> Result<Reply, String> {
        self.request(command, actor).await.map_err(|e| e.message)
    }

    /// Sends a command and waits for its result, with the kind of a refusal.
    pub async fn request(&self, command: Command, actor: &str) -> CommandResult {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(Request {
                command,
                actor: actor.to_string(),
                reply,
            })
            .await
            .map_err(|_| CommandError::unavailable("the engine has stopped"))?;
        answer
            .await
            .map_err(|_| CommandError::unavailable("the engine stopped before answering"))?
    }
}

impl EngineHandle {
    /// A handle on an engine that runs elsewhere: `snapshot`, `events` and `commands` are fed
    /// and served by `task` (which owns whatever pumps them). [`EngineHandle::shutdown`] then
    /// stops `task` only.
    pub fn from_parts(
        snapshot: watch::Receiver<Arc<Snapshot>>,
        events: mpsc::Receiver<Event>,
        commands: mpsc::Sender<Request>,
        task: tokio::task::JoinHandle<()>,
    ) -> EngineHandle {
        EngineHandle {
            snapshot,
            events,
            commands,
            task,
            shutdown: None,
        }
    }

    /// Sends a command and waits for its result.
    pub async fn send(&self, command: Command, actor: &str) -> Result<Reply, String> {
        self.commander().send(command, actor).await
    }

    pub fn commander(&self) -> Commander {
        Commander(self.commands.clone())
    }

    /// Waits until a published snapshot satisfies `ready`, for at most `limit`.
    pub async fn wait_for(
        &mut self,
        limit: Duration,
        mut ready: impl FnMut(&Snapshot) -> bool,
    ) -> Result<Arc<Snapshot>, Arc<Snapshot>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let current = self.snapshot.borrow_and_update().clone();
            if ready(&current) {
                return Ok(current);
            }
            match tokio::time::timeout_at(deadline, self.snapshot.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(self.snapshot.borrow().clone()),
            }
        }
    }

    /// Stops the engine at a clean point: jobs under way finish, nothing new starts. For an
    /// attached engine, stops the local pumps and leaves the engine running.
    pub async fn shutdown(mut self) {
        match self.shutdown.take() {
            Some(stop) => {
                let _ = stop.send(());
            }
            None => self.task.abort(),
        }
        let _ = (&mut self.task).await;
    }

    /// Kills the engine task where it stands (tests of interrupted runs).
    pub fn abort(self) {
        self.task.abort();
    }
}

pub fn start(fleet: Fleet, options: EngineOptions) -> EngineHandle {
    let (snapshot_tx, snapshot) = watch::channel(Arc::new(Snapshot::default()));
    let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
    let (commands, commands_rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = oneshot::channel();
    let engine = Engine::new(fleet, options, snapshot_tx, events_tx);
    let task = tokio::spawn(engine.run(commands_rx, stop_rx));
    EngineHandle {
        snapshot,
        events,
        commands,
        task,
        shutdown: Some(stop_tx),
    }
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
    /// Failures in a row (connection or observation), for the backoff.
    failures: u32,
    retry_at: Option<Timestamp>,
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

struct Backoff {
    until: Timestamp,
    failures: u32,
    reason: String,
}

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
    desktop_retry: HashMap<String, Backoff>,
    class_backoff: HashMap<String, Backoff>,
    seed_retry: HashMap<(String, String, String), Backoff>,
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
                    failures: 0,
                    retry_at: None,
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
            desktop_retry: HashMap::new(),
            class_backoff: HashMap::new(),
            seed_retry: HashMap::new(),
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

    // ---- hosts -------------------------------------------------------------------------

    fn connect_all(&mut self) {
        let names: Vec<(String, bool)> = self
            .fleet
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.standby))
            .collect();
        for (name, standby) in names {
            // Standby hosts are probed without their activation command: one found holding
            // deskpool desktops was in service before a restart and stays so.
            self.connect(&name, standby);
        }
    }

    fn connect(&mut self, host: &str, probe: bool) {
        let Some(spec) = self.fleet.host(host).cloned() else {
            return;
        };
        if let Some(conn) = self.connections.get(host) {
            // Reuse a connection handed over by a previous engine: read the host again.
            let seq = self.seq;
            let pool = self.fleet.engine.creation_pool.clone();
            let classes = self.classes.clone();
            let (h, c) = (host.to_string(), conn.clone());
            self.spawn(JobKey::Host(host.to_string()), async move {
                match jobs::observe(h.clone(), c.clone(), pool, classes, seq).await {
                    Outcome::Observed {
                        host, observation, ..
                    } => Outcome::Connected {
                        host,
                        conn: c,
                        observation,
                        probe,
                    },
                    Outcome::ObserveFailed { host, reason } => Outcome::ConnectFailed {
                        host,
                        reason,
                        probe,
                    },
                    other => other,
                }
            });
            return;
        }
        let path = spec
            .creation_pool_path
            .clone()
            .unwrap_or_else(|| self.fleet.engine.creation_pool_path.clone());
        let job = jobs::connect(
            host.to_string(),
            spec.uri.clone(),
            self.read_only,
            (self.fleet.engine.creation_pool.clone(), path),
            self.classes.clone(),
            probe,
        );
        self.spawn(JobKey::Host(host.to_string()), job);
    }

    fn host_failed(&mut self, host: &str, reason: String) {
        let now = self.now();
        let engine = &self.fleet.engine;
        let (base, max) = (engine.retry_base_secs, engine.retry_max_secs);
        let Some(rt) = self.hosts.get_mut(host) else {
            return;
        };
        rt.failures += 1;
        let delay = backoff_secs(base, max, rt.failures);
        rt.retry_at = Some(now + SignedDuration::from_secs(delay as i64));
        rt.conn = None;
        let was_down = matches!(rt.status, HostStatus::Down { .. });
        rt.status = HostStatus::Down {
            reason: reason.clone(),
        };
        self.connections.remove(host);
        if !was_down {
            self.emit(
                EventKind::HostDown,
                None,
                Some(host),
                None,
                format!("{reason}; retrying in {delay}s"),
            );
        }
    }

    fn host_connected(
        &mut self,
        host: &str,
        conn: HostConnection,
        observation: HostObservation,
        probe: bool,
    ) {
        // Two entries reaching one daemon would each see, and clean, the other's desktops and
        // volumes: the entry connected first keeps the daemon; this one is refused, and nothing
        // it read is merged.
        if let Some(identity) = conn.identity() {
            let same = self.hosts.iter().find(|(name, rt)| {
                name.as_str() != host
                    && rt
                        .conn
                        .as_ref()
                        .and_then(HostConnection::identity)
                        .is_some_and(|other| other.same_daemon(&identity))
            });
            if let Some(other) = same.map(|(name, _)| name.clone()) {
                let reason = format!("same libvirt daemon as host {other} ({identity})");
                self.host_failed(host, reason);
                return;
            }
        }
        let spec_standby = self.fleet.host(host).is_some_and(|h| h.standby);
        let holds_desktops = !observation.desktops.is_empty();
        if probe && spec_standby && !holds_desktops {
            // A standby host nobody uses: leave it alone until it is needed.
            if let Some(rt) = self.hosts.get_mut(host) {
                rt.status = HostStatus::Standby;
            }
            return;
        }
        self.connections.put(host, conn.clone());
        let was_down = self
            .hosts
            .get(host)
            .is_some_and(|rt| matches!(rt.status, HostStatus::Down { .. }));
        let seq = self.seq;
        if let Some(rt) = self.hosts.get_mut(host) {
            rt.conn = Some(conn);
            rt.failures = 0;
            rt.retry_at = None;
            if !matches!(rt.status, HostStatus::Draining { .. }) {
                rt.status = HostStatus::Active;
            }
            if spec_standby {
                rt.in_service_from_standby = true;
            }
        }
        self.apply_observation(host, observation, seq);
        if was_down {
            self.emit(
                EventKind::HostUp,
                None,
                Some(host),
                None,
                "reachable again".into(),
            );
        }
    }

    /// Merges a full read of `host` into the cache, keeping what the engine changed after the
    /// read began (`started_seq`).
    fn apply_observation(&mut self, host: &str, observation: HostObservation, started_seq: u64) {
        let now = self.now();
        let fresh = |touched: u64| touched > started_seq;
        let seen: HashMap<String, ObservedDesktop> = observation
            .desktops
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
        let cached: Vec<String> = self
            .desktops
            .iter()
            .filter(|(_, d)| d.value.host == host)
            .map(|(n, _)| n.clone())
            .collect();
        for name in cached {
            let busy = self.in_flight.contains(&JobKey::Desktop(name.clone()));
            let touched = self.desktops.get(&name).map_or(0, |d| d.touched);
            if busy || fresh(touched) {
                continue;
            }
            if !seen.contains_key(&name) {
                // Gone behind our back (undefined with virsh, say): the planner replaces it.
                self.desktops.remove(&name);
                self.emit(
                    EventKind::Destroyed,
                    None,
                    Some(host),
                    Some(&name),
                    "disappeared from the host".into(),
                );
            }
        }
        for (name, desktop) in seen {
            if self.removed.get(&name).is_some_and(|&s| s > started_seq) {
                continue;
            }
            let keep = self.desktops.get(&name).is_some_and(|d| {
                fresh(d.touched) || self.in_flight.contains(&JobKey::Desktop(name.clone()))
            });
            if !keep {
                self.desktops.insert(
                    name,
                    Tracked {
                        value: desktop,
                        touched: started_seq,
                    },
                );
            }
        }
        let Some(rt) = self.hosts.get_mut(host) else {
            return;
        };
        let copies: BTreeMap<(String, String), SeedCopy> = observation
            .seed_copies
            .into_iter()
            .map(|c| ((c.class.clone(), c.version.clone()), c))
            .collect();
        rt.seed_copies
            .retain(|k, v| fresh(v.touched) || copies.contains_key(k));
        for (k, c) in copies {
            if !rt.seed_copies.get(&k).is_some_and(|v| fresh(v.touched)) {
                rt.seed_copies.insert(
                    k,
                    Tracked {
                        value: c,
                        touched: started_seq,
                    },
                );
            }
        }
        let volumes: HashSet<String> = observation.desktop_volumes.into_iter().collect();
        rt.desktop_volumes
            .retain(|k, v| fresh(v.touched) || volumes.contains(k));
        for v in volumes {
            rt.desktop_volumes.entry(v).or_insert(Tracked {
                value: (),
                touched: started_seq,
            });
        }
        rt.seed_sources = observation.seed_sources;
        rt.unlabelled = observation.unlabelled_desktops;
        rt.last_observed = Some(now);
    }

    fn resync(&mut self) {
        let due = self.last_resync.is_none_or(|t| {
            t.elapsed() >= Duration::from_secs(self.fleet.engine.resync_secs.max(1))
        });
        if !due {
            return;
        }
        self.last_resync = Some(tokio::time::Instant::now());
        let now = self.now();
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        for name in names {
            let rt = &self.hosts[&name];
            let key = JobKey::Host(name.clone());
            if self.in_flight.contains(&key) {
                continue;
            }
            match (&rt.status, &rt.conn) {
                (HostStatus::Down { .. }, _) if rt.retry_at.is_none_or(|t| t <= now) => {
                    let standby = self.fleet.host(&name).is_some_and(|h| h.standby);
                    self.connect(&name, standby && !rt.in_service_from_standby);
                }
                (_, Some(conn)) if !rt.observing => {
                    let job = jobs::observe(
                        name.clone(),
                        conn.clone(),
                        self.fleet.engine.creation_pool.clone(),
                        self.classes.clone(),
                        self.seq,
                    );
                    if let Some(rt) = self.hosts.get_mut(&name) {
                        rt.observing = true;
                    }
                    self.spawn(key, job);
                }
                _ => {}
            }
        }
    }

    // ---- job results -------------------------------------------------------------------

    fn finish(&mut self, done: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>) {
        let (id, outcome) = match done {
            Ok(done) => (done.0, Some(done.1)),
            Err(e) => {
                tracing::error!("a job failed unexpectedly: {e}");
                (e.id(), None)
            }
        };
        if let Some(key) = self.job_keys.remove(&id) {
            self.in_flight.remove(&key);
            if let JobKey::Host(host) = &key {
                // Connected, refused or failed: either way the host's first answer is in.
                self.unread_hosts.remove(host);
            }
            if let (JobKey::Host(host), None) = (&key, &outcome)
                && let Some(rt) = self.hosts.get_mut(host)
            {
                rt.observing = false;
            }
        }
        let Some(outcome) = outcome else {
            return;
        };
        let now = self.now();
        let seq = self.next_seq();
        match outcome {
            Outcome::Connected {
                host,
                conn,
                observation,
                probe,
            } => {
                self.host_connected(&host, conn, observation, probe);
            }
            Outcome::ConnectFailed {
                host,
                reason,
                probe,
            } => {
                let standby = self.fleet.host(&host).is_some_and(|h| h.standby);
                if probe && standby {
                    if let Some(rt) = self.hosts.get_mut(&host) {
                        rt.status = HostStatus::Standby;
                    }
                } else {
                    self.host_failed(&host, reason);
                }
            }
            Outcome::Observed {
                host,
                observation,
                started_seq,
            } => {
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.observing = false;
                }
                self.apply_observation(&host, observation, started_seq);
            }
            Outcome::ObserveFailed { host, reason } => {
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.observing = false;
                }
                self.host_failed(&host, reason);
            }
            Outcome::Desktop { desktop, event } => {
                let name = desktop.name.clone();
                let (host, class) = (desktop.host.clone(), desktop.meta.class.clone());
                self.desktop_retry.remove(&name);
                if desktop.meta.pool == PoolState::Buffer {
                    self.class_backoff.remove(&class);
                }
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.desktop_volumes.insert(
                        crate::hypervisor::model::desktop_volume_name(&name),
                        Tracked {
                            value: (),
                            touched: seq,
                        },
                    );
                }
                let retired = desktop.meta.pool == PoolState::Retired;
                self.desktops.insert(
                    name.clone(),
                    Tracked {
                        value: desktop,
                        touched: seq,
                    },
                );
                if let Some((kind, message)) = event {
                    self.emit(kind, Some(&class), Some(&host), Some(&name), message);
                }
                if retired && let Some(release) = self.pending_release.remove(&name) {
                    self.released(release);
                }
            }
            Outcome::Assigned { desktop, display } => {
                self.publish_now = true;
                let name = desktop.name.clone();
                let (host, class) = (desktop.host.clone(), desktop.meta.class.clone());
                let user = desktop.meta.user.clone().unwrap_or_default();
                self.desktop_retry.remove(&name);
                self.desktops.insert(
                    name.clone(),
                    Tracked {
                        value: desktop,
                        touched: seq,
                    },
                );
                let Some(login) = self.pending_assign.remove(&name) else {
                    return;
                };
                // A user given back a desktop they hold waited for nothing new.
                let waited = if login.given_back && login.instant {
                    Duration::ZERO
                } else {
                    login.asked.elapsed()
                };
                let reply = Reply::Assigned {
                    desktop: name.clone(),
                    host: host.clone(),
                    display: display.as_ref().map(|d| d.address.clone()),
                    display_password: display.and_then(|d| d.password),
                    waited_ms: waited.as_millis() as u64,
                };
                if login.given_back {
                    self.answer_login(login, Ok(reply));
                    return;
                }
                let mut message = format!("assigned to {user}");
                self.history.record_login(&class, now);
                self.demand.record_login(&class, now);
                self.history_unsaved = true;
                self.ledger
                    .served(&class, (!login.instant).then_some(waited));
                if !login.instant {
                    message = format!("{message} after waiting {}s", waited.as_secs());
                }
                self.answer_login(login, Ok(reply));
                self.emit(
                    EventKind::Assigned,
                    Some(&class),
                    Some(&host),
                    Some(&name),
                    message,
                );
            }
            Outcome::Unusable { desktop, reason } => {
                // Never handed out: the planner replaces it; its login tries the next desktop.
                self.publish_now = true;
                let name = desktop.name.clone();
                let (host, class) = (desktop.host.clone(), desktop.meta.class.clone());
                let given_back = desktop.meta.pool == PoolState::Retired;
                self.desktops.insert(
                    name.clone(),
                    Tracked {
                        value: desktop,
                        touched: seq,
                    },
                );
                let message = if given_back {
                    format!("not given back to its user ({reason}): recycled, a fresh one instead")
                } else {
                    format!("not handed out ({reason}): replaced")
                };
                self.emit(
                    EventKind::Failed,
                    Some(&class),
                    Some(&host),
                    Some(&name),
                    message,
                );
                if let Some(login) = self.pending_assign.remove(&name) {
                    let login = Login {
                        given_back: false,
                        ..login
                    };
                    self.ledger.wait_first(&class, login);
                }
            }
            Outcome::CreateFailed {
                host,
                class,
                desktop,
                left,
                reason,
            } => {
                match left {
                    Some(left) => {
                        // Booting failed: retry this desktop later (or give up at max attempts).
                        let failures = left.meta.attempts;
                        self.desktop_retry
                            .insert(desktop.clone(), self.backoff(now, failures, reason.clone()));
                        self.desktops.insert(
                            desktop.clone(),
                            Tracked {
                                value: left,
                                touched: seq,
                            },
                        );
                    }
                    None => {
                        self.desktops.remove(&desktop);
                        self.removed.insert(desktop.clone(), seq);
                        let failures = self.class_backoff.get(&class).map_or(0, |b| b.failures) + 1;
                        self.class_backoff
                            .insert(class.clone(), self.backoff(now, failures, reason.clone()));
                    }
                }
                self.ledger.failed(&class);
                self.emit(
                    EventKind::Failed,
                    Some(&class),
                    Some(&host),
                    Some(&desktop),
                    reason,
                );
            }
            Outcome::DesktopFailed {
                host,
                desktop,
                reason,
            } => {
                if let Some(login) = self.pending_assign.remove(&desktop) {
                    // Another desktop may serve it: back to the front of its queue.
                    let login = Login {
                        instant: false,
                        ..login
                    };
                    let class = login.class.clone();
                    self.ledger.wait_first(&class, login);
                }
                if let Some(release) = self.pending_release.remove(&desktop) {
                    let result = Err(CommandError::unavailable(format!(
                        "desktop {desktop}: the release could not be recorded ({reason}); \
                         it is still assigned: try again"
                    )));
                    for reply in release.replies {
                        self.answer(reply, result.clone());
                    }
                }
                let failures = self.desktop_retry.get(&desktop).map_or(0, |b| b.failures) + 1;
                self.desktop_retry
                    .insert(desktop.clone(), self.backoff(now, failures, reason.clone()));
                let class = self
                    .desktops
                    .get(&desktop)
                    .map(|d| d.value.meta.class.clone());
                self.emit(
                    EventKind::Failed,
                    class.as_deref(),
                    Some(&host),
                    Some(&desktop),
                    reason,
                );
                // The host may be gone: read it again soon.
                self.last_resync = None;
            }
            Outcome::Destroyed {
                host,
                desktop,
                class,
                why,
            } => {
                self.desktops.remove(&desktop);
                self.removed.insert(desktop.clone(), seq);
                self.desktop_retry.remove(&desktop);
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.desktop_volumes
                        .remove(&crate::hypervisor::model::desktop_volume_name(&desktop));
                    rt.unlabelled.retain(|u| *u != desktop);
                }
                self.emit(
                    EventKind::Destroyed,
                    class.as_deref(),
                    Some(&host),
                    Some(&desktop),
                    why,
                );
            }
            Outcome::VolumeDeleted { host, volume } => {
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.desktop_volumes.remove(&volume);
                }
                tracing::info!(host, volume, "deleted a volume nothing used");
            }
            Outcome::VolumeDeleteFailed {
                host,
                volume,
                reason,
            } => {
                // Asked again only once the next full read of the host lists it again (a
                // refusal, e.g. a volume some domain uses, is not retried on every pass).
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.desktop_volumes.remove(&volume);
                }
                self.emit(
                    EventKind::Failed,
                    None,
                    Some(&host),
                    None,
                    format!("volume {volume}: {reason}"),
                );
            }
            Outcome::SeedCopied { host, copy } => {
                let key = (host.clone(), copy.class.clone(), copy.version.clone());
                self.seed_retry.remove(&key);
                self.seed_progress.remove(&key);
                let message = format!("seed {} copied", copy.version);
                let class = copy.class.clone();
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.seed_copies.insert(
                        (copy.class.clone(), copy.version.clone()),
                        Tracked {
                            value: copy,
                            touched: seq,
                        },
                    );
                }
                self.emit(
                    EventKind::SeedCopied,
                    Some(&class),
                    Some(&host),
                    None,
                    message,
                );
            }
            Outcome::SeedCopyFailed {
                host,
                class,
                version,
                reason,
            } => {
                let key = (host.clone(), class.clone(), version.clone());
                self.seed_progress.remove(&key);
                let failures = self.seed_retry.get(&key).map_or(0, |b| b.failures) + 1;
                self.seed_retry
                    .insert(key, self.backoff(now, failures, reason.clone()));
                // Creations of the class wait on this copy: say so on the class.
                self.class_backoff.insert(
                    class.clone(),
                    self.backoff(now, failures, format!("seed copy on {host}: {reason}")),
                );
                self.emit(
                    EventKind::Failed,
                    Some(&class),
                    Some(&host),
                    None,
                    format!("seed {version}: {reason}"),
                );
            }
            Outcome::SeedCopyDeleted {
                host,
                class,
                version,
            } => {
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.seed_copies.remove(&(class.clone(), version.clone()));
                }
                tracing::info!(host, class, version, "deleted a seed copy nothing uses");
            }
            Outcome::Activated { host } => {
                // Activation command done: connect.
                self.emit(
                    EventKind::HostActivated,
                    None,
                    Some(&host),
                    None,
                    "activation command done, connecting".into(),
                );
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.in_service_from_standby = true;
                }
                self.connect(&host, false);
            }
            Outcome::ActivationFailed { host, reason } => {
                self.host_failed(&host, format!("activation failed: {reason}"));
            }
            Outcome::Deactivated { host, note } => {
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.status = HostStatus::Standby;
                    rt.conn = None;
                    rt.in_service_from_standby = false;
                }
                self.connections.remove(&host);
                let message = match note {
                    Some(n) => format!("returned to standby ({n})"),
                    None => "returned to standby".into(),
                };
                self.emit(EventKind::HostStandby, None, Some(&host), None, message);
            }
        }
    }

    // ---- commands ----------------------------------------------------------------------

    /// Queues an answer; it goes out once the next snapshot (which shows its effect) is out, so
    /// that a client reading the status right after its answer sees what it did.
    fn answer(&mut self, to: oneshot::Sender<CommandResult>, result: CommandResult) {
        self.answers.push((to, result));
    }

    fn send_answers(&mut self) {
        for (to, result) in self.answers.drain(..) {
            let _ = to.send(result);
        }
    }

    fn command(&mut self, request: Request) {
        self.publish_now = true;
        let Request {
            command,
            actor,
            reply,
        } = request;
        // Logins and logouts have their own events; everything else is an admin action.
        let admin = !matches!(command, Command::Assign { .. } | Command::Release { .. });
        let describe = format!("{command:?}");
        let result = self.apply_command(command, &actor, reply);
        if let Some((reply, result)) = result {
            if admin {
                let note = match &result {
                    Ok(_) => "ok".to_string(),
                    Err(e) => format!("refused: {e}"),
                };
                self.emit(
                    EventKind::AdminAction,
                    None,
                    None,
                    None,
                    format!("{actor}: {describe}: {note}"),
                );
            }
            self.answer(reply, result);
        }
    }

    /// Applies a command; returns the reply to send now, or `None` when a job will answer.
    #[allow(clippy::type_complexity)]
    fn apply_command(
        &mut self,
        command: Command,
        actor: &str,
        reply: oneshot::Sender<CommandResult>,
    ) -> Option<(oneshot::Sender<CommandResult>, CommandResult)> {
        let writes = !matches!(command, Command::Assign { .. } | Command::Release { .. });
        if self.read_only && writes {
            return Some((
                reply,
                Err(CommandError::read_only("the engine is read-only")),
            ));
        }
        let result = match command {
            Command::Pause => {
                self.paused = true;
                Ok(Reply::Done)
            }
            Command::Resume => {
                if self.read_only {
                    Err(CommandError::read_only("the engine is read-only"))
                } else {
                    self.paused = false;
                    Ok(Reply::Done)
                }
            }
            Command::Refill { class } => {
                if self.fleet.class(&class).is_none() {
                    Err(CommandError::not_found(format!("unknown class {class:?}")))
                } else {
                    self.class_backoff.remove(&class);
                    let names: Vec<String> = self
                        .desktops
                        .values()
                        .filter(|d| d.value.meta.class == class)
                        .map(|d| d.value.name.clone())
                        .collect();
                    for n in names {
                        self.desktop_retry.remove(&n);
                    }
                    self.seed_retry.retain(|(_, c, _), _| *c != class);
                    Ok(Reply::Done)
                }
            }
            Command::RaiseFloor {
                class,
                floor,
                until,
            } => {
                if self.fleet.class(&class).is_none() {
                    Err(CommandError::not_found(format!("unknown class {class:?}")))
                } else if until <= self.now() {
                    Err(CommandError::invalid("the expiry is in the past"))
                } else {
                    self.floor_raises.insert(class, (floor, until));
                    Ok(Reply::Done)
                }
            }
            Command::DrainHost { host } => match self.hosts.get_mut(&host) {
                None => Err(CommandError::not_found(format!("unknown host {host:?}"))),
                Some(rt) if matches!(rt.status, HostStatus::Standby) => Err(
                    CommandError::conflict(format!("host {host} is on standby; nothing to drain")),
                ),
                Some(rt) => {
                    rt.status = HostStatus::Draining { by_admin: true };
                    self.emit(
                        EventKind::HostDraining,
                        None,
                        Some(&host),
                        None,
                        format!("drained by {actor}"),
                    );
                    Ok(Reply::Done)
                }
            },
            Command::UndrainHost { host } => match self.hosts.get_mut(&host) {
                None => Err(CommandError::not_found(format!("unknown host {host:?}"))),
                Some(rt) if matches!(rt.status, HostStatus::Draining { .. }) => {
                    rt.status = if rt.conn.is_some() {
                        HostStatus::Active
                    } else {
                        HostStatus::Activating
                    };
                    Ok(Reply::Done)
                }
                Some(_) => Err(CommandError::conflict(format!(
                    "host {host} is not draining"
                ))),
            },
            Command::SetPolicy { class, policy } => {
                // Policy::problems: the same rules as the config file and the policy editor.
                let valid = policy.validate();
                match self.fleet.classes.iter_mut().find(|c| c.name == class) {
                    None => Err(CommandError::not_found(format!("unknown class {class:?}"))),
                    Some(_) if let Err(why) = &valid => Err(CommandError::invalid(format!(
                        "invalid policy for class {class:?}: {why}"
                    ))),
                    Some(c) => {
                        c.policy = *policy;
                        self.classes = Arc::new(self.fleet.classes.clone());
                        self.pacers.retain(|(_, c), _| *c != class);
                        self.emit(
                            EventKind::PolicyChanged,
                            Some(&class),
                            None,
                            None,
                            format!("policy changed by {actor}"),
                        );
                        Ok(Reply::Done)
                    }
                }
            }
            Command::Assign {
                class,
                user,
                wait_secs,
            } => return self.assign(class, user, wait_secs, reply),
            Command::Release { desktop } => return self.release(&desktop, actor, true, reply),
            Command::Recycle { desktop } => return self.release(&desktop, actor, false, reply),
        };
        Some((reply, result))
    }

    #[allow(clippy::type_complexity)]
    fn assign(
        &mut self,
        class: String,
        user: String,
        wait_secs: u64,
        reply: oneshot::Sender<CommandResult>,
    ) -> Option<(oneshot::Sender<CommandResult>, CommandResult)> {
        if self.fleet.class(&class).is_none() {
            return Some((
                reply,
                Err(CommandError::not_found(format!("unknown class {class:?}"))),
            ));
        }
        if let Err(e) = crate::policy::names::check_name(&user) {
            return Some((reply, Err(CommandError::invalid(format!("user: {e}")))));
        }
        let now = tokio::time::Instant::now();
        let deadline = now + Duration::from_secs(wait_secs);
        // A request of a user whose login is already under way gets that login's answer.
        let reply = self.join_login(&class, &user, reply, deadline)?;
        if !self.fleet_known() {
            // The user may hold a desktop on a host not read yet: wait for the first reads.
            let login = Login {
                class: class.clone(),
                user,
                replies: vec![reply],
                asked: now,
                deadline: deadline.max(now + FIRST_READ_GRACE),
                instant: true,
                given_back: false,
            };
            self.ledger.wait(&class, login);
            return None;
        }
        let login = Login {
            class: class.clone(),
            user,
            replies: vec![reply],
            asked: now,
            deadline,
            instant: true,
            given_back: false,
        };
        let holders = self.holders();
        match self.try_login(login, &holders) {
            Tried::Underway => {}
            Tried::OwnBusy(login) => {
                let login = Login {
                    deadline: login.deadline.max(now + OWN_DESKTOP_GRACE),
                    instant: false,
                    ..login
                };
                self.ledger.wait(&class, login);
            }
            Tried::NoDesktop(login) if wait_secs > 0 => {
                let login = Login {
                    instant: false,
                    ..login
                };
                self.ledger.wait(&class, login);
            }
            Tried::NoDesktop(login) => {
                self.ledger.refused(&class);
                self.answer_login(
                    login,
                    Err(CommandError::unavailable(format!(
                        "no {class} desktop is ready in the buffer"
                    ))),
                );
            }
        }
        None
    }

    /// Whether the engine knows which desktops exist: every host has answered its first
    /// connection (or has had [`FIRST_READ_GRACE`] to do so).
    fn fleet_known(&self) -> bool {
        self.unread_hosts.is_empty() || self.started.elapsed() >= FIRST_READ_GRACE
    }

    /// Adds `reply` to the login of (`class`, `user`) under way, if there is one (it then waits
    /// until the later of both deadlines); otherwise gives `reply` back.
    fn join_login(
        &mut self,
        class: &str,
        user: &str,
        reply: oneshot::Sender<CommandResult>,
        deadline: tokio::time::Instant,
    ) -> Option<oneshot::Sender<CommandResult>> {
        let same = |l: &Login| l.class == class && l.user == user;
        let login = match self.pending_assign.values_mut().find(|l| same(l)) {
            Some(login) => Some(login),
            None => self.ledger.find_waiting_mut(class, same),
        };
        match login {
            Some(login) => {
                login.replies.push(reply);
                login.deadline = login.deadline.max(deadline);
                None
            }
            None => Some(reply),
        }
    }

    /// The desktop each user holds, by (class, user).
    fn holders(&self) -> HashMap<(String, String), String> {
        self.desktops
            .values()
            .filter(|d| d.value.meta.pool == PoolState::Production)
            .filter_map(|d| {
                let user = d.value.meta.user.clone()?;
                Some(((d.value.meta.class.clone(), user), d.value.name.clone()))
            })
            .collect()
    }

    /// Serves a login if it can: the user's own desktop back (checked, and started again if
    /// the class says so), else a ready one from the buffer.
    fn try_login(&mut self, login: Login, holders: &HashMap<(String, String), String>) -> Tried {
        let own = holders
            .get(&(login.class.clone(), login.user.clone()))
            .and_then(|name| self.desktops.get(name))
            .map(|d| d.value.clone());
        if let Some(desktop) = own {
            let name = desktop.name.clone();
            if self.in_flight.contains(&JobKey::Desktop(name.clone())) {
                return Tried::OwnBusy(login);
            }
            let Some(conn) = self.conn(&desktop.host) else {
                self.answer_login(
                    login,
                    Err(CommandError::unavailable(format!(
                        "your desktop {name} is on host {}, which is not reachable",
                        desktop.host
                    ))),
                );
                return Tried::Underway;
            };
            let restart = self
                .fleet
                .class(&desktop.meta.class)
                .is_some_and(plan::restarts_on_shutoff);
            let job = jobs::reclaim(conn, desktop, restart, self.now().as_second());
            let login = Login {
                given_back: true,
                ..login
            };
            self.pending_assign.insert(name.clone(), login);
            self.spawn(JobKey::Desktop(name), job);
            return Tried::Underway;
        }
        match self.ready_desktop(&login.class) {
            Some(desktop) => {
                self.hand_out(desktop, login);
                Tried::Underway
            }
            None => Tried::NoDesktop(login),
        }
    }

    /// Sends `result` to every request of `login`.
    fn answer_login(&mut self, login: Login, result: CommandResult) {
        for reply in login.replies {
            self.answer(reply, result.clone());
        }
    }

    /// The buffered desktop a login of `class` gets, by the ledger's rule, among those no job
    /// is on and whose host is up.
    fn ready_desktop(&self, class: &str) -> Option<ObservedDesktop> {
        let version = &self.fleet.class(class)?.seed.version;
        let usable = |h: &str| {
            self.hosts
                .get(h)
                .is_some_and(|rt| rt.status == HostStatus::Active && rt.conn.is_some())
        };
        let candidates = self.desktops.values().map(|d| &d.value).filter(|d| {
            ledger::can_hand_out(d, class)
                && !self.in_flight.contains(&JobKey::Desktop(d.name.clone()))
                && usable(&d.host)
        });
        ledger::pick(candidates, version).cloned()
    }

    /// Labels `desktop` for the login; the reply goes out when the label is written.
    fn hand_out(&mut self, desktop: ObservedDesktop, login: Login) {
        let Some(conn) = self.conn(&desktop.host) else {
            self.answer_login(
                login,
                Err(CommandError::unavailable("host connection lost")),
            );
            return;
        };
        let now = self.now().as_second();
        let name = desktop.name.clone();
        let job = jobs::assign(conn, desktop, login.user.clone(), now);
        self.pending_assign.insert(name.clone(), login);
        self.spawn(JobKey::Desktop(name), job);
    }

    /// Gives newly ready desktops to waiting logins, and turns away those whose wait ran out.
    fn serve_waiting(&mut self) {
        if !self.ledger.has_waiting() {
            return;
        }
        let now = tokio::time::Instant::now();
        let known = self.fleet_known();
        let holders = if known {
            self.holders()
        } else {
            HashMap::new()
        };
        for (class, queue) in self.ledger.take_all_waiting() {
            let mut left = VecDeque::new();
            let mut buffer_empty = false;
            for login in queue {
                // First come, first served: once the buffer had nothing for one login, the
                // later ones are tried only for their own desktops.
                let holds = holders.contains_key(&(login.class.clone(), login.user.clone()));
                let tried = if !known || (buffer_empty && !holds) {
                    Tried::NoDesktop(login)
                } else {
                    self.try_login(login, &holders)
                };
                let login = match tried {
                    Tried::Underway => continue,
                    Tried::NoDesktop(login) => {
                        buffer_empty = true;
                        login
                    }
                    Tried::OwnBusy(login) => login,
                };
                if login.deadline <= now {
                    self.ledger.refused(&class);
                    let waited = now.duration_since(login.asked).as_secs();
                    self.answer_login(
                        login,
                        Err(CommandError::unavailable(format!(
                            "no {class} desktop became ready within {waited}s"
                        ))),
                    );
                    continue;
                }
                left.push_back(login);
            }
            for login in left {
                self.ledger.wait(&class, login);
            }
        }
    }

    /// When the earliest waiting login runs out of time.
    fn next_deadline(&self) -> Option<tokio::time::Instant> {
        self.ledger.waiting().map(|(_, l)| l.deadline).min()
    }

    /// Release (a logout) or recycle (an admin action) a desktop: it is labelled retired, then
    /// destroyed. The answer goes out once the label is on the host, so a release that was
    /// answered survives a crash; a second request while the label is written gets the same
    /// answer.
    #[allow(clippy::type_complexity)]
    fn release(
        &mut self,
        desktop: &str,
        actor: &str,
        logout: bool,
        reply: oneshot::Sender<CommandResult>,
    ) -> Option<(oneshot::Sender<CommandResult>, CommandResult)> {
        if let Some(pending) = self.pending_release.get_mut(desktop)
            && pending.logout == logout
        {
            pending.replies.push(reply);
            return None;
        }
        let Some(d) = self.desktops.get(desktop).map(|d| d.value.clone()) else {
            let error = if self.fleet_known() {
                CommandError::not_found(format!("unknown desktop {desktop:?}"))
            } else {
                CommandError::unavailable(format!(
                    "desktop {desktop:?} is not known yet: the engine is still reading its \
                     hosts; try again in a moment"
                ))
            };
            return Some((reply, Err(error)));
        };
        if logout && d.meta.pool != PoolState::Production {
            return Some((
                reply,
                Err(CommandError::conflict(format!(
                    "desktop {desktop} is not assigned (it is in {})",
                    d.meta.pool.as_str()
                ))),
            ));
        }
        if self
            .in_flight
            .contains(&JobKey::Desktop(desktop.to_string()))
        {
            return Some((
                reply,
                Err(CommandError::conflict(format!(
                    "desktop {desktop} is busy; try again in a moment"
                ))),
            ));
        }
        let Some(conn) = self.hosts.get(&d.host).and_then(|rt| rt.conn.clone()) else {
            return Some((
                reply,
                Err(CommandError::unavailable(format!(
                    "host {} is not connected",
                    d.host
                ))),
            ));
        };
        let user = d.meta.user.clone().unwrap_or_default();
        let class = d.meta.class.clone();
        let now = self.now().as_second();
        let message = if logout {
            format!("released by {user}")
        } else {
            format!("recycled by {actor}")
        };
        let kind = if logout {
            EventKind::Released
        } else {
            EventKind::AdminAction
        };
        // Labelled retired first (so the desktop can never be handed out again), destroyed by
        // the next pass unless the engine is paused.
        self.spawn(
            JobKey::Desktop(desktop.to_string()),
            jobs::relabel(
                conn,
                d,
                PoolState::Retired,
                None,
                now,
                Some((kind, message)),
            ),
        );
        self.pending_release.insert(
            desktop.to_string(),
            PendingRelease {
                replies: vec![reply],
                logout,
                class,
            },
        );
        None
    }

    /// A release whose label is on the host: counted, and answered.
    fn released(&mut self, release: PendingRelease) {
        let PendingRelease {
            replies,
            logout,
            class,
        } = release;
        if logout {
            self.history.record_logout(&class, self.now());
            self.history_unsaved = true;
            let on_logout = self.fleet.class(&class).map(|c| c.policy.on_logout);
            if on_logout == Some(LogoutAction::Recycle) {
                self.ledger.owe(&class);
            }
        }
        for reply in replies {
            self.answer(reply, Ok(Reply::Done));
        }
    }

    // ---- the pass ----------------------------------------------------------------------

    /// The next retry after `failures` failures in a row (exponential, within the configured
    /// bounds).
    fn backoff(&self, now: Timestamp, failures: u32, reason: String) -> Backoff {
        let delay = backoff_secs(
            self.fleet.engine.retry_base_secs,
            self.fleet.engine.retry_max_secs,
            failures,
        );
        Backoff {
            until: now + SignedDuration::from_secs(delay as i64),
            failures,
            reason,
        }
    }

    fn busy(&self, now: Timestamp) -> Busy {
        let mut busy = Busy::default();
        for key in &self.in_flight {
            match key {
                JobKey::Desktop(n) => {
                    busy.desktops.insert(n.clone());
                }
                JobKey::Volume(h, v) => {
                    busy.volumes.insert((h.clone(), v.clone()));
                }
                JobKey::Seed(h, c, v) => {
                    busy.seed_copies.insert((h.clone(), c.clone(), v.clone()));
                }
                JobKey::Host(_) => {}
            }
        }
        for (n, b) in &self.desktop_retry {
            if b.until > now {
                busy.desktops.insert(n.clone());
            }
        }
        for (k, b) in &self.seed_retry {
            if b.until > now {
                busy.seed_copies.insert(k.clone());
            }
        }
        for (c, b) in &self.class_backoff {
            busy.class_backoff
                .insert(c.clone(), (b.until, b.reason.clone()));
        }
        busy.floor_raises = self.floor_raises.clone();
        // Logins waiting for a desktop are owed one each, whatever the buffer target says.
        busy.owed_replacements = self.ledger.owed_for_plan();
        busy
    }

    fn host_views(&self) -> Vec<HostView> {
        self.hosts
            .iter()
            .map(|(name, rt)| HostView {
                name: name.clone(),
                status: rt.status.clone(),
                seed_copies: rt.seed_copies.values().map(|t| t.value.clone()).collect(),
                seed_sources: rt.seed_sources.clone(),
                desktop_volumes: rt.desktop_volumes.keys().cloned().collect(),
                unlabelled_desktops: rt.unlabelled.clone(),
            })
            .collect()
    }

    /// Saves the demand history when it changed, at most once a minute (and at shutdown).
    fn save_history(&mut self, force: bool) {
        let due = force || self.history_saved.elapsed() >= Duration::from_secs(60);
        if !self.history_unsaved || !due {
            return;
        }
        if let Some(path) = &self.history_path {
            match self.history.save(path) {
                Ok(()) => self.history_unsaved = false,
                Err(e) => {
                    tracing::warn!("cannot save the demand history to {}: {e}", path.display())
                }
            }
        }
        self.history_saved = tokio::time::Instant::now();
    }

    fn pass(&mut self) {
        self.save_history(false);
        self.resync();
        self.serve_waiting();
        let now = self.now();
        self.floor_raises.retain(|_, (_, until)| *until > now);
        let desktops: Vec<ObservedDesktop> =
            self.desktops.values().map(|d| d.value.clone()).collect();
        let views = self.host_views();
        let busy = self.busy(now);
        // Expected logins during the time a new desktop takes, for predictive classes.
        let forecasts: HashMap<String, f64> = self
            .fleet
            .classes
            .iter()
            .filter(|c| c.policy.predictive.is_some())
            .map(|c| {
                let expected = self.demand.forecast(&c.name, now, c.policy.ready_secs);
                (c.name.clone(), expected)
            })
            .collect();
        let plan = plan::plan(&PlanInput {
            fleet: &self.fleet,
            hosts: &views,
            desktops: &desktops,
            busy: &busy,
            memory: &self.memory,
            now,
            forecasts: &forecasts,
        });
        self.memory = plan.memory.clone();
        self.passes += 1;
        if !self.paused {
            for action in plan.actions.clone() {
                self.execute(action, now);
            }
        }
        self.publish_with(&plan.classes, desktops);
    }

    fn publish(&mut self, classes: &[plan::ClassPlan]) {
        let desktops: Vec<ObservedDesktop> =
            self.desktops.values().map(|d| d.value.clone()).collect();
        self.publish_with(classes, desktops);
    }

    fn publish_with(&mut self, classes: &[plan::ClassPlan], desktops: Vec<ObservedDesktop>) {
        let now = self.now();
        let classes: Vec<ClassStatus> = classes
            .iter()
            .map(|p| {
                let spec = self.fleet.class(&p.name);
                let version = spec.map(|c| c.seed.version.clone()).unwrap_or_default();
                let on_old_seed = desktops
                    .iter()
                    .filter(|d| {
                        d.meta.class == p.name
                            && d.meta.seed_version != version
                            && d.meta.pool != PoolState::Retired
                    })
                    .count() as u32;
                let logins = self.ledger.stats(&p.name);
                ClassStatus {
                    plan: p.clone(),
                    seed_version: version,
                    on_old_seed,
                    cap: spec.map_or(0, |c| c.policy.cap),
                    logins,
                    demand: self
                        .history
                        .recent_logins(&p.name, now, DEMAND_BUCKETS_SHOWN),
                }
            })
            .collect();
        let mut per_host: HashMap<&str, u32> = HashMap::new();
        for d in &desktops {
            *per_host.entry(d.host.as_str()).or_default() += 1;
        }
        let hosts: Vec<HostState> = self
            .fleet
            .hosts
            .iter()
            .map(|h| {
                let rt = &self.hosts[&h.name];
                HostState {
                    name: h.name.clone(),
                    uri: h.uri.clone(),
                    status: rt.status.clone(),
                    standby: h.standby,
                    desktops: per_host.get(h.name.as_str()).copied().unwrap_or(0),
                    capacity: h.capacity.into(),
                    retry_in_secs: rt
                        .retry_at
                        .filter(|_| matches!(rt.status, HostStatus::Down { .. }))
                        .map(|t| t.duration_since(now).as_secs().max(0) as u64),
                }
            })
            .collect();
        let seed_copies = self
            .seed_progress
            .iter()
            .map(|((host, class, version), (done, total))| SeedProgress {
                host: host.clone(),
                class: class.clone(),
                version: version.clone(),
                done_bytes: done.load(Ordering::Relaxed),
                total_bytes: total.load(Ordering::Relaxed),
            })
            .collect();
        let hosts_settled = self
            .hosts
            .values()
            .all(|rt| !matches!(rt.status, HostStatus::Activating));
        let steady = !classes.is_empty()
            && classes.iter().all(|c| c.plan.is_steady())
            && self.in_flight.iter().all(|k| matches!(k, JobKey::Host(_)))
            && hosts_settled;
        let snapshot = Snapshot {
            at: Some(now),
            paused: self.paused,
            read_only: self.read_only,
            passes: self.passes,
            classes,
            hosts,
            desktops: Arc::new(desktops),
            seed_copies,
            jobs_in_flight: self.in_flight.len(),
            steady,
            events_dropped: self.events_dropped,
        };
        self.snapshot_tx.send_replace(Arc::new(snapshot));
    }

    // ---- actions -----------------------------------------------------------------------

    fn pacer(&mut self, host: &str, class: &ClassSpec) -> Pacer {
        self.pacers
            .entry((host.to_string(), class.name.clone()))
            .or_insert_with(|| Pacer {
                clones: Arc::new(Semaphore::new(class.policy.pacing.clones_per_host as usize)),
                boots: Arc::new(Semaphore::new(class.policy.pacing.boots_per_host as usize)),
            })
            .clone()
    }

    fn new_desktop_name(&mut self, class: &str, now: Timestamp) -> String {
        // Time-ordered and unique across restarts: microseconds since the epoch in base 36 (ten
        // characters until the year 3600), bumped when two names fall in the same microsecond.
        let micros = now.as_microsecond().max(0) as u64;
        self.name_counter = self.name_counter.max(micros.saturating_sub(1)) + 1;
        while self
            .desktops
            .contains_key(&desktop_name(class, self.name_counter))
        {
            self.name_counter += 1;
        }
        desktop_name(class, self.name_counter)
    }

    fn conn(&self, host: &str) -> Option<HostConnection> {
        self.hosts.get(host).and_then(|rt| rt.conn.clone())
    }

    fn execute(&mut self, action: Action, now: Timestamp) {
        let pool = self.fleet.engine.creation_pool.clone();
        let stamp = now.as_second();
        match action {
            Action::Create {
                host,
                class,
                version,
            } => {
                let (Some(conn), Some(spec)) =
                    (self.conn(&host), self.fleet.class(&class).cloned())
                else {
                    return;
                };
                let Some(seed) = self.hosts[&host]
                    .seed_copies
                    .get(&(class.clone(), version.clone()))
                    .map(|t| t.value.clone())
                else {
                    return;
                };
                let name = self.new_desktop_name(&class, now);
                let pacer = self.pacer(&host, &spec);
                self.ledger.created(&class);
                // Shown in the creation pool at once, so the next pass counts it.
                let placeholder = ObservedDesktop {
                    name: name.clone(),
                    host: host.clone(),
                    meta: crate::hypervisor::model::DesktopMeta {
                        class: class.clone(),
                        pool: PoolState::Creation,
                        seed_version: version,
                        user: None,
                        created_at: stamp,
                        changed_at: stamp,
                        attempts: 0,
                    },
                    running: false,
                    persistent: true,
                    disk_problem: None,
                };
                let seq = self.next_seq();
                self.desktops.insert(
                    name.clone(),
                    Tracked {
                        value: placeholder,
                        touched: seq,
                    },
                );
                let job = jobs::create(NewDesktop {
                    host,
                    conn,
                    class: spec,
                    name: name.clone(),
                    seed,
                    creation_pool: pool,
                    now: stamp,
                    pacer,
                });
                self.spawn(JobKey::Desktop(name), job);
            }
            Action::Boot { host, desktop } => {
                let (Some(conn), Some(d), Some(spec)) = (
                    self.conn(&host),
                    self.desktops.get(&desktop).map(|d| d.value.clone()),
                    self.desktops
                        .get(&desktop)
                        .and_then(|d| self.fleet.class(&d.value.meta.class).cloned()),
                ) else {
                    return;
                };
                let pacer = self.pacer(&host, &spec);
                self.spawn(JobKey::Desktop(desktop), jobs::boot(conn, d, pacer, stamp));
            }
            Action::Restart { host, desktop } => {
                let (Some(conn), Some(d)) = (
                    self.conn(&host),
                    self.desktops.get(&desktop).map(|d| d.value.clone()),
                ) else {
                    return;
                };
                self.spawn(JobKey::Desktop(desktop), jobs::restart(conn, d));
            }
            Action::Promote { host, desktop } => {
                let (Some(conn), Some(d)) = (
                    self.conn(&host),
                    self.desktops.get(&desktop).map(|d| d.value.clone()),
                ) else {
                    return;
                };
                let event = Some((
                    EventKind::Provisioned,
                    "ready in the buffer (finished after a restart)".to_string(),
                ));
                self.spawn(
                    JobKey::Desktop(desktop),
                    jobs::relabel(conn, d, PoolState::Buffer, None, stamp, event),
                );
            }
            Action::Destroy {
                host,
                desktop,
                reason,
            } => {
                let Some(conn) = self.conn(&host) else {
                    return;
                };
                let known = self.desktops.get(&desktop).map(|d| d.value.clone());
                let why = match reason {
                    plan::DestroyReason::Surplus => "surplus buffer".to_string(),
                    plan::DestroyReason::StaleSeed => "old seed version".to_string(),
                    plan::DestroyReason::HostDraining => "host draining".to_string(),
                    plan::DestroyReason::Undefined => {
                        "undefined behind deskpool's back".to_string()
                    }
                    plan::DestroyReason::Retired => "recycled".to_string(),
                    plan::DestroyReason::Failed => {
                        let attempts = known.as_ref().map_or(0, |d| d.meta.attempts);
                        let last = self
                            .desktop_retry
                            .get(&desktop)
                            .map(|b| b.reason.clone())
                            .unwrap_or_default();
                        let class = known.as_ref().map(|d| d.meta.class.clone());
                        self.emit(
                            EventKind::Failed,
                            class.as_deref(),
                            Some(&host),
                            Some(&desktop),
                            format!(
                                "gave up after {attempts} attempts{}",
                                if last.is_empty() {
                                    String::new()
                                } else {
                                    format!(": {last}")
                                }
                            ),
                        );
                        "failed too often".to_string()
                    }
                    plan::DestroyReason::NotRunning => "found shut off".to_string(),
                    plan::DestroyReason::Unlabelled => {
                        "left unlabelled by an interrupted creation".to_string()
                    }
                    plan::DestroyReason::UnknownClass => "class no longer configured".to_string(),
                    plan::DestroyReason::DiskMissing => known
                        .as_ref()
                        .and_then(|d| d.disk_problem.clone())
                        .unwrap_or_else(|| "its disk is gone".into()),
                    plan::DestroyReason::ShutOff => {
                        "assigned and found shut off: recycled, its user gets a fresh desktop"
                            .to_string()
                    }
                };
                self.spawn(
                    JobKey::Desktop(desktop.clone()),
                    jobs::destroy(conn, host, desktop, known, pool, stamp, why),
                );
            }
            Action::DeleteVolume { host, volume } => {
                let Some(conn) = self.conn(&host) else {
                    return;
                };
                self.spawn(
                    JobKey::Volume(host.clone(), volume.clone()),
                    jobs::delete_volume(conn, host, pool, volume),
                );
            }
            Action::CopySeed {
                host,
                class,
                version,
                source_host,
                from_copy,
            } => {
                let (Some(conn), Some(source), Some(spec)) = (
                    self.conn(&host),
                    self.conn(&source_host),
                    self.fleet.class(&class).cloned(),
                ) else {
                    return;
                };
                let (source_pool, source_volume) = if from_copy {
                    (
                        pool.clone(),
                        crate::hypervisor::model::seed_copy_volume_name(&class, &version),
                    )
                } else {
                    (spec.seed.pool.clone(), spec.seed.volume.clone())
                };
                let key = (host.clone(), class.clone(), version.clone());
                let done = Arc::new(AtomicU64::new(0));
                let total = Arc::new(AtomicU64::new(0));
                self.seed_progress
                    .insert(key.clone(), (done.clone(), total.clone()));
                let same_host = host == source_host;
                self.spawn(
                    JobKey::Seed(key.0, key.1, key.2),
                    jobs::copy_seed(SeedJob {
                        host,
                        conn,
                        source,
                        same_host,
                        source_pool,
                        source_volume,
                        creation_pool: pool,
                        class,
                        version,
                        done,
                        total,
                    }),
                );
            }
            Action::DeleteSeedCopy {
                host,
                class,
                version,
            } => {
                let Some(conn) = self.conn(&host) else {
                    return;
                };
                self.spawn(
                    JobKey::Seed(host.clone(), class.clone(), version.clone()),
                    jobs::delete_seed_copy(conn, host, pool, class, version),
                );
            }
            Action::ActivateHost { host } => {
                let Some(spec) = self.fleet.host(&host).cloned() else {
                    return;
                };
                if self.in_flight.contains(&JobKey::Host(host.clone())) {
                    // Still being probed or connected: its answer decides.
                    return;
                }
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.status = HostStatus::Activating;
                }
                self.emit(
                    EventKind::HostActivated,
                    None,
                    Some(&host),
                    None,
                    "activating: the active hosts are full".into(),
                );
                let command = spec.activate_command.clone();
                let h = host.clone();
                self.spawn(JobKey::Host(host), async move {
                    match command {
                        None => Outcome::Activated { host: h },
                        Some(command) => {
                            match jobs::run_host_command(command, ACTIVATION_LIMIT).await {
                                Ok(()) => Outcome::Activated { host: h },
                                Err(reason) => Outcome::ActivationFailed { host: h, reason },
                            }
                        }
                    }
                });
            }
            Action::DrainHost { host } => {
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.status = HostStatus::Draining { by_admin: false };
                }
                let idle = self.fleet.engine.standby_idle_secs;
                self.emit(
                    EventKind::HostDraining,
                    None,
                    Some(&host),
                    None,
                    format!("unneeded for {idle}s: draining"),
                );
            }
            Action::UndrainHost { host } => {
                if let Some(rt) = self.hosts.get_mut(&host) {
                    rt.status = HostStatus::Active;
                }
                self.emit(
                    EventKind::HostActivated,
                    None,
                    Some(&host),
                    None,
                    "needed again: drain cancelled".into(),
                );
            }
            Action::ReturnToStandby { host } => {
                if self.in_flight.contains(&JobKey::Host(host.clone())) {
                    return;
                }
                let command = self
                    .fleet
                    .host(&host)
                    .and_then(|h| h.deactivate_command.clone());
                let h = host.clone();
                self.spawn(JobKey::Host(host), async move {
                    let note = match command {
                        None => None,
                        Some(command) => match jobs::run_host_command(command, ACTIVATION_LIMIT)
                            .await
                        {
                            Ok(()) => Some("deactivation command done".to_string()),
                            Err(reason) => Some(format!("deactivation command failed: {reason}")),
                        },
                    };
                    Outcome::Deactivated { host: h, note }
                });
            }
        }
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

/// Exponential backoff: `base`, `2·base`, `4·base`, ... up to `max` seconds.
fn backoff_secs(base: u64, max: u64, failures: u32) -> u64 {
    let exp = failures.saturating_sub(1).min(20);
    base.max(1).saturating_mul(1 << exp).min(max.max(1))
}

#[cfg(test)]
mod tests {
    use super::backoff_secs;

    #[test]
    fn desktop_names_are_short_and_sort_by_time() {
        let a = super::desktop_name("office", 1_795_549_401_000_000);
        let b = super::desktop_name("office", 1_795_549_401_000_001);
        assert_eq!(a.len(), "dp-office-".len() + 10);
        assert!(a < b, "{a} < {b}");
        assert!(crate::policy::names::check_name(&a).is_ok());
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let delays: Vec<u64> = (1..=8).map(|n| backoff_secs(5, 120, n)).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 120, 120, 120]);
    }
}
