//! Saving a class's policy back into the configuration file, in place.
//!
//! The file is edited as a `toml_edit` document, so the user's comments, key order and layout
//! survive: only the values that changed are rewritten (each keeps the spacing and trailing
//! comment around it), a key is added only when its new value differs from the default the
//! loader would use without it, and inline tables stay inline.
//!
//! Nothing invalid is ever written: the edited text is checked with the loader ([`parse_str`],
//! the same rules as `deskpool check`) before the write, and must load back to exactly the
//! policy given. The write is atomic (a temp file in the same folder with the original's
//! permissions, fsync, rename over), and a change made to the file by someone else meanwhile is
//! reported, never overwritten:
//!
//! - [`save_policy_checked`] takes the policy as it was when the console loaded it, and refuses
//!   when the class's policy in the file is no longer that one (edits elsewhere in the file are
//!   kept, since the edit is applied to the file as it is now);
//! - both save functions refuse when the file changes between their read and their rename.
//!
//! ```text
//! file ──► parse_str (current policy, conflict check) ──► DocumentMut edit (changed keys only)
//!      ──► parse_str (same rules as the loader) ──► temp file + fsync + rename
//! ```

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, TableLike, Value};

use super::rules;
pub use super::rules::check_policy;
use super::{ConfigErrors, parse_str};
use deskpool_core::policy::calendar::describe_dates;
use deskpool_core::policy::{BufferRule, Event, Period, Policy, Predictive, TimeOfDay, Weekdays};

/// Why a policy was not saved. Nothing was written in every case.
#[derive(Debug)]
pub enum EditError {
    /// The file cannot be read.
    Unreadable {
        file: PathBuf,
        error: std::io::Error,
    },
    /// The file is invalid as it stands on disk; it must be fixed before the console edits it.
    FileInvalid { file: PathBuf, errors: ConfigErrors },
    /// No `[[classes]]` entry has that name.
    NoClass {
        file: PathBuf,
        class: String,
        known: Vec<String>,
    },
    /// The policy breaks the policy rules (see [`check_policy`]): `(field, problem)` pairs.
    BadPolicy {
        file: PathBuf,
        class: String,
        problems: Vec<(String, String)>,
    },
    /// The edited file would not pass the loader's checks.
    Rejected { file: PathBuf, errors: ConfigErrors },
    /// The edited file would load, but not to the policy given (a value the file cannot express).
    NotRepresentable { file: PathBuf, class: String },
    /// The file changed on disk since it was loaded (or during the save).
    Conflict {
        file: PathBuf,
        class: String,
        why: String,
    },
    /// Writing the new file failed; the original is untouched.
    Write {
        file: PathBuf,
        error: std::io::Error,
    },
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Unreadable { file, error } => {
                write!(f, "{}: cannot read: {error}", file.display())
            }
            EditError::FileInvalid { file, errors } => write!(
                f,
                "{}: not saved: the file is invalid as it is on disk; fix it first:\n{errors}",
                file.display()
            ),
            EditError::NoClass { file, class, known } => write!(
                f,
                "{}: not saved: no class named {class:?} (classes: {})",
                file.display(),
                known.join(", ")
            ),
            EditError::BadPolicy {
                file,
                class,
                problems,
            } => {
                write!(
                    f,
                    "{}: not saved: the policy of class {class:?} is invalid:",
                    file.display()
                )?;
                for (field, problem) in problems {
                    write!(f, "\n  {field}: {problem}")?;
                }
                Ok(())
            }
            EditError::Rejected { file, errors } => write!(
                f,
                "{}: not saved: the edited file would be invalid:\n{errors}",
                file.display()
            ),
            EditError::NotRepresentable { file, class } => write!(
                f,
                "{}: not saved: the policy of class {class:?} cannot be written as given",
                file.display()
            ),
            EditError::Conflict { file, class, why } => write!(
                f,
                "{}: not saved: {why}; the policy of class {class:?} was not written \
                 (the file is left as it is)",
                file.display()
            ),
            EditError::Write { file, error } => {
                write!(f, "{}: cannot write: {error}", file.display())
            }
        }
    }
}

impl std::error::Error for EditError {}

/// Saves `policy` as the policy of `class` in the configuration file at `path`, changing only
/// the values that differ. Refuses (writing nothing) if the result would be invalid, and if the
/// file changes on disk while it is being saved.
pub fn save_policy(path: &Path, class: &str, policy: &Policy) -> Result<(), EditError> {
    save(path, class, None, policy)
}

