//! Tests of saving a policy in place: layout kept, only changed values touched, nothing invalid
//! written, atomic writes, conflicts.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::{DEMO_TOML, load_file};
use deskpool_core::policy::{LogoutAction, TimeOfDay, Weekdays};

/// The demo configuration, written to `dir/deskpool.toml` with mode 0640.
fn demo_file(dir: &Path) -> (PathBuf, String) {
    let text = DEMO_TOML.replace("@DEMO_DIR@", "/nowhere");
    let path = dir.join("deskpool.toml");
    std::fs::write(&path, &text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    (path, text)
}

fn policy_of(path: &Path, class: &str) -> Policy {
    load_file(path)
        .unwrap()
        .class(class)
        .unwrap()
        .policy
        .clone()
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn saving_the_office_floor_changes_only_that_value_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = demo_file(dir.path());
    let mut policy = policy_of(&path, "office");
    assert_eq!(policy.buffer.floor, 4);
    policy.buffer.floor = 7;
    save_policy(&path, "office", &policy).unwrap();

    let after = std::fs::read_to_string(&path).unwrap();
    let expected = before.replacen(
        "buffer = { floor = 4, percent = 10, ceiling = 12 }",
        "buffer = { floor = 7, percent = 10, ceiling = 12 }",
        1,
    );
    assert_ne!(expected, before);
    assert_eq!(after, expected, "only the floor may change");
    assert_eq!(policy_of(&path, "office").buffer.floor, 7);
    assert_eq!(policy_of(&path, "office"), policy);
}

#[test]
fn a_value_keeps_its_trailing_comment_and_an_absent_key_is_added_only_when_not_default() {
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = demo_file(dir.path());
    let mut policy = policy_of(&path, "dev");
    // The dev period has a trailing comment after its production.
    policy.periods[0].production = 14;
    // ready_secs is absent; 90 is its default, so it must not be added.
    assert_eq!(policy.ready_secs, 90);
    save_policy(&path, "dev", &policy).unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        after,
        before.replacen(
            "production = 12                # no buffer here",
            "production = 14                # no buffer here",
            1
        )
    );

    // A non-default ready_secs is added to the dev policy table, nothing else changes.
    policy.ready_secs = 120;
    save_policy(&path, "dev", &policy).unwrap();
    let again = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        again,
        after.replacen(
            "buffer = { floor = 2, percent = 10, ceiling = 6 }\n",
            "buffer = { floor = 2, percent = 10, ceiling = 6 }\nready_secs = 120\n",
            1
        )
    );
    assert_eq!(policy_of(&path, "dev"), policy);
}

#[test]
fn every_policy_field_round_trips_and_new_tables_are_inline() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = demo_file(dir.path());
    let mut policy = policy_of(&path, "cad");
    policy.cap = 20;
    policy.production = 2;
    policy.buffer.percent = 5;
    policy.scale_down_delay_secs = 60;
    policy.on_logout = LogoutAction::Delete;
    policy.pacing.boots_per_host = 2;
    save_policy(&path, "cad", &policy).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("buffer = { floor = 1, ceiling = 4, percent = 5 }   # percent defaults"),
        "{text}"
    );
    assert!(text.contains("pacing = { boots_per_host = 2 }"), "{text}");
    assert!(text.contains("on_logout = \"delete\""), "{text}");
    assert!(
        !text.contains("clones_per_host = 4 }"),
        "default added:\n{text}"
    );
    assert_eq!(policy_of(&path, "cad"), policy);
}

#[test]
fn an_inherited_value_is_pinned_when_its_default_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = demo_file(dir.path());
    // cad's period has no buffer: it takes the class's. Changing the class's buffer but not the
    // period's must write the period's buffer explicitly.
    let mut policy = policy_of(&path, "cad");
    let period_buffer = policy.periods[0].buffer;
    policy.buffer.floor = 2;
    save_policy(&path, "cad", &policy).unwrap();
    let loaded = policy_of(&path, "cad");
    assert_eq!(loaded.periods[0].buffer, period_buffer);
    assert_eq!(loaded, policy);
}

