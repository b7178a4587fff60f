//! Reloading the configuration: applied whole when it can be, refused whole when it cannot.

use super::*;

fn reload(
    state: &mut EngineState,
    secs: f64,
    fleet: Fleet,
) -> (Vec<Effect>, Result<String, String>) {
    let effects = state.apply(at(secs), Input::Reload(Ok(Box::new(fleet))));
    let outcome = state.take_reload_outcome().expect("a reload outcome");
    (effects, outcome)
}

fn event(effects: &[Effect], kind: EventKind) -> Option<&Event> {
    effects.iter().find_map(|e| match e {
        Effect::Event(ev) if ev.kind == kind => Some(ev),
        _ => None,
    })
}

#[test]
fn a_reloaded_policy_takes_effect_at_once_and_says_what_changed() {
    let ready = buffered("dp-office-0000000001", "h1");
    let (mut state, effects) =
        connected_engine(fleet(&["h1"], 1, ""), Settings::default(), vec![ready]);
    assert!(creates(&effects).is_empty(), "the buffer of 1 is full");

    let (effects, outcome) = reload(&mut state, 1.0, fleet(&["h1"], 3, ""));
    assert_eq!(outcome.as_deref(), Ok("class changed: office"));
    let told = event(&effects, EventKind::ConfigReloaded).expect("a config-reloaded event");
    assert!(
        told.message.contains("class changed: office"),
        "{}",
        told.message
    );
    assert_eq!(
        creates(&effects).len(),
        2,
        "the new buffer of 3 is filled: {effects:?}"
    );
}

#[test]
fn a_file_with_errors_is_refused_and_changes_nothing() {
    let ready = buffered("dp-office-0000000001", "h1");
    let (mut state, _) = connected_engine(fleet(&["h1"], 1, ""), Settings::default(), vec![ready]);
    let why = "config.toml:12:9: buffer.floor must be at most the cap".to_string();
    let effects = state.apply(at(1.0), Input::Reload(Err(why.clone())));
    let outcome = state.take_reload_outcome().expect("a reload outcome");
    assert_eq!(outcome, Err(why.clone()));
    let told = event(&effects, EventKind::ConfigRefused).expect("a config-refused event");
    assert!(told.message.contains(&why), "{}", told.message);
    assert!(
        told.message.contains("the running one is kept"),
        "{}",
        told.message
    );
    assert!(acting_jobs(&effects).is_empty(), "{effects:?}");
}

#[test]
fn a_change_that_takes_a_restart_refuses_the_whole_file() {
    let ready = buffered("dp-office-0000000001", "h1");
    let (mut state, _) = connected_engine(fleet(&["h1"], 1, ""), Settings::default(), vec![ready]);
    // A bigger buffer, and a creation pool elsewhere: the pool needs a restart, so neither applies.
    let mut new = fleet(&["h1"], 3, "");
    new.engine.creation_pool_path = "/elsewhere".into();
    let (effects, outcome) = reload(&mut state, 1.0, new);
    let why = outcome.expect_err("refused");
    assert!(why.contains("[engine] creation_pool_path changed"), "{why}");
    assert!(why.contains("restart"), "{why}");
    assert!(
        event(&effects, EventKind::ConfigRefused).is_some(),
        "{effects:?}"
    );
    assert!(
        creates(&effects).is_empty(),
        "the buffer stays at 1: {effects:?}"
    );
    let effects = state.apply(at(5.0), Input::Tick);
    assert!(creates(&effects).is_empty(), "still 1 later: {effects:?}");

    let mut new = fleet(&["h1"], 1, "");
    new.hosts[0].uri = "test:///other.xml".into();
    let (_, outcome) = reload(&mut state, 6.0, new);
    assert!(outcome.expect_err("refused").contains("the uri of host h1"));
}

#[test]
fn a_host_added_is_connected_and_one_removed_with_desktops_is_refused() {
    let ready = buffered("dp-office-0000000001", "h1");
    let (mut state, _) = connected_engine(fleet(&["h1"], 1, ""), Settings::default(), vec![ready]);
    let (effects, outcome) = reload(&mut state, 1.0, fleet(&["h1", "h2"], 1, ""));
    assert_eq!(outcome.as_deref(), Ok("host added: h2"));
    assert!(connect_job(&effects, "h2").is_some(), "{effects:?}");

    let (effects, outcome) = reload(&mut state, 2.0, fleet(&["h2"], 1, ""));
    let why = outcome.expect_err("h1 holds a desktop");
    assert!(
        why.contains("host h1 is removed but holds 1 desktop"),
        "{why}"
    );
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::DropConnection { host } if host == "h1")),
        "h1 stays connected: {effects:?}"
    );
}