/// [`save_policy`] for an editor: `loaded` is the class's policy as the console loaded it. If
/// the file's policy for the class is no longer `loaded` (someone changed it on disk since),
/// nothing is written and [`EditError::Conflict`] says so. Changes elsewhere in the file are
/// fine: they are kept.
pub fn save_policy_checked(
    path: &Path,
    class: &str,
    loaded: &Policy,
    policy: &Policy,
) -> Result<(), EditError> {
    save(path, class, Some(loaded), policy)
}

fn save(
    path: &Path,
    class: &str,
    loaded: Option<&Policy>,
    policy: &Policy,
) -> Result<(), EditError> {
    let file = path.to_path_buf();
    // Edit the file a symlink points to, not the link itself.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| file.clone());
    let text = std::fs::read_to_string(&real).map_err(|error| EditError::Unreadable {
        file: file.clone(),
        error,
    })?;
    let fleet = parse_str(&text, path).map_err(|errors| EditError::FileInvalid {
        file: file.clone(),
        errors,
    })?;
    let Some(current) = fleet.class(class) else {
        return Err(EditError::NoClass {
            file,
            class: class.to_string(),
            known: fleet.classes.iter().map(|c| c.name.clone()).collect(),
        });
    };
    if let Some(loaded) = loaded
        && *loaded != current.policy
    {
        return Err(EditError::Conflict {
            file,
            class: class.to_string(),
            why: changed_since_loaded(loaded, &current.policy),
        });
    }
    let problems = check_policy(policy);
    if !problems.is_empty() {
        return Err(EditError::BadPolicy {
            file,
            class: class.to_string(),
            problems,
        });
    }
    if current.policy == *policy {
        return Ok(());
    }
    let new_text = edit_text(&text, class, &current.policy, policy).ok_or_else(|| {
        EditError::NotRepresentable {
            file: file.clone(),
            class: class.to_string(),
        }
    })?;
    let edited = parse_str(&new_text, path).map_err(|errors| EditError::Rejected {
        file: file.clone(),
        errors,
    })?;
    if edited.class(class).map(|c| &c.policy) != Some(policy) {
        return Err(EditError::NotRepresentable {
            file,
            class: class.to_string(),
        });
    }
    write_atomic(&real, text.as_bytes(), new_text.as_bytes()).map_err(|e| match e {
        WriteFailure::Changed => EditError::Conflict {
            file: file.clone(),
            class: class.to_string(),
            why: "the file changed on disk while it was being saved".into(),
        },
        WriteFailure::Io(error) => EditError::Write {
            file: file.clone(),
            error,
        },
    })
}

/// Why a save is refused when the file's policy is no longer the one loaded: what changed.
pub fn changed_since_loaded(loaded: &Policy, on_disk: &Policy) -> String {
    let changes = super::on_disk::policy_changes(loaded, on_disk);
    format!(
        "the class's policy was changed in the file since it was loaded ({})",
        changes.join(", ")
    )
}

/// `text` with the policy of `class` set to `policy`; `None` when the class or its policy
/// table cannot be found in the expected shapes (the loader accepted the text, so this does not
/// happen for files it reads).
fn edit_text(text: &str, class: &str, current: &Policy, policy: &Policy) -> Option<String> {
    let mut doc: DocumentMut = text.parse().ok()?;
    let class_tbl = find_class(doc.get_mut("classes")?, class)?;
    let (policy_tbl, inline) = match class_tbl.get_mut("policy")? {
        Item::Table(t) => (t as &mut dyn TableLike, false),
        Item::Value(Value::InlineTable(t)) => (t as &mut dyn TableLike, true),
        _ => return None,
    };
    edit_policy(policy_tbl, inline, policy)?;
    edit_events(policy_tbl, inline, &current.events, policy);
    Some(doc.to_string())
}

/// The table of the class named `class`, from `[[classes]]` or `classes = [{ ... }]`.
fn find_class<'a>(classes: &'a mut Item, class: &str) -> Option<&'a mut dyn TableLike> {
    let named = |t: &dyn TableLike| t.get("name").and_then(Item::as_str) == Some(class);
    match classes {
        Item::ArrayOfTables(aot) => aot
            .iter_mut()
            .find(|t| named(*t))
            .map(|t| t as &mut dyn TableLike),
        Item::Value(Value::Array(array)) => array
            .iter_mut()
            .filter_map(Value::as_inline_table_mut)
            .find(|t| named(*t))
            .map(|t| t as &mut dyn TableLike),
        _ => None,
    }
}

