//! Who may do what on the network endpoint: each request needs a client's bearer token
//! (`Authorization: Bearer SECRET`, looked up by its SHA-256 among the token file's), whose
//! scope must cover what the request does; every request is written to the audit log with the
//! client's identity, which is also the actor of what it makes the engine do.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::audit;
use super::conn::ClientCertificate;
use super::routes::error;
use super::server::MAX_BODY;
use deskpool_api::Command;
use deskpool_core::policy::access::{ClientToken, Scope};

/// The clients' tokens by digest, and where their requests are audited.
pub(super) struct Access {
    tokens: RwLock<Arc<HashMap<String, ClientToken>>>,
    audit_log: PathBuf,
}

/// The client a request comes from, once its token is accepted: the actor of its commands.
#[derive(Debug, Clone)]
pub(super) struct Caller(pub(super) String);

impl Access {
    pub(super) fn new(tokens: &[ClientToken], audit_log: PathBuf) -> Access {
        let access = Access {
            tokens: RwLock::default(),
            audit_log,
        };
        access.replace(tokens);
        access
    }

    /// Takes `tokens` in place of the ones held (the token file read again).
    pub(super) fn replace(&self, tokens: &[ClientToken]) {
        let by_digest = tokens
            .iter()
            .map(|t| (t.sha256.clone(), t.clone()))
            .collect();
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(by_digest);
    }

    fn token(&self, secret: &str) -> Option<ClientToken> {
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        tokens.get(&sha256_hex(secret)).cloned()
    }

    fn audit(&self, who: &str, what: &str, result: &str) {
        if let Err(e) = audit::append(&self.audit_log, who, what, result) {
            tracing::warn!(
                "broker: cannot write the audit log {}: {e}",
                self.audit_log.display()
            );
        }
    }
}

/// The SHA-256 of `secret` in lowercase hex, as the token file holds it.
pub fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new client secret (32 random bytes from the kernel, hex) and its digest.
pub fn new_secret() -> std::io::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let digest = sha256_hex(&secret);
    Ok((secret, digest))
}

/// The scope a command needs. Every command is named, so a new one must be given its scope.
pub fn command_scope(command: &Command) -> Scope {
    match command {
        Command::Assign { .. } | Command::Release { .. } | Command::Disconnect { .. } => {
            Scope::Assign
        }
        Command::Pause
        | Command::Resume
        | Command::Refill { .. }
        | Command::RaiseFloor { .. }
        | Command::DrainHost { .. }
        | Command::UndrainHost { .. }
        | Command::SetPolicy { .. }
        | Command::Recycle { .. } => Scope::Admin,
    }
}

/// The middleware of the network endpoint's routes: authenticates, checks the scope, marks the
/// request with its [`Caller`] and audits it.
pub(super) async fn authorize(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    let what = format!("{} {}", request.method(), request.uri().path());
    let certificate = request.extensions().get::<ClientCertificate>().cloned();
    let token = bearer(request.headers()).map(|secret| access.token(secret));
    let (who, response) = match token {
        None | Some(None) => {
            let who = match &certificate {
                Some(c) => format!("unknown client ({})", c.0),
                None => "unknown client".to_string(),
            };
            let message = if token.is_none() {
                "this endpoint needs a client's token: Authorization: Bearer SECRET"
            } else {
                "the bearer token is none of this endpoint's (see [broker] tokens)"
            };
            (who, unauthorized(message))
        }
        Some(Some(token)) => {
            let who = match &certificate {
                Some(c) => format!("{} ({})", token.name, c.0),
                None => token.name.clone(),
            };
            let (mut request, needed) = scope_needed(request).await;
            let response = if token.scope.covers(needed) {
                request.extensions_mut().insert(Caller(who.clone()));
                next.run(request).await
            } else {
                error(
                    403,
                    format!(
                        "token {:?} has scope {}; {what} needs {}",
                        token.name,
                        token.scope.name(),
                        needed.name()
                    ),
                )
            };
            (who, response)
        }
    };
    access.audit(&who, &what, response.status().as_str());
    response
}

fn unauthorized(message: &str) -> Response {
    let mut response = error(401, message);
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The secret of `Authorization: Bearer SECRET`, if the request has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|s| !s.is_empty())
}

/// What `request` needs: reads for GETs, sessions for assign, release and disconnect, and for a command
/// what the command needs (its body, already read whole and bounded, is looked at and kept).
async fn scope_needed(request: Request) -> (Request, Scope) {
    let path = request.uri().path();
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return (request, Scope::Read);
    }
    match path {
        "/v1/assign" | "/v1/release" | "/v1/disconnect" => (request, Scope::Assign),
        "/v1/command" => {
            #[derive(Deserialize)]
            struct Peek {
                command: Command,
            }
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, MAX_BODY)
                .await
                .unwrap_or_default();
            // A body that does not say its command is the route's to refuse, to an admin.
            let needed = serde_json::from_slice::<Peek>(&bytes)
                .map_or(Scope::Admin, |peek| command_scope(&peek.command));
            (Request::from_parts(parts, Body::from(bytes)), needed)
        }
        // Other paths are 404 or 405 to anyone with a token.
        _ => (request, Scope::Read),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_looked_up_by_its_digest() {
        let (secret, digest) = new_secret().unwrap();
        assert_eq!(secret.len(), 64);
        assert_eq!(sha256_hex(&secret), digest);
        // The digest of "abc" (FIPS 180-2's example).
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap();
        let token = ClientToken {
            name: "gw".into(),
            scope: Scope::Read,
            sha256: digest,
        };
        let access = Access::new(&[token], dir.path().join("audit.log"));
        assert_eq!(access.token(&secret).map(|t| t.name), Some("gw".into()));
        assert!(access.token("guess").is_none());
        access.replace(&[]);
        assert!(access.token(&secret).is_none());
    }

    #[test]
    fn only_logins_logouts_and_disconnects_are_commands_of_the_assign_scope() {
        let assign = Command::Assign {
            class: "c".into(),
            user: "u".into(),
            wait_secs: 0,
        };
        assert_eq!(command_scope(&assign), Scope::Assign);
        let release = Command::Release {
            desktop: "d".into(),
        };
        assert_eq!(command_scope(&release), Scope::Assign);
        let disconnect = Command::Disconnect {
            desktop: "d".into(),
        };
        assert_eq!(command_scope(&disconnect), Scope::Assign);
        assert_eq!(command_scope(&Command::Pause), Scope::Admin);
        let recycle = Command::Recycle {
            desktop: "d".into(),
        };
        assert_eq!(command_scope(&recycle), Scope::Admin);
    }

    #[test]
    fn the_bearer_scheme_is_read_case_blind_and_an_empty_secret_is_none() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer s3cret"));
        assert_eq!(bearer(&headers), Some("s3cret"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic s3cret"));
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer  "));
        assert_eq!(bearer(&headers), None);
    }
}
