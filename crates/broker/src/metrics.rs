//! `GET /metrics`: the latest snapshot in the Prometheus text exposition format (0.0.4).

use std::fmt::Write;

use deskpool_api::{ClassStatus, HostState, HostStatusView, LOGIN_WAIT_BUCKETS, Snapshot};

type ClassValue = fn(&ClassStatus) -> f64;
type HostValue = fn(&HostState) -> Option<f64>;

/// Per class metrics: name, type, help, value.
const CLASS_METRICS: &[(&str, &str, &str, ClassValue)] = &[
    (
        "deskpool_class_production",
        "gauge",
        "Desktops assigned to users.",
        |c| c.plan.production as f64,
    ),
    (
        "deskpool_class_buffer",
        "gauge",
        "Booted, ready, unassigned desktops.",
        |c| c.plan.buffer as f64,
    ),
    (
        "deskpool_class_creation",
        "gauge",
        "Desktops being made.",
        |c| c.plan.creation as f64,
    ),
    (
        "deskpool_class_buffer_target",
        "gauge",
        "Buffered desktops the policy asks for now.",
        |c| c.plan.buffer_target as f64,
    ),
    (
        "deskpool_class_production_target",
        "gauge",
        "Production the policy expects now.",
        |c| c.plan.production_target as f64,
    ),
    (
        "deskpool_class_cap",
        "gauge",
        "Most desktops of the class in all pools.",
        |c| c.cap as f64,
    ),
    (
        "deskpool_logins_total",
        "counter",
        "Desktops handed out since the engine started.",
        |c| c.logins.served as f64,
    ),
    (
        "deskpool_logins_instant_total",
        "counter",
        "Logins served at once from the buffer.",
        |c| c.logins.instant as f64,
    ),
    (
        "deskpool_login_wait_seconds_max",
        "gauge",
        "Longest time a login waited for a desktop.",
        |c| c.logins.wait_secs_max,
    ),
    (
        "deskpool_logins_waiting",
        "gauge",
        "Logins waiting now for a desktop to become ready.",
        |c| c.logins.waiting as f64,
    ),
    (
        "deskpool_logins_refused_total",
        "counter",
        "Logins that got no desktop (empty buffer, or the wait ran out).",
        |c| c.logins.refused as f64,
    ),
    (
        "deskpool_desktop_failures_total",
        "counter",
        "Desktops that failed to become ready.",
        |c| c.logins.failures as f64,
    ),
];

/// Per host metrics: name, type, help, value (`None`: no sample for this host).
const HOST_METRICS: &[(&str, &str, &str, HostValue)] = &[
    (
        "deskpool_host_up",
        "gauge",
        "1 when the host is connected and in service (active or draining).",
        |h| {
            Some(
                if matches!(
                    h.status,
                    HostStatusView::Active | HostStatusView::Draining { .. }
                ) {
                    1.0
                } else {
                    0.0
                },
            )
        },
    ),
    (
        "deskpool_host_standby",
        "gauge",
        "1 for a standby host.",
        |h| Some(if h.standby { 1.0 } else { 0.0 }),
    ),
    (
        "deskpool_host_desktops",
        "gauge",
        "Desktops on the host (any pool).",
        |h| Some(h.desktops as f64),
    ),
    (
        "deskpool_host_capacity_desktops",
        "gauge",
        "Desktops the host may hold, when limited.",
        |h| h.capacity.desktops.map(f64::from),
    ),
];

pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in CLASS_METRICS {
        header(&mut out, name, kind, help);
        for c in &s.classes {
            sample(&mut out, name, &[("class", &c.plan.name)], value(c));
        }
    }
    login_wait_histogram(&mut out, &s.classes);
    for (name, kind, help, value) in HOST_METRICS {
        header(&mut out, name, kind, help);
        for h in &s.hosts {
            if let Some(v) = value(h) {
                sample(&mut out, name, &[("host", &h.name)], v);
            }
        }
    }
    header(
        &mut out,
        "deskpool_host_state",
        "gauge",
        "1 for the state each host is in.",
    );
    for h in &s.hosts {
        sample(
            &mut out,
            "deskpool_host_state",
            &[("host", &h.name), ("state", h.status.label())],
            1.0,
        );
    }
    let engine: [(&str, &str, &str, f64); 5] = [
        (
            "deskpool_engine_passes_total",
            "counter",
            "Reconcile passes run.",
            s.passes as f64,
        ),
        (
            "deskpool_engine_paused",
            "gauge",
            "1 while the engine is paused.",
            bool_value(s.paused),
        ),
        (
            "deskpool_engine_steady",
            "gauge",
            "1 when every class meets its targets.",
            bool_value(s.steady),
        ),
        (
            "deskpool_engine_jobs_in_flight",
            "gauge",
            "Jobs running on the hosts.",
            s.jobs_in_flight as f64,
        ),
        (
            "deskpool_events_dropped_total",
            "counter",
            "Events nobody read in time.",
            s.events_dropped as f64,
        ),
    ];
    for (name, kind, help, v) in engine {
        header(&mut out, name, kind, help);
        sample(&mut out, name, &[], v);
    }
    leadership(&mut out, &s.leadership);
    step_times(&mut out, &s.timings);
    out
}

