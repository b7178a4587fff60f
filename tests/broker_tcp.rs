//! The broker's network endpoint on the libvirt test driver: tokens and their scopes, TLS with
//! and without client certificates, the audit log, and refusals that change nothing.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use deskpool_api::EngineHandle;
use deskpool_broker::{Broker, sha256_hex};
use deskpool_core::policy::BrokerSettings;
use deskpool_core::policy::access::{ClientToken, Scope, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

const READER: &str = "reader-secret";
const GATEWAY: &str = "gateway-secret";
const OPS: &str = "ops-secret";

fn token(name: &str, scope: Scope, secret: &str) -> ClientToken {
    ClientToken {
        name: name.into(),
        scope,
        sha256: sha256_hex(secret),
    }
}

fn tokens() -> Vec<ClientToken> {
    vec![
        token("monitor", Scope::Read, READER),
        token("gateway", Scope::Assign, GATEWAY),
        token("ops", Scope::Admin, OPS),
    ]
}

struct Served {
    bed: Bed,
    engine: EngineHandle,
    broker: Broker,
    addr: SocketAddr,
}

/// One host, class `office` with a buffer of 2, its broker serving an endpoint with `tls`.
async fn serve(tls: impl FnOnce(&Bed) -> Option<TlsFiles>) -> Served {
    let toml = format!(
        "{}{}{}",
        ENGINE_TOML,
        host_toml("h1", 10, false, ""),
        class_toml("office", 2, ""),
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let mut engine = bed.start();
    let classes = vec!["office".to_string()];
    let mut broker = Broker::start(&mut engine, &bed.file("deskpool.sock"), classes).unwrap();
    let settings = BrokerSettings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        tls: tls(&bed),
        tokens: tokens(),
        ..BrokerSettings::default()
    };
    let addr = broker
        .serve_endpoint(&settings, bed.file("audit.log"))
        .await
        .expect("the endpoint is served")
        .expect("an address");
    Served {
        bed,
        engine,
        broker,
        addr,
    }
}

impl Served {
    async fn buffer_full(&mut self) {
        wait(&mut self.engine, "the buffer at its target", |s| {
            s.steady && s.classes.iter().all(|c| c.plan.buffer == 2)
        })
        .await;
    }

    /// A request on a new plain connection.
    async fn call(
        &self,
        method: &str,
        target: &str,
        secret: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        exchange(stream, &request(method, target, secret, body))
            .await
            .unwrap_or_else(|e| panic!("no answer to {method} {target}: {e}"))
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.bed.file("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    async fn stop(self) {
        self.broker.shutdown().await;
        self.engine.shutdown().await;
    }
}

fn request(method: &str, target: &str, secret: Option<&str>, body: Option<Value>) -> Vec<u8> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = secret
        .map(|s| format!("Authorization: Bearer {s}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {target} HTTP/1.1\r\nHost: deskpool\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `request` and reads the answer's status and JSON body (until the server closes).
async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &[u8],
) -> std::io::Result<(u16, Value)> {
    // The server may answer (and stop reading) before all of an oversized request is sent.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .map_err(|_| std::io::Error::other("no answer in time"))??;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {text:?}")))?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn pause() -> Value {
    json!({"command": {"type": "pause"}, "actor": "someone"})
}

fn assign(user: &str) -> Value {
    json!({"class": "office", "user": user})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_token_reads_but_cannot_assign_or_pause_and_nothing_changes() {
    let mut s = serve(|_| None).await;
    s.buffer_full().await;
    let (status, body) = s.call("GET", "/v1/status", Some(READER), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["classes"][0]["name"], "office");

    let (status, body) = s
        .call("POST", "/v1/assign", Some(READER), Some(assign("alice")))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"],
        "token \"monitor\" has scope read; POST /v1/assign needs assign"
    );
    let (status, body) = s
        .call("POST", "/v1/command", Some(READER), Some(pause()))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().ends_with("needs admin"),
        "{body}"
    );
    let (status, body) = s
        .call(
            "POST",
            "/v1/disconnect",
            Some(READER),
            Some(json!({"desktop": "dp-office-0000000001"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().ends_with("needs assign"),
        "{body}"
    );
    // A command that logs in is an assign, and still more than a read.
    let login =
        json!({"command": {"type": "assign", "class": "office", "user": "bob"}, "actor": "x"});
    let (status, _) = s
        .call("POST", "/v1/command", Some(READER), Some(login))
        .await;
    assert_eq!(status, 403);

    let now = s.engine.snapshot.borrow().clone();
    assert!(!now.paused, "a read token paused the engine");
    assert_eq!(
        class(&now, "office").plan.production,
        0,
        "a read token assigned a desktop"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_or_a_wrong_one_is_401_and_changes_nothing() {
    let s = serve(|_| None).await;
    for secret in [None, Some("guessed"), Some("")] {
        let (status, body) = s.call("POST", "/v1/command", secret, Some(pause())).await;
        assert_eq!(status, 401, "{secret:?}: {body}");
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
        let (status, _) = s.call("GET", "/metrics", secret, None).await;
        assert_eq!(status, 401);
    }
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(&request("GET", "/v1/status", None, None))
        .await
        .unwrap();
    let mut text = String::new();
    raw.read_to_string(&mut text).await.unwrap();
    assert!(text.contains("Www-Authenticate: Bearer"), "{text}");
    assert!(!s.engine.snapshot.borrow().paused);
    let audit = s.audit();
    assert!(
        audit
            .iter()
            .all(|e| e["who"] == "unknown client" && e["result"] == "401"),
        "{audit:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_pauses_and_a_gateway_assigns_each_as_itself_in_the_audit_and_the_events() {
    let mut s = serve(|_| None).await;
    s.buffer_full().await;
    let mut events = s.engine.events_subscribe();
    let (status, body) = s
        .call("POST", "/v1/assign", Some(GATEWAY), Some(assign("alice")))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .call("POST", "/v1/command", Some(GATEWAY), Some(pause()))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(!s.engine.snapshot.borrow().paused);

    let (status, body) = s
        .call("POST", "/v1/command", Some(OPS), Some(pause()))
        .await;
    assert_eq!(status, 200, "{body}");
    wait(&mut s.engine, "the pause", |snap| snap.paused).await;
    // The engine's event names the token's client, not the actor the body claims.
    let admin = tokio::time::timeout(DEADLINE, async {
        loop {
            let e = events.recv().await.unwrap();
            if e.kind == deskpool_api::EventKind::AdminAction {
                return e;
            }
        }
    })
    .await
    .expect("an admin event");
    assert!(admin.message.starts_with("ops: "), "{}", admin.message);

    let audit = s.audit();
    let lines: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|e| {
            (
                e["who"].as_str().unwrap(),
                e["what"].as_str().unwrap(),
                e["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("gateway", "POST /v1/assign", "200"),
            ("gateway", "POST /v1/command", "403"),
            ("ops", "POST /v1/command", "200"),
        ]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_requests_get_the_sockets_errors_on_the_endpoint() {
    let s = serve(|_| None).await;
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let big = format!(
        "{{\"class\":\"office\",\"user\":\"{}\"}}",
        "a".repeat(70 * 1024)
    );
    let mut request = format!(
        "POST /v1/assign HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {GATEWAY}\r\n\
         Content-Length: {}\r\n\r\n",
        big.len()
    )
    .into_bytes();
    request.extend_from_slice(big.as_bytes());
    let (status, body) = exchange(stream, &request).await.unwrap();
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most 65536"),
        "{body}"
    );

    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(9000)
    );
    let (status, _) = exchange(stream, head.as_bytes()).await.unwrap();
    assert_eq!(status, 431);
    assert_eq!(
        class(&s.engine.snapshot.borrow(), "office").plan.production,
        0
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_sends_nothing_is_closed_after_the_idle_timeout_as_on_the_socket() {
    let s = serve(|_| None).await;
    let started = tokio::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(DEADLINE, silent.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the silent connection was never closed");
    assert!(answer.is_empty(), "closed without an answer: {answer:?}");
    assert!(
        started.elapsed() >= deskpool_broker::server::IDLE_TIMEOUT,
        "closed before its idle timeout: {:?}",
        started.elapsed()
    );
    assert!(s.audit().is_empty(), "no request, nothing audited");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_given_anew_replace_the_old_ones_at_the_next_request() {
    let s = serve(|_| None).await;
    assert_eq!(s.call("GET", "/v1/status", Some(READER), None).await.0, 200);
    s.broker
        .set_tokens(&[token("newcomer", Scope::Read, "fresh")]);
    assert_eq!(s.call("GET", "/v1/status", Some(READER), None).await.0, 401);
    assert_eq!(
        s.call("GET", "/v1/status", Some("fresh"), None).await.0,
        200
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_endpoint_off_loopback_is_refused_by_the_broker_too() {
    let bed = Bed::new(
        &["h1"],
        &["office"],
        &format!(
            "{ENGINE_TOML}{}{}",
            host_toml("h1", 10, false, ""),
            class_toml("office", 0, "")
        ),
    );
    let mut engine = bed.start();
    let mut broker = Broker::start(
        &mut engine,
        &bed.file("deskpool.sock"),
        vec!["office".into()],
    )
    .unwrap();
    let settings = BrokerSettings {
        listen: Some("0.0.0.0:0".parse().unwrap()),
        tokens: tokens(),
        ..BrokerSettings::default()
    };
    let err = broker
        .serve_endpoint(&settings, bed.file("audit.log"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("0.0.0.0:0 is not a loopback address"), "{err}");
    broker.shutdown().await;
    engine.shutdown().await;
}

/// A CA, certificates it signs, and files for them in `dir`.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    dir: PathBuf,
}

impl Pki {
    fn new(dir: PathBuf, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), ca.pem()).unwrap();
        Pki { ca, ca_key, dir }
    }

    /// A certificate for `cn` signed by the CA, valid now unless `expired`; its files are
    /// `NAME.crt` and `NAME.key`.
    fn issue(&self, file: &str, cn: &str, expired: bool) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let (crt, pem) = (
            self.dir.join(format!("{file}.crt")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&pem, key.serialize_pem()).unwrap();
        (crt, pem)
    }

    fn ca_file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }
}

/// A TLS client trusting the CA in `ca`, showing the certificate `client` if given.
fn connector(ca: &PathBuf, client: Option<&(PathBuf, PathBuf)>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((crt, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(crt)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
    };
    TlsConnector::from(Arc::new(config))
}

/// A request over TLS, or why no answer came (the handshake or the answer refused).
async fn tls_call(
    addr: SocketAddr,
    tls: &TlsConnector,
    secret: &str,
    body: Value,
) -> std::io::Result<(u16, Value)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let stream = tls.connect(name, tcp).await?;
    exchange(
        stream,
        &request("POST", "/v1/command", Some(secret), Some(body)),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_certificate_made_here_serves_a_client_that_trusts_it() {
    let mut pki = None;
    let mut s = serve(|bed| {
        let p = Pki::new(bed.path().to_path_buf(), "ca");
        let (cert, key) = p.issue("server", "deskpool", false);
        pki = Some(p);
        Some(TlsFiles {
            cert,
            key,
            client_ca: None,
        })
    })
    .await;
    let pki = pki.unwrap();
    let tls = connector(&pki.ca_file("ca"), None);
    let (status, body) = tls_call(s.addr, &tls, OPS, pause()).await.unwrap();
    assert_eq!(status, 200, "{body}");
    wait(&mut s.engine, "the pause", |snap| snap.paused).await;
    // Plain HTTP on the TLS port gets no answer.
    let plain = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    assert!(
        exchange(plain, &request("GET", "/v1/status", Some(OPS), None))
            .await
            .is_err()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn when_client_certificates_are_required_an_unknown_expired_or_missing_one_is_refused() {
    let mut pki = None;
    let s = serve(|bed| {
        let p = Pki::new(bed.path().to_path_buf(), "ca");
        let (cert, key) = p.issue("server", "deskpool", false);
        let client_ca = Some(p.ca_file("ca"));
        pki = Some(p);
        Some(TlsFiles {
            cert,
            key,
            client_ca,
        })
    })
    .await;
    let pki = pki.unwrap();
    let ca = pki.ca_file("ca");
    let stranger = Pki::new(s.bed.path().to_path_buf(), "stranger-ca");
    let unknown = stranger.issue("unknown", "intruder", false);
    let expired = pki.issue("expired", "old-gateway", true);
    for (what, client) in [
        ("no certificate", None),
        ("a certificate of another CA", Some(&unknown)),
        ("an expired certificate", Some(&expired)),
    ] {
        let answer = tls_call(s.addr, &connector(&ca, client), OPS, pause()).await;
        assert!(answer.is_err(), "{what} was served: {answer:?}");
    }
    assert!(
        !s.engine.snapshot.borrow().paused,
        "a refused client paused the engine"
    );
    assert!(
        s.audit().is_empty(),
        "a refused handshake is no request: {:?}",
        s.audit()
    );

    let good = pki.issue("gateway", "gateway-1", false);
    let (status, body) = tls_call(s.addr, &connector(&ca, Some(&good)), OPS, pause())
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let audit = s.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["who"], "ops (CN=gateway-1)");
    s.stop().await;
}
