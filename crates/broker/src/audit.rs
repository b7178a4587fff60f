//! The audit log, `STATE_DIR/audit.log`: one JSON object a line (when, who, what, result),
//! written by consoles for their admin actions and by the network endpoint for every request.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;

#[derive(Serialize)]
struct Entry<'a> {
    at: jiff::Timestamp,
    who: &'a str,
    what: &'a str,
    result: &'a str,
}

/// Appends one entry to the audit log at `path`.
pub fn append(path: &Path, who: &str, what: &str, result: &str) -> std::io::Result<()> {
    let entry = Entry {
        at: jiff::Timestamp::now(),
        who,
        what,
        result,
    };
    let mut line = serde_json::to_string(&entry).map_err(std::io::Error::other)?;
    line.push('\n');
    // Private (0600): who did what and when is for the engine's user alone.
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    // One write per entry: appends of a line are not interleaved between writers.
    file.write_all(line.as_bytes())
}
