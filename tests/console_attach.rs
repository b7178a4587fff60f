//! A console attached to `deskpool serve` while the service restarts: it keeps the last state on
//! screen, greyed, refuses actions, and attaches again when the engine is back. The real binary
//! in tmux at 80x23 and 120x40; every wait is for a condition on the screen, with a deadline.

mod tmux;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tmux::Pane;

const DEADLINE: Duration = Duration::from_secs(60);
const SIZES: [(u16, u16); 2] = [(80, 23), (120, 40)];
/// The dark theme's `muted` colour (themes/dark.toml): what a greyed screen is drawn in.
const MUTED: &str = "246";

/// `deskpool serve` on the embedded demo with its home in `home`; stopped with SIGTERM.
struct Server {
    child: Child,
}

impl Server {
    fn start(home: &Path) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_deskpool"))
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_STATE_HOME", home.join("state"))
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !socket(home).exists() {
            assert!(start.elapsed() < DEADLINE, "serve never opened its socket");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child }
    }

    /// SIGTERM, then waits for the process to end (it removes its socket on the way out).
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn socket(home: &Path) -> PathBuf {
    home.join("state/deskpool/demo/deskpool.sock")
}

/// The foreground colours (256-colour indexes) the boxes of the body are drawn in: from the
/// line under the title to the last box's bottom edge, as `capture-pane -e` gives them.
fn body_colours(screen: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let end = lines.iter().rposition(|l| l.contains('└')).unwrap_or(0);
    lines[1..=end.max(1)]
        .iter()
        .flat_map(|l| l.split("38;5;").skip(1))
        .filter_map(|rest| rest.split(['m', ';']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn an_attached_console_shows_the_last_state_greyed_while_serve_restarts_then_attaches_again() {
    for (width, height) in SIZES {
        let home = tempfile::tempdir().unwrap();
        let server = Server::start(home.path());
        let console = Pane::start("attach", home.path(), "", "", (width, height), DEADLINE);
        console.wait("the attached console with its classes", |s| {
            s.contains("attached ·") && s.contains("office") && s.contains("● running")
        });
        let live = body_colours(&console.screen_with_colours());
        assert!(
            live.iter().any(|c| c != MUTED),
            "a live screen has colours of its own: {live:?}"
        );

        server.stop();
        let screen = console.wait("the engine gone", |s| {
            s.contains("engine gone, reconnecting")
        });
        assert!(
            screen.contains("office") && screen.contains("buffer"),
            "the last state stays on screen:\n{screen}"
        );
        let greyed = body_colours(&console.screen_with_colours());
        assert_eq!(
            greyed,
            BTreeSet::from([MUTED.to_string()]),
            "the last state is drawn greyed"
        );
        console.wait_words("engine unreachable since");
        let hints = console.screen().lines().last().unwrap_or("").to_string();
        assert!(
            !hints.contains("p pause") && !hints.contains("e edit"),
            "no action is offered while the engine is away: {hints}"
        );
        // No action goes anywhere while the engine is away.
        console.keys(&["p"]);
        console.wait_words("the engine is not reachable");

        let server = Server::start(home.path());
        console.wait("attached again", |s| {
            s.contains("attached again") && !s.contains("engine gone") && s.contains("● running")
        });
        let live = body_colours(&console.screen_with_colours());
        assert!(live.iter().any(|c| c != MUTED), "colours back: {live:?}");
        // Actions reach the new engine.
        console.keys(&["p"]);
        console.wait("the new engine paused", |s| s.contains("❚❚ paused"));
        let status = Command::new(env!("CARGO_BIN_EXE_deskpool"))
            .env("HOME", home.path())
            .args(["ctl", "--socket"])
            .arg(socket(home.path()))
            .arg("status")
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&status.stdout);
        assert!(status.contains("paused"), "{status}");
        console.keys(&["q"]);
        console.wait("the console gone", |s| s.contains("EXIT=0"));
        server.stop();
    }
}
