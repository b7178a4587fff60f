//! The state machine on its own: inputs fed by hand, effects checked. No libvirt connection,
//! no async runtime.

use super::*;
use crate::jobs::JobErrorKind;
use deskpool_core::model::DesktopMeta;
use deskpool_hypervisor::HvErrorKind;

pub(super) const BASE_SECS: i64 = 1_800_000_000;

/// A fleet of `hosts` (none on standby) and one class `office` with a buffer of `buffer`.
pub(super) fn fleet(hosts: &[&str], buffer: u32, engine_extra: &str) -> Fleet {
    let mut text = format!(
        "[engine]\ntick_secs = 1\nresync_secs = 1\nretry_base_secs = 5\nretry_max_secs = 60\n\
         creation_pool_path = \"/deskpool-test\"\n{engine_extra}\n"
    );
    for h in hosts {
        text.push_str(&format!(
            "[[hosts]]\nname = \"{h}\"\nuri = \"test:///{h}.xml\"\ncapacity = {{ desktops = 10 }}\n\n"
        ));
    }
    text.push_str(&format!(
        "[[classes]]\nname = \"office\"\nmemory_mib = 1024\nvcpus = 1\ndisk_gib = 10\n\
         seed = {{ pool = \"seeds\", volume = \"office.qcow2\", version = \"v1\" }}\n\n\
         [classes.policy]\ncap = 100\nbuffer = {{ floor = {buffer}, percent = 0, ceiling = {buffer} }}\n\
         scale_down_delay_secs = 0\n"
    ));
    deskpool_config::parse_str(&text, std::path::Path::new("test.toml"))
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"))
}

/// `secs` seconds after the start, on both clocks.
pub(super) fn at(secs: f64) -> Now {
    let mono = Duration::from_secs_f64(secs);
    Now {
        mono,
        wall: Timestamp::from_second(BASE_SECS).unwrap() + mono,
    }
}

pub(super) fn engine(fleet: Fleet, settings: Settings) -> EngineState {
    EngineState::new(fleet, settings, DemandHistory::default(), at(0.0))
}

pub(super) fn started_jobs(effects: &[Effect]) -> Vec<(JobId, &Job)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::StartJob { id, job } => Some((*id, job)),
            _ => None,
        })
        .collect()
}

/// The jobs that change something on a host (not the reads).
pub(super) fn acting_jobs(effects: &[Effect]) -> Vec<(JobId, &Job)> {
    started_jobs(effects)
        .into_iter()
        .filter(|(_, j)| !matches!(j, Job::Observe { .. } | Job::Connect { .. }))
        .collect()
}

pub(super) fn creates(effects: &[Effect]) -> Vec<JobId> {
    started_jobs(effects)
        .into_iter()
        .filter(|(_, j)| matches!(j, Job::Create { .. }))
        .map(|(id, _)| id)
        .collect()
}

pub(super) fn connect_job(effects: &[Effect], host: &str) -> Option<JobId> {
    started_jobs(effects)
        .into_iter()
        .find_map(|(id, j)| match j {
            Job::Connect { host: h, .. } if h == host => Some(id),
            _ => None,
        })
}

pub(super) fn answers(effects: &[Effect]) -> Vec<(RequestId, &CommandResult)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Answer { id, result } => Some((*id, result)),
            _ => None,
        })
        .collect()
}

pub(super) fn seed_copy() -> SeedCopy {
    SeedCopy {
        class: "office".into(),
        version: "v1".into(),
        volume: "seed-office@v1.img".into(),
        path: "/deskpool-test/seed-office@v1.img".into(),
        format: "qcow2".into(),
        complete: true,
    }
}

pub(super) fn buffered(name: &str, host: &str) -> ObservedDesktop {
    ObservedDesktop {
        name: name.into(),
        host: host.into(),
        meta: DesktopMeta {
            class: "office".into(),
            pool: PoolState::Buffer,
            seed_version: "v1".into(),
            user: None,
            created_at: BASE_SECS - 60,
            changed_at: BASE_SECS - 60,
            attempts: 0,
            term: 0,
        },
        running: true,
        persistent: true,
        disk_problem: None,
    }
}

/// What a host holding `desktops` and the class's seed copy shows.
pub(super) fn observation(desktops: Vec<ObservedDesktop>) -> HostObservation {
    HostObservation {
        desktop_volumes: desktops
            .iter()
            .map(|d| deskpool_core::model::desktop_volume_name(&d.name))
            .collect(),
        desktops,
        seed_copies: vec![seed_copy()],
        seed_sources: vec![("seeds".into(), "office.qcow2".into())],
        unlabelled_desktops: Vec::new(),
    }
}

