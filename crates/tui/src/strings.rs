//! Every user-facing sentence of the console that is not built from data: key bindings, help,
//! commands and messages, in one place so they stay consistent and are easy to review.

use super::screen::Screen;

pub const READ_ONLY: &str = "read-only console: actions are disabled (started with --read-only)";
pub const NO_FILTER_HERE: &str =
    "nothing to filter here: / filters the desktops of a class and the events";
pub const TOO_SMALL: &str = "terminal too small";
/// An attached console whose engine went away refuses actions until it is back.
pub const ENGINE_GONE_NO_ACTIONS: &str = "the engine is not reachable (its socket closed): nothing can be done until it is back; the console reconnects by itself";
/// The key hint left when the status bar has no room for the others.
pub const HELP_HINT: &str = "? help";
/// The engine takes a refill while paused (its backoff is forgotten) but makes nothing.
pub const REFILL_WHILE_PAUSED: &str =
    "queued: backoff cleared, but nothing is made while the engine is paused (p resumes)";
pub const QUIT_STOPS_ENGINE: &str = "Quit and stop the engine? This console runs it: provisioning and \
     the broker socket stop for everyone (libvirt keeps the desktops).";
/// Beside a period field that takes the class rule's value (the file leaves it out).
pub const INHERITED: &str = "= class rule";

/// `1 job`, `3 jobs`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `a` or `an` before `word` (by its first letter: good enough for class names).
pub fn article(word: &str) -> &'static str {
    match word.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// How the status line and the audit log name a policy change: the class and each value that
/// changed, old to new ("change the policy of dev: cap 10 → 12, buffer.floor 2 → 4").
pub fn policy_change(
    class: &str,
    loaded: &deskpool_core::policy::Policy,
    policy: &deskpool_core::policy::Policy,
) -> String {
    let changes = deskpool_config::policy_changes(loaded, policy);
    if changes.is_empty() {
        format!("save the policy of {class} unchanged")
    } else {
        format!("change the policy of {class}: {}", changes.join(", "))
    }
}

/// `:` commands and what they do (also the completion list).
pub const COMMANDS: &[(&str, &str)] = &[
    ("class", ":class NAME      open a class"),
    ("dashboard", ":dashboard       back to the dashboard"),
    ("drain", ":drain HOST      drain a host (asks first)"),
    ("edit", ":edit [CLASS]    edit a class's policy"),
    ("events", ":events          the event log"),
    ("help", ":help            this page"),
    ("hosts", ":hosts           the hosts"),
    ("pause", ":pause           pause the engine"),
    (
        "q",
        ":q               quit (the engine stops; libvirt keeps the desktops)",
    ),
    ("refill", ":refill [CLASS]  retry a class's creations now"),
    ("resume", ":resume          resume the engine"),
    (
        "undrain",
        ":undrain HOST    put a drained host back in service",
    ),
];

pub fn takes_class(command: &str) -> bool {
    matches!(command, "class" | "edit" | "refill")
}

pub fn takes_host(command: &str) -> bool {
    matches!(command, "drain" | "undrain")
}

const GLOBAL_KEYS: &[(&str, &str)] = &[
    ("?", "help for this view"),
    (":", "command mode (tab completes)"),
    ("esc", "back / clear the filter"),
    ("j k ↓ ↑", "move"),
    ("g G", "first / last"),
    ("PgUp PgDn", "page up / down"),
    ("H E", "hosts / events"),
    ("p", "pause or resume the engine"),
    ("q", "quit"),
];

