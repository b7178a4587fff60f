//! `[ha]`: the election among controllers through etcd.

use crate::error::Diag;
use crate::reader::{Field, Section};
use deskpool_core::policy::ha::{
    DEFAULT_ELECTION, DEFAULT_LEASE_TTL_SECS, HaSettings, MAX_LEASE_TTL_SECS, MIN_LEASE_TTL_SECS,
};

pub(super) const HA_KEYS: &[&str] = &["etcd", "name", "advertise", "election", "lease_ttl_secs"];

pub(super) fn ha(d: &mut Diag, s: &Section) -> Option<HaSettings> {
    s.check_keys(d, HA_KEYS);
    let etcd = s.req(d, "etcd", endpoints);
    let name = s.opt(d, "name", None, |f, d| f.name(d).map(Some));
    let advertise = s.opt(d, "advertise", None, |f, d| {
        url(f, d, &["http", "https"]).map(Some)
    });
    let election = s.opt(d, "election", DEFAULT_ELECTION.to_string(), election_key);
    let ttl = s.opt(d, "lease_ttl_secs", DEFAULT_LEASE_TTL_SECS, |f, d| {
        f.int(d, MIN_LEASE_TTL_SECS as i64, MAX_LEASE_TTL_SECS as i64)
    });
    let name = match name? {
        Some(n) => n,
        None => match this_host_name() {
            Some(n) => n,
            None => {
                d.error(
                    s.span(),
                    "[ha]: this machine's host name is not a usable controller name; set name",
                );
                return None;
            }
        },
    };
    Some(HaSettings {
        etcd: etcd?,
        name,
        advertise: advertise?,
        election: election?,
        lease_ttl_secs: ttl?,
    })
}

/// `etcd = ["http://10.0.0.5:2379", ...]`: at least one.
fn endpoints(f: &Field, d: &mut Diag) -> Option<Vec<String>> {
    let items = f.array(d)?;
    if items.is_empty() {
        f.error(
            d,
            "needs at least one etcd endpoint, e.g. [\"http://127.0.0.1:2379\"]",
        );
        return None;
    }
    let read: Vec<Option<String>> = items.iter().map(|i| url(i, d, &["http"])).collect();
    read.into_iter().collect()
}

/// A `scheme://host:port` URL with one of `schemes`.
fn url(f: &Field, d: &mut Diag, schemes: &[&str]) -> Option<String> {
    let text = f.str(d)?;
    let ok = text.split_once("://").is_some_and(|(scheme, rest)| {
        schemes.contains(&scheme)
            && !rest.is_empty()
            && !rest.contains(char::is_whitespace)
            && rest.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.trim_end_matches('/').parse::<u16>().is_ok()
            })
    });
    if ok {
        Some(text.trim_end_matches('/').to_string())
    } else {
        let schemes: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        f.error(
            d,
            format!(
                "{text:?} is not a {} URL with a host and a port",
                schemes.join(" or ")
            ),
        );
        None
    }
}

/// The key prefix: letters, digits, `-`, `_`, `/` and `.`, not starting or ending with `/`.
fn election_key(f: &Field, d: &mut Diag) -> Option<String> {
    let text = f.str(d)?;
    let ok = !text.is_empty()
        && !text.starts_with('/')
        && !text.ends_with('/')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_/.".contains(c));
    if ok {
        Some(text.to_string())
    } else {
        f.error(
            d,
            format!("{text:?} is not an election key: use letters, digits, -, _, . and inner /"),
        );
        None
    }
}

/// The machine's host name, when it is a valid controller name.
fn this_host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    deskpool_core::policy::names::check_name(name)
        .ok()
        .map(|()| name.to_string())
}
