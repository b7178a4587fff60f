//! The headless summary `deskpool reconcile` prints: per class levels and targets, per host
//! state and load, as a table or as one JSON object.

use serde::Serialize;

use deskpool_api::Snapshot;

#[derive(Serialize)]
struct ClassLine<'a> {
    name: &'a str,
    production: u32,
    buffer: u32,
    creation: u32,
    buffer_target: u32,
    production_target: u32,
}

#[derive(Serialize)]
struct HostLine<'a> {
    name: &'a str,
    state: &'a str,
    desktops: u32,
}

#[derive(Serialize)]
struct Summary<'a> {
    classes: Vec<ClassLine<'a>>,
    hosts: Vec<HostLine<'a>>,
}

fn summary(s: &Snapshot) -> Summary<'_> {
    Summary {
        classes: s
            .classes
            .iter()
            .map(|c| ClassLine {
                name: &c.plan.name,
                production: c.plan.production,
                buffer: c.plan.buffer,
                creation: c.plan.creation,
                buffer_target: c.plan.buffer_target,
                production_target: c.plan.production_target,
            })
            .collect(),
        hosts: s
            .hosts
            .iter()
            .map(|h| HostLine {
                name: &h.name,
                state: h.status.label(),
                desktops: h.desktops,
            })
            .collect(),
    }
}

pub fn json(s: &Snapshot) -> String {
    serde_json::to_string(&summary(s)).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

pub fn table(s: &Snapshot) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>10} {:>10} {:>9} {:>13} {:>17}  why",
        "class", "production", "buffer", "creation", "buffer target", "production target"
    );
    for c in &s.classes {
        let p = &c.plan;
        let _ = writeln!(
            out,
            "{:<16} {:>10} {:>10} {:>9} {:>13} {:>17}  {}",
            p.name,
            p.production,
            p.buffer,
            p.creation,
            p.buffer_target,
            p.production_target,
            p.explanation()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<16} {:<12} {:>8} {:>10}  detail",
        "host", "state", "desktops", "capacity"
    );
    for h in &s.hosts {
        let capacity = match (h.capacity.desktops, h.capacity.memory_mib, h.capacity.vcpus) {
            (Some(d), _, _) => d.to_string(),
            (None, Some(m), Some(v)) => format!("{}G/{v}c", m / 1024),
            (None, Some(m), None) => format!("{}G", m / 1024),
            (None, None, Some(v)) => format!("{v}c"),
            (None, None, None) => "-".into(),
        };
        let detail = match &h.status {
            deskpool_api::HostStatusView::Down { reason } => reason.clone(),
            _ if h.standby => "standby host".into(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<16} {:<12} {:>8} {:>10}  {}",
            h.name,
            h.status.label(),
            h.desktops,
            capacity,
            detail
        );
    }
    out
}
