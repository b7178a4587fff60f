//! The real binary in a tmux pane, as a person sees it: keys sent with `send-keys`, the screen
//! read with `capture-pane`, every wait for a condition on the screen with a deadline. Shared by
//! the console tests; each uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of its own (`-L socket`) running one pane; killed on drop.
pub struct Pane {
    socket: String,
    deadline: Duration,
}

impl Pane {
    /// Runs `deskpool ARGS` in a `width`x`height` pane with `home` as its home (config and
    /// state under it), then `after` (shell, e.g. to print what the terminal was left in), then
    /// keeps the pane open. `name` makes the tmux socket unique with the process and the home.
    pub fn start(
        name: &str,
        home: &Path,
        args: &str,
        after: &str,
        (width, height): (u16, u16),
        deadline: Duration,
    ) -> Pane {
        let socket = format!(
            "deskpool-{name}-{}-{}-{width}x{height}",
            std::process::id(),
            home.file_name().unwrap().to_string_lossy()
        );
        let h = home.display();
        let script = format!(
            "export HOME={h} XDG_CONFIG_HOME={h}/config XDG_STATE_HOME={h}/state TERM=xterm-256color; {} {args}; echo EXIT=$?; {after} sleep 600",
            env!("CARGO_BIN_EXE_deskpool")
        );
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                "sh",
                "-c",
                &script,
            ])
            .status()
            .expect("tmux runs (make test installs it)");
        assert!(status.success());
        Pane { socket, deadline }
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    /// The screen with its colours (SGR escapes), as `capture-pane -e` gives it.
    pub fn screen_with_colours(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-e"])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Polls `read` until `ready` holds for what it read, failing the test (with the screen) at
    /// the deadline.
    pub fn wait_on(
        &self,
        what: &str,
        read: impl Fn(&Pane) -> String,
        ready: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let seen = read(self);
            if ready(&seen) {
                return seen;
            }
            assert!(
                start.elapsed() < self.deadline,
                "timed out waiting for {what}; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the screen satisfies `ready`.
    pub fn wait(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        self.wait_on(what, Pane::screen, ready)
    }

    /// Waits for `what` on the screen read as one line of words ([`flat`]: a message wrapped
    /// over rows reads whole).
    pub fn wait_words(&self, what: &str) -> String {
        self.wait_on(
            &format!("{what:?}"),
            |pane| flat(&pane.screen()),
            |words| words.contains(what),
        )
    }

    /// The deskpool process in the pane.
    pub fn pid(&self) -> String {
        let shell = self.tmux(&["list-panes", "-F", "#{pane_pid}"]);
        let out = Command::new("pgrep")
            .args(["-P", shell.trim(), "deskpool"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// The text of a bordered box titled `title`: its inner lines, joined by spaces (a wrapped
/// sentence read back whole), or `None` while the box is not on the screen.
pub fn boxed(screen: &str, title: &str) -> Option<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let top = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&format!("┌ {title} ")))?;
    let inner: Vec<String> = lines[top + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with('└'))
        .map(|l| l.trim().trim_matches('│').trim().to_string())
        .collect();
    Some(inner.join(" "))
}

/// Every row trimmed (of spaces and box sides) and joined by one space.
pub fn flat(screen: &str) -> String {
    screen
        .lines()
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '│'))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Drop for Pane {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// The dashboard with its classes listed: while the engine starts, its table is still
/// "classes (0)" though "office" may already show elsewhere on the screen.
pub fn dashboard_with_classes(screen: &str) -> bool {
    screen.contains("· dashboard") && !screen.contains(" classes (0) ") && screen.contains("office")
}
