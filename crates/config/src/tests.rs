//! End-to-end tests of the loader: valid files, and each kind of mistake with its exact position.

use std::path::{Path, PathBuf};

use super::*;
use deskpool_core::policy::{BufferRule, Capacity, LogoutAction, Pacing, TimeOfDay, Weekdays};

const FILE: &str = "deskpool.toml";

pub(super) fn parse(text: &str) -> Result<Fleet, ConfigErrors> {
    parse_str(text, Path::new(FILE))
}

pub(super) fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text) {
        Ok(_) => panic!("the configuration was accepted:\n{text}"),
        Err(errors) => errors.0,
    }
}

/// The single error of `text`, checked to be at `line`:`col` and to contain `needle`.
#[track_caller]
pub(super) fn assert_one_error(text: &str, line: usize, col: usize, needle: &str) -> ConfigError {
    let errors = errors(text);
    assert_eq!(
        errors.len(),
        1,
        "expected one error, got: {}",
        ConfigErrors(errors.clone())
    );
    let e = errors.into_iter().next().unwrap();
    assert_eq!((e.line, e.col), (line, col), "wrong position for: {e}");
    assert!(
        e.message.contains(needle),
        "{e:?} does not mention {needle:?}"
    );
    assert_eq!(e.file, Path::new(FILE));
    e
}

/// A valid configuration, one host and one class, used as a base by the error tests.
pub(super) const MINIMAL: &str = r#"[[hosts]]
name = "h1"
uri = "qemu:///system"
capacity = { desktops = 40 }

[[classes]]
name = "office"
memory_mib = 2048
vcpus = 2
disk_gib = 20
seed = { pool = "seeds", volume = "office.qcow2", version = "2026.11" }

[classes.policy]
cap = 200
"#;

const FULL: &str = r#"[engine]
tick_secs = 7
resync_secs = 40
standby_idle_secs = 900
creation_pool = "dp-pool"
creation_pool_path = "/srv/dp"
max_attempts = 5
retry_base_secs = 3
retry_max_secs = 120
timezone = "Europe/Paris"
state_dir = "/var/lib/deskpool"

[[hosts]]
name = "h1"
uri = "qemu:///system"
capacity = { desktops = 40 }

[[hosts]]
name = "h2"
uri = "qemu+ssh://root@h2/system"
capacity = { memory_mib = 65536, vcpus = 32 }
standby = true
activate_command = "wake h2"
deactivate_command = "sleep h2"
creation_pool_path = "/srv/deskpool"

[[classes]]
name = "office"
memory_mib = 2048
vcpus = 2
disk_gib = 20
seed = { pool = "seeds", volume = "office.qcow2", version = "2026.11", host = "h1" }

[classes.policy]
cap = 200
production = 3
buffer = { floor = 2, percent = 10, ceiling = 20 }
ready_secs = 80
scale_down_delay_secs = 600
on_logout = "delete"
pacing = { clones_per_host = 6, boots_per_host = 2 }

[[classes.policy.periods]]
days = ["mon", "tue", "wed", "thu", "fri"]
from = "07:00"
to = "18:00"
production = 120
buffer = { floor = 10, percent = 15, ceiling = 40 }

[[classes.policy.periods]]
days = ["weekend"]
from = "22:00"
to = "06:00"

[[classes]]
name = "cad"
memory_mib = 8192
vcpus = 8
disk_gib = 60
seed = { pool = "seeds", volume = "cad.qcow2", version = "7" }
policy = { cap = 10, buffer = { floor = 7 } }
"#;

#[test]
fn full_example_parses_into_the_expected_values() {
    let fleet = parse(FULL).unwrap();
    let e = &fleet.engine;
    assert_eq!(
        (e.tick_secs, e.resync_secs, e.standby_idle_secs),
        (7, 40, 900)
    );
    assert_eq!(e.creation_pool, "dp-pool");
    assert_eq!(e.creation_pool_path, "/srv/dp");
    assert_eq!(
        (e.max_attempts, e.retry_base_secs, e.retry_max_secs),
        (5, 3, 120)
    );
    assert_eq!(e.timezone.iana_name(), Some("Europe/Paris"));
    assert_eq!(e.state_dir.as_deref(), Some(Path::new("/var/lib/deskpool")));

    assert_eq!(fleet.hosts.len(), 2);
    let h1 = &fleet.hosts[0];
    assert_eq!(
        (h1.name.as_str(), h1.uri.as_str(), h1.standby),
        ("h1", "qemu:///system", false)
    );
    assert_eq!(
        h1.capacity,
        Capacity {
            desktops: Some(40),
            memory_mib: None,
            vcpus: None
        }
    );
    assert_eq!(
        (h1.activate_command.as_ref(), h1.creation_pool_path.as_ref()),
        (None, None)
    );
    let h2 = &fleet.hosts[1];
    assert!(h2.standby);
    assert_eq!(
        h2.capacity,
        Capacity {
            desktops: None,
            memory_mib: Some(65536),
            vcpus: Some(32)
        }
    );
    assert_eq!(h2.activate_command.as_deref(), Some("wake h2"));
    assert_eq!(h2.deactivate_command.as_deref(), Some("sleep h2"));
    assert_eq!(h2.creation_pool_path.as_deref(), Some("/srv/deskpool"));

    let c = &fleet.classes[0];
    assert_eq!(
        (c.name.as_str(), c.memory_mib, c.vcpus, c.disk_gib),
        ("office", 2048, 2, 20)
    );
    assert_eq!(c.template, None);
    assert_eq!(
        (
            c.seed.pool.as_str(),
            c.seed.volume.as_str(),
            c.seed.version.as_str(),
            c.seed.host.as_deref()
        ),
        ("seeds", "office.qcow2", "2026.11", Some("h1"))
    );
    let p = &c.policy;
    assert_eq!(
        (p.cap, p.production, p.ready_secs, p.scale_down_delay_secs),
        (200, 3, 80, 600)
    );
    assert_eq!(
        p.buffer,
        BufferRule {
            floor: 2,
            percent: 10,
            ceiling: 20
        }
    );
    assert_eq!(p.on_logout, LogoutAction::Delete);
    assert_eq!(
        p.pacing,
        Pacing {
            clones_per_host: 6,
            boots_per_host: 2
        }
    );
    assert_eq!(p.periods.len(), 2);
    let day = &p.periods[0];
    assert_eq!(day.days, Weekdays(0b001_1111));
    assert_eq!(
        (day.from, day.to),
        (TimeOfDay(7 * 3600), TimeOfDay(18 * 3600))
    );
    assert_eq!(day.production, 120);
    assert_eq!(
        day.buffer,
        BufferRule {
            floor: 10,
            percent: 15,
            ceiling: 40
        }
    );
    // The night period leaves out production and buffer: it takes the class's.
    let night = &p.periods[1];
    assert_eq!(night.days, Weekdays(0b110_0000));
    assert_eq!(
        (night.from, night.to),
        (TimeOfDay(22 * 3600), TimeOfDay(6 * 3600))
    );
    assert_eq!(night.production, 3);
    assert_eq!(night.buffer, p.buffer);
}

