//! The connections of the broker socket: admission (the connection cap, the per-process quota,
//! evicting an idle connection for a newcomer), and each admitted connection served by hyper's
//! HTTP/1.1 server within the limits of `server.rs` (head and body size, idle and read timeouts,
//! write progress, requests per connection).
//!
//! A connection is in one [`State`] at a time. Only the accept loop moves Idle to Evicted, and
//! only the connection moves Idle to Reading, both under the phase's lock, so a connection that
//! has started a request is never evicted.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::Response;
use bytes::BytesMut;
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::{HeaderValue, Method, Request};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::routes::{Refused, error};
use super::server::{
    IDLE_TIMEOUT, MAX_BODY, MAX_CONNECTIONS, MAX_HEAD, MAX_PER_PEER, MAX_REQUESTS_PER_CONNECTION,
    READ_TIMEOUT, Shared, WRITE_TIMEOUT,
};

/// Ticks each time a connection becomes idle: orders idle connections, oldest first.
static IDLE_CLOCK: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between two requests (or before the first): it may be closed to make room.
    Idle,
    /// A request's first byte arrived; the rest of it (head and body) is being read.
    Reading,
    /// Handling a request or writing its answer (a stream stays here as long as it lasts).
    Busy,
    /// Chosen to be closed (to make room, or it timed out): it serves nothing more.
    Evicted,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Phase {
    state: State,
    /// When the state began.
    since: Instant,
    /// The [`IDLE_CLOCK`] when it last became idle (lower: idle longer).
    idle_tick: u64,
}

/// What a connection's task, its I/O, its requests and the accept loop share.
struct Connection {
    phase: Mutex<Phase>,
    /// An answer's body was let go by hyper: the connection is idle once it is flushed.
    answered: AtomicBool,
    /// Wakes the connection's task to look at its phase again.
    changed: tokio::sync::Notify,
}

impl Connection {
    fn new() -> Connection {
        Connection {
            phase: Mutex::new(Phase {
                state: State::Idle,
                since: Instant::now(),
                idle_tick: IDLE_CLOCK.fetch_add(1, Ordering::Relaxed),
            }),
            answered: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves `from` to `to`; false (and nothing changes) when the state is another.
    fn shift(&self, from: State, to: State) -> bool {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if phase.state != from {
            return false;
        }
        phase.state = to;
        phase.since = Instant::now();
        if to == State::Idle {
            phase.idle_tick = IDLE_CLOCK.fetch_add(1, Ordering::Relaxed);
        }
        drop(phase);
        self.changed.notify_one();
        true
    }

    /// Closes the connection if it is still in `seen` (its time in that state is up).
    fn expire(&self, seen: Phase) -> bool {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if *phase != seen {
            return false;
        }
        phase.state = State::Evicted;
        true
    }
}

/// Whom a connection is counted under for [`MAX_PER_PEER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Peer {
    /// A process on the socket (`None`: the kernel did not say; those share one quota).
    Process(Option<i32>),
    /// A client of the network endpoint, by its address.
    Address(std::net::IpAddr),
}

/// An admitted connection, as the accept loop counts it.
struct Slot {
    peer: Peer,
    connection: Arc<Connection>,
}

/// A connection made ready to carry HTTP, and what it says about its client.
pub(super) struct Opened<S> {
    pub(super) stream: S,
    /// The subject of the client's certificate, when the endpoint asks for one.
    pub(super) certificate: Option<ClientCertificate>,
}

/// The subject of a verified client certificate (each request carries it as an extension).
#[derive(Debug, Clone)]
pub(super) struct ClientCertificate(pub(super) String);

/// Where connections come from: the Unix socket, or the network endpoint (with TLS or not).
pub(super) trait Listener: Send + Sync + 'static {
    /// An accepted connection before [`Listener::open`].
    type Raw: Send + 'static;
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Raw, Peer)>> + Send;

    /// Readies an admitted connection (the TLS handshake); the caller bounds it by
    /// [`READ_TIMEOUT`], so a client that never finishes does not keep its slot.
    fn open(
        self: Arc<Self>,
        raw: Self::Raw,
    ) -> impl Future<Output = std::io::Result<Opened<Self::Stream>>> + Send + 'static;
}