pub(super) fn connected(host: &str, desktops: Vec<ObservedDesktop>) -> Outcome {
    Outcome::Connected {
        host: host.into(),
        identity: None,
        observation: observation(desktops),
        probe: false,
    }
}

/// A desktop job `job_id` ended with `desktop` as it now is.
pub(super) fn desktop_done(
    state: &mut EngineState,
    secs: f64,
    job_id: JobId,
    desktop: ObservedDesktop,
) -> Vec<Effect> {
    state.apply(
        at(secs),
        Input::JobDone {
            job_id,
            outcome: Outcome::Desktop {
                desktop,
                event: None,
            },
        },
    )
}

fn hv_error(kind: HvErrorKind, message: &str) -> JobError {
    JobError {
        kind: JobErrorKind::Hypervisor(kind),
        message: message.into(),
    }
}

/// An engine on `fleet` whose one host `h1` has answered its connection with `desktops`;
/// returns the effects of that answer.
pub(super) fn connected_engine(
    fleet: Fleet,
    settings: Settings,
    desktops: Vec<ObservedDesktop>,
) -> (EngineState, Vec<Effect>) {
    let mut state = engine(fleet, settings);
    let effects = state.apply(at(0.0), Input::Started);
    let job_id = connect_job(&effects, "h1").expect("a connection to h1 is started");
    let effects = state.apply(
        at(0.1),
        Input::JobDone {
            job_id,
            outcome: connected("h1", desktops),
        },
    );
    (state, effects)
}

pub(super) fn assign(id: u64, user: &str, wait_secs: u64) -> Input {
    Input::Command {
        id: RequestId(id),
        command: Command::Assign {
            class: "office".into(),
            user: user.into(),
            wait_secs,
        },
        actor: user.into(),
    }
}

#[test]
fn desktop_names_are_short_and_sort_by_time() {
    let a = desktop_name("office", 1_795_549_401_000_000);
    let b = desktop_name("office", 1_795_549_401_000_001);
    assert_eq!(a.len(), "dp-office-".len() + 10);
    assert!(a < b, "{a} < {b}");
    assert!(deskpool_core::policy::names::check_name(&a).is_ok());
}

#[test]
fn the_start_connects_every_host_and_a_connected_empty_host_gets_its_buffer_made() {
    let mut state = engine(fleet(&["h1", "h2"], 2, ""), Settings::default());
    let effects = state.apply(at(0.0), Input::Started);
    assert!(connect_job(&effects, "h1").is_some(), "{effects:?}");
    assert!(connect_job(&effects, "h2").is_some(), "{effects:?}");
    assert!(
        creates(&effects).is_empty(),
        "nothing is known yet: {effects:?}"
    );

    let (_, effects) = connected_engine(fleet(&["h1"], 2, ""), Settings::default(), vec![]);
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::KeepConnection { host } if host == "h1")),
        "{effects:?}"
    );
    let made: Vec<&Job> = started_jobs(&effects)
        .into_iter()
        .map(|(_, j)| j)
        .filter(|j| matches!(j, Job::Create { .. }))
        .collect();
    assert_eq!(made.len(), 2, "{effects:?}");
    for job in made {
        let Job::Create {
            host, class, seed, ..
        } = job
        else {
            unreachable!()
        };
        assert_eq!((host.as_str(), class.name.as_str()), ("h1", "office"));
        assert_eq!(seed, &seed_copy());
    }
}