#[test]
fn omitted_keys_take_their_documented_defaults() {
    let fleet = parse(MINIMAL).unwrap();
    assert_eq!(
        fleet.engine,
        deskpool_core::policy::EngineSettings::default()
    );
    assert!(!fleet.hosts[0].standby);
    let p = &fleet.classes[0].policy;
    assert_eq!(p.production, 0);
    assert_eq!(
        p.buffer,
        BufferRule {
            floor: 0,
            percent: 0,
            ceiling: 200
        }
    );
    assert_eq!((p.ready_secs, p.scale_down_delay_secs), (90, 300));
    assert_eq!(p.on_logout, LogoutAction::Recycle);
    assert_eq!(
        p.pacing,
        Pacing {
            clones_per_host: 4,
            boots_per_host: 4
        }
    );
    assert!(p.periods.is_empty());

    // A partial buffer: the ceiling still defaults to the cap.
    let text = MINIMAL.replace("cap = 200", "cap = 50\nbuffer = { floor = 3 }");
    let p = parse(&text).unwrap().classes[0].policy.clone();
    assert_eq!(
        p.buffer,
        BufferRule {
            floor: 3,
            percent: 0,
            ceiling: 50
        }
    );
}

#[test]
fn inline_arrays_of_tables_are_accepted_like_sections() {
    let text = r#"
hosts = [{ name = "h1", uri = "test:///default", capacity = { vcpus = 8 } }]
classes = [{ name = "c", memory_mib = 512, vcpus = 1, disk_gib = 1, seed = { pool = "p", volume = "v", version = "1" }, policy = { cap = 4, periods = [{ days = ["all"], from = "00:00", to = "00:00", production = 2 }] } }]
"#;
    let fleet = parse(text).unwrap();
    assert_eq!(fleet.hosts[0].capacity.vcpus, Some(8));
    let period = &fleet.classes[0].policy.periods[0];
    assert_eq!((period.days, period.production), (Weekdays::ALL, 2));
}

#[test]
fn the_example_file_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deskpool.toml");
    let fleet = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fleet.hosts.len(), 3);
    assert_eq!(fleet.hosts.iter().filter(|h| h.standby).count(), 1);
    assert!(fleet.hosts.iter().all(|h| h.uri.starts_with("qemu+ssh://")));
    assert_eq!(fleet.engine.timezone.iana_name(), Some("Europe/Paris"));
    let dev = fleet.class("dev").unwrap();
    assert_eq!(dev.policy.on_logout, LogoutAction::Delete);
    // The late-builds period crosses midnight.
    assert!(dev.policy.periods[0].to < dev.policy.periods[0].from);
}

#[test]
fn demo_config_is_valid_with_three_classes_and_one_standby_host() {
    let fleet = demo_config(Path::new("/tmp/deskpool-demo"));
    let names: Vec<_> = fleet.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["office", "dev", "cad"]);
    assert_eq!(fleet.hosts.len(), 3);
    let standby: Vec<_> = fleet
        .hosts
        .iter()
        .filter(|h| h.standby)
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(standby, ["h3"]);
    assert_eq!(fleet.hosts[0].uri, "test:///tmp/deskpool-demo/h1.xml");
    assert_eq!(fleet.hosts[2].uri, "test:///tmp/deskpool-demo/h3.xml");
    assert_eq!(
        fleet.host("h3").unwrap().activate_command.as_deref(),
        Some("true")
    );
    assert_eq!(
        fleet.hosts[1].capacity,
        Capacity {
            desktops: None,
            memory_mib: Some(262_144),
            vcpus: Some(128)
        }
    );
    let e = &fleet.engine;
    assert_eq!(
        (e.tick_secs, e.resync_secs, e.standby_idle_secs),
        (2, 10, 300)
    );
    assert_eq!(e.creation_pool_path, "/var/lib/libvirt/deskpool");

    let office = fleet.class("office").unwrap();
    assert_eq!(
        (office.memory_mib, office.vcpus, office.disk_gib),
        (2048, 2, 20)
    );
    assert_eq!(office.seed.volume, "office-golden.qcow2");
    assert_eq!(
        (office.seed.pool.as_str(), office.seed.version.as_str()),
        ("seed-library", "2026.11")
    );
    assert_eq!(office.policy.cap, 60);
    assert_eq!(
        office.policy.buffer,
        BufferRule {
            floor: 4,
            percent: 10,
            ceiling: 12
        }
    );
    let day = &office.policy.periods[0];
    assert_eq!(
        (day.days, day.from, day.to),
        (
            Weekdays(0b001_1111),
            TimeOfDay(7 * 3600),
            TimeOfDay(18 * 3600)
        )
    );
    assert_eq!(day.production, 30);
    assert_eq!(
        day.buffer,
        BufferRule {
            floor: 6,
            percent: 15,
            ceiling: 16
        }
    );

    let dev = fleet.class("dev").unwrap();
    assert_eq!(
        (dev.memory_mib, dev.vcpus, dev.disk_gib, dev.policy.cap),
        (4096, 4, 40, 30)
    );
    assert_eq!(
        dev.policy.buffer,
        BufferRule {
            floor: 2,
            percent: 10,
            ceiling: 6
        }
    );
    assert_eq!(dev.policy.periods[0].production, 12);
    assert_eq!(dev.policy.periods[0].buffer, dev.policy.buffer);
    assert_eq!(
        (dev.policy.periods[0].from, dev.policy.periods[0].to),
        (TimeOfDay(8 * 3600), TimeOfDay(19 * 3600))
    );

    let cad = fleet.class("cad").unwrap();
    assert_eq!(
        (cad.memory_mib, cad.vcpus, cad.disk_gib, cad.policy.cap),
        (8192, 8, 60, 16)
    );
    assert_eq!(
        cad.policy.buffer,
        BufferRule {
            floor: 1,
            percent: 0,
            ceiling: 4
        }
    );
    assert_eq!(cad.policy.periods[0].production, 6);
}

