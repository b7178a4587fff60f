//! `GET /v1/stream`: the engine's snapshots and events as they happen, one JSON object a line,
//! on one long-lived answer. An attached console reads it instead of asking again after each
//! pass; `curl -N --unix-socket S http://deskpool/v1/stream` shows it to a person.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::http::{self, Request};
use super::server::{EventBatch, NumberedEvent, Shared, after_param, ring_batch};
use deskpool_api::Snapshot;

/// After this long without a line, an empty one is written: a client that went away is
/// noticed (the write fails and the connection's slot is freed), and the client can tell a
/// quiet engine from a dead connection.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

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

async fn write_timed(out: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> bool {
    let write = async {
        out.write_all(bytes).await?;
        out.flush().await
    };
    matches!(
        tokio::time::timeout(http::WRITE_TIMEOUT, write).await,
        Ok(Ok(()))
    )
}

async fn write_line(out: &mut (impl AsyncWrite + Unpin), line: &Line<'_>) -> bool {
    let mut bytes = match serde_json::to_vec(line) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("broker stream: cannot encode a line: {e}");
            return false;
        }
    };
    bytes.push(b'\n');
    write_timed(out, &bytes).await
}

/// Serves one stream until the client goes away, does not read for [`http::WRITE_TIMEOUT`], or
/// the engine stops. `?after=SEQ` starts the events after that sequence number (default: every
/// event the server still holds); an `after` beyond the newest (the engine restarted) starts
/// from the first. The answer has no length: it ends when the connection closes.
pub(super) async fn serve(shared: &Shared, request: &Request, out: &mut (impl AsyncWrite + Unpin)) {
    let after = match after_param(request) {
        Ok(a) => a.unwrap_or(0),
        Err(refusal) => {
            let _ = tokio::time::timeout(http::WRITE_TIMEOUT, refusal.write(out, true)).await;
            return;
        }
    };
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
    if !write_timed(out, head.as_bytes()).await {
        return;
    }
    let mut snapshots = shared.snapshot.clone();
    // Subscribed before the ring is first read: an event pushed after that read wakes us.
    let mut wake = shared.ring_wake.subscribe();
    let mut cursor = after;
    if ring_batch(shared, 0).last < cursor {
        cursor = 0;
    }
    let mut snapshot_due = true;
    loop {
        if snapshot_due {
            let current = snapshots.borrow_and_update().clone();
            if !write_line(out, &Line::Snapshot(&current)).await {
                return;
            }
            snapshot_due = false;
        }
        let EventBatch { events, missed, .. } = ring_batch(shared, cursor);
        if missed > 0 && !write_line(out, &Line::Missed(missed)).await {
            return;
        }
        for event in &events {
            if !write_line(out, &Line::Event(event)).await {
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
            () = tokio::time::sleep(HEARTBEAT) => if !write_timed(out, b"\n").await {
                return;
            },
        }
    }
}
