//! The simulator and the engine hand out desktops by one ledger: one short trace, replayed
//! through `simulate` and through the real engine on libvirt's test driver, gives the same
//! sequence of (user, class, instant / waited / refused).
//!
//! The engine side is driven step by step, each step waiting for a condition with a deadline:
//! the engine is paused while the buffer runs dry (so nothing is made behind the test's back),
//! a login with a short wait is refused when its wait runs out, and resuming serves the login
//! that waited.

mod common;

use common::*;
use deskpool_api::EngineHandle;
use deskpool_api::{Command, Reply};
use deskpool_sim::{HandOut, LoginOutcome, SimOptions, simulate_with_hand_outs, trace};

const TRACE: &str = "time,user,class,event
2026-01-05T08:00:00Z,ann,office,login
2026-01-05T08:00:00Z,bob,office,login
2026-01-05T08:00:00Z,cat,office,login
2026-01-05T08:00:00Z,dan,dev,login
2026-01-05T08:00:00Z,eve,dev,login
2026-01-05T08:00:30Z,eve,dev,logout
2026-01-05T08:05:00Z,ann,office,logout
2026-01-05T08:10:00Z,fay,office,login
";

fn bed() -> Bed {
    let toml = format!(
        "{ENGINE_TOML}{}{}{}",
        host_toml("h1", 20, false, ""),
        class_toml("office", 2, ""),
        class_toml("dev", 1, "")
    );
    Bed::new(&["h1"], &["office", "dev"], &toml)
}

fn hand_out(user: &str, class: &str, outcome: LoginOutcome) -> HandOut {
    HandOut {
        user: user.into(),
        class: class.into(),
        outcome,
    }
}

/// Asks for a desktop and tells what the login got, from the engine's login counts.
async fn login(engine: &mut EngineHandle, user: &str, class: &str, wait_secs: u64) -> HandOut {
    let before = class_of(engine, class);
    let result = engine
        .commander()
        .send(
            Command::Assign {
                class: class.into(),
                user: user.into(),
                wait_secs,
            },
            "test",
        )
        .await;
    outcome_of(engine, user, class, before, result.is_ok()).await
}

fn class_of(engine: &EngineHandle, class: &str) -> deskpool_api::LoginStatsView {
    common::class(&engine.snapshot.borrow(), class)
        .logins
        .clone()
}

