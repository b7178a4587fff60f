//! The console's state and its key grammar (k9s-like: `?` help, `:` commands, `/` filter,
//! `esc` back). Keys change the state and may produce [`Effect`]s for the loop to carry out; no
//! I/O happens here, so every behaviour is testable without a terminal.

use std::collections::VecDeque;
use std::sync::Arc;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use jiff::{SignedDuration, Timestamp};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::editor::PolicyForm;
use super::history::History;
use super::strings;
use deskpool_api::{Command, DesktopView, Event, Snapshot};
use deskpool_core::policy::Fleet;

/// Most events kept for the events view.
pub const EVENT_LOG_LEN: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Dashboard,
    Detail { class: String },
    Hosts,
    Events,
    Editor,
    Help,
}

impl Screen {
    pub fn title(&self) -> String {
        match self {
            Screen::Dashboard => "dashboard".into(),
            Screen::Detail { class } => format!("class {class}"),
            Screen::Hosts => "hosts".into(),
            Screen::Events => "events".into(),
            Screen::Editor => "policy editor".into(),
            Screen::Help => "help".into(),
        }
    }
}

/// What the keyboard is talking to.
pub enum Mode {
    Normal,
    /// `:` command line.
    Command(Input),
    /// `/` filter of the current list.
    Filter(Input),
}

/// A question in front of everything else.
pub enum Popup {
    /// A destructive action waiting for confirmation; `yes` is false (Cancel) until chosen.
    Confirm {
        question: String,
        effect: Box<Effect>,
        yes: bool,
    },
    /// One line of input for an action (a user name, a floor and a duration).
    Prompt {
        label: String,
        input: Input,
        purpose: PromptPurpose,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptPurpose {
    AssignUser { class: String },
    RaiseFloor { class: String },
}

/// Something the loop must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a command to the engine; `what` is how the audit log and status line name it.
    Engine {
        command: Command,
        what: String,
    },
    /// Apply an edited policy to the engine and write it to the config file.
    SavePolicy {
        class: String,
        policy: Box<deskpool_core::policy::Policy>,
    },
    Quit,
}

/// A line at the bottom that says what just happened.
pub struct Status {
    pub text: String,
    pub error: bool,
}

pub struct App {
    pub fleet: Fleet,
    pub snapshot: Arc<Snapshot>,
    pub events: VecDeque<Event>,
    pub history: History,
    pub screens: Vec<Screen>,
    pub mode: Mode,
    pub popup: Option<Popup>,
    pub read_only: bool,
    /// Selected row per list.
    pub class_row: usize,
    pub host_row: usize,
    pub desktop_row: usize,
    pub event_row: usize,
    pub help_scroll: usize,
    /// Filters per list (desktops of the detail view, events).
    pub desktop_filter: String,
    pub event_filter: String,
    pub status: Option<Status>,
    pub editor: Option<PolicyForm>,
    /// Where the configuration came from, for the title and for saving policies.
    pub config_label: String,
    pub can_save: bool,
    /// Rows a page holds in the current list (set by the last draw).
    pub page_rows: usize,
    /// The demo's clock speed, shown in the title.
    pub demo_speed: Option<u32>,
}

impl App {
    pub fn new(fleet: Fleet, read_only: bool, config_label: String, can_save: bool) -> App {
        App {
            fleet,
            snapshot: Arc::new(Snapshot::default()),
            events: VecDeque::new(),
            history: History::default(),
            screens: vec![Screen::Dashboard],
            mode: Mode::Normal,
            popup: None,
            read_only,
            class_row: 0,
            host_row: 0,
            desktop_row: 0,
            event_row: 0,
            help_scroll: 0,
            desktop_filter: String::new(),
            event_filter: String::new(),
            status: None,
            editor: None,
            config_label,
            can_save,
            page_rows: 10,
            demo_speed: None,
        }
    }

    pub fn screen(&self) -> &Screen {
        self.screens.last().unwrap_or(&Screen::Dashboard)
    }

    /// The screen under the help page (whose keys the help shows).
    pub fn screen_under_help(&self) -> &Screen {
        self.screens
            .iter()
            .rev()
            .find(|s| **s != Screen::Help)
            .unwrap_or(&Screen::Dashboard)
    }

