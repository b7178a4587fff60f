//! Crash safety on a real libvirt daemon (`qemu:///system`): `deskpool serve` is killed with
//! `kill -9` at 20 random moments of provisioning, assigns, releases and `set_policy`, restarted,
//! and the host is then checked from outside with `virsh` and `qemu-img`:
//!
//! - no orphan: every desktop domain carries deskpool's metadata, runs, is settled (buffer or
//!   production) and has its disk; every desktop volume belongs to a defined domain; no seed copy
//!   lacks its completion marker;
//! - no double count: a user holds at most one production desktop of a class, no desktop went to
//!   two users, and the engine's counts (`/v1/status`) are what `virsh` shows;
//! - no assignment lost: a user whose assign was answered before the kill (and not released
//!   since) still holds that desktop, and an assign asked again returns it;
//! - no release lost: a desktop whose release was answered before the kill is not in a pool
//!   any more (retired or gone);
//! - no dead desktop handed out: right after each assign answer the desktop runs
//!   (`virsh domstate`) and its disk and backing chain open (`virsh domblklist`, `qemu-img info`).
//!
//! Randomness is seeded; the seed is printed and `DESKPOOL_CRASH_SEED` replays the same random
//! stream (phases, sizes, users, delays, kill moments). What the engine answered before a kill
//! also steers later rounds, so a replay follows the same path only as far as its answers are
//! the same. `DESKPOOL_CRASH_ROUNDS` changes the number of rounds; `DESKPOOL_LOG=debug` makes
//! `serve` log more (a failure keeps a copy of the log in `/tmp`). Runs only with
//! `DESKPOOL_QEMU=1`, holding the real-host lock.

mod common;
mod qemu_world;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use deskpool_api::Command as EngineCommand;
use deskpool_broker::server::Status;
use deskpool_core::model::PoolState;
use qemu_world::crash::{
    HostView, Rng, broker_call, crash_seed, half_seed_copies, running_with_disk, try_virsh,
};
use qemu_world::{QEMU_DEADLINE, World, enabled};
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const ROUNDS: usize = 20;
const BUFFERS: [u32; 2] = [3, 2];
/// Several clones and boots at once per host: a buffer refills in a few seconds.
const PACING: &str = "pacing = { clones_per_host = 4, boots_per_host = 4 }";
/// Production desktops the test keeps at most (bursts of assigns stop there), so the host's
/// capacity of 20 always has room for the buffers, raised ones included.
const MAX_HELD: usize = 8;
/// Largest buffer a `set_policy` of the test asks for.
const MAX_BUFFER: u64 = 4;
const ASSIGN_WAIT_SECS: u64 = 30;
/// MiB of data in each class's seed.
const SEED_MIB: u32 = 32;
/// Longest a request of a round may go unanswered (a waiting assign included).
const REQUEST_LIMIT: Duration = Duration::from_secs(ASSIGN_WAIT_SECS + 30);

/// (class, user).
type Login = (String, String);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Buffered desktops removed (`virsh`) while serve is down; serve killed while it refills.
    Provisioning,
    /// A burst of assigns for fresh users.
    Assign,
    /// Releases of desktops assigned earlier.
    Release,
    /// A `set_policy` changing a class's buffer size.
    SetPolicy,
}

/// When `serve` is killed, counted from the start of the phase.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    After(Duration),
    /// This long after the n-th answer (or after the last request ended, if fewer come).
    AfterAnswers(usize, Duration),
}

/// What the test knows from the answers it received.
#[derive(Default)]
struct Model {
    /// Desktops answered as assigned and not released since: desktop → its login.
    held: BTreeMap<String, Login>,
    /// Desktops whose release was answered, with the login that held them.
    released: BTreeMap<String, Login>,
    /// Assigns of this round left unanswered by the kill: the user may or may not hold one.
    unanswered_assigns: BTreeSet<Login>,
    /// Releases of this round left unanswered by the kill: the desktop may or may not be held.
    unanswered_releases: BTreeSet<String>,
    users: u32,
}

/// One request of a phase, spawned when the phase starts; it signals on the channel when its
/// answer comes.
type Request = Box<dyn FnOnce(mpsc::UnboundedSender<()>) -> JoinHandle<Outcome>>;

