//! Sorting the lists by a column, as in k9s: `shift`+the column's letter sorts by it, the same
//! key again reverses. Each list's columns and letters are in [`strings::sort_columns`]; the
//! selected row stays on the same item across a sort.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::App;
use super::digest::Used;
use crate::screen::Screen;
use crate::signals::class_signals;
use crate::strings;
use deskpool_api::{ClassStatus, DesktopView, Event, HostState, HostStatusView, Snapshot};

/// The lists that sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    Classes,
    Desktops,
    Hosts,
    Events,
}

impl List {
    pub fn of(screen: &Screen) -> Option<List> {
        match screen {
            Screen::Dashboard => Some(List::Classes),
            Screen::Detail { .. } => Some(List::Desktops),
            Screen::Hosts => Some(List::Hosts),
            Screen::Events => Some(List::Events),
            Screen::Editor | Screen::Help => None,
        }
    }
}

/// A list's order: by the column of `key` (its letter), ascending unless `descending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: char,
    pub descending: bool,
}

impl App {
    /// The sort of `list`, if one was chosen.
    pub fn sort_of(&self, list: List) -> Option<Sort> {
        self.sorts.get(&list).copied()
    }

    /// `shift`+`key` on the current screen: sort its list by that column, or reverse it.
    /// Returns false when the list has no such column.
    pub(super) fn sort_by_key(&mut self, key: char) -> bool {
        let Some(list) = List::of(self.screen()) else {
            return false;
        };
        if !strings::sort_columns(list).iter().any(|(k, _)| *k == key) {
            return false;
        }
        let selected = self.selected_identity(list);
        let descending = self
            .sort_of(list)
            .is_some_and(|s| s.key == key && !s.descending);
        self.sorts.insert(list, Sort { key, descending });
        if let Some(id) = selected {
            let at = self.identities(list).iter().position(|i| *i == id);
            if let (Some(at), Some(row)) = (at, self.row_mut()) {
                *row = at;
            }
        }
        true
    }

    /// The names of `list`'s rows, in the order shown (what a selection is kept by).
    fn identities(&self, list: List) -> Vec<String> {
        match list {
            List::Classes => self
                .visible_classes()
                .iter()
                .map(|c| c.plan.name.clone())
                .collect(),
            List::Desktops => match self.screen() {
                Screen::Detail { class } => self
                    .visible_desktops(class)
                    .iter()
                    .map(|d| d.name.clone())
                    .collect(),
                _ => Vec::new(),
            },
            List::Hosts => self
                .visible_hosts()
                .iter()
                .map(|h| h.name.clone())
                .collect(),
            // Events have no name: their time, kind and message together.
            List::Events => self
                .visible_events()
                .iter()
                .map(|e| format!("{} {:?} {}", e.at, e.kind, e.message))
                .collect(),
        }
    }

    fn selected_identity(&self, list: List) -> Option<String> {
        let row = match list {
            List::Classes => self.class_row,
            List::Desktops => self.desktop_row,
            List::Hosts => self.host_row,
            List::Events => self.event_row,
        };
        self.identities(list).get(row).cloned()
    }

    /// The classes in the dashboard's order.
    pub fn visible_classes(&self) -> Vec<&ClassStatus> {
        self.classes_in_order(&self.snapshot)
    }

