//! The client side of the broker socket, on hyper's HTTP/1.1 client: one-shot requests
//! (`deskpool ctl`) and [`attach`], which gives a console the same [`EngineHandle`] it would have
//! on an engine of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request as HttpRequest, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::server::status_of;
use super::stream::{HEARTBEAT, StreamLine};
use deskpool_api::EngineHandle;
use deskpool_api::{Command, CommandError, ErrorKind, Event, Reply, Request, Snapshot};

/// Largest answer read (a snapshot of a big fleet is a few MiB), and longest stream line.
const MAX_ANSWER: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no deskpool engine is listening on {}: start `deskpool serve` or the console",
        .0.display()
    )]
    NotListening(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Http { path: PathBuf, source: hyper::Error },
    #[error("{}: no answer within {}s", .0.display(), .1.as_secs())]
    Timeout(PathBuf, Duration),
    #[error("{}: malformed answer: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
    #[error("{}: {target}: {status} {message}", path.display())]
    Refused {
        path: PathBuf,
        target: String,
        status: u16,
        message: String,
    },
}

/// A status and a body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status == 200
    }
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
    /// The `error` of an error answer (or the body as text).
    pub fn error(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// Whether an engine listens on `socket` now.
pub fn is_live(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

async fn connect(socket: &Path) -> Result<UnixStream, ClientError> {
    UnixStream::connect(socket)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ClientError::NotListening(socket.to_path_buf())
            }
            _ => ClientError::Io {
                path: socket.to_path_buf(),
                source: e,
            },
        })
}

/// The task that drives one connection; the connection closes when this is dropped.
struct Driver(tokio::task::JoinHandle<()>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends one request on a connection of its own (`Connection: close`) and returns the answer's
/// head and body, with the task that reads it.
async fn exchange(
    socket: &Path,
    method: Method,
    target: &str,
    body: Option<&serde_json::Value>,
) -> Result<(http::Response<Incoming>, Driver), ClientError> {
    let path = socket.to_path_buf();
    let stream = connect(socket).await?;
    let http = |source| ClientError::Http {
        path: path.clone(),
        source,
    };
    let (mut sender, connection): (SendRequest<Full<Bytes>>, _) =
        http1::handshake(TokioIo::new(stream)).await.map_err(http)?;
    let driver = Driver(tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("broker client: connection ended: {e}");
        }
    }));
    let mut request = HttpRequest::builder()
        .method(method)
        .uri(target)
        .header(HOST, HeaderValue::from_static("deskpool"))
        .header(CONNECTION, HeaderValue::from_static("close"));
    let payload = match body {
        Some(b) => {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let request = request
        .body(Full::new(payload))
        .map_err(|e| ClientError::Malformed {
            path: path.clone(),
            message: format!("cannot ask for {target:?}: {e}"),
        })?;
    let response = sender.send_request(request).await.map_err(http)?;
    Ok((response, driver))
}

/// Reads a whole answer body, at most [`MAX_ANSWER`] bytes.
async fn read_whole(path: &Path, body: Incoming) -> Result<Vec<u8>, ClientError> {
    match Limited::new(body, MAX_ANSWER).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) => Err(match e.downcast::<hyper::Error>() {
            Ok(source) => ClientError::Http {
                path: path.to_path_buf(),
                source: *source,
            },
            Err(other) => ClientError::Malformed {
                path: path.to_path_buf(),
                message: other.to_string(),
            },
        }),
    }
}

/// Sends one request (`Connection: close`) and reads the answer, within `limit`.
pub async fn call(
    socket: &Path,
    method: &str,
    target: &str,
    body: Option<&serde_json::Value>,
    limit: Duration,
) -> Result<Answer, ClientError> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| ClientError::Malformed {
        path: socket.to_path_buf(),
        message: format!("method {method:?}: {e}"),
    })?;
    let whole = async {
        let (response, _driver) = exchange(socket, method, target, body).await?;
        let status = response.status().as_u16();
        let body = read_whole(socket, response.into_body()).await?;
        Ok(Answer { status, body })
    };
    match tokio::time::timeout(limit, whole).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Timeout(socket.to_path_buf(), limit)),
    }
}

/// Connects a console to the engine serving `socket`. The handle's snapshot channel and its
/// events are fed from one `GET /v1/stream` (reconnected if it breaks while the engine still
/// listens); the snapshot channel closes when the engine goes away. Commands are forwarded to
/// `POST /v1/command` (or refused here when `read_only`). Shutting the handle down stops these
/// loops, never the engine.
pub async fn attach(socket: &Path, read_only: bool) -> Result<EngineHandle, ClientError> {
    let socket = socket.to_path_buf();
    let mut stream = open_stream(&socket, 0).await?;
    let first = match stream.next_line().await? {
        Some(StreamLine::Snapshot(s)) => s,
        other => {
            return Err(ClientError::Malformed {
                path: socket,
                message: format!("the stream did not begin with a snapshot: {other:?}"),
            });
        }
    };
    let (snapshot_tx, snapshot) = watch::channel(Arc::new(*first));
    let (events_tx, events) = mpsc::channel(1024);
    let (commands, commands_rx) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        let mut pumps = JoinSet::new();
        pumps.spawn(stream_pump(socket.clone(), stream, snapshot_tx, events_tx));
        pumps.spawn(command_pump(socket, commands_rx, read_only));
        // Whichever ends first (the engine went away, or the handle was dropped) ends all:
        // the snapshot channel then closes, which the console reports.
        let _ = pumps.join_next().await;
        pumps.abort_all();
    });
    Ok(EngineHandle::from_parts(snapshot, events, commands, task))
}

