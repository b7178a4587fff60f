//! The server side of the broker socket.
//!
//! Endpoints (JSON unless said otherwise; errors are `{"error": "..."}` with a 4xx/5xx status):
//!
//! | method | path              | what                                                        |
//! |--------|-------------------|-------------------------------------------------------------|
//! | POST   | `/v1/assign`      | `{"class","user","wait_secs"?}` → `{"desktop","host","display","waited_ms"}` |
//! | POST   | `/v1/release`     | `{"desktop"}` → `{"released"}`                              |
//! | GET    | `/v1/classes`     | per class levels, targets and logins                        |
//! | GET    | `/v1/status`      | classes, hosts and engine state                             |
//! | GET    | `/v1/snapshot`    | `?after=PASSES&wait=SECS` long-poll: the whole snapshot     |
//! | GET    | `/v1/events`      | `?after=SEQ&wait=SECS` long-poll: events with sequence numbers |
//! | GET    | `/v1/stream`      | `?after=SEQ`: snapshots and events as JSON lines, until closed |
//! | POST   | `/v1/command`     | `{"command": {"type": ...}, "actor"}` → `{"reply"}`         |
//! | GET    | `/metrics`        | Prometheus text                                             |

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use super::http::{self, Read, Request, Response};
pub use super::status::{ClassLine, HostLine, Status, class_lines, status};
use super::{metrics, stream};
use deskpool_api::{Command, CommandError, ErrorKind, Event, Reply, Snapshot};
use deskpool_api::{Commander, EngineHandle};
use deskpool_core::policy::names::check_name;

/// Events kept for long-polls.
pub const EVENT_RING: usize = 2000;
/// Most events one `/v1/events` answer carries.
const EVENT_BATCH: usize = 500;
/// Longest long-poll.
pub const MAX_WAIT_SECS: u64 = 60;
/// Longest wait an assign may ask for.
pub const MAX_ASSIGN_WAIT_SECS: u64 = 3600;
/// Connections served at once, all clients together. When they are all taken, a newcomer
/// takes the slot of an idle kept-alive connection (the one idle longest, of the process
/// holding the most); only when none is idle is it answered 503 and closed. 256 is far more
/// than a broker, a monitor and a few consoles need (each holds one to three) and costs little.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections one client process (the peer's pid, from `SO_PEERCRED`) may hold: a quarter of
/// [`MAX_CONNECTIONS`] stays for every other process, so that one client that holds its
/// connections busy (long waits, answers it never reads) cannot lock the others out. A process
/// at its quota that connects again takes the slot of one of its own idle connections, else
/// is answered 503. 192 still lets a connection broker keep that many logins waiting at once.
pub const MAX_PER_PEER: usize = 192;
/// Requests served on one kept-alive connection; the last answer says `Connection: close`.
/// Bounds how long one connection keeps its slot without coming back through the admission
/// above (as nginx's `keepalive_requests`, with its default).
pub const MAX_REQUESTS_PER_CONNECTION: usize = 1000;
const MAX_ACTOR_LEN: usize = 64;

/// A running broker socket. Dropping it stops serving and removes the socket file (if it is
/// still the one this broker created).
pub struct Broker {
    path: PathBuf,
    /// (device, inode) of the socket file this broker created.
    identity: (u64, u64),
    task: Option<tokio::task::JoinHandle<()>>,
    fanout: Option<tokio::task::JoinHandle<()>>,
}

/// An event with its sequence number, as `/v1/events` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NumberedEvent {
    pub seq: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// The answer of `/v1/events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventBatch {
    pub events: Vec<NumberedEvent>,
    /// Sequence number of the newest event the server holds (0: none yet).
    pub last: u64,
    /// Events after `after` that fell out of the ring before they were asked for.
    pub missed: u64,
}

#[derive(Default)]
struct Ring {
    events: VecDeque<NumberedEvent>,
    last: u64,
}

pub(super) struct Shared {
    pub(super) snapshot: watch::Receiver<Arc<Snapshot>>,
    commander: Commander,
    classes: Vec<String>,
    ring: Mutex<Ring>,
    pub(super) ring_wake: watch::Sender<u64>,
    /// Ticks each time a connection becomes idle: orders idle connections, oldest first.
    idle_clock: AtomicU64,
}

