//! The election against a real etcd (Debian's etcd-server, started privately on free ports).

use std::time::{Duration, Instant};

use deskpool_core::leadership::{Leadership, Role};
use deskpool_core::policy::ha::HaSettings;
use deskpool_ha::Election;
use deskpool_ha::local_etcd::LocalEtcd;
use tokio::sync::watch;

fn settings(etcd: &LocalEtcd, name: &str, ttl: u64) -> HaSettings {
    HaSettings {
        etcd: vec![etcd.endpoint()],
        name: name.into(),
        advertise: Some(format!("https://{name}:8443")),
        election: "deskpool-test".into(),
        lease_ttl_secs: ttl,
    }
}

/// Waits until `ok` holds for the latest leadership, or fails after `limit`.
async fn until(
    rx: &mut watch::Receiver<Leadership>,
    limit: Duration,
    what: &str,
    ok: impl Fn(&Leadership) -> bool,
) -> Leadership {
    let seen = tokio::time::timeout(limit, rx.wait_for(|l| ok(l)))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|l| l.clone());
    seen.unwrap_or_else(|| panic!("{what} within {limit:?}; last seen {:?}", *rx.borrow()))
}

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn one_leads_the_other_follows_and_takes_over_when_the_leader_steps_down() {
    let etcd = LocalEtcd::start().expect("a local etcd starts");
    let a = Election::start(settings(&etcd, "a", 3));
    let mut a_rx = a.leadership.clone();
    let led = until(&mut a_rx, LIMIT, "a leads", |l| l.role == Role::Leader).await;
    assert!(led.term > 0);
    assert!(led.may_act(Instant::now()));

    let b = Election::start(settings(&etcd, "b", 3));
    let mut b_rx = b.leadership.clone();
    let follows = until(&mut b_rx, LIMIT, "b follows a", |l| {
        l.role == Role::Follower && l.leader.as_ref().is_some_and(|x| x.name == "a")
    })
    .await;
    assert_eq!(
        follows.term, led.term,
        "the follower knows the leader's term"
    );
    assert!(!follows.may_act(Instant::now()));
    assert!(
        follows.not_leading().contains("https://a:8443"),
        "{}",
        follows.not_leading()
    );
    until(&mut b_rx, LIMIT, "b lists both controllers", |l| {
        l.controllers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            == ["a", "b"]
    })
    .await;

    a.step_down().await;
    let took = until(&mut b_rx, LIMIT, "b takes over", |l| l.role == Role::Leader).await;
    assert!(took.term > led.term, "a new election has a higher term");
    b.step_down().await;
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_and_a_new_one_is_elected_when_etcd_returns() {
    let mut etcd = LocalEtcd::start().expect("a local etcd starts");
    let a = Election::start(settings(&etcd, "a", 3));
    let mut a_rx = a.leadership.clone();
    let led = until(&mut a_rx, LIMIT, "a leads", |l| l.role == Role::Leader).await;

    etcd.stop();
    let lost = until(&mut a_rx, LIMIT, "a gives up the lead", |l| {
        l.role == Role::Lost
    })
    .await;
    assert!(!lost.may_act(Instant::now()));
    let why = lost.why.clone().unwrap_or_default();
    assert!(why.contains("etcd"), "the reason names etcd: {why}");

    etcd.resume().expect("etcd starts again");
    let again = until(&mut a_rx, LIMIT, "a leads again", |l| {
        l.role == Role::Leader
    })
    .await;
    assert!(again.term > led.term);
    a.step_down().await;
}
