//! The home view: one row per class (levels against targets, seed, an hour of logins and
//! buffer), the hosts panel, and seed copies in progress.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::hosts;
use super::widgets::{bar, block, buffer_slot, fit, selected, spark};
use crate::app::App;
use crate::theme::{Area, Slot, Theme};

const GAUGE: usize = 12;
const SPARK: usize = 8;

pub fn draw(frame: &mut Frame, area: Rect, app: &mut App, theme: &Theme) {
    let s = app.snapshot.clone();
    let host_rows = s.hosts.len().min(8) as u16;
    let copies = s.seed_copies.len().min(3) as u16;
    let [classes_area, hosts_area, copies_area] = Layout::vertical([
        Constraint::Min(5),
        Constraint::Length(host_rows + 2),
        Constraint::Length(copies),
    ])
    .areas(area);

    let header =
        Row::new(["class", "prod", "buffer", "new", "seed", "logins", "buffer"].map(Cell::from))
            .style(theme.style(Area::Dashboard, Slot::Muted));
    let rows = s.classes.iter().map(|c| {
        let p = &c.plan;
        let health = theme.style(Area::Dashboard, buffer_slot(c));
        let (_, buffered) = app.history.series(&p.name, SPARK);
        let demand: Vec<u64> = c.demand.iter().map(|&n| u64::from(n)).collect();
        let old = if c.on_old_seed > 0 {
            Span::styled(
                format!(" {} old", c.on_old_seed),
                theme.style(Area::Dashboard, Slot::Warning),
            )
        } else {
            Span::raw("")
        };
        Row::new(vec![
            Cell::from(fit(&p.name, 12)),
            Cell::from(format!("{}/{}", p.production, p.production_target)),
            Cell::from(Line::from(vec![
                Span::styled(bar(p.buffer, p.buffer_target, GAUGE), health),
                Span::styled(format!(" {}/{}", p.buffer, p.buffer_target), health),
            ])),
            Cell::from(if p.creation > 0 {
                p.creation.to_string()
            } else {
                String::new()
            }),
            Cell::from(Line::from(vec![Span::raw(fit(&c.seed_version, 10)), old])),
            Cell::from(Span::styled(
                spark(&demand, SPARK),
                theme.style(Area::Dashboard, Slot::Accent),
            )),
            Cell::from(Span::styled(spark(&buffered, SPARK), health)),
        ])
    });
    let widths = [
        Constraint::Length(12),
        Constraint::Length(7),
        Constraint::Length(GAUGE as u16 + 8),
        Constraint::Length(3),
        Constraint::Min(10),
        Constraint::Length(SPARK as u16),
        Constraint::Length(SPARK as u16),
    ];
    let title = format!(" classes ({}) ", s.classes.len());
    let table = Table::new(rows, widths)
        .header(header)
        .block(block(title, Area::Dashboard, theme))
        .row_highlight_style(selected(Area::Dashboard, theme))
        .highlight_symbol("▶");
    app.page_rows = classes_area.height.saturating_sub(3) as usize;
    let mut state = TableState::default().with_selected(Some(app.class_row));
    frame.render_stateful_widget(table, classes_area, &mut state);

    hosts::draw_panel(frame, hosts_area, app, theme, None);

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