#[test]
fn demo_dir_is_made_into_a_clean_uri_path() {
    let fleet = demo_config(Path::new("/tmp/my demo/"));
    assert_eq!(fleet.hosts[0].uri, "test:///tmp/my%20demo/h1.xml");
    assert_eq!(uri_path(Path::new("/a/b\"c")), "/a/b%22c");
    // A relative directory is made absolute, so the URI never names "demo" as a host.
    let fleet = demo_config(Path::new("demo"));
    assert!(
        fleet.hosts[0].uri.starts_with("test:///"),
        "{}",
        fleet.hosts[0].uri
    );
    assert!(fleet.hosts[0].uri.ends_with("/demo/h1.xml"));
}

#[test]
fn unknown_key_is_reported_at_the_key_with_a_suggestion() {
    let text = MINIMAL.replace(
        "capacity = { desktops = 40 }",
        "capacty = { desktops = 40 }",
    );
    let errors = errors(&text);
    // The misspelt key, and the then missing capacity (reported at the [[hosts]] header).
    assert_eq!(errors.len(), 2, "{}", ConfigErrors(errors.clone()));
    assert_eq!((errors[0].line, errors[0].col), (1, 1));
    assert_eq!(errors[0].message, "hosts[1]: missing key \"capacity\"");
    assert_eq!((errors[1].line, errors[1].col), (4, 1));
    assert!(
        errors[1].message.starts_with(
            "unknown key \"capacty\" in hosts[1] (did you mean \"capacity\"?); expected one of name, uri, capacity, standby"
        ),
        "{}",
        errors[1].message
    );
    assert_eq!(
        errors[1].to_string(),
        format!("deskpool.toml:4:1: {}", errors[1].message)
    );
}

#[test]
fn unknown_keys_inside_inline_tables_and_at_the_top_are_reported() {
    let text = MINIMAL.replace("{ desktops = 40 }", "{ desktops = 40, disks = 2 }");
    assert_one_error(&text, 4, 29, "unknown key \"disks\" in hosts[1].capacity");
    let text = format!("colour = \"red\"\n{MINIMAL}");
    assert_one_error(
        &text,
        1,
        1,
        "unknown key \"colour\" at the top level; expected one of engine, console, broker, ha, hosts, classes",
    );
    let text = MINIMAL.replace("cap = 200", "cap = 200\nbufer = { floor = 1 }");
    assert_one_error(
        &text,
        15,
        1,
        "unknown key \"bufer\" in classes[1].policy (did you mean \"buffer\"?)",
    );
}

#[test]
fn duplicate_names_point_at_the_second_one_and_the_first_line() {
    let text = format!(
        "{MINIMAL}{}",
        &MINIMAL[MINIMAL.find("[[classes]]").unwrap()..]
    );
    // MINIMAL has 14 lines, so the second [[classes]] is line 15 and its name line 16.
    let e = assert_one_error(
        &text,
        16,
        8,
        "duplicate class name \"office\" (first declared at line 7)",
    );
    assert_eq!(
        e.message,
        "classes[2].name: duplicate class name \"office\" (first declared at line 7)"
    );

    let text = MINIMAL.replacen("[[classes]]", "[[hosts]]\nname = \"h1\"\nuri = \"test:///default\"\ncapacity = { vcpus = 4 }\n\n[[classes]]", 1);
    assert_one_error(
        &text,
        7,
        8,
        "hosts[2].name: duplicate host name \"h1\" (first declared at line 2)",
    );
}

#[test]
fn unsafe_names_are_refused_with_the_reason() {
    let text = MINIMAL.replace("name = \"h1\"", "name = \"a<b\"");
    let e = assert_one_error(&text, 2, 8, "contains '<'");
    assert!(
        e.message
            .starts_with("hosts[1].name: name \"a<b\" contains '<'; only ASCII letters"),
        "{e}"
    );
    let text = MINIMAL.replace("volume = \"office.qcow2\"", "volume = \"../etc/passwd\"");
    assert_one_error(
        &text,
        11,
        35,
        "classes[1].seed.volume: name \"../etc/passwd\" contains '/'",
    );
}

#[test]
fn seed_host_must_name_a_declared_host() {
    let text = MINIMAL.replace(
        "version = \"2026.11\" }",
        "version = \"2026.11\", host = \"h9\" }",
    );
    let e = assert_one_error(&text, 11, 79, "classes[1].seed.host: unknown host \"h9\"");
    assert!(e.message.ends_with("declared hosts: \"h1\""), "{e}");
}

const PERIODS: &str = r#"[[hosts]]
name = "h1"
uri = "qemu:///system"
capacity = { desktops = 40 }

[[classes]]
name = "office"
memory_mib = 2048
vcpus = 2
disk_gib = 20
seed = { pool = "seeds", volume = "office.qcow2", version = "2026.11" }

[classes.policy]
cap = 200

[[classes.policy.periods]]
days = ["weekdays"]
from = "07:00"
to = "18:00"

[[classes.policy.periods]]
days = ["sat"]
from = "08:00"
to = "12:00"

[[classes.policy.periods]]
days = ["fri"]
from = "19:00"
to = "21:00"
"#;

#[test]
fn overlapping_periods_are_reported_at_the_later_one() {
    assert!(parse(PERIODS).is_ok());
    let text = PERIODS
        .replace("from = \"19:00\"", "from = \"17:00\"")
        .replace("\"21:00\"", "\"19:00\"");
    let e = assert_one_error(&text, 26, 1, "periods 1 and 3 of class \"office\" overlap");
    assert_eq!(
        e.message,
        "classes[1].policy.periods[3]: periods 1 and 3 of class \"office\" overlap \
         (mon-fri 07:00-18:00 and fri 17:00-19:00)"
    );
    // Starting the Friday period when office hours end removes the overlap.
    assert!(parse(&text.replace("\"17:00\"", "\"18:00\"")).is_ok());
}

#[test]
fn a_period_crossing_midnight_overlaps_the_next_mornings_period() {
    let text = PERIODS
        .replacen("[\"weekdays\"]", "[\"mon\"]", 1)
        .replacen("\"07:00\"", "\"22:00\"", 1)
        .replacen("\"18:00\"", "\"06:00\"", 1)
        .replace("[\"fri\"]", "[\"tue\"]")
        .replace("\"19:00\"", "\"05:00\"")
        .replace("\"21:00\"", "\"07:00\"");
    assert_one_error(
        &text,
        26,
        1,
        "periods 1 and 3 of class \"office\" overlap (mon 22:00-06:00 and tue 05:00-07:00)",
    );
    // Starting at 06:00, when Monday night ends, is fine.
    assert!(parse(&text.replace("\"05:00\"", "\"06:00\"")).is_ok());
    // Sunday night runs into Monday morning: the week wraps around.
    let wrap = text
        .replace("[\"mon\"]", "[\"sun\"]")
        .replace("[\"tue\"]", "[\"mon\"]");
    assert_one_error(
        &wrap,
        26,
        1,
        "periods 1 and 3 of class \"office\" overlap (sun 22:00-06:00 and mon 05:00-07:00)",
    );
}