#[test]
fn a_login_with_a_ready_desktop_is_labelled_then_answered_after_the_snapshot() {
    let ready = buffered("dp-office-0000000001", "h1");
    let (mut state, _) = connected_engine(fleet(&["h1"], 1, ""), Settings::default(), vec![ready]);
    let effects = state.apply(at(1.0), assign(7, "alice", 0));
    let jobs = started_jobs(&effects);
    let (job_id, desktop) = jobs
        .iter()
        .find_map(|(id, j)| match j {
            Job::Assign { desktop, user, .. } if user == "alice" => Some((*id, desktop.clone())),
            _ => None,
        })
        .expect("an assign job for alice");
    assert_eq!(desktop.name, "dp-office-0000000001");
    assert!(answers(&effects).is_empty(), "the label is not written yet");

    let mut labelled = desktop;
    labelled.meta.pool = PoolState::Production;
    labelled.meta.user = Some("alice".into());
    let effects = state.apply(
        at(1.2),
        Input::JobDone {
            job_id,
            outcome: Outcome::Assigned {
                desktop: labelled,
                display: None,
                address: None,
            },
        },
    );
    let publish = effects
        .iter()
        .position(|e| matches!(e, Effect::Publish(_)))
        .expect("a snapshot");
    let answer = effects
        .iter()
        .position(|e| matches!(e, Effect::Answer { .. }))
        .expect("an answer");
    assert!(publish < answer, "the snapshot goes out first: {effects:?}");
    match answers(&effects)[..] {
        [(RequestId(7), Ok(Reply::Assigned { desktop, host, .. }))] => {
            assert_eq!(
                (desktop.as_str(), host.as_str()),
                ("dp-office-0000000001", "h1")
            );
        }
        ref other => panic!("one answer to request 7 expected: {other:?}"),
    }
}

#[test]
fn a_failed_creation_backs_the_class_off_until_its_retry_time() {
    let (mut state, effects) = connected_engine(fleet(&["h1"], 1, ""), Settings::default(), vec![]);
    let made = creates(&effects);
    assert_eq!(made.len(), 1, "{effects:?}");
    let name = match started_jobs(&effects)[0].1 {
        Job::Create { name, .. } => name.clone(),
        other => panic!("{other:?}"),
    };
    let effects = state.apply(
        at(0.5),
        Input::JobDone {
            job_id: made[0],
            outcome: Outcome::CreateFailed {
                host: "h1".into(),
                class: "office".into(),
                desktop: name,
                left: None,
                error: hv_error(HvErrorKind::Libvirt, "no space left"),
            },
        },
    );
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Event(ev)
            if ev.kind == EventKind::Failed && ev.message == "no space left")),
        "{effects:?}"
    );
    assert!(creates(&effects).is_empty(), "{effects:?}");
    // The retry waits retry_base_secs (5 s) from the failure.
    let effects = state.apply(at(3.0), Input::Tick);
    assert!(
        creates(&effects).is_empty(),
        "still backing off: {effects:?}"
    );
    let effects = state.apply(at(6.0), Input::Tick);
    assert_eq!(creates(&effects).len(), 1, "{effects:?}");
}

#[test]
fn a_desktop_whose_boot_failed_too_often_is_destroyed() {
    let (mut state, effects) = connected_engine(
        fleet(&["h1"], 1, "max_attempts = 1"),
        Settings::default(),
        vec![],
    );
    let (job_id, name) = match started_jobs(&effects)[..] {
        [(id, Job::Create { name, .. })] => (id, name.clone()),
        ref other => panic!("one create expected: {other:?}"),
    };
    let mut left = buffered(&name, "h1");
    left.meta.pool = PoolState::Creation;
    left.running = false;
    left.meta.attempts = 1;
    let effects = state.apply(
        at(0.5),
        Input::JobDone {
            job_id,
            outcome: Outcome::CreateFailed {
                host: "h1".into(),
                class: "office".into(),
                desktop: name.clone(),
                left: Some(left),
                error: hv_error(
                    HvErrorKind::Libvirt,
                    "the domain stopped right after it started",
                ),
            },
        },
    );
    let destroyed = |effects: &[Effect]| {
        started_jobs(effects).into_iter().any(|(_, j)| {
            matches!(j, Job::Destroy(crate::jobs::Removal { desktop, why, .. })
                if *desktop == name && why == "failed too often")
        })
    };
    assert!(acting_jobs(&effects).is_empty(), "{effects:?}");
    // The failed desktop waits out its backoff (retry_base_secs, 5 s) first.
    let effects = state.apply(at(3.0), Input::Tick);
    assert!(acting_jobs(&effects).is_empty(), "backing off: {effects:?}");
    let effects = state.apply(at(6.0), Input::Tick);
    assert!(destroyed(&effects), "{effects:?}");
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Event(ev)
            if ev.message.starts_with("gave up after 1 attempts"))),
        "{effects:?}"
    );
}

