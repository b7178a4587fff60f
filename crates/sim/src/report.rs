//! What a simulation measured, per class and in total, as a table or JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::windows::{HourReport, WindowKind, WindowReport};

/// The figures of one class (or of all classes together).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClassReport {
    pub name: String,
    pub logins: u64,
    /// Logins that found a ready desktop at once.
    pub instant: u64,
    /// `instant / logins` (1 when there were no logins).
    pub instant_share: f64,
    /// Logins served after a wait.
    pub waited: u64,
    /// Logins never served: the cap left no room, the wait passed the limit, or the user
    /// logged out while waiting.
    pub refused: u64,
    /// Waits of the logins served after a wait, in seconds (0 when none waited).
    pub wait_p50_secs: f64,
    pub wait_p95_secs: f64,
    pub wait_p99_secs: f64,
    pub wait_max_secs: f64,
    /// p99 of the waits of every served login (instant ones wait 0).
    pub wait_p99_all_secs: f64,
    /// Hours of booted, unassigned desktops (the buffer), summed.
    pub idle_desktop_hours: f64,
    /// Most desktops at once (creation + buffer + production).
    pub peak_desktops: u64,
}

/// The whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Simulated span, from midnight of the first event's day to the last event.
    pub start: String,
    pub end: String,
    pub classes: Vec<ClassReport>,
    pub total: ClassReport,
    /// Hours hosts were in service (active, activating or draining), summed over hosts.
    pub host_hours: f64,
    /// Planner passes run.
    pub passes: u64,
    /// The declared events, bursts and reconnects after a mass logout, in time order
    /// ([`crate::windows`]).
    pub windows: Vec<WindowReport>,
    /// The clock hours in which a login waited or was refused.
    pub hours: Vec<HourReport>,
}

/// Nearest-rank percentile of sorted values (0 for none).
pub(crate) fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// Fills the wait figures of `r` from the waits of the logins that waited.
pub(crate) fn fill_waits(r: &mut ClassReport, waits: &mut [i64]) {
    waits.sort_unstable();
    r.wait_p50_secs = percentile(waits, 0.50);
    r.wait_p95_secs = percentile(waits, 0.95);
    r.wait_p99_secs = percentile(waits, 0.99);
    r.wait_max_secs = waits.last().copied().unwrap_or(0) as f64;
    // Every served login: `instant` zeros, then the waits.
    let served = r.instant as usize + waits.len();
    r.wait_p99_all_secs = if served == 0 {
        0.0
    } else {
        let rank = ((0.99 * served as f64).ceil() as usize).clamp(1, served);
        if rank <= r.instant as usize {
            0.0
        } else {
            waits[rank - r.instant as usize - 1] as f64
        }
    };
    r.instant_share = if r.logins == 0 {
        1.0
    } else {
        r.instant as f64 / r.logins as f64
    };
}

impl Report {
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "simulated {} .. {}", self.start, self.end);
        let _ = writeln!(
            out,
            "{:<8} {:>6} {:>8} {:>6} {:>7} {:>6} {:>6} {:>6} {:>6} {:>9} {:>5}",
            "class",
            "logins",
            "instant",
            "waited",
            "refused",
            "p50 s",
            "p95 s",
            "p99 s",
            "max s",
            "idle d-h",
            "peak"
        );
        for r in self.classes.iter().chain(std::iter::once(&self.total)) {
            let _ = writeln!(
                out,
                "{:<8} {:>6} {:>7.2}% {:>6} {:>7} {:>6.0} {:>6.0} {:>6.0} {:>6.0} {:>9.1} {:>5}",
                r.name,
                r.logins,
                r.instant_share * 100.0,
                r.waited,
                r.refused,
                r.wait_p50_secs,
                r.wait_p95_secs,
                r.wait_p99_secs,
                r.wait_max_secs,
                r.idle_desktop_hours,
                r.peak_desktops
            );
        }
        let _ = writeln!(
            out,
            "host-hours {:.1}; {} planner passes; waits are of the logins that waited",
            self.host_hours, self.passes
        );
        self.windows_table(&mut out);
        self.hours_table(&mut out);
        out
    }

    fn windows_table(&self, out: &mut String) {
        if self.windows.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nwindows (events declared; bursts and reconnects after a mass logout found in the trace)"
        );
        let _ = writeln!(
            out,
            "{:<9} {:<8} {:<20} {:<11} {:>6} {:>7} {:>6} {:>7} {:>6}  what",
            "kind", "class", "from", "to", "logins", "instant", "waited", "refused", "max s"
        );
        for w in &self.windows {
            let kind = match w.kind {
                WindowKind::Event => "event",
                WindowKind::Burst => "burst",
                WindowKind::Reconnect => "reconnect",
            };
            let c = &w.counts;
            let _ = writeln!(
                out,
                "{:<9} {:<8} {:<20} {:<11} {:>6} {:>7} {:>6} {:>7} {:>6.0}  {}",
                kind,
                w.class,
                w.from,
                // The same day as `from` in every window found: its time is enough.
                w.to.get(11..).unwrap_or(&w.to),
                c.logins,
                c.instant,
                c.waited,
                c.refused,
                c.wait_max_secs,
                w.name
            );
        }
    }

    fn hours_table(&self, out: &mut String) {
        let _ = writeln!(out, "\nhours in which logins waited or were refused (UTC)");
        if self.hours.is_empty() {
            let _ = writeln!(out, "none");
            return;
        }
        let _ = writeln!(
            out,
            "{:<17} {:>6} {:>6} {:>7} {:>6}  classes",
            "hour", "logins", "waited", "refused", "max s"
        );
        for h in &self.hours {
            let classes: Vec<String> = h
                .classes
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            let c = &h.counts;
            let _ = writeln!(
                out,
                "{:<17} {:>6} {:>6} {:>7} {:>6.0}  {}",
                h.hour.get(..16).unwrap_or(&h.hour),
                c.logins,
                c.waited,
                c.refused,
                c.wait_max_secs,
                classes.join(", ")
            );
        }
    }
}
