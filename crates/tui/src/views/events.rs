//! The engine's event log, newest first, filterable.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::widgets::{block, fit, list_rows, selected, wrap_hanging};
use crate::app::{App, List, Sort};
use crate::strings;
use crate::theme::{Area, Slot, Theme};
use deskpool_api::{Event, EventKind};

fn slot(kind: EventKind) -> Slot {
    match kind {
        EventKind::Failed
        | EventKind::HostDown
        | EventKind::LoginRefused
        | EventKind::SeedMissing
        | EventKind::ConfigRefused => Slot::Error,
        EventKind::HostDraining
        | EventKind::Destroyed
        | EventKind::Released
        | EventKind::Disconnected => Slot::Warning,
        EventKind::AdminAction
        | EventKind::PolicyChanged
        | EventKind::ConfigReloaded
        | EventKind::Leadership => Slot::Accent,
        _ => Slot::Ok,
    }
}

/// Events as a table (time, what, place, message), in the order given; `sort` marks the
/// header. The events view and the dashboard's recent events draw it.
pub(super) fn table<'a>(
    events: &[&Event],
    tz: &jiff::tz::TimeZone,
    sort: Option<Sort>,
    theme: &Theme,
) -> Table<'a> {
    let header = Row::new(
        ["time", "what", "place", "message"]
            .map(|name| Cell::from(strings::sorted_header(List::Events, sort, name))),
    )
    .style(theme.style(Area::Events, Slot::Muted));
    let rows: Vec<Row> = events
        .iter()
        .map(|e| {
            let [time, kind, place, message] = strings::event_row(e, tz);
            Row::new(vec![
                Cell::from(time),
                Cell::from(kind).style(theme.style(Area::Events, slot(e.kind))),
                Cell::from(fit(&place, 30)),
                Cell::from(message),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(8),
        Constraint::Length(14),
        Constraint::Length(30),
        Constraint::Min(10),
    ];
    Table::new(rows, widths).header(header)
}

pub fn draw(frame: &mut Frame, area: Rect, app: &mut App, theme: &Theme) {
    let tz = app.fleet.engine.timezone.clone();
    let width = area.width.saturating_sub(2) as usize;
    let events = app.visible_events();
    let count = events.len();
    // The selected event whole, wrapped below the table: a row cuts its place and message.
    let whole: Vec<String> = events
        .get(app.event_row)
        .map(|e| {
            let [time, kind, place, message] = strings::event_row(e, &tz);
            wrap_hanging(&format!("{time} {kind} {place}: {message}"), width, 2)
        })
        .unwrap_or_default();
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
    let table = table(&events, &tz, app.sort_of(List::Events), theme)
        .block(block(
            format!(" events ({count}){filter}{dropped} "),
            Area::Events,
            theme,
        ))
        .row_highlight_style(selected(Area::Events, theme))
        .highlight_symbol("▶");
    let whole_height = if whole.is_empty() {
        0
    } else {
        (whole.len() as u16 + 2).min(area.height / 3)
    };
    let [table_area, whole_area] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(whole_height)]).areas(area);
    app.page_rows = table_area.height.saturating_sub(3) as usize;
    let mut state = TableState::default().with_selected(if count == 0 {
        None
    } else {
        Some(app.event_row)
    });
    frame.render_stateful_widget(table, table_area, &mut state);
    app.list_rows = Some(list_rows(table_area, state.offset()));
    if !whole.is_empty() {
        let lines: Vec<Line> = whole.into_iter().map(Line::from).collect();
        frame.render_widget(
            Paragraph::new(lines).block(block(" selected ", Area::Events, theme)),
            whole_area,
        );
    }
}
