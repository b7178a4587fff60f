//! Disconnects in a trace: under a grace, the user's next login within it gets the same desktop
//! back at once; after it, or without a grace, a disconnect is a logout.

use super::tests::{class_toml, run_lines, sim_fleet};
use super::*;
use deskpool_core::policy::Fleet;

/// Class office with a buffer of exactly `floor` (recycling on logout) and `grace` seconds of
/// disconnect grace, on one host of 100 desktops.
fn fleet(floor: u32, grace: u64) -> Fleet {
    let policy = format!(
        "cap = 10\nbuffer = {{ floor = {floor}, ceiling = {floor} }}\n\
         disconnect_grace_secs = {grace}\nscale_down_delay_secs = 0"
    );
    sim_fleet("", 100, &[class_toml("office", &policy)])
}

fn run(fleet: &Fleet, lines: &[&str]) -> (Report, Vec<HandOut>) {
    run_lines(fleet, lines)
}

const SESSION: [&str; 4] = [
    "2026-01-05T08:00:00Z,u1,office,login",
    "2026-01-05T09:00:00Z,u1,office,disconnect",
    "2026-01-05T09:04:00Z,u1,office,login",
    "2026-01-05T10:00:00Z,u1,office,logout",
];

#[test]
fn a_reconnect_within_the_grace_gets_its_desktop_back_at_once() {
    // No buffer at all: only the user's own desktop can serve the reconnect at once.
    let (r, hand_outs) = run(&fleet(0, 300), &SESSION);
    let o = &r.classes[0];
    assert_eq!((o.logins, o.instant, o.waited, o.refused), (2, 1, 1, 0));
    let outcomes: Vec<LoginOutcome> = hand_outs.iter().map(|h| h.outcome).collect();
    assert_eq!(outcomes, [LoginOutcome::Waited, LoginOutcome::Instant]);
}

#[test]
fn a_reconnect_after_the_grace_waits_for_a_fresh_desktop() {
    // Grace 200 s, reconnect after 240 s: the desktop was recycled at 09:03:20.
    let (r, _) = run(&fleet(0, 200), &SESSION);
    let o = &r.classes[0];
    assert_eq!((o.logins, o.instant, o.waited), (2, 0, 2));
    assert_eq!(o.wait_max_secs, 80.0);
}

#[test]
fn without_a_grace_a_disconnect_is_a_logout() {
    let (r, _) = run(&fleet(0, 0), &SESSION);
    let o = &r.classes[0];
    assert_eq!((o.logins, o.instant, o.waited), (2, 0, 2));
}

#[test]
fn a_disconnected_desktop_is_never_handed_to_another_user() {
    // Buffer of 1: u1 disconnects at 09:00 and does not come back within the grace. u2 takes
    // the buffered desktop at 09:05; u3 a second later must wait for the next one, though
    // u1's desktop is running unused.
    let (r, hand_outs) = run(
        &fleet(1, 600),
        &[
            "2026-01-05T08:00:00Z,u1,office,login",
            "2026-01-05T09:00:00Z,u1,office,disconnect",
            "2026-01-05T09:05:00Z,u2,office,login",
            "2026-01-05T09:05:01Z,u3,office,login",
            "2026-01-05T09:20:00Z,u2,office,logout",
        ],
    );
    let outcomes: Vec<(&str, LoginOutcome)> = hand_outs
        .iter()
        .map(|h| (h.user.as_str(), h.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("u1", LoginOutcome::Instant),
            ("u2", LoginOutcome::Instant),
            ("u3", LoginOutcome::Waited)
        ]
    );
    assert_eq!(r.classes[0].wait_max_secs, 79.0);
}

#[test]
fn a_disconnect_reads_as_a_session_end_in_the_trace() {
    let f = fleet(1, 300);
    let text = "time,user,class,event\n2026-01-05T08:00:00Z,u1,office,disconnect\n";
    assert_eq!(
        trace::parse(text, &f).unwrap_err().to_string(),
        "line 2: disconnect of user \"u1\", who is not logged in"
    );
    let text = "time,user,class,event\n\
                2026-01-05T08:00:00Z,u1,office,login\n\
                2026-01-05T08:10:00Z,u1,office,disconnect\n\
                2026-01-05T08:11:00Z,u1,office,login\n";
    assert_eq!(trace::parse(text, &f).unwrap().len(), 3);
}
