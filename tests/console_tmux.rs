//! The console as a person uses it: the real binary in tmux on the embedded default, keys sent
//! with `send-keys`, the screen read with `capture-pane`. Every wait is for a condition on the
//! screen, with a deadline.

mod tmux;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tmux::Pane;

const DEADLINE: Duration = Duration::from_secs(60);

/// A console in a tmux pane with a home of its own (removed after the pane is killed).
struct Console {
    pane: Pane,
    home: tempfile::TempDir,
}

impl std::ops::Deref for Console {
    type Target = Pane;
    fn deref(&self) -> &Pane {
        &self.pane
    }
}

impl Console {
    /// Starts `deskpool ARGS` in an 80x24 tmux pane with a fresh home; after it exits the pane
    /// prints its exit status and the terminal's line discipline (to prove it was restored).
    fn start(args: &str) -> Console {
        Console::start_in(tempfile::tempdir().unwrap(), args)
    }

    /// Like `start`, in a `width`x`height` pane.
    fn start_sized(args: &str, (width, height): (u16, u16)) -> Console {
        Console::start_at(tempfile::tempdir().unwrap(), args, width, height)
    }

    /// Like `start`, in a home of the caller's (to share its state directory with another
    /// deskpool process).
    fn start_in(home: tempfile::TempDir, args: &str) -> Console {
        Console::start_at(home, args, 80, 24)
    }

    fn start_at(home: tempfile::TempDir, args: &str, width: u16, height: u16) -> Console {
        let pane = Pane::start(
            "test",
            home.path(),
            args,
            "stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' '; echo;",
            (width, height),
            DEADLINE,
        );
        Console { pane, home }
    }

    /// `q`, the question it asks (this console runs the engine), then `y`.
    fn quit(&self) {
        self.keys(&["q"]);
        self.wait("the quit question", |s| {
            s.contains("Quit and stop the engine?")
        });
        self.keys(&["y"]);
        wait_for_exit(self);
    }

    fn config(&self) -> PathBuf {
        self.state().join("deskpool.toml")
    }

    fn state(&self) -> PathBuf {
        self.home.path().join("state/deskpool/demo")
    }
}

/// The (level, target) pairs on a class's dashboard row: production, then buffer.
fn levels(screen: &str, class: &str) -> Option<Vec<(u32, u32)>> {
    let row = screen
        .lines()
        .find(|l| l.contains(&format!("{class} ")) && l.contains('/'))?;
    let pairs: Vec<(u32, u32)> = row
        .split_whitespace()
        .filter_map(|w| w.split_once('/'))
        .filter_map(|(a, b)| {
            Some((
                a.trim_start_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .ok()?,
                b.parse().ok()?,
            ))
        })
        .collect();
    (pairs.len() >= 2).then_some(pairs)
}

fn buffers_full(screen: &str) -> bool {
    ["office", "dev", "cad"]
        .iter()
        .all(|c| levels(screen, c).is_some_and(|l| l[1].0 == l[1].1 && l[1].1 > 0))
}

/// The detail view's "in force" line and buffer target.
fn in_force_and_target(screen: &str) -> (String, u32) {
    let in_force = screen
        .lines()
        .find(|l| l.contains("in force"))
        .unwrap_or("")
        .to_string();
    let target = screen
        .lines()
        .find(|l| l.contains("targets"))
        .and_then(|l| l.split("buffer ").nth(1))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX);
    (in_force, target)
}

fn wait_for_exit(console: &Console) {
    // The exit status, then the terminal modes printed after it.
    let screen = console.wait("the console to exit", |s| {
        s.contains("EXIT=") && s.contains("icanon")
    });
    assert!(screen.contains("EXIT=0"), "{screen}");
    // The terminal is usable again: canonical mode and echo are back on.
    let modes = screen
        .lines()
        .find(|l| l.contains("icanon"))
        .unwrap_or_default();
    assert!(
        modes.split_whitespace().any(|m| m == "icanon")
            && modes.split_whitespace().any(|m| m == "echo"),
        "terminal left raw: {modes:?}"
    );
    assert!(
        !screen.contains("deskpool · demo"),
        "the alternate screen was left:\n{screen}"
    );
    // The terminal no longer reports the mouse to the shell.
    let mouse = console.tmux(&["display", "-p", "#{mouse_any_flag}#{mouse_sgr_flag}"]);
    assert_eq!(mouse.trim(), "00", "mouse reports left on");
}