impl Broker {
    /// Binds `path` (mode 0600) and serves the engine of `engine` on it. Takes over the engine's
    /// event channel: `engine.events` is replaced by a channel fed from the server's fan-out, so
    /// a console in this process still sees every event. Needs a tokio runtime.
    pub fn start(
        engine: &mut EngineHandle,
        path: &Path,
        classes: Vec<String>,
    ) -> anyhow::Result<Broker> {
        let (listener, identity) = bind(path)?;
        let listener = tokio::net::UnixListener::from_std(listener)
            .with_context(|| format!("cannot serve {}", path.display()))?;
        let (local_tx, local_rx) = mpsc::channel(1024);
        let mut upstream = std::mem::replace(&mut engine.events, local_rx);
        let (ring_wake, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            snapshot: engine.snapshot.clone(),
            commander: engine.commander(),
            classes,
            ring: Mutex::new(Ring::default()),
            ring_wake,
            idle_clock: AtomicU64::new(0),
        });
        let fan = shared.clone();
        let fanout = tokio::spawn(async move {
            while let Some(event) = upstream.recv().await {
                let seq = {
                    let mut ring = fan.ring.lock().unwrap_or_else(|e| e.into_inner());
                    ring.last += 1;
                    let seq = ring.last;
                    if ring.events.len() == EVENT_RING {
                        ring.events.pop_front();
                    }
                    ring.events.push_back(NumberedEvent {
                        seq,
                        event: event.clone(),
                    });
                    seq
                };
                fan.ring_wake.send_replace(seq);
                // Nobody reading locally (`deskpool serve`): the event is in the ring anyway.
                let _ = local_tx.try_send(event);
            }
        });
        let task = tokio::spawn(accept_loop(listener, shared));
        tracing::info!(socket = %path.display(), "broker socket listening");
        Ok(Broker {
            path: path.to_path_buf(),
            identity,
            task: Some(task),
            fanout: Some(fanout),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops serving (open connections are closed) and removes the socket file.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.remove_socket();
    }

    fn remove_socket(&self) {
        // Only the file this broker made: a later engine may have replaced it.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.identity
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(fanout) = self.fanout.take() {
            fanout.abort();
        }
        self.remove_socket();
    }
}

/// Creates the listening socket at `path` with mode 0600: a stale socket file (nobody
/// listening) is replaced; a live one, or a file that is not a socket, is refused.
pub fn bind(path: &Path) -> anyhow::Result<(std::os::unix::net::UnixListener, (u64, u64))> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!(
                    "a deskpool engine is already listening on {}; use `deskpool ctl` or attach a console to it",
                    path.display()
                );
            }
            tracing::info!(socket = %path.display(), "replacing a stale socket file");
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
        }
        Ok(_) => bail!(
            "{} exists and is not a socket; remove it or set [broker] socket to another path",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot use {}", path.display())),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // As the state directory: private (the socket itself is 0600 anyway).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // The socket is born 0600 (umask), then set so explicitly: nobody else may connect even for
    // an instant. The umask is process-wide; it is restored at once.
    // SAFETY: umask only swaps the process's file mode mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound.with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    listener.set_nonblocking(true)?;
    let meta = std::fs::symlink_metadata(path)?;
    Ok((listener, (meta.dev(), meta.ino())))
}

/// A connection between two requests: it may be closed to make room for a newcomer.
const IDLE: u8 = 0;
/// A connection reading a request, handling it or writing its answer.
const BUSY: u8 = 1;
/// An idle connection the accept loop chose to close: it serves nothing more.
const EVICTED: u8 = 2;

/// What a connection and the accept loop share. Only the accept loop moves IDLE to EVICTED;
/// only the connection moves IDLE to BUSY, both by compare-and-swap, so a connection that
/// has started a request is never evicted.
struct Connection {
    state: AtomicU8,
    /// The `idle_clock` when it last became idle (lower: idle longer).
    idle_since: AtomicU64,
    evict: Notify,
}

/// An admitted connection, as the accept loop counts it.
struct Slot {
    /// The client process (`None`: the kernel did not say; those share one quota).
    peer: Option<i32>,
    connection: Arc<Connection>,
}