#[test]
fn a_class_with_desktops_in_production_cannot_be_removed() {
    // A disconnected user's desktop (kept for their reconnect) counts as production.
    for pool in [PoolState::Production, PoolState::Disconnected] {
        let mut assigned = buffered("dp-office-0000000001", "h1");
        assigned.meta.pool = pool;
        assigned.meta.user = Some("alice".into());
        let mut with_grace = fleet(&["h1"], 1, "");
        with_grace.classes[0].policy.disconnect_grace_secs = 3600;
        let (mut state, _) = connected_engine(with_grace, Settings::default(), vec![assigned]);
        let mut new = fleet(&["h1"], 1, "");
        new.classes.clear();
        let (effects, outcome) = reload(&mut state, 1.0, new);
        let why = outcome.expect_err("alice is on an office desktop");
        assert!(
            why.contains("class office is removed but 1 of its desktops are in production"),
            "{pool:?}: {why}"
        );
        assert!(
            acting_jobs(&effects).is_empty(),
            "nothing destroyed: {effects:?}"
        );
    }
}

#[test]
fn the_same_file_again_changes_nothing() {
    let (mut state, _) = connected_engine(fleet(&["h1"], 1, ""), Settings::default(), vec![]);
    let (_, outcome) = reload(&mut state, 1.0, fleet(&["h1"], 1, ""));
    assert_eq!(outcome.as_deref(), Ok("nothing changed"));
}

#[test]
fn the_endpoint_address_and_tls_files_take_a_restart_and_its_tokens_do_not() {
    use deskpool_core::policy::access::{ClientToken, Scope, TlsFiles};
    let (mut state, _) = connected_engine(fleet(&["h1"], 1, ""), Settings::default(), vec![]);
    let mut new = fleet(&["h1"], 1, "");
    new.broker.listen = Some("127.0.0.1:8443".parse().unwrap());
    let (effects, outcome) = reload(&mut state, 1.0, new);
    let why = outcome.expect_err("refused");
    assert!(
        why.contains("[broker] listen changed, which takes a restart"),
        "{why}"
    );
    assert!(event(&effects, EventKind::ConfigRefused).is_some());

    let mut new = fleet(&["h1"], 1, "");
    new.broker.tls = Some(TlsFiles {
        cert: "/etc/deskpool/cert.pem".into(),
        key: "/etc/deskpool/key.pem".into(),
        client_ca: None,
    });
    let (_, outcome) = reload(&mut state, 2.0, new);
    assert!(
        outcome
            .expect_err("refused")
            .contains("tls_cert, tls_key or client_ca")
    );

    let mut new = fleet(&["h1"], 1, "");
    new.broker.tokens = vec![ClientToken {
        name: "gateway".into(),
        scope: Scope::Assign,
        sha256: "ab".repeat(32),
    }];
    let (_, outcome) = reload(&mut state, 3.0, new.clone());
    assert_eq!(outcome.as_deref(), Ok("[broker] tokens changed"));
    assert_eq!(state.fleet.broker.tokens, new.broker.tokens);
}

#[test]
fn joining_or_leaving_an_election_takes_a_restart() {
    use deskpool_core::policy::ha::HaSettings;
    let (mut state, _) = connected_engine(fleet(&["h1"], 1, ""), Settings::default(), vec![]);
    let mut new = fleet(&["h1"], 1, "");
    new.ha = Some(HaSettings {
        etcd: vec!["http://127.0.0.1:2379".into()],
        name: "a".into(),
        advertise: None,
        election: "deskpool".into(),
        lease_ttl_secs: 15,
    });
    let (effects, outcome) = reload(&mut state, 1.0, new);
    let why = outcome.expect_err("refused");
    assert!(why.contains("[ha] changed, which takes a restart"), "{why}");
    assert!(event(&effects, EventKind::ConfigRefused).is_some());
    assert!(state.fleet.ha.is_none(), "the running config is kept");
}
