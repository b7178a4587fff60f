//! The `deskpool` binary as an administrator runs it: exit codes, messages, JSON.

mod common;

use std::process::{Command, Output};

use common::*;
use deskpool_engine::lock::EngineLock;

fn deskpool(args: &[&str], home: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deskpool"))
        .args(args)
        // Keep the user's own config and state out of the tests.
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .output()
        .expect("deskpool runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn test_fleet() -> Bed {
    let toml = format!(
        "{}state_dir = \"@DIR@/state\"\n{}{}{}",
        ENGINE_TOML,
        host_toml("h1", 10, false, ""),
        class_toml("office", 3, ""),
        class_toml("dev", 1, ""),
    );
    Bed::new(&["h1"], &["office", "dev"], &toml)
}

#[test]
fn check_names_every_mistake_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[hosts]]\nname = \"h<1\"\nuri = \"qemu:///system\"\ncapacity = { desktops = 10 }\ncolour = \"red\"\n",
    )
    .unwrap();
    let out = deskpool(&["check", "--config", path.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let file = path.display().to_string();
    assert!(
        err.contains(&format!("{file}:2:8: ")) && err.contains("'<'"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:5:1: ")) && err.contains("colour"),
        "{err}"
    );
    assert!(
        err.contains("no classes") || err.contains("at least one class"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing else printed: {}",
        text(&out.stdout)
    );
}

#[test]
fn check_summarises_a_valid_file() {
    let bed = test_fleet();
    let out = deskpool(
        &[
            "check",
            "--config",
            bed.file("deskpool.toml").to_str().unwrap(),
        ],
        bed.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(
        summary.contains("valid") && summary.contains("office") && summary.contains("h1"),
        "{summary}"
    );
}

#[test]
fn check_without_any_config_describes_the_embedded_demo() {
    let home = tempfile::tempdir().unwrap();
    let out = deskpool(&["check"], home.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    for name in ["office", "dev", "cad", "h1", "h2", "h3"] {
        assert!(summary.contains(name), "{name} missing from {summary}");
    }
}

#[test]
fn reconcile_until_steady_prints_the_documented_json() {
    let bed = test_fleet();
    let config = bed.file("deskpool.toml");
    let out = deskpool(
        &[
            "reconcile",
            "--config",
            config.to_str().unwrap(),
            "--until-steady",
            "--json",
        ],
        bed.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let office = &json["classes"][0];
    assert_eq!(office["name"], "office");
    for (key, value) in [
        ("production", 0),
        ("buffer", 3),
        ("creation", 0),
        ("buffer_target", 3),
        ("production_target", 0),
    ] {
        assert_eq!(office[key], value, "{key} in {json}");
    }
    assert_eq!(json["classes"][1]["buffer"], 1);
    assert_eq!(
        json["hosts"][0],
        serde_json::json!({"name": "h1", "state": "active", "desktops": 4})
    );
    assert!(
        bed.file("state/deskpool.log").exists(),
        "logs go to the state directory"
    );
}

#[test]
fn reconcile_gives_up_with_status_2_and_says_where_each_class_stands() {
    let bed = test_fleet();
    // A host that does not exist: nothing can be made.
    let config = std::fs::read_to_string(bed.file("deskpool.toml"))
        .unwrap()
        .replace("/h1.xml", "/missing.xml");
    std::fs::write(bed.file("unreachable.toml"), config).unwrap();
    let path = bed.file("unreachable.toml");
    let out = deskpool(
        &[
            "reconcile",
            "--config",
            path.to_str().unwrap(),
            "--until-steady",
            "--timeout",
            "3",
        ],
        bed.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not steady after 3s"),
        "{}",
        text(&out.stderr)
    );
    let table = text(&out.stdout);
    assert!(
        table.contains("down") && table.contains("missing.xml"),
        "{table}"
    );
}

#[test]
fn a_second_engine_on_the_same_state_directory_is_refused() {
    let bed = test_fleet();
    let _held = EngineLock::acquire(&bed.file("state")).unwrap();
    let config = bed.file("deskpool.toml");
    let out = deskpool(
        &["reconcile", "--config", config.to_str().unwrap()],
        bed.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("another deskpool engine"), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "names the holder: {err}"
    );
}

#[test]
fn help_names_the_log_file_and_every_command() {
    let home = tempfile::tempdir().unwrap();
    let out = deskpool(&["--help"], home.path());
    let help = text(&out.stdout);
    for needle in [
        "deskpool.log",
        "check",
        "reconcile",
        "serve",
        "ctl",
        "--config",
    ] {
        assert!(
            help.contains(needle),
            "{needle} missing from --help:\n{help}"
        );
    }
}

/// `deskpool serve` in the background, its first line read; what it prints later is collected.
struct Serving {
    child: std::process::Child,
    first_line: String,
    /// Every line serve printed on stdout and stderr, as it came.
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Serving {
    fn start(config: &std::path::Path, home: &std::path::Path) -> Serving {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_deskpool"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_STATE_HOME", home.join("state"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        stdout.read_line(&mut first_line).unwrap();
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collect = |stream: Box<dyn std::io::BufRead + Send>| {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in stream.lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line);
                }
            });
        };
        collect(Box::new(stdout));
        collect(Box::new(std::io::BufReader::new(
            child.stderr.take().unwrap(),
        )));
        Serving {
            child,
            first_line,
            output,
        }
    }

    /// Waits (with the deadline) for a line of serve's output containing `needle`.
    fn wait_for_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(line) = self
                .output
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "serve never printed {needle:?}: {:?}",
                self.output.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: signalling a child process this test started.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Sends `signal` and waits (with the deadline) for the exit status.
    fn stop(mut self, signal: i32) -> std::process::ExitStatus {
        self.signal(signal);
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "serve did not stop");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

#[test]
fn serve_answers_ctl_and_removes_its_socket_on_sigterm() {
    let bed = test_fleet();
    let config = bed.file("deskpool.toml");
    let config_arg = config.to_str().unwrap();
    let socket = bed.file("state/deskpool.sock");
    let out = deskpool(&["ctl", "--config", config_arg, "status"], bed.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "no deskpool engine is listening on {}",
            socket.display()
        )) && err.contains("deskpool serve"),
        "{err}"
    );

    let serving = Serving::start(&config, bed.path());
    assert!(
        serving.first_line.contains(&socket.display().to_string()),
        "the start line names the socket: {:?}",
        serving.first_line
    );
    let out = deskpool(
        &["ctl", "--config", config_arg, "status", "--json"],
        bed.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["classes"][0]["name"], "office");
    assert_eq!(status["hosts"][0]["name"], "h1");

    let out = deskpool(
        &[
            "ctl", "--config", config_arg, "assign", "office", "alice", "--wait", "30", "--json",
        ],
        bed.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let assigned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let desktop = assigned["desktop"].as_str().unwrap().to_string();
    assert!(desktop.starts_with("dp-office-"), "{assigned}");
    assert_eq!(assigned["host"], "h1");

    // --socket instead of the config.
    let socket_arg = socket.to_str().unwrap();
    let out = deskpool(
        &["ctl", "--socket", socket_arg, "release", &desktop],
        bed.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("{desktop} released")));
    let out = deskpool(
        &["ctl", "--socket", socket_arg, "assign", "cad", "bob"],
        bed.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown class"),
        "{}",
        text(&out.stderr)
    );

    let status = serving.stop(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket is removed on SIGTERM");
    assert!(
        EngineLock::acquire(&bed.file("state")).is_ok(),
        "the engine lock is released"
    );
}

/// The buffer target of `class` in the status of the serve on `socket`.
fn buffer_target(socket: &str, home: &std::path::Path, class: &str) -> serde_json::Value {
    let out = deskpool(&["ctl", "--socket", socket, "status", "--json"], home);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == class)
        .unwrap_or_else(|| panic!("no class {class} in {status}"))["buffer_target"]
        .clone()
}

#[test]
fn sighup_applies_a_valid_file_and_keeps_running_on_a_bad_one() {
    let bed = test_fleet();
    let config = bed.file("deskpool.toml");
    let socket = bed.file("state/deskpool.sock");
    // By socket: ctl reading the config would stop at the bad file this test writes.
    let socket_arg = socket.to_str().unwrap();
    let original = std::fs::read_to_string(&config).unwrap();
    let serving = Serving::start(&config, bed.path());
    assert_eq!(buffer_target(socket_arg, bed.path(), "office"), 3);

    // An unknown key: refused with its place in the file, the engine goes on as it was.
    let bad = original.replacen(
        "[classes.policy]\n",
        "[classes.policy]\ncolour = \"red\"\n",
        1,
    );
    std::fs::write(&config, &bad).unwrap();
    serving.signal(libc::SIGHUP);
    let line = serving.wait_for_line("configuration not reloaded");
    assert!(line.contains("the running one is kept"), "{line}");
    // The errors follow, one per line, as `deskpool check` prints them.
    let error = serving.wait_for_line("unknown key \"colour\"");
    assert!(error.contains(&format!("{}:", config.display())), "{error}");
    assert_eq!(buffer_target(socket_arg, bed.path(), "office"), 3);

    // A valid file: office's buffer of 3 becomes 5.
    let good = original.replacen(
        "buffer = { floor = 3, percent = 0, ceiling = 3 }",
        "buffer = { floor = 5, percent = 0, ceiling = 5 }",
        1,
    );
    assert_ne!(good, original, "the test changes office's buffer");
    std::fs::write(&config, &good).unwrap();
    serving.signal(libc::SIGHUP);
    let line = serving.wait_for_line("configuration reloaded");
    assert!(line.contains("class changed: office"), "{line}");
    let deadline = std::time::Instant::now() + DEADLINE;
    while buffer_target(socket_arg, bed.path(), "office") != 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the new buffer never showed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let status = serving.stop(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
}

/// A reader that goes away (`deskpool check | head -1`) ends `check` quietly, with no panic.
#[test]
fn check_into_a_closed_pipe_ends_without_a_panic() {
    let home = tempfile::tempdir().unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deskpool.toml");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_deskpool"))
        .args(["check", "--config", example.to_str().unwrap()])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .stdout(writer)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}

/// `check` on the shipped example: valid, and its summary says what each class does with a
/// desktop found shut off (`policy.on_shutoff`).
#[test]
fn check_accepts_the_example_and_summarises_on_shutoff() {
    let home = tempfile::tempdir().unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deskpool.toml");
    let out = deskpool(
        &["check", "--config", example.to_str().unwrap()],
        home.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    let office = summary
        .lines()
        .skip_while(|l| !l.starts_with("  office:"))
        .find(|l| l.contains("on shutoff"));
    let dev = summary
        .lines()
        .skip_while(|l| !l.starts_with("  dev:"))
        .find(|l| l.contains("on shutoff"));
    assert!(
        office.is_some_and(|l| l.contains("on shutoff: restart"))
            && dev.is_some_and(|l| l.contains("on shutoff: recycle")),
        "{summary}"
    );
}

#[test]
fn the_state_directory_and_its_files_are_private_and_older_ones_are_made_so() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let chmod = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let bed = test_fleet();
    let config = bed.file("deskpool.toml");
    let state = bed.file("state");
    assert!(!state.exists());
    let out = deskpool(
        &["reconcile", "--config", config.to_str().unwrap()],
        bed.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&state), 0o700, "a new state directory");
    for name in ["deskpool.log", "engine.lock"] {
        assert_eq!(mode(&state.join(name)), 0o600, "{name}");
    }

    // As an older deskpool left them: readable by every local account.
    chmod(&state, 0o755);
    for name in ["deskpool.log", "engine.lock"] {
        chmod(&state.join(name), 0o644);
    }
    for name in ["demand.json", "audit.log"] {
        std::fs::write(
            state.join(name),
            if name == "audit.log" { "" } else { "{}" },
        )
        .unwrap();
        chmod(&state.join(name), 0o644);
    }
    let serving = Serving::start(&config, bed.path());
    let out = deskpool(
        &[
            "ctl",
            "--config",
            config.to_str().unwrap(),
            "assign",
            "office",
            "alice",
            "--wait",
            "30",
        ],
        bed.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = serving.stop(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
    assert_eq!(mode(&state), 0o700);
    let log = std::fs::read_to_string(state.join("deskpool.log")).unwrap();
    for name in ["deskpool.log", "engine.lock", "demand.json", "audit.log"] {
        assert_eq!(mode(&state.join(name)), 0o600, "{name}");
        let said = format!(
            "made {} private (mode 644 -> 600)",
            state.join(name).display()
        );
        assert!(log.contains(&said), "{said} not in\n{log}");
    }
    assert!(log.contains(&format!(
        "made {} private (mode 755 -> 700)",
        state.display()
    )));
    // The login was saved (the history is rewritten, still private).
    let history = std::fs::read_to_string(state.join("demand.json")).unwrap();
    assert!(history.contains("office"), "{history}");
}

/// A request to the network endpoint on `port` with a bearer `secret`: the answer's status.
fn endpoint_call(port: u16, method: &str, target: &str, secret: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: deskpool\r\nAuthorization: Bearer {secret}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[test]
fn serve_listens_for_tokens_that_token_add_makes_and_takes_new_ones_on_sighup() {
    let bed = test_fleet();
    let config = bed.file("deskpool.toml");
    let config_arg = config.to_str().unwrap();
    let tokens = bed.file("tokens");
    let out = deskpool(
        &[
            "token",
            "add",
            "gateway",
            "--scope",
            "assign",
            "--file",
            tokens.to_str().unwrap(),
        ],
        bed.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let gateway = text(&out.stdout).trim().to_string();
    assert_eq!(gateway.len(), 64, "{gateway:?}");
    let file = std::fs::read_to_string(&tokens).unwrap();
    assert!(
        file.starts_with("gateway assign ") && !file.contains(&gateway),
        "{file}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");

    // A port free a moment ago (serve refuses port 0 as the config file does).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let original = std::fs::read_to_string(&config).unwrap();
    let with_endpoint = |port: u16| {
        format!("[broker]\nlisten = \"127.0.0.1:{port}\"\ntokens = \"tokens\"\n{original}")
    };
    std::fs::write(&config, with_endpoint(port)).unwrap();
    let serving = Serving::start(&config, bed.path());
    assert!(
        serving
            .first_line
            .contains(&format!("endpoint http://127.0.0.1:{port}")),
        "{}",
        serving.first_line
    );
    assert_eq!(endpoint_call(port, "GET", "/v1/status", &gateway, ""), 200);
    let pause = r#"{"command":{"type":"pause"},"actor":"x"}"#;
    assert_eq!(
        endpoint_call(port, "POST", "/v1/command", &gateway, pause),
        403
    );

    // The token file named by the config; a name taken is refused.
    let out = deskpool(
        &[
            "token", "add", "gateway", "--scope", "read", "--config", config_arg,
        ],
        bed.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("has a token for gateway already"),
        "{}",
        text(&out.stderr)
    );
    let out = deskpool(
        &[
            "token", "add", "ops", "--scope", "admin", "--config", config_arg,
        ],
        bed.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ops = text(&out.stdout).trim().to_string();
    assert_eq!(
        endpoint_call(port, "POST", "/v1/command", &ops, pause),
        401,
        "not read yet"
    );
    serving.signal(libc::SIGHUP);
    let line = serving.wait_for_line("configuration reloaded");
    assert!(line.contains("[broker] tokens changed"), "{line}");
    assert_eq!(endpoint_call(port, "POST", "/v1/command", &ops, pause), 200);

    // Another address takes a restart: refused, the endpoint stays where it is.
    std::fs::write(&config, with_endpoint(port + 1)).unwrap();
    serving.signal(libc::SIGHUP);
    let line = serving.wait_for_line("configuration not reloaded");
    assert!(line.contains("[broker] listen changed"), "{line}");
    assert_eq!(endpoint_call(port, "GET", "/v1/status", &gateway, ""), 200);

    let audit = std::fs::read_to_string(bed.file("state/audit.log")).unwrap();
    assert!(
        audit.contains(r#""who":"ops","what":"POST /v1/command","result":"200""#),
        "{audit}"
    );
    let status = serving.stop(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
}
