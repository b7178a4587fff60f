//! Hosts: a panel on the dashboard and a screen of their own (with drain and undrain), as a
//! headed table of usage against capacity (desktops, memory, vCPU) and the state's reason.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::widgets::{block, fit, selected_keeping_colours, wrap_hanging};
use crate::app::App;
use crate::theme::{Area, Slot, Theme};
use deskpool_api::{HostState, HostStatusView};

/// What a host's desktops take: count, memory (MiB) and vCPUs, by the classes' sizes.
#[derive(Default, Clone, Copy)]
struct Used {
    desktops: u32,
    memory_mib: u64,
    vcpus: u32,
}

fn usage(app: &App) -> HashMap<&str, Used> {
    let sizes: HashMap<&str, (u64, u32)> = app
        .fleet
        .classes
        .iter()
        .map(|c| (c.name.as_str(), (c.memory_mib, c.vcpus)))
        .collect();
    let mut used: HashMap<&str, Used> = HashMap::new();
    for d in app.snapshot.desktops.iter() {
        let u = used.entry(d.host.as_str()).or_default();
        u.desktops += 1;
        if let Some(&(memory, vcpus)) = sizes.get(d.meta.class.as_str()) {
            u.memory_mib += memory;
            u.vcpus += vcpus;
        }
    }
    used
}

/// "  12/128" (right-aligned, so digits line up), or "  12" with no limit.
fn used_of(used: u64, limit: Option<u64>, width: usize) -> String {
    match limit {
        Some(l) => format!("{:>width$}", format!("{used}/{l}")),
        None => format!("{used:>width$}"),
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

/// Why the host is in its state (empty for an active host).
fn reason(h: &HostState) -> String {
    match &h.status {
        HostStatusView::Down { reason } => match h.retry_in_secs {
            Some(s) => format!("retry in {s}s: {reason}"),
            None => reason.clone(),
        },
        HostStatusView::Draining { by_admin: true } => {
            "drained by an admin: no new desktops until undrained".into()
        }
        HostStatusView::Draining { by_admin: false } => {
            "not needed: back to standby once empty".into()
        }
        HostStatusView::Activating => "being brought into service".into(),
        _ if h.standby => "standby host".into(),
        _ => String::new(),
    }
}

/// The hosts table; `select` highlights a row (the hosts screen).
pub fn draw_panel(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, select: Option<usize>) {
    let used = usage(app);
    let muted = theme.style(Area::Hosts, Slot::Muted);
    let header =
        Row::new(["host", "state", "desktops", "memory GiB", "vCPU", "why"].map(Cell::from))
            .style(muted);
    let rows = app.snapshot.hosts.iter().map(|h| {
        let (label, slot) = state(h);
        let u = used.get(h.name.as_str()).copied().unwrap_or_default();
        let why_slot = if matches!(h.status, HostStatusView::Down { .. }) {
            Slot::Error
        } else {
            Slot::Muted
        };
        Row::new(vec![
            Cell::from(fit(&h.name, 12)),
            Cell::from(label).style(theme.style(Area::Hosts, slot)),
            Cell::from(used_of(
                u64::from(h.desktops),
                h.capacity.desktops.map(u64::from),
                9,
            )),
            Cell::from(used_of(
                u.memory_mib / 1024,
                h.capacity.memory_mib.map(|m| m / 1024),
                10,
            )),
            Cell::from(used_of(
                u64::from(u.vcpus),
                h.capacity.vcpus.map(u64::from),
                8,
            )),
            Cell::from(reason(h)).style(theme.style(Area::Hosts, why_slot)),
        ])
    });
    let widths = [
        Constraint::Length(12),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block(" hosts ", Area::Hosts, theme))
        .row_highlight_style(selected_keeping_colours(Area::Hosts, theme))
        .highlight_symbol(if select.is_some() { "▶" } else { " " });
    let mut state = TableState::default().with_selected(select);
    frame.render_stateful_widget(table, area, &mut state);
}

/// The hosts screen: the table, and the selected host's reason whole below it.
pub fn draw_screen(frame: &mut Frame, area: Rect, app: &mut App, theme: &Theme) {
    let row = app.host_row;
    let why = app
        .snapshot
        .hosts
        .get(row)
        .map(|h| {
            let text = format!("{} {}: {}", h.name, state(h).0, reason(h));
            wrap_hanging(&text, area.width.saturating_sub(2) as usize, 2)
        })
        .filter(|_| {
            app.snapshot
                .hosts
                .get(row)
                .is_some_and(|h| !reason(h).is_empty())
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
    draw_panel(frame, table_area, app, theme, Some(row));
    if !why.is_empty() {
        let lines: Vec<Line> = why.into_iter().map(Line::from).collect();
        frame.render_widget(
            Paragraph::new(lines).block(block(" why ", Area::Hosts, theme)),
            why_area,
        );
    }
}