async fn accept_loop(listener: tokio::net::UnixListener, shared: Arc<Shared>) {
    // Connections live in this set: aborting the loop closes them all.
    let mut connections = JoinSet::new();
    let mut slots: HashMap<tokio::task::Id, Slot> = HashMap::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let peer = stream.peer_cred().ok().and_then(|c| c.pid());
                    match admit(&mut slots, peer) {
                        Ok(()) => {
                            let connection = Arc::new(Connection {
                                state: AtomicU8::new(IDLE),
                                idle_since: AtomicU64::new(
                                    shared.idle_clock.fetch_add(1, Ordering::Relaxed),
                                ),
                                evict: Notify::new(),
                            });
                            let task = connections.spawn(serve_connection(
                                shared.clone(),
                                stream,
                                connection.clone(),
                            ));
                            slots.insert(task.id(), Slot { peer, connection });
                        }
                        Err(why) => {
                            tracing::debug!(?peer, "broker: connection refused: {why}");
                            connections.spawn(async move {
                                let (_, mut w) = stream.into_split();
                                let busy = Response::error(503, why);
                                let _ = tokio::time::timeout(
                                    http::WRITE_TIMEOUT,
                                    busy.write(&mut w, true),
                                )
                                .await;
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("broker socket: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = connections.join_next_with_id(), if !connections.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                slots.remove(&id);
            }
        }
    }
}

/// Makes room for a connection from `peer`, or says why there is none.
fn admit(slots: &mut HashMap<tokio::task::Id, Slot>, peer: Option<i32>) -> Result<(), String> {
    let mut held: HashMap<Option<i32>, usize> = HashMap::new();
    for slot in slots.values() {
        *held.entry(slot.peer).or_default() += 1;
    }
    if held.get(&peer).copied().unwrap_or(0) >= MAX_PER_PEER {
        // Its own idle connection makes way: the process is asking now.
        if evict_idle(slots, &held, |p| p == peer) {
            return Ok(());
        }
        return Err(format!(
            "this process holds {MAX_PER_PEER} busy connections already; finish or close one"
        ));
    }
    if slots.len() >= MAX_CONNECTIONS {
        if evict_idle(slots, &held, |_| true) {
            return Ok(());
        }
        return Err("too many connections; try again".to_string());
    }
    Ok(())
}

/// Closes one idle connection of a peer `eligible` says: of the peer holding the most
/// connections, the one idle longest. False when none is idle.
fn evict_idle(
    slots: &mut HashMap<tokio::task::Id, Slot>,
    held: &HashMap<Option<i32>, usize>,
    eligible: impl Fn(Option<i32>) -> bool,
) -> bool {
    let mut idle: Vec<(usize, u64, tokio::task::Id)> = slots
        .iter()
        .filter(|(_, s)| eligible(s.peer) && s.connection.state.load(Ordering::SeqCst) == IDLE)
        .map(|(id, s)| {
            let since = s.connection.idle_since.load(Ordering::Relaxed);
            (held.get(&s.peer).copied().unwrap_or(0), since, *id)
        })
        .collect();
    idle.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, id) in idle {
        let connection = &slots[&id].connection;
        // It may have started a request since it was looked at: then it stays.
        if connection
            .state
            .compare_exchange(IDLE, EVICTED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            connection.evict.notify_one();
            let peer = slots.remove(&id).map(|s| s.peer);
            tracing::debug!(?peer, "broker: closed an idle connection to make room");
            return true;
        }
    }
    false
}

async fn serve_connection(shared: Arc<Shared>, stream: UnixStream, connection: Arc<Connection>) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut served = 0usize;
    loop {
        // Idle until the first byte of the next request (it may be buffered already).
        connection.idle_since.store(
            shared.idle_clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        if connection.state.swap(IDLE, Ordering::SeqCst) == EVICTED {
            return;
        }
        let waited = tokio::select! {
            waited = tokio::time::timeout(http::IDLE_TIMEOUT, async {
                r.fill_buf().await.map(|b| b.is_empty())
            }) => waited,
            () = connection.evict.notified() => return,
        };
        if connection
            .state
            .compare_exchange(IDLE, BUSY, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // Evicted while the request began: the client retries on a new connection.
            return;
        }
        match waited {
            // Idle too long, an error, or closed by the client.
            Err(_) | Ok(Err(_)) | Ok(Ok(true)) => return,
            Ok(Ok(false)) => {}
        }
        let read = match tokio::time::timeout(http::READ_TIMEOUT, http::read_request(&mut r)).await
        {
            Err(_) | Ok(Err(_)) => return,
            Ok(Ok(read)) => read,
        };
        match read {
            Read::Closed => return,
            Read::Refuse(response) => {
                tracing::debug!(status = response.status, "broker: request refused");
                let written =
                    tokio::time::timeout(http::WRITE_TIMEOUT, response.write(&mut w, true)).await;
                if matches!(written, Ok(Ok(()))) {
                    // Let the client finish sending what it meant to (up to a limit) before
                    // closing, so that it reads the answer instead of a broken pipe.
                    let _ = w.shutdown().await;
                    let mut sink = vec![0u8; 16 * 1024];
                    let drain = async {
                        let mut total = 0usize;
                        while total < (1 << 20) {
                            match r.read(&mut sink).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => total += n,
                            }
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
                }
                return;
            }
            Read::Request(request) if request.path == "/v1/stream" && request.method == "GET" => {
                // Its answer lasts as long as the connection: nothing follows it.
                stream::serve(&shared, &request, &mut w).await;
                return;
            }
            Read::Request(request) => {
                served += 1;
                let close = request.close || served >= MAX_REQUESTS_PER_CONNECTION;
                let (method, path) = (request.method.clone(), request.path.clone());
                let response = handle(&shared, request).await;
                tracing::debug!(%method, %path, status = response.status, "broker request");
                match tokio::time::timeout(http::WRITE_TIMEOUT, response.write(&mut w, close)).await
                {
                    Ok(Ok(())) if !close => {}
                    Err(_) => {
                        tracing::debug!("broker: a client did not read its answer; dropped");
                        return;
                    }
                    _ => return,
                }
            }
        }
    }
}

async fn handle(shared: &Shared, request: Request) -> Response {
    let route = |allow: &'static str| {
        (request.method != allow).then(|| Response::method_not_allowed(allow))
    };
    match request.path.as_str() {
        "/v1/assign" => match route("POST") {
            Some(r) => r,
            None => assign(shared, &request).await,
        },
        "/v1/release" => match route("POST") {
            Some(r) => r,
            None => release(shared, &request).await,
        },
        "/v1/command" => match route("POST") {
            Some(r) => r,
            None => command(shared, &request).await,
        },
        "/v1/classes" => route("GET").unwrap_or_else(|| {
            let s = shared.snapshot.borrow().clone();
            Response::json(200, &serde_json::json!({ "classes": class_lines(&s) }))
        }),
        "/v1/status" => route("GET").unwrap_or_else(|| {
            let s = shared.snapshot.borrow().clone();
            Response::json(200, &status(&s))
        }),
        "/metrics" => route("GET").unwrap_or_else(|| {
            let s = shared.snapshot.borrow().clone();
            Response::text(metrics::render(&s))
        }),
        "/v1/snapshot" => match route("GET") {
            Some(r) => r,
            None => snapshot(shared, &request).await,
        },
        "/v1/events" => match route("GET") {
            Some(r) => r,
            None => events(shared, &request).await,
        },
        // A GET never gets here (see `serve_connection`).
        "/v1/stream" => Response::method_not_allowed("GET"),
        other => Response::error(
            404,
            format!(
                "no endpoint {other:?}; try /v1/assign, /v1/release, /v1/classes, /v1/status, /v1/snapshot, /v1/events, /v1/stream, /v1/command or /metrics"
            ),
        ),
    }
}

/// The HTTP status for an engine's refusal.
pub fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::NotFound => 404,
        ErrorKind::Invalid => 422,
        ErrorKind::Conflict => 409,
        ErrorKind::Unavailable => 503,
        ErrorKind::ReadOnly => 403,
    }
}

