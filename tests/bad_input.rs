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
    /// The error must be at the column where `at` starts too, not only on its line.
    exact: bool,
    /// Files written beside the configuration (templates).
    files: Vec<(&'static str, &'static str)>,
}

impl Case {
    fn with_file(mut self, name: &'static str, body: &'static str) -> Case {
        self.files.push((name, body));
        self
    }
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
        exact: false,
        files: Vec::new(),
    }
}

/// A case whose error must be at the line and column where `at` starts.
fn case_at(
    what: &'static str,
    from: &'static str,
    to: impl Into<String>,
    at: impl Into<String>,
    says: &'static str,
) -> Case {
    Case {
        exact: true,
        ..case(what, from, to, at, says)
    }
}

/// A second host entry (before the classes) with `uri`.
fn second_host(uri: &str) -> String {
    format!(
        "[[hosts]]\nname = \"h2\"\nuri = \"{uri}\"\ncapacity = {{ desktops = 1 }}\n\n[[classes]]"
    )
}

const TEMPLATE_FIXED_NAME: &str = "<domain type='kvm'><name>desktop</name><!-- {name} -->\
<devices><disk type='file' device='disk'><source file='{disk_path}'/></disk></devices></domain>";
const TEMPLATE_OTHER_DISK: &str = "<domain type='kvm'><name>{name}</name><description>{disk_path}</description>\
<devices><disk type='file' device='disk'><source file='/var/lib/libvirt/images/shared.qcow2'/></disk></devices></domain>";

const TEMPLATE_OWN_KERNEL: &str = "<domain type='kvm'><name>{name}</name><os><type>hvm</type>\
<kernel>/boot/vmlinuz</kernel></os><devices><disk type='file' device='disk'><source file='{disk_path}'/>\
</disk></devices></domain>";

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
        // Issue 9, finding 1: one daemon listed twice, however it is spelt.
        case_at(
            "the same URI twice",
            "[[classes]]",
            second_host("qemu+ssh://nowhere.invalid/system"),
            "\"qemu+ssh://nowhere.invalid/system\"\ncapacity = { desktops = 1 }",
            "reaches the same libvirt daemon as host \"h1\"",
        ),
        case_at(
            "the same URI in capitals with a trailing slash",
            "[[classes]]",
            second_host("QEMU+SSH://NOWHERE.invalid/system/"),
            "\"QEMU+SSH",
            "reaches the same libvirt daemon as host \"h1\"",
        ),
        case_at(
            "the same URI with an empty query",
            "[[classes]]",
            second_host("qemu+ssh://nowhere.invalid/system?"),
            "\"qemu+ssh://nowhere.invalid/system?\"",
            "declared at line 6",
        ),
        // Finding 8: a class name its desktops' names cannot carry.
        case_at(
            "class name of 35 characters",
            "name = \"office\"",
            format!("name = \"{}\"", "c".repeat(35)),
            format!("\"{}", "c".repeat(35)),
            "at most 34 are allowed, so that its desktops' names",
        ),
        case_at(
            "class name of 48 characters",
            "name = \"office\"",
            format!("name = \"{}\"", "c".repeat(48)),
            format!("\"{}", "c".repeat(48)),
            "dp-<class>-<10 characters>",
        ),
        // A template that can never make a desktop.
        case_at(
            "template whose <name> is not {name}",
            "disk_gib = 20",
            "disk_gib = 20\ntemplate = \"office.xml\"",
            "\"office.xml\"",
            "cannot make a desktop: the template's <name> is \"desktop\"",
        )
        .with_file("office.xml", TEMPLATE_FIXED_NAME),
        case_at(
            "template without a disk at {disk_path}",
            "disk_gib = 20",
            "disk_gib = 20\ntemplate = \"office.xml\"",
            "\"office.xml\"",
            "no disk of the domain has {disk_path} as its file",
        )
        .with_file("office.xml", TEMPLATE_OTHER_DISK),
        case_at(
            "unknown domain type",
            "capacity = { desktops = 10 }",
            "capacity = { desktops = 10 }\ndomain_type = \"tcg\"",
            "\"tcg\"",
            "unknown domain type \"tcg\"",
        ),
        case_at(
            "direct boot kernel with a relative path",
            "disk_gib = 20",
            "disk_gib = 20\nboot = { kernel = \"boot/vmlinuz\" }",
            "\"boot/vmlinuz\"",
            "is not absolute",
        ),
        case_at(
            "direct boot without a kernel",
            "disk_gib = 20",
            "disk_gib = 20\nboot = { initrd = \"/boot/initrd.img\" }",
            "{ initrd",
            "missing key \"kernel\"",
        ),
        case_at(
            "template with its own kernel beside a class boot",
            "disk_gib = 20",
            "disk_gib = 20\nboot = { kernel = \"/boot/vmlinuz\" }\ntemplate = \"office.xml\"",
            "\"office.xml\"",
            "has its own <kernel>",
        )
        .with_file("office.xml", TEMPLATE_OWN_KERNEL),
        // Times are two digits, a colon, two digits.
        case_at(
            "time with signs",
            "from = \"08:00\"",
            "from = \"+1:+5\"",
            "\"+1:+5\"",
            "time \"+1:+5\" is not HH:MM",
        ),
        case_at(
            "time with one digit",
            "to = \"12:00\"",
            "to = \"9:00\"",
            "\"9:00\"",
            "is not HH:MM",
        ),
        // TOML syntax errors always say why.
        case_at(
            "NUL in a comment",
            "production = 5\n",
            "production = 5 # five\0\n",
            "\0",
            "TOML syntax error: the control character U+0000 is not allowed",
        ),
        case_at(
            "vertical tab in a comment inside an array",
            "days = [\"weekdays\"]",
            "days = [ # \u{b}\n\"weekdays\"]",
            "\u{b}",
            "TOML syntax error: the control character U+000B is not allowed",
        ),
        case_at(
            "DEL right after a #",
            "[classes.policy]",
            "[classes.policy] #\u{7f}",
            "\u{7f}",
            "TOML syntax error: the control character U+007F is not allowed",
        ),
        case_at(
            "escape character in a string",
            "version = \"v1\"",
            "version = \"v\u{1b}[31m1\"",
            "\u{1b}",
            "TOML syntax error: the control character U+001B is not allowed",
        ),
        case_at(
            "carriage return without a newline",
            "cap = 20\n",
            "cap = 20\r\n# ok\rnot ok\n",
            "\rnot",
            "TOML syntax error: a carriage return without a newline after it",
        ),
        // The policy key for shut-off desktops.
        case_at(
            "unknown on_shutoff",
            "cap = 20",
            "cap = 20\non_shutoff = \"reboot\"",
            "\"reboot\"",
            "on_shutoff: unknown action \"reboot\"; expected \"restart\" or \"recycle\"",
        ),
        // Dated events and holidays.
        case_at(
            "event on a day that does not exist",
            "production = 5\n",
            with_event(
                "date = \"2026-02-30\"\nfrom = \"08:00\"\nto = \"09:00\"\nproduction = 12\n",
            ),
            "\"2026-02-30\"",
            "events[1].date: date \"2026-02-30\" is not a day of the calendar written YYYY-MM-DD",
        ),
        case_at(
            "event range reversed",
            "production = 5\n",
            with_event("date = \"2026-01-07..2026-01-05\"\nproduction = 12\n"),
            "\"2026-01-07..",
            "the range 2026-01-07..2026-01-05 ends before it starts",
        ),
        case_at(
            "event ending before it starts",
            "production = 5\n",
            with_event(
                "date = \"2026-01-05\"\nfrom = \"09:00\"\nto = \"07:00\"\nproduction = 12\n",
            ),
            "\"07:00\"",
            "events[1].to: to 07:00 is not after from 09:00",
        ),
        case(
            "overlapping events",
            "production = 5\n",
            format!(
                "{}\n[[classes.policy.events]] # second\nname = \"review\"\ndate = \"2026-01-05\"\n\
                 from = \"08:30\"\nto = \"10:00\"\nproduction = 3\n",
                with_event(
                    "date = \"2026-01-04..2026-01-05\"\nfrom = \"08:00\"\nto = \"09:00\"\nproduction = 12\n"
                )
            ),
            "[[classes.policy.events]] # second",
            "events 1 and 2 of class \"office\" overlap",
        ),
        case_at(
            "event production above the cap",
            "production = 5\n",
            with_event("date = \"2026-01-05\"\nproduction = 21\n"),
            "21",
            "events[1].production: production 21 is above the cap 20",
        ),
        case_at(
            "unknown key in an event",
            "production = 5\n",
            with_event("date = \"2026-01-05\"\nproduction = 12\nusers = 150\n"),
            "users",
            "unknown key \"users\" in classes[1].policy.events[1]",
        ),
        case_at(
            "holiday that does not read",
            "[engine]\n",
            "[engine]\nholidays = [\"2026-01-16\", \"16/01/2026\"]\n",
            "\"16/01/2026\"",
            "engine.holidays[2]: date \"16/01/2026\" is not a day of the calendar",
        ),
    ]
}

