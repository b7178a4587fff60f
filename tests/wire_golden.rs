//! The broker's wire format, pinned: each message below is serialised and compared with its file
//! in `tests/golden/`, so any change to the protocol (a renamed field, a new variant, another
//! spelling) is a visible diff in review. After a deliberate change, regenerate the files with
//! `DESKPOOL_UPDATE_GOLDEN=1 cargo nextest run --test wire_golden` and commit them with it.

use std::path::PathBuf;

use deskpool_api::{Command, CommandError, ErrorKind, Event, EventKind, Reply};
use deskpool_core::policy::Policy;
use jiff::Timestamp;
use serde_json::json;

fn at() -> Timestamp {
    "2026-12-02T08:00:00Z".parse().unwrap()
}

fn check(name: &str, json: String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let json = json + "\n";
    if std::env::var_os("DESKPOOL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &json).unwrap();
        return;
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate: see this file's header)",
            path.display()
        )
    });
    assert!(
        pinned == json,
        "the wire form of {name} changed; if on purpose, regenerate {} (see this file's \
         header).\n--- pinned\n{pinned}\n--- now\n{json}",
        path.display()
    );
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

#[test]
fn commands_keep_their_wire_form() {
    let policy: Policy = deskpool_config::demo_config(std::path::Path::new("/demo")).classes[0]
        .policy
        .clone();
    let commands = vec![
        Command::Pause,
        Command::Resume,
        Command::Refill {
            class: "office".into(),
        },
        Command::RaiseFloor {
            class: "office".into(),
            floor: 6,
            until: at(),
        },
        Command::DrainHost { host: "h1".into() },
        Command::UndrainHost { host: "h1".into() },
        Command::SetPolicy {
            class: "office".into(),
            policy: Box::new(policy),
        },
        Command::Assign {
            class: "office".into(),
            user: "alice".into(),
            wait_secs: 60,
        },
        Command::Release {
            desktop: "dp-office-m3k0c1x2ab".into(),
        },
        Command::Disconnect {
            desktop: "dp-office-m3k0c1x2ab".into(),
        },
        Command::Recycle {
            desktop: "dp-office-m3k0c1x2ab".into(),
        },
    ];
    check("commands", pretty(&commands));
    // And each reads back as itself.
    for c in commands {
        let text = serde_json::to_string(&c).unwrap();
        let back: Command = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c, "{text}");
    }
    // What a client may leave out, and what it may not add.
    let assign: Command =
        serde_json::from_str(r#"{"type":"assign","class":"office","user":"a"}"#).unwrap();
    assert!(matches!(assign, Command::Assign { wait_secs: 0, .. }));
    assert!(
        serde_json::from_str::<Command>(r#"{"type":"refill","class":"office","x":1}"#).is_err()
    );
}

#[test]
fn replies_and_refusals_keep_their_wire_form() {
    let replies = vec![
        Reply::Done,
        Reply::Assigned {
            desktop: "dp-office-m3k0c1x2ab".into(),
            host: "h1".into(),
            display: Some("vnc://10.0.0.5:5901".into()),
            address: Some("192.168.122.41".into()),
            display_password: Some("q7Tz0bKc".into()),
            waited_ms: 1200,
        },
    ];
    check("replies", pretty(&replies));
    let errors: Vec<CommandError> = [
        ErrorKind::NotFound,
        ErrorKind::Invalid,
        ErrorKind::Conflict,
        ErrorKind::Unavailable,
        ErrorKind::ReadOnly,
        ErrorKind::NotLeader,
    ]
    .into_iter()
    .map(|kind| CommandError::new(kind, "why, for people"))
    .collect();
    check("errors", pretty(&errors));
}

#[test]
fn events_keep_their_wire_form() {
    let kinds = [
        EventKind::Provisioned,
        EventKind::Assigned,
        EventKind::Released,
        EventKind::Destroyed,
        EventKind::Failed,
        EventKind::SeedCopied,
        EventKind::HostActivated,
        EventKind::HostDraining,
        EventKind::HostStandby,
        EventKind::HostDown,
        EventKind::HostUp,
        EventKind::PolicyChanged,
        EventKind::AdminAction,
        EventKind::LoginRefused,
        EventKind::SeedMissing,
        EventKind::ConfigReloaded,
        EventKind::ConfigRefused,
        EventKind::Disconnected,
        EventKind::Leadership,
    ];
    let events: Vec<Event> = kinds
        .into_iter()
        .map(|kind| Event {
            at: at(),
            kind,
            class: Some("office".into()),
            host: Some("h1".into()),
            desktop: None,
            message: "what happened".into(),
        })
        .collect();
    check("events", pretty(&events));
}

/// Fails to compile when an event kind is added and not listed above.
#[allow(dead_code)]
fn every_event_kind_is_pinned(kind: EventKind) {
    match kind {
        EventKind::Provisioned
        | EventKind::Assigned
        | EventKind::Released
        | EventKind::Destroyed
        | EventKind::Failed
        | EventKind::SeedCopied
        | EventKind::HostActivated
        | EventKind::HostDraining
        | EventKind::HostStandby
        | EventKind::HostDown
        | EventKind::HostUp
        | EventKind::PolicyChanged
        | EventKind::AdminAction
        | EventKind::LoginRefused
        | EventKind::SeedMissing
        | EventKind::ConfigReloaded
        | EventKind::ConfigRefused
        | EventKind::Disconnected
        | EventKind::Leadership => {}
    }
}

#[test]
fn a_snapshot_keeps_its_wire_form() {
    let fleet = deskpool_tui::sample::fleet(2, 2);
    let snapshot = deskpool_tui::sample::snapshot(&fleet, 6, at());
    check("snapshot", pretty(&snapshot));
}

/// One of each reason, host status and pool state of the core, so the golden files below pin
/// the wire form of every variant (the sample snapshot above shows only a few).
mod every_variant {
    use deskpool_core::model::{DesktopMeta, ObservedDesktop, PoolState};
    use deskpool_core::plan::{ClassPlan, HostStatus, Reason};

    pub fn reasons() -> Vec<Reason> {
        let hosts = || vec!["h1".to_string(), "h2".to_string()];
        let reasons = vec![
            Reason::InCreation { count: 4 },
            Reason::CapReached { cap: 60 },
            Reason::SurplusWaiting {
                count: 2,
                removed_in_secs: 240,
            },
            Reason::CreationFailing {
                retry_in_secs: 30,
                error: "no space left on device".into(),
            },
            Reason::PacingLimit { hosts: hosts() },
            Reason::SeedCopyInProgress { hosts: hosts() },
            Reason::SeedMissing {
                pool: "golden".into(),
                volume: "office.qcow2".into(),
                host: Some("h1".into()),
            },
            Reason::SeedMissing {
                pool: "golden".into(),
                volume: "office.qcow2".into(),
                host: None,
            },
            Reason::SeedCopyOrdered { hosts: hosts() },
            Reason::NoActiveHost { count: 3 },
            Reason::AtCapacity { hosts: hosts() },
            Reason::StaleReplaced { count: 1 },
            Reason::FloorRaised {
                floor: 8,
                ends_in_secs: 1800,
            },
            Reason::EnginePaused,
        ];
        // Fails to compile when a reason is added and not listed above.
        for r in &reasons {
            match r {
                Reason::InCreation { .. }
                | Reason::CapReached { .. }
                | Reason::SurplusWaiting { .. }
                | Reason::CreationFailing { .. }
                | Reason::PacingLimit { .. }
                | Reason::SeedCopyInProgress { .. }
                | Reason::SeedMissing { .. }
                | Reason::SeedCopyOrdered { .. }
                | Reason::NoActiveHost { .. }
                | Reason::AtCapacity { .. }
                | Reason::StaleReplaced { .. }
                | Reason::FloorRaised { .. }
                | Reason::EnginePaused => {}
            }
        }
        reasons
    }

    pub fn class_plans() -> Vec<ClassPlan> {
        vec![
            ClassPlan {
                name: "office".into(),
                production: 30,
                buffer: 5,
                creation: 4,
                production_target: 32,
                buffer_target: 8,
                total_target: 40,
                period: Some(1),
                stale: 2,
                reasons: reasons(),
                raised_floor: None,
            },
            ClassPlan {
                name: "dev".into(),
                production: 0,
                buffer: 2,
                creation: 0,
                production_target: 0,
                buffer_target: 2,
                total_target: 2,
                period: None,
                stale: 0,
                reasons: Vec::new(),
                raised_floor: None,
            },
        ]
    }

    pub fn host_statuses() -> Vec<HostStatus> {
        let statuses = vec![
            HostStatus::Active,
            HostStatus::Standby,
            HostStatus::Activating,
            HostStatus::Draining { by_admin: true },
            HostStatus::Draining { by_admin: false },
            HostStatus::Down {
                reason: "connection refused".into(),
            },
        ];
        // Fails to compile when a host status is added and not listed above.
        for s in &statuses {
            match s {
                HostStatus::Active
                | HostStatus::Standby
                | HostStatus::Activating
                | HostStatus::Draining { .. }
                | HostStatus::Down { .. } => {}
            }
        }
        statuses
    }

    pub fn desktops() -> Vec<ObservedDesktop> {
        let pools = [
            PoolState::Creation,
            PoolState::Buffer,
            PoolState::Production,
            PoolState::Disconnected,
            PoolState::Retired,
        ];
        // Fails to compile when a pool is added and not listed above.
        for p in pools {
            match p {
                PoolState::Creation
                | PoolState::Buffer
                | PoolState::Production
                | PoolState::Disconnected
                | PoolState::Retired => {}
            }
        }
        pools
            .into_iter()
            .enumerate()
            .map(|(i, pool)| ObservedDesktop {
                name: format!("dp-office-{i:010}"),
                host: "h1".into(),
                meta: DesktopMeta {
                    class: "office".into(),
                    pool,
                    seed_version: "2026.11".into(),
                    user: pool.is_assigned().then(|| "alice".to_string()),
                    created_at: 1_796_198_400 - i as i64,
                    changed_at: 1_796_198_400,
                    attempts: i as u32,
                    term: 0,
                },
                running: pool != PoolState::Creation,
                persistent: pool != PoolState::Retired,
                disk_problem: (pool == PoolState::Retired)
                    .then(|| "volume dp-office-0000000003.qcow2 is gone".to_string()),
            })
            .collect()
    }
}

/// Every variant the snapshot can carry, pinned (the core's values, converted as the engine
/// does); and what is read back is written again alike.
#[test]
fn every_variant_of_a_snapshot_keeps_its_wire_form() {
    use deskpool_api::{CapacityView, ClassStatus, HostState, SeedProgress, Snapshot};
    use deskpool_core::ledger::LoginStats;
    use deskpool_core::policy::Capacity;
    let logins = LoginStats {
        served: 12,
        instant: 9,
        waiting: 1,
        wait_secs_total: 7.5,
        wait_secs_max: 4.25,
        wait_le: vec![9, 9, 10, 10, 11, 12, 12, 12, 12, 12, 12],
        refused: 2,
        failures: 1,
    };
    let classes = every_variant::class_plans()
        .into_iter()
        .map(|plan| ClassStatus {
            plan: (&plan).into(),
            seed_version: "2026.11".into(),
            on_old_seed: 2,
            cap: 60,
            logins: (&logins).into(),
            demand: vec![0, 3, 5],
        })
        .collect();
    let hosts = every_variant::host_statuses()
        .into_iter()
        .enumerate()
        .map(|(i, status)| HostState {
            name: format!("h{}", i + 1),
            uri: format!("qemu+ssh://h{}/system", i + 1),
            retry_in_secs: matches!(status, deskpool_core::plan::HostStatus::Down { .. })
                .then_some(20),
            status: (&status).into(),
            standby: i == 1,
            desktops: i as u32,
            capacity: CapacityView::from(Capacity {
                desktops: Some(40),
                memory_mib: Some(262_144),
                vcpus: Some(64),
            }),
        })
        .collect();
    let snapshot = Snapshot {
        at: Some(at()),
        paused: true,
        read_only: true,
        passes: 7,
        classes,
        hosts,
        desktops: std::sync::Arc::new(
            every_variant::desktops()
                .into_iter()
                .map(|d| {
                    // Where users reach a desktop, once the engine has read it.
                    let reached = d.meta.pool == deskpool_core::model::PoolState::Production;
                    deskpool_api::DesktopView {
                        display: reached.then(|| "vnc://127.0.0.1:5901".to_string()),
                        address: reached.then(|| "192.168.122.41".to_string()),
                        ..d.into()
                    }
                })
                .collect(),
        ),
        seed_copies: vec![SeedProgress {
            host: "h2".into(),
            class: "office".into(),
            version: "2026.11".into(),
            done_bytes: 1 << 30,
            total_bytes: 3 << 30,
        }],
        jobs_in_flight: 5,
        steady: false,
        events_dropped: 3,
        leadership: deskpool_core::leadership::Leadership {
            role: deskpool_core::leadership::Role::Follower,
            controller: "ctl-b".into(),
            term: 41,
            leader: Some(deskpool_core::leadership::ControllerInfo {
                name: "ctl-a".into(),
                advertise: Some("https://ctl-a.example:8443".into()),
            }),
            controllers: vec![
                deskpool_core::leadership::ControllerInfo {
                    name: "ctl-a".into(),
                    advertise: Some("https://ctl-a.example:8443".into()),
                },
                deskpool_core::leadership::ControllerInfo {
                    name: "ctl-b".into(),
                    advertise: None,
                },
            ],
            why: None,
            held_until: None,
        },
        timings: {
            use deskpool_core::timings::{Step, StepTimings};
            let mut t = StepTimings::default();
            for (step, secs) in [
                (Step::Clone, 0.5),
                (Step::Boot, 1.25),
                (Step::Ready, 24.0),
                (Step::Whole, 25.75),
            ] {
                t.record("h1", "office", step, secs);
            }
            t.views()
        },
    };
    let json = pretty(&snapshot);
    check("snapshot_variants", json.clone());
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(pretty(&back), json, "a snapshot read back is written alike");
}

/// A dated event, as a policy with every option carries one.
fn training_event() -> deskpool_core::policy::Event {
    use deskpool_core::policy::{BufferRule, Event, TimeOfDay};
    Event {
        name: "training".into(),
        first_day: jiff::civil::date(2026, 1, 5),
        last_day: jiff::civil::date(2026, 1, 6),
        from: TimeOfDay(8 * 3600),
        to: TimeOfDay(9 * 3600),
        production: 50,
        buffer: BufferRule {
            floor: 20,
            percent: 0,
            ceiling: 60,
        },
    }
}

/// A policy with every option the sample command above leaves at its default.
#[test]
fn every_variant_of_a_policy_keeps_its_wire_form() {
    use deskpool_core::policy::{LogoutAction, Predictive, ShutoffAction};
    let mut policy: Policy = deskpool_config::demo_config(std::path::Path::new("/demo")).classes[0]
        .policy
        .clone();
    policy.on_logout = LogoutAction::Delete;
    policy.on_shutoff = ShutoffAction::Recycle;
    policy.predictive = Some(Predictive {
        service_level: 0.99,
    });
    policy.events = vec![training_event()];
    policy.disconnect_grace_secs = 300;
    // Fails to compile when an action is added and not pinned here or in commands.json.
    match policy.on_logout {
        LogoutAction::Recycle | LogoutAction::Delete => {}
    }
    match policy.on_shutoff {
        ShutoffAction::Restart | ShutoffAction::Recycle => {}
    }
    let command = Command::SetPolicy {
        class: "office".into(),
        policy: Box::new(policy),
    };
    let json = pretty(&command);
    check("policy_variants", json.clone());
    let back: Command = serde_json::from_str(&json).unwrap();
    assert_eq!(back, command);
}

/// The views say what the core's values say: each reason comes back as itself, reads and
/// explains alike, and a host status or pool is named as the core names it.
#[test]
fn the_views_agree_with_the_core() {
    use deskpool_api::{ClassPlanView, HostStatusView, PoolStateView, ReasonView};
    use deskpool_core::plan::Reason;
    for reason in every_variant::reasons() {
        let view = ReasonView::from(&reason);
        assert_eq!(Reason::from(&view), reason);
        assert_eq!(view.to_string(), reason.to_string());
    }
    for plan in every_variant::class_plans() {
        assert_eq!(ClassPlanView::from(&plan).explanation(), plan.explanation());
    }
    for status in every_variant::host_statuses() {
        assert_eq!(HostStatusView::from(&status).label(), status.label());
    }
    for desktop in every_variant::desktops() {
        let pool = desktop.meta.pool;
        assert_eq!(PoolStateView::from(pool).as_str(), pool.as_str());
    }
}

/// A policy comes back from its wire form as itself: the demo's, and one with every option
/// set away from its default.
#[test]
fn a_policy_survives_its_wire_form() {
    use deskpool_api::PolicyWire;
    use deskpool_core::policy::{LogoutAction, Predictive, ShutoffAction};
    let demo = deskpool_config::demo_config(std::path::Path::new("/demo"));
    let mut policies: Vec<Policy> = demo.classes.iter().map(|c| c.policy.clone()).collect();
    let mut changed = policies[0].clone();
    changed.on_logout = LogoutAction::Delete;
    changed.on_shutoff = ShutoffAction::Recycle;
    changed.predictive = Some(Predictive {
        service_level: 0.95,
    });
    changed.events = vec![training_event()];
    changed.disconnect_grace_secs = 600;
    policies.push(changed);
    for policy in policies {
        assert_eq!(Policy::from(PolicyWire::from(&policy)), policy);
    }
}

/// What an older engine or client wrote still reads: a policy without `on_shutoff` (the
/// default, restart), a desktop without `persistent` (defined), login counts without the
/// histogram, a class without reasons.
#[test]
fn older_forms_still_read() {
    use deskpool_api::{ClassPlanView, DesktopView, LoginStatsView, ShutoffActionWire};
    use deskpool_core::policy::ShutoffAction;
    let pinned = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/policy_variants.json"),
    )
    .unwrap();
    let mut command: serde_json::Value = serde_json::from_str(&pinned).unwrap();
    assert_eq!(command["policy"]["on_shutoff"], "recycle");
    command["policy"]
        .as_object_mut()
        .unwrap()
        .remove("on_shutoff");
    let Command::SetPolicy { policy, .. } = serde_json::from_value(command).unwrap() else {
        panic!("not a set_policy");
    };
    assert_eq!(policy.on_shutoff, ShutoffAction::Restart);
    assert_eq!(ShutoffActionWire::default(), ShutoffActionWire::Restart);

    // A policy from before dated events: no `events` key reads as none.
    let mut command: serde_json::Value = serde_json::from_str(&pinned).unwrap();
    assert_eq!(command["policy"]["events"][0]["first_day"], "2026-01-05");
    command["policy"].as_object_mut().unwrap().remove("events");
    let Command::SetPolicy { policy, .. } = serde_json::from_value(command).unwrap() else {
        panic!("not a set_policy");
    };
    assert!(policy.events.is_empty());

    // A policy from before disconnects: no `disconnect_grace_secs` reads as 0 (a disconnect
    // is a logout).
    let mut command: serde_json::Value = serde_json::from_str(&pinned).unwrap();
    assert_eq!(command["policy"]["disconnect_grace_secs"], 300);
    command["policy"]
        .as_object_mut()
        .unwrap()
        .remove("disconnect_grace_secs");
    let Command::SetPolicy { policy, .. } = serde_json::from_value(command).unwrap() else {
        panic!("not a set_policy");
    };
    assert_eq!(policy.disconnect_grace_secs, 0);

    let desktop: DesktopView = serde_json::from_str(
        r#"{"name": "dp-a", "host": "h1", "running": true, "meta": {"class": "a",
        "pool": "buffer", "seed_version": "1", "user": null, "created_at": 0,
        "changed_at": 0, "attempts": 0}}"#,
    )
    .unwrap();
    assert!(desktop.persistent && desktop.disk_problem.is_none());
    assert!(desktop.display.is_none() && desktop.address.is_none());

    // An assign reply from before guest addresses: no `address` reads as none.
    let reply: Reply = serde_json::from_str(
        r#"{"type": "assigned", "desktop": "dp-a", "host": "h1", "display": null,
        "waited_ms": 0}"#,
    )
    .unwrap();
    assert!(
        matches!(reply, Reply::Assigned { address: None, .. }),
        "{reply:?}"
    );

    let logins: LoginStatsView = serde_json::from_str(
        r#"{"served": 2, "instant": 1, "waiting": 0, "wait_secs_total": 1.0,
        "wait_secs_max": 1.0, "refused": 0, "failures": 0}"#,
    )
    .unwrap();
    assert!(logins.wait_le.is_empty() && logins.served == 2);

    let plan: ClassPlanView = serde_json::from_str(
        r#"{"name": "a", "production": 0, "buffer": 1, "creation": 0,
        "production_target": 0, "buffer_target": 1, "total_target": 1, "period": null,
        "stale": 0}"#,
    )
    .unwrap();
    assert!(plan.reasons.is_empty());
    assert_eq!(plan.explanation(), "buffer at target 1");
}