#[test]
fn dashboard_help_policy_edit_and_quit_on_the_embedded_default() {
    let console = Console::start("");
    let screen = console.wait("every class at its buffer target", buffers_full);
    assert!(
        screen.contains("deskpool · demo (test driver) · dashboard"),
        "{screen}"
    );
    for host in ["h1", "h2", "h3"] {
        assert!(screen.contains(host), "{host} missing:\n{screen}");
    }

    console.keys(&["?"]);
    console.wait("help", |s| {
        s.contains("Keys of the dashboard view") && s.contains("command mode")
    });
    console.keys(&["Escape"]);
    console.wait("the dashboard again", |s| s.contains("· dashboard"));

    // Raise office's buffer floors by 5 (the class's rule and its period's), then save.
    let config = console.state().join("deskpool.toml");
    let before = std::fs::read_to_string(&config).unwrap();
    console.keys(&["Enter"]);
    let screen = console.wait("office in detail", |s| {
        s.contains("class office") && s.contains("targets")
    });
    let (in_force, target) = in_force_and_target(&screen);
    console.keys(&["e"]);
    console.wait("the editor", |s| s.contains("policy of office"));
    console.keys(&["Down", "Down", "BSpace", "BSpace", "BSpace", "9"]);
    // From the class's floor past the other general fields (on_shutoff and the disconnect
    // grace among them) to the period's buffer floor.
    for _ in 0..14 {
        console.keys(&["Down"]);
    }
    console.keys(&["BSpace", "BSpace", "BSpace", "1", "1"]);
    console.wait("the edited values, valid", |s| {
        s.contains("buffer floor                  9") && s.contains("✓ valid")
    });
    console.keys(&["C-s"]);
    let screen = console.wait("the saved policy", |s| s.contains("applied and saved"));
    let (in_force_after, _) = in_force_and_target(&screen);
    if in_force_after == in_force {
        console.wait("the buffer target raised by 5", |s| {
            in_force_and_target(s).1 == target + 5
        });
    }
    let after = std::fs::read_to_string(&config).unwrap();
    assert!(
        after.contains("buffer = { floor = 9, percent = 10, ceiling = 12 }"),
        "{after}"
    );
    assert!(
        after.contains("buffer = { floor = 11, percent = 15, ceiling = 16 }"),
        "{after}"
    );
    // Only those two values changed; comments and layout are kept.
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert_eq!(before.lines().count(), after.lines().count());
    let audit = std::fs::read_to_string(console.state().join("audit.log")).unwrap();
    assert!(
        audit.contains("change the policy of office")
            && audit.contains("\"result\":\"ok: applied and saved to "),
        "{audit}"
    );
    // The audit line names each value changed, old to new.
    assert!(
        audit.contains("buffer floor 4 → 9") && audit.contains("period 1 buffer floor 6 → 11"),
        "{audit}"
    );

    console.quit();
}

#[test]
fn sigterm_and_sighup_restore_the_terminal() {
    for signal in ["TERM", "HUP"] {
        let console = Console::start("--theme light");
        console.wait("the dashboard", tmux::dashboard_with_classes);
        let pid = console.pid();
        assert!(!pid.is_empty(), "deskpool's pid");
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        wait_for_exit(&console);
    }
}

#[test]
fn a_missing_theme_file_is_refused_before_the_screen_is_taken() {
    let console = Console::start("--theme /nonexistent/theme.toml");
    let screen = console.wait("the error", |s| s.contains("EXIT="));
    assert!(screen.contains("EXIT=1"), "{screen}");
    assert!(screen.contains("/nonexistent/theme.toml"), "{screen}");
}