/// The period of the base followed by an event of the office class named "training".
fn with_event(keys: &str) -> String {
    format!("production = 5\n\n[[classes.policy.events]]\nname = \"training\"\n{keys}")
}

/// 1-based column (in characters) where `needle` first starts in `text`.
fn col_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap();
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[start..at].chars().count() + 1
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
        for (name, body) in &case.files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        let mut expected = format!("{}:{}:", path.display(), line_of(&text, &case.at));
        if case.exact {
            expected.push_str(&format!("{}: ", col_of(&text, &case.at)));
        }

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

/// Issue 9, finding 8: a name the file gets wrong (a tab, an escape sequence) is quoted with its
/// control characters escaped in every line that repeats it, never written to the terminal raw.
#[test]
fn no_message_echoes_a_control_character_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = VALID
        .replacen("name = \"h1\"", "name = \"h\\t1\\u001b[2J\"", 1)
        .replacen("version = \"v1\" }", "version = \"v1\", host = \"h9\" }", 1)
        .replacen("name = \"office\"", "name = \"off\\tice\"", 1)
        .replacen(
            "production = 5\n",
            "production = 5\n\n[[classes.policy.periods]]\ndays = [\"mon\"]\nfrom = \"11:00\"\nto = \"14:00\"\n",
            1,
        );
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, &text).unwrap();
    let out = deskpool(&["check", "--config", path.to_str().unwrap()], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The name's own error, the seed's list of hosts, and the overlap naming the class.
    assert!(err.contains("declared hosts: \"h\\t1\\u{1b}[2J\""), "{err}");
    assert!(err.contains("of class \"off\\tice\" overlap"), "{err}");
    assert!(err.lines().count() >= 4, "{err}");
    assert!(
        !err.contains(['\t', '\u{1b}']) && !String::from_utf8_lossy(&out.stdout).contains('\t'),
        "a control character is echoed:\n{err:?}"
    );
}