/// How long making desktops took, per host, class and step (the snapshot's recent samples).
fn step_times(out: &mut String, timings: &[deskpool_core::timings::TimingView]) {
    header(
        out,
        "deskpool_desktop_step_seconds",
        "gauge",
        "Recent time of a step of making a desktop (clone, boot, ready, whole), by statistic (median, p90).",
    );
    for t in timings {
        for st in &t.steps {
            for (stat, v) in [("median", st.median_secs), ("p90", st.p90_secs)] {
                let labels = [
                    ("host", t.host.as_str()),
                    ("class", t.class.as_str()),
                    ("step", st.step.label()),
                    ("stat", stat),
                ];
                sample(out, "deskpool_desktop_step_seconds", &labels, v);
            }
        }
    }
    header(
        out,
        "deskpool_desktop_step_samples",
        "gauge",
        "Desktops the step times are taken over (at most the last 32 per host and class).",
    );
    for t in timings {
        for st in &t.steps {
            let labels = [
                ("host", t.host.as_str()),
                ("class", t.class.as_str()),
                ("step", st.step.label()),
            ];
            sample(
                out,
                "deskpool_desktop_step_samples",
                &labels,
                st.samples as f64,
            );
        }
    }
}

/// The election (`[ha]`): this controller's role, the leader's term, the controllers known.
fn leadership(out: &mut String, l: &deskpool_core::leadership::Leadership) {
    use deskpool_core::leadership::Role;
    header(
        out,
        "deskpool_ha_role",
        "gauge",
        "1 for this controller's role in the election (alone without [ha]).",
    );
    for role in [Role::Alone, Role::Leader, Role::Follower, Role::Lost] {
        sample(
            out,
            "deskpool_ha_role",
            &[("controller", &l.controller), ("role", role.label())],
            bool_value(l.role == role),
        );
    }
    header(
        out,
        "deskpool_ha_term",
        "gauge",
        "The current leader's term (0 when unknown or alone).",
    );
    sample(out, "deskpool_ha_term", &[], l.term as f64);
    header(
        out,
        "deskpool_ha_controllers",
        "gauge",
        "Controllers registered in the election.",
    );
    sample(
        out,
        "deskpool_ha_controllers",
        &[],
        l.controllers.len() as f64,
    );
}

/// `deskpool_login_wait_seconds`: how long each served login waited, per class. The counts live
/// in the snapshot's `LoginStatsView` (so every reader of the snapshot sees the same numbers); the
/// `prometheus-client` crate keeps its own atomic state, so it would only duplicate them here.
fn login_wait_histogram(out: &mut String, classes: &[ClassStatus]) {
    const NAME: &str = "deskpool_login_wait_seconds";
    header(
        out,
        NAME,
        "histogram",
        "Time served logins waited for a desktop (0 for one served at once).",
    );
    let bucket = format!("{NAME}_bucket");
    for c in classes {
        let class = c.plan.name.as_str();
        let l = &c.logins;
        for (i, le) in LOGIN_WAIT_BUCKETS.iter().enumerate() {
            // An engine older than the histogram sends no counts: only `+Inf` is known.
            let count = l.wait_le.get(i).copied().unwrap_or(0);
            let le = le.to_string();
            sample(out, &bucket, &[("class", class), ("le", &le)], count as f64);
        }
        let served = l.served as f64;
        sample(out, &bucket, &[("class", class), ("le", "+Inf")], served);
        sample(
            out,
            &format!("{NAME}_sum"),
            &[("class", class)],
            l.wait_secs_total,
        );
        sample(out, &format!("{NAME}_count"), &[("class", class)], served);
    }
}

fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use deskpool_api::{CapacityView, ClassPlanView, LoginStatsView};

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn renders_classes_and_hosts_with_help_and_type() {
        let s = Snapshot {
            classes: vec![ClassStatus {
                plan: ClassPlanView {
                    name: "office".into(),
                    production: 3,
                    buffer: 2,
                    creation: 1,
                    production_target: 4,
                    buffer_target: 5,
                    total_target: 9,
                    period: None,
                    stale: 0,
                    reasons: Vec::new(),
                    raised_floor: None,
                },
                seed_version: "v1".into(),
                on_old_seed: 0,
                cap: 10,
                logins: LoginStatsView {
                    served: 7,
                    instant: 6,
                    wait_secs_total: 1.5,
                    wait_secs_max: 1.5,
                    ..LoginStatsView::default()
                },
                demand: vec![0, 2],
            }],
            hosts: vec![HostState {
                name: "h\"1".into(),
                uri: "test:///default".into(),
                status: HostStatusView::Down { reason: "x".into() },
                standby: false,
                desktops: 4,
                capacity: CapacityView {
                    desktops: Some(10),
                    memory_mib: None,
                    vcpus: None,
                },
                retry_in_secs: None,
            }],
            ..Snapshot::default()
        };
        let text = render(&s);
        for line in [
            "# TYPE deskpool_class_production gauge",
            "deskpool_class_production{class=\"office\"} 3",
            "deskpool_class_buffer_target{class=\"office\"} 5",
            "# TYPE deskpool_logins_total counter",
            "deskpool_logins_total{class=\"office\"} 7",
            "deskpool_login_wait_seconds_sum{class=\"office\"} 1.5",
            "deskpool_host_up{host=\"h\\\"1\"} 0",
            "deskpool_host_capacity_desktops{host=\"h\\\"1\"} 10",
            "deskpool_host_state{host=\"h\\\"1\",state=\"down\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
        // Every sample's metric has HELP and TYPE lines before it (a histogram's under its
        // family's name).
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
                .unwrap_or(name);
            let at = text.find(l).unwrap();
            assert!(text[..at].contains(&format!("# HELP {family} ")), "{name}");
            assert!(text[..at].contains(&format!("# TYPE {family} ")), "{name}");
        }
    }

    #[test]
    fn a_followers_role_term_and_peers_are_exposed() {
        use deskpool_core::leadership::{ControllerInfo, Leadership, Role};
        let peer = |name: &str| ControllerInfo {
            name: name.into(),
            advertise: None,
        };
        let s = Snapshot {
            leadership: Leadership {
                role: Role::Follower,
                controller: "ctl-b".into(),
                term: 41,
                leader: Some(peer("ctl-a")),
                controllers: vec![peer("ctl-a"), peer("ctl-b")],
                ..Leadership::alone()
            },
            ..Snapshot::default()
        };
        let text = render(&s);
        let role = |r: &str| {
            value(
                &text,
                &format!("deskpool_ha_role{{controller=\"ctl-b\",role=\"{r}\"}}"),
            )
        };
        assert_eq!(
            (role("follower"), role("leader"), role("lost")),
            (1.0, 0.0, 0.0)
        );
        assert_eq!(value(&text, "deskpool_ha_term"), 41.0);
        assert_eq!(value(&text, "deskpool_ha_controllers"), 2.0);
    }

    #[test]
    fn the_measured_step_times_are_exposed_per_host_class_and_step() {
        use deskpool_core::timings::{Step, StepTimings};
        let mut t = StepTimings::default();
        for secs in [1.0, 2.0, 3.0] {
            t.record("h1", "office", Step::Boot, secs);
        }
        let s = Snapshot {
            timings: t.views(),
            ..Snapshot::default()
        };
        let text = render(&s);
        let series = |stat: &str| {
            format!(
                "deskpool_desktop_step_seconds{{host=\"h1\",class=\"office\",step=\"boot\",stat=\"{stat}\"}}"
            )
        };
        assert_eq!(value(&text, &series("median")), 2.0);
        assert_eq!(value(&text, &series("p90")), 3.0);
        assert_eq!(
            value(
                &text,
                "deskpool_desktop_step_samples{host=\"h1\",class=\"office\",step=\"boot\"}"
            ),
            3.0
        );
    }

    /// The value of the one sample `series` (name and labels as written).
    fn value(text: &str, series: &str) -> f64 {
        let found: Vec<f64> = text
            .lines()
            .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .collect();
        assert_eq!(found.len(), 1, "{series} in\n{text}");
        found[0]
    }

    #[test]
    fn login_waits_are_a_histogram_with_cumulative_buckets_a_count_and_a_sum() {
        let mut logins = deskpool_core::ledger::LoginStats::default();
        // Two instant logins (0 s waits), and waits of 0.3 s, 1 s (on a bound), 45 s, 15 min.
        logins.record_served(None);
        logins.record_served(None);
        for secs in [0.3, 1.0, 45.0, 900.0] {
            logins.record_served(Some(Duration::from_secs_f64(secs)));
        }
        let class = |name: &str, logins: LoginStatsView| ClassStatus {
            plan: ClassPlanView {
                name: name.into(),
                production: 0,
                buffer: 0,
                creation: 0,
                production_target: 0,
                buffer_target: 0,
                total_target: 0,
                period: None,
                stale: 0,
                reasons: Vec::new(),
                raised_floor: None,
            },
            seed_version: "v1".into(),
            on_old_seed: 0,
            cap: 10,
            logins,
            demand: vec![],
        };
        let s = Snapshot {
            classes: vec![
                class("of\"fice", logins.into()),
                class("idle", LoginStatsView::default()),
            ],
            ..Snapshot::default()
        };
        let text = render(&s);
        assert_eq!(
            text.matches("# TYPE deskpool_login_wait_seconds histogram\n")
                .count(),
            1,
            "{text}"
        );
        assert!(
            !text.contains("# TYPE deskpool_login_wait_seconds_sum"),
            "{text}"
        );
        assert!(
            text.contains("# HELP deskpool_login_wait_seconds "),
            "{text}"
        );
        let bucket = |le: &str| {
            value(
                &text,
                &format!("deskpool_login_wait_seconds_bucket{{class=\"of\\\"fice\",le=\"{le}\"}}"),
            )
        };
        let expected = [
            ("0.1", 2.0),
            ("0.5", 3.0),
            ("1", 4.0),
            ("2", 4.0),
            ("5", 4.0),
            ("10", 4.0),
            ("30", 4.0),
            ("60", 5.0),
            ("120", 5.0),
            ("300", 5.0),
            ("600", 5.0),
            ("+Inf", 6.0),
        ];
        let counts: Vec<f64> = expected.iter().map(|(le, _)| bucket(le)).collect();
        assert_eq!(
            counts,
            expected.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            "{text}"
        );
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "cumulative");
        let count = value(
            &text,
            "deskpool_login_wait_seconds_count{class=\"of\\\"fice\"}",
        );
        assert_eq!(bucket("+Inf"), count);
        assert_eq!(count, 6.0);
        let sum = value(
            &text,
            "deskpool_login_wait_seconds_sum{class=\"of\\\"fice\"}",
        );
        assert!((sum - 946.3).abs() < 1e-6, "{sum}");
        // A class nobody logged in to: every bucket, the count and the sum at 0.
        for l in text.lines().filter(|l| l.contains("class=\"idle\"")) {
            if l.starts_with("deskpool_login_wait_seconds") {
                assert!(l.ends_with(" 0"), "{l}");
            }
        }
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("deskpool_login_wait_seconds_bucket{class=\"idle\""))
                .count(),
            LOGIN_WAIT_BUCKETS.len() + 1
        );
    }

    #[test]
    fn a_snapshot_without_the_bucket_counts_still_parses_and_renders_a_valid_histogram() {
        // LoginStatsView as an engine before the histogram serialised it.
        let old = r#"{"served":3,"instant":1,"waiting":0,"wait_secs_total":4.0,
            "wait_secs_max":3.0,"refused":0,"failures":0}"#;
        let logins: LoginStatsView = serde_json::from_str(old).unwrap();
        assert!(logins.wait_le.is_empty());
        let mut s = Snapshot::default();
        s.classes.push(ClassStatus {
            plan: ClassPlanView {
                name: "office".into(),
                production: 0,
                buffer: 0,
                creation: 0,
                production_target: 0,
                buffer_target: 0,
                total_target: 0,
                period: None,
                stale: 0,
                reasons: Vec::new(),
                raised_floor: None,
            },
            seed_version: "v1".into(),
            on_old_seed: 0,
            cap: 10,
            logins,
            demand: vec![],
        });
        let text = render(&s);
        assert_eq!(
            value(
                &text,
                "deskpool_login_wait_seconds_bucket{class=\"office\",le=\"600\"}"
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                "deskpool_login_wait_seconds_bucket{class=\"office\",le=\"+Inf\"}"
            ),
            3.0
        );
        assert_eq!(
            value(&text, "deskpool_login_wait_seconds_count{class=\"office\"}"),
            3.0
        );
    }
}