fn edit_policy(t: &mut dyn TableLike, inline: bool, policy: &Policy) -> Option<()> {
    let cap = policy.cap;
    set_int(t, inline, "cap", cap.into(), None);
    set_int(
        t,
        inline,
        "production",
        policy.production.into(),
        Some(rules::DEFAULT_PRODUCTION.into()),
    );
    set_buffer(t, inline, policy.buffer, rules::default_buffer(cap), cap);
    set_int(
        t,
        inline,
        "ready_secs",
        policy.ready_secs,
        Some(rules::DEFAULT_READY_SECS),
    );
    set_int(
        t,
        inline,
        "scale_down_delay_secs",
        policy.scale_down_delay_secs,
        Some(rules::DEFAULT_SCALE_DOWN_DELAY_SECS),
    );
    set_int(
        t,
        inline,
        "disconnect_grace_secs",
        policy.disconnect_grace_secs,
        Some(rules::DEFAULT_DISCONNECT_GRACE_SECS),
    );
    let on_logout = rules::logout_name(policy.on_logout);
    if t.get("on_logout").and_then(Item::as_str) != Some(on_logout)
        && (t.contains_key("on_logout") || policy.on_logout != rules::DEFAULT_ON_LOGOUT)
    {
        set_value(t, inline, "on_logout", Value::from(on_logout));
    }
    let on_shutoff = rules::shutoff_name(policy.on_shutoff);
    if t.get("on_shutoff").and_then(Item::as_str) != Some(on_shutoff)
        && (t.contains_key("on_shutoff") || policy.on_shutoff != rules::DEFAULT_ON_SHUTOFF)
    {
        set_value(t, inline, "on_shutoff", Value::from(on_shutoff));
    }
    let def = rules::DEFAULT_PACING;
    set_subtable(
        t,
        inline,
        "pacing",
        &[
            (
                "clones_per_host",
                policy.pacing.clones_per_host.into(),
                def.clones_per_host.into(),
            ),
            (
                "boots_per_host",
                policy.pacing.boots_per_host.into(),
                def.boots_per_host.into(),
            ),
        ],
        policy.pacing == def,
    );
    edit_predictive(t, inline, policy.predictive);
    edit_periods(t, inline, policy)
}

/// `predictive = { service_level = 0.99 }`: set in place, added, or removed.
fn edit_predictive(t: &mut dyn TableLike, inline: bool, predictive: Option<Predictive>) {
    let Some(predictive) = predictive else {
        t.remove("predictive");
        return;
    };
    let level = predictive.service_level;
    let sub_inline = matches!(
        t.get("predictive"),
        Some(Item::Value(Value::InlineTable(_)))
    );
    if let Some(sub) = t.get_mut("predictive").and_then(Item::as_table_like_mut) {
        let same = sub
            .get("service_level")
            .and_then(|i| i.as_float().or_else(|| i.as_integer().map(|v| v as f64)))
            == Some(level);
        if !same {
            set_value(sub, sub_inline, "service_level", Value::from(level));
        }
        return;
    }
    let mut table = InlineTable::new();
    table.insert("service_level", Value::from(level));
    set_value(t, inline, "predictive", Value::InlineTable(table));
}

/// Sets an integer key when its value differs from `new`; an absent key is added only when `new`
/// differs from `default` (`None`: the key is required, always add it).
fn set_int(t: &mut dyn TableLike, inline: bool, key: &str, new: u64, default: Option<u64>) {
    let new = i64::try_from(new).unwrap_or(i64::MAX);
    match t.get(key) {
        Some(item) if item.as_integer() == Some(new) => {}
        Some(_) => set_value(t, inline, key, Value::from(new)),
        None => {
            if default.and_then(|d| i64::try_from(d).ok()) != Some(new) {
                set_value(t, inline, key, Value::from(new));
            }
        }
    }
}

/// Replaces (or adds) `key`'s value, keeping the spacing and comment around the old value.
/// `inline`: `t` is an `{ inline }` table, whose last value holds the space before the `}`.
fn set_value(t: &mut dyn TableLike, inline: bool, key: &str, mut new: Value) {
    match t.get_mut(key) {
        Some(Item::Value(old)) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        Some(item) => *item = Item::Value(new),
        None => {
            if inline && let Some((_, Item::Value(last))) = t.iter_mut().last() {
                // Hand the space before `}` on to the new last value: `{ a = 1, b = 2 }`.
                if let Some(suffix) = last.decor().suffix().cloned() {
                    last.decor_mut().set_suffix("");
                    new.decor_mut().set_suffix(suffix);
                }
            }
            t.insert(key, Item::Value(new));
        }
    }
}

