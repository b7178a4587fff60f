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

pub fn title(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let s = &app.snapshot;
    let base = theme.base(Area::StatusBar);
    let (state, slot) = if s.read_only {
        ("read-only", Slot::Warning)
    } else if s.passes == 0 {
        ("starting", Slot::Muted)
    } else if s.paused {
        ("❚❚ paused", Slot::Warning)
    } else {
        ("● running", Slot::Ok)
    };
    let clock =
        s.at.map(|t| {
            t.to_zoned(app.fleet.engine.timezone.clone())
                .strftime("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_default();
    let left = Line::from(vec![
        Span::styled(
            " deskpool",
            theme
                .style(Area::StatusBar, Slot::Accent)
                .add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(" · {} · {}", app.config_label, app.screen().title()),
            base,
        ),
    ]);
    let mut right = Vec::new();
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
    let [l, r] = Layout::horizontal([Constraint::Min(1), Constraint::Length(right.width() as u16)])
        .areas(area);
    frame.render_widget(Paragraph::new(left).style(base), l);
    frame.render_widget(Paragraph::new(right).style(base), r);
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
        format!(" · {} jobs │", s.jobs_in_flight),
        theme.base(Area::StatusBar),
    ));
    // The problems line: what is wrong now, named (hosts down, classes refusing logins...).
    let problems = super::signals::problems(s);
    if !problems.is_empty() {
        left.push(Span::styled(
            format!(" ⚠ {}", problems.join(", ")),
            theme.style(Area::StatusBar, Slot::Error),
        ));
    }
    let room = (area.width as usize).saturating_sub(Line::from(left.clone()).width() + 1);
    let right = match &app.status {
        Some(status) => Span::styled(
            format!("{} ", status.text),
            theme.style(
                Area::StatusBar,
                if status.error {
                    Slot::Error
                } else {
                    Slot::Accent
                },
            ),
        ),
        None => {
            let hints = strings::hints(app.screen());
            // Short of room (problems take it), at least say where the help is.
            let hints = if hints.chars().count() < room {
                hints
            } else if strings::HELP_HINT.chars().count() < room {
                strings::HELP_HINT
            } else {
                ""
            };
            Span::styled(
                format!("{hints} "),
                theme.style(Area::StatusBar, Slot::Muted),
            )
        }
    };
    let left = Line::from(left);
    let [l, r] = Layout::horizontal([Constraint::Length(left.width() as u16), Constraint::Min(1)])
        .areas(area);
    frame.render_widget(Paragraph::new(left).style(theme.base(Area::StatusBar)), l);
    frame.render_widget(
        Paragraph::new(Line::from(right).right_aligned()).style(theme.base(Area::StatusBar)),
        r,
    );
}
