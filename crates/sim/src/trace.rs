//! Login traces: CSV with the header `time,user,class,event`, one event a line, RFC 3339 UTC
//! times in order, `login`, `logout` or `disconnect`. Every mistake is reported as `line N: what
//! is wrong`.
//!
//! A `disconnect` ends a session without logging out (a network drop, a closed viewer): under a
//! class's `disconnect_grace_secs` the user's next `login` of that class within the grace gets
//! the same desktop back. For the trace's own rules it ends the session as a logout does.

use std::collections::HashMap;

use jiff::Timestamp;

use deskpool_core::policy::Fleet;

/// The header a trace must start with.
pub const HEADER: &str = "time,user,class,event";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Login,
    Logout,
    /// The session ended without a logout: the user may reconnect to the same desktop.
    Disconnect,
}

/// One line of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// Unix seconds.
    pub at: i64,
    pub user: String,
    /// Index of the class in the fleet's classes.
    pub class: usize,
    pub kind: EventKind,
}

/// What is wrong with a trace, and where (`line N: what is wrong`, lines from 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TraceError {
    pub line: usize,
    pub message: String,
}

/// Parses a trace against the classes of `fleet`. Blank lines are skipped.
pub fn parse(text: &str, fleet: &Fleet) -> Result<Vec<TraceEvent>, TraceError> {
    let classes: HashMap<&str, usize> = fleet
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let err = |line: usize, message: String| TraceError { line, message };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, header)) if header.trim_end_matches('\r').trim() == HEADER => {}
        Some((n, header)) => {
            return Err(err(n, format!("header is {header:?}; expected {HEADER:?}")));
        }
        None => {
            return Err(err(
                1,
                format!("empty trace; expected the header {HEADER:?}"),
            ));
        }
    }
    let mut events = Vec::new();
    // User → (class, line of their login), for users logged in.
    let mut logged_in: HashMap<String, (usize, usize)> = HashMap::new();
    let mut last: Option<(Timestamp, usize)> = None;
    for (n, raw) in lines {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 4 {
            return Err(err(
                n,
                format!(
                    "expected 4 fields ({HEADER}), found {}: {line:?}",
                    fields.len()
                ),
            ));
        }
        let (time, user, class, event) = (fields[0], fields[1], fields[2], fields[3]);
        let at: Timestamp = time.parse().map_err(|e| {
            err(
                n,
                format!("time {time:?} is not an RFC 3339 time such as 2026-01-05T07:03:59Z: {e}"),
            )
        })?;
        if let Some((prev, prev_line)) = last
            && at < prev
        {
            return Err(err(
                n,
                format!("time {time} goes backwards (line {prev_line} is at {prev})"),
            ));
        }
        last = Some((at, n));
        if user.is_empty() {
            return Err(err(n, "user is empty".into()));
        }
        let Some(&class_index) = classes.get(class) else {
            let mut known: Vec<&str> = fleet.classes.iter().map(|c| c.name.as_str()).collect();
            known.sort_unstable();
            return Err(err(
                n,
                format!("unknown class {class:?}; classes: {}", known.join(", ")),
            ));
        };
        let kind = match event {
            "login" => EventKind::Login,
            "logout" => EventKind::Logout,
            "disconnect" => EventKind::Disconnect,
            other => {
                return Err(err(
                    n,
                    format!("unknown event {other:?}; expected login, logout or disconnect"),
                ));
            }
        };
        match kind {
            EventKind::Login => {
                if let Some((_, since)) = logged_in.get(user) {
                    return Err(err(
                        n,
                        format!(
                            "user {user:?} logs in again without logging out (logged in at line {since})"
                        ),
                    ));
                }
                logged_in.insert(user.to_string(), (class_index, n));
            }
            EventKind::Logout | EventKind::Disconnect => match logged_in.remove(user) {
                None => {
                    return Err(err(
                        n,
                        format!("{event} of user {user:?}, who is not logged in"),
                    ));
                }
                Some((c, since)) if c != class_index => {
                    let verb = if kind == EventKind::Logout {
                        "logs out of"
                    } else {
                        "disconnects from"
                    };
                    return Err(err(
                        n,
                        format!(
                            "user {user:?} {verb} class {class:?} but logged in to {:?} (line {since})",
                            fleet.classes[c].name
                        ),
                    ));
                }
                Some(_) => {}
            },
        }
        events.push(TraceEvent {
            at: at.as_second(),
            user: user.to_string(),
            class: class_index,
            kind,
        });
    }
    Ok(events)
}