    pub fn on_snapshot(&mut self, snapshot: Arc<Snapshot>) {
        self.history.record(&snapshot);
        self.snapshot = snapshot;
        self.clamp_rows();
    }

    pub fn on_event(&mut self, event: Event) {
        if self.events.len() == EVENT_LOG_LEN {
            self.events.pop_back();
        }
        self.events.push_front(event);
        // Keep the same event selected as new ones arrive on top.
        if self.event_row > 0 {
            self.event_row += 1;
        }
        self.clamp_rows();
    }

    pub fn say(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }

    pub fn complain(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    // ---- what lists show -----------------------------------------------------------------

    pub fn selected_class(&self) -> Option<&str> {
        self.snapshot
            .classes
            .get(self.class_row)
            .map(|c| c.plan.name.as_str())
    }

    /// The class of the current screen: the detail view's, else the dashboard's selection.
    pub fn current_class(&self) -> Option<String> {
        match self.screen_under_help() {
            Screen::Detail { class } => Some(class.clone()),
            Screen::Editor => self.editor.as_ref().map(|e| e.class.clone()),
            _ => self.selected_class().map(str::to_string),
        }
    }

    /// Desktops of `class` that match the filter, in table order.
    pub fn visible_desktops(&self, class: &str) -> Vec<&DesktopView> {
        let filter = self.desktop_filter.to_lowercase();
        let mut rows: Vec<&DesktopView> = self
            .snapshot
            .desktops
            .iter()
            .filter(|d| d.meta.class == class)
            .filter(|d| {
                filter.is_empty() || {
                    let m = &d.meta;
                    [
                        d.name.as_str(),
                        d.host.as_str(),
                        m.pool.as_str(),
                        m.seed_version.as_str(),
                        m.user.as_deref().unwrap_or(""),
                    ]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&filter))
                }
            })
            .collect();
        rows.sort_by(|a, b| (a.meta.pool, &a.host, &a.name).cmp(&(b.meta.pool, &b.host, &b.name)));
        rows
    }

