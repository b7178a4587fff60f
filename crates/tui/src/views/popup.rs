//! Confirmations (Cancel is the default) and one-line prompts, centred over everything.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::widgets::block;
use crate::app::{App, Popup};
use crate::theme::{Area, Slot, Theme};

fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let [_, mid, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(height),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, c, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(width),
        Constraint::Fill(1),
    ])
    .areas(mid);
    c
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(popup) = &app.popup else {
        return;
    };
    let box_area = centred(area, area.width.min(64), 7);
    frame.render_widget(Clear, box_area);
    let drop_question;
    let confirm = match popup {
        Popup::Confirm { question, yes, .. } => Some((question.as_str(), *yes)),
        Popup::DropEdits { yes } => {
            let class = app
                .editor
                .as_ref()
                .map_or("the class", |f| f.class.as_str());
            drop_question = format!("Drop your unsaved edits to the policy of {class}?");
            Some((drop_question.as_str(), *yes))
        }
        Popup::Prompt { .. } => None,
    };
    if let Some((question, yes)) = confirm {
        let button = |label: &str, on: bool| {
            let style = if on {
                theme.selected(Area::Popup).add_modifier(Modifier::BOLD)
            } else {
                theme.style(Area::Popup, Slot::Muted)
            };
            Span::styled(format!("[ {label} ]"), style)
        };
        let lines = vec![
            Line::from(question.to_string()),
            Line::from(""),
            Line::from(vec![
                button("Cancel", !yes),
                Span::raw("   "),
                button("OK", yes),
            ])
            .centered(),
        ];
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: true }).block(block(
                " confirm · y/enter/esc ",
                Area::Popup,
                theme,
            )),
            box_area,
        );
        return;
    }
    if let Popup::Prompt { label, input, .. } = popup {
        let lines = vec![
            Line::from(label.clone()),
            Line::from(""),
            Line::from(format!("> {}", input.value())),
        ];
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: true }).block(block(
                " enter to go · esc to cancel ",
                Area::Popup,
                theme,
            )),
            box_area,
        );
        let inner_width = box_area.width.saturating_sub(2);
        let rows_of_label = (label.chars().count() as u16).div_ceil(inner_width.max(1));
        frame.set_cursor_position((
            box_area.x + 3 + input.visual_cursor() as u16,
            box_area.y + 1 + rows_of_label + 1,
        ));
    }
}
