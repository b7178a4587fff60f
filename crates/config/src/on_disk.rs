//! What the configuration file says of one class's policy right now, for an editor that must
//! not overwrite a change made on disk, and must not turn what a period inherits from the class
//! rule into values of its own.
//!
//! A period may leave out `production` and `buffer`: it then takes the class's (the buffer as a
//! whole). [`PeriodInherits`] records which of the two each period leaves out, so an editor can
//! show them as the class rule's and keep them following it; [`policy_changes`] says, in words,
//! how two policies differ (periods numbered from 1, as everywhere a person reads them).

use std::path::Path;

use toml_edit::{ImDocument, Item, TableLike, Value};

use super::edit::EditError;
use super::parse_str;
use deskpool_core::policy::rules::{self, describe_days, describe_period};
use deskpool_core::policy::{BufferRule, Policy};

/// Which values a period takes from its class rule because the file leaves them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodInherits {
    pub production: bool,
    pub buffer: bool,
}

impl PeriodInherits {
    /// A period that sets nothing of its own (a new one).
    pub const ALL: PeriodInherits = PeriodInherits {
        production: true,
        buffer: true,
    };
}

/// A class's policy as the file holds it now, and what each of its periods inherits.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOnDisk {
    pub policy: Policy,
    /// One entry per period, in order.
    pub inherits: Vec<PeriodInherits>,
}

/// Reads the file at `path` and returns the policy of `class` as it is there now.
pub fn policy_on_disk(path: &Path, class: &str) -> Result<PolicyOnDisk, EditError> {
    let file = path.to_path_buf();
    let text = std::fs::read_to_string(path).map_err(|error| EditError::Unreadable {
        file: file.clone(),
        error,
    })?;
    policy_in_text(&text, path, class)
}

/// [`policy_on_disk`] for configuration text already read (`path` names it in errors).
pub fn policy_in_text(text: &str, path: &Path, class: &str) -> Result<PolicyOnDisk, EditError> {
    let file = path.to_path_buf();
    let fleet = parse_str(text, path).map_err(|errors| EditError::FileInvalid {
        file: file.clone(),
        errors,
    })?;
    let Some(spec) = fleet.class(class) else {
        return Err(EditError::NoClass {
            file,
            class: class.to_string(),
            known: fleet.classes.iter().map(|c| c.name.clone()).collect(),
        });
    };
    let policy = spec.policy.clone();
    // The loader accepted the text, so the shapes below are there; a period whose table
    // cannot be found is taken as setting everything itself (nothing is lost that way).
    let mut inherits = period_inheritance(text, class).unwrap_or_default();
    inherits.resize(policy.periods.len(), PeriodInherits::default());
    Ok(PolicyOnDisk { policy, inherits })
}

/// What each period of the embedded demo's class `class` inherits.
pub fn demo_period_inheritance(class: &str) -> Vec<PeriodInherits> {
    period_inheritance(super::DEMO_TOML, class).unwrap_or_default()
}

fn period_inheritance(text: &str, class: &str) -> Option<Vec<PeriodInherits>> {
    let doc = ImDocument::parse(text).ok()?;
    let named = |t: &dyn TableLike| t.get("name").and_then(Item::as_str) == Some(class);
    let class_tbl: &dyn TableLike = match doc.get("classes")? {
        Item::ArrayOfTables(aot) => aot.iter().find(|t| named(*t))?,
        Item::Value(Value::Array(array)) => array
            .iter()
            .filter_map(Value::as_inline_table)
            .find(|t| named(*t))?,
        _ => return None,
    };
    let policy = class_tbl.get("policy")?.as_table_like()?;
    let Some(periods) = policy.get("periods") else {
        return Some(Vec::new());
    };
    let of = |t: &dyn TableLike| PeriodInherits {
        production: !t.contains_key("production"),
        buffer: !t.contains_key("buffer"),
    };
    match periods {
        Item::ArrayOfTables(aot) => Some(aot.iter().map(|t| of(t)).collect()),
        Item::Value(Value::Array(array)) => array
            .iter()
            .map(|v| v.as_inline_table().map(|t| of(t)))
            .collect(),
        _ => None,
    }
}