    pub fn visible_events(&self) -> Vec<&Event> {
        let filter = self.event_filter.to_lowercase();
        self.events
            .iter()
            .filter(|e| {
                filter.is_empty() || {
                    let kind = format!("{:?}", e.kind).to_lowercase();
                    [
                        kind.as_str(),
                        e.class.as_deref().unwrap_or(""),
                        e.host.as_deref().unwrap_or(""),
                        e.desktop.as_deref().unwrap_or(""),
                        e.message.as_str(),
                    ]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&filter))
                }
            })
            .collect()
    }

    fn list_len(&self) -> usize {
        match self.screen() {
            Screen::Dashboard => self.snapshot.classes.len(),
            Screen::Detail { class } => self.visible_desktops(class).len(),
            Screen::Hosts => self.snapshot.hosts.len(),
            Screen::Events => self.visible_events().len(),
            Screen::Help => strings::help_lines(self.screen_under_help()).len(),
            Screen::Editor => 0,
        }
    }

    fn row_mut(&mut self) -> Option<&mut usize> {
        match self.screen() {
            Screen::Dashboard => Some(&mut self.class_row),
            Screen::Detail { .. } => Some(&mut self.desktop_row),
            Screen::Hosts => Some(&mut self.host_row),
            Screen::Events => Some(&mut self.event_row),
            Screen::Help => Some(&mut self.help_scroll),
            Screen::Editor => None,
        }
    }

    fn clamp_rows(&mut self) {
        let len = self.list_len();
        if let Some(row) = self.row_mut() {
            *row = (*row).min(len.saturating_sub(1));
        }
        self.class_row = self
            .class_row
            .min(self.snapshot.classes.len().saturating_sub(1));
        self.host_row = self
            .host_row
            .min(self.snapshot.hosts.len().saturating_sub(1));
    }

    fn move_rows(&mut self, delta: isize) {
        let len = self.list_len();
        if let Some(row) = self.row_mut() {
            let target = (*row as isize + delta).clamp(0, len.saturating_sub(1) as isize);
            *row = target as usize;
        }
    }

    fn jump(&mut self, to_end: bool) {
        let len = self.list_len();
        if let Some(row) = self.row_mut() {
            *row = if to_end { len.saturating_sub(1) } else { 0 };
        }
    }

    pub fn push(&mut self, screen: Screen) {
        if self.screen() != &screen {
            if matches!(screen, Screen::Detail { .. }) {
                self.desktop_row = 0;
                self.desktop_filter.clear();
            }
            self.screens.push(screen);
        }
    }

    fn back(&mut self) {
        if self.screens.len() > 1 {
            let left = self.screens.pop();
            if left == Some(Screen::Editor) {
                self.editor = None;
            }
        }
    }

    // ---- keys ----------------------------------------------------------------------------

    /// Handles one terminal event; returns what the loop must do.
    pub fn handle(&mut self, event: &TermEvent) -> Vec<Effect> {
        let TermEvent::Key(key) = event else {
            return Vec::new();
        };
        if key.kind != crossterm::event::KeyEventKind::Press {
            return Vec::new();
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return vec![Effect::Quit];
        }
        if self.popup.is_some() {
            return self.popup_key(key, event);
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Command(input) => return self.command_key(key, event, input),
            Mode::Filter(input) => {
                self.filter_key(key, event, input);
                return Vec::new();
            }
            Mode::Normal => {}
        }
        if *self.screen() == Screen::Editor {
            return self.editor_key(key, event);
        }
        self.status = None;
        self.normal_key(key)
    }

    fn normal_key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        let page = self.page_rows.max(1) as isize;
        match key.code {
            KeyCode::Char('q') => return vec![Effect::Quit],
            KeyCode::Char('?') => self.push(Screen::Help),
            KeyCode::Char(':') => self.mode = Mode::Command(Input::default()),
            KeyCode::Char('/') => {
                let current = match self.screen() {
                    Screen::Detail { .. } => Some(self.desktop_filter.clone()),
                    Screen::Events => Some(self.event_filter.clone()),
                    _ => None,
                };
                match current {
                    Some(text) => self.mode = Mode::Filter(Input::new(text)),
                    None => self.complain(strings::NO_FILTER_HERE),
                }
            }
            KeyCode::Esc => {
                let cleared = match self.screen() {
                    Screen::Detail { .. } if !self.desktop_filter.is_empty() => {
                        self.desktop_filter.clear();
                        true
                    }
                    Screen::Events if !self.event_filter.is_empty() => {
                        self.event_filter.clear();
                        true
                    }
                    _ => false,
                };
                if !cleared {
                    self.back();
                }
            }
            KeyCode::Char('j') | KeyCode::Down => self.move_rows(1),
            KeyCode::Char('k') | KeyCode::Up => self.move_rows(-1),
            KeyCode::PageDown => self.move_rows(page),
            KeyCode::PageUp => self.move_rows(-page),
            KeyCode::Char('g') | KeyCode::Home => self.jump(false),
            KeyCode::Char('G') | KeyCode::End => self.jump(true),
            KeyCode::Enter => {
                if *self.screen() == Screen::Dashboard
                    && let Some(class) = self.selected_class()
                {
                    let class = class.to_string();
                    self.push(Screen::Detail { class });
                }
            }
            KeyCode::Char('H') => self.push(Screen::Hosts),
            KeyCode::Char('E') => self.push(Screen::Events),
            KeyCode::Char(c) => return self.action_key(c),
            _ => {}
        }
        Vec::new()
    }

    /// Incident actions, by screen.
    fn action_key(&mut self, c: char) -> Vec<Effect> {
        let screen = self.screen().clone();
        let class = self.current_class();
        match (c, &screen) {
            ('p', _) => {
                let command = if self.snapshot.paused {
                    Command::Resume
                } else {
                    Command::Pause
                };
                let what = if self.snapshot.paused {
                    "resume the engine"
                } else {
                    "pause the engine"
                };
                self.act(command, what.into())
            }
            ('r', Screen::Dashboard | Screen::Detail { .. }) => match class {
                Some(class) => self.act(
                    Command::Refill {
                        class: class.clone(),
                    },
                    format!("refill {class} now"),
                ),
                None => Vec::new(),
            },
            ('f', Screen::Dashboard | Screen::Detail { .. }) => {
                if let Some(class) = class
                    && self.writable()
                {
                    self.popup = Some(Popup::Prompt {
                        label: format!("raise {class}'s buffer floor to N for M minutes (N M)"),
                        input: Input::default(),
                        purpose: PromptPurpose::RaiseFloor { class },
                    });
                }
                Vec::new()
            }
            ('e', Screen::Dashboard | Screen::Detail { .. }) => {
                if let Some(class) = class
                    && self.writable()
                {
                    self.open_editor(&class);
                }
                Vec::new()
            }
            ('a', Screen::Detail { class }) => {
                if self.writable() {
                    self.popup = Some(Popup::Prompt {
                        label: format!("assign a {class} desktop to user"),
                        input: Input::default(),
                        purpose: PromptPurpose::AssignUser {
                            class: class.clone(),
                        },
                    });
                }
                Vec::new()
            }
            ('x' | 'l', Screen::Detail { class }) => {
                let rows = self.visible_desktops(class);
                let Some(d) = rows.get(self.desktop_row).map(|d| (*d).clone()) else {
                    return Vec::new();
                };
                if c == 'l' {
                    let Some(user) = d.meta.user.clone() else {
                        self.complain(format!("{} is not assigned to anyone", d.name));
                        return Vec::new();
                    };
                    self.confirm(
                        format!(
                            "Release {} (user {user})? It is destroyed and a fresh one made.",
                            d.name
                        ),
                        Command::Release {
                            desktop: d.name.clone(),
                        },
                        format!("release {}", d.name),
                    )
                } else {
                    let who = d
                        .meta
                        .user
                        .as_deref()
                        .map(|u| format!(" — {u} is using it!"))
                        .unwrap_or_default();
                    self.confirm(
                        format!("Recycle {}{who} It is destroyed and replaced.", d.name),
                        Command::Recycle {
                            desktop: d.name.clone(),
                        },
                        format!("recycle {}", d.name),
                    )
                }
            }
            ('d', Screen::Hosts) => match self
                .snapshot
                .hosts
                .get(self.host_row)
                .map(|h| h.name.clone())
            {
                Some(host) => self.confirm(
                    format!("Drain {host}? No new desktops go there; its buffered ones move away."),
                    Command::DrainHost { host: host.clone() },
                    format!("drain {host}"),
                ),
                None => Vec::new(),
            },
            ('u', Screen::Hosts) => match self
                .snapshot
                .hosts
                .get(self.host_row)
                .map(|h| h.name.clone())
            {
                Some(host) => self.act(
                    Command::UndrainHost { host: host.clone() },
                    format!("undrain {host}"),
                ),
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn writable(&mut self) -> bool {
        if self.read_only {
            self.complain(strings::READ_ONLY);
        }
        !self.read_only
    }

    fn act(&mut self, command: Command, what: String) -> Vec<Effect> {
        if !self.writable() {
            return Vec::new();
        }
        vec![Effect::Engine { command, what }]
    }

    fn confirm(&mut self, question: String, command: Command, what: String) -> Vec<Effect> {
        if self.writable() {
            self.popup = Some(Popup::Confirm {
                question,
                effect: Box::new(Effect::Engine { command, what }),
                yes: false,
            });
        }
        Vec::new()
    }

    fn open_editor(&mut self, class: &str) {
        match self.fleet.class(class) {
            Some(spec) => {
                self.editor = Some(PolicyForm::new(spec));
                self.push(Screen::Editor);
            }
            None => self.complain(format!("unknown class {class}")),
        }
    }

    fn popup_key(&mut self, key: &KeyEvent, event: &TermEvent) -> Vec<Effect> {
        let Some(popup) = self.popup.take() else {
            return Vec::new();
        };
        match popup {
            Popup::Confirm {
                question,
                effect,
                yes,
            } => match key.code {
                KeyCode::Esc | KeyCode::Char('n') => Vec::new(),
                KeyCode::Char('y') => vec![*effect],
                KeyCode::Enter => {
                    if yes {
                        vec![*effect]
                    } else {
                        Vec::new()
                    }
                }
                KeyCode::Left
                | KeyCode::Right
                | KeyCode::Tab
                | KeyCode::Char('h')
                | KeyCode::Char('l') => {
                    self.popup = Some(Popup::Confirm {
                        question,
                        effect,
                        yes: !yes,
                    });
                    Vec::new()
                }
                _ => {
                    self.popup = Some(Popup::Confirm {
                        question,
                        effect,
                        yes,
                    });
                    Vec::new()
                }
            },
            Popup::Prompt {
                label,
                mut input,
                purpose,
            } => match key.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Enter => match prompt_effect(&purpose, input.value(), self.now()) {
                    Ok(effect) => vec![effect],
                    Err(why) => {
                        self.complain(why);
                        self.popup = Some(Popup::Prompt {
                            label,
                            input,
                            purpose,
                        });
                        Vec::new()
                    }
                },
                _ => {
                    input.handle_event(event);
                    self.popup = Some(Popup::Prompt {
                        label,
                        input,
                        purpose,
                    });
                    Vec::new()
                }
            },
        }
    }

    fn now(&self) -> Timestamp {
        self.snapshot.at.unwrap_or_else(Timestamp::now)
    }

    fn filter_key(&mut self, key: &KeyEvent, event: &TermEvent, mut input: Input) {
        match key.code {
            KeyCode::Esc => {
                self.set_filter(String::new());
                return;
            }
            KeyCode::Enter => return,
            _ => {
                input.handle_event(event);
            }
        }
        self.set_filter(input.value().to_string());
        self.mode = Mode::Filter(input);
    }

    fn set_filter(&mut self, text: String) {
        match self.screen() {
            Screen::Detail { .. } => {
                self.desktop_filter = text;
                self.desktop_row = 0;
            }
            Screen::Events => {
                self.event_filter = text;
                self.event_row = 0;
            }
            _ => {}
        }
    }

    fn command_key(&mut self, key: &KeyEvent, event: &TermEvent, mut input: Input) -> Vec<Effect> {
        match key.code {
            KeyCode::Esc => Vec::new(),
            KeyCode::Enter => self.run_command_line(input.value()),
            KeyCode::Tab => {
                let completed = self.complete(input.value());
                let cursor = completed.chars().count();
                self.mode = Mode::Command(Input::new(completed).with_cursor(cursor));
                Vec::new()
            }
            _ => {
                input.handle_event(event);
                self.mode = Mode::Command(input);
                Vec::new()
            }
        }
    }

    /// Words the command line knows: commands, then class or host names after them.
    pub fn completions(&self, line: &str) -> Vec<String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ends_with_space = line.ends_with(' ');
        let (done, partial) = match (words.len(), ends_with_space) {
            (0, _) => (vec![], ""),
            (n, true) => (words[..n].to_vec(), ""),
            (n, false) => (words[..n - 1].to_vec(), words[n - 1]),
        };
        let candidates: Vec<String> = match done.as_slice() {
            [] => strings::COMMANDS
                .iter()
                .map(|(c, _)| c.to_string())
                .collect(),
            [cmd] if strings::takes_class(cmd) => {
                self.fleet.classes.iter().map(|c| c.name.clone()).collect()
            }
            [cmd] if strings::takes_host(cmd) => {
                self.fleet.hosts.iter().map(|h| h.name.clone()).collect()
            }
            _ => vec![],
        };
        candidates
            .into_iter()
            .filter(|c| c.starts_with(partial))
            .collect()
    }

    fn complete(&self, line: &str) -> String {
        let options = self.completions(line);
        let prefix = line.trim_end_matches(|c: char| !c.is_whitespace());
        match options.as_slice() {
            [] => line.to_string(),
            [one] => format!("{prefix}{one} "),
            many => {
                // The longest common prefix of every option.
                let first = &many[0];
                let common = (0..first.len())
                    .take_while(|&i| {
                        many.iter()
                            .all(|o| o.as_bytes().get(i) == first.as_bytes().get(i))
                    })
                    .count();
                format!("{prefix}{}", &first[..common])
            }
        }
    }

    /// Runs a `:` command line.
    pub fn run_command_line(&mut self, line: &str) -> Vec<Effect> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            return Vec::new();
        };
        let class_arg = |app: &mut App| -> Option<String> {
            let name = args
                .first()
                .map(|s| s.to_string())
                .or_else(|| app.current_class());
            match name {
                Some(n) if app.fleet.class(&n).is_some() => Some(n),
                Some(n) => {
                    app.complain(format!("unknown class {n:?}"));
                    None
                }
                None => {
                    app.complain("which class?");
                    None
                }
            }
        };
        let host_arg = |app: &mut App| -> Option<String> {
            match args.first() {
                Some(n) if app.fleet.host(n).is_some() => Some(n.to_string()),
                Some(n) => {
                    app.complain(format!("unknown host {n:?}"));
                    None
                }
                None => {
                    app.complain("which host?");
                    None
                }
            }
        };
        match cmd {
            "q" | "quit" => return vec![Effect::Quit],
            "help" => self.push(Screen::Help),
            "dashboard" | "home" => self.screens.truncate(1),
            "hosts" => self.push(Screen::Hosts),
            "events" => self.push(Screen::Events),
            "class" => {
                if let Some(class) = class_arg(self) {
                    if let Some(i) = self
                        .snapshot
                        .classes
                        .iter()
                        .position(|c| c.plan.name == class)
                    {
                        self.class_row = i;
                    }
                    self.screens.truncate(1);
                    self.push(Screen::Detail { class });
                }
            }
            "edit" => {
                if let Some(class) = class_arg(self)
                    && self.writable()
                {
                    self.open_editor(&class);
                }
            }
            "pause" => return self.act(Command::Pause, "pause the engine".into()),
            "resume" => return self.act(Command::Resume, "resume the engine".into()),
            "refill" => {
                if let Some(class) = class_arg(self) {
                    return self.act(
                        Command::Refill {
                            class: class.clone(),
                        },
                        format!("refill {class} now"),
                    );
                }
            }
            "drain" => {
                if let Some(host) = host_arg(self) {
                    return self.confirm(
                        format!(
                            "Drain {host}? No new desktops go there; its buffered ones move away."
                        ),
                        Command::DrainHost { host: host.clone() },
                        format!("drain {host}"),
                    );
                }
            }
            "undrain" => {
                if let Some(host) = host_arg(self) {
                    return self.act(
                        Command::UndrainHost { host: host.clone() },
                        format!("undrain {host}"),
                    );
                }
            }
            other => self.complain(format!("unknown command :{other}; :help lists them")),
        }
        Vec::new()
    }

    fn editor_key(&mut self, key: &KeyEvent, event: &TermEvent) -> Vec<Effect> {
        let Some(form) = self.editor.as_mut() else {
            self.back();
            return Vec::new();
        };
        match key.code {
            KeyCode::Esc => {
                self.back();
                self.say("policy not changed");
                Vec::new()
            }
            KeyCode::Char('s') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                match form.policy() {
                    Ok(policy) => {
                        let class = form.class.clone();
                        self.back();
                        vec![Effect::SavePolicy {
                            class,
                            policy: Box::new(policy),
                        }]
                    }
                    Err(problems) => {
                        let first = problems.first().cloned().unwrap_or_default();
                        self.complain(format!("cannot save: {first}"));
                        Vec::new()
                    }
                }
            }
            _ => {
                form.handle(key, event);
                Vec::new()
            }
        }
    }
}

