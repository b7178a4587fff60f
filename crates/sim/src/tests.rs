//! The simulator's accounting on small hand-made traces whose right answers are known.

use std::path::Path;

use super::*;
use deskpool_core::policy::Fleet;

/// `[engine]` holding `engine`, one active host `h1` of `desktops` desktops, and `classes`
/// (each a `[[classes]]` table from [`class_toml`]).
pub(super) fn sim_fleet(engine: &str, desktops: u32, classes: &[String]) -> Fleet {
    let text = format!(
        "[engine]\n{engine}\n\n[[hosts]]\nname = \"h1\"\nuri = \"test:///default\"\n\
         capacity = {{ desktops = {desktops} }}\n{}",
        classes.concat()
    );
    deskpool_config::parse_str(&text, Path::new("sim.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// Class `name` (2 GiB, 2 vCPUs, seed version 1) whose `[classes.policy]` table holds `policy`
/// (and whatever tables follow it, such as its events).
pub(super) fn class_toml(name: &str, policy: &str) -> String {
    format!(
        "\n[[classes]]\nname = \"{name}\"\nmemory_mib = 2048\nvcpus = 2\ndisk_gib = 20\n\
         seed = {{ pool = \"seeds\", volume = \"{name}.qcow2\", version = \"1\" }}\n\n\
         [classes.policy]\n{policy}\n"
    )
}

/// Simulates the trace of `lines` (`time,user,class,event` rows, the header added) on `fleet`
/// with the default options: the report, and what each login got.
pub(super) fn run_lines(fleet: &Fleet, lines: &[impl AsRef<str>]) -> (Report, Vec<HandOut>) {
    let mut text = String::from("time,user,class,event\n");
    for line in lines {
        text.push_str(line.as_ref());
        text.push('\n');
    }
    let events = trace::parse(&text, fleet).unwrap();
    simulate_with_hand_outs(fleet, &events, &SimOptions::default())
}

/// One class `office` (cap `cap`, fixed buffer `floor`), one active host of 100 desktops.
fn fleet(floor: u32, cap: u32) -> Fleet {
    let policy = format!(
        "cap = {cap}\nbuffer = {{ floor = {floor}, ceiling = {floor} }}\non_logout = \"delete\"\n\
         scale_down_delay_secs = 0"
    );
    sim_fleet("", 100, &[class_toml("office", &policy)])
}

fn trace(lines: &[&str]) -> String {
    let mut text = String::from("time,user,class,event\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    text
}

fn run(fleet: &Fleet, lines: &[&str]) -> Report {
    let events = trace::parse(&trace(lines), fleet).unwrap();
    simulate(fleet, &events, &SimOptions::default())
}

#[test]
fn a_login_on_an_empty_buffer_waits_exactly_clone_plus_boot() {
    let f = fleet(0, 10);
    let r = run(
        &f,
        &[
            "2026-01-05T08:00:00Z,u1,office,login",
            "2026-01-05T09:00:00Z,u1,office,logout",
        ],
    );
    let o = &r.classes[0];
    assert_eq!((o.logins, o.instant, o.waited, o.refused), (1, 0, 1, 0));
    assert_eq!(o.wait_p50_secs, 80.0);
    assert_eq!(o.wait_max_secs, 80.0);
    assert_eq!(o.wait_p99_all_secs, 80.0);
    assert_eq!(o.instant_share, 0.0);
    // The ledger owes a waiting login a desktop at every pass until it is served (the engine's
    // rule), so passes during the wait order more than the one it gets, within the pacing.
    assert_eq!(o.peak_desktops, 4);
    // Other clone and boot times give other waits.
    let events = trace::parse(
        &trace(&[
            "2026-01-05T08:00:00Z,u1,office,login",
            "2026-01-05T09:00:00Z,u1,office,logout",
        ]),
        &f,
    )
    .unwrap();
    let opts = SimOptions {
        clone_secs: 5,
        boot_secs: 30,
        ..SimOptions::default()
    };
    assert_eq!(simulate(&f, &events, &opts).classes[0].wait_max_secs, 35.0);
}

#[test]
fn a_login_with_a_floor_of_one_is_instant() {
    let r = run(
        &fleet(1, 10),
        &[
            "2026-01-05T08:00:00Z,u1,office,login",
            "2026-01-05T09:00:00Z,u1,office,logout",
        ],
    );
    let o = &r.classes[0];
    assert_eq!((o.logins, o.instant, o.waited, o.refused), (1, 1, 0, 0));
    assert_eq!(o.instant_share, 1.0);
    assert_eq!(o.wait_max_secs, 0.0);
    // The first pass (00:00:00) orders the seed copy, the second (00:00:10) the desktop: ready
    // at 00:01:30, taken at 08:00; its replacement is ordered at 08:00:00, ready at 08:01:20
    // and idle until the end (09:00).
    let expected = (8.0 * 3600.0 - 90.0 + 3600.0 - 80.0) / 3600.0;
    assert!(
        (o.idle_desktop_hours - expected).abs() < 1e-9,
        "{}",
        o.idle_desktop_hours
    );
    assert_eq!(o.peak_desktops, 2);
}

#[test]
fn a_desktop_buffered_two_hours_counts_two_idle_hours() {
    // The simulation starts at midnight; the floor-1 desktop is ordered at 00:00:10 (after
    // the seed copy), ready at 00:01:30 and taken at 02:01:30, where the trace ends.
    let r = run(&fleet(1, 10), &["2026-01-05T02:01:30Z,u1,office,login"]);
    let o = &r.classes[0];
    assert_eq!(o.instant, 1);
    assert!(
        (o.idle_desktop_hours - 2.0).abs() < 1e-9,
        "{}",
        o.idle_desktop_hours
    );
    assert_eq!(r.total.idle_desktop_hours, o.idle_desktop_hours);
    // One active host in service for the whole span.
    assert!(
        (r.host_hours - (2.0 + 90.0 / 3600.0)).abs() < 1e-9,
        "{}",
        r.host_hours
    );
}

#[test]
fn a_login_is_refused_when_the_cap_is_reached() {
    // Cap 1: u1 takes the only desktop; u2 cannot get one while u1 holds it.
    let r = run(
        &fleet(1, 1),
        &[
            "2026-01-05T08:00:00Z,u1,office,login",
            "2026-01-05T08:10:00Z,u2,office,login",
            "2026-01-05T09:00:00Z,u1,office,logout",
        ],
    );
    let o = &r.classes[0];
    assert_eq!((o.logins, o.instant, o.waited, o.refused), (2, 1, 0, 1));
    assert_eq!(r.total.refused, 1);
}

#[test]
fn a_login_waiting_past_the_limit_or_logging_out_first_is_refused() {
    // Cap 0 is refused at once; a class whose desktops take longer than the limit refuses
    // after the wait.
    let f = fleet(0, 10);
    let events = trace::parse(
        &trace(&[
            "2026-01-05T08:00:00Z,u1,office,login",
            "2026-01-05T08:00:30Z,u2,office,login",
            "2026-01-05T08:00:40Z,u2,office,logout",
        ]),
        &f,
    )
    .unwrap();
    let opts = SimOptions {
        boot_secs: 2000,
        max_wait_secs: 900,
        ..SimOptions::default()
    };
    let r = simulate(&f, &events, &opts);
    let o = &r.classes[0];
    // u2 gave up; u1's desktop would come after 2020 s, past the 900 s limit and the trace end.
    assert_eq!((o.logins, o.instant, o.waited, o.refused), (2, 0, 0, 2));
}

#[test]
fn waiting_logins_are_served_first_come_first_served() {
    let r = run(
        &fleet(0, 10),
        &[
            "2026-01-05T08:00:00Z,u1,office,login",
            "2026-01-05T08:00:30Z,u2,office,login",
            "2026-01-05T09:00:00Z,u1,office,logout",
            "2026-01-05T09:00:00Z,u2,office,logout",
        ],
    );
    let o = &r.classes[0];
    assert_eq!((o.waited, o.instant), (2, 0));
    // u1: ordered at 08:00:00, ready 08:01:20 (80 s). u2 gets the next one ready, ordered for
    // u1 at the pass of 08:00:10 (the ledger owes a waiting login one at every pass): ready
    // 08:01:30, 60 s after u2 asked.
    assert_eq!(o.wait_max_secs, 80.0);
    assert_eq!(o.wait_p50_secs, 60.0);
}

#[test]
fn malformed_traces_name_the_line_and_what_is_wrong() {
    let f = fleet(1, 10);
    let bad = |text: &str| trace::parse(text, &f).unwrap_err().to_string();
    assert_eq!(
        bad("when,who,class,event\n"),
        "line 1: header is \"when,who,class,event\"; expected \"time,user,class,event\""
    );
    let e = bad(&trace(&[
        "2026-01-05T08:00:00Z,u1,office,login",
        "yesterday,u2,office,login",
    ]));
    assert!(
        e.starts_with("line 3: time \"yesterday\" is not an RFC 3339 time"),
        "{e}"
    );
    assert_eq!(
        bad(&trace(&["2026-01-05T08:00:00Z,u1,office,sneeze"])),
        "line 2: unknown event \"sneeze\"; expected login, logout or disconnect"
    );
    assert_eq!(
        bad(&trace(&["2026-01-05T08:00:00Z,u1,gpu,login"])),
        "line 2: unknown class \"gpu\"; classes: office"
    );
    assert_eq!(
        bad(&trace(&[
            "2026-01-05T08:00:00Z,u1,office,login",
            "2026-01-05T08:01:00Z,u2,office,logout",
        ])),
        "line 3: logout of user \"u2\", who is not logged in"
    );
    assert_eq!(
        bad(&trace(&[
            "2026-01-05T08:00:00Z,u1,office,login",
            "2026-01-05T07:59:59Z,u2,office,login",
        ])),
        "line 3: time 2026-01-05T07:59:59Z goes backwards (line 2 is at 2026-01-05T08:00:00Z)"
    );
    let e = bad(&trace(&["2026-01-05T08:00:00Z,u1,office"]));
    assert!(e.starts_with("line 2: expected 4 fields"), "{e}");
    let e = bad(&trace(&[
        "2026-01-05T08:00:00Z,u1,office,login",
        "",
        "2026-01-05T08:00:01Z,u1,office,login",
    ]));
    assert!(
        e.starts_with(
            "line 4: user \"u1\" logs in again without logging out (logged in at line 2)"
        ),
        "{e}"
    );
    assert!(bad("").starts_with("line 1: empty trace"));
}

#[test]
fn a_predictive_class_follows_its_forecast() {
    // Predictive, floor 0: with nothing learnt it keeps 1 ready; a burst of logins raises it.
    let mut f = fleet(0, 50);
    f.classes[0].policy.buffer.ceiling = 50;
    f.classes[0].policy.predictive = Some(deskpool_core::policy::Predictive {
        service_level: 0.99,
    });
    let r = run(&f, &["2026-01-05T02:00:00Z,u1,office,login"]);
    let o = &r.classes[0];
    assert_eq!(o.instant, 1);
    // Ready at 00:01:30, taken at 02:00:00.
    assert!((o.idle_desktop_hours - (2.0 - 90.0 / 3600.0)).abs() < 1e-9);
    // Twenty logins a minute apart: the buffer grows with the recent rate, most are instant.
    let lines: Vec<String> = (0..20)
        .map(|i| format!("2026-01-05T08:{i:02}:00Z,u{i},office,login"))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let r = run(&f, &refs);
    let o = &r.classes[0];
    assert_eq!(o.logins, 20);
    assert!(o.instant >= 17, "{o:?}");
}

/// The engine's readiness rule, in virtual time: a class whose guests take longer to answer
/// than its `ready_timeout_secs` never gets a desktop ready (each is given up at the timeout
/// and replaced after a backoff), while one whose timeout is long enough serves its login.
#[test]
fn guests_slower_than_their_ready_timeout_are_given_up_and_never_serve() {
    let lines = [
        "2026-01-05T08:00:00Z,u1,office,login",
        "2026-01-05T09:00:00Z,u1,office,logout",
    ];
    let with_timeout = |secs: u64| {
        let mut f = fleet(0, 10);
        f.classes[0].ready.timeout_secs = secs;
        let events = trace::parse(&trace(&lines), &f).unwrap();
        simulate(&f, &events, &SimOptions::default())
    };
    // Boots take 60 s (SimOptions::default).
    let slow = with_timeout(30);
    let o = &slow.classes[0];
    assert_eq!((o.logins, o.instant, o.waited, o.refused), (1, 0, 0, 1));
    let enough = with_timeout(61);
    let o = &enough.classes[0];
    assert_eq!((o.logins, o.instant, o.waited, o.refused), (1, 0, 1, 0));
    assert_eq!(o.wait_max_secs, 80.0);
}
