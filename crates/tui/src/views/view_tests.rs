//! Every screen drawn on ratatui's TestBackend at 80x24, checked line by line.

use std::sync::Arc;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::app::{App, Effect, Popup};
use crate::sample;
use crate::theme::Theme;

fn app(classes: usize, hosts: usize, desktops: usize) -> App {
    let fleet = sample::fleet(classes, hosts);
    let at: jiff::Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
    let snapshot = sample::snapshot(&fleet, desktops, at);
    let mut app = App::new(fleet, false, "site.toml".into(), true);
    app.on_snapshot(Arc::new(snapshot));
    app
}

fn screen(app: &mut App, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let theme = Theme::default();
    terminal.draw(|f| super::draw(f, app, &theme)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.handle(&TermEvent::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// `e` as the loop answers it: the file on disk still holds the policy the console loaded.
fn open_editor(app: &mut App) {
    match key(app, KeyCode::Char('e')).as_slice() {
        [Effect::OpenEditor { class }] => {
            let class = class.clone();
            let spec = app.fleet.class(&class).unwrap();
            let on_disk = deskpool_config::PolicyOnDisk {
                policy: spec.policy.clone(),
                inherits: vec![
                    deskpool_config::PeriodInherits::default();
                    spec.policy.periods.len()
                ],
            };
            app.open_editor_checked(&class, Ok(on_disk));
        }
        other => panic!("expected the editor to be asked for, got {other:?}"),
    }
}

fn contains(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[test]
fn the_dashboard_shows_every_class_with_levels_and_targets_and_the_hosts() {
    let mut app = app(3, 3, 30);
    let lines = screen(&mut app, 80, 24);
    assert!(
        lines[0].contains("deskpool · site.toml · dashboard") && lines[0].contains("running"),
        "{}",
        lines[0]
    );
    for (class, production, buffer) in [
        ("office", "7/7", "2/3"),
        ("dev", "7/7", "2/3"),
        ("cad", "7/7", "2/3"),
    ] {
        let row = lines
            .iter()
            .find(|l| l.contains(&format!("{class}  ")))
            .unwrap_or_else(|| panic!("no row for {class}:\n{}", lines.join("\n")));
        assert!(row.contains(production) && row.contains(buffer), "{row}");
    }
    // The seed column needs room: it is there from 110 columns.
    let wide = screen(&mut app, 120, 40);
    let row = wide.iter().find(|l| l.contains("office  ")).unwrap();
    assert!(row.contains("2026.11"), "seed version shown: {row}");
    assert!(contains(&lines, "h1") && contains(&lines, "active"));
    assert!(
        contains(&lines, "h3")
            && contains(&lines, "down")
            && contains(&lines, "connection refused")
    );
    assert!(lines[23].contains("? help"), "key hints: {}", lines[23]);
}

#[test]
fn the_class_detail_explains_the_target_and_lists_filtered_desktops() {
    let mut app = app(3, 2, 30);
    key(&mut app, KeyCode::Enter);
    let lines = screen(&mut app, 80, 24);
    assert!(lines[0].contains("class office"));
    assert!(contains(&lines, "outside periods"), "{}", lines.join("\n"));
    assert!(contains(
        &lines,
        "why       buffer 2 below target 3: 1 in creation"
    ));
    assert!(contains(&lines, "desktops (10)"));
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "creation");
    key(&mut app, KeyCode::Enter);
    let lines = screen(&mut app, 80, 24);
    assert!(
        contains(&lines, "desktops (1) filter: creation"),
        "{}",
        lines.join("\n")
    );
    assert!(contains(&lines, "shut off"));
}

#[test]
fn the_class_detail_shows_how_long_making_its_desktops_took_per_host() {
    let mut app = app(3, 2, 30);
    key(&mut app, KeyCode::Enter);
    let wide = screen(&mut app, 160, 40);
    let joined = wide.join("\n");
    assert!(
        contains(
            &wide,
            "measured  h1: clone 0.6s, boot 1.5s, ready 27s, whole 29s, p90 33s of 8"
        ),
        "{joined}"
    );
    // At 80 columns the line wraps under its label and loses nothing.
    let narrow = screen(&mut app, 80, 23);
    let text: String = narrow
        .iter()
        .map(|l| l.trim_matches(|c| c == '│' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("p90 33s of 8"), "{}", narrow.join("\n"));
    // Another class: nothing measured.
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let lines = screen(&mut app, 160, 40);
    assert!(
        contains(
            &lines,
            "measured  nothing made yet since the engine started"
        ),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn the_class_detail_names_the_event_in_force_and_the_next_ones() {
    use deskpool_core::policy::{Event, TimeOfDay};
    let mut app = app(3, 2, 30);
    let office = &mut app.fleet.classes[0].policy;
    let event = |name: &str, day: i8, from: u32, to: u32| Event {
        name: name.into(),
        first_day: jiff::civil::date(2026, 1, day),
        last_day: jiff::civil::date(2026, 1, day),
        from: TimeOfDay(from * 3600),
        to: TimeOfDay(to * 3600),
        production: 25,
        buffer: office.buffer,
    };
    // The snapshot is at 2026-01-05 10:00 UTC: the first is over, the second in force.
    office.events = vec![
        event("briefing", 5, 8, 9),
        event("training", 5, 10, 11),
        event("all-hands", 9, 14, 15),
        event("review", 12, 14, 15),
    ];
    key(&mut app, KeyCode::Enter);
    let lines = screen(&mut app, 80, 24);
    assert!(
        contains(
            &lines,
            "in force  event \"training\": 2026-01-05 10:00-11:00 · production 25"
        ),
        "{}",
        lines.join("\n")
    );
    assert!(
        contains(
            &lines,
            "events    next \"all-hands\" 2026-01-09 14:00-15:00 · production 25 · 1 more"
        ),
        "{}",
        lines.join("\n")
    );
    assert!(contains(&lines, "pacing    "), "{}", lines.join("\n"));
    assert!(contains(&lines, "desktops (10)"), "{}", lines.join("\n"));
}

#[test]
fn help_lists_the_keys_of_the_view_below_it() {
    let mut app = app(3, 2, 10);
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('?'));
    let lines = screen(&mut app, 80, 24);
    assert!(contains(&lines, "Keys of the class office view"));
    assert!(contains(
        &lines,
        "x          recycle the selected desktop (asks first)"
    ));
    assert!(contains(
        &lines,
        "shift+key  sort by name, host, pool, user, seed, age, state (N O P U S A T;"
    ));
    // Its last page holds the global keys and ends full, on its last line.
    key(&mut app, KeyCode::Char('G'));
    let lines = screen(&mut app, 80, 24);
    assert!(contains(&lines, "q          quit"), "{}", lines.join("\n"));
    assert!(
        lines[21].contains("Confirmations default to Cancel"),
        "{}",
        lines.join("\n")
    );
    key(&mut app, KeyCode::Esc);
    assert!(
        screen(&mut app, 80, 24)[0].contains("class office"),
        "esc goes back"
    );
}

#[test]
fn the_editor_refuses_an_invalid_value_and_says_why() {
    let mut app = app(3, 2, 10);
    open_editor(&mut app);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Backspace);
    typed(&mut app, "99");
    let lines = screen(&mut app, 80, 24);
    assert!(contains(&lines, "policy of office"));
    assert!(
        contains(&lines, "buffer floor                  99"),
        "{}",
        lines.join("\n")
    );
    assert!(
        contains(&lines, "floor 99 is above ceiling 12"),
        "{}",
        lines.join("\n")
    );
    let save = app.handle(&TermEvent::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    )));
    assert!(save.is_empty(), "an invalid policy cannot be saved");
    assert!(
        app.status
            .as_ref()
            .is_some_and(|s| s.error && s.text.contains("cannot save"))
    );

    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Backspace);
    typed(&mut app, "7");
    let save = app.handle(&TermEvent::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    )));
    match save.as_slice() {
        [
            Effect::SavePolicy {
                class,
                loaded,
                policy,
            },
        ] => {
            assert_eq!(class, "office");
            assert_eq!(**loaded, app.fleet.class("office").unwrap().policy);
            assert_eq!(policy.buffer.floor, 7);
        }
        other => panic!("expected a save, got {other:?}"),
    }
}

