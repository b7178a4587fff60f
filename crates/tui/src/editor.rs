//! The policy editor's form: one text field per policy value, checked as you type with the same
//! rules as `deskpool check` ([`Policy::validate`], the rules of `config::check_policy`).
//!
//! A period's production and buffer may be the class rule's (the file leaves them out): such a
//! field shows the class's value, follows it as the class fields are edited, and is written to
//! the file only once it is edited itself ([`PeriodInherits`]). The buffer is inherited as a
//! whole, as the file format has it: editing one of its three values makes all three the
//! period's own. Periods are numbered from 1 here, in the form's errors and in `deskpool check`.

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use deskpool_config::PeriodInherits;
use deskpool_core::policy::rules::{PolicyError, overlapping_pairs};
use deskpool_core::policy::{
    BufferRule, ClassSpec, LogoutAction, Pacing, Period, Policy, ShutoffAction, TimeOfDay, Weekdays,
};

pub struct Field {
    /// The key `check_policy` names problems with ("buffer.floor", "periods[1].from", ...).
    pub key: String,
    pub label: String,
    pub input: Input,
}

pub struct PolicyForm {
    pub class: String,
    pub original: Policy,
    pub fields: Vec<Field>,
    /// What each period takes from the class rule, one entry per period.
    pub inherits: Vec<PeriodInherits>,
    pub cursor: usize,
    /// Problems with the values as typed: (field key, message).
    pub problems: Vec<(String, String)>,
}

fn field(key: impl Into<String>, label: impl Into<String>, value: impl ToString) -> Field {
    Field {
        key: key.into(),
        label: label.into(),
        input: Input::new(value.to_string()),
    }
}

fn days_text(days: Weekdays) -> String {
    match days.0 {
        0b111_1111 => "all".into(),
        0b001_1111 => "weekdays".into(),
        0b110_0000 => "weekend".into(),
        _ => days.names().join(" "),
    }
}

/// The key of a period's field, as the policy rules name it (periods counted from 1).
fn period_key(i: usize, name: &str) -> String {
    format!("periods[{}].{name}", i + 1)
}

/// `(period index, field name)` of a period field's key.
fn split_period_key(key: &str) -> Option<(usize, &str)> {
    let rest = key.strip_prefix("periods[")?;
    let (n, name) = rest.split_once("].")?;
    let n: usize = n.parse().ok()?;
    Some((n.checked_sub(1)?, name))
}

const PERIOD_BUFFER: [&str; 3] = ["buffer.floor", "buffer.percent", "buffer.ceiling"];

fn period_fields(i: usize, p: &Period) -> Vec<Field> {
    let k = |name: &str| period_key(i, name);
    let n = i + 1;
    vec![
        field(k("days"), format!("period {n} days"), days_text(p.days)),
        field(k("from"), format!("period {n} from"), p.from),
        field(k("to"), format!("period {n} to"), p.to),
        field(
            k("production"),
            format!("period {n} production"),
            p.production,
        ),
        field(
            k("buffer.floor"),
            format!("period {n} buffer floor"),
            p.buffer.floor,
        ),
        field(
            k("buffer.percent"),
            format!("period {n} buffer %"),
            p.buffer.percent,
        ),
        field(
            k("buffer.ceiling"),
            format!("period {n} buffer ceiling"),
            p.buffer.ceiling,
        ),
    ]
}

/// `label` (of period `n + 1`, counted from 1) renamed for period `n`.
fn period_label(n: usize, label: &str) -> String {
    label.replacen(&format!("period {}", n + 1), &format!("period {n}"), 1)
}

const GENERAL_FIELDS: usize = 12;
const PERIOD_FIELDS: usize = 7;

/// Where a new period goes when office hours are taken: the first free one of these.
const NEW_PERIOD_DAYS: [u8; 9] = [
    0b001_1111, 0b110_0000, 0b000_0001, 0b000_0010, 0b000_0100, 0b000_1000, 0b001_0000, 0b010_0000,
    0b100_0000,
];

