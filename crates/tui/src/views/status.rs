//! The title line (top) and the status bar (bottom): where you are, the engine's state, what
//! just happened, and which keys do what.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{App, Mode};
use crate::strings;
use crate::theme::{Area, Slot, Theme};
use deskpool_api::HostStatusView;

/// The election in a few words (`[ha]` only): "leader t41", "follower of ctl-a", "no lease".
fn leadership_badge(l: &deskpool_core::leadership::Leadership, narrow: bool) -> Option<String> {
    use deskpool_core::leadership::Role;
    let others = l.controllers.len().saturating_sub(1);
    let of = |n: usize| {
        if narrow || n == 0 {
            String::new()
        } else {
            format!(" ({n} other{})", if n == 1 { "" } else { "s" })
        }
    };
    match l.role {
        Role::Alone => None,
        Role::Leader => Some(format!("leader t{}{}", l.term, of(others))),
        Role::Follower => Some(match &l.leader {
            Some(leader) => format!("follower of {}", leader.name),
            None => "follower, electing".to_string(),
        }),
        Role::Lost => Some("no lease".to_string()),
    }
}

/// `…/state/deskpool.sock`: the end of a label (where a path says most) in `width` columns.
fn fit_start(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_string();
    }
    let keep: String = text.chars().skip(count + 1 - width.max(1)).collect();
    format!("…{keep}")
}