async fn outcome_of(
    engine: &mut EngineHandle,
    user: &str,
    class: &str,
    before: deskpool_api::LoginStatsView,
    served: bool,
) -> HandOut {
    if !served {
        return hand_out(user, class, LoginOutcome::Refused);
    }
    let s = wait(engine, "the login counted", |s| {
        common::class(s, class).logins.served > before.served
    })
    .await;
    let instant = common::class(&s, class).logins.instant > before.instant;
    let outcome = if instant {
        LoginOutcome::Instant
    } else {
        LoginOutcome::Waited
    };
    hand_out(user, class, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_and_the_engine_hand_out_alike() {
    let bed = bed();
    let events = trace::parse(TRACE, &bed.fleet).unwrap();
    let opts = SimOptions {
        max_wait_secs: 300,
        ..SimOptions::default()
    };
    let (_, simulated) = simulate_with_hand_outs(&bed.fleet, &events, &opts);

    let mut engine = bed.start();
    wait(&mut engine, "full buffers", |s| {
        s.steady && class(s, "office").plan.buffer == 2 && class(s, "dev").plan.buffer == 1
    })
    .await;
    let commander = engine.commander();
    commander.send(Command::Pause, "test").await.unwrap();
    let mut seen = vec![
        login(&mut engine, "ann", "office", 120).await,
        login(&mut engine, "bob", "office", 120).await,
    ];
    // The office buffer is dry and the engine makes nothing while paused: cat waits.
    let cat_before = class_of(&engine, "office");
    let cat = tokio::spawn({
        let commander = engine.commander();
        async move {
            commander
                .send(
                    Command::Assign {
                        class: "office".into(),
                        user: "cat".into(),
                        wait_secs: 120,
                    },
                    "test",
                )
                .await
        }
    });
    wait(&mut engine, "cat waiting", |s| {
        class(s, "office").logins.waiting == 1
    })
    .await;
    seen.push(login(&mut engine, "dan", "dev", 120).await);
    // eve gives up (a wait of 1 s) before any dev desktop is made.
    seen.push(login(&mut engine, "eve", "dev", 1).await);
    commander.send(Command::Resume, "test").await.unwrap();
    let cat_result = tokio::time::timeout(DEADLINE, cat).await.unwrap().unwrap();
    seen.push(outcome_of(&mut engine, "cat", "office", cat_before, cat_result.is_ok()).await);
    let ann_desktop = engine
        .snapshot
        .borrow()
        .desktops
        .iter()
        .find(|d| d.meta.user.as_deref() == Some("ann"))
        .map(|d| d.name.clone())
        .expect("ann's desktop");
    let released = commander
        .send(
            Command::Release {
                desktop: ann_desktop,
            },
            "test",
        )
        .await;
    assert_eq!(released, Ok(Reply::Done));
    wait(&mut engine, "the office buffer refilled", |s| {
        s.steady && class(s, "office").plan.buffer == 2
    })
    .await;
    seen.push(login(&mut engine, "fay", "office", 120).await);

    use LoginOutcome::*;
    let expected = vec![
        hand_out("ann", "office", Instant),
        hand_out("bob", "office", Instant),
        hand_out("dan", "dev", Instant),
        hand_out("eve", "dev", Refused),
        hand_out("cat", "office", Waited),
        hand_out("fay", "office", Instant),
    ];
    assert_eq!(simulated, expected, "the simulator");
    assert_eq!(seen, expected, "the engine");
    engine.shutdown().await;
}

/// Six office users with no buffer at all, all logged out within a second, back a minute later.
const MASS_LOGOUT_TRACE: &str = "time,user,class,event
2026-01-05T08:00:00Z,u0,office,login
2026-01-05T08:00:00Z,u1,office,login
2026-01-05T08:00:00Z,u2,office,login
2026-01-05T08:00:00Z,u3,office,login
2026-01-05T08:00:00Z,u4,office,login
2026-01-05T08:00:00Z,u5,office,login
2026-01-05T09:00:00Z,u0,office,logout
2026-01-05T09:00:00Z,u1,office,logout
2026-01-05T09:00:00Z,u2,office,logout
2026-01-05T09:00:00Z,u3,office,logout
2026-01-05T09:00:00Z,u4,office,logout
2026-01-05T09:00:00Z,u5,office,logout
2026-01-05T09:01:00Z,u0,office,login
2026-01-05T09:01:00Z,u1,office,login
2026-01-05T09:01:00Z,u2,office,login
2026-01-05T09:01:00Z,u3,office,login
2026-01-05T09:01:00Z,u4,office,login
2026-01-05T09:01:00Z,u5,office,login
2026-01-05T17:00:00Z,u0,office,logout
";

/// A mass logout in a class with a disconnect grace: the simulator and the engine both keep
/// every desktop of the wave for its user (the first logouts, made before the wave was
/// recognised, included), so each reconnect is instant (with no buffer, only a kept desktop can
/// serve it at once), and in the engine it is the user's own desktop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_logout_is_kept_for_its_users_alike_in_the_simulator_and_the_engine() {
    let toml = format!(
        "{ENGINE_TOML}{}{}",
        host_toml("h1", 20, false, ""),
        class_toml("office", 0, "disconnect_grace_secs = 300")
    );
    let bed = Bed::new(&["h1"], &["office"], &toml);
    let events = trace::parse(MASS_LOGOUT_TRACE, &bed.fleet).unwrap();
    let (_, simulated) = simulate_with_hand_outs(&bed.fleet, &events, &SimOptions::default());
    let users: Vec<String> = (0..6).map(|u| format!("u{u}")).collect();

    let mut engine = bed.start();
    wait(&mut engine, "the hosts read", |s| s.steady).await;
    // The morning's logins, only to hand each user a desktop (with no buffer they wait, but a
    // desktop owed to one may serve another first: their outcomes are not compared).
    for user in &users {
        login(&mut engine, user, "office", 120).await;
    }
    let mut seen = Vec::new();
    let desktop_of = |engine: &EngineHandle, user: &str| {
        engine
            .snapshot
            .borrow()
            .desktops
            .iter()
            .find(|d| d.meta.user.as_deref() == Some(user))
            .map(|d| d.name.clone())
            .unwrap_or_else(|| panic!("{user}'s desktop"))
    };
    let before: Vec<String> = users.iter().map(|u| desktop_of(&engine, u)).collect();
    let commander = engine.commander();
    for desktop in &before {
        let released = commander
            .send(
                Command::Release {
                    desktop: desktop.clone(),
                },
                "broker",
            )
            .await;
        assert_eq!(released, Ok(Reply::Done), "release of {desktop}");
    }
    wait(&mut engine, "all six kept for their users", |s| {
        before.iter().all(|name| {
            s.desktops.iter().any(|d| {
                &d.name == name && d.meta.pool == deskpool_api::PoolStateView::Disconnected
            })
        })
    })
    .await;
    for (user, own) in users.iter().zip(&before) {
        let counts = class_of(&engine, "office");
        let reply = commander
            .send(
                Command::Assign {
                    class: "office".into(),
                    user: user.clone(),
                    wait_secs: 120,
                },
                "broker",
            )
            .await;
        match &reply {
            Ok(Reply::Assigned { desktop, .. }) => assert_eq!(desktop, own, "{user}'s own"),
            other => panic!("{user}: {other:?}"),
        }
        seen.push(outcome_of(&mut engine, user, "office", counts, true).await);
    }

    let expected: Vec<HandOut> = users
        .iter()
        .map(|u| hand_out(u, "office", LoginOutcome::Instant))
        .collect();
    assert_eq!(simulated[6..], expected, "the simulator's reconnects");
    assert_eq!(seen, expected, "the engine's reconnects");
    engine.shutdown().await;
}
