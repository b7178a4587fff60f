//! The broker's wire format, pinned: each message below is serialised and compared with its file
//! in `tests/golden/`, so any change to the protocol (a renamed field, a new variant, another
//! spelling) is a visible diff in review. After a deliberate change, regenerate the files with
//! `DESKPOOL_UPDATE_GOLDEN=1 cargo nextest run --test wire_golden` and commit them with it.

use std::path::PathBuf;

use deskpool_api::{Command, CommandError, ErrorKind, Event, EventKind, Reply};
use deskpool_core::policy::Policy;
use jiff::Timestamp;

fn at() -> Timestamp {
    "2026-12-02T08:00:00Z".parse().unwrap()
}

fn check(name: &str, json: String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let json = json + "\n";
    if std::env::var_os("DESKPOOL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &json).unwrap();
        return;
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate: see this file's header)",
            path.display()
        )
    });
    assert!(
        pinned == json,
        "the wire form of {name} changed; if on purpose, regenerate {} (see this file's \
         header).\n--- pinned\n{pinned}\n--- now\n{json}",
        path.display()
    );
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

#[test]
fn commands_keep_their_wire_form() {
    let policy: Policy = deskpool_config::demo_config(std::path::Path::new("/demo")).classes[0]
        .policy
        .clone();
    let commands = vec![
        Command::Pause,
        Command::Resume,
        Command::Refill {
            class: "office".into(),
        },
        Command::RaiseFloor {
            class: "office".into(),
            floor: 6,
            until: at(),
        },
        Command::DrainHost { host: "h1".into() },
        Command::UndrainHost { host: "h1".into() },
        Command::SetPolicy {
            class: "office".into(),
            policy: Box::new(policy),
        },
        Command::Assign {
            class: "office".into(),
            user: "alice".into(),
            wait_secs: 60,
        },
        Command::Release {
            desktop: "dp-office-m3k0c1x2ab".into(),
        },
        Command::Recycle {
            desktop: "dp-office-m3k0c1x2ab".into(),
        },
    ];
    check("commands", pretty(&commands));
    // And each reads back as itself.
    for c in commands {
        let text = serde_json::to_string(&c).unwrap();
        let back: Command = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c, "{text}");
    }
    // What a client may leave out, and what it may not add.
    let assign: Command =
        serde_json::from_str(r#"{"type":"assign","class":"office","user":"a"}"#).unwrap();
    assert!(matches!(assign, Command::Assign { wait_secs: 0, .. }));
    assert!(
        serde_json::from_str::<Command>(r#"{"type":"refill","class":"office","x":1}"#).is_err()
    );
}

#[test]
fn replies_and_refusals_keep_their_wire_form() {
    let replies = vec![
        Reply::Done,
        Reply::Assigned {
            desktop: "dp-office-m3k0c1x2ab".into(),
            host: "h1".into(),
            display: Some("vnc://10.0.0.5:5901".into()),
            display_password: Some("q7Tz0bKc".into()),
            waited_ms: 1200,
        },
    ];
    check("replies", pretty(&replies));
    let errors: Vec<CommandError> = [
        ErrorKind::NotFound,
        ErrorKind::Invalid,
        ErrorKind::Conflict,
        ErrorKind::Unavailable,
        ErrorKind::ReadOnly,
    ]
    .into_iter()
    .map(|kind| CommandError::new(kind, "why, for people"))
    .collect();
    check("errors", pretty(&errors));
}

#[test]
fn events_keep_their_wire_form() {
    let kinds = [
        EventKind::Provisioned,
        EventKind::Assigned,
        EventKind::Released,
        EventKind::Destroyed,
        EventKind::Failed,
        EventKind::SeedCopied,
        EventKind::HostActivated,
        EventKind::HostDraining,
        EventKind::HostStandby,
        EventKind::HostDown,
        EventKind::HostUp,
        EventKind::PolicyChanged,
        EventKind::AdminAction,
    ];
    let events: Vec<Event> = kinds
        .into_iter()
        .map(|kind| Event {
            at: at(),
            kind,
            class: Some("office".into()),
            host: Some("h1".into()),
            desktop: None,
            message: "what happened".into(),
        })
        .collect();
    check("events", pretty(&events));
}

/// Fails to compile when an event kind is added and not listed above.
#[allow(dead_code)]
fn every_event_kind_is_pinned(kind: EventKind) {
    match kind {
        EventKind::Provisioned
        | EventKind::Assigned
        | EventKind::Released
        | EventKind::Destroyed
        | EventKind::Failed
        | EventKind::SeedCopied
        | EventKind::HostActivated
        | EventKind::HostDraining
        | EventKind::HostStandby
        | EventKind::HostDown
        | EventKind::HostUp
        | EventKind::PolicyChanged
        | EventKind::AdminAction => {}
    }
}

#[test]
fn a_snapshot_keeps_its_wire_form() {
    let fleet = deskpool_tui::sample::fleet(2, 2);
    let snapshot = deskpool_tui::sample::snapshot(&fleet, 6, at());
    check("snapshot", pretty(&snapshot));
}