/// A request of the wrong shape is answered as before the wire types had their own names:
/// serde's message (the broker's 422 text) names the policy's parts as the core does.
#[test]
fn a_policy_of_the_wrong_shape_is_refused_in_the_same_words() {
    let pinned = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/policy_variants.json"),
    )
    .unwrap();
    // (where in the policy, what is put there, the refusal)
    let cases = [
        (
            "",
            json!("lots"),
            r#"invalid type: string "lots", expected struct Policy"#,
        ),
        (
            "/buffer",
            json!("none"),
            r#"invalid type: string "none", expected struct BufferRule"#,
        ),
        (
            "/pacing",
            json!(4),
            "invalid type: integer `4`, expected struct Pacing",
        ),
        (
            "/periods/0",
            json!(1),
            "invalid type: integer `1`, expected struct Period",
        ),
        (
            "/predictive",
            json!(5),
            "invalid type: integer `5`, expected struct Predictive",
        ),
        (
            "/events/0",
            json!("training"),
            r#"invalid type: string "training", expected struct Event"#,
        ),
    ];
    for (at, value, words) in cases {
        let mut command: serde_json::Value = serde_json::from_str(&pinned).unwrap();
        *command["policy"].pointer_mut(at).unwrap() = value;
        let refusal = serde_json::from_value::<Command>(command).unwrap_err();
        assert_eq!(refusal.to_string(), words, "{at}");
    }
}