/// What one request of a phase got.
enum Outcome {
    Assign {
        login: Login,
        answer: Result<(u16, serde_json::Value), String>,
        /// `running_with_disk` of the answered desktop, checked right after the answer.
        handed_out: Option<Result<(), String>>,
    },
    Release {
        desktop: String,
        answer: Result<(u16, serde_json::Value), String>,
    },
    Command {
        what: String,
        answer: Result<(u16, serde_json::Value), String>,
    },
}

struct Crash {
    world: World,
    rt: Runtime,
    rng: Rng,
    seed: u64,
    socket: PathBuf,
    model: Model,
    /// Buffer target per class as the last steady `/v1/status` gave it.
    targets: BTreeMap<String, u32>,
    /// Broken invariants: (round, phase, what).
    violations: Vec<(usize, Phase, String)>,
    round: usize,
    phase: Phase,
    serve: Option<usize>,
}

impl Crash {
    /// Records a broken invariant; one that persists (the same words in a later round) was
    /// reported when first seen.
    fn violation(&mut self, what: String) {
        if self.violations.iter().any(|(_, _, w)| *w == what) {
            println!("  still: {what}");
            return;
        }
        println!("  VIOLATION: {what}");
        self.violations.push((self.round, self.phase, what));
    }

    fn start_serve(&mut self) {
        assert!(self.serve.is_none());
        self.serve = Some(self.world.serve());
    }

    fn stop_serve(&mut self, signal: i32) {
        let serve = self.serve.take().expect("serve runs");
        self.world.signal(serve, signal);
    }

