//! The console's lists as an admin uses them: sorted by `shift`+a column's letter (as in k9s),
//! clicked and scrolled with the mouse, the events filtered by the text shown, help paged to
//! its end, help in the editor, a refill while paused. The real binary in tmux on the embedded
//! default at 80x23 and 120x40; every wait is for a condition on the screen, with a deadline.

mod tmux;

use std::path::Path;
use std::time::Duration;

use tmux::{Pane, boxed};

const DEADLINE: Duration = Duration::from_secs(60);
const SIZES: [(u16, u16); 2] = [(80, 23), (120, 40)];

fn console(home: &Path, (width, height): (u16, u16)) -> Pane {
    let pane = Pane::start("lists", home, "", "", (width, height), DEADLINE);
    // A short terminal shows the first classes only (the list scrolls).
    let classes: &[&str] = if height >= 23 {
        &["office", "dev", "cad"]
    } else {
        &["office"]
    };
    pane.wait("the dashboard with its classes", |s| {
        classes.iter().all(|c| class_row(s, c).is_some())
    });
    pane
}

/// The screen line (from 0) of a class's dashboard row.
fn class_row(screen: &str, class: &str) -> Option<usize> {
    screen
        .lines()
        .position(|l| l.contains(&format!("{class} ")) && l.contains('/') && l.contains('│'))
}

/// The classes in the order the dashboard shows them.
fn class_order(screen: &str) -> Vec<&'static str> {
    let mut rows: Vec<(usize, &'static str)> = ["office", "dev", "cad"]
        .into_iter()
        .filter_map(|c| class_row(screen, c).map(|at| (at, c)))
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, c)| c).collect()
}