/// An open `GET /v1/stream` answer, past its head.
struct Stream {
    path: PathBuf,
    body: Incoming,
    /// What arrived after the last whole line.
    pending: BytesMut,
    _driver: Driver,
}

async fn open_stream(socket: &Path, after: u64) -> Result<Stream, ClientError> {
    let path = socket.to_path_buf();
    let target = format!("/v1/stream?after={after}");
    let opening = async {
        let (response, driver) = exchange(socket, Method::GET, &target, None).await?;
        if response.status() != StatusCode::OK {
            let status = response.status().as_u16();
            let body = read_whole(socket, response.into_body()).await?;
            return Err(ClientError::Refused {
                path: path.clone(),
                target: "/v1/stream".to_string(),
                status,
                message: Answer { status, body }.error(),
            });
        }
        Ok(Stream {
            path: path.clone(),
            body: response.into_body(),
            pending: BytesMut::new(),
            _driver: driver,
        })
    };
    let limit = Duration::from_secs(30);
    match tokio::time::timeout(limit, opening).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Timeout(path, limit)),
    }
}

impl Stream {
    /// The next line that is not a heartbeat; `None` when the server closed the stream. A
    /// line is waited for at most three heartbeats.
    async fn next_line(&mut self) -> Result<Option<StreamLine>, ClientError> {
        let limit = HEARTBEAT * 3;
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line = self.pending.split_to(end + 1);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return serde_json::from_slice(&line).map(Some).map_err(|e| {
                    ClientError::Malformed {
                        path: self.path.clone(),
                        message: format!("a stream line: {e}"),
                    }
                });
            }
            if self.pending.len() > MAX_ANSWER {
                return Err(ClientError::Malformed {
                    path: self.path.clone(),
                    message: format!("a stream line longer than {MAX_ANSWER} bytes"),
                });
            }
            let frame = match tokio::time::timeout(limit, self.body.frame()).await {
                Err(_) => return Err(ClientError::Timeout(self.path.clone(), limit)),
                Ok(None) => return Ok(None),
                Ok(Some(Err(source))) => {
                    return Err(ClientError::Http {
                        path: self.path.clone(),
                        source,
                    });
                }
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                self.pending.extend_from_slice(&data);
            }
        }
    }
}

async fn stream_pump(
    socket: PathBuf,
    mut stream: Stream,
    snapshots: watch::Sender<Arc<Snapshot>>,
    events: mpsc::Sender<Event>,
) {
    let mut after = 0u64;
    let mut failures = 0;
    let mut dropped = 0u64;
    loop {
        match stream.next_line().await {
            Ok(Some(StreamLine::Snapshot(s))) => {
                failures = 0;
                snapshots.send_replace(Arc::new(*s));
            }
            Ok(Some(StreamLine::Event(e))) => {
                failures = 0;
                after = e.seq;
                // A console that does not keep up loses events rather than stalling its
                // snapshots (the engine does the same to a slow console of its own).
                if let Err(mpsc::error::TrySendError::Full(_)) = events.try_send(e.event) {
                    dropped += 1;
                    tracing::warn!(dropped, "attached console: events not read; dropped");
                }
            }
            Ok(Some(StreamLine::Missed(n))) => {
                tracing::warn!("attached console: {n} events fell out of the server's ring");
            }
            Ok(None) | Err(_) => {
                if snapshots.is_closed() {
                    return;
                }
                failures += 1;
                if failures >= 3 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                match open_stream(&socket, after).await {
                    Ok(s) => stream = s,
                    Err(ClientError::NotListening(_)) => return,
                    Err(e) => tracing::warn!("attached console: {e}"),
                }
            }
        }
        if snapshots.is_closed() {
            return;
        }
    }
}

async fn command_pump(socket: PathBuf, mut rx: mpsc::Receiver<Request>, read_only: bool) {
    let mut inflight = JoinSet::new();
    loop {
        tokio::select! {
            request = rx.recv() => {
                let Some(request) = request else { return };
                if read_only {
                    let _ = request.reply.send(Err(CommandError::read_only("this console is read-only")));
                    continue;
                }
                let socket = socket.clone();
                inflight.spawn(async move {
                    let result = remote_command(&socket, request.command, &request.actor).await;
                    let _ = request.reply.send(result);
                });
            }
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
        }
    }
}

/// Sends one command to the engine behind `socket`.
pub async fn remote_command(
    socket: &Path,
    command: Command,
    actor: &str,
) -> Result<Reply, CommandError> {
    let limit = match &command {
        Command::Assign { wait_secs, .. } => Duration::from_secs(wait_secs + 60),
        _ => Duration::from_secs(60),
    };
    let body = serde_json::json!({ "command": command, "actor": actor });
    let answer = call(socket, "POST", "/v1/command", Some(&body), limit)
        .await
        .map_err(|e| CommandError::unavailable(e.to_string()))?;
    if answer.ok() {
        #[derive(serde::Deserialize)]
        struct Ok {
            reply: Reply,
        }
        return answer
            .json::<Ok>()
            .map(|o| o.reply)
            .map_err(|e| CommandError::unavailable(format!("malformed answer: {e}")));
    }
    #[derive(serde::Deserialize)]
    struct Refusal {
        error: String,
        kind: Option<ErrorKind>,
    }
    let kind_of_status = |status| match status {
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        403 => ErrorKind::ReadOnly,
        400 | 413 | 415 | 422 => ErrorKind::Invalid,
        _ => ErrorKind::Unavailable,
    };
    let (kind, message) = match answer.json::<Refusal>() {
        Ok(r) => (r.kind.unwrap_or(kind_of_status(answer.status)), r.error),
        Err(_) => (kind_of_status(answer.status), answer.error()),
    };
    debug_assert!(status_of(kind) > 0);
    Err(CommandError::new(kind, message))
}