impl Listener for tokio::net::UnixListener {
    type Raw = UnixStream;
    type Stream = UnixStream;

    async fn accept(&self) -> std::io::Result<(UnixStream, Peer)> {
        let (stream, _) = tokio::net::UnixListener::accept(self).await?;
        let peer = Peer::Process(stream.peer_cred().ok().and_then(|c| c.pid()));
        Ok((stream, peer))
    }

    fn open(
        self: Arc<Self>,
        raw: UnixStream,
    ) -> impl Future<Output = std::io::Result<Opened<UnixStream>>> + Send + 'static {
        std::future::ready(Ok(Opened {
            stream: raw,
            certificate: None,
        }))
    }
}

/// Why a connection was not admitted (its 503 answer says so).
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("this process holds {MAX_PER_PEER} busy connections already; finish or close one")]
    PeerQuota,
    #[error("too many connections; try again")]
    Full,
}

fn builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        // hyper's read buffer bounds the head it parses (431 beyond it).
        .max_buf_size(MAX_HEAD)
        // As the broker always wrote them (`Content-Length`, `Connection: close`).
        .title_case_headers(true)
        // A client that shuts its side down after sending a request (`socat`, `nc -U`) still
        // gets its answer, as it did from the broker's own reader.
        .half_close(true)
        // hyper's header timer runs from when it starts waiting for a head, idle time included;
        // the connection's phases time the idle wait and the request apart instead.
        .header_read_timeout(None);
    builder
}