#[test]
fn periods_are_added_and_removed_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = demo_file(dir.path());
    let mut policy = policy_of(&path, "office");
    let mut weekend = policy.periods[0].clone();
    weekend.days = Weekdays::parse_day("weekend").unwrap();
    weekend.from = TimeOfDay::parse("09:00").unwrap();
    weekend.to = TimeOfDay::parse("13:00").unwrap();
    weekend.production = 5;
    weekend.buffer = policy.buffer;
    policy.periods.push(weekend);
    save_policy(&path, "office", &policy).unwrap();
    let added = std::fs::read_to_string(&path).unwrap();
    assert_eq!(policy_of(&path, "office"), policy);
    // The new table comes right after the first period, inside the office class.
    let new_at = added.find("days = [\"weekend\"]").unwrap();
    let dev_at = added.find("name = \"dev\"").unwrap();
    assert!(new_at < dev_at, "{added}");
    assert!(added.contains("from = \"09:00\"\nto = \"13:00\"\nproduction = 5\n"));
    // The other classes are untouched.
    assert_eq!(
        added[added.find("[[classes]]\nname = \"dev\"").unwrap()..],
        before[before.find("[[classes]]\nname = \"dev\"").unwrap()..]
    );

    // Removing it again gives back the original file.
    policy.periods.pop();
    save_policy(&path, "office", &policy).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);

    // Removing every period drops the key.
    policy.periods.clear();
    save_policy(&path, "office", &policy).unwrap();
    let none = std::fs::read_to_string(&path).unwrap();
    assert!(policy_of(&path, "office").periods.is_empty());
    assert_eq!(none.matches("[[classes.policy.periods]]").count(), 2);
}

#[test]
fn periods_written_inline_stay_inline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inline.toml");
    let text = "classes = [{ name = \"c\", memory_mib = 512, vcpus = 1, disk_gib = 1, seed = { pool = \"p\", volume = \"v\", version = \"1\" }, policy = { cap = 4, periods = [{ days = [\"all\"], from = \"00:00\", to = \"12:00\", production = 2 }] } }]\n\n\
[[hosts]]\nname = \"h1\"\nuri = \"test:///default\"\ncapacity = { desktops = 4 }\n";
    std::fs::write(&path, text).unwrap();
    let mut policy = policy_of(&path, "c");
    let mut second = policy.periods[0].clone();
    second.from = TimeOfDay::parse("12:00").unwrap();
    second.to = TimeOfDay::parse("00:00").unwrap();
    second.production = 3;
    policy.periods.push(second);
    save_policy(&path, "c", &policy).unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(!after.contains("[classes"), "tables were added:\n{after}");
    assert_eq!(after.lines().count(), text.lines().count());
    assert_eq!(policy_of(&path, "c"), policy);
    policy.periods.remove(1);
    save_policy(&path, "c", &policy).unwrap();
    assert_eq!(policy_of(&path, "c"), policy);
}

#[test]
fn an_invalid_policy_writes_nothing_and_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = demo_file(dir.path());
    let mut policy = policy_of(&path, "office");
    policy.buffer.floor = 13; // above the ceiling of 12
    let err = save_policy(&path, "office", &policy).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}: not saved", path.display())),
        "{message}"
    );
    assert!(
        message.contains("buffer.floor: floor 13 is above ceiling 12"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    assert_eq!(dir_entries(dir.path()), ["deskpool.toml"]);
}

#[test]
fn a_file_invalid_on_disk_is_not_edited() {
    let dir = tempfile::tempdir().unwrap();
    let (path, text) = demo_file(dir.path());
    let policy = policy_of(&path, "office");
    let broken = text.replacen("cap = 60", "cap = 0", 1);
    std::fs::write(&path, &broken).unwrap();
    let err = save_policy(&path, "office", &policy).unwrap_err();
    assert!(matches!(err, EditError::FileInvalid { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("classes[1].policy.cap: 0 is too small")
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
}

#[test]
fn the_write_is_atomic_and_keeps_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = demo_file(dir.path());
    let mut policy = policy_of(&path, "office");
    policy.cap = 61;
    save_policy(&path, "office", &policy).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert_eq!(dir_entries(dir.path()), ["deskpool.toml"]);
}

#[test]
fn saving_through_a_symlink_edits_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = demo_file(dir.path());
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let mut policy = policy_of(&link, "office");
    policy.cap = 62;
    save_policy(&link, "office", &policy).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(policy_of(&path, "office").cap, 62);
}

#[test]
fn a_policy_changed_on_disk_since_load_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (path, text) = demo_file(dir.path());
    let loaded = policy_of(&path, "office");
    // Someone else raises the cap meanwhile.
    let theirs = text.replacen("cap = 60", "cap = 70", 1);
    std::fs::write(&path, &theirs).unwrap();
    let mut mine = loaded.clone();
    mine.buffer.floor = 5;
    let err = save_policy_checked(&path, "office", &loaded, &mine).unwrap_err();
    assert!(matches!(err, EditError::Conflict { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("changed in the file since it was loaded")
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), theirs);

    // A change elsewhere in the file is no conflict, and is kept.
    let elsewhere = text.replacen("tick_secs = 2 ", "tick_secs = 3 ", 1);
    std::fs::write(&path, &elsewhere).unwrap();
    save_policy_checked(&path, "office", &loaded, &mine).unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(after.contains("tick_secs = 3 "));
    assert_eq!(policy_of(&path, "office"), mine);
}

#[test]
fn missing_class_and_unreadable_file_are_reported_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = demo_file(dir.path());
    let policy = policy_of(&path, "office");
    let err = save_policy(&path, "kiosk", &policy).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not saved: no class named \"kiosk\" (classes: office, dev, cad)",
            path.display()
        )
    );
    let gone = dir.path().join("gone.toml");
    let err = save_policy(&gone, "office", &policy).unwrap_err();
    assert!(matches!(err, EditError::Unreadable { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read:", gone.display())),
        "{err}"
    );
}

#[test]
fn an_unchanged_policy_does_not_rewrite_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = demo_file(dir.path());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).unwrap();
    let policy = policy_of(&path, "office");
    // Read-only file: a write would fail, so success shows nothing was written.
    save_policy(&path, "office", &policy).unwrap();
}

