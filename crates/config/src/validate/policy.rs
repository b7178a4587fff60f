//! `[classes.policy]`: cap, production, buffer rules, pacing, logout and shut-off actions,
//! periods (which must not overlap), events (in [`super::calendar`]) and predictive buffers. Each problem is placed at its key;
//! the policy built is then held to [`Policy::problems`] like every other way in.

use super::quoted;
use crate::error::Diag;
use crate::reader::{Field, Section};
use deskpool_core::policy::rules;
use deskpool_core::policy::{
    BufferRule, LogoutAction, Pacing, Period, Policy, Predictive, ShutoffAction, TimeOfDay,
    Weekdays,
};

const POLICY_KEYS: &[&str] = &[
    "cap",
    "production",
    "buffer",
    "ready_secs",
    "scale_down_delay_secs",
    "disconnect_grace_secs",
    "on_logout",
    "on_shutoff",
    "pacing",
    "periods",
    "events",
    "predictive",
];
const BUFFER_KEYS: &[&str] = &["floor", "percent", "ceiling"];
const PACING_KEYS: &[&str] = &["clones_per_host", "boots_per_host"];
const PREDICTIVE_KEYS: &[&str] = &["service_level"];
const PERIOD_KEYS: &[&str] = &["days", "from", "to", "production", "buffer"];

pub(super) fn policy(f: &Field, d: &mut Diag, class: Option<&str>) -> Option<Policy> {
    let s = f.table(d)?;
    s.check_keys(d, POLICY_KEYS);
    let cap: Option<u32> = s.req(d, "cap", |f, d| f.ranged(d, rules::CAP));
    let production = s.opt(d, "production", rules::DEFAULT_PRODUCTION, |f, d| {
        production(f, d, cap)
    });
    let buffer = match s.field("buffer") {
        Some(f) => f.table(d).and_then(|b| buffer(d, &b, cap)),
        None => cap.map(rules::default_buffer),
    };
    let ready_secs = s.opt(d, "ready_secs", rules::DEFAULT_READY_SECS, |f, d| {
        f.ranged(d, rules::READY_SECS)
    });
    let scale_down_delay_secs = s.opt(
        d,
        "scale_down_delay_secs",
        rules::DEFAULT_SCALE_DOWN_DELAY_SECS,
        |f, d| f.ranged(d, rules::SCALE_DOWN_DELAY_SECS),
    );
    let disconnect_grace_secs = s.opt(
        d,
        "disconnect_grace_secs",
        rules::DEFAULT_DISCONNECT_GRACE_SECS,
        |f, d| f.ranged(d, rules::DISCONNECT_GRACE_SECS),
    );
    let on_logout = s.opt(d, "on_logout", rules::DEFAULT_ON_LOGOUT, |f, d| {
        logout_action(f, d)
    });
    let on_shutoff = s.opt(d, "on_shutoff", rules::DEFAULT_ON_SHUTOFF, |f, d| {
        shutoff_action(f, d)
    });
    let pacing = s.opt(d, "pacing", rules::DEFAULT_PACING, |f, d| pacing(f, d));
    let periods = s.opt(d, "periods", Vec::new(), |f, d| {
        periods(f, d, cap, production, buffer, class)
    });
    let events = s.opt(d, "events", Vec::new(), |f, d| {
        super::calendar::events(f, d, cap, buffer, class)
    });
    let predictive = s.opt(d, "predictive", None, |f, d| predictive(f, d).map(Some));
    let policy = Policy {
        cap: cap?,
        buffer: buffer?,
        production: production?,
        periods: periods?,
        events: events?,
        pacing: pacing?,
        on_logout: on_logout?,
        on_shutoff: on_shutoff?,
        ready_secs: ready_secs?,
        scale_down_delay_secs: scale_down_delay_secs?,
        disconnect_grace_secs: disconnect_grace_secs?,
        predictive: predictive?,
    };
    // The checks above placed each problem at its key; the policy they let through must also
    // pass the one check the editor and the engine's set_policy apply, so no entry point
    // accepts what another refuses. Anything found here is reported at the policy table.
    let problems = policy.problems();
    for (field, why) in &problems {
        d.error(s.span(), format!("{}.{field}: {why}", s.path()));
    }
    problems.is_empty().then_some(policy)
}