#[test]
fn wrong_types_name_what_was_expected_and_found() {
    let text = MINIMAL.replace("cap = 200", "cap = \"200\"");
    let e = assert_one_error(&text, 14, 7, "expected an integer, found a string");
    assert_eq!(
        e.message,
        "classes[1].policy.cap: expected an integer, found a string"
    );
    let text = MINIMAL.replace("disk_gib = 20", "disk_gib = 20.5");
    assert_one_error(
        &text,
        10,
        12,
        "classes[1].disk_gib: expected an integer, found a float",
    );
    let text = MINIMAL.replace(
        "capacity = { desktops = 40 }",
        "capacity = { desktops = 40 }\nstandby = \"no\"",
    );
    assert_one_error(
        &text,
        5,
        11,
        "hosts[1].standby: expected a boolean (true or false), found a string",
    );
    let text = MINIMAL.replace("[classes.policy]\ncap = 200", "policy = 3");
    assert_one_error(
        &text,
        13,
        10,
        "classes[1].policy: expected a table, found an integer",
    );
    let text = MINIMAL.replacen("[[hosts]]", "[hosts]", 1);
    assert_one_error(
        &text,
        1,
        1,
        "hosts: expected an array of tables, found a table",
    );
}

#[test]
fn negative_and_out_of_range_numbers_are_refused() {
    let text = MINIMAL.replace("vcpus = 2", "vcpus = -2");
    assert_one_error(
        &text,
        9,
        9,
        "classes[1].vcpus: -2 is negative; expected an integer from 1 to 512",
    );
    let text = MINIMAL.replace("memory_mib = 2048", "memory_mib = 32");
    assert_one_error(
        &text,
        8,
        14,
        "classes[1].memory_mib: 32 is too small; expected an integer from 64 to 1048576",
    );
    let text = MINIMAL.replace("desktops = 40", "desktops = 5000000000");
    assert_one_error(
        &text,
        4,
        25,
        "hosts[1].capacity.desktops: 5000000000 is too large; expected an integer from 1 to 4294967295",
    );
    let text = MINIMAL.replace(
        "capacity = { desktops = 40 }",
        "capacity = { memory_mib = -1 }",
    );
    assert_one_error(
        &text,
        4,
        27,
        "hosts[1].capacity.memory_mib: -1 is negative; expected an integer of at least 1",
    );
    // Beyond what TOML itself can hold: a syntax error, still positioned.
    let text = MINIMAL.replace("cap = 200", "cap = 99999999999999999999");
    let e = assert_one_error(&text, 14, 7, "TOML syntax error");
    assert!(e.message.contains("number"), "{e}");
}

#[test]
fn buffer_rules_must_be_ordered_under_the_cap() {
    let text = MINIMAL.replace(
        "cap = 200",
        "cap = 200\nbuffer = { floor = 30, percent = 10, ceiling = 20 }",
    );
    let e = assert_one_error(&text, 15, 20, "floor 30 is above ceiling 20");
    assert_eq!(
        e.to_string(),
        "deskpool.toml:15:20: classes[1].policy.buffer: floor 30 is above ceiling 20"
    );
    let text = MINIMAL.replace("cap = 200", "cap = 10\nbuffer = { ceiling = 20 }");
    assert_one_error(
        &text,
        15,
        22,
        "classes[1].policy.buffer: ceiling 20 is above the cap 10",
    );
    let text = MINIMAL.replace("cap = 200", "cap = 10\nbuffer = { floor = 11 }");
    assert_one_error(
        &text,
        15,
        20,
        "floor 11 is above ceiling 10 (the cap, as no ceiling is set)",
    );
    let text = MINIMAL.replace("cap = 200", "cap = 10\nbuffer = { percent = 1001 }");
    assert_one_error(
        &text,
        15,
        22,
        "percent: 1001 is too large; expected an integer from 0 to 1000",
    );
    let text = MINIMAL.replace("cap = 200", "cap = 10\nproduction = 11");
    assert_one_error(
        &text,
        15,
        14,
        "classes[1].policy.production: production 11 is above the cap 10",
    );
    let text = PERIODS.replace(
        "to = \"12:00\"",
        "to = \"12:00\"\nproduction = 201\nbuffer = { floor = 5, ceiling = 4 }",
    );
    let errors = errors(&text);
    let found: Vec<_> = errors
        .iter()
        .map(|e| (e.line, e.col, e.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                25,
                14,
                "classes[1].policy.periods[2].production: production 201 is above the cap 200"
            ),
            (
                26,
                20,
                "classes[1].policy.periods[2].buffer: floor 5 is above ceiling 4"
            ),
        ]
    );
}

#[test]
fn several_semantic_errors_are_all_reported_in_file_order() {
    let text = r#"[engine]
timezone = "Mars/Olympus"

[[hosts]]
name = "h1"
uri = "qemu system"
capacity = {}
activate_command = "wake"

[[classes]]
name = "office"
memory_mib = 2048
vcpus = 600
disk_gib = 20
seed = { pool = "seeds", volume = "office.qcow2", version = "2026.11", host = "h2" }

[classes.policy]
cap = 20
on_logout = "burn"

[[classes.policy.periods]]
days = ["mon", "funday"]
from = "7:00"
to = "18:00"
"#;
    let errors = errors(text);
    let found: Vec<_> = errors
        .iter()
        .map(|e| (e.line, e.col, e.message.split(':').next().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            (2, 12, "engine.timezone"),
            (6, 7, "hosts[1].uri"),
            (7, 12, "hosts[1].capacity"),
            (8, 1, "hosts[1].activate_command"),
            (13, 9, "classes[1].vcpus"),
            (15, 79, "classes[1].seed.host"),
            (19, 13, "classes[1].policy.on_logout"),
            (22, 16, "classes[1].policy.periods[1].days[2]"),
            (23, 8, "classes[1].policy.periods[1].from"),
        ],
        "{}",
        ConfigErrors(errors.clone())
    );
    let all = ConfigErrors(errors).to_string();
    assert_eq!(all.lines().count(), 9);
    assert!(
        all.contains("deskpool.toml:6:7: hosts[1].uri: uri \"qemu system\" contains ' '"),
        "{all}"
    );
    assert!(
        all.contains("set at least one of desktops, memory_mib, vcpus"),
        "{all}"
    );
    assert!(
        all.contains("activate_command: only allowed on a standby host"),
        "{all}"
    );
    assert!(all.contains("unknown day \"funday\""), "{all}");
    assert!(all.contains("time \"7:00\" is not HH:MM"), "{all}");
    assert!(all.contains("unknown action \"burn\""), "{all}");
    assert!(all.contains("unknown time zone \"Mars/Olympus\""), "{all}");
}

