//! Hosts: a panel on the dashboard and a screen of their own (with drain and undrain).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::widgets::{block, fit, selected};
use crate::app::App;
use crate::theme::{Area, Slot, Theme};
use deskpool_api::HostState;
use deskpool_api::HostStatusView;

fn capacity(h: &HostState) -> String {
    match (h.capacity.desktops, h.capacity.memory_mib, h.capacity.vcpus) {
        (Some(d), _, _) => format!("{} / {d} desktops", h.desktops),
        (None, Some(m), Some(v)) => format!("{} desktops · {} GiB, {v} vCPU", h.desktops, m / 1024),
        (None, Some(m), None) => format!("{} desktops · {} GiB", h.desktops, m / 1024),
        (None, None, Some(v)) => format!("{} desktops · {v} vCPU", h.desktops),
        (None, None, None) => format!("{} desktops", h.desktops),
    }
}

fn state(h: &HostState) -> (String, Slot) {
    match &h.status {
        HostStatusView::Active => ("active".into(), Slot::Ok),
        HostStatusView::Standby => ("standby".into(), Slot::Muted),
        HostStatusView::Activating => ("activating".into(), Slot::Accent),
        HostStatusView::Draining { by_admin: true } => ("drained".into(), Slot::Warning),
        HostStatusView::Draining { by_admin: false } => ("draining".into(), Slot::Warning),
        HostStatusView::Down { .. } => ("down".into(), Slot::Error),
    }
}

fn detail(h: &HostState) -> String {
    match &h.status {
        HostStatusView::Down { reason } => match h.retry_in_secs {
            Some(s) => format!("retry in {s}s: {reason}"),
            None => reason.clone(),
        },
        _ if h.standby => "standby host".into(),
        _ => String::new(),
    }
}

/// The hosts table; `select` highlights a row (the hosts screen).
pub fn draw_panel(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, select: Option<usize>) {
    let rows = app.snapshot.hosts.iter().map(|h| {
        let (label, slot) = state(h);
        Row::new(vec![
            Cell::from(fit(&h.name, 14)),
            Cell::from(label).style(theme.style(Area::Hosts, slot)),
            Cell::from(capacity(h)),
            Cell::from(detail(h)).style(theme.style(
                Area::Hosts,
                if matches!(h.status, HostStatusView::Down { .. }) {
                    Slot::Error
                } else {
                    Slot::Muted
                },
            )),
        ])
    });
    let widths = [
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Length(32),
        Constraint::Min(10),
    ];
    let table = Table::new(rows, widths)
        .block(block(" hosts ", Area::Hosts, theme))
        .row_highlight_style(selected(Area::Hosts, theme))
        .highlight_symbol(if select.is_some() { "▶" } else { " " });
    let mut state = TableState::default().with_selected(select);
    frame.render_stateful_widget(table, area, &mut state);
}

pub fn draw_screen(frame: &mut Frame, area: Rect, app: &mut App, theme: &Theme) {
    app.page_rows = area.height.saturating_sub(2) as usize;
    let row = app.host_row;
    draw_panel(frame, area, app, theme, Some(row));
}