#[test]
fn a_host_that_cannot_be_reached_is_retried_after_its_backoff() {
    let mut state = engine(fleet(&["h1"], 1, ""), Settings::default());
    let effects = state.apply(at(0.0), Input::Started);
    let job_id = connect_job(&effects, "h1").unwrap();
    let effects = state.apply(
        at(0.1),
        Input::JobDone {
            job_id,
            outcome: Outcome::ConnectFailed {
                host: "h1".into(),
                error: hv_error(HvErrorKind::Libvirt, "connection refused"),
                probe: false,
            },
        },
    );
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Event(ev)
            if ev.kind == EventKind::HostDown && ev.message == "connection refused; retrying in 5s")),
        "{effects:?}"
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::DropConnection { host } if host == "h1"))
    );
    let effects = state.apply(at(2.0), Input::Tick);
    assert_eq!(connect_job(&effects, "h1"), None, "too early: {effects:?}");
    let effects = state.apply(at(5.5), Input::Tick);
    assert!(connect_job(&effects, "h1").is_some(), "{effects:?}");
}

#[test]
fn a_paused_engine_starts_no_job_until_resumed() {
    let settings = Settings {
        paused: true,
        ..Settings::default()
    };
    let (mut state, effects) = connected_engine(fleet(&["h1"], 2, ""), settings, vec![]);
    assert!(acting_jobs(&effects).is_empty(), "{effects:?}");
    let effects = state.apply(at(1.0), Input::Tick);
    assert!(acting_jobs(&effects).is_empty(), "{effects:?}");
    match effects.iter().find(|e| matches!(e, Effect::Publish(_))) {
        Some(Effect::Publish(snapshot)) => assert!(snapshot.paused),
        other => panic!("a snapshot expected: {other:?}"),
    }
    let resume = Input::Command {
        id: RequestId(1),
        command: Command::Resume,
        actor: "admin".into(),
    };
    let effects = state.apply(at(1.5), resume);
    assert_eq!(creates(&effects).len(), 2, "{effects:?}");
    assert!(matches!(
        answers(&effects)[..],
        [(RequestId(1), Ok(Reply::Done))]
    ));
}

#[test]
fn a_stop_waits_for_the_jobs_in_flight() {
    let mut state = engine(fleet(&["h1"], 1, ""), Settings::default());
    let effects = state.apply(at(0.0), Input::Started);
    let job_id = connect_job(&effects, "h1").unwrap();
    let effects = state.apply(at(0.5), Input::Stop);
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Stopped)),
        "a connection is under way: {effects:?}"
    );
    let effects = state.apply(at(5.0), Input::Tick);
    assert!(effects.is_empty(), "no pass while stopping: {effects:?}");
    let effects = state.apply(
        at(6.0),
        Input::JobDone {
            job_id,
            outcome: connected("h1", vec![]),
        },
    );
    assert!(creates(&effects).is_empty(), "nothing new while stopping");
    assert!(
        matches!(effects.last(), Some(Effect::Stopped)),
        "{effects:?}"
    );
    assert!(effects.iter().any(|e| matches!(e, Effect::Publish(_))));
    assert!(state.stopped());
    assert!(state.apply(at(7.0), Input::Tick).is_empty());
}