/// The title: what this console is (config or engine socket, the view), then how the engine
/// is and its clock, with `attached` and `read-only` always said. Narrow terminals shorten the
/// clock and the config label first; the view name stays.
pub fn title(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let s = &app.snapshot;
    let base = theme.base(Area::StatusBar);
    // Below 80 columns the title drops the program's name and says "running" by its dot
    // alone; paused, attached and read-only keep their words.
    let narrow = area.width < 80;
    let (state, slot) = if app.disconnected.is_some() {
        ("✕ engine gone, reconnecting", Slot::Error)
    } else if s.passes == 0 {
        ("starting", Slot::Muted)
    } else if s.paused {
        ("❚❚ paused", Slot::Warning)
    } else if narrow {
        ("●", Slot::Ok)
    } else {
        ("● running", Slot::Ok)
    };
    // Periods are read in the engine's time zone on its clock (the demo's own, when played):
    // the title says both, with the weekday and the date.
    let clock_format = if area.width >= 100 {
        "%a %Y-%m-%d %H:%M:%S %Z"
    } else {
        "%a %H:%M %Z"
    };
    let clock =
        s.at.map(|t| {
            t.to_zoned(app.fleet.engine.timezone.clone())
                .strftime(clock_format)
                .to_string()
        })
        .unwrap_or_default();
    let mut right = Vec::new();
    let badge = theme
        .style(Area::StatusBar, Slot::Warning)
        .add_modifier(Modifier::BOLD);
    if app.attached {
        right.push(Span::styled("attached · ", badge));
    }
    if app.read_only || s.read_only {
        right.push(Span::styled("read-only · ", badge));
    }
    if let Some(role) = leadership_badge(&s.leadership, narrow) {
        let slot = match s.leadership.role {
            deskpool_core::leadership::Role::Leader => Slot::Accent,
            _ => Slot::Warning,
        };
        right.push(Span::styled(
            format!("{role} · "),
            theme
                .style(Area::StatusBar, slot)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(speed) = app.demo_speed {
        right.push(Span::styled(
            format!("demo ×{speed} · "),
            theme.style(Area::StatusBar, Slot::Accent),
        ));
    }
    right.push(Span::styled(
        state,
        theme
            .style(Area::StatusBar, slot)
            .add_modifier(Modifier::BOLD),
    ));
    right.push(Span::styled(format!(" · {clock} "), base));
    let right = Line::from(right);
    let name = if narrow { "" } else { " deskpool" };
    let view = format!(" · {}", app.screen().title());
    // The label gets what is left, keeping a space before the clock.
    let room =
        (area.width as usize).saturating_sub(right.width() + name.len() + view.chars().count() + 4);
    let label = if room >= 8 {
        format!(" · {}", fit_start(&app.config_label, room))
    } else {
        String::new()
    };
    // Without the name, the first part needs no separator before it.
    let rest = format!("{label}{view}");
    let rest = if narrow {
        format!(" {}", rest.trim_start_matches(" · "))
    } else {
        rest
    };
    let left = Line::from(vec![
        Span::styled(
            name,
            theme
                .style(Area::StatusBar, Slot::Accent)
                .add_modifier(Modifier::BOLD),
        ),
        Span::styled(rest, base),
    ]);
    let [l, r] = Layout::horizontal([Constraint::Min(1), Constraint::Length(right.width() as u16)])
        .areas(area);
    frame.render_widget(Paragraph::new(left).style(base), l);
    frame.render_widget(Paragraph::new(right).style(base), r);
}

/// Rows the message needs at `width` (it is shown whole, up to [`MESSAGE_ROWS`]).
pub fn message_rows(app: &App, width: u16) -> u16 {
    match &app.status {
        Some(status) if width > 1 => {
            let rows = (status.text.chars().count() + 1).div_ceil(width as usize - 1);
            (rows as u16).clamp(1, MESSAGE_ROWS)
        }
        _ => 0,
    }
}

/// Most rows a message takes above the status bar.
pub const MESSAGE_ROWS: u16 = 3;

/// The message of the last action, whole, above the key hints (which it never hides).
pub fn message(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(status) = &app.status else {
        return;
    };
    let slot = if status.error {
        Slot::Error
    } else {
        Slot::Accent
    };
    frame.render_widget(
        Paragraph::new(format!(" {}", status.text))
            .wrap(ratatui::widgets::Wrap { trim: false })
            .style(theme.style(Area::StatusBar, slot)),
        area,
    );
}

pub fn bar(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let base = theme.base(Area::CommandLine);
    match &app.mode {
        Mode::Command(input) => {
            let width = area.width.saturating_sub(1) as usize;
            let scroll = input.visual_scroll(width);
            let shown: String = input.value().chars().skip(scroll).collect();
            let hint = app.completions(input.value()).join(" ");
            let line = Line::from(vec![
                Span::styled(":", theme.style(Area::CommandLine, Slot::Accent)),
                Span::styled(shown, base),
                Span::styled(
                    format!("   {hint}"),
                    theme.style(Area::CommandLine, Slot::Muted),
                ),
            ]);
            frame.render_widget(Paragraph::new(line).style(base), area);
            frame.set_cursor_position((
                area.x + 1 + (input.visual_cursor().saturating_sub(scroll)) as u16,
                area.y,
            ));
            return;
        }
        Mode::Filter(input) => {
            let line = Line::from(vec![
                Span::styled("/", theme.style(Area::CommandLine, Slot::Accent)),
                Span::styled(input.value().to_string(), base),
                Span::styled(
                    "   enter keep · esc clear",
                    theme.style(Area::CommandLine, Slot::Muted),
                ),
            ]);
            frame.render_widget(Paragraph::new(line).style(base), area);
            frame.set_cursor_position((area.x + 1 + input.visual_cursor() as u16, area.y));
            return;
        }
        Mode::Normal => {}
    }
    let s = &app.snapshot;
    let up = s
        .hosts
        .iter()
        .filter(|h| {
            matches!(
                h.status,
                HostStatusView::Active | HostStatusView::Draining { .. }
            )
        })
        .count();
    let down = s
        .hosts
        .iter()
        .filter(|h| matches!(h.status, HostStatusView::Down { .. }))
        .count();
    let health_slot = if down > 0 { Slot::Error } else { Slot::Ok };
    let mut left = vec![Span::styled(
        format!(" {up}/{} up", s.hosts.len()),
        theme.style(Area::StatusBar, health_slot),
    )];
    left.push(Span::styled(
        format!(" · {} │", strings::count(s.jobs_in_flight, "job", "jobs")),
        theme.base(Area::StatusBar),
    ));
    // The problems line: what is wrong now, named (hosts down, classes refusing logins...).
    let mut problems = crate::signals::problems(s);
    if let Some(since) = app.disconnected {
        let at = since
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%H:%M:%S");
        problems.insert(
            0,
            format!("engine unreachable since {at}, last state greyed"),
        );
    }
    if !problems.is_empty() {
        left.push(Span::styled(
            format!(" ⚠ {}", problems.join(", ")),
            theme.style(Area::StatusBar, Slot::Error),
        ));
    }
    let room = (area.width as usize).saturating_sub(Line::from(left.clone()).width() + 1);
    let read_only = app.read_only || s.read_only;
    let disabled = if app.disconnected.is_some() {
        Some("engine gone")
    } else {
        read_only.then_some("read-only")
    };
    let hints = strings::hints(app.screen(), disabled);
    // Short of room (problems take it), at least say where the help is.
    let hints = if hints.chars().count() < room {
        hints.as_str()
    } else if strings::HELP_HINT.chars().count() < room {
        strings::HELP_HINT
    } else {
        ""
    };
    let right = Span::styled(
        format!("{hints} "),
        theme.style(Area::StatusBar, Slot::Muted),
    );
    let left = Line::from(left);
    let [l, r] = Layout::horizontal([Constraint::Length(left.width() as u16), Constraint::Min(1)])
        .areas(area);
    frame.render_widget(Paragraph::new(left).style(theme.base(Area::StatusBar)), l);
    frame.render_widget(
        Paragraph::new(Line::from(right).right_aligned()).style(theme.base(Area::StatusBar)),
        r,
    );
}
