//! A class in detail: the policy in force and why the targets are what they are, then its
//! desktops in a scrollable, filterable table.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::widgets::{
    Column, age, block, buffer_slot, column_widths, fit, list_rows, selected, shown_cells,
    wrap_hanging,
};
use crate::app::{App, List};
use crate::strings;
use crate::theme::{Area, Slot, Theme};
use deskpool_api::{DesktopView, PoolStateView};
use deskpool_core::policy::{BufferRule, Policy, TimeOfDay};

/// The width of the header's labels ("in force  ").
const LABEL: usize = 10;

fn rule(r: &BufferRule) -> String {
    if r.percent == 0 && r.floor == r.ceiling {
        format!("buffer {} (fixed)", r.floor)
    } else {
        format!(
            "buffer {}% of production, {}..{}",
            r.percent, r.floor, r.ceiling
        )
    }
}

/// "95% instant · p95 wait 30s" over the last hour, or what little there is to say.
fn login_window(c: &deskpool_api::ClassStatus) -> String {
    let w = &c.logins.last_hour;
    let minutes = w.secs.div_ceil(60).max(1);
    let mut parts = vec![format!(
        "{} in the last {}",
        w.served,
        if minutes >= 60 {
            "hour".to_string()
        } else {
            format!("{minutes} min")
        }
    )];
    if let Some(share) = (w.instant * 100).checked_div(w.served) {
        parts.push(format!("{share}% instant"));
        parts.push(match w.p95_wait_secs {
            Some(p) => format!("p95 wait ≤{p}s"),
            None => "p95 wait over 10 min".to_string(),
        });
    }
    parts.push(format!("{} refused", w.refused));
    parts.push(format!("{} waiting now", c.logins.waiting));
    if let Some(&last) = c.demand.last() {
        parts.push(format!("rate {last}/5 min"));
    }
    parts.join(" · ")
}

/// The next event to start after `at` (the first one without a time), and how many follow.
fn next_events(policy: &Policy, at: Option<jiff::Timestamp>, tz: &jiff::tz::TimeZone) -> String {
    let now = at.map(|at| {
        let local = at.to_zoned(tz.clone());
        (local.date(), TimeOfDay::from_civil(local.time()))
    });
    let mut coming: Vec<_> = policy
        .events
        .iter()
        .filter(|e| now.is_none_or(|now| (e.first_day, e.from) > now))
        .collect();
    coming.sort_by_key(|e| (e.first_day, e.from));
    match coming.split_first() {
        None => format!("{} declared, none to come", policy.events.len()),
        Some((next, rest)) => {
            let more = if rest.is_empty() {
                String::new()
            } else {
                format!(" · {} more", rest.len())
            };
            format!(
                "next {:?} {} · production {}{more}",
                next.name,
                next.describe(),
                next.production
            )
        }
    }
}

/// A desktop's state cell: a running desktop in creation of a class that waits for its guest
/// is still booting.
/// How long making this class's desktops took on each host: the median of each step over
/// the recent desktops (clone, boot, guest ready after boot, and the whole), with the whole's
/// 90th percentile.
fn measured(timings: &[deskpool_core::timings::TimingView], class: &str) -> String {
    use deskpool_core::timings::Step;
    let secs = |v: f64| {
        if v < 10.0 {
            format!("{v:.1}s")
        } else {
            format!("{v:.0}s")
        }
    };
    let per_host: Vec<String> = timings
        .iter()
        .filter(|t| t.class == class)
        .map(|t| {
            let mut parts: Vec<String> = [Step::Clone, Step::Boot, Step::Ready, Step::Whole]
                .into_iter()
                .filter_map(|step| {
                    let st = t.step(step)?;
                    Some(format!("{} {}", step.label(), secs(st.median_secs)))
                })
                .collect();
            if let Some(whole) = t.step(Step::Whole) {
                parts.push(format!("p90 {} of {}", secs(whole.p90_secs), whole.samples));
            }
            format!("{}: {}", t.host, parts.join(", "))
        })
        .collect();
    if per_host.is_empty() {
        "nothing made yet since the engine started".to_string()
    } else {
        per_host.join(" · ")
    }
}

fn state_cell(d: &DesktopView, waits_for_guest: bool) -> (&'static str, Slot) {
    if !d.running {
        ("shut off", Slot::Warning)
    } else if waits_for_guest && d.meta.pool == PoolStateView::Creation {
        ("booting", Slot::Muted)
    } else {
        ("running", Slot::Ok)
    }
}

