//! A human summary of a loaded configuration, for `deskpool check`.

use std::fmt::Write;

use super::rules::{describe_period, shutoff_name};
use super::validate::{quoted, shown};
use deskpool_core::policy::{BufferRule, Capacity, DomainTypeSetting, Fleet, LogoutAction};

/// Describes the hosts and classes of `fleet`, one block per host and class.
pub fn summary(fleet: &Fleet) -> String {
    let mut out = String::new();
    let e = &fleet.engine;
    let tz = e.timezone.iana_name().unwrap_or("(unnamed time zone)");
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        out,
        "engine: tick {}s, resync {}s, standby hosts idle {}s before draining, {} attempts \
         (retry {}s..{}s), stuck after {}s creating or {}s removing, periods in {tz}",
        e.tick_secs,
        e.resync_secs,
        e.standby_idle_secs,
        e.max_attempts,
        e.retry_base_secs,
        e.retry_max_secs,
        e.create_timeout_secs,
        e.remove_timeout_secs,
    );
    let _ = writeln!(
        out,
        "creation pool: {} at {}",
        e.creation_pool, e.creation_pool_path
    );
    if let Some(dir) = &e.state_dir {
        let _ = writeln!(out, "state dir: {}", dir.display());
    }
    if !e.holidays.is_empty() {
        let days: Vec<String> = e.holidays.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "holidays (periods apply as on a Sunday): {}",
            days.join(", ")
        );
    }

    let standby = fleet.hosts.iter().filter(|h| h.standby).count();
    let _ = writeln!(
        out,
        "\nhosts: {} ({} active, {standby} standby)",
        fleet.hosts.len(),
        fleet.hosts.len() - standby
    );
    for h in &fleet.hosts {
        let role = if h.standby { "standby" } else { "active" };
        let _ = writeln!(
            out,
            "  {} [{role}] {}  capacity: {}",
            h.name,
            h.uri,
            describe_capacity(&h.capacity)
        );
        if let Some(cmd) = &h.activate_command {
            let _ = writeln!(out, "    activate: {}", shown(cmd));
        }
        if let Some(cmd) = &h.deactivate_command {
            let _ = writeln!(out, "    deactivate: {}", shown(cmd));
        }
        if let Some(path) = &h.creation_pool_path {
            let _ = writeln!(out, "    creation pool at {path}");
        }
        if h.domain_type != DomainTypeSetting::Auto {
            let _ = writeln!(out, "    domain type {}", h.domain_type.as_str());
        }
    }

    let _ = writeln!(out, "\nclasses: {}", fleet.classes.len());
    for c in &fleet.classes {
        let p = &c.policy;
        let _ = writeln!(
            out,
            "  {}: {} MiB, {} vcpus, {} GiB disk, {} template",
            c.name,
            c.memory_mib,
            c.vcpus,
            c.disk_gib,
            if c.template.is_some() {
                "own"
            } else {
                "built-in"
            },
        );
        let from = c
            .seed
            .host
            .as_deref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    seed: {}/{} version {}{from}",
            c.seed.pool, c.seed.volume, c.seed.version
        );
        if let Some(boot) = &c.boot {
            let initrd = boot
                .initrd
                .as_deref()
                .map(|i| format!(", initrd {}", shown(i)))
                .unwrap_or_default();
            let cmdline = boot
                .cmdline
                .as_deref()
                .map(|c| format!(", cmdline {}", shown(c)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    boots kernel {}{initrd}{cmdline}",
                shown(&boot.kernel)
            );
        }
        let _ = writeln!(out, "    ready: {}", c.ready.describe());
        let logout = match p.on_logout {
            LogoutAction::Recycle => "recycle",
            LogoutAction::Delete => "delete",
        };
        let _ = writeln!(
            out,
            "    cap {}; ready in {}s; scale down after {}s; on logout: {logout}; on shutoff: {}; disconnect grace {}s; pacing: {} clones, {} boots per host",
            p.cap,
            p.ready_secs,
            p.scale_down_delay_secs,
            shutoff_name(p.on_shutoff),
            p.disconnect_grace_secs,
            p.pacing.clones_per_host,
            p.pacing.boots_per_host,
        );
        let predictive = p.predictive.is_some();
        let _ = writeln!(
            out,
            "    outside periods: production {}, buffer {}",
            p.production,
            describe_buffer(&p.buffer, predictive)
        );
        if let Some(predictive) = p.predictive {
            let _ = writeln!(
                out,
                "    predictive buffer: {}% of logins instant, from the forecast of logins \
                 during ready_secs (within each rule's floor and ceiling; percent unused)",
                predictive.service_level * 100.0
            );
        }
        for (i, period) in p.periods.iter().enumerate() {
            let _ = writeln!(
                out,
                "    period {i}: {}: production {}, buffer {}",
                describe_period(period),
                period.production,
                describe_buffer(&period.buffer, predictive)
            );
        }
        for (i, event) in p.events.iter().enumerate() {
            let _ = writeln!(
                out,
                "    event {i} {}: {}: production {}, buffer {} (in place of any period)",
                quoted(&event.name),
                event.describe(),
                event.production,
                describe_buffer(&event.buffer, predictive)
            );
        }
        if p.periods.is_empty() && p.events.is_empty() {
            let _ = writeln!(out, "    no periods: the rule above applies at all times");
        } else if p.periods.is_empty() {
            let _ = writeln!(
                out,
                "    no periods: the rule above applies outside the events"
            );
        }
    }
    out
}

fn describe_capacity(c: &Capacity) -> String {
    let mut parts = Vec::new();
    if let Some(n) = c.desktops {
        parts.push(format!("{n} desktops"));
    }
    if let Some(n) = c.memory_mib {
        parts.push(format!("{n} MiB"));
    }
    if let Some(n) = c.vcpus {
        parts.push(format!("{n} vcpus"));
    }
    parts.join(", ")
}

/// `10% of production, at least 4, at most 12`, or `4 (fixed)` without a percentage; for a
/// predictive class, the range the forecast's spare is kept in (its percentage is unused).
fn describe_buffer(b: &BufferRule, predictive: bool) -> String {
    if predictive {
        format!(
            "from the forecast, at least {}, at most {}",
            b.floor, b.ceiling
        )
    } else if b.percent == 0 {
        format!("{} (fixed)", b.floor.min(b.ceiling))
    } else {
        format!(
            "{}% of production, at least {}, at most {}",
            b.percent, b.floor, b.ceiling
        )
    }
}