/// A buffer rule at `buffer`; `default` is what the loader uses when the key is absent.
fn set_buffer(
    t: &mut dyn TableLike,
    inline: bool,
    rule: BufferRule,
    default: BufferRule,
    cap: u32,
) {
    set_subtable(
        t,
        inline,
        "buffer",
        &[
            ("floor", rule.floor.into(), rules::DEFAULT_FLOOR.into()),
            (
                "percent",
                rule.percent.into(),
                rules::DEFAULT_PERCENT.into(),
            ),
            ("ceiling", rule.ceiling.into(), cap.into()),
        ],
        rule == default,
    );
}

/// Edits a small table of integers (`buffer`, `pacing`) in place, `[section]` or `{ inline }`.
/// When the key is absent and `is_default` is false, adds it as an inline table holding only
/// the keys that differ from their defaults.
fn set_subtable(
    t: &mut dyn TableLike,
    inline: bool,
    key: &str,
    fields: &[(&str, u64, u64)],
    is_default: bool,
) {
    let sub_inline = matches!(t.get(key), Some(Item::Value(Value::InlineTable(_))));
    if let Some(sub) = t.get_mut(key).and_then(Item::as_table_like_mut) {
        for &(k, new, default) in fields {
            set_int(sub, sub_inline, k, new, Some(default));
        }
        return;
    }
    if t.contains_key(key) || !is_default {
        let mut table = InlineTable::new();
        for &(k, new, default) in fields {
            if new != default {
                table.insert(k, Value::from(i64::try_from(new).unwrap_or(i64::MAX)));
            }
        }
        set_value(t, inline, key, Value::InlineTable(table));
    }
}

/// Updates the periods in place where both lists have one, then adds or removes at the end.
fn edit_periods(t: &mut dyn TableLike, inline: bool, policy: &Policy) -> Option<()> {
    let new = &policy.periods;
    if new.is_empty() {
        t.remove("periods");
        return Some(());
    }
    match t.get_mut("periods") {
        Some(Item::ArrayOfTables(aot)) => {
            while aot.len() > new.len() {
                aot.remove(aot.len() - 1);
            }
            for (i, period) in new.iter().enumerate() {
                match aot.get_mut(i) {
                    Some(table) => edit_period(table, false, period, policy),
                    None => {
                        let mut table = Table::new();
                        edit_period(&mut table, false, period, policy);
                        aot.push(table);
                    }
                }
            }
        }
        Some(Item::Value(Value::Array(array))) => {
            while array.len() > new.len() {
                array.remove(array.len() - 1);
            }
            for (i, period) in new.iter().enumerate() {
                match array.get_mut(i) {
                    Some(value) => edit_period(value.as_inline_table_mut()?, true, period, policy),
                    None => {
                        let mut table = InlineTable::new();
                        edit_period(&mut table, true, period, policy);
                        array.push(table);
                    }
                }
            }
        }
        Some(_) => return None,
        None if inline => {
            let mut array = Array::new();
            for period in new {
                let mut table = InlineTable::new();
                edit_period(&mut table, true, period, policy);
                array.push(table);
            }
            set_value(t, true, "periods", Value::Array(array));
        }
        None => {
            let mut aot = ArrayOfTables::new();
            for period in new {
                let mut table = Table::new();
                edit_period(&mut table, false, period, policy);
                aot.push(table);
            }
            t.insert("periods", Item::ArrayOfTables(aot));
        }
    }
    Some(())
}

/// Edits one period's table; production and buffer default to the class's.
fn edit_period(t: &mut dyn TableLike, inline: bool, period: &Period, policy: &Policy) {
    let days_now = t.get("days").and_then(Item::as_array).and_then(file_days);
    if days_now != Some(period.days) {
        let names: Array = day_names(period.days).into_iter().collect();
        set_value(t, inline, "days", Value::Array(names));
    }
    for (key, time) in [("from", period.from), ("to", period.to)] {
        let now = t
            .get(key)
            .and_then(Item::as_str)
            .and_then(|s| TimeOfDay::parse(s).ok());
        if now != Some(time) {
            set_value(t, inline, key, Value::from(time.to_string()));
        }
    }
    set_int(
        t,
        inline,
        "production",
        period.production.into(),
        Some(policy.production.into()),
    );
    set_buffer(t, inline, period.buffer, policy.buffer, policy.cap);
}

