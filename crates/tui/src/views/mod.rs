//! Drawing: one file per screen region. The whole console at 80x24:
//!
//! ```text
//! deskpool · config.toml · dashboard                       ● running · 20:31:05   <- title
//! ┌ classes ─────────────────────────────────────────────────────────────────────┐
//! │ class      prod   buffer                 new  seed            demand  buffer │
//! │ office     3/30   ██████████░░░░ 10/12     2  2026.11         ▁▂▃▅▇   ▁▁▂▂▃  │ <- dashboard
//! └──────────────────────────────────────────────────────────────────────────────┘
//! ┌ hosts ───────────────────────────────────────────────────────────────────────┐
//! │ h1   active    12 / 128 desktops                                             │ <- hosts panel
//! └──────────────────────────────────────────────────────────────────────────────┘
//! seed office 2026.11 → h2  ██████░░░░ 60%                                         <- seed copies
//! hosts 2/3 up · pass 4s ago        enter open  e edit  r refill  ? help  q quit   <- status bar
//! ```
//!
//! Other screens (class detail, hosts, events, editor, help) replace the middle; popups
//! (confirmations, prompts) float over everything; below 80x24 a "terminal too small" note is
//! all that is drawn.

mod dashboard;
mod detail;
mod editor;
mod events;
mod help;
mod hosts;
mod popup;
mod status;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::app::{App, Screen};
use super::strings;
use super::theme::{Area, Slot, Theme};

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn draw(frame: &mut Frame, app: &mut App, theme: &Theme) {
    let area = frame.area();
    frame.render_widget(Block::default().style(theme.base(Area::Dashboard)), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, theme);
        return;
    }
    let [title, body, status_line] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    status::title(frame, title, app, theme);
    match app.screen().clone() {
        Screen::Dashboard => dashboard::draw(frame, body, app, theme),
        Screen::Detail { class } => detail::draw(frame, body, app, &class, theme),
        Screen::Hosts => hosts::draw_screen(frame, body, app, theme),
        Screen::Events => events::draw(frame, body, app, theme),
        Screen::Editor => editor::draw(frame, body, app, theme),
        Screen::Help => help::draw(frame, body, app, theme),
    }
    status::bar(frame, status_line, app, theme);
    popup::draw(frame, area, app, theme);
}

fn too_small(frame: &mut Frame, area: Rect, theme: &Theme) {
    let text = vec![
        Line::from(Span::styled(
            strings::TOO_SMALL,
            theme
                .style(Area::Dashboard, Slot::Warning)
                .add_modifier(Modifier::BOLD),
        )),
        Line::from(format!(
            "{}x{} here; deskpool needs at least {MIN_WIDTH}x{MIN_HEIGHT}.",
            area.width, area.height
        )),
        Line::from("Enlarge the window, or press q to quit."),
    ];
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .style(theme.base(Area::Dashboard)),
        area,
    );
}

/// A bordered block with a title, in an area's colours.
pub(crate) fn block<'a>(title: impl Into<Line<'a>>, area: Area, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style(area, Slot::Border))
        .title(title.into().style(theme.style(area, Slot::Title)))
        .style(theme.base(area))
}

/// The highlight of a selected row.
pub(crate) fn selected(area: Area, theme: &Theme) -> Style {
    Style::default()
        .bg(theme.color(area, Slot::Selection))
        .fg(theme.color(area, Slot::Text))
        .add_modifier(Modifier::BOLD)
}

/// A bar of `width` cells filled to `value / max`.
pub(crate) fn bar(value: u32, max: u32, width: usize) -> String {
    let filled = if max == 0 {
        if value > 0 { width } else { 0 }
    } else {
        ((u64::from(value.min(max)) * width as u64 + u64::from(max) / 2) / u64::from(max)) as usize
    };
    let mut s = "█".repeat(filled);
    s.push_str(&"░".repeat(width - filled));
    s
}

/// A sparkline of `values` in block characters, scaled to their maximum.
pub(crate) fn spark(values: &[u64], width: usize) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    let mut s: String = values
        .iter()
        .rev()
        .take(width)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|&v| LEVELS[(v * 7 + max / 2).checked_div(max).unwrap_or(0) as usize])
        .collect();
    while s.chars().count() < width {
        s.insert(0, ' ');
    }
    s
}

/// "42s", "5m", "3h", "2d".
pub(crate) fn age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// Cuts `text` to `width` characters, marking the cut.
pub(crate) fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod view_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_sparklines_scale() {
        assert_eq!(bar(5, 10, 10), "█████░░░░░");
        assert_eq!(bar(12, 10, 4), "████");
        assert_eq!(bar(0, 0, 3), "░░░");
        assert_eq!(spark(&[0, 7, 14], 5), "  ▁▅█");
        assert_eq!(age(30), "30s");
        assert_eq!(age(600), "10m");
        assert_eq!(fit("abcdef", 4), "abc…");
    }
}
