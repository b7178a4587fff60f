//! The broker socket on the libvirt test driver: what a connection broker, a monitoring system
//! and a second console get from it, and what bad requests do not change.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use deskpool_api::EngineHandle;
use deskpool_api::{Command, PoolStateView, Snapshot};
use deskpool_broker::{self as broker, Broker, client};
use deskpool_core::model::PoolState;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One host with room for 10, class `office` with a buffer of `floor`.
fn bed(floor: u32) -> Bed {
    let toml = format!(
        "{}{}{}",
        ENGINE_TOML,
        host_toml("h1", 10, false, ""),
        class_toml("office", floor, ""),
    );
    Bed::new(&["h1"], &["office"], &toml)
}

struct Served {
    engine: EngineHandle,
    broker: Broker,
    socket: PathBuf,
}

fn serve(bed: &Bed) -> Served {
    let mut engine = bed.start();
    let socket = bed.file("deskpool.sock");
    let classes = bed.fleet.classes.iter().map(|c| c.name.clone()).collect();
    let broker = Broker::start(&mut engine, &socket, classes).expect("the socket is served");
    Served {
        engine,
        broker,
        socket,
    }
}

impl Served {
    async fn get(&self, target: &str) -> (u16, Value) {
        let a = client::call(&self.socket, "GET", target, None, DEADLINE)
            .await
            .unwrap();
        (
            a.status,
            serde_json::from_slice(&a.body).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, target: &str, body: Value) -> (u16, Value) {
        let a = client::call(&self.socket, "POST", target, Some(&body), DEADLINE)
            .await
            .unwrap();
        (a.status, serde_json::from_slice(&a.body).unwrap())
    }

    /// The desktop `/v1/assign` hands `user` (of class office) from a full buffer.
    async fn assigned(&self, user: &str) -> String {
        let (status, a) = self
            .post("/v1/assign", json!({"class": "office", "user": user}))
            .await;
        assert_eq!(status, 200, "{a}");
        a["desktop"].as_str().unwrap().to_string()
    }

    async fn text(&self, target: &str) -> String {
        let a = client::call(&self.socket, "GET", target, None, DEADLINE)
            .await
            .unwrap();
        assert_eq!(a.status, 200);
        String::from_utf8(a.body).unwrap()
    }

    async fn buffer_full(&mut self) -> std::sync::Arc<Snapshot> {
        wait(&mut self.engine, "the buffer at its target", |s| {
            s.steady
                && s.classes
                    .iter()
                    .all(|c| c.plan.buffer == c.plan.buffer_target)
        })
        .await
    }

    async fn stop(self) {
        self.broker.shutdown().await;
        self.engine.shutdown().await;
    }
}

/// Sends raw bytes and reads the status and body of the answer (until the server closes: ask
/// for `Connection: close` unless the request is one the server refuses outright).
async fn raw(socket: &Path, request: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    // The server may answer (and stop reading) before all of an oversized body is sent.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_assign_is_served_from_the_buffer_and_the_same_user_gets_the_same_desktop() {
    let bed = bed(2);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let (status, alice) = served
        .post("/v1/assign", json!({"class": "office", "user": "alice"}))
        .await;
    assert_eq!(status, 200, "{alice}");
    let desktop = alice["desktop"].as_str().unwrap().to_string();
    assert!(desktop.starts_with("dp-office-"), "{alice}");
    assert_eq!(alice["host"], "h1");
    assert!(
        alice.get("display").is_some() && alice["waited_ms"].is_u64(),
        "{alice}"
    );

    let (status, again) = served
        .post("/v1/assign", json!({"class": "office", "user": "alice"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        again["desktop"],
        desktop.as_str(),
        "same user, same desktop"
    );
    let (_, bob) = served
        .post("/v1/assign", json!({"class": "office", "user": "bob"}))
        .await;
    assert_ne!(
        bob["desktop"],
        desktop.as_str(),
        "another user, another desktop"
    );

    // libvirt records the assignment.
    let o = bed.observe("h1");
    let d = o.desktops.iter().find(|d| d.name == desktop).unwrap();
    assert_eq!(d.meta.pool, PoolState::Production);
    assert_eq!(d.meta.user.as_deref(), Some("alice"));

    wait(&mut served.engine, "two in production", |s| {
        class(s, "office").plan.production == 2
    })
    .await;
    let (status, classes) = served.get("/v1/classes").await;
    assert_eq!(status, 200);
    let office = &classes["classes"][0];
    assert_eq!(office["name"], "office");
    assert_eq!(office["production"], 2);
    assert_eq!(
        office["logins"]["served"], 2,
        "asking again is not a new login"
    );
    assert_eq!(office["logins"]["instant"], 2);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_assign_on_an_empty_buffer_waits_for_the_next_desktop_and_the_wait_is_measured() {
    let bed = bed(0);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let (status, answer) = served
        .post(
            "/v1/assign",
            json!({"class": "office", "user": "carol", "wait_secs": 30}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["waited_ms"].as_u64().unwrap() > 0, "{answer}");
    let metrics = served.text("/metrics").await;
    for line in [
        "deskpool_logins_total{class=\"office\"} 1",
        "deskpool_logins_instant_total{class=\"office\"} 0",
        "deskpool_logins_waiting{class=\"office\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    let sum: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("deskpool_login_wait_seconds_sum{class=\"office\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(sum > 0.0, "{metrics}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_assign_gets_503_when_no_desktop_is_ready_in_time() {
    let bed = bed(0);
    let mut served = serve(&bed);
    served.buffer_full().await;
    // Paused, the engine makes nothing: the wait must run out.
    served.engine.send(Command::Pause, "test").await.unwrap();
    let (status, now) = served
        .post("/v1/assign", json!({"class": "office", "user": "dave"}))
        .await;
    assert_eq!(status, 503, "{now}");
    assert!(
        now["error"]
            .as_str()
            .unwrap()
            .contains("no office desktop is ready"),
        "{now}"
    );
    let started = std::time::Instant::now();
    let (status, later) = served
        .post(
            "/v1/assign",
            json!({"class": "office", "user": "dave", "wait_secs": 1}),
        )
        .await;
    assert_eq!(status, 503, "{later}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        later["error"].as_str().unwrap().contains("within"),
        "{later}"
    );
    let metrics = served.text("/metrics").await;
    assert!(
        metrics.contains("deskpool_logins_refused_total{class=\"office\"} 2"),
        "{metrics}"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_recycles_the_desktop_and_an_unknown_one_is_404() {
    let bed = bed(1);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let desktop = served.assigned("erin").await;
    let (status, r) = served
        .post("/v1/release", json!({"desktop": desktop}))
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["released"], desktop.as_str());
    wait(&mut served.engine, "the released desktop gone", |s| {
        !s.desktops.iter().any(|d| d.name == desktop)
    })
    .await;
    let (status, r) = served
        .post("/v1/release", json!({"desktop": desktop}))
        .await;
    assert_eq!(status, 404, "{r}");
    let (status, r) = served
        .post("/v1/release", json!({"desktop": "dp-office-nosuch"}))
        .await;
    assert_eq!(status, 404, "{r}");
    served.stop().await;
}

/// One host with room for 10, class `office` with a buffer of 1 and a disconnect grace.
fn bed_with_grace(grace_secs: u64) -> Bed {
    let toml = format!(
        "{}{}{}",
        ENGINE_TOML,
        host_toml("h1", 10, false, ""),
        class_toml(
            "office",
            1,
            &format!("disconnect_grace_secs = {grace_secs}")
        ),
    );
    Bed::new(&["h1"], &["office"], &toml)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disconnected_desktop_survives_a_restart_and_its_user_gets_it_back() {
    let bed = bed_with_grace(600);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let desktop = served.assigned("erin").await;
    let (status, r) = served
        .post("/v1/disconnect", json!({"desktop": desktop}))
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["disconnected"], desktop.as_str());
    let held = |s: &Snapshot| {
        s.desktops.iter().any(|d| {
            d.name == desktop
                && d.meta.pool == PoolStateView::Disconnected
                && d.meta.user.as_deref() == Some("erin")
        })
    };
    wait(
        &mut served.engine,
        "the desktop disconnected, still erin's",
        held,
    )
    .await;
    // A new engine reads the label from the host: the desktop is still erin's.
    served.stop().await;
    let mut served = serve(&bed);
    wait(
        &mut served.engine,
        "the label read back after the restart",
        held,
    )
    .await;
    let (status, again) = served
        .post("/v1/assign", json!({"class": "office", "user": "erin"}))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["desktop"], desktop.as_str(), "the same desktop back");
    assert_eq!(again["waited_ms"], 0);
    wait(&mut served.engine, "the desktop in use again", |s| {
        s.desktops
            .iter()
            .any(|d| d.name == desktop && d.meta.pool == PoolStateView::Production)
    })
    .await;
    let (status, r) = served
        .post("/v1/disconnect", json!({"desktop": "dp-office-nosuch"}))
        .await;
    assert_eq!(status, 404, "{r}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disconnected_desktop_is_recycled_when_its_grace_ends() {
    let bed = bed_with_grace(1);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let desktop = served.assigned("erin").await;
    let (status, _) = served
        .post("/v1/disconnect", json!({"desktop": desktop}))
        .await;
    assert_eq!(status, 200);
    wait(
        &mut served.engine,
        "the desktop gone after its grace",
        |s| !s.desktops.iter().any(|d| d.name == desktop),
    )
    .await;
    let (status, again) = served
        .post(
            "/v1/assign",
            json!({"class": "office", "user": "erin", "wait_secs": 30}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_ne!(again["desktop"], desktop.as_str(), "a fresh desktop");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_a_clear_4xx_and_change_nothing() {
    let bed = bed(2);
    let mut served = serve(&bed);
    let before = served.buffer_full().await;
    let socket = served.socket.clone();
    let long = "u".repeat(300);
    for (user, why) in [
        ("a<b", "'<'"),
        ("a'b", "'\\''"),
        ("a&b", "'&'"),
        ("a/b", "'/'"),
        ("a..b", "'..'"),
        ("a b", "' '"),
        (long.as_str(), "at most"),
    ] {
        let (status, r) = served
            .post("/v1/assign", json!({"class": "office", "user": user}))
            .await;
        assert_eq!(status, 422, "{user}: {r}");
        let e = r["error"].as_str().unwrap();
        assert!(e.starts_with("user: ") && e.contains(why), "{user}: {e}");
    }
    let (status, r) = served
        .post("/v1/assign", json!({"class": "of/fice", "user": "a"}))
        .await;
    assert_eq!(
        (status, r["error"].as_str().unwrap().starts_with("class: ")),
        (422, true),
        "{r}"
    );
    let (status, r) = served
        .post("/v1/assign", json!({"class": "cad", "user": "alice"}))
        .await;
    assert_eq!(status, 404, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("unknown class"),
        "{r}"
    );
    let (status, r) = served
        .post(
            "/v1/assign",
            json!({"class": "office", "user": "a", "wait_secs": 4000}),
        )
        .await;
    assert_eq!(status, 422, "{r}");
    let (status, r) = served.post("/v1/assign", json!({"class": "office"})).await;
    assert_eq!(status, 422, "{r}");
    assert!(r["error"].as_str().unwrap().contains("user"), "{r}");
    let (status, r) = served
        .post(
            "/v1/command",
            json!({"command": {"type": "explode"}, "actor": "x"}),
        )
        .await;
    assert_eq!(status, 422, "{r}");

    let post = |body: &str, ct: &str| {
        format!(
            "POST /v1/assign HTTP/1.1\r\nConnection: close\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let (status, body) = raw(
        &socket,
        post("{\"class\": \"office\",", "application/json").as_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("malformed JSON"), "{body}");
    let big = format!(
        "{{\"class\":\"office\",\"user\":\"{}\"}}",
        "x".repeat(70_000)
    );
    let (status, body) = raw(&socket, post(&big, "application/json").as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = raw(&socket, post("{}", "text/plain").as_bytes()).await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = raw(&socket, b"POST /v1/assign HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, 411, "{body}");
    let (status, body) = raw(
        &socket,
        b"GET /v1/assign HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405, "{body}");
    let (status, body) = raw(
        &socket,
        b"GET /v2/nothing HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // Nothing changed: no login counted, nothing assigned, on libvirt as in the engine.
    served
        .engine
        .send(
            Command::Refill {
                class: "office".into(),
            },
            "test",
        )
        .await
        .unwrap();
    let after = wait(&mut served.engine, "a pass after the bad requests", |s| {
        s.passes > before.passes
    })
    .await;
    let (b, a) = (class(&before, "office"), class(&after, "office"));
    assert_eq!(
        (a.plan.production, a.plan.buffer, a.plan.creation),
        (b.plan.production, b.plan.buffer, b.plan.creation)
    );
    assert_eq!(a.logins, b.logins);
    assert_eq!(
        count(&bed.observe("h1"), "office", PoolState::Production),
        0
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_socket_is_private_stale_ones_are_replaced_live_ones_refused_and_it_is_removed_at_the_end()
 {
    let bed = bed(0);
    let socket = bed.file("deskpool.sock");
    // A stale socket: bound, then its listener dropped (nobody listening).
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut served = serve(&bed);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    assert!(broker::is_live(&socket));

    let mut other = bed.start();
    let err = Broker::start(&mut other, &socket, vec!["office".into()])
        .err()
        .expect("a live socket is refused")
        .to_string();
    assert!(err.contains("already listening"), "{err}");
    other.shutdown().await;
    assert!(
        broker::is_live(&socket),
        "the refusal left the live socket alone"
    );

    let file = bed.file("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    let mut third = bed.start();
    let err = Broker::start(&mut third, &file, vec![])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    third.shutdown().await;

    served.buffer_full().await;
    served.stop().await;
    assert!(!socket.exists(), "socket removed on shutdown");
    let err = client::call(&socket, "GET", "/v1/status", None, DEADLINE)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no deskpool engine is listening on"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_metrics_describe_classes_and_hosts() {
    let bed = bed(2);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let (status, s) = served.get("/v1/status").await;
    assert_eq!(status, 200);
    assert_eq!(s["classes"][0]["name"], "office");
    assert_eq!(s["classes"][0]["buffer"], 2);
    assert_eq!(s["classes"][0]["buffer_target"], 2);
    assert_eq!(s["hosts"][0]["name"], "h1");
    assert_eq!(s["hosts"][0]["state"], "active");
    assert_eq!(s["hosts"][0]["desktops"], 2);
    assert_eq!(s["hosts"][0]["capacity_desktops"], 10);
    assert_eq!(s["paused"], false);
    // Two requests on one kept-alive connection, two answers.
    let mut stream = tokio::net::UnixStream::connect(&served.socket)
        .await
        .unwrap();
    stream
        .write_all(
            b"GET /v1/status HTTP/1.1\r\n\r\nGET /v1/classes HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut both = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut both))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(both.matches("HTTP/1.1 200 OK").count(), 2, "{both}");
    let metrics = served.text("/metrics").await;
    for line in [
        "# TYPE deskpool_class_buffer gauge",
        "deskpool_class_buffer{class=\"office\"} 2",
        "deskpool_class_buffer_target{class=\"office\"} 2",
        "deskpool_class_production{class=\"office\"} 0",
        "deskpool_class_creation{class=\"office\"} 0",
        "deskpool_class_production_target{class=\"office\"} 0",
        "deskpool_desktop_failures_total{class=\"office\"} 0",
        "deskpool_host_up{host=\"h1\"} 1",
        "deskpool_host_desktops{host=\"h1\"} 2",
        "deskpool_host_capacity_desktops{host=\"h1\"} 10",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_works_against_the_socket() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl is not installed: skipping the curl check");
        return;
    }
    let bed = bed(1);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let socket = served.socket.display().to_string();
    let curl = move |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--unix-socket", &socket, "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let assign = tokio::task::spawn_blocking({
        let curl = curl.clone();
        move || {
            curl(&[
                "-d",
                "{\"class\":\"office\",\"user\":\"frank\"}",
                "http://localhost/v1/assign",
            ])
        }
    })
    .await
    .unwrap();
    assert!(
        assign.ends_with("\n200") && assign.contains("dp-office-"),
        "{assign}"
    );
    let metrics = tokio::task::spawn_blocking(move || curl(&["http://localhost/metrics"]))
        .await
        .unwrap();
    assert!(
        metrics.contains("deskpool_logins_total{class=\"office\"} 1"),
        "{metrics}"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attached_console_sees_the_same_engine_and_its_pause_pauses_it() {
    let bed = bed(1);
    let mut served = serve(&bed);
    let here = served.buffer_full().await;
    let mut attached = broker::attach(&served.socket, false).await.unwrap();
    let there = attached.snapshot.borrow().clone();
    assert!(there.passes >= here.passes);
    assert_eq!(there.classes.len(), 1);
    assert_eq!(class(&there, "office").plan.buffer, 1);
    assert_eq!(there.desktops.len(), here.desktops.len());
    assert_eq!(there.hosts[0].name, "h1");

    // Its commands reach the serving engine; its snapshots follow.
    attached
        .send(Command::Pause, "second-console")
        .await
        .unwrap();
    wait(&mut served.engine, "the serving engine paused", |s| {
        s.paused
    })
    .await;
    wait(&mut attached, "the attached console sees it paused", |s| {
        s.paused
    })
    .await;
    // The engine's events reach it too (the pause is an admin action).
    let event = tokio::time::timeout(DEADLINE, async {
        loop {
            let e = attached.events.recv().await.expect("events flow");
            if e.message.contains("second-console") {
                return e;
            }
        }
    })
    .await
    .expect("the admin action event arrives");
    assert!(event.message.contains("pause the engine"), "{event:?}");
    let err = attached
        .send(
            Command::Refill {
                class: "cad".into(),
            },
            "second-console",
        )
        .await
        .unwrap_err();
    assert!(err.message.contains("unknown class"), "{err}");

    // A read-only console refuses locally; the engine never hears of it.
    let read_only = broker::attach(&served.socket, true).await.unwrap();
    let err = read_only.send(Command::Resume, "ro").await.unwrap_err();
    assert!(err.message.contains("read-only"), "{err}");
    assert!(served.engine.snapshot.borrow().paused);
    read_only.shutdown().await;

    // Shutting an attached console down leaves the engine running.
    let passes = served.engine.snapshot.borrow().passes;
    attached.shutdown().await;
    served.engine.send(Command::Resume, "test").await.unwrap();
    wait(&mut served.engine, "the engine still running", |s| {
        s.passes > passes && !s.paused
    })
    .await;

    // When the engine goes away, an attached console's snapshot channel closes.
    let mut orphan = broker::attach(&served.socket, false).await.unwrap();
    served.stop().await;
    let closed = tokio::time::timeout(DEADLINE, async {
        while orphan.snapshot.changed().await.is_ok() {}
    })
    .await;
    assert!(closed.is_ok(), "the snapshot channel closed");
}

/// Issue 9, finding 7: `set_policy` is held to the rules of the config file. Each bad policy
/// (which, applied, would change the class's cap or buffer target) is refused with 422 naming
/// the field, and the engine keeps its policy; a good one is applied.
#[tokio::test(flavor = "multi_thread")]
async fn set_policy_refuses_what_the_config_file_refuses_and_keeps_the_policy() {
    let bed = bed(2);
    let mut served = serve(&bed);
    let before = served.buffer_full().await;
    assert_eq!(
        (
            class(&before, "office").cap,
            class(&before, "office").plan.buffer_target
        ),
        (100, 2)
    );
    let good =
        serde_json::to_value(deskpool_api::PolicyWire::from(&bed.fleet.classes[0].policy)).unwrap();
    let event = |first: &str, last: &str, from: u32, to: u32| {
        json!({
            "name": "training", "first_day": first, "last_day": last,
            "from": from * 3600, "to": to * 3600, "production": 3,
            "buffer": {"floor": 5, "percent": 0, "ceiling": 5}
        })
    };
    let with = |change: &dyn Fn(&mut Value)| {
        let mut p = good.clone();
        // Were it applied, every one of these would show: 5 spare instead of 2.
        p["buffer"] = json!({"floor": 5, "percent": 0, "ceiling": 5});
        change(&mut p);
        p
    };
    let bad: Vec<(&str, Value)> = vec![
        (
            "buffer.floor",
            with(&|p| p["buffer"] = json!({"floor": 9, "percent": 0, "ceiling": 8})),
        ),
        (
            "cap",
            with(&|p| {
                p["cap"] = json!(0);
                p["buffer"] = json!({"floor": 0, "percent": 0, "ceiling": 0});
            }),
        ),
        (
            "production",
            with(&|p| {
                p["cap"] = json!(2);
                p["production"] = json!(4_000_000_000u32);
                p["buffer"] = json!({"floor": 0, "percent": 0, "ceiling": 2});
            }),
        ),
        (
            "periods[1].from",
            with(&|p| {
                p["periods"] = json!([{
                    "days": 127, "from": 999_999, "to": 3600, "production": 0,
                    "buffer": {"floor": 5, "percent": 0, "ceiling": 5}
                }]);
            }),
        ),
        (
            "predictive.service_level",
            with(&|p| p["predictive"] = json!({"service_level": 5.0})),
        ),
        (
            "pacing.clones_per_host",
            with(&|p| p["pacing"] = json!({"clones_per_host": 0, "boots_per_host": 4})),
        ),
        (
            "disconnect_grace_secs",
            with(&|p| p["disconnect_grace_secs"] = json!(86_401)),
        ),
        (
            "events[1].date",
            with(&|p| p["events"] = json!([event("2026-01-07", "2026-01-05", 8, 9)])),
        ),
        (
            "events[1].to",
            with(&|p| p["events"] = json!([event("2026-01-05", "2026-01-05", 9, 9)])),
        ),
        (
            "events",
            with(&|p| {
                p["events"] = json!([
                    event("2026-01-05", "2026-01-06", 8, 10),
                    event("2026-01-06", "2026-01-06", 9, 11)
                ])
            }),
        ),
        (
            "events[1].production",
            with(&|p| {
                let mut e = event("2026-01-05", "2026-01-05", 8, 9);
                e["production"] = json!(101);
                p["events"] = json!([e]);
            }),
        ),
    ];
    for (field, policy) in &bad {
        let (status, r) = served
            .post(
                "/v1/command",
                json!({"command": {"type": "set_policy", "class": "office", "policy": policy}, "actor": "test"}),
            )
            .await;
        assert_eq!(status, 422, "{field}: {r}");
        let e = r["error"].as_str().unwrap();
        assert!(
            e.starts_with("invalid policy for class \"office\": ")
                && e.contains(&format!("{field}: ")),
            "{field}: {e}"
        );
    }

    // A pass after the refusals plans with the policy the class had.
    served
        .engine
        .send(
            Command::Refill {
                class: "office".into(),
            },
            "test",
        )
        .await
        .unwrap();
    let passes = before.passes;
    wait(
        &mut served.engine,
        "a pass after the refused policies",
        |s| s.passes > passes,
    )
    .await;
    let (status, classes) = served.get("/v1/classes").await;
    assert_eq!(status, 200);
    let office = &classes["classes"][0];
    assert_eq!(
        (
            office["name"].as_str(),
            office["cap"].as_u64(),
            office["buffer_target"].as_u64()
        ),
        (Some("office"), Some(100), Some(2)),
        "{classes}"
    );

    // The same change within the rules is applied, and shows where the refusals did not.
    let mut ok = with(&|_| {});
    ok["cap"] = json!(7);
    let (status, r) = served
        .post(
            "/v1/command",
            json!({"command": {"type": "set_policy", "class": "office", "policy": ok}, "actor": "test"}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let after = wait(&mut served.engine, "the new policy planned", |s| {
        let c = class(s, "office");
        c.cap == 7 && c.plan.buffer_target == 5
    })
    .await;
    assert_eq!(class(&after, "office").cap, 7);
    served.stop().await;
}

/// Far below the 30 s that idle connections used to hold every slot for.
const SERVED_WITHIN: Duration = Duration::from_secs(10);

/// Reads one answer on a kept-alive connection (by its `Content-Length`) and returns its status
/// and head.
async fn answer(stream: &mut tokio::net::UnixStream) -> (u16, String) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
            if got.len() >= end + 4 + length {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no status in {head:?}"));
                return (status, head);
            }
        }
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "closed before the answer ended: {got:?}");
        got.extend_from_slice(&chunk[..n]);
    }
}

/// `deskpool ctl status` from a process of its own (the server's quota is per process), which
/// must be answered within [`SERVED_WITHIN`].
async fn ctl_status(socket: &Path) -> std::process::Output {
    let ctl = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskpool"))
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(["status", "--json"])
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(SERVED_WITHIN, ctl)
        .await
        .expect("ctl answered in time")
        .expect("ctl runs")
}

/// Sends pipelined requests without ever reading an answer, until the server drops the
/// connection; returns that error.
async fn flood(mut w: tokio::net::unix::OwnedWriteHalf) -> std::io::Error {
    let burst = b"GET /v1/snapshot HTTP/1.1\r\n\r\n".repeat(100);
    loop {
        if let Err(e) = w.write_all(&burst).await {
            return e;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_of_one_process_do_not_lock_out_a_new_client() {
    let bed = bed(0);
    let mut served = serve(&bed);
    served.buffer_full().await;
    // As many kept-alive connections as the server serves at once, each answered once (so
    // each was admitted) and then left idle.
    let mut idle = Vec::new();
    for _ in 0..broker::server::MAX_CONNECTIONS {
        let mut stream = tokio::net::UnixStream::connect(&served.socket)
            .await
            .unwrap();
        stream
            .write_all(b"GET /v1/status HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let (status, head) = answer(&mut stream).await;
        assert_eq!(status, 200, "{head}");
        idle.push(stream);
    }
    // Another process is served: its slots were never all taken.
    let out = ctl_status(&served.socket).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["classes"][0]["name"], "office");
    // So is this process: one of its idle connections makes way.
    let a = client::call(&served.socket, "GET", "/v1/status", None, SERVED_WITHIN)
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.error());
    drop(idle);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_that_pipeline_and_never_read_do_not_lock_out_a_new_client() {
    let bed = bed(0);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let mut readers = Vec::new();
    let mut floods = tokio::task::JoinSet::new();
    for _ in 0..broker::server::MAX_CONNECTIONS {
        let mut stream = tokio::net::UnixStream::connect(&served.socket)
            .await
            .unwrap();
        // A refused connection is answered and closed at once: this write may fail.
        let _ = stream.write_all(b"GET /v1/status HTTP/1.1\r\n\r\n").await;
        // Admitted (200) or refused (503, this process holds its share): accepted either way,
        // so the next connection comes after it.
        let (status, head) = answer(&mut stream).await;
        assert!(status == 200 || status == 503, "{head}");
        let (r, w) = stream.into_split();
        readers.push(r);
        floods.spawn(flood(w));
    }
    let out = ctl_status(&served.socket).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    floods.abort_all();
    drop(readers);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_its_answers_is_dropped() {
    let bed = bed(0);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let stream = tokio::net::UnixStream::connect(&served.socket)
        .await
        .unwrap();
    let (r, w) = stream.into_split();
    // The server answers until the socket's buffers are full, then its write waits for a
    // reader that never comes: it gives up and closes, and this writer's next write fails.
    let dropped = tokio::time::timeout(
        broker::server::WRITE_TIMEOUT + Duration::from_secs(30),
        flood(w),
    )
    .await
    .expect("the server dropped the connection");
    assert!(
        matches!(
            dropped.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "{dropped}"
    );
    drop(r);
    let (status, _) = served.get("/v1/status").await;
    assert_eq!(status, 200, "the server serves on");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_alive_connection_ends_after_its_request_limit_and_when_idle() {
    let bed = bed(0);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let limit = broker::server::MAX_REQUESTS_PER_CONNECTION;
    let stream = tokio::net::UnixStream::connect(&served.socket)
        .await
        .unwrap();
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        let requests = b"GET /v1/classes HTTP/1.1\r\n\r\n".repeat(limit + 5);
        // The server closes after the limit: the rest may not be taken.
        let _ = w.write_all(&requests).await;
        w
    });
    let mut all = Vec::new();
    tokio::time::timeout(DEADLINE, r.read_to_end(&mut all))
        .await
        .expect("the server closed the connection")
        .unwrap();
    drop(writer.await.unwrap());
    let all = String::from_utf8_lossy(&all);
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), limit);
    let last = all.rsplit("HTTP/1.1 200 OK").next().unwrap();
    assert!(last.contains("Connection: close"), "{last}");

    // A connection that sends nothing, and one that is idle after an answer, are closed well
    // before the 30 s a client has to finish a request it started.
    let within = broker::server::IDLE_TIMEOUT * 3;
    assert!(within < broker::server::READ_TIMEOUT);
    let mut silent = tokio::net::UnixStream::connect(&served.socket)
        .await
        .unwrap();
    let mut kept = tokio::net::UnixStream::connect(&served.socket)
        .await
        .unwrap();
    kept.write_all(b"GET /v1/status HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(answer(&mut kept).await.0, 200);
    for stream in [&mut silent, &mut kept] {
        let mut rest = Vec::new();
        tokio::time::timeout(within, stream.read_to_end(&mut rest))
            .await
            .expect("the idle connection closed")
            .unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }
    served.stop().await;
}

/// `/metrics` of a running engine, after an instant and a waited login, passes `promtool check
/// metrics` (Debian's `prometheus` package, which `make test` installs) without a complaint,
/// and carries the login wait histogram.
#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_pass_promtool_and_login_waits_are_a_histogram() {
    // office keeps one desktop ready, lab none: alice is served at once, bob waits.
    let toml = format!(
        "{}{}{}{}",
        ENGINE_TOML,
        host_toml("h1", 10, false, ""),
        class_toml("office", 1, ""),
        class_toml("lab", 0, ""),
    );
    let bed = Bed::new(&["h1"], &["office", "lab"], &toml);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let (status, alice) = served
        .post("/v1/assign", json!({"class": "office", "user": "alice"}))
        .await;
    assert_eq!(status, 200, "{alice}");
    let (status, bob) = served
        .post(
            "/v1/assign",
            json!({"class": "lab", "user": "bob", "wait_secs": 30}),
        )
        .await;
    assert_eq!(status, 200, "{bob}");
    assert!(bob["waited_ms"].as_u64().unwrap() > 0, "{bob}");
    wait(&mut served.engine, "both logins counted", |s| {
        class(s, "office").logins.served == 1 && class(s, "lab").logins.served == 1
    })
    .await;
    let metrics = served.text("/metrics").await;
    served.stop().await;
    // The desktops made for the buffers were timed: their steps are in what promtool checks.
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "deskpool_desktop_step_seconds{host=\"h1\",class=\"office\",step=\"whole\",stat=\"median\"}"
        )),
        "{metrics}"
    );

    let mut promtool = match tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run promtool ({e}): install Debian's `prometheus` package \
             (`make deps-test` does) to check the /metrics exposition"
        ),
    };
    let mut stdin = promtool.stdin.take().unwrap();
    stdin.write_all(metrics.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(DEADLINE, promtool.wait_with_output())
        .await
        .expect("promtool answers")
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {} {said}\non\n{metrics}",
        out.status
    );

    // promtool accepts any well-formed family: check the histogram is there and adds up.
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{series} not in\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert!(
        metrics
            .lines()
            .any(|l| l == "# TYPE deskpool_login_wait_seconds histogram"),
        "{metrics}"
    );
    for class in ["office", "lab"] {
        let series = |suffix: &str, le: Option<&str>| match le {
            Some(le) => {
                format!("deskpool_login_wait_seconds_{suffix}{{class=\"{class}\",le=\"{le}\"}}")
            }
            None => format!("deskpool_login_wait_seconds_{suffix}{{class=\"{class}\"}}"),
        };
        let count = value(&series("count", None));
        assert_eq!(count, 1.0, "{class}: {metrics}");
        assert_eq!(value(&series("bucket", Some("+Inf"))), count, "{class}");
    }
    // alice's instant login is a 0 s wait, in the lowest bucket; bob's wait is in the sum.
    assert_eq!(
        value("deskpool_login_wait_seconds_bucket{class=\"office\",le=\"0.1\"}"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        value("deskpool_login_wait_seconds_sum{class=\"office\"}"),
        0.0,
        "{metrics}"
    );
    assert!(
        value("deskpool_login_wait_seconds_sum{class=\"lab\"}") > 0.0,
        "bob waited: {metrics}"
    );
}

/// `GET /v1/stream`: one answer that carries the engine's snapshots and events as they happen,
/// one JSON object a line, without asking again. The answer is chunked, one line a chunk (hyper
/// frames an answer without a length so; README, "Broker API").
#[tokio::test(flavor = "multi_thread")]
async fn the_stream_carries_snapshots_and_events_as_the_engine_makes_them() {
    use tokio::io::AsyncBufReadExt;
    let bed = bed(1);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let mut stream = tokio::net::UnixStream::connect(&served.socket)
        .await
        .unwrap();
    stream
        .write_all(b"GET /v1/stream HTTP/1.1\r\nHost: d\r\n\r\n")
        .await
        .unwrap();
    let mut reader = tokio::io::BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        tokio::time::timeout(DEADLINE, reader.read_line(&mut line))
            .await
            .expect("the head within the deadline")
            .unwrap();
        assert!(!line.is_empty(), "closed in the head: {head}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    // One chunk: its size in hex, its bytes, CRLF; a line without its newline.
    let mut next = async || {
        let chunk = async {
            let mut size = String::new();
            reader.read_line(&mut size).await.unwrap();
            let n = usize::from_str_radix(size.trim_end(), 16)
                .unwrap_or_else(|_| panic!("a chunk size, not {size:?}"));
            assert!(n > 0, "the stream stays open");
            let mut data = vec![0u8; n + 2];
            reader.read_exact(&mut data).await.unwrap();
            assert_eq!(&data[n..], b"\r\n", "a chunk ends with CRLF");
            data.truncate(n);
            let line = String::from_utf8(data).unwrap();
            assert!(line.ends_with('\n'), "one whole line a chunk: {line:?}");
            line.trim_end_matches('\n').to_string()
        };
        tokio::time::timeout(DEADLINE, chunk)
            .await
            .expect("a line within the deadline")
    };
    let first: Value = serde_json::from_str(&next().await).unwrap();
    assert_eq!(first["snapshot"]["paused"], false, "{first}");
    assert!(first["snapshot"]["passes"].as_u64().unwrap() > 0, "{first}");

    // A pause from elsewhere reaches the stream as its event and as a paused snapshot.
    served
        .engine
        .send(Command::Pause, "streamer")
        .await
        .unwrap();
    let (mut event_seen, mut paused_seen) = (false, false);
    let mut last_seq = 0;
    while !(event_seen && paused_seen) {
        let line = next().await;
        if line.is_empty() {
            continue; // a heartbeat
        }
        let v: Value = serde_json::from_str(&line).unwrap();
        if let Some(e) = v.get("event") {
            let seq = e["seq"].as_u64().unwrap();
            assert!(seq > last_seq, "events in order: {v}");
            last_seq = seq;
            event_seen |= e["message"].as_str().unwrap().contains("streamer");
        } else if let Some(s) = v.get("snapshot") {
            paused_seen |= s["paused"] == true;
        } else {
            panic!("an unknown line {v}");
        }
    }

    // Only GET; a bad `after` is 400.
    let (status, _) = raw(
        &served.socket,
        b"POST /v1/stream HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405);
    let (status, body) = raw(
        &served.socket,
        b"GET /v1/stream?after=x HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // When the engine stops serving, the stream ends.
    served.stop().await;
    let mut rest = Vec::new();
    let end = tokio::time::timeout(DEADLINE, reader.read_to_end(&mut rest)).await;
    assert!(end.is_ok(), "the stream ended with the engine");
}

/// What hyper reads that the broker's own parser refused: a chunked body is read like one with a
/// `Content-Length`, held to the same 64 KiB (README, "Broker API"); a head over 8 KiB is still
/// refused 431, and another protocol version (505 before) and a malformed header 400 (by hyper).
#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_body_is_accepted_within_the_same_limit() {
    let bed = bed(1);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let body = r#"{"class":"office","user":"carol"}"#;
    let (a, b) = body.split_at(10);
    let chunked = format!(
        "POST /v1/assign HTTP/1.1\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let (status, answer) = raw(&served.socket, chunked.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert!(
        answer["desktop"]
            .as_str()
            .unwrap()
            .starts_with("dp-office-"),
        "{answer}"
    );

    let part = "x".repeat(40_000);
    let over = format!(
        "POST /v1/assign HTTP/1.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{part}\r\n{:x}\r\n{part}\r\n0\r\n\r\n",
        part.len(),
        part.len()
    );
    let (status, body) = raw(&served.socket, over.as_bytes()).await;
    assert_eq!(status, 413, "{body}");

    let long = format!(
        "GET /v1/status?pad={} HTTP/1.1\r\nConnection: close\r\n\r\n",
        "a".repeat(9000)
    );
    let (status, body) = raw(&served.socket, long.as_bytes()).await;
    assert_eq!(status, 431, "{body}");
    let (status, _) = raw(&served.socket, b"GET /v1/status HTTP/3.0\r\n\r\n").await;
    assert_eq!(
        status, 400,
        "hyper refuses another version as a malformed request"
    );
    let (status, _) = raw(
        &served.socket,
        b"GET /v1/status HTTP/1.1\r\nbad header\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
    served.stop().await;
}

/// The broker subscribes to the engine's events beside the console of the same process: both
/// get them, neither takes them from the other.
#[tokio::test(flavor = "multi_thread")]
async fn the_serving_console_and_the_broker_both_get_every_event() {
    let bed = bed(0);
    let mut served = serve(&bed);
    served.buffer_full().await;
    served
        .engine
        .send(Command::Pause, "local-admin")
        .await
        .unwrap();
    let mentions = |message: &str| message.contains("local-admin");
    tokio::time::timeout(DEADLINE, async {
        loop {
            let event = served.engine.events.recv().await.expect("events flow");
            if mentions(&event.message) {
                return;
            }
        }
    })
    .await
    .expect("the console got the pause event");
    let mut after = 0;
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            let (status, batch) = served
                .get(&format!("/v1/events?after={after}&wait=5"))
                .await;
            assert_eq!(status, 200, "{batch}");
            let events = batch["events"].as_array().unwrap();
            if events
                .iter()
                .any(|e| mentions(e["message"].as_str().unwrap()))
            {
                return;
            }
            after = batch["last"].as_u64().unwrap();
        }
    })
    .await;
    assert!(found.is_ok(), "the broker's ring got the pause event");
    served.stop().await;
}

/// A client that shuts its side down once it has sent its request (`socat`, `nc -U`) still
/// gets the answer (hyper's default would drop it).
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let bed = bed(0);
    let mut served = serve(&bed);
    served.buffer_full().await;
    let mut stream = tokio::net::UnixStream::connect(&served.socket)
        .await
        .unwrap();
    stream
        .write_all(b"GET /v1/snapshot?after=999999999&wait=1 HTTP/1.1\r\nHost: d\r\n\r\n")
        .await
        .unwrap();
    // Shut down while the long-poll waits.
    stream.shutdown().await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut all))
        .await
        .expect("the server answered and closed")
        .unwrap();
    let all = String::from_utf8_lossy(&all);
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    assert!(all.contains("\"passes\""), "{all}");
    served.stop().await;
}
