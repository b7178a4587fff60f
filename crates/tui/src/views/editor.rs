//! The policy editor: one line per field, the problem with it beside it, as you type.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::widgets::{block, fit};
use crate::app::App;
use crate::strings;
use crate::theme::{Area, Slot, Theme};

/// The labels' column: the longest label (28) and a gap, so no value runs into its label.
const LABEL: usize = 30;
const VALUE: usize = 16;

pub fn draw(frame: &mut Frame, area: Rect, app: &mut App, theme: &Theme) {
    let Some(form) = app.editor.as_ref() else {
        return;
    };
    let [fields_area, footer] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(area);
    let outer = block(format!(" policy of {} ", form.class), Area::Editor, theme);
    let inner = outer.inner(fields_area);
    frame.render_widget(outer, fields_area);

    // Keep the cursor's field on screen.
    let visible = inner.height as usize;
    let first = form.cursor.saturating_sub(visible.saturating_sub(1));
    let mut lines = Vec::new();
    for (i, f) in form.fields.iter().enumerate().skip(first).take(visible) {
        let focused = i == form.cursor;
        let label_style = if focused {
            theme
                .style(Area::Editor, Slot::Accent)
                .add_modifier(Modifier::BOLD)
        } else {
            theme.style(Area::Editor, Slot::Muted)
        };
        let value_style = if focused {
            theme.selected(Area::Editor)
        } else {
            theme.base(Area::Editor)
        };
        let mut spans = vec![
            Span::styled(format!("{:<LABEL$}", fit(&f.label, LABEL - 2)), label_style),
            Span::styled(
                format!("{:<VALUE$}", fit(f.input.value(), VALUE)),
                value_style,
            ),
        ];
        if form.inherited(&f.key) {
            spans.push(Span::styled(
                format!(" {}", strings::INHERITED),
                theme.style(Area::Editor, Slot::Muted),
            ));
        }
        if let Some(problem) = form.problem_for(&f.key) {
            spans.push(Span::styled(
                format!(" ✗ {problem}"),
                theme.style(Area::Editor, Slot::Error),
            ));
        }
        lines.push(Line::from(spans));
        if focused {
            let x = inner.x + LABEL as u16 + (f.input.visual_cursor().min(VALUE - 1)) as u16;
            frame.set_cursor_position((x, inner.y + (i - first) as u16));
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);

    let general = form.general_problems();
    let (text, slot) = if let Some(p) = general.first() {
        (format!("✗ {p}"), Slot::Error)
    } else if !form.problems.is_empty() {
        (
            format!(
                "✗ {}: fix them to save",
                strings::count(form.problems.len(), "problem", "problems")
            ),
            Slot::Error,
        )
    } else if form.is_dirty() {
        let target = if app.can_save {
            "the engine and the config file"
        } else {
            "the engine (no config file: demo)"
        };
        (
            format!("✓ valid · ctrl-s saves to {target} · esc cancels"),
            Slot::Ok,
        )
    } else {
        ("no change yet · esc leaves".to_string(), Slot::Muted)
    };
    frame.render_widget(
        Paragraph::new(Span::styled(text, theme.style(Area::Editor, slot))).block(block(
            " ",
            Area::Editor,
            theme,
        )),
        footer,
    );
}