#[test]
fn missing_required_keys_are_reported_at_their_table() {
    let text = MINIMAL.replace("uri = \"qemu:///system\"\n", "");
    assert_one_error(&text, 1, 1, "hosts[1]: missing key \"uri\"");
    let text = MINIMAL.replace("cap = 200\n", "production = 1\n");
    assert_one_error(&text, 13, 1, "classes[1].policy: missing key \"cap\"");
    let text = MINIMAL.replace("\n[classes.policy]\ncap = 200\n", "");
    assert_one_error(&text, 6, 1, "classes[1]: missing key \"policy\"");
    let text = MINIMAL.replace("seed = { pool = \"seeds\", ", "seed = { ");
    assert_one_error(&text, 11, 8, "classes[1].seed: missing key \"pool\"");
}

#[test]
fn the_fleet_needs_hosts_an_active_host_and_classes() {
    let no_hosts = &MINIMAL[MINIMAL.find("[[classes]]").unwrap()..];
    assert_one_error(
        no_hosts,
        1,
        1,
        "no hosts declared; add at least one [[hosts]] table",
    );
    let no_classes = &MINIMAL[..MINIMAL.find("[[classes]]").unwrap()];
    assert_one_error(no_classes, 1, 1, "no classes declared");
    let text = MINIMAL.replace(
        "capacity = { desktops = 40 }",
        "capacity = { desktops = 40 }\nstandby = true",
    );
    assert_one_error(
        &text,
        1,
        1,
        "every host is a standby host; at least one host needs standby = false",
    );
    let text = format!("hosts = []\n{no_hosts}");
    assert_one_error(&text, 1, 9, "hosts: at least one host is required");
}

#[test]
fn commands_belong_to_standby_hosts_only() {
    let text = MINIMAL.replace(
        "capacity = { desktops = 40 }",
        "capacity = { desktops = 40 }\ndeactivate_command = \"off\"",
    );
    assert_one_error(
        &text,
        5,
        1,
        "hosts[1].deactivate_command: only allowed on a standby host; set standby = true or remove it",
    );
    let text = MINIMAL.replace(
        "capacity = { desktops = 40 }",
        "capacity = { desktops = 40 }\n[[hosts]]\nname = \"h2\"\nuri = \"test:///default\"\ncapacity = { desktops = 4 }\nstandby = true\nactivate_command = \"  \"",
    );
    assert_one_error(&text, 10, 20, "hosts[2].activate_command: command is empty");
}

#[test]
fn pool_paths_must_be_absolute_and_plain() {
    let text = format!("[engine]\ncreation_pool_path = \"var/lib\"\n{MINIMAL}");
    assert_one_error(
        &text,
        2,
        22,
        "engine.creation_pool_path: path \"var/lib\" is not absolute",
    );
    let text = format!("[engine]\ncreation_pool_path = \"/srv/../etc\"\n{MINIMAL}");
    assert_one_error(&text, 2, 22, "must not contain '..'");
    let text = MINIMAL.replace(
        "capacity = { desktops = 40 }",
        "capacity = { desktops = 40 }\ncreation_pool_path = \"/srv/my pool\"",
    );
    assert_one_error(
        &text,
        5,
        22,
        "hosts[1].creation_pool_path: path \"/srv/my pool\" contains ' '",
    );
    let text = format!("[engine]\ncreation_pool = \"my pool\"\n{MINIMAL}");
    assert_one_error(
        &text,
        2,
        17,
        "engine.creation_pool: name \"my pool\" contains ' '",
    );
    let text = format!("[engine]\nretry_base_secs = 60\nretry_max_secs = 30\n{MINIMAL}");
    assert_one_error(
        &text,
        3,
        18,
        "engine.retry_max_secs: retry_max_secs 30 is below retry_base_secs 60",
    );
}

#[test]
fn the_stuck_timeouts_are_read_with_defaults_and_their_range_is_checked() {
    let e = parse(MINIMAL).unwrap().engine;
    assert_eq!((e.create_timeout_secs, e.remove_timeout_secs), (600, 300));
    let text = format!("[engine]\ncreate_timeout_secs = 90\nremove_timeout_secs = 30\n{MINIMAL}");
    let e = parse(&text).unwrap().engine;
    assert_eq!((e.create_timeout_secs, e.remove_timeout_secs), (90, 30));
    let text = format!("[engine]\ncreate_timeout_secs = 0\n{MINIMAL}");
    assert_one_error(&text, 2, 23, "engine.create_timeout_secs");
    let text = format!("[engine]\nremove_timeout_secs = \"5m\"\n{MINIMAL}");
    assert_one_error(&text, 2, 23, "engine.remove_timeout_secs");
}

#[test]
fn uris_and_days_and_times_are_checked() {
    let text = MINIMAL.replace("qemu:///system", "localhost");
    assert_one_error(&text, 3, 7, "\"localhost\" is not a libvirt URI");
    let text = PERIODS.replace("days = [\"sat\"]", "days = []");
    assert_one_error(
        &text,
        22,
        8,
        "classes[1].policy.periods[2].days: no days given",
    );
    let text = PERIODS.replace("to = \"12:00\"", "to = \"24:30\"");
    assert_one_error(
        &text,
        24,
        6,
        "classes[1].policy.periods[2].to: time \"24:30\" is not HH:MM",
    );
    let text = PERIODS.replace("days = [\"sat\"]", "days = \"sat\"");
    assert_one_error(&text, 22, 8, "days: expected an array, found a string");
}

#[test]
fn a_syntax_error_stops_at_its_position() {
    let text = MINIMAL.replace("vcpus = 2", "vcpus = = 2");
    let e = assert_one_error(&text, 9, 9, "TOML syntax error");
    assert!(!e.message.contains('\n'));
    let text = MINIMAL.replace("[[classes]]", "[[classes]\n");
    assert_one_error(&text, 6, 10, "TOML syntax error");
    let text = MINIMAL.replace("vcpus = 2", "vcpus = 2\nvcpus = 3");
    assert_one_error(&text, 10, 1, "duplicate key");
}

