//! What `/v1/classes` and `/v1/status` answer: the snapshot's classes and hosts, in short.

use serde::{Deserialize, Serialize};

use deskpool_api::{ClassStatus, HostStatusView, LoginStatsView, Snapshot};

/// One class as `/v1/classes` and `/v1/status` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassLine {
    pub name: String,
    pub production: u32,
    pub buffer: u32,
    pub creation: u32,
    pub production_target: u32,
    pub buffer_target: u32,
    pub cap: u32,
    pub seed_version: String,
    pub explanation: String,
    pub logins: LoginStatsView,
}

/// One host as `/v1/status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostLine {
    pub name: String,
    pub state: String,
    pub standby: bool,
    pub desktops: u32,
    pub capacity_desktops: Option<u32>,
    pub reason: Option<String>,
}

/// The answer of `/v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub passes: u64,
    pub paused: bool,
    pub read_only: bool,
    pub steady: bool,
    pub jobs_in_flight: usize,
    /// This controller's place in the election (`role: alone` without `[ha]`).
    #[serde(default)]
    pub leadership: deskpool_core::leadership::Leadership,
    pub classes: Vec<ClassLine>,
    pub hosts: Vec<HostLine>,
}

fn class_line(c: &ClassStatus) -> ClassLine {
    ClassLine {
        name: c.plan.name.clone(),
        production: c.plan.production,
        buffer: c.plan.buffer,
        creation: c.plan.creation,
        production_target: c.plan.production_target,
        buffer_target: c.plan.buffer_target,
        cap: c.cap,
        seed_version: c.seed_version.clone(),
        explanation: c.plan.explanation(),
        logins: c.logins.clone(),
    }
}

pub fn class_lines(s: &Snapshot) -> Vec<ClassLine> {
    s.classes.iter().map(class_line).collect()
}

pub fn status(s: &Snapshot) -> Status {
    Status {
        passes: s.passes,
        paused: s.paused,
        read_only: s.read_only,
        steady: s.steady,
        jobs_in_flight: s.jobs_in_flight,
        leadership: s.leadership.clone(),
        classes: class_lines(s),
        hosts: s
            .hosts
            .iter()
            .map(|h| HostLine {
                name: h.name.clone(),
                state: h.status.label().to_string(),
                standby: h.standby,
                desktops: h.desktops,
                capacity_desktops: h.capacity.desktops,
                reason: match &h.status {
                    HostStatusView::Down { reason } => Some(reason.clone()),
                    _ => None,
                },
            })
            .collect(),
    }
}