/// The rows of the table under the header line holding `header`: each row's words.
fn table_rows(screen: &str, header: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = screen.lines().collect();
    let Some(top) = lines.iter().position(|l| l.contains(header)) else {
        return Vec::new();
    };
    lines[top + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with('└'))
        .map(|l| {
            l.trim_matches(|c: char| c.is_whitespace() || c == '│')
                .trim_start_matches('▶')
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|words| !words.is_empty())
        .collect()
}

/// A mouse event at a screen cell (from 0), as a terminal reports it (SGR: `button;x;y`, from
/// 1), typed into the pane.
fn mouse(pane: &Pane, button: u8, column: usize, row: usize) {
    let report = format!("\x1b[<{button};{};{}M", column + 1, row + 1);
    pane.keys(&["-l", &report]);
}

const LEFT_CLICK: u8 = 0;
const WHEEL_DOWN: u8 = 65;

#[test]
fn lists_sort_by_shift_and_a_column_letter_keeping_the_selection() {
    for size in SIZES {
        let home = tempfile::tempdir().unwrap();
        let console = console(home.path(), size);
        assert_eq!(class_order(&console.screen()), ["office", "dev", "cad"]);
        console.keys(&["N"]);
        let screen = console.wait("classes by name", |s| s.contains("class↑"));
        assert_eq!(class_order(&screen), ["cad", "dev", "office"]);
        assert!(
            screen.lines().any(|l| l.contains("▶office")),
            "the selection stays on office:\n{screen}"
        );
        console.keys(&["N"]);
        let screen = console.wait("classes by name, reversed", |s| s.contains("class↓"));
        assert_eq!(class_order(&screen), ["office", "dev", "cad"]);

        // Hosts by desktops, fewest first.
        console.keys(&["H"]);
        console.wait("the hosts", |s| s.contains("memory GiB"));
        console.keys(&["D"]);
        let screen = console.wait("hosts by desktops", |s| s.contains("desktops↑"));
        let counts: Vec<u32> = table_rows(&screen, "desktops↑")
            .iter()
            .filter_map(|r| r.get(2)?.split('/').next()?.parse().ok())
            .collect();
        assert!(
            counts.len() == 3 && counts.is_sorted(),
            "{counts:?}\n{screen}"
        );

        // Events by what happened: the kind column in order.
        console.keys(&["E"]);
        console.wait("the events", |s| s.contains("provisioned"));
        console.keys(&["W"]);
        let screen = console.wait("events by kind", |s| s.contains("what↑"));
        let kinds: Vec<String> = table_rows(&screen, "what↑")
            .iter()
            .filter_map(|r| r.get(1).cloned())
            .collect();
        assert!(
            !kinds.is_empty() && kinds.is_sorted(),
            "{kinds:?}\n{screen}"
        );
    }
}

#[test]
fn the_mouse_selects_a_row_opens_it_on_a_second_click_and_the_wheel_scrolls() {
    for size in SIZES {
        let home = tempfile::tempdir().unwrap();
        let console = console(home.path(), size);
        // The console asked the terminal for mouse reports (SGR, every event).
        let reports = console.tmux(&["display", "-p", "#{mouse_any_flag}#{mouse_sgr_flag}"]);
        assert_eq!(reports.trim(), "11");
        let at = class_row(&console.screen(), "dev").unwrap();
        mouse(&console, LEFT_CLICK, 4, at);
        console.wait("dev selected", |s| s.contains("▶dev"));
        console.wait("dev's reason", |s| {
            boxed(s, "why").is_some_and(|w| w.starts_with("dev:"))
        });
        mouse(&console, LEFT_CLICK, 4, at);
        console.wait("dev opened", |s| s.contains("· class dev"));

        // The wheel moves the events' selection three rows at a time (once provisioning is
        // done, so no new event moves it too).
        console.keys(&["Escape"]);
        console.wait("the buffers made, no job running", |s| {
            s.contains("· dashboard") && s.contains("· 0 jobs")
        });
        console.keys(&["E"]);
        console.wait("the events view with enough events", |s| {
            s.lines().next().is_some_and(|t| t.contains("· events"))
                && table_rows(s, "message").len() > 4
                && s.contains("▶")
        });
        let marker = |s: &str| s.lines().position(|l| l.contains('▶'));
        let first = marker(&console.screen()).unwrap();
        mouse(&console, WHEEL_DOWN, 10, first);
        console.wait("the selection three rows down", |s| {
            marker(s) == Some(first + 3)
        });
    }
}

#[test]
fn the_events_filter_matches_the_text_shown_and_the_selected_event_reads_whole() {
    for size in SIZES {
        let home = tempfile::tempdir().unwrap();
        let console = console(home.path(), size);
        console.keys(&["E"]);
        console.wait("the events view", |s| {
            s.lines().next().is_some_and(|t| t.contains("· events"))
        });
        // Which host office's desktops went to depends on the run: the first office event
        // says (the newest events may all be another class's, so office's are filtered for).
        console.keys(&["/"]);
        console.keys(&["-l", "dp-office"]);
        console.keys(&["Enter"]);
        let screen = console.wait("events of office", |s| {
            s.contains("filter: dp-office") && !table_rows(s, "message").is_empty()
        });
        let host = table_rows(&screen, "message")[0][3].clone();
        console.keys(&["Escape"]);
        console.wait("the filter cleared", |s| !s.contains("filter: dp-office"));
        // "office HOST" is how the place column reads (class, then host): no one field holds it.
        let place = format!("office {host}");
        console.keys(&["/"]);
        console.keys(&["-l", &place]);
        console.keys(&["Enter"]);
        let screen = console.wait("the filtered events", |s| {
            s.contains(&format!("filter: {place}")) && !table_rows(s, "message").is_empty()
        });
        let rows = table_rows(&screen, "message");
        for row in &rows {
            assert_eq!(
                row.get(2..4),
                Some(&["office".to_string(), host.clone()][..])
            );
        }
        let whole = boxed(&screen, "selected").expect("the selected event whole");
        assert!(
            whole.contains(&format!("{place} dp-office-")) && !whole.contains('…'),
            "{whole}"
        );
    }
}

#[test]
fn help_pages_to_a_full_last_page_opens_in_the_editor_and_a_refill_while_paused_is_not_done() {
    for size in [(60, 16), (80, 23)] {
        let home = tempfile::tempdir().unwrap();
        let console = console(home.path(), size);
        console.keys(&["?"]);
        console.wait("help", |s| s.contains("Keys of the dashboard view"));
        console.keys(&["G"]);
        let screen = console.wait("help's last line", |s| {
            s.contains("Confirmations default to Cancel")
        });
        let lines: Vec<&str> = screen.lines().collect();
        let top = lines.iter().position(|l| l.contains("┌ help")).unwrap();
        let bottom = lines.iter().rposition(|l| l.contains('└')).unwrap();
        let blank = lines[top + 1..bottom]
            .iter()
            .filter(|l| {
                l.trim_matches(|c: char| c.is_whitespace() || c == '│')
                    .is_empty()
            })
            .count();
        assert!(
            blank * 3 < bottom - top,
            "the last page is full, not blank:\n{screen}"
        );
        console.keys(&["Escape"]);
        console.wait("the dashboard", |s| s.contains("· dashboard"));

        // `?` in the editor is help, not a character typed into a field: leaving after it asks
        // nothing (no edit was made).
        console.keys(&["e"]);
        console.wait("the editor", |s| s.contains("policy of office"));
        console.keys(&["?"]);
        console.wait("the editor's help", |s| {
            s.contains("Keys of the policy editor view")
        });
        console.keys(&["Escape"]);
        console.wait("the editor again", |s| s.contains("policy of office"));
        console.keys(&["Escape"]);
        console.wait_words("policy not changed");

        console.keys(&["p"]);
        console.wait("paused", |s| s.contains("❚❚ paused"));
        console.keys(&["r"]);
        let words = console
            .wait_words("queued: backoff cleared, but nothing is made while the engine is paused");
        assert!(!words.contains("now: done"), "{words}");
    }
}
