//! `[[hosts]]`: each host's URI (one entry per libvirt daemon), capacity, standby commands and
//! creation pool path.

use std::collections::HashMap;
use std::path::{Component, Path};

use super::quoted;
use crate::error::{Diag, Span};
use crate::reader::{Field, Section};
use deskpool_core::policy::{Capacity, DomainTypeSetting, HostSpec};

const HOST_KEYS: &[&str] = &[
    "name",
    "uri",
    "capacity",
    "standby",
    "activate_command",
    "deactivate_command",
    "creation_pool_path",
    "domain_type",
];
const CAPACITY_KEYS: &[&str] = &["desktops", "memory_mib", "vcpus"];

/// Reports every host whose `uri` reaches a daemon an earlier host already reaches (by the
/// URI's canonical form, see [`canonical_uri`]), at the later `uri`. Two entries for one daemon
/// would each see the other's desktops as leftovers and delete their disks.
pub(super) fn check_unique_uris(diag: &mut Diag, sections: &[Section]) {
    let mut seen: HashMap<String, (Option<&str>, &str, Option<Span>)> = HashMap::new();
    for section in sections {
        let Some(field) = section.field("uri") else {
            continue;
        };
        let Some(uri) = field.peek_str() else {
            continue;
        };
        let name = section.field("name").and_then(|f| f.peek_str());
        match seen.get(&canonical_uri(uri)) {
            Some((first_name, first_uri, first_span)) => {
                let line = first_span.as_ref().map_or(1, |s| diag.line_of(s));
                let first = first_name.map_or_else(
                    || "an earlier host".to_string(),
                    |n| format!("host {}", quoted(n)),
                );
                let spelled = if *first_uri == uri {
                    String::new()
                } else {
                    format!(" (as {})", quoted(first_uri))
                };
                field.error(
                    diag,
                    format!(
                        "uri {} reaches the same libvirt daemon as {first}{spelled}, declared at \
                         line {line}; list each daemon once",
                        quoted(uri)
                    ),
                );
            }
            None => {
                seen.insert(canonical_uri(uri), (name, uri, field.span()));
            }
        }
    }
}

/// A libvirt URI with the spelling that does not change the daemon reached made uniform: the
/// scheme (`driver[+transport]`) and host name lowercased, trailing `/` of the path and an empty
/// query (`?`) dropped, and a `+unix` transport without a host name dropped (it is libvirt's
/// default for local daemons). The user name, path and parameters are kept as written (they
/// are case sensitive). DNS aliases of one host are not seen here; the engine identifies
/// daemons when it connects.
pub(crate) fn canonical_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return uri.to_string();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(r) => match r.find('/') {
            Some(i) => (Some(&r[..i]), &r[i..]),
            None => (Some(r), ""),
        },
        None => (None, rest),
    };
    let mut out = scheme.to_ascii_lowercase();
    if authority.is_none_or(str::is_empty)
        && let Some(driver) = out.strip_suffix("+unix")
    {
        out = driver.to_string();
    }
    out.push(':');
    if let Some(authority) = authority {
        out.push_str("//");
        // `user@host:port`: the user name is case sensitive, the host name is not.
        let (user, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if let Some(user) = user {
            out.push_str(user);
            out.push('@');
        }
        out.push_str(&host.to_ascii_lowercase());
    }
    out.push_str(path.trim_end_matches('/'));
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Why a creation pool directory is refused. The message is the sentence users see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PoolPathError {
    #[error("path is empty")]
    Empty,
    #[error("path {path:?} is not absolute (it must start with '/')")]
    NotAbsolute { path: String },
    #[error("path {path:?} contains {bad:?}; whitespace and control characters are not allowed")]
    ForbiddenCharacter { path: String, bad: char },
    #[error("path {path:?} must not contain '..'")]
    ParentDirectory { path: String },
}

/// Checks a creation pool directory: absolute, no `..`, no whitespace or control characters.
pub(crate) fn check_pool_path(path: &str) -> Result<(), PoolPathError> {
    if path.is_empty() {
        return Err(PoolPathError::Empty);
    }
    let owned = || path.to_string();
    if !path.starts_with('/') {
        return Err(PoolPathError::NotAbsolute { path: owned() });
    }
    if let Some(bad) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(PoolPathError::ForbiddenCharacter { path: owned(), bad });
    }
    if Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(PoolPathError::ParentDirectory { path: owned() });
    }
    Ok(())
}
pub(super) fn pool_path(f: &Field, d: &mut Diag) -> Option<String> {
    let text = f.str(d)?;
    match check_pool_path(text) {
        Ok(()) => Some(text.to_string()),
        Err(why) => {
            f.error(d, why);
            None
        }
    }
}

