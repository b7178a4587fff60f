//! Readiness from the guest: a booted desktop waits in creation until a probe finds its guest
//! ready, is probed again while it does not answer, and is given up (destroyed, its class
//! backed off with the reason) once its class's `ready_timeout_secs` has passed.

use super::*;

/// One host `h1` and a class `office` with a buffer of 1 and `class_extra` in its table.
fn ready_fleet(class_extra: &str) -> Fleet {
    let text = format!(
        "[engine]\ntick_secs = 1\nresync_secs = 1000\nretry_base_secs = 5\nretry_max_secs = 60\n\
         creation_pool_path = \"/deskpool-test\"\n\n\
         [[hosts]]\nname = \"h1\"\nuri = \"test:///h1.xml\"\ncapacity = {{ desktops = 10 }}\n\n\
         [[classes]]\nname = \"office\"\nmemory_mib = 1024\nvcpus = 1\ndisk_gib = 10\n{class_extra}\n\
         seed = {{ pool = \"seeds\", volume = \"office.qcow2\", version = \"v1\" }}\n\n\
         [classes.policy]\ncap = 100\nbuffer = {{ floor = 1, percent = 0, ceiling = 1 }}\n\
         scale_down_delay_secs = 0\n"
    );
    deskpool_config::parse_str(&text, std::path::Path::new("test.toml"))
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"))
}

/// A desktop in creation, not booted yet.
fn creating(name: &str) -> ObservedDesktop {
    let mut d = buffered(name, "h1");
    d.meta.pool = PoolState::Creation;
    d.running = false;
    d
}

fn probes(effects: &[Effect]) -> Vec<(JobId, &ObservedDesktop)> {
    started_jobs(effects)
        .into_iter()
        .filter_map(|(id, j)| match j {
            Job::Probe { desktop, .. } => Some((id, desktop)),
            _ => None,
        })
        .collect()
}

/// The one create among `effects`: its job and desktop name; and that desktop, booted.
fn the_one_create(effects: &[Effect]) -> (JobId, String, ObservedDesktop) {
    let (job_id, name) = match started_jobs(effects)[..] {
        [(id, Job::Create { name, .. })] => (id, name.clone()),
        ref other => panic!("one create expected: {other:?}"),
    };
    let mut desktop = creating(&name);
    desktop.running = true;
    (job_id, name, desktop)
}

/// An engine whose create job for one desktop has just reported it booted at 1 s; returns the
/// desktop's name and the effects of that report.
fn booted_engine(class_extra: &str) -> (EngineState, String, Vec<Effect>) {
    let (mut state, effects) =
        connected_engine(ready_fleet(class_extra), Settings::default(), vec![]);
    let (job_id, name, desktop) = the_one_create(&effects);
    let effects = state.apply(
        at(1.0),
        Input::JobDone {
            job_id,
            outcome: Outcome::Booted { desktop },
        },
    );
    (state, name, effects)
}

fn not_ready(job_id: JobId, name: &str) -> Input {
    Input::JobDone {
        job_id,
        outcome: Outcome::NotReady {
            host: "h1".into(),
            desktop: name.into(),
            why: "the guest agent does not answer: QEMU guest agent is not connected".into(),
        },
    }
}

#[test]
fn a_booted_desktop_stays_in_creation_until_its_guest_is_probed_ready() {
    let (mut state, name, effects) = booted_engine("ready_timeout_secs = 10");
    let probed = probes(&effects);
    assert_eq!(probed.len(), 1, "{effects:?}");
    let job_id = probed[0].0;
    let office = &last_snapshot(&effects).classes[0].plan;
    assert_eq!((office.buffer, office.creation), (0, 1), "{office:?}");

    let mut ready = buffered(&name, "h1");
    ready.meta.changed_at = BASE_SECS + 4;
    let reach = crate::jobs::Reach {
        display: Some("vnc://127.0.0.1:5901".into()),
        address: Some("192.168.122.41".into()),
    };
    let effects = state.apply(
        at(4.0),
        Input::JobDone {
            job_id,
            outcome: Outcome::Ready {
                desktop: ready,
                reach,
            },
        },
    );
    let s = last_snapshot(&effects);
    assert_eq!(
        (s.classes[0].plan.buffer, s.classes[0].plan.creation),
        (1, 0)
    );
    let shown = s.desktops.iter().find(|d| d.name == name).unwrap();
    assert_eq!(shown.display.as_deref(), Some("vnc://127.0.0.1:5901"));
    assert_eq!(shown.address.as_deref(), Some("192.168.122.41"));
    assert!(
        events(&effects).iter().any(|e| e.kind == EventKind::Provisioned
            && e.message == "ready in the buffer: its guest answered 3 s after boot (address 192.168.122.41)"),
        "{effects:?}"
    );

    // The user handed it gets both in the reply, the address kept from readiness when the
    // agent does not answer at the hand-out.
    let effects = state.apply(at(5.0), assign(9, "alice", 0));
    let (job_id, desktop) = started_jobs(&effects)
        .into_iter()
        .find_map(|(id, j)| match j {
            Job::Assign {
                desktop,
                read_address,
                ..
            } => {
                assert!(*read_address, "the class waits for its agent");
                Some((id, desktop.clone()))
            }
            _ => None,
        })
        .expect("an assign job");
    let mut labelled = desktop;
    labelled.meta.pool = PoolState::Production;
    labelled.meta.user = Some("alice".into());
    let effects = state.apply(
        at(5.1),
        Input::JobDone {
            job_id,
            outcome: Outcome::Assigned {
                desktop: labelled,
                display: Some(deskpool_hypervisor::Display {
                    address: "vnc://127.0.0.1:5901".into(),
                    password: Some("q7Tz0bKc".into()),
                }),
                address: None,
            },
        },
    );
    match &answers(&effects)[..] {
        [
            (
                RequestId(9),
                Ok(Reply::Assigned {
                    display, address, ..
                }),
            ),
        ] => {
            assert_eq!(display.as_deref(), Some("vnc://127.0.0.1:5901"));
            assert_eq!(address.as_deref(), Some("192.168.122.41"));
        }
        other => panic!("one assigned answer expected: {other:?}"),
    }
}