#[test]
fn finished_jobs_close_together_are_planned_once_per_gap() {
    let (mut state, effects) = connected_engine(fleet(&["h1"], 2, ""), Settings::default(), vec![]);
    let made: Vec<(JobId, String)> = started_jobs(&effects)
        .into_iter()
        .filter_map(|(id, j)| match j {
            Job::Create { name, .. } => Some((id, name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(made.len(), 2);
    let done = |state: &mut EngineState, secs: f64, (job_id, name): (JobId, String)| {
        desktop_done(state, secs, job_id, buffered(&name, "h1"))
    };
    let mut made = made.into_iter();
    let first = done(&mut state, 1.0, made.next().unwrap());
    assert!(first.iter().any(|e| matches!(e, Effect::Publish(_))));
    let second = done(&mut state, 1.001, made.next().unwrap());
    assert!(
        !second.iter().any(|e| matches!(e, Effect::Publish(_))),
        "within the gap: {second:?}"
    );
    let wake = second.iter().find_map(|e| match e {
        Effect::WakeAt(at) => Some(*at),
        _ => None,
    });
    assert_eq!(wake, Some(at(1.0).mono + MIN_PASS_GAP));
    let later = state.apply(at(1.01), Input::Tick);
    match later.iter().find(|e| matches!(e, Effect::Publish(_))) {
        Some(Effect::Publish(snapshot)) => {
            let buffered = snapshot
                .desktops
                .iter()
                .filter(|d| d.meta.pool == deskpool_api::PoolStateView::Buffer)
                .count();
            assert_eq!(buffered, 2, "both shown by the held-back pass");
        }
        other => panic!("a snapshot expected: {other:?}"),
    }
}

#[test]
fn a_login_before_the_first_read_waits_for_it() {
    let mut state = engine(fleet(&["h1"], 1, ""), Settings::default());
    let effects = state.apply(at(0.0), Input::Started);
    let job_id = connect_job(&effects, "h1").unwrap();
    let effects = state.apply(at(0.1), assign(3, "bob", 0));
    assert!(answers(&effects).is_empty(), "{effects:?}");
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::WakeAt(at) if *at == at_secs(0.1) + FIRST_READ_GRACE)),
        "it may wait for the first reads: {effects:?}"
    );
    let ready = buffered("dp-office-0000000002", "h1");
    let effects = state.apply(
        at(0.2),
        Input::JobDone {
            job_id,
            outcome: connected("h1", vec![ready]),
        },
    );
    let assigned = started_jobs(&effects).into_iter().any(|(_, j)| {
        matches!(j, Job::Assign { desktop, user, .. }
            if desktop.name == "dp-office-0000000002" && user == "bob")
    });
    assert!(assigned, "{effects:?}");
}

fn at_secs(secs: f64) -> Duration {
    at(secs).mono
}

#[test]
fn a_login_that_waited_too_long_is_refused_at_its_deadline() {
    let (mut state, _) = connected_engine(fleet(&["h1"], 0, ""), Settings::default(), vec![]);
    let effects = state.apply(at(1.0), assign(4, "carol", 5));
    assert!(answers(&effects).is_empty());
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::WakeAt(at) if *at == at_secs(6.0))),
        "{effects:?}"
    );
    let effects = state.apply(at(6.0), Input::Tick);
    match answers(&effects)[..] {
        [(RequestId(4), Err(e))] => assert!(
            e.to_string()
                .contains("no office desktop became ready within 5s"),
            "{e}"
        ),
        ref other => panic!("a refusal expected: {other:?}"),
    }
}

#[test]
fn a_second_entry_for_the_same_daemon_is_refused() {
    let mut state = engine(fleet(&["h1", "h2"], 0, ""), Settings::default());
    let effects = state.apply(at(0.0), Input::Started);
    let identity = DaemonIdentity {
        host_uuid: Some("uuid-1".into()),
        hostname: Some("node".into()),
        pool: Some(("deskpool".into(), "pool-uuid".into())),
        uri: "qemu:///system".into(),
    };
    let outcome = |host: &str| Outcome::Connected {
        host: host.into(),
        identity: Some(identity.clone()),
        observation: observation(vec![]),
        probe: false,
    };
    let first = connect_job(&effects, "h1").unwrap();
    let second = connect_job(&effects, "h2").unwrap();
    let effects = state.apply_all(
        at(0.1),
        [
            Input::JobDone {
                job_id: first,
                outcome: outcome("h1"),
            },
            Input::JobDone {
                job_id: second,
                outcome: outcome("h2"),
            },
        ],
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::KeepConnection { host } if host == "h1"))
    );
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::KeepConnection { host } if host == "h2")),
        "{effects:?}"
    );
    match effects.iter().find(|e| matches!(e, Effect::Publish(_))) {
        Some(Effect::Publish(snapshot)) => {
            let h2 = snapshot.hosts.iter().find(|h| h.name == "h2").unwrap();
            assert!(
                matches!(&h2.status, deskpool_api::HostStatusView::Down { reason } if reason.contains("same libvirt daemon as host h1")),
                "{:?}",
                h2.status
            );
        }
        other => panic!("a snapshot expected: {other:?}"),
    }
}

#[test]
fn a_lost_job_frees_its_desktop_for_the_next_pass() {
    let (mut state, effects) = connected_engine(fleet(&["h1"], 1, ""), Settings::default(), vec![]);
    let (job_id, name) = match started_jobs(&effects)[..] {
        [(id, Job::Create { name, .. })] => (id, name.clone()),
        ref other => panic!("one create expected: {other:?}"),
    };
    let effects = state.apply(at(0.5), Input::Tick);
    assert!(
        acting_jobs(&effects).is_empty(),
        "its creation is under way"
    );
    // The job panicked: the desktop it left in the creation pool is booted by the next pass.
    let effects = state.apply(at(1.0), Input::JobLost { job_id });
    let booted = started_jobs(&effects)
        .into_iter()
        .any(|(_, j)| matches!(j, Job::Boot { desktop, .. } if desktop.name == name));
    assert!(booted, "{effects:?}");
}