impl PolicyForm {
    /// A form over `class`'s policy; `inherits` says, per period, what the file leaves to the
    /// class rule (missing entries: the period sets everything itself).
    pub fn new(class: &ClassSpec, mut inherits: Vec<PeriodInherits>) -> PolicyForm {
        let p = &class.policy;
        let mut fields = vec![
            field("cap", "cap", p.cap),
            field("production", "production (outside periods)", p.production),
            field("buffer.floor", "buffer floor", p.buffer.floor),
            field("buffer.percent", "buffer % of production", p.buffer.percent),
            field("buffer.ceiling", "buffer ceiling", p.buffer.ceiling),
            field("ready_secs", "ready in (s)", p.ready_secs),
            field(
                "scale_down_delay_secs",
                "scale-down delay (s)",
                p.scale_down_delay_secs,
            ),
            field(
                "disconnect_grace_secs",
                "disconnect grace (s)",
                p.disconnect_grace_secs,
            ),
            field(
                "on_logout",
                "on logout (recycle|delete)",
                match p.on_logout {
                    LogoutAction::Recycle => "recycle",
                    LogoutAction::Delete => "delete",
                },
            ),
            field(
                "on_shutoff",
                "on shutoff (restart|recycle)",
                match p.on_shutoff {
                    ShutoffAction::Restart => "restart",
                    ShutoffAction::Recycle => "recycle",
                },
            ),
            field(
                "pacing.clones_per_host",
                "clones per host",
                p.pacing.clones_per_host,
            ),
            field(
                "pacing.boots_per_host",
                "boots per host",
                p.pacing.boots_per_host,
            ),
        ];
        for (i, period) in p.periods.iter().enumerate() {
            fields.extend(period_fields(i, period));
        }
        inherits.resize(p.periods.len(), PeriodInherits::default());
        let mut form = PolicyForm {
            class: class.name.clone(),
            original: p.clone(),
            fields,
            inherits,
            cursor: 0,
            problems: Vec::new(),
        };
        form.revalidate();
        form
    }

    pub fn periods(&self) -> usize {
        (self.fields.len() - GENERAL_FIELDS) / PERIOD_FIELDS
    }

    /// The period the cursor is in, if any.
    fn period_at_cursor(&self) -> Option<usize> {
        self.cursor
            .checked_sub(GENERAL_FIELDS)
            .map(|i| i / PERIOD_FIELDS)
    }