#[test]
fn a_silent_guest_is_probed_again_after_a_gap_and_given_up_at_its_timeout() {
    let (mut state, name, effects) = booted_engine("ready_timeout_secs = 10");
    let (job_id, _) = probes(&effects)[0];

    // Not ready at 3 s: nothing is destroyed, and the next probe waits for its gap.
    let effects = state.apply(at(3.0), not_ready(job_id, &name));
    assert!(acting_jobs(&effects).is_empty(), "{effects:?}");
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::WakeAt(t) if *t == at(5.0).mono)),
        "a wake for the next probe: {effects:?}"
    );
    let effects = state.apply(at(4.0), Input::Tick);
    assert!(probes(&effects).is_empty(), "too early: {effects:?}");
    let effects = state.apply(at(5.0), Input::Tick);
    let (job_id, _) = *probes(&effects).first().expect("probed again");

    // Still silent 10 s after its boot: destroyed, with the reason, and its class backs off.
    let effects = state.apply(at(11.0), not_ready(job_id, &name));
    let destroy = acting_jobs(&effects)
        .into_iter()
        .find_map(|(id, j)| match j {
            Job::Destroy(crate::jobs::Removal { desktop, why, .. }) if *desktop == name => {
                Some((id, why.clone()))
            }
            _ => None,
        })
        .expect("the desktop is destroyed");
    let reason = "not ready within 10 s (ready_timeout_secs), waiting for its guest agent: \
                  the guest agent does not answer: QEMU guest agent is not connected";
    assert_eq!(destroy.1, reason);
    assert!(
        events(&effects).iter().any(|e| e.kind == EventKind::Failed
            && e.desktop.as_deref() == Some(name.as_str())
            && e.message.starts_with(reason)),
        "{effects:?}"
    );
    assert!(creates(&effects).is_empty(), "backed off: {effects:?}");

    let effects = state.apply(
        at(11.5),
        Input::JobDone {
            job_id: destroy.0,
            outcome: Outcome::Destroyed {
                host: "h1".into(),
                desktop: name.clone(),
                class: Some("office".into()),
                why: reason.into(),
            },
        },
    );
    let office = &last_snapshot(&effects).classes[0];
    assert!(creates(&effects).is_empty(), "backed off: {effects:?}");
    assert!(
        office.plan.explanation().contains(reason),
        "the class says why: {}",
        office.plan.explanation()
    );
    assert_eq!(office.logins.failures, 1);
    // The backoff (retry_base_secs = 5) over, a new desktop replaces it.
    let effects = state.apply(at(16.5), Input::Tick);
    assert_eq!(creates(&effects).len(), 1, "{effects:?}");
}

#[test]
fn a_paused_engine_holding_a_probe_past_due_does_not_wake_at_once_again_and_again() {
    let (mut state, name, effects) = booted_engine("ready_timeout_secs = 10");
    let (job_id, _) = probes(&effects)[0];
    state.apply(at(3.0), not_ready(job_id, &name));
    let pause = Input::Command {
        id: RequestId(1),
        command: Command::Pause,
        actor: "admin".into(),
    };
    state.apply(at(3.5), pause);
    let effects = state.apply(at(6.0), Input::Tick);
    assert!(probes(&effects).is_empty(), "paused: {effects:?}");
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::WakeAt(t) if *t <= at(6.0).mono)),
        "{effects:?}"
    );
}