#[test]
fn check_policy_names_the_field_of_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = demo_file(dir.path());
    let good = policy_of(&path, "office");
    assert!(check_policy(&good).is_empty());

    let mut p = good.clone();
    p.buffer.floor = 13;
    assert_eq!(
        check_policy(&p),
        [(
            "buffer.floor".to_string(),
            "floor 13 is above ceiling 12".to_string()
        )]
    );

    let mut p = good.clone();
    let mut overlapping = p.periods[0].clone();
    overlapping.days = Weekdays::parse_day("fri").unwrap();
    overlapping.from = TimeOfDay::parse("17:00").unwrap();
    overlapping.to = TimeOfDay::parse("20:00").unwrap();
    p.periods.push(overlapping);
    assert_eq!(
        check_policy(&p),
        [(
            "periods".to_string(),
            "periods 1 and 2 overlap (mon-fri 07:00-18:00 and fri 17:00-20:00)".to_string()
        )]
    );

    let mut p = good;
    p.cap = 0;
    p.pacing.boots_per_host = 0;
    p.periods[0].days = Weekdays::default();
    p.periods[0].buffer.ceiling = 70;
    let fields: Vec<String> = check_policy(&p).into_iter().map(|(f, _)| f).collect();
    assert!(fields.contains(&"cap".to_string()), "{fields:?}");
    assert!(
        fields.contains(&"periods[1].production".to_string()),
        "{fields:?}"
    );
    assert!(fields.contains(&"buffer.ceiling".to_string()), "{fields:?}");
    assert!(
        fields.contains(&"pacing.boots_per_host".to_string()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"periods[1].days".to_string()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"periods[1].buffer.ceiling".to_string()),
        "{fields:?}"
    );
}

#[test]
fn check_policy_and_the_loader_agree_on_the_messages() {
    // The same rule gives the same sentence in both places.
    let text = DEMO_TOML
        .replace("@DEMO_DIR@", "/nowhere")
        .replacen("floor = 4,", "floor = 13,", 1);
    let errors = crate::parse_str(&text, Path::new("d.toml")).unwrap_err();
    assert!(
        errors.to_string().contains("floor 13 is above ceiling 12"),
        "{errors}"
    );
}

#[test]
fn a_predictive_buffer_is_added_changed_and_removed_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = demo_file(dir.path());
    let mut policy = policy_of(&path, "dev");
    assert!(policy.predictive.is_none());
    policy.predictive = Some(deskpool_core::policy::Predictive {
        service_level: 0.99,
    });
    save_policy(&path, "dev", &policy).unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(
        after.contains("predictive = { service_level = 0.99 }"),
        "{after}"
    );
    assert_eq!(policy_of(&path, "dev"), policy);

    policy.predictive = Some(deskpool_core::policy::Predictive {
        service_level: 0.995,
    });
    save_policy(&path, "dev", &policy).unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(
        after.contains("predictive = { service_level = 0.995 }"),
        "{after}"
    );
    assert_eq!(policy_of(&path, "dev"), policy);

    policy.predictive = None;
    save_policy(&path, "dev", &policy).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[test]