    /// The classes of `snapshot` in the dashboard's order (a view holds its own reference to
    /// the snapshot while it draws).
    pub fn classes_in_order<'a>(&self, snapshot: &'a Snapshot) -> Vec<&'a ClassStatus> {
        let mut rows: Vec<&ClassStatus> = snapshot.classes.iter().collect();
        if let Some(sort) = self.sort_of(List::Classes) {
            let on_down = &self.digest.classes_on_down_hosts;
            // Worst first when ascending: the status column sorts by its worst signal.
            let worst = |c: &ClassStatus| {
                std::cmp::Reverse(
                    class_signals(c, on_down.contains(&c.plan.name))
                        .first()
                        .map(|s| s.severity),
                )
            };
            rows.sort_by(|a, b| {
                let (p, q) = (&a.plan, &b.plan);
                let order = match sort.key {
                    'P' => p.production.cmp(&q.production),
                    // Emptiest first: the buffer against its target.
                    'B' => {
                        fill(p.buffer, p.buffer_target).total_cmp(&fill(q.buffer, q.buffer_target))
                    }
                    'C' => p.creation.cmp(&q.creation),
                    'S' => worst(a).cmp(&worst(b)),
                    _ => Ordering::Equal,
                };
                directed(order.then_with(|| p.name.cmp(&q.name)), sort)
            });
        }
        rows
    }

    /// The hosts in the hosts table's order.
    pub fn visible_hosts(&self) -> Vec<&HostState> {
        let mut rows: Vec<&HostState> = self.snapshot.hosts.iter().collect();
        if let Some(sort) = self.sort_of(List::Hosts) {
            let used = self.host_usage();
            let of = |h: &HostState| used.get(h.name.as_str()).copied().unwrap_or_default();
            rows.sort_by(|a, b| {
                let order = match sort.key {
                    'S' => host_state_rank(a).cmp(&host_state_rank(b)),
                    'D' => a.desktops.cmp(&b.desktops),
                    'M' => of(a).memory_mib.cmp(&of(b).memory_mib),
                    'V' => of(a).vcpus.cmp(&of(b).vcpus),
                    _ => Ordering::Equal,
                };
                directed(order.then_with(|| a.name.cmp(&b.name)), sort)
            });
        }
        rows
    }

    /// What each host's desktops take, by the classes' sizes.
    pub fn host_usage(&self) -> &HashMap<String, Used> {
        &self.digest.usage
    }

    /// Sorts a class's desktops: by the chosen column, else by pool, host and name.
    pub(super) fn sort_desktops(&self, rows: &mut [&DesktopView]) {
        let default = |a: &DesktopView, b: &DesktopView| {
            (a.meta.pool, &a.host, &a.name).cmp(&(b.meta.pool, &b.host, &b.name))
        };
        let Some(sort) = self.sort_of(List::Desktops) else {
            rows.sort_by(|a, b| default(a, b));
            return;
        };
        rows.sort_by(|a, b| {
            let (m, n) = (&a.meta, &b.meta);
            let order = match sort.key {
                'O' => a.host.cmp(&b.host),
                'P' => m.pool.cmp(&n.pool),
                'U' => m.user.cmp(&n.user),
                'S' => m.seed_version.cmp(&n.seed_version),
                // Youngest first: the newest creation.
                'A' => n.created_at.cmp(&m.created_at),
                'T' => b.running.cmp(&a.running),
                _ => Ordering::Equal,
            };
            directed(order.then_with(|| a.name.cmp(&b.name)), sort)
        });
    }

    /// Sorts events: by the chosen column, else newest first (as they arrive).
    pub(super) fn sort_events(&self, rows: &mut [&Event]) {
        let Some(sort) = self.sort_of(List::Events) else {
            return;
        };
        let tz = &self.fleet.engine.timezone;
        // Stable: events of the same key keep their newest-first order.
        rows.sort_by(|a, b| {
            let order = match sort.key {
                'T' => a.at.cmp(&b.at),
                'W' => strings::event_kind(a.kind).cmp(strings::event_kind(b.kind)),
                'P' => strings::event_row(a, tz)[2].cmp(&strings::event_row(b, tz)[2]),
                _ => Ordering::Equal,
            };
            directed(order, sort)
        });
    }
}

fn fill(level: u32, target: u32) -> f64 {
    if target == 0 {
        f64::INFINITY
    } else {
        f64::from(level) / f64::from(target)
    }
}

/// Down first, then the states that need an eye, then the working ones.
fn host_state_rank(h: &HostState) -> u8 {
    match h.status {
        HostStatusView::Down { .. } => 0,
        HostStatusView::Draining { .. } => 1,
        HostStatusView::Activating => 2,
        HostStatusView::Active => 3,
        HostStatusView::Standby => 4,
    }
}

/// `order` the way `sort` goes.
fn directed(order: Ordering, sort: Sort) -> Ordering {
    if sort.descending {
        order.reverse()
    } else {
        order
    }
}