/// An event's dates are read as calendar days: a day that does not exist is refused with the
/// shape (the broker's 422), and one that reads but breaks the rules (a reversed range) is
/// refused by `Policy::validate`, the check `set_policy` applies, naming the field.
#[test]
fn an_event_on_the_wire_is_held_to_the_calendar_and_the_policy_rules() {
    let pinned = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/policy_variants.json"),
    )
    .unwrap();
    let mut command: serde_json::Value = serde_json::from_str(&pinned).unwrap();
    command["policy"]["events"][0]["first_day"] = json!("2026-02-30");
    let refusal = serde_json::from_value::<Command>(command).unwrap_err();
    // jiff's words: "parsed date is not valid: parameter 'day' for `2026-02` is invalid, ...".
    let words = refusal.to_string();
    assert!(
        words.contains("date is not valid") && words.contains("2026-02"),
        "{words}"
    );

    let mut command: serde_json::Value = serde_json::from_str(&pinned).unwrap();
    command["policy"]["events"][0]["first_day"] = json!("2026-01-07");
    let Command::SetPolicy { policy, .. } = serde_json::from_value(command).unwrap() else {
        panic!("not a set_policy");
    };
    let error = policy.validate().unwrap_err();
    let fields: Vec<&str> = error.problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["events[1].date"], "{error}");
}