pub(super) fn host(d: &mut Diag, s: &Section) -> Option<HostSpec> {
    s.check_keys(d, HOST_KEYS);
    let name = s.req(d, "name", |f, d| f.name(d));
    let uri = s.req(d, "uri", |f, d| uri(f, d));
    let capacity = s.req(d, "capacity", |f, d| capacity(f, d));
    let standby = s.opt(d, "standby", false, |f, d| f.bool(d));
    let activate_command = s.opt(d, "activate_command", None, |f, d| command(f, d).map(Some));
    let deactivate_command = s.opt(d, "deactivate_command", None, |f, d| {
        command(f, d).map(Some)
    });
    let creation_pool_path = s.opt(d, "creation_pool_path", None, |f, d| {
        pool_path(f, d).map(Some)
    });
    let domain_type = s.opt(d, "domain_type", DomainTypeSetting::Auto, |f, d| {
        domain_type(f, d)
    });
    let mut commands_ok = true;
    if standby == Some(false) {
        for key in ["activate_command", "deactivate_command"] {
            if let Some(f) = s.field(key) {
                d.error(
                    f.key_span(),
                    format!(
                        "{}: only allowed on a standby host; set standby = true or remove it",
                        f.path
                    ),
                );
                commands_ok = false;
            }
        }
    }
    if !commands_ok {
        return None;
    }
    Some(HostSpec {
        name: name?,
        uri: uri?,
        capacity: capacity?,
        standby: standby?,
        activate_command: activate_command?,
        deactivate_command: deactivate_command?,
        creation_pool_path: creation_pool_path?,
        domain_type: domain_type?,
    })
}

fn domain_type(f: &Field, d: &mut Diag) -> Option<DomainTypeSetting> {
    let text = f.str(d)?;
    if let Some(setting) = DomainTypeSetting::parse(text) {
        return Some(setting);
    }
    let names: Vec<String> = DomainTypeSetting::NAMES
        .iter()
        .map(|n| format!("{n:?}"))
        .collect();
    f.error(
        d,
        format!(
            "unknown domain type {}; expected {} (\"qemu\" is TCG emulation, for hosts whose \
             KVM does not boot a guest kernel)",
            quoted(text),
            names.join(", ")
        ),
    );
    None
}

fn uri(f: &Field, d: &mut Diag) -> Option<String> {
    let text = f.str(d)?;
    let problem = if text.is_empty() {
        "uri is empty".to_string()
    } else if let Some(bad) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        format!("uri {text:?} contains {bad:?}; whitespace and control characters are not allowed")
    } else if !text.contains(':') {
        format!(
            "{text:?} is not a libvirt URI (such as \"qemu:///system\" or \"qemu+ssh://host/system\")"
        )
    } else {
        return Some(text.to_string());
    };
    f.error(d, problem);
    None
}

fn command(f: &Field, d: &mut Diag) -> Option<String> {
    let text = f.str(d)?;
    if text.trim().is_empty() {
        f.error(d, "command is empty");
        return None;
    }
    Some(text.to_string())
}

fn capacity(f: &Field, d: &mut Diag) -> Option<Capacity> {
    let s = f.table(d)?;
    s.check_keys(d, CAPACITY_KEYS);
    let desktops = s.opt(d, "desktops", None, |f, d| {
        f.int(d, 1, i64::from(u32::MAX)).map(Some)
    });
    let memory_mib = s.opt(d, "memory_mib", None, |f, d| {
        f.int(d, 1, i64::MAX).map(Some)
    });
    let vcpus = s.opt(d, "vcpus", None, |f, d| {
        f.int(d, 1, i64::from(u32::MAX)).map(Some)
    });
    if CAPACITY_KEYS.iter().all(|k| s.field(k).is_none()) {
        d.error(
            s.span(),
            format!(
                "{}: set at least one of {}",
                s.path(),
                CAPACITY_KEYS.join(", ")
            ),
        );
        return None;
    }
    Some(Capacity {
        desktops: desktops?,
        memory_mib: memory_mib?,
        vcpus: vcpus?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_paths_are_refused_by_kind_with_the_sentence_users_see() {
        assert_eq!(check_pool_path("/var/lib/deskpool"), Ok(()));
        assert_eq!(check_pool_path(""), Err(PoolPathError::Empty));
        assert_eq!(
            check_pool_path("var/lib").unwrap_err().to_string(),
            "path \"var/lib\" is not absolute (it must start with '/')"
        );
        assert_eq!(
            check_pool_path("/var/my pool"),
            Err(PoolPathError::ForbiddenCharacter {
                path: "/var/my pool".into(),
                bad: ' '
            })
        );
        assert_eq!(
            check_pool_path("/var/../etc"),
            Err(PoolPathError::ParentDirectory {
                path: "/var/../etc".into()
            })
        );
    }
}