pub(super) fn production(f: &Field, d: &mut Diag, cap: Option<u32>) -> Option<u32> {
    let value: u32 = f.ranged(d, rules::PRODUCTION)?;
    if let Some(why) = cap.and_then(|cap| rules::production_problem(value, cap)) {
        f.error(d, why);
        return None;
    }
    Some(value)
}

/// A buffer rule; the ceiling defaults to the cap, and must lie between the floor and the cap.
pub(super) fn buffer(d: &mut Diag, s: &Section, cap: Option<u32>) -> Option<BufferRule> {
    s.check_keys(d, BUFFER_KEYS);
    let floor: Option<u32> = s.opt(d, "floor", rules::DEFAULT_FLOOR, |f, d| {
        f.ranged(d, rules::BUFFER_FLOOR)
    });
    let percent: Option<u32> = s.opt(d, "percent", rules::DEFAULT_PERCENT, |f, d| {
        f.ranged(d, rules::BUFFER_PERCENT)
    });
    let ceiling_field = s.field("ceiling");
    let ceiling: Option<u32> = match &ceiling_field {
        Some(f) => f.ranged(d, rules::BUFFER_CEILING),
        None => cap,
    };
    let (floor, percent, ceiling) = (floor?, percent?, ceiling?);
    let mut ok = true;
    if let (Some(cap), Some(f)) = (cap, &ceiling_field)
        && let Some(why) = rules::ceiling_problem(ceiling, cap)
    {
        d.error(f.span(), format!("{}: {why}", s.path()));
        ok = false;
    }
    if let Some(why) = rules::floor_problem(floor, ceiling, ceiling_field.is_none()) {
        let at = s.field("floor").and_then(|f| f.span()).or_else(|| s.span());
        d.error(at, format!("{}: {why}", s.path()));
        ok = false;
    }
    ok.then_some(BufferRule {
        floor,
        percent,
        ceiling,
    })
}

/// `predictive = { service_level = 0.99 }`.
fn predictive(f: &Field, d: &mut Diag) -> Option<Predictive> {
    let s = f.table(d)?;
    s.check_keys(d, PREDICTIVE_KEYS);
    let service_level = s.req(d, "service_level", |f, d| {
        f.float(d, rules::SERVICE_LEVEL_MIN, rules::SERVICE_LEVEL_MAX)
    });
    Some(Predictive {
        service_level: service_level?,
    })
}

fn logout_action(f: &Field, d: &mut Diag) -> Option<LogoutAction> {
    let text = f.str(d)?;
    for action in [LogoutAction::Recycle, LogoutAction::Delete] {
        if text == rules::logout_name(action) {
            return Some(action);
        }
    }
    f.error(
        d,
        format!("unknown action {text:?}; expected \"recycle\" or \"delete\""),
    );
    None
}

fn shutoff_action(f: &Field, d: &mut Diag) -> Option<ShutoffAction> {
    let text = f.str(d)?;
    for action in [ShutoffAction::Restart, ShutoffAction::Recycle] {
        if text == rules::shutoff_name(action) {
            return Some(action);
        }
    }
    f.error(
        d,
        format!(
            "unknown action {}; expected \"restart\" or \"recycle\"",
            quoted(text)
        ),
    );
    None
}

fn pacing(f: &Field, d: &mut Diag) -> Option<Pacing> {
    let s = f.table(d)?;
    s.check_keys(d, PACING_KEYS);
    let def = rules::DEFAULT_PACING;
    let clones_per_host = s.opt(d, "clones_per_host", def.clones_per_host, |f, d| {
        f.ranged(d, rules::PACING)
    });
    let boots_per_host = s.opt(d, "boots_per_host", def.boots_per_host, |f, d| {
        f.ranged(d, rules::PACING)
    });
    Some(Pacing {
        clones_per_host: clones_per_host?,
        boots_per_host: boots_per_host?,
    })
}

