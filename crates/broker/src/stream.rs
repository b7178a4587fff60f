//! `GET /v1/stream`: the engine's snapshots and events as they happen, one JSON object a line,
//! on one long-lived answer (chunked: each line is one chunk). An attached console reads it
//! instead of asking again after each pass; `curl -N --unix-socket S http://deskpool/v1/stream`
//! shows it to a person.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use http::{HeaderValue, Uri};
use http_body::Frame;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::routes::Params;
use super::server::{EventBatch, NumberedEvent, Shared, ring_batch};
use deskpool_api::Snapshot;

/// After this long without a line, an empty one is written: a client that went away is
/// noticed (the write fails and the connection's slot is freed), and the client can tell a
/// quiet engine from a dead connection.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Lines encoded ahead of what the connection has written: a slow reader stalls the encoder
/// instead of growing a queue; when it reads again it gets the newest snapshot, and a `missed`
/// line for events that fell out of the ring meanwhile.
const LINES_AHEAD: usize = 16;

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Line<'a> {
    Snapshot(&'a Snapshot),
    Event(&'a NumberedEvent),
    Missed(u64),
}

/// One line of the stream, as a client reads it (empty lines are heartbeats).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamLine {
    /// The whole snapshot: the first line, then again each time the engine publishes one.
    Snapshot(Box<Snapshot>),
    /// An event with its sequence number (the same numbering as `/v1/events`).
    Event(NumberedEvent),
    /// This many events fell out of the server's ring before this client got them.
    Missed(u64),
}

/// The answer's body: the lines the encoder task sends. It ends when the task does (the engine
/// stopped); dropping it (the connection closed) ends the task.
struct Lines(mpsc::Receiver<Bytes>);

impl http_body::Body for Lines {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|line| line.map(|l| Ok(Frame::data(l))))
    }
}

/// Serves one stream. `?after=SEQ` starts the events after that sequence number (default: every
/// event the server still holds); an `after` beyond the newest (the engine restarted) starts
/// from the first. The answer has no length: it lasts until the client goes away, stops reading
/// (see `server::WRITE_TIMEOUT`), or the engine stops; its connection serves nothing after it.
pub(super) async fn serve(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let after = match Params::of(&uri).and_then(|p| p.after()) {
        Ok(a) => a.unwrap_or(0),
        Err(refusal) => return refusal.answer(),
    };
    let (tx, rx) = mpsc::channel(LINES_AHEAD);
    tokio::spawn(encode(shared, after, tx));
    let mut response = Response::new(Body::new(Lines(rx)));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

fn encoded(line: &Line<'_>) -> Option<Bytes> {
    match serde_json::to_vec(line) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            Some(bytes.into())
        }
        Err(e) => {
            tracing::warn!("broker stream: cannot encode a line: {e}");
            None
        }
    }
}

/// Sends `line`; false when the answer is gone.
async fn send(out: &mpsc::Sender<Bytes>, line: &Line<'_>) -> bool {
    match encoded(line) {
        Some(bytes) => out.send(bytes).await.is_ok(),
        None => false,
    }
}

async fn encode(shared: Arc<Shared>, after: u64, out: mpsc::Sender<Bytes>) {
    let mut snapshots = shared.snapshot.clone();
    // Subscribed before the ring is first read: an event pushed after that read wakes us.
    let mut wake = shared.ring_wake.subscribe();
    let mut cursor = after;
    if ring_batch(&shared, 0).last < cursor {
        cursor = 0;
    }
    let mut snapshot_due = true;
    loop {
        if snapshot_due {
            let current = snapshots.borrow_and_update().clone();
            if !send(&out, &Line::Snapshot(&current)).await {
                return;
            }
            snapshot_due = false;
        }
        let EventBatch { events, missed, .. } = ring_batch(&shared, cursor);
        if missed > 0 && !send(&out, &Line::Missed(missed)).await {
            return;
        }
        for event in &events {
            if !send(&out, &Line::Event(event)).await {
                return;
            }
            cursor = event.seq;
        }
        if !events.is_empty() {
            // There may be more than one batch: read the ring again before waiting.
            continue;
        }
        tokio::select! {
            changed = snapshots.changed() => match changed {
                Ok(()) => snapshot_due = true,
                Err(_) => return,
            },
            woke = wake.changed() => if woke.is_err() {
                return;
            },
            () = out.closed() => return,
            () = tokio::time::sleep(HEARTBEAT) => if out.send(Bytes::from_static(b"\n")).await.is_err() {
                return;
            },
        }
    }
}