#[test]
fn a_missing_file_names_the_file_and_the_os_error() {
    let path = Path::new("/nonexistent/deskpool/config.toml");
    let errors = load_file(path).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    let text = errors.to_string();
    assert!(
        text.starts_with("/nonexistent/deskpool/config.toml: cannot read: "),
        "{text}"
    );
    assert!(text.contains("No such file"), "{text}");
}

const TEMPLATE_OK: &str = r#"<domain type='kvm'>
  <name>{name}</name>
  <devices><disk type='file'><source file='{disk_path}'/></disk>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>
</domain>
"#;

fn with_template(dir: &Path, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("conf/templates")).unwrap();
    std::fs::write(dir.join("conf/templates/office.xml"), body).unwrap();
    let text = MINIMAL.replace(
        "disk_gib = 20",
        "disk_gib = 20\ntemplate = \"templates/office.xml\"",
    ) + "\n[engine]\nstate_dir = \"state\"\n";
    let path = dir.join("conf/deskpool.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn templates_and_state_dir_resolve_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = with_template(dir.path(), TEMPLATE_OK);
    let fleet = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fleet.classes[0].template.as_deref(), Some(TEMPLATE_OK));
    assert_eq!(
        fleet.engine.state_dir.as_deref(),
        Some(dir.path().join("conf/state").as_path())
    );
    // The same text parsed as if it lived elsewhere does not find the template.
    let text = std::fs::read_to_string(&path).unwrap();
    let e = parse_str(&text, &dir.path().join("deskpool.toml")).unwrap_err();
    assert_eq!((e.0[0].line, e.0[0].col), (11, 12));
    assert!(
        e.0[0]
            .message
            .starts_with("classes[1].template: cannot read template "),
        "{e}"
    );
    assert!(
        e.0[0]
            .message
            .contains(&format!("{}/templates/office.xml", dir.path().display())),
        "{e}"
    );
}

#[test]
fn a_template_that_is_not_xml_is_refused_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = with_template(
        dir.path(),
        "<domain><name>{name}</nam></domain> {disk_path}",
    );
    let errors = load_file(&path).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    let e = &errors.0[0];
    assert_eq!((e.file.as_path(), e.line, e.col), (path.as_path(), 11, 12));
    assert!(
        e.message.starts_with("classes[1].template: template "),
        "{e}"
    );
    assert!(
        e.message.contains("office.xml is not well-formed XML"),
        "{e}"
    );
    // roxmltree's own position inside the template is kept.
    assert!(e.message.contains("1:"), "{e}");
}

#[test]
fn a_template_needs_a_domain_root_and_both_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let path = with_template(dir.path(), "<network><name>{name}</name></network>");
    let e = load_file(&path).unwrap_err();
    assert!(
        e.to_string()
            .contains("has root element <network>; expected <domain>"),
        "{e}"
    );
    let path = with_template(dir.path(), "<domain><name>{name}</name></domain>");
    let e = load_file(&path).unwrap_err();
    assert!(
        e.to_string()
            .contains(":11:12: classes[1].template: template "),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with("lacks the placeholder(s) {disk_path}"),
        "{e}"
    );
}

#[test]
fn summary_describes_hosts_classes_and_periods() {
    let fleet = parse(FULL).unwrap();
    let text = summary(&fleet);
    for needle in [
        "hosts: 2 (1 active, 1 standby)",
        "h1 [active] qemu:///system  capacity: 40 desktops",
        "h2 [standby] qemu+ssh://root@h2/system  capacity: 65536 MiB, 32 vcpus",
        "activate: wake h2",
        "office: 2048 MiB, 2 vcpus, 20 GiB disk",
        "seed: seeds/office.qcow2 version 2026.11 on h1",
        "cap 200",
        "pacing: 6 clones, 2 boots per host",
        "outside periods: production 3, buffer 10% of production, at least 2, at most 20",
        "period 0: mon-fri 07:00-18:00: production 120, buffer 15% of production, at least 10, at most 40",
        "period 1: sat-sun 22:00-06:00: production 3",
        "buffer 7 (fixed)",
        "periods in Europe/Paris",
    ] {
        assert!(text.contains(needle), "summary lacks {needle:?}:\n{text}");
    }
}

#[test]
fn summary_gives_a_predictive_class_the_range_of_its_spare() {
    let fleet = parse(&FULL.replacen(
        "[classes.policy]\n",
        "[classes.policy]\npredictive = { service_level = 0.99 }\n",
        1,
    ))
    .unwrap();
    assert!(fleet.classes[0].policy.predictive.is_some());
    let text = summary(&fleet);
    let needle = "outside periods: production 3, buffer from the forecast, at least 2, at most 20";
    assert!(text.contains(needle), "summary lacks {needle:?}:\n{text}");
}

#[test]
fn default_config_path_follows_xdg() {
    let xdg = config_path_from(Some("/xdg".into()), Some("/home/u".into()));
    assert_eq!(xdg, Some(PathBuf::from("/xdg/deskpool/config.toml")));
    let home = config_path_from(None, Some("/home/u".into()));
    assert_eq!(
        home,
        Some(PathBuf::from("/home/u/.config/deskpool/config.toml"))
    );
    let relative_xdg = config_path_from(Some("rel".into()), Some("/home/u".into()));
    assert_eq!(relative_xdg, home);
    assert_eq!(config_path_from(Some("".into()), None), None);
}

#[test]
fn the_console_theme_is_a_builtin_or_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deskpool.toml"),
    )
    .unwrap();
    let path = dir.path().join("deskpool.toml");
    let fleet = parse_str(&format!("[console]\ntheme = \"light\"\n{base}"), &path).unwrap();
    assert_eq!(fleet.console.theme.as_deref(), Some("light"));
    std::fs::write(dir.path().join("mine.toml"), "").unwrap();
    let fleet = parse_str(&format!("[console]\ntheme = \"mine.toml\"\n{base}"), &path).unwrap();
    assert_eq!(
        fleet.console.theme,
        Some(dir.path().join("mine.toml").display().to_string())
    );
    let errors = parse_str(&format!("[console]\ntheme = \"purple\"\n{base}"), &path)
        .unwrap_err()
        .to_string();
    assert!(
        errors.starts_with(&format!("{}:2:9: ", path.display())),
        "{errors}"
    );
    assert!(
        errors.contains("neither a built-in (dark, light, high-contrast) nor a file"),
        "{errors}"
    );
}

