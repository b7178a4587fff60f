//! The report's windows and hours on hand-made traces: a declared event, a burst of logins and
//! a mass logout with its reconnects, each found and counted.

use super::tests::{class_toml, sim_fleet};
use super::*;
use deskpool_core::policy::Fleet;

/// Class office (buffer of 2, grace `grace`) with a declared event on Monday 09:00-10:00, and
/// class dev (buffer of 1), on one host of 500 desktops.
fn fleet(grace: u64) -> Fleet {
    let policy = |floor: u32| {
        format!(
            "cap = 400\nbuffer = {{ floor = {floor}, ceiling = {floor} }}\n\
             disconnect_grace_secs = {grace}\non_logout = \"delete\""
        )
    };
    let training = "\n[[classes.policy.events]]\nname = \"training\"\ndate = \"2026-01-05\"\n\
                    from = \"09:00\"\nto = \"10:00\"\nproduction = 2";
    sim_fleet(
        "",
        500,
        &[
            class_toml("office", &format!("{}{training}", policy(2))),
            class_toml("dev", &policy(1)),
        ],
    )
}

fn lines() -> Vec<String> {
    let mut lines = Vec::new();
    // Two office logins in the training (09:30, 09:31), instant from the buffer of 2.
    lines.push("2026-01-05T09:30:00Z,o1,office,login".to_string());
    lines.push("2026-01-05T09:31:00Z,o2,office,login".to_string());
    // Dev: 20 logins in the minute from 11:00 (a burst: nothing in the hour before).
    for i in 0..20 {
        lines.push(format!("2026-01-05T11:00:{:02}Z,d{i},dev,login", i * 2));
    }
    // At 12:00:00 all 20 dev sessions end at once; 30 s to 10 min later each logs in again.
    for i in 0..20 {
        lines.push(format!("2026-01-05T12:00:00Z,d{i},dev,EVENT"));
    }
    for i in 0..20 {
        let at = 30 + i * 30;
        lines.push(format!(
            "2026-01-05T12:{:02}:{:02}Z,d{i},dev,login",
            at / 60,
            at % 60
        ));
    }
    lines.push("2026-01-05T13:00:00Z,o1,office,logout".to_string());
    lines
}

fn run(fleet: &Fleet, end: &str) -> Report {
    let mut text = String::from("time,user,class,event\n");
    for l in lines() {
        text.push_str(&l.replace("EVENT", end));
        text.push('\n');
    }
    let events = trace::parse(&text, fleet).unwrap();
    simulate(fleet, &events, &SimOptions::default())
}

fn window(r: &Report, kind: windows::WindowKind) -> &windows::WindowReport {
    let found: Vec<_> = r.windows.iter().filter(|w| w.kind == kind).collect();
    assert_eq!(found.len(), 1, "{:#?}", r.windows);
    found[0]
}

#[test]
fn a_declared_event_a_burst_and_a_mass_logout_are_reported_with_their_waits() {
    let r = run(&fleet(0), "logout");
    let event = window(&r, windows::WindowKind::Event);
    assert_eq!(
        (event.class.as_str(), event.name.as_str()),
        ("office", "training")
    );
    assert_eq!(
        (event.from.as_str(), event.to.as_str()),
        ("2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z")
    );
    assert_eq!((event.counts.logins, event.counts.instant), (2, 2));

    let burst = window(&r, windows::WindowKind::Burst);
    assert_eq!(burst.class, "dev");
    assert_eq!(
        (burst.from.as_str(), burst.to.as_str()),
        ("2026-01-05T11:00:00Z", "2026-01-05T11:01:00Z")
    );
    // One ready desktop: the first login is instant, the others wait for new ones.
    assert_eq!(burst.counts.logins, 20);
    assert_eq!(burst.counts.instant + burst.counts.waited, 20);
    assert!(burst.counts.waited >= 15, "{burst:?}");

    let reconnect = window(&r, windows::WindowKind::Reconnect);
    assert_eq!(reconnect.class, "dev");
    assert_eq!(reconnect.name, "after 20 of 20 sessions ended");
    assert_eq!(reconnect.from, "2026-01-05T12:00:00Z");
    assert_eq!(
        reconnect.counts.logins, 20,
        "the 20 users' logins, nobody else's"
    );
    assert!(reconnect.counts.waited > 0, "{reconnect:?}");

    // The hours table lists 11:00 and 12:00 (dev waited), not 09:00 (nobody waited).
    let hours: Vec<&str> = r.hours.iter().map(|h| h.hour.as_str()).collect();
    assert_eq!(hours, ["2026-01-05T11:00:00Z", "2026-01-05T12:00:00Z"]);
    assert_eq!(
        r.hours[0].classes,
        [("dev".to_string(), burst.counts.waited)]
    );
    let table = r.table();
    assert!(table.contains("reconnect dev"), "{table}");
    assert!(table.contains("2026-01-05T11:00 "), "{table}");
}

#[test]
fn reconnects_to_disconnected_desktops_within_the_grace_are_all_instant() {
    let r = run(&fleet(900), "disconnect");
    let reconnect = window(&r, windows::WindowKind::Reconnect);
    assert_eq!(
        (
            reconnect.counts.logins,
            reconnect.counts.instant,
            reconnect.counts.waited
        ),
        (20, 20, 0)
    );
    let hours: Vec<&str> = r.hours.iter().map(|h| h.hour.as_str()).collect();
    assert_eq!(hours, ["2026-01-05T11:00:00Z"], "only the burst waited");
}
