//! A corpus of invalid configurations, each refused by the real binary with `FILE:LINE:COL:`
//! at the offending place and a message naming the problem — and refused before anything is
//! written or any host is contacted.

use std::path::Path;
use std::process::Command;

/// A valid configuration the corpus breaks one way at a time. Its host URI points nowhere: an
/// invalid file must be refused before any connection is tried.
const VALID: &str = r#"[engine]
creation_pool_path = "/var/lib/libvirt/deskpool"

[[hosts]]
name = "h1"
uri = "qemu+ssh://nowhere.invalid/system"
capacity = { desktops = 10 }

[[classes]]
name = "office"
memory_mib = 2048
vcpus = 2
disk_gib = 20
seed = { pool = "seeds", volume = "office.qcow2", version = "v1" }

[classes.policy]
cap = 20
buffer = { floor = 2, percent = 10, ceiling = 8 }

[[classes.policy.periods]]
days = ["weekdays"]
from = "08:00"
to = "12:00"
production = 5
"#;

struct Case {
    what: &'static str,
    /// Replaces the first occurrence of `from` in VALID with `to`.
    from: &'static str,
    to: String,
    /// Text whose first occurrence in the broken file marks the line the error must name.
    at: String,
    /// A fragment of the message.
    says: &'static str,
}

fn case(
    what: &'static str,
    from: &'static str,
    to: impl Into<String>,
    at: impl Into<String>,
    says: &'static str,
) -> Case {
    Case {
        what,
        from,
        to: to.into(),
        at: at.into(),
        says,
    }
}

fn corpus() -> Vec<Case> {
    let long = "c".repeat(300);
    vec![
        case(
            "wrong type",
            "cap = 20",
            "cap = \"many\"",
            "cap = \"many\"",
            "integer",
        ),
        case(
            "negative number",
            "capacity = { desktops = 10 }",
            "capacity = { desktops = -10 }",
            "desktops = -10",
            "desktops",
        ),
        case(
            "huge number",
            "memory_mib = 2048",
            "memory_mib = 99999999999999999",
            "memory_mib = 9999",
            "memory_mib",
        ),
        case(
            "number above its range",
            "vcpus = 2",
            "vcpus = 100000",
            "vcpus = 100000",
            "vcpus",
        ),
        case(
            "unknown key",
            "disk_gib = 20",
            "disk_gib = 20\ncolour = \"red\"",
            "colour",
            "unknown key \"colour\"",
        ),
        case(
            "overlapping periods",
            "production = 5\n",
            "production = 5\n\n[[classes.policy.periods]] # second\ndays = [\"mon\"]\nfrom = \"11:00\"\nto = \"14:00\"\n",
            "[[classes.policy.periods]] # second",
            "overlap",
        ),
        case(
            "duplicate host",
            "[[classes]]",
            "[[hosts]]\nname = \"h1\"\nuri = \"qemu:///system\"\ncapacity = { desktops = 1 }\n\n[[classes]]",
            "name = \"h1\"\nuri = \"qemu:///system\"",
            "duplicate host name \"h1\"",
        ),
        case(
            "floor above ceiling",
            "floor = 2, percent = 10, ceiling = 8",
            "floor = 9, percent = 10, ceiling = 8",
            "floor = 9",
            "above ceiling",
        ),
        case(
            "class name with <",
            "name = \"office\"",
            "name = \"off<ice\"",
            "off<ice",
            "'<'",
        ),
        case(
            "class name with '",
            "name = \"office\"",
            "name = \"off'ice\"",
            "off'ice",
            "'\\''",
        ),
        case(
            "class name with &",
            "name = \"office\"",
            "name = \"off&ice\"",
            "off&ice",
            "'&'",
        ),
        case(
            "host name with /",
            "name = \"h1\"",
            "name = \"h/1\"",
            "h/1",
            "'/'",
        ),
        case(
            "class name with ..",
            "name = \"office\"",
            "name = \"off..ice\"",
            "off..ice",
            "'..'",
        ),
        case(
            "class name with a space",
            "name = \"office\"",
            "name = \"my office\"",
            "my office",
            "' '",
        ),
        case(
            "class name of 300 characters",
            "name = \"office\"",
            format!("name = \"{long}\""),
            long.clone(),
            "at most 48",
        ),
        case(
            "seed volume with a path",
            "volume = \"office.qcow2\"",
            "volume = \"../../etc/shadow\"",
            "../../etc/shadow",
            "volume",
        ),
        case(
            "creation pool outside",
            "/var/lib/libvirt/deskpool",
            "/var/lib/../../etc",
            "/var/lib/../../etc",
            "..",
        ),
        case(
            "unknown host for a seed",
            "version = \"v1\" }",
            "version = \"v1\", host = \"h9\" }",
            "host = \"h9\"",
            "unknown host \"h9\"",
        ),
    ]
}

fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the case"));
    text[..at].matches('\n').count() + 1
}

fn deskpool(args: &[&str], home: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deskpool"))
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .output()
        .unwrap()
}

#[test]
fn the_valid_base_of_the_corpus_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("valid.toml");
    std::fs::write(&path, VALID).unwrap();
    let out = deskpool(&["check", "--config", path.to_str().unwrap()], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_invalid_configuration_is_refused_where_it_is_wrong_and_changes_nothing() {
    for case in corpus() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            VALID.contains(case.from),
            "{}: the base has no {:?}",
            case.what,
            case.from
        );
        let text = VALID.replacen(case.from, &case.to, 1);
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, &text).unwrap();
        let expected = format!("{}:{}:", path.display(), line_of(&text, &case.at));

        let out = deskpool(&["check", "--config", path.to_str().unwrap()], dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", case.what);
        let line = err
            .lines()
            .find(|l| l.starts_with(&expected))
            .unwrap_or_else(|| panic!("{}: no error at {expected}\n{err}", case.what));
        assert!(line.contains(case.says), "{}: {line}", case.what);

        // Nothing runs on an invalid file: no state directory, lock, log or socket appears.
        let out = deskpool(
            &[
                "reconcile",
                "--config",
                path.to_str().unwrap(),
                "--timeout",
                "5",
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(1), "{}", case.what);
        assert!(
            !dir.path().join("state").exists(),
            "{}: something was written",
            case.what
        );
    }
}

#[test]
fn a_domain_template_that_is_not_xml_is_refused_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("office.xml"),
        "<domain><name>{name}</name><disk>{disk_path}",
    )
    .unwrap();
    let text = VALID.replacen(
        "disk_gib = 20",
        "disk_gib = 20\ntemplate = \"office.xml\"",
        1,
    );
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, &text).unwrap();
    let out = deskpool(&["check", "--config", path.to_str().unwrap()], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let expected = format!("{}:{}:", path.display(), line_of(&text, "template = "));
    assert!(
        err.lines()
            .any(|l| l.starts_with(&expected) && l.contains("office.xml")),
        "{err}"
    );
}