#[test]
fn a_terminal_below_60x16_gets_a_clear_note_and_keys_do_nothing_behind_it() {
    let mut app = app(3, 2, 10);
    app.quit_stops_engine = true;
    let lines = screen(&mut app, 59, 20);
    assert!(lines[0].contains("terminal too small"), "{}", lines[0]);
    assert!(contains(
        &lines,
        "59x20 here; deskpool needs at least 60x16."
    ));
    for c in ['p', 'r', 'e', 'H', ':', '/', '?'] {
        assert!(key(&mut app, KeyCode::Char(c)).is_empty(), "{c} acted");
    }
    assert!(app.popup.is_none() && app.status.is_none() && app.screens.len() == 1);
    // q asks (on the note itself), and y quits.
    assert!(key(&mut app, KeyCode::Char('q')).is_empty());
    assert!(contains(
        &screen(&mut app, 59, 20),
        "Quit and stop the engine?"
    ));
    assert_eq!(key(&mut app, KeyCode::Char('y')), vec![Effect::Quit]);
    assert!(screen(&mut app, 60, 15)[0].contains("too small"));
    assert!(screen(&mut app, 60, 16)[0].contains("· dashboard"));
}

#[test]
fn quit_asks_first_when_it_stops_the_engine_of_this_console() {
    let mut app = app(3, 2, 10);
    assert_eq!(key(&mut app, KeyCode::Char('q')), vec![Effect::Quit]);
    app.quit_stops_engine = true;
    assert!(key(&mut app, KeyCode::Char('q')).is_empty());
    assert!(contains(
        &screen(&mut app, 80, 23),
        "Quit and stop the engine?"
    ));
    assert!(
        key(&mut app, KeyCode::Enter).is_empty(),
        "Cancel is the default"
    );
    assert!(app.popup.is_none());
    let ctrl_c = TermEvent::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.handle(&ctrl_c).is_empty(), "ctrl-c asks too");
    assert_eq!(
        app.handle(&ctrl_c),
        vec![Effect::Quit],
        "a second ctrl-c quits"
    );
}