/// A disconnected desktop stands out: its user is away, it waits for their reconnect.
fn pool_slot(d: &DesktopView) -> Slot {
    if d.meta.pool == PoolStateView::Disconnected {
        Slot::Warning
    } else {
        Slot::Text
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &mut App, class: &str, theme: &Theme) {
    let s = app.snapshot.clone();
    let status = s.classes.iter().find(|c| c.plan.name == class);
    let spec = app.fleet.class(class);
    let muted = theme.style(Area::Detail, Slot::Muted);
    let width = area.width.saturating_sub(2) as usize;
    let events_line = spec.is_some_and(|spec| !spec.policy.events.is_empty());

    // (label, text, colour) of each header line; each wraps under its own start.
    let mut fields: Vec<(&str, String, Slot)> = Vec::new();
    if let (Some(c), Some(spec)) = (status, spec) {
        let p = &c.plan;
        let policy = &spec.policy;
        let tz = &app.fleet.engine.timezone;
        // As the planner reads it: in force now, or ready_secs ahead.
        let event = s.at.and_then(|at| {
            let ahead = at + jiff::SignedDuration::from_secs(policy.ready_secs as i64);
            policy
                .event_at(at, tz)
                .or_else(|| policy.event_at(ahead, tz))
        });
        let period = p
            .period
            .and_then(|i| policy.periods.get(i).map(|per| (i, per)));
        let in_force = match (event, period) {
            (Some((_, e)), _) => format!(
                "event {:?}: {} · production {} · {}",
                e.name,
                e.describe(),
                e.production,
                rule(&e.buffer)
            ),
            (None, Some((i, per))) => format!(
                "period {}: {} {}-{} · production {} · {}",
                i + 1,
                per.days.names().join(","),
                per.from,
                per.to,
                per.production,
                rule(&per.buffer)
            ),
            (None, None) => format!(
                "outside periods · production {} · {}",
                policy.production,
                rule(&policy.buffer)
            ),
        };
        fields.push(("in force", in_force, Slot::Text));
        if events_line {
            fields.push(("events", next_events(policy, s.at, tz), Slot::Text));
        }
        fields.push((
            "targets",
            format!(
                "production {} · buffer {} · total {} · cap {}",
                p.production_target, p.buffer_target, p.total_target, c.cap
            ),
            Slot::Text,
        ));
        // A raised floor (the f prompt) and when it lapses, under the targets it lifts.
        if let Some(raised) = p.raised_floor {
            let until = raised.until.to_zoned(tz.clone()).strftime("%a %H:%M");
            fields.push((
                "",
                format!("floor raised to {} until {until}", raised.floor),
                Slot::Warning,
            ));
        }
        // Disconnected desktops count as production: they are kept for their users.
        let disconnected = s
            .desktops
            .iter()
            .filter(|d| d.meta.class == c.plan.name && d.meta.pool == PoolStateView::Disconnected)
            .count();
        let production = if disconnected > 0 {
            format!("{} ({disconnected} disconnected)", p.production)
        } else {
            p.production.to_string()
        };
        fields.push((
            "levels",
            format!(
                "production {production} · buffer {} · creation {} · seed {}, {} older",
                p.buffer, p.creation, c.seed_version, c.on_old_seed
            ),
            Slot::Text,
        ));
        fields.push(("why", p.explanation(), buffer_slot(c)));
        fields.push(("logins", login_window(c), Slot::Text));
        fields.push(("ready", spec.ready.describe(), Slot::Text));
        fields.push((
            "pacing",
            format!(
                "{} clones, {} boots per host · ready in {}s · scale down after {}s · \
                 disconnected kept {}s",
                policy.pacing.clones_per_host,
                policy.pacing.boots_per_host,
                policy.ready_secs,
                policy.scale_down_delay_secs,
                policy.disconnect_grace_secs
            ),
            Slot::Text,
        ));
        fields.push(("measured", measured(&s.timings, class), Slot::Text));
    }
    let mut lines = Vec::new();
    for (label, text, slot) in fields {
        let wrapped = wrap_hanging(&text, width.saturating_sub(LABEL), 0);
        for (i, line) in wrapped.into_iter().enumerate() {
            let label = if i == 0 { label } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{label:<LABEL$}"), muted),
                Span::styled(line, theme.style(Area::Detail, slot)),
            ]));
        }
    }
    if lines.is_empty() {
        lines.push(Line::from(format!(
            "no class {class} in the engine's snapshot yet"
        )));
    }
    // The header grows to hold every line, leaving the desktops table at least 4 rows.
    let header_height = (lines.len() as u16 + 2).min(area.height.saturating_sub(4));
    let [policy_area, table_area] =
        Layout::vertical([Constraint::Length(header_height), Constraint::Min(4)]).areas(area);
    frame.render_widget(
        Paragraph::new(lines).block(block(format!(" {class} "), Area::Detail, theme)),
        policy_area,
    );

    let now = s.at.map_or(0, |t| t.as_second());
    let desktops = app.visible_desktops(class);
    let count = desktops.len();
    // Each column wants its widest value (so a wide terminal shows users and names whole);
    // a narrow one leaves out seed, pool and age, in that order, before cutting text.
    let widest = |f: &dyn Fn(&DesktopView) -> usize, title: &str| {
        desktops
            .iter()
            .map(|d| f(d))
            .chain([title.len()])
            .max()
            .unwrap_or(0) as u16
    };
    let name_width = widest(&|d| d.name.chars().count(), "name");
    let user_width = widest(
        &|d| d.meta.user.as_deref().map_or(1, |u| u.chars().count()),
        "user",
    );
    let columns = [
        Column {
            want: name_width,
            min: name_width.min(20),
            drop_rank: 0,
        },
        Column {
            want: widest(&|d| d.host.chars().count(), "host"),
            min: 4,
            drop_rank: 0,
        },
        Column {
            // "production", or "disconnected" when one is listed.
            want: widest(&|d| d.meta.pool.as_str().len(), "pool"),
            min: 10,
            drop_rank: 2,
        },
        Column {
            want: user_width,
            min: user_width.min(10),
            drop_rank: 0,
        },
        Column {
            want: widest(&|d| d.meta.seed_version.chars().count(), "seed"),
            min: 7,
            drop_rank: 3,
        },
        Column {
            want: 4,
            min: 4,
            drop_rank: 1,
        },
        Column {
            want: 8,
            min: 8,
            drop_rank: 0,
        },
        // Where users connect: left out first on a narrow terminal.
        Column {
            want: widest(&|d| d.display.as_deref().map_or(1, str::len), "display"),
            min: 7,
            drop_rank: 5,
        },
        Column {
            want: widest(&|d| d.address.as_deref().map_or(1, str::len), "address"),
            min: 7,
            drop_rank: 4,
        },
    ];
    let widths = column_widths(table_area.width, &columns);
    let keep = |cells: Vec<Cell<'static>>| shown_cells(cells, &widths);
    let w = |i: usize| widths[i].unwrap_or(0) as usize;
    let sort = app.sort_of(List::Desktops);
    let header = Row::new(keep(
        [
            "name", "host", "pool", "user", "seed", "age", "state", "display", "address",
        ]
        .map(|name| Cell::from(strings::sorted_header(List::Desktops, sort, name)))
        .to_vec(),
    ))
    .style(theme.style(Area::Detail, Slot::Muted));
    let waits_for_guest = spec.is_some_and(|c| c.ready.needs_probe());
    let rows: Vec<Row> = desktops
        .iter()
        .map(|d| {
            let running = state_cell(d, waits_for_guest);
            Row::new(keep(vec![
                Cell::from(fit(&d.name, w(0))),
                Cell::from(fit(&d.host, w(1))),
                Cell::from(d.meta.pool.as_str()).style(theme.style(Area::Detail, pool_slot(d))),
                Cell::from(fit(d.meta.user.as_deref().unwrap_or("-"), w(3))),
                Cell::from(fit(&d.meta.seed_version, w(4))),
                Cell::from(age(now - d.meta.created_at)),
                Cell::from(running.0).style(theme.style(Area::Detail, running.1)),
                Cell::from(fit(d.display.as_deref().unwrap_or("-"), w(7))),
                Cell::from(fit(d.address.as_deref().unwrap_or("-"), w(8))),
            ]))
        })
        .collect();
    let widths: Vec<Constraint> = widths
        .iter()
        .flatten()
        .map(|&w| Constraint::Length(w))
        .collect();
    let filter = if app.desktop_filter.is_empty() {
        String::new()
    } else {
        format!(" filter: {}", app.desktop_filter)
    };
    let title = format!(" desktops ({count}){filter} ");
    let table = Table::new(rows, widths)
        .header(header)
        .block(block(title, Area::Detail, theme))
        .row_highlight_style(selected(Area::Detail, theme))
        .highlight_symbol("▶");
    app.page_rows = table_area.height.saturating_sub(3) as usize;
    let mut state = TableState::default().with_selected(if count == 0 {
        None
    } else {
        Some(app.desktop_row)
    });
    frame.render_stateful_widget(table, table_area, &mut state);
    app.list_rows = Some(list_rows(table_area, state.offset()));
}
