//! What each key does: on each screen, in popups, in the filter and command lines, and in the
//! policy editor.

use jiff::Timestamp;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::prompt::prompt_effect;
use super::{App, Effect, Mode, Popup, PromptPurpose};
use crate::editor::PolicyForm;
use crate::screen::Screen;
use crate::strings;
use deskpool_api::Command;

impl App {
    /// Handles one terminal event; returns what the loop must do.
    pub fn handle(&mut self, event: &TermEvent) -> Vec<Effect> {
        let key = match event {
            TermEvent::Key(key) => key,
            TermEvent::Mouse(mouse) => return self.mouse(mouse),
            _ => return Vec::new(),
        };
        if key.kind != crossterm::event::KeyEventKind::Press {
            return Vec::new();
        }
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl_c {
            // A second ctrl-c answers the quit question with yes.
            if self.asks_to_quit() {
                return vec![Effect::Quit];
            }
            self.mode = Mode::Normal;
            return self.quit();
        }
        if self.too_small {
            // Nothing behind the note may act unseen: only quitting, and its question.
            return match key.code {
                _ if self.asks_to_quit() => self.popup_key(key, event),
                KeyCode::Char('q') => self.quit(),
                _ => Vec::new(),
            };
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
            KeyCode::Char('q') => return self.quit(),
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
            // k9s: shift+a column's letter sorts the list by it.
            KeyCode::Char(c) if c.is_ascii_uppercase() && self.sort_by_key(c) => {}
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
                    && let Some(cap) = self.fleet.class(&class).map(|c| c.policy.cap)
                    && self.writable()
                {
                    self.popup = Some(Popup::Prompt {
                        label: format!(
                            "raise {class}'s buffer floor to N (at most the cap, {cap}) for M minutes (N M)"
                        ),
                        input: Input::default(),
                        purpose: PromptPurpose::RaiseFloor { class, cap },
                    });
                }
                Vec::new()
            }
            ('e', Screen::Dashboard | Screen::Detail { .. }) => match class {
                Some(class) if self.writable() => self.open_editor(&class),
                _ => Vec::new(),
            },
            ('a', Screen::Detail { class }) => {
                if self.writable() {
                    self.popup = Some(Popup::Prompt {
                        label: format!(
                            "assign {} {class} desktop to user",
                            strings::article(class)
                        ),
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
            ('d', Screen::Hosts) => match self.selected_host() {
                Some(host) => self.confirm(
                    format!("Drain {host}? No new desktops go there; its buffered ones move away."),
                    Command::DrainHost { host: host.clone() },
                    format!("drain {host}"),
                ),
                None => Vec::new(),
            },
            ('u', Screen::Hosts) => match self.selected_host() {
                Some(host) => self.act(
                    Command::UndrainHost { host: host.clone() },
                    format!("undrain {host}"),
                ),
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Quits, or first asks when quitting stops the engine for everyone.
    pub(super) fn quit(&mut self) -> Vec<Effect> {
        if !self.quit_stops_engine {
            return vec![Effect::Quit];
        }
        self.popup = Some(Popup::Confirm {
            question: strings::QUIT_STOPS_ENGINE.to_string(),
            effect: Box::new(Effect::Quit),
            yes: false,
        });
        Vec::new()
    }

    /// Whether the popup open is the question before quitting.
    pub fn asks_to_quit(&self) -> bool {
        matches!(&self.popup, Some(Popup::Confirm { effect, .. }) if **effect == Effect::Quit)
    }

    pub(super) fn writable(&mut self) -> bool {
        if self.read_only {
            self.complain(strings::READ_ONLY);
            return false;
        }
        if self.disconnected.is_some() {
            self.complain(strings::ENGINE_GONE_NO_ACTIONS);
            return false;
        }
        true
    }

    /// The host selected in the hosts table.
    fn selected_host(&self) -> Option<String> {
        self.visible_hosts()
            .get(self.host_row)
            .map(|h| h.name.clone())
    }

    pub(super) fn act(&mut self, command: Command, what: String) -> Vec<Effect> {
        if !self.writable() {
            return Vec::new();
        }
        vec![Effect::Engine { command, what }]
    }

    pub(super) fn confirm(
        &mut self,
        question: String,
        command: Command,
        what: String,
    ) -> Vec<Effect> {
        if self.writable() {
            self.popup = Some(Popup::Confirm {
                question,
                effect: Box::new(Effect::Engine { command, what }),
                yes: false,
            });
        }
        Vec::new()
    }

    /// Opens the policy editor on `class`: with a config file, first asks the loop to read the
    /// class's policy there (editing over a change made on disk would lose it); in the demo,
    /// at once.
    pub(super) fn open_editor(&mut self, class: &str) -> Vec<Effect> {
        let Some(spec) = self.fleet.class(class) else {
            self.complain(format!("unknown class {class}"));
            return Vec::new();
        };
        if self.can_save {
            return vec![Effect::OpenEditor {
                class: class.to_string(),
            }];
        }
        let inherits = deskpool_config::on_disk::demo_period_inheritance(class);
        self.editor = Some(PolicyForm::new(spec, inherits));
        self.push(Screen::Editor);
        Vec::new()
    }

    /// The loop read `class`'s policy from the config file: edit it if it is still the one this
    /// console loaded (and runs); otherwise say what changed on disk and edit nothing.
    pub fn open_editor_checked(
        &mut self,
        class: &str,
        on_disk: Result<deskpool_config::PolicyOnDisk, deskpool_config::EditError>,
    ) {
        let on_disk = match on_disk {
            Ok(on_disk) => on_disk,
            Err(e) => {
                self.complain(format!("cannot edit the policy of {class}: {e}"));
                return;
            }
        };
        let Some(spec) = self.fleet.class(class) else {
            self.complain(format!("unknown class {class}"));
            return;
        };
        if on_disk.policy != spec.policy {
            let changes = deskpool_config::policy_changes(&spec.policy, &on_disk.policy);
            self.complain(format!(
                "not editing {class}: its policy in the config file changed since the console \
                 loaded it ({}); the engine runs the loaded one. Undo the change in the file, \
                 or restart the console to run the file's policy",
                changes.join(", ")
            ));
            return;
        }
        self.editor = Some(PolicyForm::new(spec, on_disk.inherits));
        self.push(Screen::Editor);
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
            Popup::DropEdits { yes } => match key.code {
                KeyCode::Char('y') => self.leave_editor(),
                KeyCode::Enter if yes => self.leave_editor(),
                KeyCode::Esc | KeyCode::Char('n') | KeyCode::Enter => Vec::new(),
                KeyCode::Left
                | KeyCode::Right
                | KeyCode::Tab
                | KeyCode::Char('h')
                | KeyCode::Char('l') => {
                    self.popup = Some(Popup::DropEdits { yes: !yes });
                    Vec::new()
                }
                _ => {
                    self.popup = Some(Popup::DropEdits { yes });
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
                        self.complain(why.to_string());
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

    fn editor_key(&mut self, key: &KeyEvent, event: &TermEvent) -> Vec<Effect> {
        let Some(form) = self.editor.as_mut() else {
            self.back();
            return Vec::new();
        };
        match key.code {
            KeyCode::Esc => {
                if form.is_dirty() {
                    self.popup = Some(Popup::DropEdits { yes: false });
                    Vec::new()
                } else {
                    self.leave_editor()
                }
            }
            // No field takes a `?` (numbers, times, day and action names), so it is help here
            // as everywhere; the form stays as it is under the help page.
            KeyCode::Char('?') => {
                self.push(Screen::Help);
                Vec::new()
            }
            KeyCode::Char('s') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                match form.policy() {
                    Ok(policy) => {
                        let class = form.class.clone();
                        let loaded = Box::new(form.original.clone());
                        self.back();
                        vec![Effect::SavePolicy {
                            class,
                            loaded,
                            policy: Box::new(policy),
                        }]
                    }
                    Err(error) => {
                        let first = error
                            .problems
                            .first()
                            .map(|(field, why)| format!("{}: {why}", form.label_for(field)))
                            .unwrap_or_default();
                        self.complain(format!("cannot save: {first}"));
                        Vec::new()
                    }
                }
            }
            _ => {
                if let Some(note) = form.handle(key, event) {
                    self.complain(note);
                }
                Vec::new()
            }
        }
    }

    fn leave_editor(&mut self) -> Vec<Effect> {
        self.back();
        self.say("policy not changed");
        Vec::new()
    }
}