#[test]
fn every_screen_draws_at_80x23_and_60x16() {
    for (w, h) in [(80, 23), (60, 16)] {
        let mut app = app(3, 3, 30);
        let lines = screen(&mut app, w, h);
        assert!(lines[0].contains("· dashboard"), "{}", lines.join("\n"));
        assert!(
            contains(&lines, "office") && contains(&lines, "h1"),
            "{}",
            lines.join("\n")
        );
        key(&mut app, KeyCode::Enter);
        let lines = screen(&mut app, w, h);
        assert!(contains(&lines, "desktops ("), "{}", lines.join("\n"));
        for keys in ["H", "E", "?"] {
            key(&mut app, KeyCode::Esc);
            typed(&mut app, keys);
            let lines = screen(&mut app, w, h);
            assert!(!lines[0].contains("too small"), "{}", lines.join("\n"));
        }
    }
}

#[test]
fn destructive_actions_default_to_cancel() {
    let mut app = app(3, 2, 10);
    key(&mut app, KeyCode::Char('H'));
    key(&mut app, KeyCode::Char('d'));
    assert!(matches!(app.popup, Some(Popup::Confirm { yes: false, .. })));
    let lines = screen(&mut app, 80, 24);
    assert!(contains(&lines, "[ Cancel ]   [ OK ]"));
    assert!(
        key(&mut app, KeyCode::Enter).is_empty(),
        "enter on the default does nothing"
    );
    key(&mut app, KeyCode::Char('d'));
    key(&mut app, KeyCode::Right);
    match key(&mut app, KeyCode::Enter).as_slice() {
        [Effect::Engine { what, .. }] => assert_eq!(what, "drain h1"),
        other => panic!("expected the drain, got {other:?}"),
    }
}