#[test]
fn a_host_whose_connection_the_driver_lost_is_down_and_connected_again_later() {
    let (mut state, _) = connected_engine(fleet(&["h1"], 0, ""), Settings::default(), vec![]);
    let effects = state.apply(at(1.0), Input::ConnectionLost { host: "h1".into() });
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Event(ev)
            if ev.kind == EventKind::HostDown && ev.host.as_deref() == Some("h1"))),
        "{effects:?}"
    );
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::StartJob { .. })),
        "no job on a host without a connection: {effects:?}"
    );
    let effects = state.apply(at(7.0), Input::Tick);
    assert!(connect_job(&effects, "h1").is_some(), "{effects:?}");
}

pub(super) fn assigned_to(name: &str, user: &str) -> ObservedDesktop {
    let mut desktop = buffered(name, "h1");
    desktop.meta.pool = PoolState::Production;
    desktop.meta.user = Some(user.into());
    desktop
}

#[test]
fn a_logout_is_answered_once_its_label_is_on_the_host() {
    let held = assigned_to("dp-office-0000000003", "dave");
    let (mut state, _) = connected_engine(fleet(&["h1"], 0, ""), Settings::default(), vec![held]);
    let release = |id| Input::Command {
        id: RequestId(id),
        command: Command::Release {
            desktop: "dp-office-0000000003".into(),
        },
        actor: "dave".into(),
    };
    let effects = state.apply(at(1.0), release(5));
    let (job_id, labelled) = match acting_jobs(&effects)[..] {
        [(id, Job::Relabel { desktop, pool, .. })] if *pool == PoolState::Retired => {
            (id, desktop.clone())
        }
        ref other => panic!("one relabel to retired expected: {other:?}"),
    };
    assert!(answers(&effects).is_empty(), "not on the host yet");
    // A repeated logout while the label is written gets the same answer, once it is written.
    let effects = state.apply(at(1.1), release(6));
    assert!(answers(&effects).is_empty(), "{effects:?}");
    let mut retired = labelled;
    retired.meta.pool = PoolState::Retired;
    let effects = state.apply(
        at(1.2),
        Input::JobDone {
            job_id,
            outcome: Outcome::Desktop {
                desktop: retired,
                event: None,
            },
        },
    );
    let mut answered: Vec<(RequestId, &CommandResult)> = answers(&effects);
    answered.sort_by_key(|(id, _)| *id);
    assert!(
        matches!(
            answered[..],
            [
                (RequestId(5), Ok(Reply::Done)),
                (RequestId(6), Ok(Reply::Done))
            ]
        ),
        "{answered:?}"
    );
}

#[test]
fn the_demand_history_is_saved_at_most_once_a_minute_and_at_the_stop() {
    let settings = Settings {
        keep_history: true,
        ..Settings::default()
    };
    let ready = vec![
        buffered("dp-office-0000000004", "h1"),
        buffered("dp-office-0000000005", "h1"),
    ];
    let (mut state, _) = connected_engine(fleet(&["h1"], 2, ""), settings, ready);
    let saves = |effects: &[Effect]| {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::SaveHistory(_)))
            .count()
    };
    let login = |state: &mut EngineState, secs: f64, id: u64, user: &str| {
        let effects = state.apply(at(secs), assign(id, user, 0));
        let (job_id, desktop) = started_jobs(&effects)
            .into_iter()
            .find_map(|(job_id, j)| match j {
                Job::Assign { desktop, .. } => Some((job_id, desktop.name.clone())),
                _ => None,
            })
            .expect("an assign job");
        let outcome = Outcome::Assigned {
            desktop: assigned_to(&desktop, user),
            display: None,
            address: None,
        };
        state.apply(at(secs + 0.1), Input::JobDone { job_id, outcome })
    };
    let effects = login(&mut state, 61.0, 1, "erin");
    assert_eq!(saves(&effects), 1, "a minute since the start: {effects:?}");
    let effects = login(&mut state, 70.0, 2, "frank");
    assert_eq!(saves(&effects), 0, "saved 9 s ago");
    let effects = state.apply(at(100.0), Input::Tick);
    assert_eq!(saves(&effects), 0, "saved 39 s ago");
    let effects = state.apply(at(101.0), Input::Stop);
    assert_eq!(saves(&effects), 0, "jobs are under way: {effects:?}");
    // The jobs under way end (lost, here): the engine stops, and saves the history first.
    let ended: Vec<Input> = state
        .job_keys
        .keys()
        .map(|&job_id| Input::JobLost { job_id })
        .collect();
    let effects = state.apply_all(at(102.0), ended);
    assert!(
        matches!(effects.last(), Some(Effect::Stopped)),
        "{effects:?}"
    );
    match effects.iter().find(|e| matches!(e, Effect::SaveHistory(_))) {
        Some(Effect::SaveHistory(history)) => {
            let logins: u32 = history.buckets("office").map(|b| b.logins).sum();
            assert_eq!(logins, 2);
        }
        other => panic!("the stop saves the history: {other:?}"),
    }
}