pub(super) async fn accept_loop<L: Listener>(listener: L, router: Router, shared: Arc<Shared>) {
    let listener = Arc::new(listener);
    let builder = Arc::new(builder());
    // Connections live in this set: aborting the loop closes them all.
    let mut connections = JoinSet::new();
    let mut slots: HashMap<tokio::task::Id, Slot> = HashMap::new();
    // Keeps the shared state alive as long as connections may route to it.
    let _shared = shared;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((raw, peer)) => {
                    let opening = listener.clone().open(raw);
                    match admit(&mut slots, peer) {
                        Ok(()) => {
                            let connection = Arc::new(Connection::new());
                            let task = connections.spawn(serve_connection(
                                builder.clone(),
                                router.clone(),
                                opening,
                                peer,
                                connection.clone(),
                            ));
                            slots.insert(task.id(), Slot { peer, connection });
                        }
                        Err(why) => {
                            tracing::debug!(?peer, "broker: connection refused: {why}");
                            connections.spawn(refuse(opening, peer, why));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("broker: accept failed: {e}");
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

/// Opens the connection within [`READ_TIMEOUT`]; `None` (logged) when it could not be.
async fn opened<S>(
    opening: impl Future<Output = std::io::Result<Opened<S>>>,
    peer: Peer,
) -> Option<Opened<S>> {
    match tokio::time::timeout(READ_TIMEOUT, opening).await {
        Ok(Ok(opened)) => Some(opened),
        Ok(Err(e)) => {
            tracing::info!(?peer, "broker: connection not opened: {e}");
            None
        }
        Err(_) => {
            tracing::info!(?peer, "broker: connection not opened in {READ_TIMEOUT:?}");
            None
        }
    }
}

/// Answers the connection's request 503 and closes it, all within [`WRITE_TIMEOUT`].
async fn refuse<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    opening: impl Future<Output = std::io::Result<Opened<S>>>,
    peer: Peer,
    why: Refusal,
) {
    let Some(Opened { stream, .. }) = opened(opening, peer).await else {
        return;
    };
    let why = why.to_string();
    let service = service_fn(move |_request: Request<Incoming>| {
        let busy = closing(error(503, why.clone()));
        async move { Ok::<_, Infallible>(busy) }
    });
    let mut builder = builder();
    builder.keep_alive(false);
    let serving = builder.serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(WRITE_TIMEOUT, serving).await;
}

/// Makes room for a connection from `peer`, or says why there is none.
fn admit(slots: &mut HashMap<tokio::task::Id, Slot>, peer: Peer) -> Result<(), Refusal> {
    let mut held: HashMap<Peer, usize> = HashMap::new();
    for slot in slots.values() {
        *held.entry(slot.peer).or_default() += 1;
    }
    if held.get(&peer).copied().unwrap_or(0) >= MAX_PER_PEER {
        // Its own idle connection makes way: the process is asking now.
        if evict_idle(slots, &held, |p| p == peer) {
            return Ok(());
        }
        return Err(Refusal::PeerQuota);
    }
    if slots.len() >= MAX_CONNECTIONS {
        if evict_idle(slots, &held, |_| true) {
            return Ok(());
        }
        return Err(Refusal::Full);
    }
    Ok(())
}

/// Closes one idle connection of a peer `eligible` says: of the peer holding the most
/// connections, the one idle longest. False when none is idle.
fn evict_idle(
    slots: &mut HashMap<tokio::task::Id, Slot>,
    held: &HashMap<Peer, usize>,
    eligible: impl Fn(Peer) -> bool,
) -> bool {
    let mut idle: Vec<(usize, u64, tokio::task::Id)> = slots
        .iter()
        .filter(|(_, s)| eligible(s.peer))
        .filter_map(|(id, s)| {
            let phase = s.connection.phase();
            (phase.state == State::Idle).then(|| {
                let held = held.get(&s.peer).copied().unwrap_or(0);
                (held, phase.idle_tick, *id)
            })
        })
        .collect();
    idle.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, id) in idle {
        // It may have started a request since it was looked at: then it stays.
        if slots[&id].connection.shift(State::Idle, State::Evicted) {
            let peer = slots.remove(&id).map(|s| s.peer);
            tracing::debug!(?peer, "broker: closed an idle connection to make room");
            return true;
        }
    }
    false
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    builder: Arc<http1::Builder>,
    router: Router,
    opening: impl Future<Output = std::io::Result<Opened<S>>>,
    peer: Peer,
    connection: Arc<Connection>,
) {
    // A connection being opened is Reading: it is not idle, and its time is bounded.
    connection.shift(State::Idle, State::Reading);
    let Some(Opened {
        stream,
        certificate,
    }) = opened(opening, peer).await
    else {
        return;
    };
    connection.shift(State::Reading, State::Idle);
    let io = Watched {
        stream,
        connection: connection.clone(),
        stall: None,
    };
    let served = Arc::new(AtomicUsize::new(0));
    let on = connection.clone();
    let service = service_fn(move |mut request: Request<Incoming>| {
        let (router, connection, served) = (router.clone(), on.clone(), served.clone());
        if let Some(certificate) = &certificate {
            request.extensions_mut().insert(certificate.clone());
        }
        async move { Ok::<_, Infallible>(respond(router, connection, &served, request).await) }
    });
    let serving = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(serving);
    loop {
        let seen = connection.phase();
        let limit = match seen.state {
            State::Idle => Some(seen.since + IDLE_TIMEOUT),
            State::Reading => Some(seen.since + READ_TIMEOUT),
            State::Busy => None,
            State::Evicted => {
                // Idle when it was chosen: hyper closes at once, or ends what it was flushing.
                serving.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(WRITE_TIMEOUT, serving).await;
                return;
            }
        };
        let deadline = async {
            match limit {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = serving.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!("broker: connection ended: {e}");
                }
                return;
            }
            () = connection.changed.notified() => {}
            () = deadline => if connection.expire(seen) {
                // Idle too long, or a request not sent in time: closed without an answer.
                tracing::debug!(state = ?seen.state, "broker: connection timed out");
                return;
            },
        }
    }
}

/// Reads the request's body within [`MAX_BODY`], routes it, and marks the answer so that the
/// connection knows when it is done.
async fn respond(
    mut router: Router,
    connection: Arc<Connection>,
    served: &AtomicUsize,
    request: Request<Incoming>,
) -> Response<Tracked> {
    // A pipelined request hyper had read already: it begins now.
    connection.shift(State::Idle, State::Reading);
    let read = read_body(request).await;
    connection.shift(State::Reading, State::Busy);
    let mut response = match read {
        Ok(request) => match router.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        // What follows a refused body cannot be trusted to be framed as the client meant.
        Err(refusal) => closing(refusal.answer()),
    };
    if served.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_REQUESTS_PER_CONNECTION {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    tracing::debug!(status = response.status().as_u16(), "broker request");
    response.map(|body| Tracked { body, connection })
}

/// `response`, after which the connection closes.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The body of a request, read whole: with `Content-Length` or chunked, at most [`MAX_BODY`]
/// bytes; a POST, PUT or PATCH without either is refused 411.
async fn read_body(request: Request<Incoming>) -> Result<Request<Body>, Refused> {
    let (parts, mut incoming) = request.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    let chunked = parts.headers.contains_key(TRANSFER_ENCODING);
    let expects = parts.headers.contains_key(EXPECT);
    if declared.is_none()
        && !chunked
        && matches!(parts.method, Method::POST | Method::PUT | Method::PATCH)
    {
        return Err(Refused::new(
            411,
            "a request with a body needs a Content-Length header (or a chunked body)",
        ));
    }
    if let Some(n) = declared.filter(|&n| n > MAX_BODY as u64) {
        if !expects {
            tokio::spawn(drain(incoming));
        }
        return Err(Refused::new(
            413,
            format!("the body is {n} bytes; at most {MAX_BODY} are accepted"),
        ));
    }
    let mut body = BytesMut::new();
    while let Some(frame) = incoming.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                return Err(Refused::new(
                    400,
                    format!("the body could not be read: {e}"),
                ));
            }
        };
        if let Ok(data) = frame.into_data() {
            if body.len() + data.len() > MAX_BODY {
                tokio::spawn(drain(incoming));
                return Err(Refused::new(
                    413,
                    format!("the body exceeds {MAX_BODY} bytes, the most accepted"),
                ));
            }
            body.extend_from_slice(&data);
        }
    }
    Ok(Request::from_parts(parts, Body::from(body.freeze())))
}

