//! `?`: every key binding of the view underneath, and the commands.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::widgets::{block, wrap_hanging};
use crate::app::App;
use crate::strings;
use crate::theme::{Area, Theme};

pub fn draw(frame: &mut Frame, area: Rect, app: &mut App, theme: &Theme) {
    // Wrapped here, so the scroll counts the rows drawn and `G` shows a full last page.
    let width = area.width.saturating_sub(2) as usize;
    let lines: Vec<String> = strings::help_lines(app.screen_under_help())
        .iter()
        .flat_map(|line| wrap_help_line(line, width))
        .collect();
    app.page_rows = area.height.saturating_sub(2) as usize;
    app.help_lines = lines.len();
    app.help_scroll = app.help_scroll.min(
        lines
            .len()
            .saturating_sub(app.page_rows.saturating_sub(1))
            .saturating_sub(1),
    );
    let text: Vec<Line> = lines
        .into_iter()
        .skip(app.help_scroll)
        .map(Line::from)
        .collect();
    frame.render_widget(
        Paragraph::new(text).block(block(" help · esc to go back ", Area::Help, theme)),
        area,
    );
}

/// A help line fitted to `width`: a line with a key (or command) column keeps it, and its
/// description wraps under the description's own start; other lines wrap under themselves.
fn wrap_help_line(line: &str, width: usize) -> Vec<String> {
    if line.chars().count() <= width {
        return vec![line.to_string()];
    }
    let indent = line.len() - line.trim_start().len();
    let description = line[indent..]
        .find("  ")
        .map(|gap| indent + gap)
        .and_then(|gap| line[gap..].find(|c: char| c != ' ').map(|d| gap + d));
    match description {
        Some(start) if start < width / 2 => {
            let prefix = line[..start].chars().count();
            let mut lines = wrap_hanging(&line[start..], width - prefix, 0);
            for (i, l) in lines.iter_mut().enumerate() {
                let lead = if i == 0 {
                    line[..start].to_string()
                } else {
                    " ".repeat(prefix)
                };
                l.insert_str(0, &lead);
            }
            lines
        }
        _ => wrap_hanging(line, width, indent),
    }
}

#[cfg(test)]
mod tests {
    use super::wrap_help_line;

    #[test]
    fn a_long_key_line_wraps_under_its_description() {
        let line = "  :q               quit (the engine stops; libvirt keeps the desktops)";
        let lines = wrap_help_line(line, 50);
        assert_eq!(
            lines,
            [
                "  :q               quit (the engine stops; libvirt",
                "                   keeps the desktops)"
            ]
        );
        assert_eq!(wrap_help_line("short", 50), ["short"]);
    }
}