    pub fn problem_for(&self, key: &str) -> Option<&str> {
        self.problems
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, m)| m.as_str())
    }

    /// Problems not tied to one field (overlapping periods, ...).
    pub fn general_problems(&self) -> Vec<&str> {
        self.problems
            .iter()
            .filter(|(k, _)| !self.fields.iter().any(|f| f.key == *k))
            .map(|(_, m)| m.as_str())
            .collect()
    }

    /// Edits made and not saved (a change of value, or values that do not read yet).
    pub fn is_dirty(&self) -> bool {
        self.policy().map_or(true, |p| p != self.original)
    }

    /// Whether the field `key` shows the class rule's value (a period field the file leaves
    /// out and that was not edited).
    pub fn inherited(&self, key: &str) -> bool {
        let Some((i, name)) = split_period_key(key) else {
            return false;
        };
        let Some(inherits) = self.inherits.get(i) else {
            return false;
        };
        match name {
            "production" => inherits.production,
            name if PERIOD_BUFFER.contains(&name) => inherits.buffer,
            _ => false,
        }
    }

    /// The label a problem with `key` is named by (the form's own words, periods from 1).
    pub fn label_for<'a>(&'a self, key: &'a str) -> &'a str {
        self.fields
            .iter()
            .find(|f| f.key == key)
            .map_or(key, |f| f.label.as_str())
    }

    /// Handles a key; returns something to tell the admin when the key could not do its job.
    pub fn handle(&mut self, key: &KeyEvent, event: &TermEvent) -> Option<String> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let mut note = None;
        match key.code {
            KeyCode::Up | KeyCode::BackTab => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Down | KeyCode::Tab | KeyCode::Enter => {
                self.cursor = (self.cursor + 1).min(self.fields.len() - 1);
            }
            KeyCode::Char('n') if ctrl => note = self.add_period(),
            KeyCode::Char('d') if ctrl => self.delete_period(),
            KeyCode::Char('r') if ctrl => note = self.inherit_again(),
            _ => {
                let cursor = self.cursor;
                if let Some(f) = self.fields.get_mut(cursor) {
                    let before = f.input.value().to_string();
                    f.input.handle_event(event);
                    if f.input.value() != before {
                        let key = f.key.clone();
                        self.make_own(&key);
                    }
                }
            }
        }
        self.follow_class_rule();
        self.revalidate();
        note
    }

    /// An edited period field becomes the period's own (the whole buffer, for a buffer value).
    fn make_own(&mut self, key: &str) {
        if let Some((i, name)) = split_period_key(key)
            && let Some(inherits) = self.inherits.get_mut(i)
        {
            if name == "production" {
                inherits.production = false;
            } else if PERIOD_BUFFER.contains(&name) {
                inherits.buffer = false;
            }
        }
    }

    /// `ctrl-r` on a period's production or buffer: take it from the class rule again.
    fn inherit_again(&mut self) -> Option<String> {
        let key = self.fields.get(self.cursor)?.key.clone();
        let (i, name) = split_period_key(&key)?;
        let inherits = self.inherits.get_mut(i)?;
        if name == "production" {
            inherits.production = true;
        } else if PERIOD_BUFFER.contains(&name) {
            inherits.buffer = true;
        } else {
            return Some(format!(
                "{} is the period's own: only production and the buffer come from the class rule",
                self.fields[self.cursor].label
            ));
        }
        None
    }

    /// Copies the class rule's values into the period fields that inherit them, so what is
    /// shown, checked and saved is what the period will be.
    fn follow_class_rule(&mut self) {
        for i in 0..self.periods() {
            let inherits = self.inherits[i];
            let mut copy = |from: &str, to: String| {
                let value = self.value(from).to_string();
                if let Some(f) = self.fields.iter_mut().find(|f| f.key == to)
                    && f.input.value() != value
                {
                    f.input = Input::new(value);
                }
            };
            if inherits.production {
                copy("production", period_key(i, "production"));
            }
            if inherits.buffer {
                for name in PERIOD_BUFFER {
                    copy(name, period_key(i, name));
                }
            }
        }
    }

    /// `ctrl-n`: a period that overlaps none of the others (office hours if free, else the
    /// first free hour of the week), taking production and buffer from the class rule.
    fn add_period(&mut self) -> Option<String> {
        let existing: Vec<Period> = (0..self.periods())
            .filter_map(|j| self.read_period(j).ok())
            .collect();
        if existing.len() != self.periods() {
            return Some(
                "fix the periods' errors first: a new period must not overlap them".into(),
            );
        }
        let production = self.value("production").parse().unwrap_or(0);
        let buffer = self.original.buffer;
        let fits = |days: u8, from: u32, to: u32| {
            let candidate = Period {
                days: Weekdays(days),
                from: TimeOfDay(from * 3600),
                to: TimeOfDay(to * 3600),
                production,
                buffer,
            };
            let mut all: Vec<Option<&Period>> = existing.iter().map(Some).collect();
            all.push(Some(&candidate));
            overlapping_pairs(&all).is_empty().then_some(candidate)
        };
        let period = fits(0b001_1111, 8, 17).or_else(|| {
            NEW_PERIOD_DAYS
                .iter()
                .find_map(|&days| (0..24).find_map(|hour| fits(days, hour, hour + 1)))
        });
        let Some(period) = period else {
            return Some(
                "every hour of the week is in a period already: no room for a new one".into(),
            );
        };
        let i = self.periods();
        self.fields.extend(period_fields(i, &period));
        self.inherits.push(PeriodInherits::ALL);
        self.cursor = GENERAL_FIELDS + i * PERIOD_FIELDS;
        None
    }

    /// `ctrl-d`: removes the period under the cursor; the ones after it move up a number.
    fn delete_period(&mut self) {
        let Some(i) = self.period_at_cursor() else {
            return;
        };
        let start = GENERAL_FIELDS + i * PERIOD_FIELDS;
        // The fields after it keep their text (even text that does not read yet) under their
        // new numbers.
        let mut rest: Vec<Field> = self.fields.drain(start..).skip(PERIOD_FIELDS).collect();
        for f in &mut rest {
            if let Some((j, name)) = split_period_key(&f.key) {
                f.key = period_key(j - 1, name);
                f.label = period_label(j, &f.label);
            }
        }
        self.fields.extend(rest);
        self.inherits.remove(i);
        self.cursor = self.cursor.min(self.fields.len() - 1);
    }

    fn value(&self, key: &str) -> &str {
        self.fields
            .iter()
            .find(|f| f.key == key)
            .map_or("", |f| f.input.value().trim())
    }

    fn number<T: std::str::FromStr>(
        &self,
        key: &str,
        problems: &mut Vec<(String, String)>,
    ) -> Option<T> {
        let text = self.value(key);
        match text.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                let why = if text.is_empty() {
                    "a value is needed".to_string()
                } else {
                    format!("{text:?} is not a whole number")
                };
                problems.push((key.to_string(), why));
                None
            }
        }
    }

    fn read_period(&self, i: usize) -> Result<Period, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let k = |name: &str| period_key(i, name);
        let mut days = Weekdays::default();
        for word in self
            .value(&k("days"))
            .split([' ', ','])
            .filter(|w| !w.is_empty())
        {
            match Weekdays::parse_day(word) {
                Ok(d) => days.0 |= d.0,
                Err(e) => problems.push((k("days"), e.to_string())),
            }
        }
        let time = |name: &str, problems: &mut Vec<(String, String)>| match TimeOfDay::parse(
            self.value(&k(name)),
        ) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push((k(name), e.to_string()));
                None
            }
        };
        let from = time("from", &mut problems);
        let to = time("to", &mut problems);
        let production = self.number(&k("production"), &mut problems);
        let floor = self.number(&k("buffer.floor"), &mut problems);
        let percent = self.number(&k("buffer.percent"), &mut problems);
        let ceiling = self.number(&k("buffer.ceiling"), &mut problems);
        match (from, to, production, floor, percent, ceiling) {
            (Some(from), Some(to), Some(production), Some(floor), Some(percent), Some(ceiling))
                if problems.is_empty() =>
            {
                Ok(Period {
                    days,
                    from,
                    to,
                    production,
                    buffer: BufferRule {
                        floor,
                        percent,
                        ceiling,
                    },
                })
            }
            _ => Err(problems),
        }
    }

    /// The policy as typed, or every problem with it: the fields that do not read, else the
    /// rules the policy breaks.
    pub fn policy(&self) -> Result<Policy, PolicyError> {
        let mut problems = Vec::new();
        let cap = self.number("cap", &mut problems);
        let production = self.number("production", &mut problems);
        let floor = self.number("buffer.floor", &mut problems);
        let percent = self.number("buffer.percent", &mut problems);
        let ceiling = self.number("buffer.ceiling", &mut problems);
        let ready_secs = self.number("ready_secs", &mut problems);
        let delay = self.number("scale_down_delay_secs", &mut problems);
        let grace = self.number("disconnect_grace_secs", &mut problems);
        let clones = self.number("pacing.clones_per_host", &mut problems);
        let boots = self.number("pacing.boots_per_host", &mut problems);
        let on_logout = match self.value("on_logout") {
            "recycle" => Some(LogoutAction::Recycle),
            "delete" => Some(LogoutAction::Delete),
            other => {
                problems.push((
                    "on_logout".into(),
                    format!("{other:?} is neither recycle nor delete"),
                ));
                None
            }
        };
        let on_shutoff = match self.value("on_shutoff") {
            "restart" => Some(ShutoffAction::Restart),
            "recycle" => Some(ShutoffAction::Recycle),
            other => {
                problems.push((
                    "on_shutoff".into(),
                    format!("{other:?} is neither restart nor recycle"),
                ));
                None
            }
        };
        let mut periods = Vec::new();
        for i in 0..self.periods() {
            match self.read_period(i) {
                Ok(p) => periods.push(p),
                Err(mut e) => problems.append(&mut e),
            }
        }
        let parsed = match (
            cap, production, floor, percent, ceiling, ready_secs, delay, grace, clones, boots,
            on_logout, on_shutoff,
        ) {
            (
                Some(cap),
                Some(production),
                Some(floor),
                Some(percent),
                Some(ceiling),
                Some(ready_secs),
                Some(delay),
                Some(grace),
                Some(clones),
                Some(boots),
                Some(on_logout),
                Some(on_shutoff),
            ) if problems.is_empty() => Some(Policy {
                cap,
                buffer: BufferRule {
                    floor,
                    percent,
                    ceiling,
                },
                production,
                periods,
                // Not edited in the form: kept as loaded, so a save never drops them.
                events: self.original.events.clone(),
                pacing: Pacing {
                    clones_per_host: clones,
                    boots_per_host: boots,
                },
                on_logout,
                on_shutoff,
                ready_secs,
                scale_down_delay_secs: delay,
                disconnect_grace_secs: grace,
                // Not edited in the form: kept as loaded.
                predictive: self.original.predictive,
            }),
            _ => None,
        };
        let Some(policy) = parsed else {
            return Err(PolicyError { problems });
        };
        policy.validate().map(|()| policy)
    }

    fn revalidate(&mut self) {
        let mut problems = Vec::new();
        // Field-by-field parse problems first, then the loader's rules on the whole policy.
        let _ = self.number::<u32>("cap", &mut problems);
        match self.policy() {
            Ok(_) => problems.clear(),
            Err(_) => {
                problems.clear();
                self.collect_problems(&mut problems);
            }
        }
        self.problems = problems;
    }

    fn collect_problems(&self, out: &mut Vec<(String, String)>) {
        for key in [
            "cap",
            "production",
            "buffer.floor",
            "buffer.percent",
            "buffer.ceiling",
            "ready_secs",
            "scale_down_delay_secs",
            "disconnect_grace_secs",
            "pacing.clones_per_host",
            "pacing.boots_per_host",
        ] {
            let _ = self.number::<u64>(key, out);
        }
        if !matches!(self.value("on_logout"), "recycle" | "delete") {
            out.push(("on_logout".into(), "recycle or delete".into()));
        }
        if !matches!(self.value("on_shutoff"), "restart" | "recycle") {
            out.push(("on_shutoff".into(), "restart or recycle".into()));
        }
        for i in 0..self.periods() {
            if let Err(mut e) = self.read_period(i) {
                out.append(&mut e);
            }
        }
        if out.is_empty()
            && let Err(error) = self.policy()
        {
            out.extend(error.problems);
        }
    }
}

#[cfg(test)]
#[path = "editor_tests.rs"]
mod tests;
