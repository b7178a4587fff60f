//! The engine tells its demand model what the simulator tells it: logouts with their time, so
//! a mass logout orders its users' desktops at once, by the same rule
//! (`DemandModel::plan_mean_for`).

use super::tests::{acting_jobs, assigned_to, at, connected_engine, creates};
use super::*;

/// One predictive class `office` at 0.99 (floor 1), one host of 200 desktops, wide pacing.
fn predictive_fleet() -> Fleet {
    let text = "[engine]\ntick_secs = 1\nresync_secs = 1\ncreation_pool_path = \"/deskpool-test\"\n\n\
        [[hosts]]\nname = \"h1\"\nuri = \"test:///h1.xml\"\ncapacity = { desktops = 200 }\n\n\
        [[classes]]\nname = \"office\"\nmemory_mib = 1024\nvcpus = 1\ndisk_gib = 10\n\
        seed = { pool = \"seeds\", volume = \"office.qcow2\", version = \"v1\" }\n\n\
        [classes.policy]\ncap = 100\nbuffer = { floor = 1, ceiling = 100 }\n\
        predictive = { service_level = 0.99 }\non_logout = \"delete\"\nready_secs = 80\n\
        scale_down_delay_secs = 0\npacing = { clones_per_host = 100, boots_per_host = 100 }\n";
    deskpool_config::parse_str(text, std::path::Path::new("test.toml"))
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"))
}

/// Logs out the users of `desktops` (each release's label written), from `start` seconds on;
/// returns the creations the engine started meanwhile.
fn log_out(state: &mut EngineState, desktops: &[ObservedDesktop], start: f64) -> usize {
    let mut created = 0;
    for (i, held) in desktops.iter().enumerate() {
        let now = start + i as f64 * 0.01;
        let effects = state.apply(
            at(now),
            Input::Command {
                id: RequestId(100 + i as u64),
                command: Command::Release {
                    desktop: held.name.clone(),
                },
                actor: "test".into(),
            },
        );
        let job_id = acting_jobs(&effects)
            .into_iter()
            .find_map(|(id, job)| match job {
                Job::Relabel { desktop, .. } if desktop.name == held.name => Some(id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no relabel of {}: {effects:?}", held.name));
        created += creates(&effects).len();
        let mut retired = held.clone();
        retired.meta.pool = PoolState::Retired;
        let effects = state.apply(
            at(now + 0.005),
            Input::JobDone {
                job_id,
                outcome: Outcome::Desktop {
                    desktop: retired,
                    event: None,
                },
            },
        );
        created += creates(&effects).len();
    }
    created
}

#[test]
fn a_mass_logout_orders_its_users_desktops_at_once() {
    let held: Vec<ObservedDesktop> = (0..30)
        .map(|i| assigned_to(&format!("dp-office-00000000{i:02}"), &format!("user{i}")))
        .collect();
    let (mut state, _) = connected_engine(predictive_fleet(), Settings::default(), held.clone());
    // Steady before: the buffer of one ready desktop is being made.
    let before = creates(&state.apply(at(1.0), Input::Tick)).len();
    assert!(before <= 5, "{before} creations before the logouts");
    // All 30 log out within a second: their desktops are ordered at the next pass.
    let during = log_out(&mut state, &held, 2.0);
    let after = during + creates(&state.apply(at(3.0), Input::Tick)).len();
    assert!(
        after >= 30,
        "{after} creations after 30 users logged out at once"
    );
}