fn refused(e: &CommandError) -> Response {
    Response::json(
        status_of(e.kind),
        &serde_json::json!({ "error": e.message, "kind": e.kind }),
    )
}

/// Parses a JSON body: 415 for another media type, 400 for broken JSON, 422 for JSON of the
/// wrong shape.
fn body<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, Response> {
    if let Some(ct) = &request.content_type {
        let media = ct.split(';').next().unwrap_or_default().trim();
        // curl -d sends application/x-www-form-urlencoded unless told otherwise: accepted, the
        // body must still be JSON.
        if !matches!(
            media,
            "application/json" | "application/x-www-form-urlencoded" | ""
        ) {
            return Err(Response::error(
                415,
                format!("the body must be application/json, not {media}"),
            ));
        }
    }
    serde_json::from_slice(&request.body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Response::error(422, format!("{e}")),
        _ => Response::error(400, format!("malformed JSON: {e}")),
    })
}

fn checked_name(field: &str, value: &str) -> Result<(), Response> {
    check_name(value).map_err(|e| Response::error(422, format!("{field}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    class: String,
    user: String,
    #[serde(default)]
    wait_secs: u64,
}

async fn assign(shared: &Shared, request: &Request) -> Response {
    let b: AssignBody = match body(request) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = checked_name("class", &b.class).and_then(|()| checked_name("user", &b.user)) {
        return r;
    }
    if b.wait_secs > MAX_ASSIGN_WAIT_SECS {
        return Response::error(
            422,
            format!(
                "wait_secs: {} is more than {MAX_ASSIGN_WAIT_SECS}",
                b.wait_secs
            ),
        );
    }
    if !shared.classes.contains(&b.class) {
        return Response::error(404, format!("unknown class {:?}", b.class));
    }
    let command = Command::Assign {
        class: b.class,
        user: b.user,
        wait_secs: b.wait_secs,
    };
    match shared.commander.send(command, "broker").await {
        Ok(Reply::Assigned {
            desktop,
            host,
            display,
            display_password,
            waited_ms,
        }) => Response::json(
            200,
            &serde_json::json!({
                "desktop": desktop, "host": host, "display": display,
                "display_password": display_password, "waited_ms": waited_ms,
            }),
        ),
        Ok(other) => Response::error(500, format!("unexpected answer {other:?}")),
        Err(e) => refused(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    desktop: String,
}

async fn release(shared: &Shared, request: &Request) -> Response {
    let b: ReleaseBody = match body(request) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = checked_name("desktop", &b.desktop) {
        return r;
    }
    let command = Command::Release {
        desktop: b.desktop.clone(),
    };
    match shared.commander.send(command, "broker").await {
        Ok(_) => Response::json(200, &serde_json::json!({ "released": b.desktop })),
        Err(e) => refused(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    command: Command,
    actor: String,
}

async fn command(shared: &Shared, request: &Request) -> Response {
    let b: CommandBody = match body(request) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if b.actor.is_empty()
        || b.actor.chars().count() > MAX_ACTOR_LEN
        || b.actor.chars().any(char::is_control)
    {
        return Response::error(
            422,
            format!("actor: 1 to {MAX_ACTOR_LEN} characters, no control characters"),
        );
    }
    if let Command::Assign { wait_secs, .. } = &b.command
        && *wait_secs > MAX_ASSIGN_WAIT_SECS
    {
        return Response::error(422, format!("wait_secs: at most {MAX_ASSIGN_WAIT_SECS}"));
    }
    match shared.commander.send(b.command, &b.actor).await {
        Ok(reply) => Response::json(200, &serde_json::json!({ "reply": reply })),
        Err(e) => refused(&e),
    }
}

/// `wait` in seconds, at most [`MAX_WAIT_SECS`].
fn wait_param(request: &Request) -> Result<Duration, Response> {
    match request.param("wait") {
        None => Ok(Duration::ZERO),
        Some(v) => v
            .parse::<u64>()
            .map(|s| Duration::from_secs(s.min(MAX_WAIT_SECS)))
            .map_err(|_| Response::error(400, format!("wait={v:?} is not a number of seconds"))),
    }
}

pub(super) fn after_param(request: &Request) -> Result<Option<u64>, Response> {
    match request.param("after") {
        None => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Response::error(400, format!("after={v:?} is not a number"))),
    }
}

async fn snapshot(shared: &Shared, request: &Request) -> Response {
    let (after, wait) = match (after_param(request), wait_param(request)) {
        (Ok(a), Ok(w)) => (a, w),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mut rx = shared.snapshot.clone();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let current = rx.borrow_and_update().clone();
        if after.is_none_or(|a| current.passes > a) {
            return Response::json(200, &*current);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            // Time is up: the same snapshot again (the caller asks anew).
            Err(_) => return Response::json(200, &*current),
            Ok(Err(_)) => return Response::error(503, "the engine has stopped"),
        }
    }
}

async fn events(shared: &Shared, request: &Request) -> Response {
    let (after, wait) = match (after_param(request), wait_param(request)) {
        (Ok(a), Ok(w)) => (a.unwrap_or(0), w),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mut wake = shared.ring_wake.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let batch = ring_batch(shared, after);
        // A caller ahead of the ring (the engine restarted) gets the answer at once.
        if !batch.events.is_empty() || after > batch.last {
            return Response::json(200, &batch);
        }
        match tokio::time::timeout_at(deadline, wake.changed()).await {
            Ok(Ok(())) => {}
            Err(_) => return Response::json(200, &batch),
            Ok(Err(_)) => return Response::error(503, "the engine has stopped"),
        }
    }
}

/// The events after `after` the ring holds (at most [`EVENT_BATCH`]), and how many it lost.
pub(super) fn ring_batch(shared: &Shared, after: u64) -> EventBatch {
    let ring = shared.ring.lock().unwrap_or_else(|e| e.into_inner());
    let oldest = ring.events.front().map_or(ring.last + 1, |e| e.seq);
    EventBatch {
        events: ring
            .events
            .iter()
            .filter(|e| e.seq > after)
            .take(EVENT_BATCH)
            .cloned()
            .collect(),
        last: ring.last,
        missed: oldest
            .saturating_sub(after + 1)
            .min(ring.last.saturating_sub(after)),
    }
}