/// Lets the client finish sending what it meant to (up to a limit) after a refusal, so that it
/// reads the answer instead of a broken pipe.
async fn drain(mut incoming: Incoming) {
    let discard = async {
        let mut total = 0usize;
        while total < (1 << 20) {
            match incoming.frame().await {
                Some(Ok(frame)) => total += frame.data_ref().map_or(0, |d| d.len()),
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), discard).await;
}

/// An answer's body that tells its connection when hyper lets it go (written, or abandoned).
struct Tracked {
    body: Body,
    connection: Arc<Connection>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.connection.answered.store(true, Ordering::SeqCst);
    }
}

/// The connection's socket: a read moves an idle connection to Reading, a flush after an
/// answer moves it back to Idle, and a write that makes no progress for [`WRITE_TIMEOUT`]
/// fails (hyper then closes the connection).
struct Watched<S> {
    stream: S,
    connection: Arc<Connection>,
    stall: Option<Pin<Box<Sleep>>>,
}

impl<S> Watched<S> {
    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.stall = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_TIMEOUT)));
                match stall.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client did not read its answer",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.shift(State::Idle, State::Reading);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.progress(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.progress(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        let polled = self.progress(cx, polled);
        if matches!(polled, Poll::Ready(Ok(())))
            && self.connection.answered.swap(false, Ordering::SeqCst)
        {
            self.connection.shift(State::Busy, State::Idle);
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.progress(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` connections of `peer`, each in `state`, keyed as the accept loop keys them.
    fn hold(slots: &mut HashMap<tokio::task::Id, Slot>, peer: i32, count: usize, state: State) {
        let peer = Peer::Process(Some(peer));
        for _ in 0..count {
            let connection = Arc::new(Connection::new());
            connection.phase.lock().unwrap().state = state;
            let id = tokio::spawn(async {}).id();
            slots.insert(id, Slot { peer, connection });
        }
    }

    fn states(slots: &HashMap<tokio::task::Id, Slot>, peer: i32) -> Vec<State> {
        slots
            .values()
            .filter(|s| s.peer == Peer::Process(Some(peer)))
            .map(|s| s.connection.phase().state)
            .collect()
    }

    #[tokio::test]
    async fn a_process_at_its_quota_makes_way_with_its_own_idle_connection_only() {
        let mut slots = HashMap::new();
        hold(&mut slots, 1, MAX_PER_PEER - 1, State::Busy);
        hold(&mut slots, 1, 1, State::Reading);
        hold(&mut slots, 2, 1, State::Idle);
        // A request under way is never cut off, nor another process's idle connection taken.
        assert!(matches!(
            admit(&mut slots, Peer::Process(Some(1))),
            Err(Refusal::PeerQuota)
        ));
        assert_eq!(states(&slots, 2), [State::Idle]);
        // Its own idle connection (the one idle longest) makes way.
        hold(&mut slots, 1, 1, State::Idle);
        let own_idle = slots
            .iter()
            .find(|(_, s)| {
                s.peer == Peer::Process(Some(1)) && s.connection.phase().state == State::Idle
            })
            .map(|(_, s)| s.connection.clone())
            .unwrap();
        assert!(admit(&mut slots, Peer::Process(Some(1))).is_ok());
        assert_eq!(own_idle.phase().state, State::Evicted);
        assert!(!states(&slots, 1).contains(&State::Idle));
        assert_eq!(states(&slots, 2), [State::Idle]);
    }

    #[tokio::test]
    async fn a_full_server_takes_the_idle_connection_of_the_process_holding_most() {
        let mut slots = HashMap::new();
        hold(&mut slots, 1, 100, State::Busy);
        hold(&mut slots, 1, 1, State::Idle);
        hold(&mut slots, 2, MAX_CONNECTIONS - 102, State::Busy);
        hold(&mut slots, 3, 1, State::Idle);
        assert!(admit(&mut slots, Peer::Process(Some(4))).is_ok());
        assert_eq!(states(&slots, 1).len(), 100, "process 1 holds the most");
        assert_eq!(states(&slots, 3), [State::Idle]);
        // The newcomer is in (busy): the next takes the last idle connection.
        hold(&mut slots, 4, 1, State::Busy);
        assert!(admit(&mut slots, Peer::Process(Some(4))).is_ok());
        assert!(states(&slots, 3).is_empty());
        // None idle: refused, and nothing is closed.
        hold(&mut slots, 4, 1, State::Busy);
        assert_eq!(slots.len(), MAX_CONNECTIONS);
        assert!(matches!(
            admit(&mut slots, Peer::Process(Some(5))),
            Err(Refusal::Full)
        ));
        assert_eq!(slots.len(), MAX_CONNECTIONS);
    }

    #[tokio::test]
    async fn a_phase_expires_only_if_it_has_not_moved_on() {
        let connection = Connection::new();
        let seen = connection.phase();
        assert!(connection.shift(State::Idle, State::Reading));
        assert!(!connection.expire(seen), "a request began meanwhile");
        let reading = connection.phase();
        assert!(connection.expire(reading));
        assert_eq!(connection.phase().state, State::Evicted);
        assert!(!connection.shift(State::Idle, State::Reading));
    }
}
