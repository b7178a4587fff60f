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
//! ┌ recent events (E: all) ──────────────────────────────────────────────────────┐
//! │08:27:09 assigned       office h2 dp-office-hoq8utj94x assigned to office-demo│ <- room left
//! └──────────────────────────────────────────────────────────────────────────────┘
//! hosts 2/3 up · pass 4s ago        enter open  e edit  r refill  ? help  q quit   <- status bar
//! ```
//!
//! Other screens (class detail, hosts, events, editor, help) replace the middle; popups
//! (confirmations, prompts) float over everything. Narrower terminals get fewer columns; below
//! 60x16 a "terminal too small" note is all that is drawn, and only `q` acts behind it. While an
//! attached engine is away, the middle is drawn greyed (its last state).

mod dashboard;
mod detail;
mod editor;
mod events;
mod help;
mod hosts;
mod popup;
mod status;
mod widgets;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::app::App;
use super::screen::Screen;
use super::strings;
use super::theme::{Area, Slot, Theme};

/// The smallest terminal drawn: an 80x24 terminal inside tmux or screen (80x23) and smaller
/// split panes get every screen, with fewer columns; below this only a note is shown.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

pub fn draw(frame: &mut Frame, app: &mut App, theme: &Theme) {
    let area = frame.area();
    frame.render_widget(Block::default().style(theme.base(Area::Dashboard)), area);
    app.too_small = area.width < MIN_WIDTH || area.height < MIN_HEIGHT;
    if app.too_small {
        too_small(frame, area, app, theme);
        return;
    }
    let message_rows = status::message_rows(app, area.width);
    let [title, body, message, status_line] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(message_rows),
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
    if app.disconnected.is_some() {
        // The engine is away: what the body shows is its last state, not the present.
        frame.buffer_mut().set_style(
            body,
            ratatui::style::Style::default()
                .fg(theme.color(Area::Dashboard, Slot::Muted))
                .remove_modifier(Modifier::BOLD),
        );
    }
    status::message(frame, message, app, theme);
    status::bar(frame, status_line, app, theme);
    popup::draw(frame, area, app, theme);
}

fn too_small(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut text = vec![
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
        Line::from("Enlarge the window, or press q to quit. Other keys do nothing here."),
    ];
    if app.asks_to_quit() {
        text.push(Line::from(""));
        text.push(Line::from(Span::styled(
            format!("{} y: quit · n: stay", strings::QUIT_STOPS_ENGINE),
            theme.style(Area::Dashboard, Slot::Warning),
        )));
    }
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .style(theme.base(Area::Dashboard)),
        area,
    );
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod view_tests;