/// Key bindings of one screen, then the global ones.
pub fn keys(screen: &Screen) -> Vec<(&'static str, String)> {
    let own: &[(&str, &str)] = match screen {
        Screen::Dashboard => &[
            ("enter", "open the class: policy in force, desktops"),
            ("e", "edit the class's policy"),
            ("r", "refill the class now (forget its backoff)"),
            ("f", "raise the buffer floor for a while"),
        ],
        Screen::Detail { .. } => &[
            ("/", "filter desktops (name, host, pool, user, seed)"),
            ("a", "assign a desktop to a user"),
            ("l", "release the selected desktop (asks first)"),
            ("x", "recycle the selected desktop (asks first)"),
            ("e", "edit the class's policy"),
            ("r", "refill the class now"),
            ("f", "raise the buffer floor for a while"),
        ],
        Screen::Hosts => &[
            ("d", "drain the selected host (asks first)"),
            ("u", "undrain it"),
        ],
        Screen::Events => &[("/", "filter events (kind, class, host, desktop, text)")],
        Screen::Editor => &[
            ("↑ ↓ tab", "move between fields"),
            ("type", "edit the field; errors show as you type"),
            ("ctrl-n", "add a period"),
            ("ctrl-d", "delete the period under the cursor"),
            (
                "ctrl-r",
                "a period's production or buffer: back to the class rule",
            ),
            (
                "?",
                "this help (no field takes a ?); esc returns to the form",
            ),
            (
                "ctrl-s",
                "save: apply to the engine and write the config file",
            ),
            ("esc", "leave (asks first when there are edits not saved)"),
        ],
        Screen::Help => &[],
    };
    let mut all: Vec<(&'static str, String)> =
        own.iter().map(|(k, w)| (*k, w.to_string())).collect();
    if let Some(list) = crate::app::List::of(screen) {
        all.push(sort_help(list));
        all.push((
            "mouse",
            "click selects a row (again: opens it), the wheel scrolls".into(),
        ));
    }
    if *screen != Screen::Editor {
        all.extend(GLOBAL_KEYS.iter().map(|(k, w)| (*k, w.to_string())));
    }
    all
}

/// What the dashboard's columns mean (its legend, in help).
const DASHBOARD_LEGEND: &[(&str, &str)] = &[
    (
        "prod",
        "desktops in production (assigned) / the production target",
    ),
    (
        "buffer",
        "ready desktops / the buffer target: green at target, yellow below, red empty",
    ),
    ("new", "desktops in creation (cloning or booting)"),
    (
        "status",
        "ok, or what is wrong, worst first (paused, paced, seed missing, refused N...)",
    ),
    ("seed", "the class's seed version (from 110 columns)"),
    (
        "in≤N",
        "logins per 5 minutes, a cell each (the hour from 110 columns, its last 25 minutes below); a full bar is N, the same for every class",
    ),
    (
        "fill",
        "the buffer's lowest level in each of the same 5 minutes, against its target; a full bar is at target",
    ),
];

/// The help page of a screen, line by line.
pub fn help_lines(screen: &Screen) -> Vec<String> {
    let mut lines = vec![
        format!("Keys of the {} view", screen.title()),
        String::new(),
    ];
    for (key, what) in keys(screen) {
        lines.push(format!("  {key:<10} {what}"));
    }
    if *screen == Screen::Dashboard {
        lines.push(String::new());
        lines.push("Columns".into());
        lines.push(String::new());
        for (column, what) in DASHBOARD_LEGEND {
            lines.push(format!("  {column:<10} {what}"));
        }
    }
    lines.push(String::new());
    lines.push("Commands (type : then a command; tab completes)".into());
    lines.push(String::new());
    for (_, line) in COMMANDS {
        lines.push(format!("  {line}"));
    }
    lines.push(String::new());
    lines.push("Confirmations default to Cancel: y or ←/→ then enter to go ahead.".into());
    lines
}

/// Short key hints for the status bar. A console that can act on nothing (read-only, or its
/// attached engine gone: `disabled` says which) is offered no action.
pub fn hints(screen: &Screen, disabled: Option<&str>) -> String {
    if let Some(why) = disabled {
        let keys = match screen {
            Screen::Dashboard => "⏎ open H hosts E events ? help q quit",
            Screen::Detail { .. } => "/ filter esc back ? help",
            Screen::Hosts | Screen::Events => "esc back ? help",
            Screen::Editor => "esc back",
            Screen::Help => "j/k scroll  esc back",
        };
        return format!("{why} · {keys}");
    }
    match screen {
        Screen::Dashboard => "⏎ open e edit r refill f floor p pause ? help q quit",
        Screen::Detail { .. } => "/ filter a assign l release x recycle e edit esc back ? help",
        Screen::Hosts => "d drain  u undrain  esc back  ? help",
        Screen::Events => "/ filter  g newest  esc back  ? help",
        Screen::Editor => "↑↓ field ^s save ^n add ^d delete period ^r class rule ? help esc",
        Screen::Help => "j/k scroll  esc back",
    }
    .to_string()
}

/// What the console says of a command the engine carried out. A display password is the user's
/// alone: it is never shown.
pub fn reply_outcome(reply: &deskpool_api::Reply) -> String {
    match reply {
        deskpool_api::Reply::Done => "done".to_string(),
        deskpool_api::Reply::Assigned {
            desktop,
            host,
            waited_ms,
            ..
        } => match waited_ms {
            0 => format!("{desktop} on {host}, ready at once"),
            ms => format!("{desktop} on {host}, after {:.1} s", *ms as f64 / 1000.0),
        },
    }
}

/// The columns each list sorts by: `shift`+the letter, named as in the list's header.
pub fn sort_columns(list: crate::app::List) -> &'static [(char, &'static str)] {
    use crate::app::List;
    match list {
        List::Classes => &[
            ('N', "class"),
            ('P', "prod"),
            ('B', "buffer"),
            ('C', "new"),
            ('S', "status"),
        ],
        List::Desktops => &[
            ('N', "name"),
            ('O', "host"),
            ('P', "pool"),
            ('U', "user"),
            ('S', "seed"),
            ('A', "age"),
            ('T', "state"),
        ],
        List::Hosts => &[
            ('N', "host"),
            ('S', "state"),
            ('D', "desktops"),
            ('M', "memory GiB"),
            ('V', "vCPU"),
        ],
        List::Events => &[('T', "time"), ('W', "what"), ('P', "place")],
    }
}

