//! The console's state and its key grammar (k9s-like: `?` help, `:` commands, `/` filter,
//! `esc` back). Keys change the state and may produce [`Effect`]s for the loop to carry out; no
//! I/O happens here, so every behaviour is testable without a terminal.
//!
//! - this file: the state, what the lists show, moving between rows and screens
//! - [`keys`]: what each key does, on each screen and in each mode (popups, filter, editor)
//! - [`command_line`]: the `:` commands and their completion
//! - [`prompt`]: reading the answer of a one-line prompt into an effect
//! - [`sort`]: the lists' order (`shift`+a column's letter)
//! - [`mouse`]: clicks select rows, the wheel scrolls

mod command_line;
mod digest;
mod keys;
mod mouse;
mod prompt;
mod sort;

pub use digest::{Digest, Used};
pub use mouse::ListRows;
pub use sort::{List, Sort};

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tui_input::Input;

use super::editor::PolicyForm;
use super::history::History;
use super::screen::Screen;
use super::strings;
use deskpool_api::{Command, DesktopView, Event, Snapshot};
use deskpool_core::policy::Fleet;

/// Most events kept for the events view.
pub const EVENT_LOG_LEN: usize = 2000;

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
    /// `esc` in the policy editor with edits not saved: drop them? (`yes` as in `Confirm`)
    DropEdits { yes: bool },
    /// One line of input for an action (a user name, a floor and a duration).
    Prompt {
        label: String,
        input: Input,
        purpose: PromptPurpose,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptPurpose {
    AssignUser {
        class: String,
    },
    /// `cap`: the class's, which the floor may not exceed.
    RaiseFloor {
        class: String,
        cap: u32,
    },
}

/// Something the loop must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a command to the engine; `what` is how the audit log and status line name it.
    Engine {
        command: Command,
        what: String,
    },
    /// Read the class's policy from the config file and open the editor on it if it is still
    /// the one loaded (the loop answers with [`App::open_editor_checked`]).
    OpenEditor {
        class: String,
    },
    /// Apply an edited policy to the engine and write it to the config file, unless the
    /// class's policy in the file is no longer `loaded` (the one the edit started from).
    SavePolicy {
        class: String,
        loaded: Box<deskpool_core::policy::Policy>,
        policy: Box<deskpool_core::policy::Policy>,
    },
    Quit,
}

/// A line at the bottom that says what just happened, until a key is pressed or it expires.
pub struct Status {
    pub text: String,
    pub error: bool,
    pub expires: std::time::Instant,
}

/// How long a message stays: long enough to read; an error a little longer.
pub const STATUS_FOR: std::time::Duration = std::time::Duration::from_secs(8);
pub const ERROR_FOR: std::time::Duration = std::time::Duration::from_secs(15);

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
    /// Quitting stops the engine, which runs in this process and provisions and serves the
    /// broker socket for everyone: `q` asks first.
    pub quit_stops_engine: bool,
    /// The engine runs in another process, reached through its socket.
    pub attached: bool,
    /// The terminal is below the smallest size drawn (set by each draw): only the "too small"
    /// note shows, and only `q` and ctrl-c act.
    pub too_small: bool,
    /// Each list's chosen order (none: the engine's order).
    pub sorts: HashMap<List, Sort>,
    /// Where the current list's rows are on the screen (set by each draw), for the mouse.
    pub list_rows: Option<ListRows>,
    /// Lines of the help page as last drawn (wrapped to its width), so `G` shows a full last
    /// page.
    pub help_lines: usize,
    /// The attached engine went away at this time (its socket closed): the console shows its
    /// last snapshot greyed, refuses actions and reconnects when the engine is back.
    pub disconnected: Option<jiff::Timestamp>,
    /// What the views read from every desktop of the snapshot, counted when it arrived.
    pub digest: Digest,
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
            quit_stops_engine: false,
            attached: false,
            too_small: false,
            sorts: HashMap::new(),
            list_rows: None,
            help_lines: 0,
            disconnected: None,
            digest: Digest::default(),
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
        self.digest = Digest::of(&self.fleet, &snapshot);
        self.snapshot = snapshot;
        self.clamp_rows();
    }

    pub fn on_event(&mut self, event: Event) {
        if self.events.len() == EVENT_LOG_LEN {
            self.events.pop_back();
        }
        self.events.push_front(event);
        // Keep the same event selected as new ones arrive on top (of the engine's order).
        if self.event_row > 0 && self.sort_of(List::Events).is_none() {
            self.event_row += 1;
        }
        self.clamp_rows();
    }

    /// The attached engine's socket closed at `at`: its last state stays on screen, greyed,
    /// and actions are refused until [`App::on_engine_back`].
    pub fn on_engine_gone(&mut self, at: jiff::Timestamp, socket: &std::path::Path) {
        self.disconnected = Some(at);
        self.complain(format!(
            "the engine on {} went away: its last state is shown greyed; reconnecting",
            socket.display()
        ));
    }

    /// Attached again after the engine went away.
    pub fn on_engine_back(&mut self, socket: &std::path::Path) {
        self.disconnected = None;
        self.say(format!(
            "attached again to the engine on {}",
            socket.display()
        ));
    }

    pub fn say(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
            expires: std::time::Instant::now() + STATUS_FOR,
        });
    }

    pub fn complain(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
            expires: std::time::Instant::now() + ERROR_FOR,
        });
    }

    /// When the message shown expires (the loop wakes then to clear it).
    pub fn status_expiry(&self) -> Option<std::time::Instant> {
        self.status.as_ref().map(|s| s.expires)
    }

    /// Clears the message if it has expired by `now`.
    pub fn expire_status(&mut self, now: std::time::Instant) {
        if self.status.as_ref().is_some_and(|s| s.expires <= now) {
            self.status = None;
        }
    }

    // ---- what lists show -----------------------------------------------------------------

    pub fn selected_class(&self) -> Option<&str> {
        self.visible_classes()
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
        self.sort_desktops(&mut rows);
        rows
    }

    /// The events that match the filter, in the list's order. The filter matches the text the
    /// events view shows (time, what, place and message), whole.
    pub fn visible_events(&self) -> Vec<&Event> {
        let filter = self.event_filter.to_lowercase();
        let tz = &self.fleet.engine.timezone;
        let mut rows: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| {
                filter.is_empty()
                    || strings::event_row(e, tz)
                        .iter()
                        .any(|f| f.to_lowercase().contains(&filter))
            })
            .collect();
        self.sort_events(&mut rows);
        rows
    }

    fn list_len(&self) -> usize {
        match self.screen() {
            Screen::Dashboard => self.snapshot.classes.len(),
            Screen::Detail { class } => self.visible_desktops(class).len(),
            Screen::Hosts => self.snapshot.hosts.len(),
            Screen::Events => self.visible_events().len(),
            // The last scroll position shows a full last page, not one line on a blank one.
            Screen::Help => self
                .help_lines
                .saturating_sub(self.page_rows.saturating_sub(1)),
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
            if screen == Screen::Help {
                self.help_scroll = 0;
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
}
