//! The server side of the broker socket and the network endpoint: HTTP/1.1 by hyper, routed by
//! axum (`routes.rs`), each connection admitted and bounded by `conn.rs`; the endpoint's
//! requests also pass `access.rs` (tokens, scopes, audit).
//!
//! Endpoints (JSON unless said otherwise; errors are `{"error": "..."}` with a 4xx/5xx status):
//!
//! | method | path              | what                                                        |
//! |--------|-------------------|-------------------------------------------------------------|
//! | POST   | `/v1/assign`      | `{"class","user","wait_secs"?}` → `{"desktop","host","display","waited_ms"}` |
//! | POST   | `/v1/release`     | `{"desktop"}` → `{"released"}`                              |
//! | POST   | `/v1/disconnect`  | `{"desktop"}` → `{"disconnected"}`: kept for the user's reconnect |
//! | GET    | `/v1/classes`     | per class levels, targets and logins                        |
//! | GET    | `/v1/status`      | classes, hosts and engine state                             |
//! | GET    | `/v1/snapshot`    | `?after=PASSES&wait=SECS` long-poll: the whole snapshot     |
//! | GET    | `/v1/events`      | `?after=SEQ&wait=SECS` long-poll: events with sequence numbers |
//! | GET    | `/v1/stream`      | `?after=SEQ`: snapshots and events as JSON lines, until closed |
//! | POST   | `/v1/command`     | `{"command": {"type": ...}, "actor"}` → `{"reply"}`         |
//! | GET    | `/metrics`        | Prometheus text                                             |