fn an_invalid_service_level_is_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = demo_file(dir.path());
    let mut policy = policy_of(&path, "dev");
    policy.predictive = Some(deskpool_core::policy::Predictive { service_level: 1.5 });
    let e = save_policy(&path, "dev", &policy).unwrap_err();
    assert!(e.to_string().contains("predictive.service_level"), "{e}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

/// The loader and the check every other entry point applies (`Policy::problems`: the editor,
/// the engine's `set_policy`) agree on every policy: the file takes a policy, and loads it back
/// unchanged, exactly when the check finds nothing wrong with it.
#[test]
fn the_loader_and_the_engine_side_check_agree_on_every_policy() {
    use deskpool_core::policy::{Period, Predictive, ShutoffAction, TimeOfDay, Weekdays};
    let text = DEMO_TOML.replace("@DEMO_DIR@", "/nowhere");
    let path = Path::new("deskpool.toml");
    let base = parse_str(&text, path)
        .unwrap()
        .class("office")
        .unwrap()
        .policy
        .clone();
    let buffer = base.buffer;
    let period = move |days: u8, from: u32, to: u32| Period {
        days: Weekdays(days),
        from: TimeOfDay(from),
        to: TimeOfDay(to),
        production: 3,
        buffer,
    };
    let event = move |first: i8, last: i8, from: u32, to: u32| deskpool_core::policy::Event {
        name: "training".into(),
        first_day: jiff::civil::date(2026, 1, first),
        last_day: jiff::civil::date(2026, 1, last),
        from: TimeOfDay(from * 3600),
        to: TimeOfDay(to * 3600),
        production: 3,
        buffer,
    };
    type Change = Box<dyn Fn(&mut Policy)>;
    let table: Vec<(&str, bool, Change)> = vec![
        ("as loaded", true, Box::new(|_| {})),
        (
            "floor above ceiling",
            false,
            Box::new(|p| p.buffer.floor = p.buffer.ceiling + 1),
        ),
        (
            "floor at ceiling",
            true,
            Box::new(|p| p.buffer.floor = p.buffer.ceiling),
        ),
        (
            "cap 0",
            false,
            Box::new(|p| {
                p.cap = 0;
                p.production = 0;
                p.buffer.floor = 0;
                p.buffer.ceiling = 0;
                p.periods.clear();
            }),
        ),
        ("cap at its maximum", true, Box::new(|p| p.cap = 100_000)),
        (
            "cap above its maximum",
            false,
            Box::new(|p| p.cap = 100_001),
        ),
        (
            "production 4e9 with cap 2",
            false,
            Box::new(|p| {
                p.cap = 2;
                p.production = 4_000_000_000;
                p.buffer.floor = 0;
                p.buffer.ceiling = 2;
                p.periods.clear();
            }),
        ),
        (
            "production above the cap",
            false,
            Box::new(|p| p.production = p.cap + 1),
        ),
        (
            "ceiling above the cap",
            false,
            Box::new(|p| p.buffer.ceiling = p.cap + 1),
        ),
        ("percent 1000", true, Box::new(|p| p.buffer.percent = 1000)),
        ("percent 1001", false, Box::new(|p| p.buffer.percent = 1001)),
        (
            "period from 999999",
            false,
            Box::new(|p| p.periods[0].from = TimeOfDay(999_999)),
        ),
        (
            "period to 24:00",
            true,
            Box::new(|p| p.periods[0].to = TimeOfDay(86_400)),
        ),
        (
            "period from 24:01",
            false,
            Box::new(|p| p.periods[0].from = TimeOfDay(86_460)),
        ),
        (
            "period at 07:00:30",
            false,
            Box::new(|p| p.periods[0].from = TimeOfDay(25_230)),
        ),
        (
            "period without days",
            false,
            Box::new(|p| p.periods[0].days = Weekdays(0)),
        ),
        (
            "period on an eighth day",
            false,
            Box::new(|p| p.periods[0].days = Weekdays(0xff)),
        ),
        (
            "period production above the cap",
            false,
            Box::new(|p| p.periods[0].production = p.cap + 1),
        ),
        (
            "period floor above its ceiling",
            false,
            Box::new(|p| p.periods[0].buffer.floor = p.periods[0].buffer.ceiling + 1),
        ),
        (
            "a second period on sundays",
            true,
            Box::new(move |p| p.periods.push(period(0b100_0000, 3600, 7200))),
        ),
        (
            "overlapping periods",
            false,
            Box::new(move |p| p.periods.push(period(0b000_0001, 8 * 3600, 9 * 3600))),
        ),
        (
            "service level 5.0",
            false,
            Box::new(|p| p.predictive = Some(Predictive { service_level: 5.0 })),
        ),
        (
            "service level NaN",
            false,
            Box::new(|p| {
                p.predictive = Some(Predictive {
                    service_level: f64::NAN,
                })
            }),
        ),
        (
            "service level 0.99",
            true,
            Box::new(|p| {
                p.predictive = Some(Predictive {
                    service_level: 0.99,
                })
            }),
        ),
        (
            "pacing 0",
            false,
            Box::new(|p| p.pacing.clones_per_host = 0),
        ),
        ("boots 0", false, Box::new(|p| p.pacing.boots_per_host = 0)),
        (
            "pacing 1000",
            true,
            Box::new(|p| p.pacing.boots_per_host = 1000),
        ),
        ("ready_secs 0", false, Box::new(|p| p.ready_secs = 0)),
        (
            "ready_secs u64::MAX",
            false,
            Box::new(|p| p.ready_secs = u64::MAX),
        ),
        (
            "scale down after a week",
            true,
            Box::new(|p| p.scale_down_delay_secs = 7 * 86_400),
        ),
        (
            "scale down after a week and a second",
            false,
            Box::new(|p| p.scale_down_delay_secs = 7 * 86_400 + 1),
        ),
        (
            "on_logout delete",
            true,
            Box::new(|p| p.on_logout = LogoutAction::Delete),
        ),
        (
            "on_shutoff recycle",
            true,
            Box::new(|p| p.on_shutoff = ShutoffAction::Recycle),
        ),
        (
            "an event",
            true,
            Box::new(move |p| p.events.push(event(5, 5, 8, 9))),
        ),
        (
            "an event over three days until midnight",
            true,
            Box::new(move |p| p.events.push(event(5, 7, 8, 24))),
        ),
        (
            "two events back to back",
            true,
            Box::new(move |p| p.events.extend([event(5, 5, 8, 9), event(5, 5, 9, 10)])),
        ),
        (
            "overlapping events",
            false,
            Box::new(move |p| p.events.extend([event(5, 6, 8, 10), event(6, 6, 9, 11)])),
        ),
        (
            "an event range reversed",
            false,
            Box::new(move |p| p.events.push(event(7, 5, 8, 9))),
        ),
        (
            "an event ending when it starts",
            false,
            Box::new(move |p| p.events.push(event(5, 5, 9, 9))),
        ),
        (
            "an event above the cap",
            false,
            Box::new(move |p| {
                let mut e = event(5, 5, 8, 9);
                e.production = p.cap + 1;
                p.events.push(e);
            }),
        ),
        (
            "an event with a control character in its name",
            false,
            Box::new(move |p| {
                let mut e = event(5, 5, 8, 9);
                e.name = "train\u{1b}ing".into();
                p.events.push(e);
            }),
        ),
    ];
    for (what, valid, change) in table {
        let mut policy = base.clone();
        change(&mut policy);
        let checked = policy.validate();
        let loaded = edit_text(&text, "office", &base, &policy).map(|edited| {
            parse_str(&edited, path).map(|f| f.class("office").unwrap().policy.clone())
        });
        let file_takes = matches!(&loaded, Some(Ok(back)) if *back == policy);
        assert_eq!(
            (checked.is_ok(), file_takes),
            (valid, valid),
            "{what}: check {checked:?}, file {loaded:?}"
        );
        assert_eq!(check_policy(&policy).is_empty(), valid, "{what}");
    }
}

#[test]
fn on_shutoff_is_written_only_when_it_differs_and_loads_back() {
    use deskpool_core::policy::ShutoffAction;
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = demo_file(dir.path());
    let mut policy = policy_of(&path, "office");
    assert_eq!(policy.on_shutoff, ShutoffAction::Restart);
    policy.on_shutoff = ShutoffAction::Recycle;
    save_policy(&path, "office", &policy).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("on_shutoff = \"recycle\""), "{text}");
    assert_eq!(policy_of(&path, "office"), policy);
    policy.on_shutoff = ShutoffAction::Restart;
    save_policy(&path, "office", &policy).unwrap();
    assert_eq!(policy_of(&path, "office"), policy);
    assert_ne!(
        std::fs::read_to_string(&path).unwrap(),
        before,
        "the key stays, set to restart"
    );
}