/// A list's header cell: the column's name, with `↑` or `↓` when the list is sorted by it.
pub fn sorted_header(
    list: crate::app::List,
    sort: Option<crate::app::Sort>,
    name: &'static str,
) -> String {
    let by_this = sort.filter(|s| {
        sort_columns(list)
            .iter()
            .any(|(k, n)| *k == s.key && *n == name)
    });
    match by_this {
        Some(s) if s.descending => format!("{name}↓"),
        Some(_) => format!("{name}↑"),
        None => name.to_string(),
    }
}

/// The help line of a list's sort keys: "shift+N P B C S  sort by class, prod, ... (again: reverse)".
fn sort_help(list: crate::app::List) -> (&'static str, String) {
    let columns = sort_columns(list);
    let keys: Vec<String> = columns.iter().map(|(k, _)| k.to_string()).collect();
    let names: Vec<&str> = columns.iter().map(|(_, n)| *n).collect();
    (
        "shift+key",
        format!(
            "sort by {} ({}; again: reverse)",
            names.join(", "),
            keys.join(" ")
        ),
    )
}

/// One event as the events view shows it (and as its filter reads it): time, what, place and
/// message, each whole.
pub fn event_row(e: &deskpool_api::Event, tz: &jiff::tz::TimeZone) -> [String; 4] {
    let place = [e.class.as_deref(), e.host.as_deref(), e.desktop.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    [
        e.at.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string(),
        event_kind(e.kind).to_string(),
        place,
        e.message.clone(),
    ]
}

/// How the events view names a kind of event (the names of the wire format), and what its
/// filter matches.
pub fn event_kind(kind: deskpool_api::EventKind) -> &'static str {
    use deskpool_api::EventKind;
    match kind {
        EventKind::Provisioned => "provisioned",
        EventKind::Assigned => "assigned",
        EventKind::Released => "released",
        EventKind::Destroyed => "destroyed",
        EventKind::Failed => "failed",
        EventKind::SeedCopied => "seed-copied",
        EventKind::HostActivated => "host-activated",
        EventKind::HostDraining => "host-draining",
        EventKind::HostStandby => "host-standby",
        EventKind::HostDown => "host-down",
        EventKind::HostUp => "host-up",
        EventKind::PolicyChanged => "policy-changed",
        EventKind::AdminAction => "admin-action",
        EventKind::LoginRefused => "login-refused",
        EventKind::SeedMissing => "seed-missing",
        EventKind::ConfigReloaded => "config-reloaded",
        EventKind::ConfigRefused => "config-refused",
        EventKind::Disconnected => "disconnected",
        EventKind::Leadership => "leadership",
    }
}

#[cfg(test)]
mod tests {
    use deskpool_api::EventKind;

    #[test]
    fn event_kinds_are_named_as_on_the_wire() {
        for kind in [
            EventKind::Provisioned,
            EventKind::Assigned,
            EventKind::Released,
            EventKind::Destroyed,
            EventKind::Failed,
            EventKind::SeedCopied,
            EventKind::HostActivated,
            EventKind::HostDraining,
            EventKind::HostStandby,
            EventKind::HostDown,
            EventKind::HostUp,
            EventKind::PolicyChanged,
            EventKind::AdminAction,
            EventKind::LoginRefused,
            EventKind::SeedMissing,
            EventKind::ConfigReloaded,
            EventKind::ConfigRefused,
            EventKind::Disconnected,
            EventKind::Leadership,
        ] {
            let wire = serde_json::to_value(kind).unwrap();
            assert_eq!(wire.as_str(), Some(super::event_kind(kind)), "{kind:?}");
        }
    }
}