/// Two administrators: `deskpool serve` runs the engine; a console attaches to it through the
/// broker socket, pauses the engine from there, and quits without stopping it.
#[test]
fn a_console_attaches_to_a_serving_engine_and_quitting_it_leaves_the_engine_running() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    let env = |c: &mut Command| {
        c.env("HOME", &h)
            .env("XDG_CONFIG_HOME", h.join("config"))
            .env("XDG_STATE_HOME", h.join("state"));
    };
    let mut serve = Command::new(env!("CARGO_BIN_EXE_deskpool"));
    env(&mut serve);
    let mut server = serve
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let socket = h.join("state/deskpool/demo/deskpool.sock");
    let start = Instant::now();
    while !socket.exists() {
        assert!(
            start.elapsed() < DEADLINE,
            "the server never opened its socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ctl_status = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_deskpool"));
        env(&mut c);
        let out = c.args(["ctl", "status"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let console = Console::start_in(home, "");
    console.wait("the attached console", |s| {
        s.contains("deskpool.sock · dashboard")
            && s.contains("attached ·")
            && tmux::dashboard_with_classes(s)
    });
    console.keys(&["p"]);
    console.wait("the engine paused", |s| s.contains("paused"));
    let status = ctl_status();
    assert!(
        status.contains("paused"),
        "the serving engine is paused: {status}"
    );
    console.keys(&["q"]);
    wait_for_exit(&console);
    let status = ctl_status();
    assert!(
        status.contains("engine"),
        "the engine still answers after the console quit: {status}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}

/// The sizes every console test of a person's task runs at: an 80x24 terminal under tmux or
/// screen, and a roomy one.
const SIZES: [(u16, u16); 2] = [(80, 23), (120, 40)];

fn replace_in_file(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// A change made to the class's policy in the file, before editing starts and while editing,
/// is never overwritten: the console says what changed and writes nothing.
#[test]
fn the_editor_refuses_to_overwrite_a_policy_changed_on_disk() {
    for size in SIZES {
        let console = Console::start_sized("", size);
        console.wait("the dashboard", tmux::dashboard_with_classes);
        let config = console.config();

        // Changed before editing starts: the editor does not open.
        replace_in_file(&config, "cap = 60", "cap = 50");
        console.keys(&["e"]);
        console.wait_words("changed since the console loaded it (cap 60 → 50)");
        assert!(!console.screen().contains("policy of office"));

        // Changed back, the editor opens; changed again while editing, the save is refused.
        replace_in_file(&config, "cap = 50", "cap = 60");
        console.keys(&["e"]);
        console.wait("the editor", |s| s.contains("policy of office"));
        console.keys(&["Down", "Down", "BSpace", "5"]);
        console.wait("the edit", |s| s.contains("✓ valid"));
        replace_in_file(&config, "cap = 60", "cap = 55");
        let before = std::fs::read_to_string(&config).unwrap();
        console.keys(&["C-s"]);
        let words = console.wait_words("changed in the file since it was loaded (cap 60 → 55)");
        assert!(words.contains("nothing applied"), "{words}");
        assert_eq!(
            std::fs::read_to_string(&config).unwrap(),
            before,
            "nothing written"
        );
        console.quit();
    }
}

/// Editing the class rule leaves a period that inherits the buffer inheriting it: the file's
/// period gets no buffer of its own, and the new class ceiling applies inside the period.
#[test]
fn an_inherited_period_buffer_stays_inherited_after_the_class_rule_is_edited() {
    for size in SIZES {
        let console = Console::start_sized("", size);
        console.wait("the dashboard", |s| {
            s.contains("· dashboard") && s.contains("dev")
        });
        let config = console.config();
        let before = std::fs::read_to_string(&config).unwrap();
        console.keys(&[":", "edit dev", "Enter"]);
        console.wait("the editor", |s| s.contains("policy of dev"));
        // The period's buffer floor is the 17th field: on a small screen it shows once the
        // cursor is there.
        console.keys(&["Down"; 16]);
        console.wait("the period's buffer shown as the class rule's", |s| {
            s.lines()
                .any(|l| l.contains("period 1 buffer floor") && l.contains("= class rule"))
        });
        // The class's buffer ceiling is the fifth field: 6 becomes 8.
        console.keys(&["Up"; 12]);
        console.keys(&["BSpace", "8"]);
        console.wait("the edit", |s| s.contains("✓ valid"));
        console.keys(&["C-s"]);
        console.wait_words("applied and saved");
        let after = std::fs::read_to_string(&config).unwrap();
        assert!(
            after.contains("buffer = { floor = 2, percent = 10, ceiling = 8 }"),
            "{after}"
        );
        let changed: Vec<(&str, &str)> = before
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "only the class rule's line: {changed:?}");
        assert_eq!(before.lines().count(), after.lines().count(), "{after}");
        console.quit();
    }
}

/// `q` asks before stopping the engine this console runs; `n` keeps it running.
#[test]
fn quit_asks_before_stopping_the_engine_of_this_console() {
    for size in SIZES {
        let console = Console::start_sized("", size);
        console.wait("the dashboard", tmux::dashboard_with_classes);
        console.keys(&["q"]);
        console.wait_words("Quit and stop the engine?");
        console.keys(&["n"]);
        console.wait("the question gone", |s| {
            !s.contains("Quit and stop") && s.contains("· dashboard")
        });
        console.keys(&["?"]);
        console.wait("help: the console still runs", |s| {
            s.contains("Keys of the dashboard view")
        });
        console.keys(&["Escape"]);
        console.quit();
    }
}

/// Behind the "too small" note keys do nothing (a `p` there paused the engine unseen).
#[test]
fn keys_behind_the_too_small_note_do_nothing() {
    for (width, height) in SIZES {
        let console = Console::start_sized("", (width, height));
        console.wait("the dashboard", tmux::dashboard_with_classes);
        console.tmux(&["resize-window", "-x", "50", "-y", "12"]);
        console.wait("the note", |s| s.contains("terminal too small"));
        console.keys(&["p", "r", "H"]);
        console.tmux(&[
            "resize-window",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
        console.wait("the dashboard again", |s| {
            s.contains("· dashboard") && !s.contains("too small")
        });
        // Had the `p` acted, this one would resume; it pauses.
        console.keys(&["p"]);
        console.wait("paused", |s| s.contains("paused"));
        // The engine's event says "pause the engine" before the console has its reply and
        // writes the audit line, so wait for the line itself.
        let start = Instant::now();
        let audit = loop {
            let audit =
                std::fs::read_to_string(console.state().join("audit.log")).unwrap_or_default();
            if audit.contains("pause the engine") {
                break audit;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no pause in the audit log: {audit}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(audit.matches("pause the engine").count(), 1, "{audit}");
        assert!(!audit.contains("refill"), "{audit}");
        console.quit();
    }
}

/// The selected row of the high-contrast theme is its selection text (black) on its
/// selection colour (yellow), not white on yellow.
#[test]
fn the_high_contrast_selection_reads_black_on_yellow() {
    for size in SIZES {
        let console = Console::start_sized("--theme high-contrast", size);
        console.wait("the dashboard", tmux::dashboard_with_classes);
        let screen = console.screen_with_colours();
        let row = screen
            .lines()
            .find(|l| l.contains('▶'))
            .unwrap_or_else(|| panic!("a selected row:\n{screen}"));
        let name_at = row.find("office").expect("the office row is selected");
        // The last colours set before the class name are the ones it is drawn in.
        let before_name = &row[..name_at];
        let last = |prefix: &str| {
            before_name
                .rsplit(prefix)
                .next()
                .filter(|_| before_name.contains(prefix))
                .and_then(|rest| rest.split(['m', ';']).next())
                .map(str::to_string)
        };
        assert_eq!(
            (last("38;5;"), last("48;5;")),
            (Some("16".into()), Some("226".into())),
            "black on yellow expected: {row:?}"
        );
        console.quit();
    }
}
