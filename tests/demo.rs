//! The demo day played against the real engine on the embedded default, in accelerated time.

mod common;

use std::sync::Arc;

use common::{DEADLINE, class};
use deskpool_api::Snapshot;

/// The office class's (production, buffer, buffer target), once the engine has planned.
fn office(s: &Snapshot) -> Option<(u32, u32, u32)> {
    let c = s.classes.iter().find(|c| c.plan.name == "office")?;
    Some((c.plan.production, c.plan.buffer, c.plan.buffer_target))
}
use deskpool::demo::day::demo_start;
use deskpool_core::clock::ScaledClock;
use deskpool_engine::run::{self, Connections, EngineOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_day_logs_users_in_through_the_engine_and_buffers_follow() {
    let state = tempfile::tempdir().unwrap();
    let (fleet, _) = deskpool::setup::demo_fleet(state.path()).unwrap();
    // A Monday at 06:30, an hour of demo time per real second.
    let clock = Arc::new(ScaledClock::new(
        demo_start(jiff::civil::Date::constant(2026, 1, 5)),
        3600,
    ));
    let mut engine = run::start(
        fleet,
        EngineOptions {
            clock: clock.clone(),
            read_only: false,
            paused: false,
            connections: Connections::new(),
            state_dir: Some(state.path().to_path_buf()),
            simulated_steps: Default::default(),
            leadership: None,
        },
    );
    tokio::spawn(deskpool::demo::drive(engine.commander(), clock));
    // The morning storm: most office users in production, their logins served and counted.
    let s = engine
        .wait_for(DEADLINE, |s| {
            office(s).is_some_and(|(production, _, _)| production >= 30)
        })
        .await
        .unwrap_or_else(|s| panic!("the morning never came:\n{}", deskpool::report::table(&s)));
    let office = class(&s, "office");
    assert!(office.logins.served >= 30, "{:?}", office.logins);
    assert!(
        office.demand.iter().sum::<u32>() > 0,
        "the logins show in the demand history"
    );
    // The buffer is refilled behind the logins.
    engine
        .wait_for(DEADLINE, |s| {
            class(s, "office").plan.buffer >= class(s, "office").plan.buffer_target.min(1)
        })
        .await
        .unwrap_or_else(|s| {
            panic!(
                "no buffer behind the storm:\n{}",
                deskpool::report::table(&s)
            )
        });
    engine.shutdown().await;
}
