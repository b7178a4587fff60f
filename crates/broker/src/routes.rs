//! The endpoints, routed by axum. A request reaches them with its body already read and bounded
//! (`conn.rs`); every answer and error body is built here, in the forms `README.md` documents.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde::{Deserialize, Serialize};

use super::access::Caller;
use super::server::{MAX_ASSIGN_WAIT_SECS, MAX_WAIT_SECS, Shared, class_lines, ring_batch, status};
use super::{metrics, stream};
use deskpool_api::{Command, CommandError, ErrorKind, Reply};
use deskpool_core::policy::names::check_name;

const MAX_ACTOR_LEN: usize = 64;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let only = |allow: &'static str, route: MethodRouter<Arc<Shared>>| {
        route.fallback(move || async move { method_not_allowed(allow) })
    };
    Router::new()
        .route("/v1/assign", only("POST", post(assign)))
        .route("/v1/release", only("POST", post(release)))
        .route("/v1/disconnect", only("POST", post(disconnect)))
        .route("/v1/command", only("POST", post(command)))
        .route("/v1/classes", only("GET", get(classes)))
        .route("/v1/status", only("GET", get(status_answer)))
        .route("/metrics", only("GET", get(metrics_text)))
        .route("/v1/snapshot", only("GET", get(snapshot)))
        .route("/v1/events", only("GET", get(events)))
        .route("/v1/stream", only("GET", get(stream::serve)))
        .fallback(not_found)
        .with_state(shared)
}

fn answer(status: u16, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) fn json(status: u16, value: &impl Serialize) -> Response {
    let body = serde_json::to_vec(value)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode the answer: {e}\"}}").into());
    answer(status, "application/json", body)
}

pub(super) fn error(status: u16, message: impl Into<String>) -> Response {
    json(status, &serde_json::json!({ "error": message.into() }))
}

/// A request refused before it reached the engine: its status and the `error` of its body.
pub(super) struct Refused {
    status: u16,
    message: String,
}

impl Refused {
    pub(super) fn new(status: u16, message: impl Into<String>) -> Refused {
        Refused {
            status,
            message: message.into(),
        }
    }

    pub(super) fn answer(self) -> Response {
        error(self.status, self.message)
    }
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = error(405, format!("method not allowed; use {allow}"));
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

async fn not_found(uri: Uri) -> Response {
    error(
        404,
        format!(
            "no endpoint {:?}; try /v1/assign, /v1/release, /v1/disconnect, /v1/classes, /v1/status, /v1/snapshot, /v1/events, /v1/stream, /v1/command or /metrics",
            uri.path()
        ),
    )
}

async fn classes(State(shared): State<Arc<Shared>>) -> Response {
    let s = shared.snapshot.borrow().clone();
    json(200, &serde_json::json!({ "classes": class_lines(&s) }))
}

async fn status_answer(State(shared): State<Arc<Shared>>) -> Response {
    let s = shared.snapshot.borrow().clone();
    json(200, &status(&s))
}

async fn metrics_text(State(shared): State<Arc<Shared>>) -> Response {
    let s = shared.snapshot.borrow().clone();
    answer(
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        metrics::render(&s),
    )
}

/// The HTTP status for an engine's refusal.
pub fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::NotFound => 404,
        ErrorKind::Invalid => 422,
        ErrorKind::Conflict => 409,
        ErrorKind::Unavailable => 503,
        ErrorKind::ReadOnly => 403,
        ErrorKind::NotLeader => 503,
    }
}

fn refused(e: &CommandError) -> Response {
    let mut response = json(
        status_of(e.kind),
        &serde_json::json!({ "error": e.message, "kind": e.kind }),
    );
    if e.kind == ErrorKind::NotLeader {
        // A follower's refusal is worth retrying soon: an election takes a lease's TTL.
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
    response
}

/// Parses a JSON body: 415 for another media type, 400 for broken JSON, 422 for JSON of the
/// wrong shape.
fn body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, Refused> {
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        let ct = String::from_utf8_lossy(ct.as_bytes()).to_ascii_lowercase();
        let media = ct.split(';').next().unwrap_or_default().trim();
        // curl -d sends application/x-www-form-urlencoded unless told otherwise: accepted, the
        // body must still be JSON.
        if !matches!(
            media,
            "application/json" | "application/x-www-form-urlencoded" | ""
        ) {
            return Err(Refused::new(
                415,
                format!("the body must be application/json, not {media}"),
            ));
        }
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Refused::new(422, format!("{e}")),
        _ => Refused::new(400, format!("malformed JSON: {e}")),
    })
}

