//! The audit log: every admin action taken from a console, appended to `STATE_DIR/audit.log`
//! as one JSON object per line (who, when, what, result).

use std::path::{Path, PathBuf};

pub struct AuditLog {
    path: PathBuf,
    pub who: String,
}

/// The person at the keyboard: the user (the one behind sudo, if any), and where an SSH
/// session comes from.
pub fn who_am_i() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| account_name());
    match std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|c| c.split_whitespace().next().map(str::to_string))
    {
        Some(from) => format!("{user} from {from}"),
        None => user,
    }
}

/// The account name of this process's user (from the password database), else "uid N".
fn account_name() -> String {
    // SAFETY: getpwuid returns a pointer into static storage or null; it is read at once.
    unsafe {
        let uid = libc::getuid();
        let entry = libc::getpwuid(uid);
        if entry.is_null() || (*entry).pw_name.is_null() {
            return format!("uid {uid}");
        }
        std::ffi::CStr::from_ptr((*entry).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

impl AuditLog {
    pub fn new(state_dir: &Path) -> AuditLog {
        AuditLog {
            path: state_dir.join("audit.log"),
            who: who_am_i(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry. A failure to write is returned so the console can say so.
    pub fn record(&self, what: &str, result: &str) -> std::io::Result<()> {
        deskpool_broker::audit::append(&self.path, &self.who, what, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        log.record("pause the engine", "ok").unwrap();
        log.record("drain h1", "error: unknown host").unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["what"], "pause the engine");
        assert_eq!(lines[1]["result"], "error: unknown host");
        assert_eq!(lines[0]["who"], log.who.as_str());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
    }
}
