//! `ready`, `ready_command` and `ready_timeout_secs` of a class: their defaults, the values
//! read, and each mistake at its position.

use super::*;
use deskpool_core::readiness::{Readiness, ReadyWhen};

/// MINIMAL with `lines` after `disk_gib = 20` (line 10), so they start at line 11.
fn with_class_lines(lines: &str) -> String {
    MINIMAL.replace("disk_gib = 20\n", &format!("disk_gib = 20\n{lines}\n"))
}

#[test]
fn a_class_waits_for_its_guest_agent_for_five_minutes_unless_it_says_otherwise() {
    let fleet = parse(MINIMAL).unwrap();
    assert_eq!(fleet.classes[0].ready, Readiness::default());
    assert_eq!(fleet.classes[0].ready.when, ReadyWhen::Agent);
    assert_eq!(fleet.classes[0].ready.timeout_secs, 300);

    let text = with_class_lines(
        "ready = \"agent\"\nready_command = [\"systemctl\", \"is-system-running\", \"--wait\"]\n\
         ready_timeout_secs = 90",
    );
    let ready = parse(&text).unwrap().classes[0].ready.clone();
    assert_eq!(
        ready,
        Readiness {
            when: ReadyWhen::Agent,
            command: Some(vec![
                "systemctl".into(),
                "is-system-running".into(),
                "--wait".into()
            ]),
            timeout_secs: 90,
        }
    );
    let ready = parse(&with_class_lines("ready = \"running\""))
        .unwrap()
        .classes[0]
        .ready
        .clone();
    assert_eq!(ready.when, ReadyWhen::Running);
}

#[test]
fn readiness_mistakes_are_refused_at_their_value() {
    assert_one_error(
        &with_class_lines("ready = \"pingable\""),
        11,
        9,
        "classes[1].ready: unknown readiness \"pingable\"; expected \"agent\" (the guest agent \
         answers) or \"running\" (the domain runs)",
    );
    assert_one_error(
        &with_class_lines("ready = true"),
        11,
        9,
        "classes[1].ready: expected a string",
    );
    assert_one_error(
        &with_class_lines("ready_timeout_secs = 0"),
        11,
        22,
        "classes[1].ready_timeout_secs",
    );
    assert_one_error(
        &with_class_lines("ready_timeout_secs = 86401"),
        11,
        22,
        "classes[1].ready_timeout_secs",
    );
    assert_one_error(
        &with_class_lines("ready_command = []"),
        11,
        17,
        "classes[1].ready_command: ready_command is empty",
    );
    assert_one_error(
        &with_class_lines("ready_command = \"systemctl is-system-running\""),
        11,
        17,
        "classes[1].ready_command: expected an array",
    );
    assert_one_error(
        &with_class_lines("ready_command = [\"true\", \"\"]"),
        11,
        26,
        "an empty word in ready_command",
    );
    assert_one_error(
        &with_class_lines("ready_command = [\"true\", 3]"),
        11,
        26,
        "expected a string",
    );
    assert_one_error(
        &with_class_lines("ready_command = [\"a\\tb\"]"),
        11,
        18,
        "contains a control character",
    );
    let long = format!("ready_command = [{}]", vec!["\"x\""; 65].join(", "));
    assert_one_error(
        &with_class_lines(&long),
        11,
        17,
        "ready_command has 65 words; at most 64 are allowed",
    );
}

#[test]
fn a_ready_command_needs_the_guest_agent() {
    assert_one_error(
        &with_class_lines("ready = \"running\"\nready_command = [\"true\"]"),
        12,
        17,
        "ready_command runs through the guest agent; it needs ready = \"agent\"",
    );
}

#[test]
fn a_template_for_a_class_waiting_for_its_agent_must_give_the_agent_its_channel() {
    let dir = tempfile::tempdir().unwrap();
    let without = TEMPLATE_OK.replace(
        "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
        "",
    );
    let path = with_template(dir.path(), &without);
    let e = load_file(&path).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    let e = &e.0[0];
    assert_eq!((e.line, e.col), (11, 12), "{e}");
    assert!(
        e.message
            .contains("has no guest agent channel, which ready = \"agent\" (the default)"),
        "{e}"
    );
    // Without an agent, no channel is needed.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("disk_gib = 20\n", "disk_gib = 20\nready = \"running\"\n");
    std::fs::write(&path, text).unwrap();
    assert!(load_file(&path).is_ok());
}
