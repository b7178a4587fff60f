//! The configuration file: format, loading, and validation errors with file:line:col.
//!
//! The format is TOML with three parts: `[engine]` (optional settings), `[[hosts]]` (hypervisors)
//! and `[[classes]]` (desktop classes with their seed and policy). `examples/deskpool.toml` and the
//! embedded demo (`src/config/demo.toml`) show every key with comments.
//!
//! Loading never stops at the first semantic mistake: every error is collected and reported as
//! `FILE:LINE:COL: key.path: what is wrong`, sorted by position. A TOML syntax error stops the
//! parse (there is no tree to check after it). Nothing is returned for an invalid file.
//!
//! ```text
//! text ──► toml_edit (span-preserving tree) ──► reader (typed reads, key paths, spans)
//!                                                   └─► validate (rules) ──► policy::Fleet
//! ```

pub mod edit;
mod error;
pub mod on_disk;
mod reader;
mod summary;
pub mod tokens;
mod validate;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod broker_tests;
#[cfg(test)]
mod ha_tests;

#[cfg(test)]
mod calendar_tests;
#[cfg(test)]
mod disconnect_tests;

#[cfg(test)]
mod guest_tests;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use deskpool_core::policy::rules::check_policy;
pub use edit::{EditError, save_policy, save_policy_checked};
pub use error::line_col;
pub use error::{ConfigError, ConfigErrors};
pub use on_disk::{PeriodInherits, PolicyOnDisk, policy_changes, policy_on_disk};
pub use summary::summary;

use deskpool_core::policy::{Fleet, rules};
use error::Diag;

/// The console's built-in theme names, in the order `--theme` lists them. The console defines
/// the themes themselves and checks in its tests that it has exactly these.
pub const BUILTIN_THEMES: &[&str] = &["dark", "light", "high-contrast"];

/// The demo configuration, with `@DEMO_DIR@` standing for the demo's directory.
const DEMO_TOML: &str = include_str!("demo.toml");

/// Reads and checks the configuration file at `path`.
pub fn load_file(path: &Path) -> Result<Fleet, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_str(&text, path),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            message: format!("cannot read: {e}"),
        }])),
    }
}

/// Parses and checks configuration `text`. `file` names the file in messages, and relative paths
/// in the text (templates, `state_dir`) are resolved against its folder.
pub fn parse_str(text: &str, file: &Path) -> Result<Fleet, ConfigErrors> {
    let mut diag = Diag::new(file, text);
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let start = e.span().map_or(0, |s| s.start);
            let (at, reason) = syntax_error(text, start, e.message());
            diag.error(Some(at..at), format!("TOML syntax error: {reason}"));
            return Err(diag.into_errors());
        }
    };
    match validate::build(doc.as_table(), &mut diag, &base_dir(file)) {
        Some(fleet) if !diag.has_errors() => Ok(fleet),
        _ => {
            if !diag.has_errors() {
                diag.error(None, "the configuration is invalid");
            }
            Err(diag.into_errors())
        }
    }
}

/// Why the TOML parser stopped at byte `at`, and where: always with a reason. The parser's own
/// message is empty or beside the point for a character TOML forbids (a NUL or other control
/// character, a carriage return without its newline), so that character is named instead, at
/// its own position (the parser sometimes stops just after it).
fn syntax_error(text: &str, at: usize, message: &str) -> (usize, String) {
    let message = message.trim().replace('\n', "; ");
    let forbidden_at = |i: usize| {
        let rest = text.get(i..)?;
        let c = rest.chars().next()?;
        let bare_cr = c == '\r' && !rest[1..].starts_with('\n');
        let forbidden = c != '\t' && c != '\n' && c != '\r' && c.is_ascii_control();
        (forbidden || bare_cr).then_some((i, c))
    };
    let found = forbidden_at(at).or_else(|| at.checked_sub(1).and_then(forbidden_at));
    let named = found.map(|(_, c)| {
        if c == '\r' {
            "a carriage return without a newline after it (TOML lines end with \\n or \\r\\n)"
                .to_string()
        } else {
            let code = u32::from(c);
            format!(
                "the control character U+{code:04X} is not allowed anywhere in a TOML file, not \
                 even in a comment (tab is the only one; inside a \"string\" write \\u{code:04X})"
            )
        }
    });
    let at = found.map_or(at, |(i, _)| i);
    // The forbidden character is the cause whatever the parser expected there instead.
    let reason = match (named, message.is_empty()) {
        (Some(named), _) => named,
        (None, false) => message,
        (None, true) => match text.get(at..).and_then(|r| r.chars().next()) {
            Some(c) => format!("unexpected {c:?}"),
            None => "unexpected end of file".to_string(),
        },
    };
    (at, reason)
}

/// The folder of `file`, made absolute so resolved paths do not depend on a later working directory.
fn base_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
        }
        _ => std::env::current_dir().unwrap_or_default(),
    }
}

/// `$XDG_CONFIG_HOME/deskpool/config.toml`, else `~/.config/deskpool/config.toml`; `None`
/// when neither variable is usable.
pub fn default_config_path() -> Option<PathBuf> {
    config_path_from(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

/// [`default_config_path`] without the environment. Per the XDG spec, a relative
/// `XDG_CONFIG_HOME` is ignored.
fn config_path_from(xdg_config_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let usable = |v: OsString| {
        let p = PathBuf::from(v);
        p.is_absolute().then_some(p)
    };
    let config_home = xdg_config_home
        .and_then(usable)
        .or_else(|| home.and_then(usable).map(|h| h.join(".config")))?;
    Some(config_home.join("deskpool").join("config.toml"))
}

/// The embedded demo configuration, with its test-driver hosts in `demo_dir`
/// (`test:///<demo_dir>/h1.xml`, ...). `demo_dir` is made absolute and percent-encoded for the URIs.
///
/// # Panics
///
/// Only if the embedded `demo.toml` is invalid, which a unit test rules out.
pub fn demo_config(demo_dir: &Path) -> Fleet {
    match parse_str(&demo_text(demo_dir), Path::new("demo.toml")) {
        Ok(fleet) => fleet,
        Err(errors) => panic!("the embedded demo configuration is invalid:\n{errors}"),
    }
}

/// The text of the embedded demo configuration, its hosts in `demo_dir`.
pub fn demo_text(demo_dir: &Path) -> String {
    let dir = std::path::absolute(demo_dir).unwrap_or_else(|_| demo_dir.to_path_buf());
    DEMO_TOML.replace("@DEMO_DIR@", &uri_path(&dir))
}

/// An absolute path as the path part of a URI: percent-encoded, without a trailing `/`.
/// Only unreserved characters and `/` are left as they are, so the result is also safe inside
/// a TOML string.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for &byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    while out.ends_with('/') {
        out.pop();
    }
    out
}