/// The periods of a class; what a period leaves out (production, buffer) it takes from the
/// class's policy. Periods must not overlap.
fn periods(
    f: &Field,
    d: &mut Diag,
    cap: Option<u32>,
    production: Option<u32>,
    buffer: Option<BufferRule>,
    class: Option<&str>,
) -> Option<Vec<Period>> {
    let sections = f.tables(d)?;
    let parsed: Vec<Option<Period>> = sections
        .iter()
        .map(|s| period(d, s, cap, production, buffer))
        .collect();
    without_overlaps(
        d,
        &sections,
        parsed,
        class,
        rules::overlapping_pairs,
        rules::overlap_message,
    )
}

/// The entries read from `sections` when all were read and no two overlap; otherwise `None`,
/// each overlap reported at the later entry (`message` says which, with ` of class "C"`).
pub(super) fn without_overlaps<T>(
    d: &mut Diag,
    sections: &[Section],
    parsed: Vec<Option<T>>,
    class: Option<&str>,
    overlapping: impl Fn(&[Option<&T>]) -> Vec<(usize, usize)>,
    message: impl Fn(usize, usize, &T, &T, &str) -> String,
) -> Option<Vec<T>> {
    let of = class.map_or_else(
        || " of this class".to_string(),
        |c| format!(" of class {c:?}"),
    );
    let refs: Vec<Option<&T>> = parsed.iter().map(Option::as_ref).collect();
    let overlaps = overlapping(&refs);
    for &(i, j) in &overlaps {
        if let (Some(a), Some(b)) = (refs[i], refs[j]) {
            d.error(
                sections[j].span(),
                format!("{}: {}", sections[j].path(), message(i, j, a, b, &of)),
            );
        }
    }
    if !overlaps.is_empty() {
        return None;
    }
    parsed.into_iter().collect()
}

fn period(
    d: &mut Diag,
    s: &Section,
    cap: Option<u32>,
    default_production: Option<u32>,
    default_buffer: Option<BufferRule>,
) -> Option<Period> {
    s.check_keys(d, PERIOD_KEYS);
    let days = s.req(d, "days", |f, d| days(f, d));
    let from = s.req(d, "from", |f, d| time(f, d));
    let to = s.req(d, "to", |f, d| time(f, d));
    let production = match s.field("production") {
        Some(f) => production(&f, d, cap),
        None => default_production,
    };
    let buffer = match s.field("buffer") {
        Some(f) => f.table(d).and_then(|b| buffer(d, &b, cap)),
        None => default_buffer,
    };
    Some(Period {
        days: days?,
        from: from?,
        to: to?,
        production: production?,
        buffer: buffer?,
    })
}

fn days(f: &Field, d: &mut Diag) -> Option<Weekdays> {
    let entries = f.array(d)?;
    if entries.is_empty() {
        f.error(d, rules::NO_DAYS);
        return None;
    }
    let mut days = Some(Weekdays::default());
    for entry in &entries {
        let parsed = entry
            .str(d)
            .and_then(|name| match Weekdays::parse_day(name) {
                Ok(w) => Some(w),
                Err(why) => {
                    entry.error(d, why);
                    None
                }
            });
        days = match (days, parsed) {
            (Some(acc), Some(w)) => Some(Weekdays(acc.0 | w.0)),
            _ => None,
        };
    }
    days
}

pub(super) fn time(f: &Field, d: &mut Diag) -> Option<TimeOfDay> {
    match TimeOfDay::parse(f.str(d)?) {
        Ok(t) => Some(t),
        Err(why) => {
            f.error(d, why);
            None
        }
    }
}
