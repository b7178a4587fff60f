//! The planner applies dated events and holidays through `Policy::in_force_at`: an event's
//! production and buffer are asked for `ready_secs` before it starts and take precedence over
//! the weekly period; on a holiday a weekday period asks for nothing.

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::civil::date;

use deskpool_core::model::SeedCopy;
use deskpool_core::plan::{Busy, HostStatus, HostView, PlanInput, PlanMemory, plan};
use deskpool_core::policy::rules::{DEFAULT_PACING, default_buffer};
use deskpool_core::policy::{
    BufferRule, Capacity, ClassSpec, EngineSettings, Event, Fleet, HostSpec, LogoutAction, Period,
    Policy, SeedSpec, ShutoffAction, TimeOfDay, Weekdays,
};

fn fleet(periods: Vec<Period>, events: Vec<Event>, holidays: Vec<jiff::civil::Date>) -> Fleet {
    let policy = Policy {
        cap: 100,
        buffer: BufferRule {
            floor: 1,
            percent: 0,
            ceiling: 1,
        },
        production: 0,
        periods,
        events,
        pacing: DEFAULT_PACING,
        on_logout: LogoutAction::Recycle,
        on_shutoff: ShutoffAction::Restart,
        ready_secs: 90,
        scale_down_delay_secs: 300,
        disconnect_grace_secs: 0,
        predictive: None,
    };
    Fleet {
        ha: None,
        engine: EngineSettings {
            holidays,
            ..EngineSettings::default()
        },
        console: Default::default(),
        broker: Default::default(),
        hosts: vec![HostSpec {
            name: "h1".into(),
            uri: "test:///h1.xml".into(),
            capacity: Capacity {
                desktops: Some(200),
                memory_mib: None,
                vcpus: None,
            },
            standby: false,
            activate_command: None,
            deactivate_command: None,
            creation_pool_path: None,
            domain_type: Default::default(),
        }],
        classes: vec![ClassSpec {
            name: "office".into(),
            seed: SeedSpec {
                pool: "seeds".into(),
                volume: "office.qcow2".into(),
                version: "v1".into(),
                host: None,
            },
            memory_mib: 1024,
            vcpus: 1,
            disk_gib: 10,
            template: None,
            boot: None,
            ready: Default::default(),
            policy,
        }],
    }
}

/// (production target, buffer target, period index) of `office` at `now` (UTC).
fn targets(fleet: &Fleet, now: &str) -> (u32, u32, Option<usize>) {
    let hosts = [HostView {
        name: "h1".into(),
        status: HostStatus::Active,
        seed_copies: vec![SeedCopy {
            class: "office".into(),
            version: "v1".into(),
            volume: "seed-office@v1.img".into(),
            path: "/pool/seed-office@v1.img".into(),
            format: "qcow2".into(),
            complete: true,
        }],
        seed_sources: vec![],
        desktop_volumes: vec![],
        unlabelled_desktops: vec![],
    }];
    let now: Timestamp = now.parse().unwrap();
    let p = plan(&PlanInput {
        fleet,
        hosts: &hosts,
        desktops: &[],
        busy: &Busy::default(),
        memory: &PlanMemory::default(),
        now,
        forecasts: &HashMap::new(),
        measured_ready: &HashMap::new(),
    });
    let c = &p.classes[0];
    (c.production_target, c.buffer_target, c.period)
}

fn office_hours() -> Period {
    Period {
        days: Weekdays::parse_day("weekdays").unwrap(),
        from: TimeOfDay(7 * 3600),
        to: TimeOfDay(18 * 3600),
        production: 10,
        buffer: default_buffer(100),
    }
}

fn training() -> Event {
    Event {
        name: "training".into(),
        first_day: date(2026, 1, 5),
        last_day: date(2026, 1, 5),
        from: TimeOfDay(9 * 3600),
        to: TimeOfDay(10 * 3600),
        production: 40,
        buffer: BufferRule {
            floor: 5,
            percent: 0,
            ceiling: 5,
        },
    }
}

#[test]
fn an_event_is_prepared_ready_secs_ahead_and_takes_precedence_over_the_period() {
    let plain = fleet(vec![office_hours()], vec![], vec![]);
    let declared = fleet(vec![office_hours()], vec![training()], vec![]);
    // Monday 2026-01-05. At 08:58:00, 90 s ahead is still before the event: the period's.
    assert_eq!(
        targets(&declared, "2026-01-05T08:58:00Z"),
        (10, 10, Some(0))
    );
    // At 08:58:31 the event starts within ready_secs: its 40 expected and its 5 spare.
    assert_eq!(
        targets(&declared, "2026-01-05T08:58:31Z"),
        (40, 45, Some(0))
    );
    assert_eq!(targets(&plain, "2026-01-05T08:58:31Z"), (10, 10, Some(0)));
    // During it, the event alone (no period index: the period is not what sets the rule).
    assert_eq!(targets(&declared, "2026-01-05T09:30:00Z"), (40, 45, None));
    // After it, the period again.
    assert_eq!(
        targets(&declared, "2026-01-05T10:00:00Z"),
        (10, 10, Some(0))
    );
}

#[test]
fn on_a_holiday_the_weekday_period_asks_for_nothing() {
    let working = fleet(vec![office_hours()], vec![], vec![]);
    let holiday = fleet(vec![office_hours()], vec![], vec![date(2026, 1, 16)]);
    assert_eq!(targets(&working, "2026-01-16T12:00:00Z"), (10, 10, Some(0)));
    // The class's own rule: nothing expected, the floor of 1.
    assert_eq!(targets(&holiday, "2026-01-16T12:00:00Z"), (0, 1, None));
}
