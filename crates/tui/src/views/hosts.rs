//! Hosts: a panel on the dashboard and a screen of their own (with drain and undrain), as a
//! headed table of usage against capacity (desktops, memory, vCPU) and the state's reason.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::widgets::{
    Column, block, column_widths, fit, list_rows, selected_keeping_colours, shown_cells,
    wrap_hanging,
};
use crate::app::{App, List};
use crate::strings;
use crate::theme::{Area, Slot, Theme};
use deskpool_api::{HostState, HostStatusView};

/// "12/128", or "12" with no limit.
fn used_of(used: u64, limit: Option<u64>) -> String {
    match limit {
        Some(l) => format!("{used}/{l}"),
        None => used.to_string(),
    }
}

fn state(h: &HostState) -> (&'static str, Slot) {
    match &h.status {
        HostStatusView::Active => ("active", Slot::Ok),
        HostStatusView::Standby => ("standby", Slot::Muted),
        HostStatusView::Activating => ("activating", Slot::Accent),
        HostStatusView::Draining { by_admin: true } => ("drained", Slot::Warning),
        HostStatusView::Draining { by_admin: false } => ("draining", Slot::Warning),
        HostStatusView::Down { .. } => ("down", Slot::Error),
    }
}

/// Why the host is in its state (empty for an active host): short enough for the dashboard's
/// panel at 80 columns (a down host's reason reads whole on the hosts screen).
fn reason(h: &HostState) -> String {
    match &h.status {
        HostStatusView::Down { reason } => match h.retry_in_secs {
            Some(s) => format!("retry in {s}s: {reason}"),
            None => reason.clone(),
        },
        HostStatusView::Draining { by_admin: true } => "drained by an admin: u undrains".into(),
        HostStatusView::Draining { by_admin: false } => "unneeded: standby once empty".into(),
        HostStatusView::Activating => "being brought into service".into(),
        HostStatusView::Standby => "used when active hosts are full".into(),
        HostStatusView::Active if h.standby => "standby in use until unneeded".into(),
        _ => String::new(),
    }
}

/// The hosts table; `select` highlights a row (the hosts screen). Returns the first row shown.
pub fn draw_panel(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    theme: &Theme,
    select: Option<usize>,
) -> usize {
    let used = app.host_usage();
    let muted = theme.style(Area::Hosts, Slot::Muted);
    let sort = app.sort_of(List::Hosts);
    const NAMES: [&str; 6] = ["host", "state", "desktops", "memory GiB", "vCPU", "why"];
    let hosts = app.visible_hosts();
    // Each host's cells as text first: the columns are as wide as their widest value.
    let texts: Vec<[String; 6]> = hosts
        .iter()
        .map(|h| {
            let u = used.get(h.name.as_str()).copied().unwrap_or_default();
            [
                h.name.clone(),
                state(h).0.to_string(),
                used_of(u64::from(h.desktops), h.capacity.desktops.map(u64::from)),
                used_of(u.memory_mib / 1024, h.capacity.memory_mib.map(|m| m / 1024)),
                used_of(u64::from(u.vcpus), h.capacity.vcpus.map(u64::from)),
                reason(h),
            ]
        })
        .collect();
    // A usage column is as wide as its fullest value ("128/128"), so it does not move as the
    // counts grow.
    let fullest = |h: &HostState| {
        let full = |limit: Option<u64>| limit.map_or(0, |l| 2 * l.to_string().len() + 1);
        let c = &h.capacity;
        [
            full(c.desktops.map(u64::from)),
            full(c.memory_mib.map(|m| m / 1024)),
            full(c.vcpus.map(u64::from)),
        ]
    };
    let widest = |i: usize| {
        texts
            .iter()
            .zip(&hosts)
            .map(|(t, h)| {
                let full = if (2..5).contains(&i) {
                    fullest(h)[i - 2]
                } else {
                    0
                };
                t[i].chars().count().max(full)
            })
            .chain([NAMES[i].chars().count() + 1])
            .max()
            .unwrap_or(0) as u16
    };
    // A narrow terminal leaves out vCPU, then memory, before it cuts a name; numbers are never
    // cut (the hosts screen shows a host's reason whole below the table).
    let column = |i: usize, min: u16, drop_rank: u8| Column {
        want: widest(i),
        min: min.min(widest(i)),
        drop_rank,
    };
    let widths = column_widths(
        area.width,
        &[
            column(0, 4, 0),
            column(1, 8, 0),
            column(2, widest(2), 0),
            column(3, widest(3), 2),
            column(4, widest(4), 3),
            Column {
                want: widest(5).max(10),
                min: 4,
                drop_rank: 1,
            },
        ],
    );
    let keep = |cells: Vec<Cell<'static>>| shown_cells(cells, &widths);
    let w = |i: usize| widths[i].unwrap_or(0) as usize;
    let header = Row::new(keep(
        NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let text = strings::sorted_header(List::Hosts, sort, name);
                // Number columns are right-aligned, their headers too.
                Cell::from(if (2..5).contains(&i) {
                    format!("{text:>width$}", width = w(i))
                } else {
                    text
                })
            })
            .collect(),
    ))
    .style(muted);
    let rows = hosts
        .iter()
        .zip(texts)
        .map(|(h, [name, label, desktops, memory, vcpus, why])| {
            let slot = state(h).1;
            let why_slot = if matches!(h.status, HostStatusView::Down { .. }) {
                Slot::Error
            } else {
                Slot::Muted
            };
            Row::new(keep(vec![
                Cell::from(fit(&name, w(0))),
                Cell::from(label).style(theme.style(Area::Hosts, slot)),
                Cell::from(format!("{desktops:>width$}", width = w(2))),
                Cell::from(format!("{memory:>width$}", width = w(3))),
                Cell::from(format!("{vcpus:>width$}", width = w(4))),
                Cell::from(why).style(theme.style(Area::Hosts, why_slot)),
            ]))
        });
    let widths: Vec<Constraint> = widths
        .iter()
        .flatten()
        .map(|&w| Constraint::Length(w))
        .collect();
    let table = Table::new(rows, widths)
        .header(header)
        .block(block(" hosts ", Area::Hosts, theme))
        .row_highlight_style(selected_keeping_colours(Area::Hosts, theme))
        .highlight_symbol(if select.is_some() { "▶" } else { " " });
    let mut state = TableState::default().with_selected(select);
    frame.render_stateful_widget(table, area, &mut state);
    state.offset()
}

/// The hosts screen: the table, and the selected host's reason whole below it.
pub fn draw_screen(frame: &mut Frame, area: Rect, app: &mut App, theme: &Theme) {
    let row = app.host_row;
    let why = app
        .visible_hosts()
        .get(row)
        .filter(|h| !reason(h).is_empty())
        .map(|h| {
            let text = format!("{} {}: {}", h.name, state(h).0, reason(h));
            wrap_hanging(&text, area.width.saturating_sub(2) as usize, 2)
        })
        .unwrap_or_default();
    let why_height = if why.is_empty() {
        0
    } else {
        why.len() as u16 + 2
    };
    let [table_area, why_area] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(why_height)]).areas(area);
    app.page_rows = table_area.height.saturating_sub(3) as usize;
    let offset = draw_panel(frame, table_area, app, theme, Some(row));
    app.list_rows = Some(list_rows(table_area, offset));
    if !why.is_empty() {
        let lines: Vec<Line> = why.into_iter().map(Line::from).collect();
        frame.render_widget(
            Paragraph::new(lines).block(block(" why ", Area::Hosts, theme)),
            why_area,
        );
    }
}