#[test]
fn the_command_line_completes_commands_and_names() {
    let mut app = app(3, 2, 10);
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "cl");
    key(&mut app, KeyCode::Tab);
    typed(&mut app, "d");
    key(&mut app, KeyCode::Tab);
    let lines = screen(&mut app, 80, 24);
    assert!(lines[23].starts_with(":class dev "), "{}", lines[23]);
    key(&mut app, KeyCode::Enter);
    assert!(screen(&mut app, 80, 24)[0].contains("class dev"));
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "nonsense");
    key(&mut app, KeyCode::Enter);
    assert!(
        app.status
            .as_ref()
            .is_some_and(|s| s.error && s.text.contains("unknown command :nonsense"))
    );
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "q");
    assert_eq!(key(&mut app, KeyCode::Enter), vec![Effect::Quit]);
    app.quit_stops_engine = true;
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "q");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app.asks_to_quit(), ":q asks like q");
}

#[test]
fn a_read_only_console_takes_no_action() {
    let mut app = app(3, 2, 10);
    app.read_only = true;
    assert!(key(&mut app, KeyCode::Char('p')).is_empty());
    assert!(key(&mut app, KeyCode::Char('e')).is_empty());
    assert!(
        app.status
            .as_ref()
            .is_some_and(|s| s.text.contains("read-only"))
    );
}

