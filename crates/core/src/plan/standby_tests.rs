//! A standby host is woken only when the hosts in service lack room: creations held back by
//! pacing, by a class's backoff or by a seed copy under way never wake one.

use super::tests::{
    assert_paced, backing_off, bare, class, creates, fleet, host, monday, rule, run, seed, seeded,
};
use super::*;
use crate::policy::Fleet;
use jiff::SignedDuration;

fn activations(plan: &Plan) -> Vec<&str> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::ActivateHost { host } => Some(host.as_str()),
            _ => None,
        })
        .collect()
}

/// Class office wanting a buffer of `floor`, pacing 4 clones per host, on two active hosts of
/// `room` desktops each and one standby host.
fn two_active_and_a_standby(floor: u32, room: u32) -> (Fleet, Vec<HostView>) {
    let f = fleet(
        vec![class("office", rule(floor, 0, floor), 100)],
        vec![
            host("h1", room, false),
            host("h2", room, false),
            host("h3", 50, true),
        ],
    );
    let hosts = vec![
        seeded(&f, "h1", HostStatus::Active),
        seeded(&f, "h2", HostStatus::Active),
        bare("h3", HostStatus::Standby),
    ];
    (f, hosts)
}

/// A pass on Monday at 07:00 with no desktop yet.
fn at_seven(f: &Fleet, hosts: &[HostView], busy: &Busy) -> Plan {
    run(f, hosts, &[], busy, &PlanMemory::default(), monday("07:00"))
}

#[test]
fn creations_held_back_by_pacing_wake_no_standby_host() {
    let (f, hosts) = two_active_and_a_standby(20, 100);
    let p = at_seven(&f, &hosts, &Busy::default());
    assert_eq!(creates(&p).len(), 8, "4 clones per host at a time");
    assert_eq!(activations(&p), Vec::<&str>::new(), "{:?}", p.actions);
    assert_paced(&p);
}

#[test]
fn creations_that_exceed_the_room_wake_a_standby_host_even_while_paced() {
    // 20 wanted, 2 × 6 room: 8 placed now (pacing), 4 more fit later, 8 fit nowhere.
    let (f, hosts) = two_active_and_a_standby(20, 6);
    let p = at_seven(&f, &hosts, &Busy::default());
    assert_eq!(creates(&p).len(), 8);
    assert_eq!(activations(&p), vec!["h3"]);
}

#[test]
fn a_class_in_backoff_wakes_no_standby_host() {
    let (f, hosts) = two_active_and_a_standby(20, 100);
    let now = monday("07:00");
    let busy = backing_off(
        "office",
        now + SignedDuration::from_secs(60),
        "clone failed",
    );
    let p = at_seven(&f, &hosts, &busy);
    assert!(creates(&p).is_empty());
    assert_eq!(activations(&p), Vec::<&str>::new(), "{:?}", p.actions);
}

#[test]
fn a_seed_copy_under_way_wakes_no_standby_host() {
    let (f, mut hosts) = two_active_and_a_standby(20, 100);
    // Both active hosts are still copying office's seed.
    for h in hosts.iter_mut().take(2) {
        h.seed_copies = vec![seed("office", "v2", false)];
    }
    let busy = Busy {
        seed_copies: ["h1", "h2"]
            .into_iter()
            .map(|h| (h.to_string(), "office".to_string(), "v2".to_string()))
            .collect(),
        ..Busy::default()
    };
    let p = at_seven(&f, &hosts, &busy);
    assert!(creates(&p).is_empty());
    assert_eq!(activations(&p), Vec::<&str>::new(), "{:?}", p.actions);
}