/// The demo file with a dated event in the office class (after its period, before `dev`).
fn demo_file_with_event(dir: &Path) -> (PathBuf, String) {
    let (path, text) = demo_file(dir);
    let event = "[[classes.policy.events]]   # the January training\nname = \"training\"\n\
                 date = \"2026-01-05..2026-01-06\"\nfrom = \"08:00\"\nto = \"09:00\"\n\
                 production = 50\nbuffer = { floor = 20 }\n\n[[classes]]\nname = \"dev\"";
    let text = text.replacen("[[classes]]\nname = \"dev\"", event, 1);
    std::fs::write(&path, &text).unwrap();
    assert_eq!(policy_of(&path, "office").events.len(), 1);
    (path, text)
}

#[test]
fn editing_another_key_keeps_the_events_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = demo_file_with_event(dir.path());
    let mut policy = policy_of(&path, "office");
    let events = policy.events.clone();
    policy.buffer.floor = 7;
    policy.periods[0].production = 14;
    save_policy(&path, "office", &policy).unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    let expected = before
        .replacen(
            "buffer = { floor = 4, percent = 10, ceiling = 12 }",
            "buffer = { floor = 7, percent = 10, ceiling = 12 }",
            1,
        )
        .replacen("production = 30", "production = 14", 1);
    assert_eq!(after, expected, "only the floor and the period may change");
    let loaded = policy_of(&path, "office");
    assert_eq!(loaded.events, events);
    assert_eq!(loaded, policy);
}