#[test]
fn a_desktop_found_running_in_creation_gets_the_whole_timeout_from_when_it_is_first_seen() {
    let mut found = creating("dp-office-0000000001");
    found.running = true;
    let (mut state, effects) = connected_engine(
        ready_fleet("ready_timeout_secs = 10"),
        Settings::default(),
        vec![found],
    );
    let (job_id, _) = *probes(&effects).first().expect("probed");
    // First seen at 0.1 s: at 9 s it is still waited for.
    let effects = state.apply(at(9.0), not_ready(job_id, "dp-office-0000000001"));
    assert!(acting_jobs(&effects).is_empty(), "{effects:?}");
}

#[test]
fn a_class_ready_when_running_joins_the_buffer_at_boot_without_a_probe() {
    let mut found = creating("dp-office-0000000001");
    found.running = true;
    let (_, effects) = connected_engine(
        ready_fleet("ready = \"running\""),
        Settings::default(),
        vec![found],
    );
    assert!(probes(&effects).is_empty(), "{effects:?}");
    assert!(
        acting_jobs(&effects).iter().any(|(_, j)| matches!(
            j,
            Job::Relabel {
                pool: PoolState::Buffer,
                ..
            }
        )),
        "{effects:?}"
    );
    let (_, effects) = connected_engine(
        ready_fleet("ready = \"running\""),
        Settings::default(),
        vec![creating("dp-office-0000000001")],
    );
    assert!(
        acting_jobs(&effects).iter().any(|(_, j)| matches!(
            j,
            Job::Boot {
                wait_for_guest: false,
                ..
            }
        )),
        "{effects:?}"
    );
    let (_, effects) = connected_engine(
        ready_fleet(""),
        Settings::default(),
        vec![creating("dp-office-0000000001")],
    );
    assert!(
        acting_jobs(&effects).iter().any(|(_, j)| matches!(
            j,
            Job::Boot {
                wait_for_guest: true,
                ..
            }
        )),
        "the default waits for the agent: {effects:?}"
    );
}

#[test]
fn the_steps_of_making_a_desktop_are_measured_up_to_its_guest_ready() {
    use deskpool_core::timings::Step;
    let (mut state, effects) = connected_engine(
        ready_fleet("ready_timeout_secs = 60"),
        Settings::default(),
        vec![],
    );
    let (job_id, name, desktop) = the_one_create(&effects);
    // Cloned in 2 s and booted in 3 s once their slots were held, reported at 5 s.
    let effects = state.apply(
        at(5.0),
        Input::JobDone {
            job_id,
            outcome: Outcome::Made {
                outcome: Box::new(Outcome::Booted { desktop }),
                clone: Some(Duration::from_secs(2)),
                boot: Some(Duration::from_secs(3)),
            },
        },
    );
    let s = last_snapshot(&effects);
    assert_eq!(s.classes[0].plan.creation, 1, "booted, its guest awaited");
    let office = &s.timings[0];
    assert_eq!(
        (office.host.as_str(), office.class.as_str()),
        ("h1", "office")
    );
    assert_eq!(office.step(Step::Clone).unwrap().median_secs, 2.0);
    assert_eq!(office.step(Step::Boot).unwrap().median_secs, 3.0);
    assert!(office.step(Step::Whole).is_none(), "not ready yet");

    // The guest answers 20 s after its boot: ready 20 s, whole 25 s.
    let probe = probes(&effects)[0].0;
    let effects = state.apply(
        at(25.0),
        Input::JobDone {
            job_id: probe,
            outcome: Outcome::Ready {
                desktop: buffered(&name, "h1"),
                reach: Default::default(),
            },
        },
    );
    let office = &last_snapshot(&effects).timings[0];
    assert_eq!(office.step(Step::Ready).unwrap().median_secs, 20.0);
    assert_eq!(office.step(Step::Whole).unwrap().median_secs, 25.0);
}

#[test]
fn step_times_are_kept_in_the_clocks_seconds_when_it_runs_faster() {
    use deskpool_core::timings::Step;
    let settings = Settings {
        clock_speed: 60,
        ..Settings::default()
    };
    let (mut state, effects) =
        connected_engine(ready_fleet("ready = \"running\""), settings, vec![]);
    let (job_id, name, _) = the_one_create(&effects);
    let effects = state.apply(
        at(2.0),
        Input::JobDone {
            job_id,
            outcome: Outcome::Made {
                outcome: Box::new(Outcome::Desktop {
                    desktop: buffered(&name, "h1"),
                    event: None,
                }),
                clone: Some(Duration::from_millis(500)),
                boot: Some(Duration::from_secs(1)),
            },
        },
    );
    let office = &last_snapshot(&effects).timings[0];
    let median = |step| office.step(step).unwrap().median_secs;
    assert_eq!(
        (median(Step::Clone), median(Step::Boot), median(Step::Whole)),
        (30.0, 60.0, 90.0),
        "the demo's clock runs 60 times faster than the real one"
    );
}