    /// Waits until `/v1/status` says steady, and still does one pass later (so the engine has
    /// acted on what its first passes observed); panics (with the seed) at the deadline.
    fn wait_steady(&mut self) -> Status {
        let socket = self.socket.clone();
        let result = self.rt.block_on(async move {
            let deadline = Instant::now() + QEMU_DEADLINE;
            let mut steady_at: Option<u64> = None;
            let mut last = String::from("no answer");
            while Instant::now() < deadline {
                if let Ok((200, body)) =
                    broker_call(&socket, "GET", "/v1/status", None, Duration::from_secs(10)).await
                {
                    last = body.to_string();
                    let status: Status = serde_json::from_value(body).expect("a /v1/status");
                    match (status.steady, steady_at) {
                        (false, _) => steady_at = None,
                        (true, None) => steady_at = Some(status.passes),
                        (true, Some(p)) if status.passes > p => return Ok(status),
                        (true, Some(_)) => {}
                    }
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            Err(last)
        });
        result.unwrap_or_else(|last| {
            panic!(
                "seed {}: round {} ({:?}): not steady within {QEMU_DEADLINE:?} after the restart; \
                 last /v1/status: {last}\nviolations so far: {:#?}",
                self.seed,
                self.round + 1,
                self.phase,
                self.violations
            )
        })
    }

    fn fresh_login(&mut self) -> Login {
        self.model.users += 1;
        let class = self.rng.pick(&self.world.classes).clone();
        (class, format!("u{}", self.model.users))
    }

    /// Runs the round's requests (spawned), kills serve at `kill`, and returns every outcome.
    fn drive(&mut self, requests: Vec<Request>, kill: KillAt) -> Vec<Outcome> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let started = Instant::now();
        let handles: Vec<JoinHandle<Outcome>> = {
            let _guard = self.rt.enter();
            requests.into_iter().map(|r| r(tx.clone())).collect()
        };
        drop(tx);
        let answers = self.rt.block_on(async {
            match kill {
                KillAt::After(d) => {
                    tokio::time::sleep(d).await;
                    0
                }
                KillAt::AfterAnswers(n, d) => {
                    let mut seen = 0;
                    while seen < n {
                        match tokio::time::timeout(REQUEST_LIMIT, rx.recv()).await {
                            Ok(Some(())) => seen += 1,
                            _ => break,
                        }
                    }
                    tokio::time::sleep(d).await;
                    seen
                }
            }
        });
        let at = started.elapsed();
        self.stop_serve(libc::SIGKILL);
        println!(
            "  kill -9 {} ms into the phase ({kill:?}; {answers} answers had come)",
            at.as_millis()
        );
        self.rt.block_on(async {
            let mut outcomes = Vec::new();
            for h in handles {
                // With serve gone every request ends at once (its connection closes).
                match tokio::time::timeout(REQUEST_LIMIT, h).await {
                    Ok(Ok(o)) => outcomes.push(o),
                    Ok(Err(e)) => panic!("a request task failed: {e}"),
                    Err(_) => panic!("a request did not end after serve was killed"),
                }
            }
            outcomes
        })
    }

    fn assign_request(&self, login: Login, stagger: Duration) -> Request {
        let socket = self.socket.clone();
        Box::new(move |answered| {
            tokio::spawn(async move {
                tokio::time::sleep(stagger).await;
                let body =
                    json!({"class": login.0, "user": login.1, "wait_secs": ASSIGN_WAIT_SECS});
                let answer =
                    broker_call(&socket, "POST", "/v1/assign", Some(body), REQUEST_LIMIT).await;
                if answer.is_ok() {
                    let _ = answered.send(());
                }
                let handed_out = match &answer {
                    Ok((200, body)) => {
                        let d = body["desktop"].as_str().unwrap_or_default().to_string();
                        Some(
                            tokio::task::spawn_blocking(move || running_with_disk(&d))
                                .await
                                .unwrap(),
                        )
                    }
                    _ => None,
                };
                Outcome::Assign {
                    login,
                    answer,
                    handed_out,
                }
            })
        })
    }

    fn release_request(&self, desktop: String, stagger: Duration) -> Request {
        let socket = self.socket.clone();
        Box::new(move |answered| {
            tokio::spawn(async move {
                tokio::time::sleep(stagger).await;
                let body = json!({ "desktop": desktop });
                let answer =
                    broker_call(&socket, "POST", "/v1/release", Some(body), REQUEST_LIMIT).await;
                if answer.is_ok() {
                    let _ = answered.send(());
                }
                Outcome::Release { desktop, answer }
            })
        })
    }

    fn command_request(&self, what: String, body: serde_json::Value) -> Request {
        let socket = self.socket.clone();
        Box::new(move |answered| {
            tokio::spawn(async move {
                let answer =
                    broker_call(&socket, "POST", "/v1/command", Some(body), REQUEST_LIMIT).await;
                if answer.is_ok() {
                    let _ = answered.send(());
                }
                Outcome::Command { what, answer }
            })
        })
    }

    /// A kill moment: a time into the phase, or shortly after one of its answers.
    fn kill_at(&mut self, longest_ms: u64, answers: usize, jitter_ms: u64) -> KillAt {
        if answers > 0 && self.rng.chance(50) {
            let n = self.rng.range(1, answers as u64) as usize;
            KillAt::AfterAnswers(n, Duration::from_millis(self.rng.range(0, jitter_ms)))
        } else {
            KillAt::After(Duration::from_millis(self.rng.range(0, longest_ms)))
        }
    }

    /// One round: the phase, the kill, the restart, the checks.
    fn round(&mut self, round: usize, rounds: usize) {
        self.round = round;
        let phase = if round == 0 {
            Phase::Provisioning
        } else {
            match self.rng.range(0, 3) {
                0 => Phase::Provisioning,
                1 if self.model.held.len() < MAX_HELD => Phase::Assign,
                2 if !self.model.held.is_empty() => Phase::Release,
                3 => Phase::SetPolicy,
                _ if self.model.held.len() < MAX_HELD => Phase::Assign,
                _ => Phase::Release,
            }
        };
        self.phase = phase;
        let started = Instant::now();
        let outcomes = match phase {
            Phase::Provisioning => {
                // Partly empty: some buffered desktops gone while serve was down (none exist
                // yet in round 0: everything, seed copies included, is made).
                // (The creation pool does not exist before the first serve.)
                let buffered: Vec<String> = if round == 0 {
                    Vec::new()
                } else {
                    self.world
                        .look()
                        .desktops
                        .iter()
                        .filter(|(_, s)| s.meta.as_ref().is_ok_and(|m| m.pool == PoolState::Buffer))
                        .map(|(d, _)| d.clone())
                        .collect()
                };
                let mut removed = Vec::new();
                if !buffered.is_empty() {
                    let n = self.rng.range(1, buffered.len() as u64) as usize;
                    let mut left = buffered;
                    for _ in 0..n {
                        let i = self.rng.range(0, left.len() as u64 - 1) as usize;
                        let d = left.remove(i);
                        remove_desktop(&self.world, &d);
                        removed.push(d);
                    }
                }
                println!(
                    "round {}/{rounds}: provisioning after removing {} buffered desktops {removed:?}",
                    round + 1,
                    removed.len()
                );
                self.start_serve();
                let kill = self.kill_at(4000, 0, 0);
                self.drive(Vec::new(), kill)
            }
            Phase::Assign => {
                let room = (MAX_HELD - self.model.held.len()).min(4) as u64;
                let n = self.rng.range(1, room) as usize;
                let mut logins: Vec<Login> = (0..n).map(|_| self.fresh_login()).collect();
                // Now and then a user who holds a desktop logs in again (a broker retrying
                // after the crash): the answer must be that same desktop.
                let held: Vec<Login> = self.model.held.values().cloned().collect();
                if !held.is_empty() && self.rng.chance(50) {
                    let again = self.rng.pick(&held).clone();
                    let at = self.rng.range(0, logins.len() as u64) as usize;
                    logins.insert(at, again);
                }
                let n = logins.len();
                println!("round {}/{rounds}: {n} assigns {logins:?}", round + 1);
                let mut requests = Vec::new();
                for login in logins {
                    let stagger = Duration::from_millis(self.rng.range(0, 300));
                    requests.push(self.assign_request(login, stagger));
                }
                let kill = self.kill_at(2500, n, 50);
                self.start_serve();
                self.drive(requests, kill)
            }
            Phase::Release => {
                let held: Vec<String> = self.model.held.keys().cloned().collect();
                let m = self.rng.range(1, held.len().min(3) as u64) as usize;
                let mut left = held;
                let mut chosen = Vec::new();
                for _ in 0..m {
                    let i = self.rng.range(0, left.len() as u64 - 1) as usize;
                    chosen.push(left.remove(i));
                }
                println!("round {}/{rounds}: {m} releases {chosen:?}", round + 1);
                let mut requests = Vec::new();
                for d in chosen {
                    let stagger = Duration::from_millis(self.rng.range(0, 200));
                    requests.push(self.release_request(d, stagger));
                }
                let kill = self.kill_at(600, m, 30);
                self.start_serve();
                self.drive(requests, kill)
            }
            Phase::SetPolicy => {
                let class = self.rng.pick(&self.world.classes).clone();
                let current = u64::from(self.targets.get(&class).copied().unwrap_or(0));
                let mut buffer = self.rng.range(1, MAX_BUFFER - 1);
                if buffer >= current {
                    buffer += 1;
                }
                let mut policy = self.world.fleet().class(&class).unwrap().policy.clone();
                policy.buffer.floor = buffer as u32;
                policy.buffer.ceiling = buffer as u32;
                let command = EngineCommand::SetPolicy {
                    class: class.clone(),
                    policy: Box::new(policy),
                };
                let body = json!({ "command": command, "actor": "crash-test" });
                println!(
                    "round {}/{rounds}: set_policy {class} buffer {current} -> {buffer}",
                    round + 1
                );
                let what = format!("set_policy {class} buffer {buffer}");
                let requests = vec![self.command_request(what, body)];
                let kill = self.kill_at(3000, 1, 2000);
                self.start_serve();
                self.drive(requests, kill)
            }
        };
        self.take_answers(outcomes);

        self.start_serve();
        let restarted = Instant::now();
        let status = self.wait_steady();
        println!(
            "  steady {:.1} s after the restart",
            restarted.elapsed().as_secs_f64()
        );
        let view = self.world.look();
        self.check(&view, &status);
        self.reassign_all();
        for c in &status.classes {
            self.targets.insert(c.name.clone(), c.buffer_target);
        }
        self.stop_serve(libc::SIGTERM);
        println!(
            "  round took {:.1} s; {} desktops held",
            started.elapsed().as_secs_f64(),
            self.model.held.len()
        );
    }

    /// Records what the answers say, and checks each answered assign at once.
    fn take_answers(&mut self, outcomes: Vec<Outcome>) {
        for o in outcomes {
            match o {
                Outcome::Assign {
                    login,
                    answer,
                    handed_out,
                } => match answer {
                    Ok((200, body)) => {
                        let d = body["desktop"].as_str().unwrap_or_default().to_string();
                        println!("  assign {login:?} answered {d}");
                        if !d.starts_with(&format!("dp-{}-", login.0)) {
                            self.violation(format!(
                                "assign of {} (class {}) answered {d:?}, not a desktop of that class",
                                login.1, login.0
                            ));
                        }
                        if let Some(Err(why)) = handed_out {
                            self.violation(format!(
                                "dead desktop handed out: the assign of {} ({}) answered {d}, but \
                                 right after the answer {why}",
                                login.1, login.0
                            ));
                        }
                        match self.model.held.get(&d).cloned() {
                            Some(other) if other != login => self.violation(format!(
                                "double count: {d} was answered to {} ({}) while {} ({}) holds it",
                                login.1, login.0, other.1, other.0
                            )),
                            _ => {}
                        }
                        let before: Option<String> = self
                            .model
                            .held
                            .iter()
                            .find(|(h, l)| **l == login && **h != d)
                            .map(|(h, _)| h.clone());
                        if let Some(before) = before {
                            self.violation(format!(
                                "double count: {} ({}) holds {before}, and asking again answered \
                                 another desktop, {d}",
                                login.1, login.0
                            ));
                        }
                        self.model.held.insert(d, login);
                    }
                    Ok((status, body)) => {
                        println!("  assign {login:?} refused {status}: {body}");
                    }
                    Err(why) => {
                        println!("  assign {login:?} unanswered: {why}");
                        self.model.unanswered_assigns.insert(login);
                    }
                },
                Outcome::Release { desktop, answer } => match answer {
                    Ok((200, _)) => {
                        println!("  release {desktop} answered");
                        let login = self.model.held.remove(&desktop).expect("a held desktop");
                        self.model.released.insert(desktop, login);
                    }
                    Ok((status, body)) => {
                        println!("  release {desktop} refused {status}: {body}");
                    }
                    Err(why) => {
                        println!("  release {desktop} unanswered: {why}");
                        self.model.unanswered_releases.insert(desktop);
                    }
                },
                Outcome::Command { what, answer } => match answer {
                    Ok((status, body)) => println!("  {what}: answered {status}: {body}"),
                    Err(why) => println!("  {what}: unanswered: {why}"),
                },
            }
        }
    }

    /// The checks from outside after the restart; then the model follows what the host holds,
    /// so that one broken invariant is reported once, not again in every later round.
    fn check(&mut self, view: &HostView, status: &Status) {
        let pool = self.world.creation_pool.clone();
        let mut production: BTreeMap<String, Login> = BTreeMap::new();

        // No orphan; every desktop settled, running, with its disk.
        for (d, seen) in &view.desktops {
            let meta = match &seen.meta {
                Ok(m) => m,
                Err(why) => {
                    self.violation(format!("orphan: domain {d} after steady: {why}"));
                    continue;
                }
            };
            if !d.starts_with(&format!("dp-{}-", meta.class)) {
                self.violation(format!("{d} is labelled for class {}", meta.class));
            }
            if !matches!(meta.pool, PoolState::Buffer | PoolState::Production) {
                self.violation(format!(
                    "unsettled after steady: {d} is in pool {} (user {:?}), expected buffer or \
                     production",
                    meta.pool.as_str(),
                    meta.user
                ));
            }
            if !seen.running {
                self.violation(format!(
                    "{d} ({} of {:?}) is defined but not running after steady",
                    meta.pool.as_str(),
                    meta.user
                ));
            }
            if let Err(why) = &seen.disk {
                self.violation(format!(
                    "{d} ({} of {:?}) has no usable disk after steady: {why}",
                    meta.pool.as_str(),
                    meta.user
                ));
            }
            if !view.volumes.contains(&format!("{d}.qcow2")) {
                self.violation(format!(
                    "{d}'s volume {d}.qcow2 is not in pool {pool} (virsh vol-list)"
                ));
            }
            if meta.pool == PoolState::Production {
                match &meta.user {
                    Some(u) => {
                        production.insert(d.clone(), (meta.class.clone(), u.clone()));
                    }
                    None => self.violation(format!("production desktop {d} has no user")),
                }
            }
        }
        for v in view.volumes.iter().filter(|v| v.starts_with("dp-")) {
            let owner = v.strip_suffix(".qcow2");
            if !owner.is_some_and(|o| view.desktops.contains_key(o)) {
                self.violation(format!(
                    "orphan volume: {v} in pool {pool} belongs to no defined domain"
                ));
            }
        }
        for copy in half_seed_copies(&view.volumes) {
            self.violation(format!(
                "half seed copy after steady: {copy} in pool {pool} has no .complete marker"
            ));
        }

        // No double count.
        let mut per_login: BTreeMap<&Login, Vec<&String>> = BTreeMap::new();
        for (d, login) in &production {
            per_login.entry(login).or_default().push(d);
        }
        for (login, desktops) in per_login.iter().filter(|(_, v)| v.len() > 1) {
            self.violation(format!(
                "double count: user {} holds {} production desktops of class {}: {desktops:?}",
                login.1,
                desktops.len(),
                login.0
            ));
        }
        for c in &self.world.classes.clone() {
            let count = |pool: PoolState| {
                view.desktops
                    .values()
                    .filter(|s| {
                        s.meta
                            .as_ref()
                            .is_ok_and(|m| &m.class == c && m.pool == pool)
                    })
                    .count() as u32
            };
            let (prod, buf) = (count(PoolState::Production), count(PoolState::Buffer));
            match status.classes.iter().find(|l| &l.name == c) {
                None => self.violation(format!("/v1/status lacks class {c}")),
                Some(l) => {
                    if (l.production, l.buffer) != (prod, buf) || l.buffer != l.buffer_target {
                        self.violation(format!(
                            "engine count of class {c}: /v1/status says production {} buffer {} \
                             (target {}); virsh shows production {prod} buffer {buf}",
                            l.production, l.buffer, l.buffer_target
                        ));
                    }
                }
            }
        }

        // No assignment lost.
        let describe = |d: &str| match view.desktops.get(d) {
            None => "gone (no such domain)".to_string(),
            Some(s) => match &s.meta {
                Err(why) => why.clone(),
                Ok(m) => match &m.user {
                    Some(u) => format!("in pool {} for user {u}", m.pool.as_str()),
                    None => format!("in pool {}", m.pool.as_str()),
                },
            },
        };
        for (d, login) in self.model.held.clone() {
            if self.model.unanswered_releases.contains(&d) {
                continue;
            }
            if production.get(&d) != Some(&login) {
                self.violation(format!(
                    "assignment lost: {} (class {}) was answered {d} and never released; after \
                     the restart {d} is {}, expected production for {}",
                    login.1,
                    login.0,
                    describe(&d),
                    login.1
                ));
            }
        }

        // No release lost.
        let mut release_lost = BTreeSet::new();
        for (d, login) in self.model.released.clone() {
            if let Some(Ok(m)) = view.desktops.get(&d).map(|s| &s.meta)
                && m.pool != PoolState::Retired
            {
                self.violation(format!(
                    "release lost: the release of {d} (user {}, class {}) was answered before the \
                     kill; after the restart {d} is {}, expected retired or gone",
                    login.1,
                    login.0,
                    describe(&d)
                ));
                // Followed up as held from now on (the next releases may pick it again).
                self.model.released.remove(&d);
                release_lost.insert(d);
            }
        }

        // Nothing else assigned: every production desktop is explained by an answered assign,
        // or an assign or release the kill left unanswered.
        for (d, login) in &production {
            let explained = self.model.held.get(d) == Some(login)
                || self.model.unanswered_assigns.contains(login)
                || self.model.unanswered_releases.contains(d)
                || release_lost.contains(d);
            if !explained {
                self.violation(format!(
                    "unexpected assignment: {d} is production for {} (class {}), which no assign \
                     asked for",
                    login.1, login.0
                ));
            }
        }

        self.model.held = production;
        self.model.unanswered_assigns.clear();
        self.model.unanswered_releases.clear();
    }

    /// Every user holding a desktop asks again: the answer is that same desktop, running with
    /// its disk.
    fn reassign_all(&mut self) {
        let socket = self.socket.clone();
        // A user with two desktops (a double count, reported already) asks once: either is
        // then the right answer.
        let mut held: BTreeMap<Login, Vec<String>> = BTreeMap::new();
        for (d, login) in &self.model.held {
            held.entry(login.clone()).or_default().push(d.clone());
        }
        let answers = self.rt.block_on(async move {
            let mut answers = Vec::new();
            for (login, desktops) in held {
                let body = json!({"class": login.0, "user": login.1, "wait_secs": 0});
                let answer =
                    broker_call(&socket, "POST", "/v1/assign", Some(body), REQUEST_LIMIT).await;
                answers.push((desktops, login, answer));
            }
            answers
        });
        for (desktops, login, answer) in answers {
            let d = desktops.join(" or ");
            match answer {
                Ok((200, body))
                    if desktops
                        .iter()
                        .any(|h| body["desktop"].as_str() == Some(h.as_str())) =>
                {
                    let got = body["desktop"].as_str().unwrap_or_default();
                    if let Err(why) = running_with_disk(got) {
                        self.violation(format!(
                            "dead desktop handed out: {} (class {}) asked again after the \
                             restart and got {got}, but {why}",
                            login.1, login.0
                        ));
                    }
                }
                Ok((200, body)) => {
                    let other = body["desktop"].as_str().unwrap_or_default().to_string();
                    self.violation(format!(
                        "assignment lost: {} (class {}) holds {d}, but asking again after the \
                         restart answered {other}",
                        login.1, login.0
                    ));
                    self.model.held.insert(other, login);
                }
                Ok((status, body)) => self.violation(format!(
                    "assignment lost: {} (class {}) holds {d}, but asking again after the restart \
                     was refused {status}: {body}",
                    login.1, login.0
                )),
                Err(why) => self.violation(format!(
                    "{} (class {}) asking again after the restart got no answer: {why}",
                    login.1, login.0
                )),
            }
        }
    }
}

/// Removes a buffered desktop from outside while serve is down: domain and disk volume.
fn remove_desktop(world: &World, desktop: &str) {
    let _ = try_virsh(&["destroy", desktop]);
    try_virsh(&["undefine", desktop]).unwrap_or_else(|e| panic!("{e}"));
    let volume = format!("{desktop}.qcow2");
    try_virsh(&["vol-delete", "--pool", &world.creation_pool, &volume])
        .unwrap_or_else(|e| panic!("{e}"));
}

fn rounds() -> usize {
    std::env::var("DESKPOOL_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS)
}

#[test]
fn kill_9_at_random_points_loses_nothing_and_leaves_nothing_behind() {
    if !enabled("kill_9_at_random_points_loses_nothing_and_leaves_nothing_behind") {
        return;
    }
    let seed = crash_seed();
    println!("crash test seed {seed} (replay with DESKPOOL_CRASH_SEED={seed})");
    let world = World::new(&["cra", "crb"]);
    world.write_config(&BUFFERS, PACING);
    // Some data in the seeds, so that the first round's seed copies take long enough to be
    // interrupted.
    for c in &world.classes {
        world.fill_seed(c, 0x5a, SEED_MIB);
    }
    let socket = world.socket();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut crash = Crash {
        world,
        rt,
        rng: Rng::new(seed),
        seed,
        socket,
        model: Model::default(),
        targets: BTreeMap::new(),
        violations: Vec::new(),
        round: 0,
        phase: Phase::Provisioning,
        serve: None,
    };
    let started = Instant::now();
    let n = rounds();
    for round in 0..n {
        crash.round(round, n);
    }
    println!(
        "{n} rounds in {:.0} s, seed {seed}: {} violations",
        started.elapsed().as_secs_f64(),
        crash.violations.len()
    );
    assert_no_violations(seed, &crash.violations, &crash.world);
}

fn assert_no_violations(seed: u64, violations: &[(usize, Phase, String)], world: &World) {
    if violations.is_empty() {
        return;
    }
    // The engine's log goes with the world's directory: keep a copy to read the failure by.
    let log = PathBuf::from(format!("/tmp/deskpool-crash-{seed}.log"));
    let _ = std::fs::copy(world.dir.path().join("state").join("deskpool.log"), &log);
    let list: Vec<String> = violations
        .iter()
        .map(|(r, p, what)| format!("round {} ({p:?}): {what}", r + 1))
        .collect();
    panic!(
        "crash test seed {seed} (replay with DESKPOOL_CRASH_SEED={seed}): {} broken invariants \
         (the engine's log is in {}):\n{}",
        violations.len(),
        log.display(),
        list.join("\n")
    );
}
