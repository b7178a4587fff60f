//! A mass logout in a trace, in a class with a disconnect grace: every desktop of the wave is
//! kept for its user (the first logouts too, made before the wave was recognised), so the
//! reconnect after an outage is instant; a plain logout's desktop is never given back.

use super::tests::{class_toml, run_lines, sim_fleet};
use super::*;
use deskpool_core::policy::Fleet;

/// Class office with no buffer at all (only a user's own desktop can serve them at once),
/// `grace` seconds of disconnect grace, on one host of 100 desktops.
fn fleet(grace: u64) -> Fleet {
    let policy = format!(
        "cap = 50\nbuffer = {{ floor = 0, ceiling = 0 }}\n\
         disconnect_grace_secs = {grace}\nscale_down_delay_secs = 0"
    );
    sim_fleet("", 100, &[class_toml("office", &policy)])
}

fn run(fleet: &Fleet, lines: &[String]) -> Report {
    run_lines(fleet, lines).0
}

/// 20 users log in from 08:00, all log out at 09:00:00 and are back from 09:01.
fn outage() -> Vec<String> {
    let mut lines = Vec::new();
    for u in 0..20 {
        lines.push(format!("2026-01-05T08:{:02}:00Z,u{u},office,login", u * 2));
    }
    for u in 0..20 {
        lines.push(format!("2026-01-05T09:00:00Z,u{u},office,logout"));
    }
    for u in 0..20 {
        lines.push(format!("2026-01-05T09:01:{:02}Z,u{u},office,login", u * 2));
    }
    // The day ends: every login of the trace was served by then.
    for u in 0..20 {
        lines.push(format!("2026-01-05T17:00:00Z,u{u},office,logout"));
    }
    lines
}

#[test]
fn the_reconnect_after_a_mass_logout_finds_every_desktop_kept() {
    let r = run(&fleet(300), &outage());
    let o = &r.classes[0];
    // The morning's 20 logins waited (no buffer); every reconnect was instant.
    assert_eq!((o.logins, o.instant, o.waited, o.refused), (40, 20, 20, 0));
}

#[test]
fn without_a_grace_a_mass_logout_recycles_every_desktop() {
    let r = run(&fleet(0), &outage());
    let o = &r.classes[0];
    assert_eq!((o.logins, o.instant, o.waited), (40, 0, 40));
}

#[test]
fn a_plain_logout_is_not_given_back_to_its_user() {
    let lines: Vec<String> = [
        "2026-01-05T08:00:00Z,u1,office,login",
        "2026-01-05T09:00:00Z,u1,office,logout",
        "2026-01-05T09:00:20Z,u1,office,login",
        "2026-01-05T17:00:00Z,u1,office,logout",
    ]
    .iter()
    .map(|l| l.to_string())
    .collect();
    let r = run(&fleet(300), &lines);
    let o = &r.classes[0];
    // Its desktop still settles at 09:00:20, but is never handed out again.
    assert_eq!((o.logins, o.instant, o.waited), (2, 0, 2));
}
