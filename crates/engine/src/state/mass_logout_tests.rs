//! A mass logout in a class with a disconnect grace: the engine keeps its users' desktops for
//! them as at a disconnect, the wave's first logouts (made before it was recognised) too, by
//! the ledger's rule (`ledger::settling`, `ledger::kept_after_mass_logout`). A plain logout's
//! desktop is never given back, and is destroyed once it no longer settles.

use super::tests::{
    acting_jobs, assign, assigned_to, at, buffered, connected_engine, desktop_done, fleet,
};
use super::*;

fn with_grace(grace: u64) -> Fleet {
    with_grace_and_buffer(grace, 0)
}

fn with_grace_and_buffer(grace: u64, buffer: u32) -> Fleet {
    let mut f = fleet(&["h1"], buffer, "");
    f.classes[0].policy.disconnect_grace_secs = grace;
    f
}

fn release(id: u64, desktop: &str) -> Input {
    Input::Command {
        id: RequestId(id),
        command: Command::Release {
            desktop: desktop.into(),
        },
        actor: "broker".into(),
    }
}

/// The relabels among `effects`: job, and the desktop as the host then holds it.
fn relabels(effects: &[Effect]) -> Vec<(JobId, ObservedDesktop)> {
    acting_jobs(effects)
        .into_iter()
        .filter_map(|(id, job)| match job {
            Job::Relabel {
                desktop,
                pool,
                user,
                now,
                ..
            } => {
                let mut labelled = desktop.clone();
                labelled.meta.pool = *pool;
                labelled.meta.user = user.clone();
                labelled.meta.changed_at = *now;
                Some((id, labelled))
            }
            _ => None,
        })
        .collect()
}

/// Completes the relabels among `effects` at `secs`, and those they start in turn; returns
/// the desktops as labelled, by name.
fn settle(
    state: &mut EngineState,
    secs: f64,
    effects: &[Effect],
) -> HashMap<String, ObservedDesktop> {
    let mut labelled = HashMap::new();
    let mut pending = relabels(effects);
    while let Some((job_id, desktop)) = pending.pop() {
        labelled.insert(desktop.name.clone(), desktop.clone());
        let effects = desktop_done(state, secs, job_id, desktop);
        pending.extend(relabels(&effects));
    }
    labelled
}

fn destroyed(effects: &[Effect]) -> Vec<String> {
    acting_jobs(effects)
        .into_iter()
        .filter_map(|(_, job)| match job {
            Job::Destroy(crate::jobs::Removal { desktop, .. }) => Some(desktop.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_mass_logout_keeps_every_desktop_of_the_wave_for_its_user() {
    let names: Vec<String> = (0..20)
        .map(|i| format!("dp-office-00000000{i:02}"))
        .collect();
    let held: Vec<ObservedDesktop> = names
        .iter()
        .enumerate()
        .map(|(i, n)| assigned_to(n, &format!("user{i}")))
        .collect();
    let (mut state, _) = connected_engine(with_grace(300), Settings::default(), held);
    // All 20 log out within a second, each label written before the next request.
    let mut labelled = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let now = 1.0 + i as f64 * 0.02;
        let effects = state.apply(at(now), release(100 + i as u64, name));
        labelled.extend(settle(&mut state, now + 0.01, &effects));
    }
    // The first logouts were retired before the wave was recognised; the wave kept them all.
    for (i, name) in names.iter().enumerate() {
        let d = &state.desktops[name].value;
        assert_eq!(
            (d.meta.pool, d.meta.user.as_deref()),
            (PoolState::Disconnected, Some(format!("user{i}").as_str())),
            "{name} after the mass logout"
        );
    }
    assert!(labelled.len() >= 20, "{labelled:?}");
    // Kept, not destroyed, past the settling minute.
    let effects = state.apply(at(100.0), Input::Tick);
    assert!(destroyed(&effects).is_empty(), "{effects:?}");
    // Their grace over, they are released for good (and not kept again).
    let effects = state.apply(at(400.0), Input::Tick);
    let retired = settle(&mut state, 400.1, &effects);
    assert_eq!(retired.len(), 20, "{retired:?}");
    assert!(
        retired
            .values()
            .all(|d| d.meta.pool == PoolState::Retired && d.meta.user.is_none()),
        "{retired:?}"
    );
}

#[test]
fn a_plain_logout_is_never_given_back_and_is_destroyed_once_it_no_longer_settles() {
    let name = "dp-office-0000000001";
    let (mut state, _) = connected_engine(
        with_grace(300),
        Settings::default(),
        vec![assigned_to(name, "ann")],
    );
    let effects = state.apply(at(1.0), release(5, name));
    let labelled = settle(&mut state, 1.1, &effects);
    let d = &labelled[name];
    assert_eq!(
        (d.meta.pool, d.meta.user.as_deref()),
        (PoolState::Retired, Some("ann")),
        "retired, with its user's name while it settles"
    );
    // Within the settling minute it stays; after it, the pass destroys it.
    let effects = state.apply(at(30.0), Input::Tick);
    assert!(
        !destroyed(&effects).contains(&name.to_string()),
        "{effects:?}"
    );
    let settled_at = 1 + deskpool_core::ledger::LOGOUT_SETTLE_SECS;
    let effects = state.apply(at(settled_at as f64 + 1.0), Input::Tick);
    assert_eq!(destroyed(&effects), vec![name.to_string()], "{effects:?}");
}

#[test]
fn a_user_with_a_desktop_again_keeps_that_one_when_the_wave_is_recognised() {
    let mut desktops: Vec<ObservedDesktop> = (0..6)
        .map(|i| assigned_to(&format!("dp-office-00000000{i:02}"), &format!("user{i}")))
        .collect();
    desktops.push(buffered("dp-office-0000000099", "h1"));
    let (mut state, _) =
        connected_engine(with_grace_and_buffer(300, 1), Settings::default(), desktops);
    // user0 logs out and straight back in: a fresh desktop from the buffer.
    let effects = state.apply(at(1.0), release(100, "dp-office-0000000000"));
    settle(&mut state, 1.01, &effects);
    let effects = state.apply(at(1.05), assign(101, "user0", 0));
    let job_id = acting_jobs(&effects)
        .into_iter()
        .find_map(|(id, job)| matches!(job, Job::Assign { .. }).then_some(id))
        .unwrap_or_else(|| panic!("an assign job: {effects:?}"));
    let outcome = Outcome::Assigned {
        desktop: assigned_to("dp-office-0000000099", "user0"),
        display: None,
        address: None,
    };
    state.apply(at(1.1), Input::JobDone { job_id, outcome });
    // The others log out: with user0's logout the wave is a mass logout.
    for i in 1u32..6 {
        let now = 1.2 + f64::from(i) * 0.02;
        let effects = state.apply(
            at(now),
            release(100 + u64::from(i), &format!("dp-office-00000000{i:02}")),
        );
        settle(&mut state, now + 0.01, &effects);
    }
    let pool = |name: &str| state.desktops[name].value.meta.pool;
    assert_eq!(pool("dp-office-0000000001"), PoolState::Disconnected);
    assert_eq!(
        pool("dp-office-0000000000"),
        PoolState::Retired,
        "user0 holds dp-office-0000000099 again; the old one is not kept for them too"
    );
    assert_eq!(pool("dp-office-0000000099"), PoolState::Production);
}