/// How `new` differs from `old`, one short phrase per change: `cap 60 → 80`,
/// `period 2 to 17:00 → 18:00`, `period 3 added (mon-fri 08:00-17:00)`. Empty when equal.
pub fn policy_changes(old: &Policy, new: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    let mut num = |name: &str, a: u64, b: u64| {
        if a != b {
            out.push(format!("{name} {a} → {b}"));
        }
    };
    num("cap", old.cap.into(), new.cap.into());
    num("production", old.production.into(), new.production.into());
    num("ready_secs", old.ready_secs, new.ready_secs);
    num(
        "scale_down_delay_secs",
        old.scale_down_delay_secs,
        new.scale_down_delay_secs,
    );
    num(
        "disconnect_grace_secs",
        old.disconnect_grace_secs,
        new.disconnect_grace_secs,
    );
    num(
        "pacing.clones_per_host",
        old.pacing.clones_per_host.into(),
        new.pacing.clones_per_host.into(),
    );
    num(
        "pacing.boots_per_host",
        old.pacing.boots_per_host.into(),
        new.pacing.boots_per_host.into(),
    );
    buffer_changes(&mut out, "buffer", old.buffer, new.buffer);
    if old.on_logout != new.on_logout {
        out.push(format!(
            "on_logout {} → {}",
            rules::logout_name(old.on_logout),
            rules::logout_name(new.on_logout)
        ));
    }
    if old.on_shutoff != new.on_shutoff {
        out.push(format!(
            "on_shutoff {} → {}",
            rules::shutoff_name(old.on_shutoff),
            rules::shutoff_name(new.on_shutoff)
        ));
    }
    if old.predictive != new.predictive {
        let say = |p: Option<deskpool_core::policy::Predictive>| {
            p.map_or("off".to_string(), |p| {
                format!("service_level {}", p.service_level)
            })
        };
        out.push(format!(
            "predictive {} → {}",
            say(old.predictive),
            say(new.predictive)
        ));
    }
    for (i, (a, b)) in old.periods.iter().zip(&new.periods).enumerate() {
        let n = i + 1;
        if a.days != b.days {
            out.push(format!(
                "period {n} days {} → {}",
                describe_days(a.days),
                describe_days(b.days)
            ));
        }
        if a.from != b.from {
            out.push(format!("period {n} from {} → {}", a.from, b.from));
        }
        if a.to != b.to {
            out.push(format!("period {n} to {} → {}", a.to, b.to));
        }
        if a.production != b.production {
            out.push(format!(
                "period {n} production {} → {}",
                a.production, b.production
            ));
        }
        buffer_changes(&mut out, &format!("period {n} buffer"), a.buffer, b.buffer);
    }
    for (i, p) in new.periods.iter().enumerate().skip(old.periods.len()) {
        out.push(format!("period {} added ({})", i + 1, describe_period(p)));
    }
    for (i, p) in old.periods.iter().enumerate().skip(new.periods.len()) {
        out.push(format!("period {} removed ({})", i + 1, describe_period(p)));
    }
    out
}

fn buffer_changes(out: &mut Vec<String>, at: &str, a: BufferRule, b: BufferRule) {
    for (name, x, y) in [
        ("floor", a.floor, b.floor),
        ("percent", a.percent, b.percent),
        ("ceiling", a.ceiling, b.ceiling),
    ] {
        if x != y {
            out.push(format!("{at} {name} {x} → {y}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[[hosts]]
name = "h1"
uri = "qemu:///system"
capacity = { desktops = 40 }

[[classes]]
name = "office"
memory_mib = 2048
vcpus = 2
disk_gib = 20
seed = { pool = "seeds", volume = "office.qcow2", version = "2026.11" }

[classes.policy]
cap = 60
buffer = { floor = 2, percent = 10, ceiling = 20 }
production = 10
[[classes.policy.periods]]
days = ["weekdays"]
from = "08:00"
to = "17:00"
production = 40
[[classes.policy.periods]]
days = ["sat"]
from = "09:00"
to = "12:00"
buffer = { floor = 1 }
"#;

    #[test]
    fn a_period_inherits_exactly_what_the_file_leaves_out() {
        let on_disk = policy_in_text(TEXT, Path::new("t.toml"), "office");
        let on_disk = match on_disk {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            on_disk.inherits,
            vec![
                PeriodInherits {
                    production: false,
                    buffer: true
                },
                PeriodInherits {
                    production: true,
                    buffer: false
                },
            ]
        );
        assert_eq!(on_disk.policy.periods[0].buffer.ceiling, 20);
        assert_eq!(on_disk.policy.periods[1].production, 10);
    }

    #[test]
    fn changes_are_named_in_words_with_periods_counted_from_one() {
        let old = policy_in_text(TEXT, Path::new("t.toml"), "office")
            .map(|d| d.policy)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut new = old.clone();
        new.cap = 80;
        new.periods[1].to = deskpool_core::policy::TimeOfDay(13 * 3600);
        new.periods.remove(0);
        let changes = policy_changes(&old, &new);
        assert!(changes.contains(&"cap 60 → 80".to_string()), "{changes:?}");
        assert!(
            changes.iter().any(|c| c.starts_with("period 2 removed")),
            "{changes:?}"
        );
        assert!(policy_changes(&old, &old).is_empty());
    }
}