#[test]
fn the_event_filter_matches_the_kind_as_the_view_shows_it() {
    use deskpool_api::{Event, EventKind};
    let mut app = app(1, 2, 0);
    for (kind, host) in [(EventKind::HostDown, "h1"), (EventKind::HostUp, "h2")] {
        app.on_event(Event {
            at: "2026-01-05T10:00:00Z".parse().unwrap(),
            kind,
            class: None,
            host: Some(host.into()),
            desktop: None,
            message: "seen".into(),
        });
    }
    app.push(crate::screen::Screen::Events);
    app.event_filter = "host-down".into();
    let shown: Vec<EventKind> = app.visible_events().iter().map(|e| e.kind).collect();
    assert_eq!(shown, [EventKind::HostDown]);
    let lines = screen(&mut app, 80, 24);
    assert!(
        lines.iter().any(|l| l.contains("host-down")),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn a_long_reason_is_shown_whole_on_the_dashboard_and_in_the_detail_at_80x23() {
    use deskpool_api::ReasonView;
    let mut app = app(3, 2, 30);
    let hosts: Vec<String> = (1..=6).map(|i| format!("host-{i}")).collect();
    let mut snapshot = (*app.snapshot).clone();
    snapshot.classes[0].plan.reasons = vec![
        ReasonView::InCreation { count: 23 },
        ReasonView::PacingLimit {
            hosts: hosts.clone(),
        },
        ReasonView::AtCapacity { hosts },
    ];
    let whole = snapshot.classes[0].plan.explanation();
    app.on_snapshot(Arc::new(snapshot));
    let joined = |lines: &[String]| {
        lines
            .iter()
            .map(|l| l.trim_matches(|c| c == '│' || c == ' ').to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let lines = screen(&mut app, 80, 23);
    assert!(
        joined(&lines).contains(&format!("office: {whole}")),
        "{whole}\n{}",
        lines.join("\n")
    );
    key(&mut app, KeyCode::Enter);
    let lines = screen(&mut app, 80, 23);
    let why = lines.iter().position(|l| l.contains("│why ")).unwrap();
    let text: Vec<String> = lines[why..]
        .iter()
        .take_while(|l| !l.contains("│logins "))
        .map(|l| l.trim_matches('│')[10..].trim().to_string())
        .collect();
    assert_eq!(text.join(" "), whole, "{}", lines.join("\n"));
    assert!(contains(&lines, "│pacing "), "{}", lines.join("\n"));
}

#[test]
fn the_selected_row_keeps_its_health_colour() {
    let mut app = app(3, 2, 30);
    let mut terminal = Terminal::new(TestBackend::new(80, 23)).unwrap();
    let theme = Theme::default();
    terminal.draw(|f| super::draw(f, &mut app, &theme)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    // The gauge's first cell on the selected (office) and the next (dev) row: both are below
    // target, so both keep the warning colour.
    let gauge_fg = |row: u16| {
        (0..80)
            .map(|x| &buffer[(x, row)])
            .find(|c| c.symbol() == "█")
            .map(|c| c.fg)
    };
    let warning = theme.color(crate::theme::Area::Dashboard, crate::theme::Slot::Warning);
    assert_eq!(gauge_fg(3), Some(warning), "the selected row");
    assert_eq!(gauge_fg(4), Some(warning), "an unselected row");
}

#[test]
fn a_raised_floor_and_its_end_show_in_the_class_detail() {
    let mut app = app(3, 2, 10);
    let mut snapshot = (*app.snapshot).clone();
    snapshot.classes[0].plan.raised_floor = Some(deskpool_api::RaisedFloorView {
        floor: 9,
        until: "2026-01-05T11:30:00Z".parse().unwrap(),
    });
    app.on_snapshot(Arc::new(snapshot));
    key(&mut app, KeyCode::Enter);
    let lines = screen(&mut app, 120, 40);
    assert!(
        contains(&lines, "floor raised to 9 until Mon 11:30"),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn the_floor_prompt_refuses_a_floor_above_the_cap() {
    let mut app = app(3, 2, 10);
    key(&mut app, KeyCode::Char('f'));
    let cap = app.fleet.classes[0].policy.cap;
    typed(&mut app, &format!("{} 30", cap + 1));
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    let status = app.status.as_ref().unwrap();
    assert!(
        status.error && status.text.contains("above the cap"),
        "{}",
        status.text
    );
    assert!(
        matches!(app.popup, Some(Popup::Prompt { .. })),
        "the prompt stays open"
    );
}

#[test]
fn help_opens_at_the_top_and_its_end_is_a_full_page() {
    let mut app = app(3, 2, 10);
    key(&mut app, KeyCode::Char('?'));
    screen(&mut app, 80, 23);
    key(&mut app, KeyCode::Char('G'));
    let lines = screen(&mut app, 80, 23);
    let text_rows = lines[2..21]
        .iter()
        .filter(|l| !l.trim_matches(['│', ' ']).is_empty());
    assert!(
        text_rows.count() > 10,
        "G shows a full last page:\n{}",
        lines.join("\n")
    );
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('?'));
    let lines = screen(&mut app, 80, 23);
    assert!(
        contains(&lines, "Keys of the dashboard view"),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn a_message_shows_whole_above_the_key_hints_and_expires() {
    let mut app = app(3, 2, 10);
    let long = "x".repeat(150);
    app.complain(long.clone());
    let lines = screen(&mut app, 80, 23);
    let shown: String = lines.iter().map(|l| l.trim()).collect();
    assert!(shown.contains(&long), "{}", lines.join("\n"));
    assert!(lines[22].contains("? help"), "hints stay: {}", lines[22]);
    app.expire_status(std::time::Instant::now());
    assert!(app.status.is_some(), "not yet");
    app.expire_status(std::time::Instant::now() + crate::app::ERROR_FOR);
    assert!(app.status.is_none());
}

#[test]
fn the_title_keeps_the_view_and_says_attached_and_read_only_with_a_zoned_clock() {
    let mut app = app(3, 2, 10);
    app.attached = true;
    app.read_only = true;
    app.config_label = "attached to /var/lib/deskpool/some/long/path/state/deskpool.sock".into();
    for width in [60, 80, 120] {
        let title = &screen(&mut app, width, 23)[0];
        assert!(title.contains(" dashboard"), "{title}");
        assert!(title.contains("attached · read-only"), "{title}");
        assert!(
            title.contains("Mon 10:00 UTC") || title.contains("Mon 2026-01-05 10:00:00 UTC"),
            "{title}"
        );
    }
    let lines = screen(&mut app, 80, 23);
    assert!(
        lines[22].contains("read-only") && !lines[22].contains("refill"),
        "{}",
        lines[22]
    );
}

#[test]
fn the_title_says_which_controller_leads() {
    use deskpool_core::leadership::{ControllerInfo, Leadership, Role};
    let peer = |name: &str| ControllerInfo {
        name: name.into(),
        advertise: None,
    };
    let mut app = app(3, 2, 10);
    let with = |app: &mut App, leadership: Leadership| {
        let mut snapshot = (*app.snapshot).clone();
        snapshot.leadership = leadership;
        app.on_snapshot(Arc::new(snapshot));
    };
    let title = &screen(&mut app, 120, 23)[0];
    assert!(!title.contains("leader"), "alone: nothing to say: {title}");
    let leader = Leadership {
        role: Role::Leader,
        controller: "ctl-a".into(),
        term: 41,
        leader: Some(peer("ctl-a")),
        controllers: vec![peer("ctl-a"), peer("ctl-b")],
        ..Leadership::alone()
    };
    with(&mut app, leader.clone());
    let title = &screen(&mut app, 120, 23)[0];
    assert!(title.contains("leader t41 (1 other)"), "{title}");
    let title = &screen(&mut app, 80, 23)[0];
    assert!(title.contains("leader t41"), "{title}");
    with(
        &mut app,
        Leadership {
            role: Role::Follower,
            controller: "ctl-b".into(),
            ..leader.clone()
        },
    );
    for width in [80, 120] {
        let title = &screen(&mut app, width, 23)[0];
        assert!(title.contains("follower of ctl-a"), "{title}");
    }
    with(
        &mut app,
        Leadership {
            role: Role::Lost,
            why: Some("etcd cannot be reached".into()),
            ..leader
        },
    );
    let title = &screen(&mut app, 80, 23)[0];
    assert!(title.contains("no lease"), "{title}");
}

#[test]
fn the_selected_row_is_drawn_in_each_themes_selection_text_on_its_selection() {
    use crate::theme::{Area, Slot};
    for name in Theme::names() {
        let theme = Theme::builtin(name).unwrap();
        let mut app = app(3, 2, 10);
        let mut terminal = Terminal::new(TestBackend::new(80, 23)).unwrap();
        terminal.draw(|f| super::draw(f, &mut app, &theme)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        // The selected class row: the line with the ▶ marker; its name cell.
        let y = (0..23)
            .find(|&y| buffer[(1, y)].symbol() == "▶")
            .expect("a selected row");
        let cell = &buffer[(3, y)];
        assert_eq!(
            cell.fg,
            theme.color(Area::Dashboard, Slot::SelectionText),
            "{name}"
        );
        assert_eq!(
            cell.bg,
            theme.color(Area::Dashboard, Slot::Selection),
            "{name}"
        );
        assert_ne!(cell.fg, cell.bg, "{name}");
    }
}

#[test]
fn desktop_columns_widen_with_the_terminal_and_narrow_ones_leave_columns_out() {
    let mut app = app(3, 2, 10);
    let mut snapshot = (*app.snapshot).clone();
    let user = "firstname.lastname-with-a-long-name";
    let d = Arc::make_mut(&mut snapshot.desktops)
        .iter_mut()
        .find(|d| d.meta.class == "office")
        .unwrap();
    d.meta.user = Some(user.into());
    app.on_snapshot(Arc::new(snapshot));
    key(&mut app, KeyCode::Enter);
    let lines = screen(&mut app, 160, 40);
    assert!(contains(&lines, user), "{}", lines.join("\n"));
    assert!(contains(&lines, " seed "), "{}", lines.join("\n"));
    let lines = screen(&mut app, 60, 16);
    let header = lines.iter().find(|l| l.contains(" name ")).unwrap();
    assert!(
        !header.contains("seed") && header.contains("user") && header.contains("state"),
        "{header}"
    );
}

#[test]
fn the_class_detail_shows_readiness_where_users_connect_and_desktops_still_booting() {
    let mut app = app(3, 2, 10);
    let mut snapshot = (*app.snapshot).clone();
    for d in Arc::make_mut(&mut snapshot.desktops)
        .iter_mut()
        .filter(|d| {
            d.meta.class == "office" && d.meta.pool == deskpool_api::PoolStateView::Creation
        })
    {
        // Running, and its guest not answering yet.
        d.running = true;
    }
    app.on_snapshot(Arc::new(snapshot));
    key(&mut app, KeyCode::Enter);
    let lines = screen(&mut app, 160, 40);
    let all = lines.join("\n");
    assert!(
        contains(
            &lines,
            "ready     when the guest agent answers · given up 300 s after boot"
        ),
        "{all}"
    );
    let header = lines.iter().find(|l| l.contains(" name ")).unwrap();
    assert!(
        header.contains("display") && header.contains("address"),
        "{header}"
    );
    // sample::snapshot gives desktop 0 (production) these.
    let first = lines
        .iter()
        .find(|l| l.contains("dp-office-0000000000"))
        .unwrap();
    assert!(
        first.contains("vnc://127.0.0.1:5900") && first.contains("10.0.0.2"),
        "{first}"
    );
    assert!(contains(&lines, "booting"), "{all}");
    assert!(!contains(&lines, "shut off"), "{all}");
    // A narrow terminal leaves them out first.
    let lines = screen(&mut app, 80, 24);
    let header = lines.iter().find(|l| l.contains(" name ")).unwrap();
    assert!(
        !header.contains("display") && header.contains("state"),
        "{header}"
    );
}

#[test]
fn the_dashboards_help_explains_its_columns_and_sort_keys() {
    let mut app = app(3, 2, 10);
    key(&mut app, KeyCode::Char('?'));
    let mut seen = Vec::new();
    // Page through the help, collecting every line shown.
    for _ in 0..5 {
        seen.extend(screen(&mut app, 80, 24));
        key(&mut app, KeyCode::PageDown);
    }
    for line in [
        "shift+key  sort by class, prod, buffer, new, status (N P B C S; again:",
        "in≤N       logins per 5 minutes, a cell each (the hour from 110 columns, its",
        "fill       the buffer's lowest level in each of the same 5 minutes, against",
        "mouse      click selects a row (again: opens it), the wheel scrolls",
    ] {
        assert!(contains(&seen, line), "{line:?} in:\n{}", seen.join("\n"));
    }
}

#[test]
fn the_class_detail_shows_disconnected_desktops_as_such() {
    use deskpool_api::PoolStateView;
    let mut app = app(3, 2, 30);
    let mut snapshot = (*app.snapshot).clone();
    let mut desktops = (*snapshot.desktops).clone();
    let d = desktops
        .iter_mut()
        .find(|d| d.meta.class == "office" && d.meta.pool == PoolStateView::Production)
        .expect("an office desktop in production");
    d.meta.pool = PoolStateView::Disconnected;
    let (name, user) = (d.name.clone(), d.meta.user.clone().unwrap());
    snapshot.desktops = Arc::new(desktops);
    app.on_snapshot(Arc::new(snapshot));
    key(&mut app, KeyCode::Enter);
    let lines = screen(&mut app, 120, 40);
    let all = lines.join("\n");
    assert!(contains(&lines, "(1 disconnected)"), "{all}");
    let row = lines
        .iter()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{name} listed:\n{all}"));
    assert!(row.contains("disconnected") && row.contains(&user), "{row}");
}
