//! The client side of the broker socket: one-shot requests (`deskpool ctl`) and [`attach`],
//! which gives a console the same [`EngineHandle`] it would have on an engine of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::server::{EventBatch, status_of};
use deskpool_api::EngineHandle;
use deskpool_api::{Command, CommandError, ErrorKind, Event, Reply, Request, Snapshot};

/// Largest answer read (a snapshot of a big fleet is a few MiB).
const MAX_ANSWER: usize = 256 << 20;
/// How long a long-poll asks the server to hold the request.
const POLL_SECS: u64 = 25;

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
    #[error("{}: no answer within {}s", .0.display(), .1.as_secs())]
    Timeout(PathBuf, Duration),
    #[error("{}: malformed answer: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
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
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| e.to_string())
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

/// Sends one request (`Connection: close`) and reads the answer, within `limit`.
pub async fn call(
    socket: &Path,
    method: &str,
    target: &str,
    body: Option<&serde_json::Value>,
    limit: Duration,
) -> Result<Answer, ClientError> {
    let path = socket.to_path_buf();
    let exchange = async {
        let mut stream = UnixStream::connect(socket)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    ClientError::NotListening(path.clone())
                }
                _ => ClientError::Io {
                    path: path.clone(),
                    source: e,
                },
            })?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nHost: deskpool\r\nConnection: close\r\n");
        if method == "POST" {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(&body);
        let io = |source| ClientError::Io {
            path: path.clone(),
            source,
        };
        stream.write_all(head.as_bytes()).await.map_err(io)?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER as u64)
            .read_to_end(&mut raw)
            .await
            .map_err(io)?;
        parse_answer(&raw).map_err(|message| ClientError::Malformed {
            path: path.clone(),
            message,
        })
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Timeout(socket.to_path_buf(), limit)),
    }
}

fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut body = raw[split + 4..].to_vec();
    for line in lines {
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            let n: usize = v.trim().parse().map_err(|_| "bad Content-Length")?;
            if body.len() < n {
                return Err(format!("body cut short ({} of {n} bytes)", body.len()));
            }
            body.truncate(n);
        }
    }
    Ok(Answer { status, body })
}

/// Connects a console to the engine serving `socket`. The handle's snapshot channel is fed
/// by a long-poll loop and closes when the engine goes away; its events by another; its
/// commands are forwarded to `POST /v1/command` (or refused here when `read_only`).
/// Shutting the handle down stops these loops, never the engine.
pub async fn attach(socket: &Path, read_only: bool) -> Result<EngineHandle, ClientError> {
    let socket = socket.to_path_buf();
    let first = fetch_snapshot(&socket, None).await?;
    let (snapshot_tx, snapshot) = watch::channel(Arc::new(first));
    let (events_tx, events) = mpsc::channel(1024);
    let (commands, commands_rx) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        let mut pumps = JoinSet::new();
        pumps.spawn(snapshot_pump(socket.clone(), snapshot_tx));
        pumps.spawn(event_pump(socket.clone(), events_tx));
        pumps.spawn(command_pump(socket, commands_rx, read_only));
        // Whichever ends first (the engine went away, or the handle was dropped) ends all:
        // the snapshot channel then closes, which the console reports.
        let _ = pumps.join_next().await;
        pumps.abort_all();
    });
    Ok(EngineHandle::from_parts(snapshot, events, commands, task))
}

async fn fetch_snapshot(socket: &Path, after: Option<u64>) -> Result<Snapshot, ClientError> {
    let target = match after {
        Some(a) => format!("/v1/snapshot?after={a}&wait={POLL_SECS}"),
        None => "/v1/snapshot".to_string(),
    };
    let answer = call(
        socket,
        "GET",
        &target,
        None,
        Duration::from_secs(POLL_SECS + 15),
    )
    .await?;
    if !answer.ok() {
        return Err(ClientError::Malformed {
            path: socket.to_path_buf(),
            message: answer.error(),
        });
    }
    answer.json().map_err(|message| ClientError::Malformed {
        path: socket.to_path_buf(),
        message,
    })
}

async fn snapshot_pump(socket: PathBuf, tx: watch::Sender<Arc<Snapshot>>) {
    let mut failures = 0;
    loop {
        let after = tx.borrow().passes;
        match fetch_snapshot(&socket, Some(after)).await {
            Ok(s) => {
                failures = 0;
                if s.passes != after {
                    tx.send_replace(Arc::new(s));
                }
            }
            Err(ClientError::NotListening(_)) => return,
            Err(e) => {
                failures += 1;
                tracing::warn!("attached console: {e}");
                if failures >= 3 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

async fn event_pump(socket: PathBuf, tx: mpsc::Sender<Event>) {
    let mut after = 0u64;
    let mut failures = 0;
    loop {
        let target = format!("/v1/events?after={after}&wait={POLL_SECS}");
        let answer = call(
            &socket,
            "GET",
            &target,
            None,
            Duration::from_secs(POLL_SECS + 15),
        )
        .await;
        let batch: EventBatch = match answer.map(|a| a.json()) {
            Ok(Ok(b)) => b,
            Err(ClientError::NotListening(_)) => return,
            other => {
                failures += 1;
                tracing::warn!("attached console: events: {other:?}");
                if failures >= 3 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        failures = 0;
        if batch.last < after {
            // The engine restarted: its numbering starts again.
            after = 0;
            continue;
        }
        for e in batch.events {
            after = after.max(e.seq);
            if tx.send(e.event).await.is_err() {
                return;
            }
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