use std::collections::VecDeque;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use super::access::{Access, authorize};
use super::endpoint::{EndpointError, TcpEndpoint};
pub use super::routes::status_of;
pub use super::status::{ClassLine, HostLine, Status, class_lines, status};
use super::{conn, routes};
use deskpool_api::{Commander, EngineHandle, Event, Snapshot};
use deskpool_core::policy::BrokerSettings;
use deskpool_core::policy::access::ClientToken;

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
/// The request line and headers together (hyper's read buffer while it reads a head; hyper
/// also refuses more than 100 header fields).
pub const MAX_HEAD: usize = 8 * 1024;
/// A request body, with a length or chunked.
pub const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send the rest of a request once its first byte arrived (the
/// header timeout): generous, for a person typing into `socat` or a client on a loaded host.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may wait for the first byte of a request, on a new connection or
/// between two requests on a kept-alive one. Much shorter than [`READ_TIMEOUT`]: a client that
/// means to ask sends at once, and an idle connection holds a slot others may need (they are
/// also closed early to make room, see [`MAX_CONNECTIONS`]).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write to a client may make no progress. A client that does not read its answers
/// (it may pipeline requests and never read) would otherwise hold its slot for as long as it
/// likes; 10 s moves a snapshot of a few MiB to any client that reads at all.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running broker socket. Dropping it stops serving and removes the socket file (if it is
/// still the one this broker created).
pub struct Broker {
    path: PathBuf,
    shared: Arc<Shared>,
    /// The network endpoint, when one is served: its task and its clients' tokens.
    endpoint: Option<(tokio::task::JoinHandle<()>, Arc<Access>)>,
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

impl Ring {
    /// Keeps `event` under the next sequence number (the oldest falls out when full).
    fn push(&mut self, event: Event) -> u64 {
        self.last += 1;
        if self.events.len() == EVENT_RING {
            self.events.pop_front();
        }
        self.events.push_back(NumberedEvent {
            seq: self.last,
            event,
        });
        self.last
    }

    /// Uses up the numbers of `lost` events that never arrived.
    fn skip(&mut self, lost: u64) -> u64 {
        self.last += lost;
        self.last
    }

    /// The events after `after` (at most [`EVENT_BATCH`]), and how many it lost: those that
    /// fell out of the ring and those that never reached it (numbers skipped when the broker
    /// fell behind the engine).
    fn batch(&self, after: u64) -> EventBatch {
        let held_after = self.events.iter().filter(|e| e.seq > after).count() as u64;
        EventBatch {
            events: self
                .events
                .iter()
                .filter(|e| e.seq > after)
                .take(EVENT_BATCH)
                .cloned()
                .collect(),
            last: self.last,
            missed: self.last.saturating_sub(after).saturating_sub(held_after),
        }
    }
}

pub(super) struct Shared {
    pub(super) snapshot: watch::Receiver<Arc<Snapshot>>,
    pub(super) commander: Commander,
    pub(super) classes: Vec<String>,
    ring: Mutex<Ring>,
    pub(super) ring_wake: watch::Sender<u64>,
}

impl Shared {
    fn push(&self, event: Event) {
        let seq = self
            .ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
        self.ring_wake.send_replace(seq);
    }

    /// `lost` events never reached the ring: their numbers are used up all the same, so that a
    /// sequence number still counts every event the engine made.
    fn skip(&self, lost: u64) {
        let seq = self
            .ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .skip(lost);
        self.ring_wake.send_replace(seq);
    }
}

impl Broker {
    /// Binds `path` (mode 0600) and serves the engine of `engine` on it. Subscribes to the
    /// engine's events (`EngineHandle::events_subscribe`); `engine.events` stays the console's.
    /// Needs a tokio runtime.
    pub fn start(
        engine: &mut EngineHandle,
        path: &Path,
        classes: Vec<String>,
    ) -> Result<Broker, BindError> {
        let (listener, identity) = bind(path)?;
        let listener = tokio::net::UnixListener::from_std(listener)
            .map_err(|e| BindError::io("cannot serve", path, e))?;
        let mut events = engine.events_subscribe();
        let (ring_wake, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            snapshot: engine.snapshot.clone(),
            commander: engine.commander(),
            classes,
            ring: Mutex::new(Ring::default()),
            ring_wake,
        });
        let fan = shared.clone();
        let fanout = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => fan.push(event),
                    Err(broadcast::error::RecvError::Lagged(lost)) => {
                        tracing::warn!(lost, "broker: events arrived faster than it kept them");
                        fan.skip(lost);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        let task = tokio::spawn(conn::accept_loop(
            listener,
            routes::router(shared.clone()),
            shared.clone(),
        ));
        tracing::info!(socket = %path.display(), "broker socket listening");
        Ok(Broker {
            path: path.to_path_buf(),
            shared,
            endpoint: None,
            identity,
            task: Some(task),
            fanout: Some(fanout),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves the same routes on the network endpoint of `settings` (`[broker] listen`), if
    /// it has one, for the clients of its tokens; each request is audited in `audit_log`.
    /// Returns the address it listens on.
    pub async fn serve_endpoint(
        &mut self,
        settings: &BrokerSettings,
        audit_log: PathBuf,
    ) -> Result<Option<std::net::SocketAddr>, EndpointError> {
        let Some(addr) = settings.listen else {
            return Ok(None);
        };
        let endpoint = TcpEndpoint::bind(addr, settings.tls.as_ref()).await?;
        let local = endpoint
            .local_addr()
            .map_err(|error| EndpointError::Listen { addr, error })?;
        let access = Arc::new(Access::new(&settings.tokens, audit_log));
        let router = routes::router(self.shared.clone()).layer(
            axum::middleware::from_fn_with_state(access.clone(), authorize),
        );
        let task = tokio::spawn(conn::accept_loop(endpoint, router, self.shared.clone()));
        tracing::info!(%local, tls = settings.tls.is_some(), "broker endpoint listening");
        if let Some((old, _)) = self.endpoint.replace((task, access)) {
            old.abort();
        }
        Ok(Some(local))
    }

    /// Takes `tokens` (the token file read again) in place of the endpoint's: a client whose
    /// token is gone is refused from its next request on.
    pub fn set_tokens(&self, tokens: &[ClientToken]) {
        if let Some((_, access)) = &self.endpoint {
            access.replace(tokens);
        }
    }

    /// Stops serving (open connections are closed) and removes the socket file.
    pub async fn shutdown(mut self) {
        if let Some((task, _)) = self.endpoint.take() {
            task.abort();
            let _ = task.await;
        }
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
        if let Some((task, _)) = self.endpoint.take() {
            task.abort();
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(fanout) = self.fanout.take() {
            fanout.abort();
        }
        self.remove_socket();
    }
}

/// Why the broker's socket could not be served. The message names the path, and the system's
/// error where there is one, whole (it is shown as it is, in the console's note too).
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "a deskpool engine is already listening on {}; use `deskpool ctl` or attach a console to it",
        path.display()
    )]
    AlreadyServed { path: PathBuf },
    #[error(
        "{} exists and is not a socket; remove it or set [broker] socket to another path",
        path.display()
    )]
    NotASocket { path: PathBuf },
    #[error("{what} {}: {error}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
}

impl BindError {
    fn io(what: &'static str, path: &Path, error: std::io::Error) -> BindError {
        BindError::Io {
            what,
            path: path.to_path_buf(),
            error,
        }
    }
}

/// Creates the listening socket at `path` with mode 0600: a stale socket file (nobody
/// listening) is replaced; a live one, or a file that is not a socket, is refused.
pub fn bind(path: &Path) -> Result<(std::os::unix::net::UnixListener, (u64, u64)), BindError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(BindError::AlreadyServed {
                    path: path.to_path_buf(),
                });
            }
            tracing::info!(socket = %path.display(), "replacing a stale socket file");
            std::fs::remove_file(path)
                .map_err(|e| BindError::io("cannot remove the stale socket", path, e))?;
        }
        Ok(_) => {
            return Err(BindError::NotASocket {
                path: path.to_path_buf(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BindError::io("cannot use", path, e)),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // As the state directory: private (the socket itself is 0600 anyway).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| BindError::io("cannot create", dir, e))?;
    }
    // The socket is born 0600 (umask), then set so explicitly: nobody else may connect even for
    // an instant. The umask is process-wide; it is restored at once.
    // SAFETY: umask only swaps the process's file mode mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| BindError::io("cannot listen on", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| BindError::io("cannot set the mode of", path, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| BindError::io("cannot serve", path, e))?;
    let meta =
        std::fs::symlink_metadata(path).map_err(|e| BindError::io("cannot read", path, e))?;
    Ok((listener, (meta.dev(), meta.ino())))
}

/// The events after `after` the ring holds (at most [`EVENT_BATCH`]), and how many it lost.
pub(super) fn ring_batch(shared: &Shared, after: u64) -> EventBatch {
    shared
        .ring
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .batch(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use deskpool_api::EventKind;

    fn event(n: u64) -> Event {
        Event {
            at: jiff::Timestamp::UNIX_EPOCH,
            kind: EventKind::Provisioned,
            class: None,
            host: None,
            desktop: None,
            message: format!("event {n}"),
        }
    }

    #[test]
    fn events_the_broker_never_received_are_reported_missed() {
        let mut ring = Ring::default();
        for n in 1..=5 {
            ring.push(event(n));
        }
        assert_eq!(ring.batch(5).missed, 0);
        // The broker fell behind the engine by 10 events: their numbers are used up.
        ring.skip(10);
        ring.push(event(16));
        let batch = ring.batch(5);
        assert_eq!(batch.last, 16);
        assert_eq!(batch.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [16]);
        assert_eq!(batch.missed, 10);
        // A reader up to date before the gap and one after it.
        assert_eq!(ring.batch(3).missed, 10);
        assert_eq!(ring.batch(16).missed, 0);
    }

    #[test]
    fn events_fallen_out_of_the_ring_are_reported_missed() {
        let mut ring = Ring::default();
        let total = EVENT_RING as u64 + 7;
        for n in 1..=total {
            ring.push(event(n));
        }
        let batch = ring.batch(0);
        assert_eq!(batch.missed, 7);
        assert_eq!(batch.events.first().map(|e| e.seq), Some(8));
        assert_eq!(ring.batch(total).missed, 0);
    }
}