/// The events, rewritten as a whole when they differ from `current` (the file's), and left as
/// written, comments and layout included, when they do not: editing another key of the policy
/// touches an event only to write out a buffer it took from the class's, when the class's
/// changes (an event without `buffer` follows the class's rule on reload).
fn edit_events(t: &mut dyn TableLike, inline: bool, current: &[Event], policy: &Policy) {
    let new = &policy.events;
    if current == new.as_slice() {
        keep_event_buffers(t, policy);
        return;
    }
    if new.is_empty() {
        t.remove("events");
        return;
    }
    if inline || matches!(t.get("events"), Some(Item::Value(Value::Array(_)))) {
        let mut array = Array::new();
        for event in new {
            let mut table = InlineTable::new();
            write_event(&mut table, true, event, policy);
            array.push(table);
        }
        set_value(t, inline, "events", Value::Array(array));
    } else {
        let mut aot = ArrayOfTables::new();
        for event in new {
            let mut table = Table::new();
            write_event(&mut table, false, event, policy);
            aot.push(table);
        }
        t.insert("events", Item::ArrayOfTables(aot));
    }
}

/// Unchanged events keep their buffer rule when the class's changes: a buffer each took from
/// the class's is written out (only where it now differs from the class's).
fn keep_event_buffers(t: &mut dyn TableLike, policy: &Policy) {
    let (rule, cap) = (policy.buffer, policy.cap);
    match t.get_mut("events") {
        Some(Item::ArrayOfTables(aot)) => {
            for (table, event) in aot.iter_mut().zip(&policy.events) {
                set_buffer(table, false, event.buffer, rule, cap);
            }
        }
        Some(Item::Value(Value::Array(array))) => {
            for (value, event) in array.iter_mut().zip(&policy.events) {
                if let Some(table) = value.as_inline_table_mut() {
                    set_buffer(table, true, event.buffer, rule, cap);
                }
            }
        }
        _ => {}
    }
}

/// One event's keys in a new table; the buffer is written when it is not the class's.
fn write_event(t: &mut dyn TableLike, inline: bool, event: &Event, policy: &Policy) {
    set_value(t, inline, "name", Value::from(event.name.as_str()));
    set_value(t, inline, "date", Value::from(describe_dates(event)));
    set_value(t, inline, "from", Value::from(event.from.to_string()));
    set_value(t, inline, "to", Value::from(event.to.to_string()));
    set_int(t, inline, "production", event.production.into(), None);
    set_buffer(t, inline, event.buffer, policy.buffer, policy.cap);
}

/// The days a `days = [...]` array says, if every entry is a day name.
fn file_days(array: &Array) -> Option<Weekdays> {
    let mut days = Weekdays::default();
    for entry in array.iter() {
        days.0 |= Weekdays::parse_day(entry.as_str()?).ok()?.0;
    }
    Some(days)
}

/// The shortest list of names for a set of days, as the file format reads them.
fn day_names(days: Weekdays) -> Vec<&'static str> {
    match days.0 {
        0b111_1111 => vec!["all"],
        0b001_1111 => vec!["weekdays"],
        0b110_0000 => vec!["weekend"],
        _ => days.names(),
    }
}

enum WriteFailure {
    /// The file no longer holds what was read.
    Changed,
    Io(std::io::Error),
}

impl From<std::io::Error> for WriteFailure {
    fn from(e: std::io::Error) -> Self {
        WriteFailure::Io(e)
    }
}

/// Replaces the file at `path` (which held `expected`) with `contents`, atomically: a temp file
/// in the same folder, with the original's permissions (and owner, when allowed), synced, then
/// renamed over the original. The temp file is removed on any failure.
fn write_atomic(path: &Path, expected: &[u8], contents: &[u8]) -> Result<(), WriteFailure> {
    use std::os::unix::fs::MetadataExt;

    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned());
    let meta = std::fs::metadata(path)?;
    let (tmp_path, mut tmp) = create_temp(&dir, &name)?;
    let result = (|| -> Result<(), WriteFailure> {
        tmp.set_permissions(meta.permissions())?;
        // Keep the owner when we may (root editing another user's file); otherwise the file
        // becomes ours, as with any editor that saves by rename.
        let _ = std::os::unix::fs::fchown(&tmp, Some(meta.uid()), Some(meta.gid()));
        tmp.write_all(contents)?;
        tmp.sync_all()?;
        if std::fs::read(path)? != expected {
            return Err(WriteFailure::Changed);
        }
        std::fs::rename(&tmp_path, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
        return result;
    }
    // Make the rename itself durable.
    if let Err(e) = std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
        tracing::warn!(
            "saved {}, but syncing its folder failed: {e}",
            path.display()
        );
    }
    Ok(())
}

/// A new, exclusively created temp file next to the target: `.NAME.deskpool-PID-N.tmp`.
fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    let pid = std::process::id();
    let mut attempt = 0u32;
    loop {
        let tmp = dir.join(format!(".{name}.deskpool-{pid}-{attempt}.tmp"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
#[path = "edit_tests.rs"]
mod tests;