fn checked_name(field: &str, value: &str) -> Result<(), Refused> {
    check_name(value).map_err(|e| Refused::new(422, format!("{field}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    class: String,
    user: String,
    #[serde(default)]
    wait_secs: u64,
}

async fn assign(
    State(shared): State<Arc<Shared>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let b: AssignBody = match body(&headers, &raw) {
        Ok(b) => b,
        Err(r) => return r.answer(),
    };
    if let Err(r) = checked_name("class", &b.class).and_then(|()| checked_name("user", &b.user)) {
        return r.answer();
    }
    if b.wait_secs > MAX_ASSIGN_WAIT_SECS {
        return error(
            422,
            format!(
                "wait_secs: {} is more than {MAX_ASSIGN_WAIT_SECS}",
                b.wait_secs
            ),
        );
    }
    if !shared.classes.contains(&b.class) {
        return error(404, format!("unknown class {:?}", b.class));
    }
    let command = Command::Assign {
        class: b.class,
        user: b.user,
        wait_secs: b.wait_secs,
    };
    match shared
        .commander
        .send(command, actor(&caller, "broker"))
        .await
    {
        Ok(Reply::Assigned {
            desktop,
            host,
            display,
            address,
            display_password,
            waited_ms,
        }) => json(
            200,
            &serde_json::json!({
                "desktop": desktop, "host": host, "display": display, "address": address,
                "display_password": display_password, "waited_ms": waited_ms,
            }),
        ),
        Ok(other) => error(500, format!("unexpected answer {other:?}")),
        Err(e) => refused(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    desktop: String,
}

/// The user logged out: `{"released": DESKTOP}`.
async fn release(
    State(shared): State<Arc<Shared>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    end_session(&shared, &caller, &headers, &raw, "released", |desktop| {
        Command::Release { desktop }
    })
    .await
}

/// The user's session ended without a logout: `{"disconnected": DESKTOP}`.
async fn disconnect(
    State(shared): State<Arc<Shared>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    end_session(
        &shared,
        &caller,
        &headers,
        &raw,
        "disconnected",
        |desktop| Command::Disconnect { desktop },
    )
    .await
}

/// A release or disconnect of the desktop the body names; the answer names it under `done`.
async fn end_session(
    shared: &Shared,
    caller: &Option<Extension<Caller>>,
    headers: &HeaderMap,
    raw: &Bytes,
    done: &str,
    command: impl FnOnce(String) -> Command,
) -> Response {
    let b: ReleaseBody = match body(headers, raw) {
        Ok(b) => b,
        Err(r) => return r.answer(),
    };
    if let Err(r) = checked_name("desktop", &b.desktop) {
        return r.answer();
    }
    match shared
        .commander
        .send(command(b.desktop.clone()), actor(caller, "broker"))
        .await
    {
        Ok(_) => json(200, &serde_json::json!({ done: b.desktop })),
        Err(e) => refused(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    command: Command,
    actor: String,
}

async fn command(
    State(shared): State<Arc<Shared>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let b: CommandBody = match body(&headers, &raw) {
        Ok(b) => b,
        Err(r) => return r.answer(),
    };
    if b.actor.is_empty()
        || b.actor.chars().count() > MAX_ACTOR_LEN
        || b.actor.chars().any(char::is_control)
    {
        return error(
            422,
            format!("actor: 1 to {MAX_ACTOR_LEN} characters, no control characters"),
        );
    }
    if let Command::Assign { wait_secs, .. } = &b.command
        && *wait_secs > MAX_ASSIGN_WAIT_SECS
    {
        return error(422, format!("wait_secs: at most {MAX_ASSIGN_WAIT_SECS}"));
    }
    match shared
        .commander
        .send(b.command, actor(&caller, &b.actor))
        .await
    {
        Ok(reply) => json(200, &serde_json::json!({ "reply": reply })),
        Err(e) => refused(&e),
    }
}

/// Who the engine is told did it: the network endpoint's client, else what the socket's
/// client said (`fallback`).
fn actor<'a>(caller: &'a Option<Extension<Caller>>, fallback: &'a str) -> &'a str {
    caller
        .as_ref()
        .map_or(fallback, |Extension(Caller(who))| who.as_str())
}

/// The query of a request, percent-decoded (`+` is a space), in order.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn of(uri: &Uri) -> Result<Params, Refused> {
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| Params(pairs))
            .map_err(|e| Refused::new(400, format!("malformed query: {e}")))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `wait` in seconds, at most [`MAX_WAIT_SECS`].
    fn wait(&self) -> Result<Duration, Refused> {
        match self.get("wait") {
            None => Ok(Duration::ZERO),
            Some(v) => v
                .parse::<u64>()
                .map(|s| Duration::from_secs(s.min(MAX_WAIT_SECS)))
                .map_err(|_| Refused::new(400, format!("wait={v:?} is not a number of seconds"))),
        }
    }

    pub(super) fn after(&self) -> Result<Option<u64>, Refused> {
        match self.get("after") {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| Refused::new(400, format!("after={v:?} is not a number"))),
        }
    }
}

async fn snapshot(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let params = match Params::of(&uri) {
        Ok(p) => p,
        Err(r) => return r.answer(),
    };
    let (after, wait) = match (params.after(), params.wait()) {
        (Ok(a), Ok(w)) => (a, w),
        (Err(r), _) | (_, Err(r)) => return r.answer(),
    };
    let mut rx = shared.snapshot.clone();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let current = rx.borrow_and_update().clone();
        if after.is_none_or(|a| current.passes > a) {
            return json(200, &*current);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            // Time is up: the same snapshot again (the caller asks anew).
            Err(_) => return json(200, &*current),
            Ok(Err(_)) => return error(503, "the engine has stopped"),
        }
    }
}

async fn events(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let params = match Params::of(&uri) {
        Ok(p) => p,
        Err(r) => return r.answer(),
    };
    let (after, wait) = match (params.after(), params.wait()) {
        (Ok(a), Ok(w)) => (a.unwrap_or(0), w),
        (Err(r), _) | (_, Err(r)) => return r.answer(),
    };
    let mut wake = shared.ring_wake.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let batch = ring_batch(&shared, after);
        // A caller ahead of the ring (the engine restarted) gets the answer at once.
        if !batch.events.is_empty() || after > batch.last {
            return json(200, &batch);
        }
        match tokio::time::timeout_at(deadline, wake.changed()).await {
            Ok(Ok(())) => {}
            Err(_) => return json(200, &batch),
            Ok(Err(_)) => return error(503, "the engine has stopped"),
        }
    }
}
