//! Standby hosts are woken only for lack of room: the demo's 07:00 ramp, which pacing alone
//! holds back, runs on the two active hosts.

use std::path::Path;

use super::*;

#[test]
fn the_demos_seven_oclock_ramp_never_wakes_the_standby_host() {
    let fleet = deskpool_config::demo_config(Path::new("/demo"));
    assert!(
        fleet.hosts.iter().any(|h| h.standby),
        "the demo has a standby host"
    );
    // Monday 2026-01-05: office's period (production 30, buffer up to 16) starts at 07:00, and
    // h1 and h2 (256 GiB, 128 vCPUs each) make 4 office desktops at a time each.
    let text = "time,user,class,event\n\
                2026-01-05T07:30:00Z,u1,office,login\n\
                2026-01-05T08:00:00Z,u1,office,logout\n";
    let events = trace::parse(text, &fleet).unwrap();
    let report = simulate(&fleet, &events, &SimOptions::default());
    let office = &report.classes[0];
    assert!(
        office.peak_desktops >= 36,
        "the ramp builds the period's desktops: {office:?}"
    );
    // Midnight to 08:00 on h1 and h2 only: h3 never came into service.
    assert!(
        (report.host_hours - 2.0 * 8.0).abs() < 1e-9,
        "host-hours {} (a standby host was activated)",
        report.host_hours
    );
}
