//! `?`: every key binding of the view underneath, and the commands.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Paragraph, Wrap};

use super::widgets::block;
use crate::app::App;
use crate::strings;
use crate::theme::{Area, Theme};

pub fn draw(frame: &mut Frame, area: Rect, app: &mut App, theme: &Theme) {
    let lines = strings::help_lines(app.screen_under_help());
    app.page_rows = area.height.saturating_sub(2) as usize;
    let text: Vec<ratatui::text::Line> = lines
        .into_iter()
        .skip(app.help_scroll)
        .map(ratatui::text::Line::from)
        .collect();
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(block(
            " help · esc to go back ",
            Area::Help,
            theme,
        )),
        area,
    );
}
