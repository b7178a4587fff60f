//! The election's verdict in the state machine: a follower reads but changes nothing, a
//! leader acts and stamps its term, a leader that finds a newer term stops.

use super::*;
use deskpool_api::ErrorKind;
use deskpool_core::leadership::{ControllerInfo, Leadership, Role};

fn follower_of(leader: &str, term: u64) -> Leadership {
    Leadership {
        role: Role::Follower,
        controller: "b".into(),
        term,
        leader: Some(ControllerInfo {
            name: leader.into(),
            advertise: Some(format!("https://{leader}:8443")),
        }),
        ..Leadership::alone()
    }
}

fn leader(term: u64) -> Leadership {
    Leadership {
        role: Role::Leader,
        controller: "b".into(),
        term,
        leader: Some(ControllerInfo {
            name: "b".into(),
            advertise: None,
        }),
        held_until: Some(std::time::Instant::now() + Duration::from_secs(3600)),
        ..Leadership::alone()
    }
}

/// An engine told `verdict` before it starts, with h1 connected and empty.
fn engine_with(verdict: Leadership, buffer: u32) -> (EngineState, Vec<Effect>) {
    let mut state = engine(fleet(&["h1"], buffer, ""), Settings::default());
    state.apply(at(0.0), Input::Leadership(verdict));
    let effects = state.apply(at(0.0), Input::Started);
    let job_id = connect_job(&effects, "h1").expect("a follower still reads its hosts");
    let effects = state.apply(
        at(0.1),
        Input::JobDone {
            job_id,
            outcome: connected("h1", vec![]),
        },
    );
    (state, effects)
}

fn refusal(effects: &[Effect], id: u64) -> &CommandError {
    match answers(effects)
        .into_iter()
        .find(|(r, _)| *r == RequestId(id))
    {
        Some((_, Err(e))) => e,
        other => panic!("request {id} refused expected: {other:?} in {effects:?}"),
    }
}

#[test]
fn a_follower_reads_its_hosts_but_changes_nothing_and_names_the_leader() {
    let (mut state, effects) = engine_with(follower_of("a", 4), 2);
    assert!(acting_jobs(&effects).is_empty(), "{effects:?}");
    let snapshot = last_snapshot(&effects);
    assert_eq!(snapshot.leadership.role, Role::Follower);

    let effects = state.apply(at(1.0), assign(1, "alice", 30));
    let e = refusal(&effects, 1);
    assert_eq!(e.kind, ErrorKind::NotLeader);
    assert!(
        e.message
            .contains("the leader is a at https://a:8443 (term 4)"),
        "{e}"
    );
    let effects = state.apply(
        at(2.0),
        Input::Command {
            id: RequestId(2),
            command: Command::Pause,
            actor: "admin".into(),
        },
    );
    assert_eq!(refusal(&effects, 2).kind, ErrorKind::NotLeader);
    assert!(!state.paused, "a refused pause changes nothing");
}

#[test]
fn a_follower_that_is_elected_builds_the_buffer_under_its_term() {
    let (mut state, _) = engine_with(follower_of("a", 4), 2);
    let effects = state.apply(at(1.0), Input::Leadership(leader(6)));
    let terms: Vec<u64> = started_jobs(&effects)
        .into_iter()
        .filter_map(|(_, j)| match j {
            Job::Create { term, .. } => Some(*term),
            _ => None,
        })
        .collect();
    assert_eq!(terms, vec![6, 6], "{effects:?}");
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Event(ev)
            if ev.kind == EventKind::Leadership && ev.message.contains("leads (term 6)"))),
        "{effects:?}"
    );
}

#[test]
fn a_leader_that_loses_its_lease_turns_its_waiting_logins_to_the_next_leader() {
    let (mut state, _) = engine_with(leader(3), 0);
    // No desktop is ready: alice waits.
    let effects = state.apply(at(1.0), assign(1, "alice", 60));
    assert!(answers(&effects).is_empty(), "{effects:?}");
    let lost = Leadership {
        role: Role::Lost,
        controller: "b".into(),
        why: Some("etcd at http://127.0.0.1:1 cannot be reached".into()),
        ..Leadership::alone()
    };
    let effects = state.apply(at(2.0), Input::Leadership(lost));
    let e = refusal(&effects, 1);
    assert_eq!(e.kind, ErrorKind::NotLeader);
    assert!(e.message.contains("cannot be reached"), "{e}");
    assert!(acting_jobs(&effects).is_empty(), "{effects:?}");
}

#[test]
fn a_leader_that_finds_a_newer_term_on_a_host_stops_acting() {
    let mut state = engine(fleet(&["h1"], 3, ""), Settings::default());
    state.apply(at(0.0), Input::Leadership(leader(5)));
    let effects = state.apply(at(0.0), Input::Started);
    let job_id = connect_job(&effects, "h1").unwrap();
    let mut newer = buffered("dp-office-0000000009", "h1");
    newer.meta.term = 9;
    let effects = state.apply(
        at(0.1),
        Input::JobDone {
            job_id,
            outcome: connected("h1", vec![newer]),
        },
    );
    assert!(
        acting_jobs(&effects).is_empty(),
        "the buffer is short by 2 but another controller leads: {effects:?}"
    );
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Event(ev)
            if ev.kind == EventKind::Leadership && ev.message.contains("term 9, newer than this controller's 5"))),
        "{effects:?}"
    );
    let effects = state.apply(at(1.0), assign(1, "alice", 0));
    let e = refusal(&effects, 1);
    assert_eq!(e.kind, ErrorKind::NotLeader);
    assert!(e.message.contains("newer leader's term 9"), "{e}");

    // Elected again under a term at least as new: it acts again.
    let effects = state.apply(at(2.0), Input::Leadership(leader(10)));
    assert_eq!(creates(&effects).len(), 2, "{effects:?}");
}