#[test]
fn a_policy_change_starts_the_class_pacing_afresh() {
    let (mut state, effects) = connected_engine(fleet(&["h1"], 1, ""), Settings::default(), vec![]);
    let pacing = |effects: &[Effect]| {
        started_jobs(effects)
            .into_iter()
            .find_map(|(_, j)| match j {
                Job::Create { pacing, .. } => Some(pacing.clone()),
                _ => None,
            })
    };
    let before = pacing(&effects).expect("a create");
    assert_eq!(before.generation, 0);
    let mut policy = state.fleet.class("office").unwrap().policy.clone();
    policy.buffer.floor = 2;
    policy.buffer.ceiling = 2;
    policy.pacing.clones_per_host = 2;
    let effects = state.apply(
        at(1.0),
        Input::Command {
            id: RequestId(9),
            command: Command::SetPolicy {
                class: "office".into(),
                policy: Box::new(policy),
            },
            actor: "admin".into(),
        },
    );
    let after =
        pacing(&effects).unwrap_or_else(|| panic!("a create for the raised buffer: {effects:?}"));
    assert_eq!((after.generation, after.clones), (1, 2), "{after:?}");
    assert!(matches!(
        answers(&effects)[..],
        [(RequestId(9), Ok(Reply::Done))]
    ));
}

#[test]
fn the_state_machine_holds_no_runtime_channel_clock_or_connection() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/state");
    let mut sources = vec![dir.with_extension("rs")];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        // The tests (tests.rs, tests/) may use what they like.
        if path.is_file() && path.file_name().is_some_and(|n| n != "tests.rs") {
            sources.push(path);
        }
    }
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap();
        for banned in ["tokio", "HostConnection", "Instant", "Clock", "SystemTime"] {
            assert!(
                !text.contains(banned),
                "{} names {banned}: I/O belongs to the driver (run.rs)",
                path.display()
            );
        }
    }
}

pub(super) fn events(effects: &[Effect]) -> Vec<&Event> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event(ev) => Some(ev),
            _ => None,
        })
        .collect()
}

fn last_snapshot(effects: &[Effect]) -> &Snapshot {
    effects
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::Publish(s) => Some(&**s),
            _ => None,
        })
        .expect("a snapshot is published")
}

#[test]
fn a_paused_engine_says_so_first_among_each_class_reasons() {
    let settings = Settings {
        paused: true,
        ..Settings::default()
    };
    let (mut state, _) = connected_engine(fleet(&["h1"], 2, ""), settings, vec![]);
    let effects = state.apply(at(1.0), Input::Tick);
    let office = &last_snapshot(&effects).classes[0];
    assert_eq!(
        office.plan.reasons.first(),
        Some(&deskpool_api::ReasonView::EnginePaused)
    );
    let resume = Input::Command {
        id: RequestId(1),
        command: Command::Resume,
        actor: "admin".into(),
    };
    let effects = state.apply(at(1.5), resume);
    let office = &last_snapshot(&effects).classes[0];
    assert!(
        !office
            .plan
            .reasons
            .contains(&deskpool_api::ReasonView::EnginePaused)
    );
    // The admin action is told in words, not as Rust's Debug text of the command.
    let said: Vec<&str> = events(&effects)
        .iter()
        .filter(|e| e.kind == EventKind::AdminAction)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(said, ["admin: resume the engine: ok"]);
}

