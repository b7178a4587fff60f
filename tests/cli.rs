//! The `deskpool` binary as an administrator runs it: exit codes, messages, JSON.

mod common;

use std::process::{Command, Output};

use common::*;
use deskpool::engine::lock::EngineLock;

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
    for needle in ["deskpool.log", "check", "reconcile", "--config"] {
        assert!(
            help.contains(needle),
            "{needle} missing from --help:\n{help}"
        );
    }
}
