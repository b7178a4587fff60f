//! The home view: one row per class (levels against targets, its status, seed, an hour of
//! logins and buffer), why the selected class is where it is, the hosts panel, and seed copies
//! in progress.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::widgets::{
    bar, block, buffer_slot, fit, list_rows, selected_keeping_colours, spark_scaled, wrap_hanging,
};
use super::{events, hosts};
use crate::app::{App, List};
use crate::signals::class_signals;
use crate::strings;
use crate::theme::{Area, Slot, Theme};
use deskpool_api::Event;

/// The smallest top of the logins sparklines' common scale (logins per 5 minutes), so a
/// single login draws a low bar, not a full one.
const LOGIN_SCALE_MIN: u64 = 10;
/// The most lines the selected class's reason takes.
const WHY_LINES: usize = 4;

/// Column sizes: narrow at 80 columns (no seed column: the class detail shows it, and
/// desktops on an old seed are a status), wide from 110.
struct Columns {
    class: usize,
    gauge: usize,
    /// `None`: the column is left out.
    seed: Option<usize>,
    spark: usize,
}

impl Columns {
    fn for_width(width: u16) -> Columns {
        if width >= 110 {
            Columns {
                class: 12,
                gauge: 12,
                seed: Some(10),
                // The whole hour: 12 spans of 5 minutes.
                spark: 12,
            }
        } else {
            Columns {
                class: 8,
                gauge: 4,
                seed: None,
                spark: 5,
            }
        }
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &mut App, theme: &Theme) {
    let s = app.snapshot.clone();
    let cols = Columns::for_width(area.width);
    let classes = app.classes_in_order(&s);
    let selected = classes.get(app.class_row).copied();
    let why: Vec<String> = selected
        .map(|c| {
            let text = format!("{}: {}", c.plan.name, c.plan.explanation());
            let mut lines = wrap_hanging(&text, area.width.saturating_sub(2) as usize, 2);
            lines.truncate(WHY_LINES);
            lines
        })
        .unwrap_or_default();
    let host_rows = s.hosts.len().min(8) as u16;
    let copies = s.seed_copies.len().min(3) as u16;
    let class_rows = s.classes.len().max(1) as u16;
    let [classes_area, why_area, hosts_area, copies_area, recent_area] = Layout::vertical([
        Constraint::Max(class_rows + 3),
        Constraint::Length(why.len() as u16 + 2),
        Constraint::Length(host_rows + 3),
        Constraint::Length(copies),
        Constraint::Min(0),
    ])
    .areas(area);

    // One scale for every class's logins, so rows compare; shown in the header.
    let login_scale = s
        .classes
        .iter()
        .flat_map(|c| c.demand.iter().map(|&n| u64::from(n)))
        .max()
        .unwrap_or(0)
        .max(LOGIN_SCALE_MIN);
    let sort = app.sort_of(List::Classes);
    let named = |name| Cell::from(strings::sorted_header(List::Classes, sort, name));
    let mut header = vec![
        named("class"),
        named("prod"),
        named("buffer"),
        named("new"),
        named("status"),
    ];
    if cols.seed.is_some() {
        header.push(Cell::from("seed"));
    }
    header.push(Cell::from(format!("in≤{login_scale}")));
    header.push(Cell::from("fill"));
    let header = Row::new(header).style(theme.style(Area::Dashboard, Slot::Muted));
    let on_down = &app.digest.classes_on_down_hosts;
    let rows = classes.iter().enumerate().map(|(row, c)| {
        let p = &c.plan;
        let health = theme.style(Area::Dashboard, buffer_slot(c));
        let buffered = app.history.buffer_lows(&p.name, cols.spark);
        let demand: Vec<u64> = c.demand.iter().map(|&n| u64::from(n)).collect();
        let signals = class_signals(c, on_down.contains(&p.name));
        let status = match signals.first() {
            None => Span::styled("ok", theme.style(Area::Dashboard, Slot::Ok)),
            Some(worst) => Span::styled(
                signals
                    .iter()
                    .map(|s| s.text.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                theme.style(Area::Dashboard, worst.severity.slot()),
            ),
        };
        let mut cells = vec![
            Cell::from(fit(&p.name, cols.class)),
            Cell::from(format!("{}/{}", p.production, p.production_target)),
            Cell::from(Line::from(vec![
                Span::styled(bar(p.buffer, p.buffer_target, cols.gauge), health),
                Span::styled(format!(" {}/{}", p.buffer, p.buffer_target), health),
            ])),
            Cell::from(if p.creation > 0 {
                p.creation.to_string()
            } else {
                String::new()
            }),
            Cell::from(status),
        ];
        if let Some(width) = cols.seed {
            cells.push(Cell::from(fit(&c.seed_version, width)));
        }
        cells.extend([
            Cell::from(Span::styled(
                spark_scaled(&demand, login_scale, cols.spark),
                theme.style(Area::Dashboard, Slot::Accent),
            )),
            // Against the buffer target: a buffer stuck at half its target draws half bars.
            Cell::from(Span::styled(
                spark_scaled(&buffered, u64::from(p.buffer_target.max(1)), cols.spark),
                health,
            )),
        ]);
        // The highlight sets only the background (the gauge and status keep their colours);
        // the selected row's plain text takes the theme's selection text.
        let text = if row == app.class_row {
            ratatui::style::Style::default().fg(theme.color(Area::Dashboard, Slot::SelectionText))
        } else {
            ratatui::style::Style::default()
        };
        Row::new(cells).style(text)
    });
    let mut widths = vec![
        Constraint::Length(cols.class as u16),
        Constraint::Length(5),
        Constraint::Length(cols.gauge as u16 + 6),
        Constraint::Length(3),
        Constraint::Min(12),
    ];
    if let Some(width) = cols.seed {
        widths.push(Constraint::Length(width as u16));
    }
    widths.push(Constraint::Length(cols.spark as u16));
    widths.push(Constraint::Length(cols.spark as u16));
    let title = format!(" classes ({}) ", s.classes.len());
    let table = Table::new(rows, widths)
        .header(header)
        .block(block(title, Area::Dashboard, theme))
        .row_highlight_style(selected_keeping_colours(Area::Dashboard, theme))
        .highlight_symbol("▶");
    app.page_rows = classes_area.height.saturating_sub(3) as usize;
    let mut state = TableState::default().with_selected(Some(app.class_row));
    frame.render_stateful_widget(table, classes_area, &mut state);
    app.list_rows = Some(list_rows(classes_area, state.offset()));

    let why_slot = selected.map_or(Slot::Text, buffer_slot);
    let why_lines: Vec<Line> = why
        .into_iter()
        .map(|l| Line::styled(l, theme.style(Area::Dashboard, why_slot)))
        .collect();
    frame.render_widget(
        Paragraph::new(why_lines).block(block(" why ", Area::Dashboard, theme)),
        why_area,
    );

    hosts::draw_panel(frame, hosts_area, app, theme, None);

    // The room left shows what just happened, newest first (E opens them all).
    if recent_area.height >= 4 {
        let shown = recent_area.height.saturating_sub(3) as usize;
        let recent: Vec<&Event> = app.events.iter().take(shown).collect();
        let tz = &app.fleet.engine.timezone;
        frame.render_widget(
            events::table(&recent, tz, None, theme).block(block(
                " recent events (E: all) ",
                Area::Dashboard,
                theme,
            )),
            recent_area,
        );
    }

    for (i, copy) in s.seed_copies.iter().take(copies as usize).enumerate() {
        let row = Rect {
            y: copies_area.y + i as u16,
            height: 1,
            ..copies_area
        };
        let done = (copy.done_bytes * 100)
            .checked_div(copy.total_bytes)
            .unwrap_or(0);
        let line = Line::from(vec![
            Span::styled(
                format!(" seed {} {} → {}  ", copy.class, copy.version, copy.host),
                theme.base(Area::Dashboard),
            ),
            Span::styled(
                bar(done as u32, 100, 20),
                theme.style(Area::Dashboard, Slot::Accent),
            ),
            Span::styled(
                format!(" {done}% of {} MiB", copy.total_bytes >> 20),
                theme.base(Area::Dashboard),
            ),
        ]);
        frame.render_widget(Paragraph::new(line), row);
    }
}