#[test]
fn a_refused_login_makes_an_event_and_counts_in_the_last_hour() {
    let (mut state, _) = connected_engine(fleet(&["h1"], 0, ""), Settings::default(), vec![]);
    let effects = state.apply(at(1.0), assign(4, "dave", 0));
    let refused: Vec<&Event> = events(&effects)
        .into_iter()
        .filter(|e| e.kind == EventKind::LoginRefused)
        .collect();
    assert_eq!(refused.len(), 1, "{effects:?}");
    assert_eq!(refused[0].class.as_deref(), Some("office"));
    assert!(
        refused[0].message.contains("dave"),
        "{}",
        refused[0].message
    );
    let logins = &last_snapshot(&effects).classes[0].logins;
    assert_eq!((logins.refused, logins.last_hour.refused), (1, 1));
}

#[test]
fn a_login_refused_at_its_deadline_makes_an_event_too() {
    let (mut state, _) = connected_engine(fleet(&["h1"], 0, ""), Settings::default(), vec![]);
    state.apply(at(1.0), assign(4, "carol", 5));
    let effects = state.apply(at(6.0), Input::Tick);
    assert!(
        events(&effects)
            .iter()
            .any(|e| e.kind == EventKind::LoginRefused && e.message.contains("carol")),
        "{effects:?}"
    );
}

#[test]
fn a_missing_seed_makes_one_event_not_one_per_pass() {
    let mut state = engine(fleet(&["h1"], 2, ""), Settings::default());
    let effects = state.apply(at(0.0), Input::Started);
    let job_id = connect_job(&effects, "h1").expect("a connection to h1");
    let empty = HostObservation {
        desktops: Vec::new(),
        desktop_volumes: Vec::new(),
        seed_copies: Vec::new(),
        seed_sources: Vec::new(),
        unlabelled_desktops: Vec::new(),
    };
    let effects = state.apply(
        at(0.1),
        Input::JobDone {
            job_id,
            outcome: Outcome::Connected {
                host: "h1".into(),
                identity: None,
                observation: empty,
                probe: false,
            },
        },
    );
    let missing = |effects: &[Effect]| {
        events(effects)
            .iter()
            .filter(|e| e.kind == EventKind::SeedMissing)
            .count()
    };
    assert_eq!(missing(&effects), 1, "{effects:?}");
    let effects = state.apply(at(1.0), Input::Tick);
    assert_eq!(missing(&effects), 0, "{effects:?}");
    assert!(
        last_snapshot(&effects).classes[0]
            .plan
            .reasons
            .iter()
            .any(|r| matches!(r, deskpool_api::ReasonView::SeedMissing { .. }))
    );
}

#[test]
fn the_snapshot_of_a_pass_counts_the_creations_it_ordered() {
    let (_, effects) = connected_engine(fleet(&["h1"], 2, ""), Settings::default(), vec![]);
    assert_eq!(creates(&effects).len(), 2, "{effects:?}");
    let office = &last_snapshot(&effects).classes[0];
    assert_eq!(office.plan.creation, 2);
    assert_eq!(
        office.plan.reasons.first(),
        Some(&deskpool_api::ReasonView::InCreation { count: 2 })
    );
}

#[test]
fn a_raised_floor_above_the_class_cap_is_refused_and_one_in_force_is_published() {
    let (mut state, _) = connected_engine(fleet(&["h1"], 2, ""), Settings::default(), vec![]);
    let until: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    let raise = |id: u64, floor: u32| Input::Command {
        id: RequestId(id),
        command: Command::RaiseFloor {
            class: "office".into(),
            floor,
            until,
        },
        actor: "admin".into(),
    };
    let effects = state.apply(at(1.0), raise(1, 101));
    match answers(&effects)[..] {
        [(RequestId(1), Err(e))] => assert_eq!(
            e.to_string(),
            "floor 101 is above the cap of class office (100): raise it to at most 100"
        ),
        ref other => panic!("a refusal expected: {other:?}"),
    }
    let effects = state.apply(at(2.0), raise(2, 5));
    assert!(matches!(
        answers(&effects)[..],
        [(RequestId(2), Ok(Reply::Done))]
    ));
    let published = effects.iter().find_map(|e| match e {
        Effect::Publish(snapshot) => Some(snapshot.clone()),
        _ => None,
    });
    let office = published
        .as_ref()
        .and_then(|s| s.classes.iter().find(|c| c.plan.name == "office"))
        .map(|c| c.plan.raised_floor);
    assert_eq!(
        office,
        Some(Some(deskpool_api::RaisedFloorView { floor: 5, until }))
    );
}

mod leadership;
mod ready;
mod reload;
