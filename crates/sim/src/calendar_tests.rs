//! Dated events and holidays from the configuration reach the planner the simulator replays
//! through: an event raises the buffer before it starts, a holiday drops the weekday periods.

use super::tests::{class_toml, run_lines, sim_fleet};
use super::*;
use deskpool_core::policy::Fleet;

/// One class `office` without a spare desktop outside its periods and events; `extra` is
/// appended to its policy, `engine` to the `[engine]` table.
fn fleet(engine: &str, extra: &str) -> Fleet {
    let policy = format!(
        "cap = 50\nbuffer = {{ floor = 0, ceiling = 0 }}\non_logout = \"delete\"\n\
         scale_down_delay_secs = 0\nready_secs = 300\n\
         pacing = {{ clones_per_host = 20, boots_per_host = 20 }}\n{extra}"
    );
    sim_fleet(engine, 100, &[class_toml("office", &policy)])
}

fn run(fleet: &Fleet, logins: &[String]) -> ClassReport {
    run_lines(fleet, logins).0.classes.remove(0)
}

const TRAINING: &str = r#"
[[classes.policy.events]]
name = "training"
date = "2026-01-05"
from = "09:00"
to = "10:00"
production = 20
"#;

#[test]
fn a_declared_event_has_its_desktops_ready_before_it_starts() {
    // Twenty users log in within the event's first twenty seconds (Monday 2026-01-05).
    let storm: Vec<String> = (0..20)
        .map(|i| format!("2026-01-05T09:00:{i:02}Z,u{i},office,login"))
        .collect();
    let undeclared = run(&fleet("", ""), &storm);
    assert_eq!(undeclared.logins, 20);
    assert_eq!(undeclared.instant, 0, "{undeclared:?}");

    let declared = run(&fleet("", TRAINING), &storm);
    assert_eq!(declared.logins, 20);
    assert_eq!(declared.instant, 20, "{declared:?}");
    // Built ahead by ready_secs (300 s), not all day: 20 desktops idle for at most 5 minutes.
    assert!(
        declared.idle_desktop_hours > 0.0 && declared.idle_desktop_hours <= 20.0 * 300.0 / 3600.0,
        "{declared:?}"
    );
}

#[test]
fn an_event_read_in_the_engine_time_zone_is_prepared_at_its_local_time() {
    // 09:00 in Paris is 08:00 UTC in January.
    let storm: Vec<String> = (0..5)
        .map(|i| format!("2026-01-05T08:00:{i:02}Z,u{i},office,login"))
        .collect();
    let paris = run(&fleet("timezone = \"Europe/Paris\"", TRAINING), &storm);
    assert_eq!(paris.instant, 5, "{paris:?}");
    let utc = run(&fleet("", TRAINING), &storm);
    assert_eq!(utc.instant, 0, "{utc:?}");
}

#[test]
fn on_a_holiday_the_weekday_period_does_not_apply() {
    let office_hours = r#"
[[classes.policy.periods]]
days = ["weekdays"]
from = "08:00"
to = "18:00"
buffer = { floor = 10, ceiling = 10 }
"#;
    // Friday 2026-01-16, noon.
    let login = ["2026-01-16T12:00:00Z,u1,office,login".to_string()];
    let working_day = run(&fleet("", office_hours), &login);
    assert_eq!(working_day.instant, 1, "{working_day:?}");
    assert!(working_day.peak_desktops >= 10, "{working_day:?}");

    let holiday = run(&fleet("holidays = [\"2026-01-16\"]", office_hours), &login);
    assert_eq!(holiday.instant, 0, "{holiday:?}");
    assert!(holiday.peak_desktops < 10, "{holiday:?}");
}
