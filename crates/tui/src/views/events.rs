//! The engine's event log, newest first, filterable.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::widgets::{block, fit, selected};
use crate::app::App;
use crate::strings;
use crate::theme::{Area, Slot, Theme};
use deskpool_api::EventKind;

fn slot(kind: EventKind) -> Slot {
    match kind {
        EventKind::Failed
        | EventKind::HostDown
        | EventKind::LoginRefused
        | EventKind::SeedMissing
        | EventKind::ConfigRefused => Slot::Error,
        EventKind::HostDraining | EventKind::Destroyed | EventKind::Released => Slot::Warning,
        EventKind::AdminAction | EventKind::PolicyChanged | EventKind::ConfigReloaded => {
            Slot::Accent
        }
        _ => Slot::Ok,
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &mut App, theme: &Theme) {
    let tz = app.fleet.engine.timezone.clone();
    let events = app.visible_events();
    let count = events.len();
    let header = Row::new(["time", "what", "where", "message"].map(Cell::from))
        .style(theme.style(Area::Events, Slot::Muted));
    let rows: Vec<Row> = events
        .iter()
        .map(|e| {
            let place = [e.class.as_deref(), e.host.as_deref(), e.desktop.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let kind = strings::event_kind(e.kind);
            Row::new(vec![
                Cell::from(e.at.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string()),
                Cell::from(kind).style(theme.style(Area::Events, slot(e.kind))),
                Cell::from(fit(&place, 30)),
                Cell::from(e.message.clone()),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(8),
        Constraint::Length(14),
        Constraint::Length(30),
        Constraint::Min(10),
    ];
    let filter = if app.event_filter.is_empty() {
        String::new()
    } else {
        format!(" filter: {}", app.event_filter)
    };
    let dropped = if app.snapshot.events_dropped > 0 {
        format!(
            " ({} not shown: too many at once)",
            app.snapshot.events_dropped
        )
    } else {
        String::new()
    };
    let table = Table::new(rows, widths)
        .header(header)
        .block(block(
            format!(" events ({count}){filter}{dropped} "),
            Area::Events,
            theme,
        ))
        .row_highlight_style(selected(Area::Events, theme))
        .highlight_symbol("▶");
    app.page_rows = area.height.saturating_sub(3) as usize;
    let mut state = TableState::default().with_selected(if count == 0 {
        None
    } else {
        Some(app.event_row)
    });
    frame.render_stateful_widget(table, area, &mut state);
}