#[test]
fn a_predictive_buffer_reads_its_service_level() {
    let fleet = parse(&MINIMAL.replace(
        "cap = 200",
        "cap = 200\npredictive = { service_level = 0.99 }",
    ))
    .unwrap();
    let predictive = fleet.classes[0].policy.predictive.unwrap();
    assert_eq!(predictive.service_level, 0.99);
    assert!(
        parse(MINIMAL).unwrap().classes[0]
            .policy
            .predictive
            .is_none()
    );
    let summary = summary(&fleet);
    assert!(
        summary.contains("predictive buffer: 99% of logins instant"),
        "{summary}"
    );
}

#[test]
fn a_predictive_service_level_out_of_range_or_mistyped_is_refused_at_its_value() {
    let with = |value: &str| {
        MINIMAL.replace(
            "cap = 200",
            &format!("cap = 200\npredictive = {{ service_level = {value} }}"),
        )
    };
    assert_one_error(
        &with("0.3"),
        15,
        32,
        "classes[1].policy.predictive.service_level: 0.3 is too small; expected a number from 0.5 to 0.9999",
    );
    assert_one_error(
        &with("1"),
        15,
        32,
        "classes[1].policy.predictive.service_level: 1 is too large",
    );
    assert_one_error(
        &with("\"high\""),
        15,
        32,
        "classes[1].policy.predictive.service_level: expected a number, found",
    );
    // A misspelt key: named with a suggestion, and the required key reported missing.
    let errs = errors(&MINIMAL.replace(
        "cap = 200",
        "cap = 200\npredictive = { service_levl = 0.9 }",
    ));
    let messages: Vec<String> = errs
        .iter()
        .map(|e| format!("{}:{}: {}", e.line, e.col, e.message))
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("15:14: classes[1].policy.predictive: missing key \"service_level\""),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("15:16: unknown key \"service_levl\""),
        "{messages:?}"
    );
    // check_policy applies the same rule.
    let mut policy = parse(MINIMAL).unwrap().classes[0].policy.clone();
    policy.predictive = Some(deskpool_core::policy::Predictive { service_level: 0.2 });
    let problems = check_policy(&policy);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "predictive.service_level");
    assert!(problems[0].1.contains("0.2 is too small"), "{problems:?}");
}

#[test]
fn the_simulator_example_file_is_valid_and_predictive() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sim-office-week.toml");
    let fleet = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = fleet.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["office", "dev", "cad"]);
    assert!(fleet.classes.iter().all(|c| c.policy.predictive.is_some()));
}

#[test]
fn the_broker_socket_is_relative_to_the_config_file_and_short_enough() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deskpool.toml"),
    )
    .unwrap();
    let path = dir.path().join("deskpool.toml");
    let fleet = parse_str(&base, &path).unwrap();
    assert_eq!(fleet.broker.socket, None);
    assert_eq!(
        fleet.broker.socket_path(Path::new("/state")),
        Path::new("/state/deskpool.sock")
    );
    let fleet = parse_str(
        &format!("[broker]\nsocket = \"run/dp.sock\"\n{base}"),
        &path,
    )
    .unwrap();
    assert_eq!(fleet.broker.socket, Some(dir.path().join("run/dp.sock")));
    let long = "x".repeat(120);
    let errors = parse_str(&format!("[broker]\nsocket = \"/{long}\"\n{base}"), &path)
        .unwrap_err()
        .to_string();
    assert!(
        errors.starts_with(&format!("{}:2:10: ", path.display())) && errors.contains("at most 107"),
        "{errors}"
    );
    let errors = parse_str(&format!("[broker]\nsock = \"x\"\n{base}"), &path)
        .unwrap_err()
        .to_string();
    assert!(
        errors.starts_with(&format!("{}:2:1: ", path.display())) && errors.contains("sock"),
        "{errors}"
    );
}

#[test]
fn uri_spellings_that_reach_the_same_daemon_have_one_canonical_form() {
    use super::validate::canonical_uri;
    for (a, b) in [
        ("qemu:///system", "QEMU:///system/"),
        ("qemu:///system", "qemu:///system?"),
        ("qemu:///system", "qemu+unix:///system"),
        ("qemu+ssh://kvm01/system", "QEMU+SSH://KVM01/system//"),
        (
            "qemu+ssh://ops@Kvm01:22/system",
            "qemu+ssh://ops@kvm01:22/system",
        ),
        ("test:///default", "TEST:///default/"),
    ] {
        assert_eq!(canonical_uri(a), canonical_uri(b), "{a} vs {b}");
    }
    for (a, b) in [
        ("qemu:///system", "qemu:///session"),
        ("qemu+ssh://kvm01/system", "qemu+ssh://kvm02/system"),
        ("qemu+ssh://ops@kvm01/system", "qemu+ssh://Ops@kvm01/system"),
        (
            "qemu:///system",
            "qemu+unix:///system?socket=/run/other.sock",
        ),
        ("test:///tmp/h1.xml", "test:///tmp/H1.xml"),
        ("qemu+ssh://kvm01/system", "qemu+tcp://kvm01/system"),
    ] {
        assert_ne!(canonical_uri(a), canonical_uri(b), "{a} vs {b}");
    }
}

#[test]
fn a_daemon_listed_twice_is_refused_at_the_second_uri_naming_the_first_host() {
    for spelling in [
        "qemu:///system",
        "QEMU:///system/",
        "qemu:///system?",
        "Qemu:///system//?",
    ] {
        let text = MINIMAL.replace(
            "[[classes]]",
            &format!(
                "[[hosts]]\nname = \"h2\"\nuri = \"{spelling}\"\ncapacity = {{ desktops = 4 }}\n\n[[classes]]"
            ),
        );
        let e = assert_one_error(&text, 8, 7, "hosts[2].uri: uri ");
        assert!(
            e.message
                .contains("reaches the same libvirt daemon as host \"h1\"")
                && e.message.contains("line 3"),
            "{e}"
        );
    }
}

#[test]
fn a_class_name_too_long_for_its_desktop_names_is_refused_and_says_why() {
    let ok = "c".repeat(34);
    let fleet = parse(&MINIMAL.replace("name = \"office\"", &format!("name = \"{ok}\""))).unwrap();
    assert_eq!(fleet.classes[0].name, ok);
    for len in [35, 48] {
        let long = "c".repeat(len);
        let text = MINIMAL.replace("name = \"office\"", &format!("name = \"{long}\""));
        let e = assert_one_error(&text, 7, 8, "classes[1].name: class name ");
        assert!(
            e.message
                .contains(&format!("is {len} characters long; at most 34"))
                && e.message.contains("dp-<class>-<10 characters>"),
            "{e}"
        );
    }
}

