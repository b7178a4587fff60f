//! The driver: a thin tokio loop around [`EngineState`]. It turns what happens (the tick, a
//! command, a finished job, a stop) into inputs, and runs the effects the state returns: jobs
//! on a `JoinSet` (blocking libvirt calls, with the host connections it holds), snapshots and
//! events on their channels, answers to the requests it keeps, the demand history on disk,
//! and a timer for the earliest wake the state asked for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::history::DemandHistory;
use crate::jobs::StepDelays;
use crate::state::{Effect, EngineState, Input, JobId, Now, RequestId, Settings};
use deskpool_api::{CommandResult, EngineHandle, Event, Request, Snapshot};
use deskpool_core::clock::Clock;
use deskpool_core::leadership::Leadership;
use deskpool_core::policy::Fleet;
use deskpool_hypervisor::HostConnection;

mod tasks;

use tasks::{Finished, NoConnection, Pacers};

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
    /// Clone and boot times to simulate on libvirt test-driver hosts (the demo); real hosts
    /// are never slowed down.
    pub simulated_steps: StepDelays,
    /// The election's verdicts (`[ha]`); `None`: this controller is alone and always acts.
    pub leadership: Option<watch::Receiver<Leadership>>,
}

pub fn start(fleet: Fleet, options: EngineOptions) -> EngineHandle {
    launch(fleet, options, None)
}

