//! `[engine]`, `[console]` and `[broker]`: engine timings, the time zone, the holidays (read
//! in [`super::calendar`]), the state directory, the console theme.

use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;

use super::hosts::pool_path;
use super::shown;
use crate::error::Diag;
use crate::reader::{Field, Section};
use deskpool_core::policy::EngineSettings;
use deskpool_core::policy::rules::WEEK_SECS;

pub(super) const CONSOLE_KEYS: &[&str] = &["theme"];
const ENGINE_KEYS: &[&str] = &[
    "tick_secs",
    "resync_secs",
    "standby_idle_secs",
    "creation_pool",
    "creation_pool_path",
    "max_attempts",
    "retry_base_secs",
    "retry_max_secs",
    "create_timeout_secs",
    "remove_timeout_secs",
    "timezone",
    "holidays",
    "state_dir",
];

pub(super) fn engine(d: &mut Diag, s: &Section, base_dir: &Path) -> Option<EngineSettings> {
    s.check_keys(d, ENGINE_KEYS);
    let def = EngineSettings::default();
    let tick_secs = s.opt(d, "tick_secs", def.tick_secs, |f, d| f.int(d, 1, 3600));
    let resync_secs = s.opt(d, "resync_secs", def.resync_secs, |f, d| {
        f.int(d, 1, 86_400)
    });
    let standby_idle_secs = s.opt(d, "standby_idle_secs", def.standby_idle_secs, |f, d| {
        f.int(d, 0, WEEK_SECS)
    });
    let creation_pool = s.opt(d, "creation_pool", def.creation_pool, |f, d| f.name(d));
    let creation_pool_path = s.opt(d, "creation_pool_path", def.creation_pool_path, |f, d| {
        pool_path(f, d)
    });
    let max_attempts = s.opt(d, "max_attempts", def.max_attempts, |f, d| f.int(d, 1, 100));
    let retry_base_secs = s.opt(d, "retry_base_secs", def.retry_base_secs, |f, d| {
        f.int(d, 1, 86_400)
    });
    let retry_max_secs = s.opt(d, "retry_max_secs", def.retry_max_secs, |f, d| {
        f.int(d, 1, WEEK_SECS)
    });
    if let (Some(base), Some(max)) = (retry_base_secs, retry_max_secs)
        && max < base
    {
        let at = s
            .field("retry_max_secs")
            .or_else(|| s.field("retry_base_secs"));
        if let Some(at) = at {
            at.error(
                d,
                format!("retry_max_secs {max} is below retry_base_secs {base}"),
            );
        }
    }
    let create_timeout_secs = s.opt(d, "create_timeout_secs", def.create_timeout_secs, |f, d| {
        f.int(d, 1, 86_400)
    });
    let remove_timeout_secs = s.opt(d, "remove_timeout_secs", def.remove_timeout_secs, |f, d| {
        f.int(d, 1, 86_400)
    });
    let timezone = s.opt(d, "timezone", def.timezone, |f, d| timezone(f, d));
    let holidays = s.opt(d, "holidays", def.holidays, |f, d| {
        super::calendar::holidays(f, d)
    });
    let state_dir = s.opt(d, "state_dir", None, |f, d| {
        state_dir(f, d, base_dir).map(Some)
    });
    Some(EngineSettings {
        tick_secs: tick_secs?,
        resync_secs: resync_secs?,
        standby_idle_secs: standby_idle_secs?,
        creation_pool: creation_pool?,
        creation_pool_path: creation_pool_path?,
        max_attempts: max_attempts?,
        retry_base_secs: retry_base_secs?,
        retry_max_secs: retry_max_secs?,
        create_timeout_secs: create_timeout_secs?,
        remove_timeout_secs: remove_timeout_secs?,
        timezone: timezone?,
        holidays: holidays?,
        state_dir: state_dir?,
    })
}

fn timezone(f: &Field, d: &mut Diag) -> Option<TimeZone> {
    let name = f.str(d)?;
    if name.eq_ignore_ascii_case("UTC") {
        return Some(TimeZone::UTC);
    }
    match TimeZone::get(name) {
        Ok(tz) => Some(tz),
        Err(e) => {
            f.error(d, format!("unknown time zone {name:?} (expected an IANA name such as \"Europe/Paris\"): {e}"));
            None
        }
    }
}

/// A console theme: a built-in name, or a theme file (relative to the config file).
pub(super) fn theme(f: &Field, d: &mut Diag, base_dir: &Path) -> Option<String> {
    let text = f.str(d)?;
    if crate::BUILTIN_THEMES.contains(&text) {
        return Some(text.to_string());
    }
    let path = base_dir.join(text);
    if !path.is_file() {
        f.error(
            d,
            format!(
                "theme {text:?} is neither a built-in ({}) nor a file ({} not found)",
                crate::BUILTIN_THEMES.join(", "),
                shown(&path.display().to_string())
            ),
        );
        return None;
    }
    Some(path.display().to_string())
}

/// Longest Unix socket path the kernel takes (`sun_path` holds 108 bytes with the final NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The broker socket: a path relative to the config file, short enough for a Unix socket.
pub(super) fn socket_path(f: &Field, d: &mut Diag, base_dir: &Path) -> Option<PathBuf> {
    let path = file_path(f, d, base_dir)?;
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        f.error(
            d,
            format!(
                "socket path {} is {len} bytes long; a Unix socket path holds at most {MAX_SOCKET_PATH}",
                shown(&path.display().to_string())
            ),
        );
        return None;
    }
    Some(path)
}

fn state_dir(f: &Field, d: &mut Diag, base_dir: &Path) -> Option<PathBuf> {
    file_path(f, d, base_dir)
}

/// A path, relative to the config file's directory.
pub(super) fn file_path(f: &Field, d: &mut Diag, base_dir: &Path) -> Option<PathBuf> {
    let text = f.str(d)?;
    if text.is_empty() {
        f.error(d, "path is empty");
        return None;
    }
    if text.chars().any(char::is_control) {
        f.error(d, format!("path {text:?} contains a control character"));
        return None;
    }
    Some(base_dir.join(text))
}