#[test]
fn a_template_is_rendered_at_load_and_must_name_the_desktop_and_use_its_disk() {
    use super::validate::template_problem;
    use deskpool_core::xml::DEFAULT_DOMAIN_TEMPLATE;
    assert_eq!(
        template_problem(DEFAULT_DOMAIN_TEMPLATE, "office", None),
        None
    );
    assert_eq!(template_problem(TEMPLATE_OK, "office", None), None);

    let dir = tempfile::tempdir().unwrap();
    for (body, says) in [
        (
            "<domain><name>fixed</name><devices><disk type='file'><source file='{disk_path}'/></disk></devices></domain>\n<!-- {name} -->",
            "the template's <name> is \"fixed\"",
        ),
        (
            "<domain><name>x-{name}</name><devices><disk type='file'><source file='{disk_path}'/></disk></devices></domain>",
            "the template's <name> is \"x-dp-office-0000000000\"",
        ),
        (
            "<domain><name>{name}</name><description>{disk_path}</description><devices><disk type='file'><source file='/var/lib/shared.qcow2'/></disk></devices></domain>",
            "no disk of the domain has {disk_path} as its file",
        ),
        (
            "<domain><name>{name}</name><devices><disk type='file' device='cdrom'><source file='{disk_path}'/></disk></devices></domain>",
            "no disk of the domain has {disk_path} as its file",
        ),
    ] {
        let path = with_template(dir.path(), body);
        let errors = load_file(&path).unwrap_err();
        assert_eq!(errors.0.len(), 1, "{errors}");
        let e = &errors.0[0];
        assert_eq!((e.line, e.col), (11, 12), "{e}");
        assert!(
            e.message.starts_with("classes[1].template: template ")
                && e.message.contains("cannot make a desktop: ")
                && e.message.contains(says),
            "{e}"
        );
    }
}

#[test]
fn times_are_exactly_two_digits_colon_two_digits() {
    for bad in [
        "+1:+5",
        "+1:05",
        "01:+5",
        " 1:05",
        "1:05",
        "-0:00",
        "0x:01",
        "٠١:٠٥",
    ] {
        assert!(TimeOfDay::parse(bad).is_err(), "{bad:?} was accepted");
        let text = PERIODS.replace("to = \"12:00\"", &format!("to = \"{bad}\""));
        assert_one_error(&text, 24, 6, "is not HH:MM");
    }
    assert_eq!(TimeOfDay::parse("01:05"), Ok(TimeOfDay(3900)));
    assert_eq!(TimeOfDay::parse("24:00"), Ok(TimeOfDay(86_400)));
}

#[test]
fn every_syntax_error_gives_a_reason() {
    for (text, line, col, says) in [
        ("# x\0y\n", 1, 4, "control character U+0000"),
        ("a = [\n# \u{1}\n1]\n", 2, 3, "control character U+0001"),
        ("a = [1, # c\0\n]\n", 1, 12, "control character U+0000"),
        ("#\u{7f}\n", 1, 2, "control character U+007F"),
        ("a = 1 #\u{1f}\n", 1, 8, "control character U+001F"),
        ("a = \"x\0\"\n", 1, 7, "control character U+0000"),
        ("a = 1\rb = 2\n", 1, 6, "carriage return without a newline"),
        ("#\r", 1, 2, "carriage return without a newline"),
        ("a = 1\n\u{b}\n", 2, 1, "control character U+000B"),
        ("vcpus = = 2\n", 1, 9, "invalid string"),
    ] {
        let errors = errors(text);
        assert_eq!(errors.len(), 1, "{text:?}");
        let e = &errors[0];
        let reason = e.message.strip_prefix("TOML syntax error: ").unwrap();
        assert!(
            !reason.trim().is_empty() && reason.contains(says),
            "{text:?}: {e}"
        );
        assert_eq!((e.line, e.col), (line, col), "{text:?}: {e}");
    }
}

#[test]
fn names_are_escaped_wherever_a_message_repeats_them() {
    let text = MINIMAL.replace("name = \"h1\"", "name = \"h\t1\"").replace(
        "version = \"2026.11\" }",
        "version = \"2026.11\", host = \"h9\" }",
    );
    let all = parse(&text).unwrap_err().to_string();
    assert_eq!(all.lines().count(), 2, "{all}");
    assert!(!all.contains('\t'), "a raw tab is echoed:\n{all}");
    assert!(all.contains("declared hosts: \"h\\t1\""), "{all}");

    // Paths and commands are echoed as written, but with their control characters escaped.
    let text = MINIMAL.replace(
        "disk_gib = 20",
        "disk_gib = 20\ntemplate = \"of\\tfice.xml\"",
    );
    let all = parse(&text).unwrap_err().to_string();
    assert!(
        !all.contains('\t')
            && all.contains("cannot read template ")
            && all.contains("of\\tfice.xml"),
        "{all}"
    );
    let text = MINIMAL.replace(
        "capacity = { desktops = 40 }",
        "capacity = { desktops = 40 }\nstandby = true\nactivate_command = \"wake\\u001b[2J\"\n\n[[hosts]]\nname = \"h2\"\nuri = \"qemu:///session\"\ncapacity = { desktops = 1 }",
    );
    let shown = summary(&parse(&text).unwrap());
    assert!(
        !shown.contains('\u{1b}') && shown.contains("activate: wake\\u{1b}[2J"),
        "{shown}"
    );
}

#[test]
fn on_shutoff_defaults_to_restart_reads_recycle_and_refuses_anything_else() {
    use deskpool_core::policy::ShutoffAction;
    let p = parse(MINIMAL).unwrap().classes[0].policy.clone();
    assert_eq!(p.on_shutoff, ShutoffAction::Restart);
    let text = MINIMAL.replace("cap = 200", "cap = 200\non_shutoff = \"recycle\"");
    let p = parse(&text).unwrap().classes[0].policy.clone();
    assert_eq!(p.on_shutoff, ShutoffAction::Recycle);
    let text = MINIMAL.replace("cap = 200", "cap = 200\non_shutoff = \"reboot\"");
    assert_one_error(
        &text,
        15,
        14,
        "classes[1].policy.on_shutoff: unknown action \"reboot\"; expected \"restart\" or \"recycle\"",
    );
}

mod ready;
