//! The `:` command line: completion of commands, class and host names, and running a line.

use super::{App, Effect};
use crate::screen::Screen;
use crate::strings;
use deskpool_api::Command;

impl App {
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

    pub(super) fn complete(&self, line: &str) -> String {
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
            "q" | "quit" => return self.quit(),
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
                    return self.open_editor(&class);
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
}