/// The configuration read again for a running engine (`serve` on SIGHUP): the fleet the file
/// describes, or why it could not be read; `reply` gets what changed, or why nothing did.
pub struct Reload {
    pub config: Result<Fleet, String>,
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// Starts an engine that also takes [`Reload`]s of its configuration on the returned sender.
pub fn start_reloadable(
    fleet: Fleet,
    options: EngineOptions,
) -> (EngineHandle, mpsc::Sender<Reload>) {
    let (reloads, reloads_rx) = mpsc::channel(4);
    (launch(fleet, options, Some(reloads_rx)), reloads)
}

fn launch(
    fleet: Fleet,
    options: EngineOptions,
    reloads: Option<mpsc::Receiver<Reload>>,
) -> EngineHandle {
    let (snapshot_tx, snapshot) = watch::channel(Arc::new(Snapshot::default()));
    let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
    let (commands, commands_rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = oneshot::channel();
    let driver = Driver::new(fleet, options, snapshot_tx, events_tx);
    let task = tokio::spawn(driver.run(commands_rx, reloads, stop_rx));
    EngineHandle::local(snapshot, events, commands, task, stop_tx)
}

const EVENT_BUFFER: usize = 1024;

struct Driver {
    state: EngineState,
    clock: Arc<dyn Clock>,
    started: tokio::time::Instant,
    connections: Connections,
    /// Connections that came with a `Connected` outcome, until the state says whether it
    /// keeps them.
    new_connections: HashMap<String, HostConnection>,
    pacers: Pacers,
    jobs: JoinSet<Finished>,
    /// The state's id of every job under way, by task.
    job_ids: HashMap<tokio::task::Id, JobId>,
    /// The reply channel of every request not answered yet.
    replies: HashMap<RequestId, oneshot::Sender<CommandResult>>,
    last_request: u64,
    history_path: Option<std::path::PathBuf>,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
    events_tx: mpsc::Sender<Event>,
    events_dropped: u64,
    /// When the state wants a tick (since `started`).
    wake: Option<Duration>,
    stopped: bool,
    leadership: Option<watch::Receiver<Leadership>>,
}

impl Driver {
    fn new(
        fleet: Fleet,
        options: EngineOptions,
        snapshot_tx: watch::Sender<Arc<Snapshot>>,
        events_tx: mpsc::Sender<Event>,
    ) -> Self {
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
        let settings = Settings {
            read_only: options.read_only,
            paused: options.paused,
            keep_history: history_path.is_some(),
            clock_speed: options.clock.speed(),
        };
        let now = Now {
            mono: Duration::ZERO,
            wall: options.clock.now(),
        };
        Driver {
            state: EngineState::new(fleet, settings, history, now),
            clock: options.clock,
            started: tokio::time::Instant::now(),
            connections: options.connections,
            new_connections: HashMap::new(),
            pacers: Pacers::with_simulated(options.simulated_steps),
            jobs: JoinSet::new(),
            job_ids: HashMap::new(),
            replies: HashMap::new(),
            last_request: 0,
            history_path,
            snapshot_tx,
            events_tx,
            events_dropped: 0,
            wake: None,
            stopped: false,
            leadership: options.leadership,
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Request>,
        mut reloads: Option<mpsc::Receiver<Reload>>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut tick_secs = self.state.tick_secs().max(1);
        let mut tick = tokio::time::interval(Duration::from_secs(tick_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now: the pass that follows the start.
        tick.tick().await;
        // The election's verdict first, so that the first pass already knows whether to act.
        let mut start = Vec::new();
        if let Some(rx) = &mut self.leadership {
            start.push(Input::Leadership(rx.borrow_and_update().clone()));
        }
        start.push(Input::Started);
        self.apply(start);
        let mut stopping = false;
        while !self.stopped {
            // A reload may have changed the tick.
            if self.state.tick_secs().max(1) != tick_secs {
                tick_secs = self.state.tick_secs().max(1);
                let period = Duration::from_secs(tick_secs);
                tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            let wake = self.wake.map(|d| self.started + d);
            let inputs = tokio::select! {
                _ = tick.tick(), if !stopping => vec![Input::Tick],
                _ = sleep_until_or_never(wake) => vec![Input::Tick],
                _ = &mut stop, if !stopping => {
                    stopping = true;
                    vec![Input::Stop]
                }
                request = commands.recv(), if !stopping => match request {
                    Some(request) => vec![self.request(request)],
                    None => {
                        stopping = true;
                        vec![Input::Stop]
                    }
                },
                verdict = next_verdict(&mut self.leadership) => match verdict {
                    Some(l) => vec![Input::Leadership(l)],
                    None => {
                        // The election ended (the process is stopping): act on nothing more.
                        self.leadership = None;
                        vec![Input::Leadership(Leadership {
                            role: deskpool_core::leadership::Role::Lost,
                            why: Some("the election ended".into()),
                            ..Leadership::alone()
                        })]
                    }
                },
                reload = next_reload(&mut reloads), if reloads.is_some() && !stopping => {
                    match reload {
                        Some(reload) => {
                            self.reload(reload);
                            continue;
                        }
                        None => {
                            reloads = None;
                            continue;
                        }
                    }
                }
                Some(done) = self.jobs.join_next_with_id() => {
                    // Take every other finished job before planning again.
                    let mut inputs = vec![self.finished(done)];
                    while let Some(done) = self.jobs.try_join_next_with_id() {
                        inputs.push(self.finished(done));
                    }
                    inputs
                }
            };
            self.apply(inputs);
        }
    }

    /// Applies a reload and answers it with its outcome.
    fn reload(&mut self, reload: Reload) {
        self.apply(vec![Input::Reload(reload.config.map(Box::new))]);
        let outcome = self
            .state
            .take_reload_outcome()
            .unwrap_or_else(|| Err("the engine is stopping".to_string()));
        let _ = reload.reply.send(outcome);
    }

    fn now(&self) -> Now {
        Now {
            mono: self.started.elapsed(),
            wall: self.clock.now(),
        }
    }

    /// Applies `inputs`, then runs the effects (and those of the inputs they cause).
    fn apply(&mut self, inputs: Vec<Input>) {
        let mut effects = self.state.apply_all(self.now(), inputs);
        self.wake = None;
        while !effects.is_empty() {
            let mut follow_ups = Vec::new();
            for effect in effects {
                follow_ups.extend(self.run_effect(effect));
            }
            // A connection that came with an outcome and was not kept is closed.
            self.new_connections.clear();
            effects = if follow_ups.is_empty() {
                Vec::new()
            } else {
                self.wake = None;
                self.state.apply_all(self.now(), follow_ups)
            };
        }
    }

    /// Runs one effect; returns what the state must hear about it.
    fn run_effect(&mut self, effect: Effect) -> Vec<Input> {
        match effect {
            Effect::StartJob { id, job } => {
                // The lease is checked again at the last moment: the state's view of the
                // election may be older than the lease (a process paused past it).
                if job.changes_hosts()
                    && let Some(rx) = &self.leadership
                {
                    let verdict = rx.borrow().clone();
                    if !verdict.may_act(std::time::Instant::now()) {
                        tracing::warn!(
                            "a job was not started: this controller no longer holds the lease"
                        );
                        let lost =
                            Leadership {
                                role: deskpool_core::leadership::Role::Lost,
                                why: Some(verdict.why.clone().unwrap_or_else(|| {
                                    "the lease is no longer certainly held".into()
                                })),
                                ..verdict
                            };
                        return vec![Input::JobLost { job_id: id }, Input::Leadership(lost)];
                    }
                }
                match tasks::start(job, &self.connections, &mut self.pacers) {
                    Ok(future) => {
                        let handle = self.jobs.spawn(future);
                        self.job_ids.insert(handle.id(), id);
                    }
                    Err(NoConnection { host }) => {
                        tracing::error!(host, "a job was asked on a host with no connection");
                        return vec![
                            Input::JobLost { job_id: id },
                            Input::ConnectionLost { host },
                        ];
                    }
                }
            }
            Effect::KeepConnection { host } => {
                if let Some(conn) = self.new_connections.remove(&host) {
                    self.connections.put(&host, conn);
                }
            }
            Effect::DropConnection { host } => {
                self.new_connections.remove(&host);
                self.connections.remove(&host);
            }
            Effect::Publish(mut snapshot) => {
                snapshot.events_dropped = self.events_dropped;
                self.snapshot_tx.send_replace(Arc::new(*snapshot));
            }
            Effect::Event(event) => {
                if self.events_tx.try_send(event).is_err() {
                    self.events_dropped += 1;
                }
            }
            Effect::Answer { id, result } => {
                if let Some(reply) = self.replies.remove(&id) {
                    // The asker may have given up: nothing to tell it then.
                    let _ = reply.send(result);
                }
            }
            Effect::SaveHistory(history) => {
                if let Some(path) = &self.history_path
                    && let Err(e) = history.save(path)
                {
                    tracing::warn!("cannot save the demand history to {}: {e}", path.display());
                    return vec![Input::HistoryNotSaved];
                }
            }
            Effect::WakeAt(at) => self.wake = Some(at),
            Effect::Stopped => self.stopped = true,
        }
        Vec::new()
    }

    fn request(&mut self, request: Request) -> Input {
        let Request {
            command,
            actor,
            reply,
        } = request;
        self.last_request += 1;
        let id = RequestId(self.last_request);
        self.replies.insert(id, reply);
        Input::Command { id, command, actor }
    }

    fn finished(
        &mut self,
        done: Result<(tokio::task::Id, Finished), tokio::task::JoinError>,
    ) -> Input {
        match done {
            Ok((task, finished)) => {
                let job_id = self
                    .job_ids
                    .remove(&task)
                    .expect("every job task is recorded");
                if let Some((host, conn)) = finished.conn {
                    self.new_connections.insert(host, conn);
                }
                Input::JobDone {
                    job_id,
                    outcome: finished.outcome,
                }
            }
            Err(e) => {
                tracing::error!("a job failed unexpectedly: {e}");
                let job_id = self
                    .job_ids
                    .remove(&e.id())
                    .expect("every job task is recorded");
                Input::JobLost { job_id }
            }
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_or_never(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The election's next verdict (`None` once it ended; never, without an election).
async fn next_verdict(rx: &mut Option<watch::Receiver<Leadership>>) -> Option<Leadership> {
    match rx {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// The next reload on `reloads` (`None` once its sender is gone).
async fn next_reload(reloads: &mut Option<mpsc::Receiver<Reload>>) -> Option<Reload> {
    match reloads {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}
