//! Disconnects: the desktop is labelled disconnected and kept for its user through the class's
//! grace, given back on their reconnect, and recycled as at a logout once the grace is over.

use super::tests::{
    BASE_SECS, acting_jobs, answers, assign, assigned_to, at, connected_engine, desktop_done, fleet,
};
use super::*;

const DESKTOP: &str = "dp-office-0000000003";

fn with_grace(grace: u64) -> Fleet {
    let mut f = fleet(&["h1"], 0, "");
    f.classes[0].policy.disconnect_grace_secs = grace;
    f
}

fn disconnect(id: u64) -> Input {
    Input::Command {
        id: RequestId(id),
        command: Command::Disconnect {
            desktop: DESKTOP.into(),
        },
        actor: "broker".into(),
    }
}

/// The one relabel among `effects`: its job and the desktop as the host would then hold it.
fn relabel(effects: &[Effect]) -> (JobId, ObservedDesktop) {
    match acting_jobs(effects)[..] {
        [
            (
                id,
                Job::Relabel {
                    desktop,
                    pool,
                    user,
                    ..
                },
            ),
        ] => {
            let mut labelled = desktop.clone();
            labelled.meta.pool = *pool;
            labelled.meta.user = user.clone();
            (id, labelled)
        }
        ref other => panic!("one relabel expected: {other:?}"),
    }
}

fn disconnected_since(changed_at: i64) -> ObservedDesktop {
    let mut d = assigned_to(DESKTOP, "dave");
    d.meta.pool = PoolState::Disconnected;
    d.meta.changed_at = changed_at;
    d
}

#[test]
fn a_disconnect_keeps_the_desktop_for_its_user_who_gets_it_back_at_once() {
    let held = assigned_to(DESKTOP, "dave");
    let (mut state, _) = connected_engine(with_grace(300), Settings::default(), vec![held]);
    let effects = state.apply(at(1.0), disconnect(5));
    let (job_id, labelled) = relabel(&effects);
    assert_eq!(labelled.meta.pool, PoolState::Disconnected);
    assert_eq!(labelled.meta.user.as_deref(), Some("dave"), "still dave's");
    assert!(
        answers(&effects).is_empty(),
        "answered once the label is on the host"
    );
    let effects = desktop_done(&mut state, 1.2, job_id, labelled);
    assert!(
        matches!(answers(&effects)[..], [(RequestId(5), Ok(Reply::Done))]),
        "{effects:?}"
    );
    // Not a logout: nothing is owed, nothing made (the buffer target is 0).
    assert!(acting_jobs(&effects).is_empty(), "{effects:?}");
    assert_eq!(state.ledger.owed_for_plan().get("office"), None);
    // A repeated disconnect gets the same answer at once.
    let effects = state.apply(at(1.5), disconnect(6));
    assert!(
        matches!(answers(&effects)[..], [(RequestId(6), Ok(Reply::Done))]),
        "{effects:?}"
    );

    // Dave reconnects: his own desktop is checked, labelled production again, handed back.
    let effects = state.apply(at(60.0), assign(7, "dave", 0));
    let (job_id, desktop) = match acting_jobs(&effects)[..] {
        [(id, Job::Reclaim { desktop, .. })] => (id, desktop.clone()),
        ref other => panic!("dave's desktop given back expected: {other:?}"),
    };
    assert_eq!(desktop.name, DESKTOP);
    let mut in_use = desktop;
    in_use.meta.pool = PoolState::Production;
    let effects = state.apply(
        at(60.2),
        Input::JobDone {
            job_id,
            outcome: Outcome::Assigned {
                desktop: in_use,
                display: None,
                address: None,
            },
        },
    );
    match answers(&effects)[..] {
        [
            (
                RequestId(7),
                Ok(Reply::Assigned {
                    desktop, waited_ms, ..
                }),
            ),
        ] => {
            assert_eq!((desktop.as_str(), *waited_ms), (DESKTOP, 0));
        }
        ref other => panic!("dave's desktop expected: {other:?}"),
    }
    let stats = state.ledger.stats("office");
    assert_eq!((stats.served, stats.instant), (1, 1), "an instant login");
}

#[test]
fn a_disconnected_desktop_read_from_its_host_is_released_as_a_logout_when_its_grace_ends() {
    // The label a restarted engine reads: disconnected 10 s before the start, grace 60 s.
    let (mut state, _) = connected_engine(
        with_grace(60),
        Settings::default(),
        vec![disconnected_since(BASE_SECS - 10)],
    );
    let effects = state.apply(at(49.0), Input::Tick);
    assert!(acting_jobs(&effects).is_empty(), "grace left: {effects:?}");
    let effects = state.apply(at(50.0), Input::Tick);
    let (job_id, labelled) = relabel(&effects);
    assert_eq!(labelled.meta.pool, PoolState::Retired);
    let event = acting_jobs(&effects).iter().find_map(|(_, j)| match j {
        Job::Relabel { event, .. } => event.clone(),
        _ => None,
    });
    assert!(
        matches!(&event, Some((EventKind::Released, m)) if m.contains("did not reconnect within 60s")),
        "{event:?}"
    );
    let effects = desktop_done(&mut state, 50.2, job_id, labelled);
    // A logout of a class that recycles: a fresh desktop is owed and made.
    assert!(
        acting_jobs(&effects)
            .iter()
            .any(|(_, j)| matches!(j, Job::Create { .. })),
        "{effects:?}"
    );
    // Dave comes back too late: no desktop of his any more, and none ready.
    let effects = state.apply(at(51.0), assign(8, "dave", 0));
    assert!(
        !acting_jobs(&effects)
            .iter()
            .any(|(_, j)| matches!(j, Job::Reclaim { .. })),
        "{effects:?}"
    );
}

#[test]
fn without_a_grace_a_disconnect_is_a_logout() {
    let held = assigned_to(DESKTOP, "dave");
    let (mut state, _) = connected_engine(with_grace(0), Settings::default(), vec![held]);
    let effects = state.apply(at(1.0), disconnect(5));
    let (job_id, labelled) = relabel(&effects);
    assert_eq!(labelled.meta.pool, PoolState::Retired);
    let effects = desktop_done(&mut state, 1.2, job_id, labelled);
    assert!(
        matches!(answers(&effects)[..], [(RequestId(5), Ok(Reply::Done))]),
        "{effects:?}"
    );
    assert!(
        acting_jobs(&effects)
            .iter()
            .any(|(_, j)| matches!(j, Job::Create { .. })),
        "the logout's replacement: {effects:?}"
    );
}

#[test]
fn a_logout_of_a_disconnected_desktop_retires_it() {
    let (mut state, _) = connected_engine(
        with_grace(300),
        Settings::default(),
        vec![disconnected_since(BASE_SECS)],
    );
    let effects = state.apply(
        at(1.0),
        Input::Command {
            id: RequestId(9),
            command: Command::Release {
                desktop: DESKTOP.into(),
            },
            actor: "broker".into(),
        },
    );
    let (_, labelled) = relabel(&effects);
    assert_eq!(labelled.meta.pool, PoolState::Retired);
}