/// The effect of an answered prompt, or why the answer is not usable.
fn prompt_effect(purpose: &PromptPurpose, answer: &str, now: Timestamp) -> Result<Effect, String> {
    match purpose {
        PromptPurpose::AssignUser { class } => {
            let user = answer.trim();
            deskpool_core::policy::names::check_name(user).map_err(|e| format!("user: {e}"))?;
            Ok(Effect::Engine {
                command: Command::Assign {
                    class: class.clone(),
                    user: user.to_string(),
                    // By hand, an admin gets a ready desktop or is told there is none.
                    wait_secs: 0,
                },
                what: format!("assign a {class} desktop to {user}"),
            })
        }
        PromptPurpose::RaiseFloor { class } => {
            let mut parts = answer.split_whitespace();
            let (Some(floor), Some(minutes), None) = (parts.next(), parts.next(), parts.next())
            else {
                return Err("type the floor and the minutes, e.g. 10 30".into());
            };
            let floor: u32 = floor
                .parse()
                .map_err(|_| format!("floor {floor:?} is not a whole number"))?;
            let minutes: i64 = minutes
                .parse()
                .ok()
                .filter(|m| (1..=7 * 24 * 60).contains(m))
                .ok_or_else(|| {
                    format!("minutes {minutes:?} must be a whole number from 1 to 10080")
                })?;
            if floor > 100_000 {
                return Err("floor must be at most 100000".into());
            }
            Ok(Effect::Engine {
                command: Command::RaiseFloor {
                    class: class.clone(),
                    floor,
                    until: now + SignedDuration::from_mins(minutes),
                },
                what: format!("raise {class}'s buffer floor to {floor} for {minutes} min"),
            })
        }
    }
}
