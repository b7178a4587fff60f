//! The policy editor's form: one text field per policy value, checked as you type with the same
//! rules as `deskpool check` ([`Policy::validate`], the rules of `config::check_policy`).

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use deskpool_core::policy::rules::PolicyError;
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

fn period_fields(i: usize, p: &Period) -> Vec<Field> {
    let k = |name: &str| format!("periods[{i}].{name}");
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

const GENERAL_FIELDS: usize = 11;
const PERIOD_FIELDS: usize = 7;

impl PolicyForm {
    pub fn new(class: &ClassSpec) -> PolicyForm {
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
        let mut form = PolicyForm {
            class: class.name.clone(),
            original: p.clone(),
            fields,
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

    pub fn is_dirty(&self) -> bool {
        self.policy().map_or(true, |p| p != self.original)
    }

    pub fn handle(&mut self, key: &KeyEvent, event: &TermEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Up | KeyCode::BackTab => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Down | KeyCode::Tab | KeyCode::Enter => {
                self.cursor = (self.cursor + 1).min(self.fields.len() - 1);
            }
            KeyCode::Char('n') if ctrl => {
                let i = self.periods();
                let buffer = self.original.buffer;
                let period = Period {
                    days: Weekdays(0b001_1111),
                    from: TimeOfDay(8 * 3600),
                    to: TimeOfDay(17 * 3600),
                    production: 0,
                    buffer,
                };
                self.fields.extend(period_fields(i, &period));
                self.cursor = GENERAL_FIELDS + i * PERIOD_FIELDS;
            }
            KeyCode::Char('d') if ctrl => {
                if let Some(i) = self.period_at_cursor() {
                    let start = GENERAL_FIELDS + i * PERIOD_FIELDS;
                    self.fields.drain(start..start + PERIOD_FIELDS);
                    // Renumber the periods after it.
                    let rest: Vec<Period> = (i..self.periods())
                        .filter_map(|j| self.read_period(j).ok())
                        .collect();
                    if rest.len() == self.periods() - i {
                        self.fields.truncate(start);
                        for (j, p) in rest.iter().enumerate() {
                            self.fields.extend(period_fields(i + j, p));
                        }
                    }
                    self.cursor = self.cursor.min(self.fields.len() - 1);
                }
            }
            _ => {
                if let Some(f) = self.fields.get_mut(self.cursor) {
                    f.input.handle_event(event);
                }
            }
        }
        self.revalidate();
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
        let k = |name: &str| format!("periods[{i}].{name}");
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
            cap, production, floor, percent, ceiling, ready_secs, delay, clones, boots, on_logout,
            on_shutoff,
        ) {
            (
                Some(cap),
                Some(production),
                Some(floor),
                Some(percent),
                Some(ceiling),
                Some(ready_secs),
                Some(delay),
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
mod tests {
    use super::*;

    #[test]
    fn on_shutoff_is_an_editable_field_checked_as_typed() {
        let fleet = deskpool_config::demo_config(std::path::Path::new("/nowhere"));
        let mut form = PolicyForm::new(fleet.class("office").unwrap());
        let at = form
            .fields
            .iter()
            .position(|f| f.key == "on_shutoff")
            .unwrap();
        assert_eq!(form.fields[at].input.value(), "restart");
        form.fields[at].input = Input::new("recycle".into());
        form.revalidate();
        assert_eq!(
            form.policy().map(|p| p.on_shutoff),
            Ok(ShutoffAction::Recycle)
        );
        assert!(form.is_dirty());
        form.fields[at].input = Input::new("reboot".into());
        form.revalidate();
        assert!(form.policy().is_err());
        assert_eq!(form.problem_for("on_shutoff"), Some("restart or recycle"));
    }

    /// The form does not show events, but a save from it keeps them: the policy it builds
    /// carries the loaded events, and the file keeps them as written.
    #[test]
    fn a_save_from_the_form_keeps_the_class_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deskpool.toml");
        let event = "[[classes.policy.events]]\nname = \"training\"\ndate = \"2026-01-05\"\n\
                     from = \"08:00\"\nto = \"09:00\"\nproduction = 50\n\n[[classes]]\n\
                     name = \"dev\"";
        let text = deskpool_config::demo_text(dir.path()).replacen(
            "[[classes]]\nname = \"dev\"",
            event,
            1,
        );
        std::fs::write(&path, &text).unwrap();
        let fleet = deskpool_config::load_file(&path).unwrap();
        let class = fleet.class("office").unwrap();
        assert_eq!(class.policy.events.len(), 1);
        let mut form = PolicyForm::new(class);
        let at = form
            .fields
            .iter()
            .position(|f| f.key == "buffer.floor")
            .unwrap();
        form.fields[at].input = Input::new("5".into());
        form.revalidate();
        let policy = form.policy().unwrap();
        assert_eq!(policy.events, class.policy.events);
        deskpool_config::edit::save_policy_checked(&path, "office", &class.policy, &policy)
            .unwrap();
        let saved = std::fs::read_to_string(&path).unwrap();
        assert!(
            saved.contains(&event[..event.find("\n\n").unwrap()]),
            "{saved}"
        );
        let reloaded = deskpool_config::load_file(&path).unwrap();
        assert_eq!(reloaded.class("office").unwrap().policy, policy);
    }

    #[test]
    fn a_policy_that_breaks_a_rule_names_the_field_in_the_error_and_the_form() {
        let fleet = deskpool_config::demo_config(std::path::Path::new("/nowhere"));
        let mut form = PolicyForm::new(fleet.class("office").unwrap());
        let set = |form: &mut PolicyForm, key: &str, value: &str| {
            let at = form.fields.iter().position(|f| f.key == key).unwrap();
            form.fields[at].input = Input::new(value.into());
        };
        set(&mut form, "cap", "5");
        set(&mut form, "production", "50");
        form.revalidate();
        let error = form.policy().unwrap_err();
        let (field, why) = error
            .problems
            .iter()
            .find(|(field, _)| field == "production")
            .expect("production is over the cap");
        assert_eq!(form.problem_for(field), Some(why.as_str()));
    }
}