/// An event without `buffer` takes the class's rule; when the class's rule is edited, the
/// event keeps the rule it had (written out), and nothing else of it changes.
#[test]
fn an_event_keeps_its_buffer_when_the_class_rule_it_took_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = demo_file_with_event(dir.path());
    let text = before.replacen(
        "production = 50\nbuffer = { floor = 20 }\n",
        "production = 50\n",
        1,
    );
    std::fs::write(&path, &text).unwrap();
    let mut policy = policy_of(&path, "office");
    let took = policy.events[0].buffer;
    assert_eq!(took, policy.buffer);
    policy.buffer.floor = 5;
    policy.cap = 70;
    save_policy(&path, "office", &policy).unwrap();
    let loaded = policy_of(&path, "office");
    assert_eq!(loaded.events[0].buffer, took);
    assert_eq!(loaded, policy);
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(
        after.contains(
            "[[classes.policy.events]]   # the January training\nname = \"training\"\n\
             date = \"2026-01-05..2026-01-06\"\nfrom = \"08:00\"\nto = \"09:00\"\n\
             production = 50\nbuffer = { floor = 4, percent = 10, ceiling = 12 }\n"
        ),
        "{after}"
    );
}

#[test]
fn changed_events_are_rewritten_and_load_back_and_removed_ones_leave_no_table() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = demo_file_with_event(dir.path());
    let mut policy = policy_of(&path, "office");
    let mut second = policy.events[0].clone();
    second.name = "all-hands".into();
    second.first_day = jiff::civil::date(2026, 1, 9);
    second.last_day = second.first_day;
    second.from = TimeOfDay(14 * 3600);
    second.to = TimeOfDay(86_400);
    second.buffer = policy.buffer;
    policy.events[0].production = 60;
    policy.events.push(second);
    save_policy(&path, "office", &policy).unwrap();
    assert_eq!(policy_of(&path, "office"), policy);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("date = \"2026-01-09\""), "{text}");
    assert!(text.contains("to = \"24:00\""), "{text}");
    // The other classes are as they were.
    assert_eq!(policy_of(&path, "dev").events, []);

    policy.events.clear();
    save_policy(&path, "office", &policy).unwrap();
    assert_eq!(policy_of(&path, "office"), policy);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("[[classes.policy.events]]")),
        "{text}"
    );
}

#[test]
fn an_invalid_event_is_refused_by_the_shared_check_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = demo_file_with_event(dir.path());
    let mut policy = policy_of(&path, "office");
    let event = &mut policy.events[0];
    std::mem::swap(&mut event.first_day, &mut event.last_day);
    let e = save_policy(&path, "office", &policy).unwrap_err();
    assert!(
        matches!(&e, EditError::BadPolicy { problems, .. }
            if problems.iter().any(|(field, _)| field == "events[1].date")),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}
