//! Builds the policy model ([`Fleet`]) from a parsed document, checking every rule of the file
//! format and recording every mistake found.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use jiff::tz::TimeZone;
use toml_edit::Table;

use super::error::{Diag, Span};
use super::reader::{Field, Section};
use super::rules::{self, WEEK_SECS};
use deskpool_core::policy::{
    BrokerSettings, BufferRule, Capacity, ClassSpec, ConsoleSettings, EngineSettings, Fleet,
    HostSpec, LogoutAction, Pacing, Period, Policy, Predictive, SeedSpec, ShutoffAction, TimeOfDay,
    Weekdays,
};

const TOP_KEYS: &[&str] = &["engine", "console", "broker", "hosts", "classes"];
const CONSOLE_KEYS: &[&str] = &["theme"];
const BROKER_KEYS: &[&str] = &["socket"];
const ENGINE_KEYS: &[&str] = &[
    "tick_secs",
    "resync_secs",
    "standby_idle_secs",
    "creation_pool",
    "creation_pool_path",
    "max_attempts",
    "retry_base_secs",
    "retry_max_secs",
    "timezone",
    "state_dir",
];
const HOST_KEYS: &[&str] = &[
    "name",
    "uri",
    "capacity",
    "standby",
    "activate_command",
    "deactivate_command",
    "creation_pool_path",
];
const CAPACITY_KEYS: &[&str] = &["desktops", "memory_mib", "vcpus"];
const CLASS_KEYS: &[&str] = &[
    "name",
    "memory_mib",
    "vcpus",
    "disk_gib",
    "template",
    "seed",
    "policy",
];
const SEED_KEYS: &[&str] = &["pool", "volume", "version", "host"];
const POLICY_KEYS: &[&str] = &[
    "cap",
    "production",
    "buffer",
    "ready_secs",
    "scale_down_delay_secs",
    "on_logout",
    "on_shutoff",
    "pacing",
    "periods",
    "predictive",
];
const BUFFER_KEYS: &[&str] = &["floor", "percent", "ceiling"];
const PACING_KEYS: &[&str] = &["clones_per_host", "boots_per_host"];
const PREDICTIVE_KEYS: &[&str] = &["service_level"];
const PERIOD_KEYS: &[&str] = &["days", "from", "to", "production", "buffer"];

/// Placeholders a domain template must contain.
pub(super) const TEMPLATE_PLACEHOLDERS: &[&str] = &["{name}", "{disk_path}"];

/// The fleet described by `root`, or `None` when any error was recorded in `diag`.
/// Relative paths in the file (templates, `state_dir`) are resolved against `base_dir`.
pub(super) fn build(root: &Table, diag: &mut Diag, base_dir: &Path) -> Option<Fleet> {
    let root = Section::root(root);
    root.check_keys(diag, TOP_KEYS);

    let engine = root.opt(diag, "engine", EngineSettings::default(), |f, d| {
        let section = f.table(d)?;
        engine(d, &section, base_dir)
    });

    let console = root.opt(diag, "console", ConsoleSettings::default(), |f, d| {
        let section = f.table(d)?;
        section.check_keys(d, CONSOLE_KEYS);
        let theme = section.opt(d, "theme", None, |f, d| theme(f, d, base_dir).map(Some));
        Some(ConsoleSettings { theme: theme? })
    });

    let broker = root.opt(diag, "broker", BrokerSettings::default(), |f, d| {
        let section = f.table(d)?;
        section.check_keys(d, BROKER_KEYS);
        let socket = section.opt(d, "socket", None, |f, d| {
            socket_path(f, d, base_dir).map(Some)
        });
        Some(BrokerSettings { socket: socket? })
    });

    let host_sections = entries(diag, &root, "hosts", "host");
    check_unique(diag, &host_sections, "host");
    check_unique_uris(diag, &host_sections);
    let hosts: Vec<Option<HostSpec>> = host_sections.iter().map(|s| host(diag, s)).collect();
    if let Some(first) = host_sections.first()
        && hosts.iter().all(|h| h.as_ref().is_some_and(|h| h.standby))
    {
        diag.error(
            first.span(),
            "every host is a standby host; at least one host needs standby = false",
        );
    }
    let host_names: Vec<&str> = host_sections
        .iter()
        .filter_map(|s| s.field("name").and_then(|f| f.peek_str()))
        .collect();

    let class_sections = entries(diag, &root, "classes", "class");
    check_unique(diag, &class_sections, "class");
    let classes: Vec<Option<ClassSpec>> = class_sections
        .iter()
        .map(|s| class(diag, s, &host_names, base_dir))
        .collect();

    if diag.has_errors() {
        return None;
    }
    Some(Fleet {
        engine: engine?,
        console: console?,
        broker: broker?,
        hosts: hosts.into_iter().collect::<Option<_>>()?,
        classes: classes.into_iter().collect::<Option<_>>()?,
    })
}

/// The tables of a top-level array (`[[hosts]]`, `[[classes]]`), which must not be empty.
fn entries<'a>(diag: &mut Diag, root: &Section<'a>, key: &str, what: &str) -> Vec<Section<'a>> {
    match root.field(key) {
        None => {
            diag.error(
                Some(0..0),
                format!("no {key} declared; add at least one [[{key}]] table (one per {what})"),
            );
            Vec::new()
        }
        Some(field) => {
            let sections = field.tables(diag);
            if sections.as_ref().is_some_and(Vec::is_empty) {
                field.error(diag, format!("at least one {what} is required"));
            }
            sections.unwrap_or_default()
        }
    }
}

/// Reports every name declared twice among `sections`, at the second declaration.
fn check_unique(diag: &mut Diag, sections: &[Section], what: &str) {
    let mut seen: HashMap<&str, Option<Span>> = HashMap::new();
    for section in sections {
        let Some(field) = section.field("name") else {
            continue;
        };
        let Some(name) = field.peek_str() else {
            continue;
        };
        match seen.get(name) {
            Some(first) => {
                let line = first.as_ref().map_or(1, |s| diag.line_of(s));
                field.error(
                    diag,
                    format!("duplicate {what} name {name:?} (first declared at line {line})"),
                );
            }
            None => {
                seen.insert(name, field.span());
            }
        }
    }
}

/// Reports every host whose `uri` reaches a daemon an earlier host already reaches (by the
/// URI's canonical form, see [`canonical_uri`]), at the later `uri`. Two entries for one daemon
/// would each see the other's desktops as leftovers and delete their disks.
fn check_unique_uris(diag: &mut Diag, sections: &[Section]) {
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
pub(super) fn canonical_uri(uri: &str) -> String {
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

/// Text from the file (a path, a command) as messages show it: as written, except that control
/// characters are escaped (`\t`, `\u{1b}`), so the terminal never receives them raw.
pub(super) fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A name or other text from the file as messages show it: quoted, with control characters
/// (and quotes) escaped, so a tab or an escape sequence in the file never reaches the terminal.
pub(super) fn quoted(text: &str) -> String {
    format!("{text:?}")
}

fn engine(d: &mut Diag, s: &Section, base_dir: &Path) -> Option<EngineSettings> {
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
    let timezone = s.opt(d, "timezone", def.timezone, |f, d| timezone(f, d));
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
        timezone: timezone?,
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
fn theme(f: &Field, d: &mut Diag, base_dir: &Path) -> Option<String> {
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
fn socket_path(f: &Field, d: &mut Diag, base_dir: &Path) -> Option<PathBuf> {
    let path = state_dir(f, d, base_dir)?;
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

/// Checks a creation pool directory: absolute, no `..`, no whitespace or control characters.
pub(super) fn check_pool_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("path is empty".into());
    }
    if !path.starts_with('/') {
        return Err(format!(
            "path {path:?} is not absolute (it must start with '/')"
        ));
    }
    if let Some(bad) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "path {path:?} contains {bad:?}; whitespace and control characters are not allowed"
        ));
    }
    if Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(format!("path {path:?} must not contain '..'"));
    }
    Ok(())
}

fn pool_path(f: &Field, d: &mut Diag) -> Option<String> {
    let text = f.str(d)?;
    match check_pool_path(text) {
        Ok(()) => Some(text.to_string()),
        Err(why) => {
            f.error(d, why);
            None
        }
    }
}

fn host(d: &mut Diag, s: &Section) -> Option<HostSpec> {
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
    })
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

/// Longest class name: desktop names are `dp-<class>-<10 characters>` and must be valid names
/// themselves (at most [`MAX_NAME_LEN`](deskpool_core::policy::names::MAX_NAME_LEN) characters).
pub(super) const MAX_CLASS_NAME_LEN: usize =
    deskpool_core::policy::names::MAX_NAME_LEN - "dp--".len() - 10;

fn class_name(f: &Field, d: &mut Diag) -> Option<String> {
    let name = f.name(d)?;
    if name.len() > MAX_CLASS_NAME_LEN {
        f.error(
            d,
            format!(
                "class name {} is {} characters long; at most {MAX_CLASS_NAME_LEN} are allowed, \
                 so that its desktops' names (dp-<class>-<10 characters>) fit in {}",
                quoted(&name),
                name.len(),
                deskpool_core::policy::names::MAX_NAME_LEN
            ),
        );
        return None;
    }
    Some(name)
}

fn class(d: &mut Diag, s: &Section, hosts: &[&str], base_dir: &Path) -> Option<ClassSpec> {
    s.check_keys(d, CLASS_KEYS);
    let name = s.req(d, "name", class_name);
    let memory_mib = s.req(d, "memory_mib", |f, d| f.int(d, 64, 1_048_576));
    let vcpus = s.req(d, "vcpus", |f, d| f.int(d, 1, 512));
    let disk_gib = s.req(d, "disk_gib", |f, d| f.int(d, 1, 65_536));
    let template = s.opt(d, "template", None, |f, d| {
        template(f, d, base_dir, name.as_deref()).map(Some)
    });
    let seed = s.req(d, "seed", |f, d| seed(f, d, hosts));
    let label = s.field("name").and_then(|f| f.peek_str());
    let policy = s.req(d, "policy", |f, d| policy(f, d, label));
    Some(ClassSpec {
        name: name?,
        seed: seed?,
        memory_mib: memory_mib?,
        vcpus: vcpus?,
        disk_gib: disk_gib?,
        template: template?,
        policy: policy?,
    })
}

/// Reads a domain template file: it must be well-formed XML with a `<domain>` root, hold every
/// placeholder the engine fills in, and make a domain as the engine would (see
/// [`template_problem`]). `class` is the class's name when it is valid. Returns its text.
fn template(f: &Field, d: &mut Diag, base_dir: &Path, class: Option<&str>) -> Option<String> {
    let rel = f.str(d)?;
    if rel.is_empty() {
        f.error(d, "template path is empty");
        return None;
    }
    let path = base_dir.join(rel);
    let shown_path = shown(&path.display().to_string());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            f.error(d, format!("cannot read template {shown_path}: {e}"));
            return None;
        }
    };
    let root = match roxmltree::Document::parse(&text) {
        Ok(doc) => doc.root_element().tag_name().name().to_string(),
        Err(e) => {
            f.error(
                d,
                format!("template {shown_path} is not well-formed XML: {e}"),
            );
            return None;
        }
    };
    if root != "domain" {
        f.error(
            d,
            format!("template {shown_path} has root element <{root}>; expected <domain>"),
        );
        return None;
    }
    let missing: Vec<&str> = TEMPLATE_PLACEHOLDERS
        .iter()
        .copied()
        .filter(|p| !text.contains(p))
        .collect();
    if !missing.is_empty() {
        f.error(
            d,
            format!(
                "template {shown_path} lacks the placeholder(s) {}",
                missing.join(", ")
            ),
        );
        return None;
    }
    if let Some(why) = template_problem(&text, class.unwrap_or("class")) {
        f.error(
            d,
            format!("template {shown_path} cannot make a desktop: {why}"),
        );
        return None;
    }
    Some(text)
}

/// What keeps `template` from making a desktop of `class`, if anything: it is rendered as the
/// engine renders it (sample values for a desktop of that class), and the domain must be named
/// by `{name}` and have a disk whose file is `{disk_path}` (the desktop's own volume).
pub(super) fn template_problem(template: &str, class: &str) -> Option<String> {
    use deskpool_core::model::{DesktopMeta, PoolState};
    use deskpool_core::xml::{DomainValues, domain_disk_sources, render_domain_xml};

    let name = format!("dp-{class}-0000000000");
    let disk_path = format!("/var/lib/libvirt/deskpool/{name}.qcow2");
    let values = DomainValues {
        name: &name,
        uuid: "00000000-0000-4000-8000-000000000000",
        memory_mib: 1024,
        vcpus: 1,
        disk_path: &disk_path,
        disk_format: "qcow2",
        domain_type: "kvm",
        display_password: "Sample01",
    };
    let meta = DesktopMeta {
        class: class.to_string(),
        pool: PoolState::Creation,
        seed_version: "v1".into(),
        user: None,
        created_at: 0,
        changed_at: 0,
        attempts: 0,
    };
    let xml = match render_domain_xml(Some(template), &values, &meta) {
        Ok(xml) => xml,
        Err(why) => return Some(why),
    };
    if !domain_disk_sources(&xml)
        .iter()
        .any(|d| d.path == disk_path)
    {
        return Some(
            "no disk of the domain has {disk_path} as its file (the desktop's own volume: \
             <disk type='file' device='disk'><source file='{disk_path}'/>...</disk>)"
                .to_string(),
        );
    }
    None
}

fn seed(f: &Field, d: &mut Diag, hosts: &[&str]) -> Option<SeedSpec> {
    let s = f.table(d)?;
    s.check_keys(d, SEED_KEYS);
    let pool = s.req(d, "pool", |f, d| f.name(d));
    let volume = s.req(d, "volume", |f, d| f.name(d));
    let version = s.req(d, "version", |f, d| f.name(d));
    let host = s.opt(d, "host", None, |f, d| {
        let name = f.str(d)?;
        if hosts.contains(&name) {
            Some(Some(name.to_string()))
        } else {
            f.error(
                d,
                format!(
                    "unknown host {}; declared hosts: {}",
                    quoted(name),
                    hosts
                        .iter()
                        .map(|h| quoted(h))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            None
        }
    });
    Some(SeedSpec {
        pool: pool?,
        volume: volume?,
        version: version?,
        host: host?,
    })
}

fn policy(f: &Field, d: &mut Diag, class: Option<&str>) -> Option<Policy> {
    let s = f.table(d)?;
    s.check_keys(d, POLICY_KEYS);
    let cap: Option<u32> = s.req(d, "cap", |f, d| f.ranged(d, rules::CAP));
    let production = s.opt(d, "production", rules::DEFAULT_PRODUCTION, |f, d| {
        production(f, d, cap)
    });
    let buffer = match s.field("buffer") {
        Some(f) => f.table(d).and_then(|b| buffer(d, &b, cap)),
        None => cap.map(rules::default_buffer),
    };
    let ready_secs = s.opt(d, "ready_secs", rules::DEFAULT_READY_SECS, |f, d| {
        f.ranged(d, rules::READY_SECS)
    });
    let scale_down_delay_secs = s.opt(
        d,
        "scale_down_delay_secs",
        rules::DEFAULT_SCALE_DOWN_DELAY_SECS,
        |f, d| f.ranged(d, rules::SCALE_DOWN_DELAY_SECS),
    );
    let on_logout = s.opt(d, "on_logout", rules::DEFAULT_ON_LOGOUT, |f, d| {
        logout_action(f, d)
    });
    let on_shutoff = s.opt(d, "on_shutoff", rules::DEFAULT_ON_SHUTOFF, |f, d| {
        shutoff_action(f, d)
    });
    let pacing = s.opt(d, "pacing", rules::DEFAULT_PACING, |f, d| pacing(f, d));
    let periods = s.opt(d, "periods", Vec::new(), |f, d| {
        periods(f, d, cap, production, buffer, class)
    });
    let predictive = s.opt(d, "predictive", None, |f, d| predictive(f, d).map(Some));
    let policy = Policy {
        cap: cap?,
        buffer: buffer?,
        production: production?,
        periods: periods?,
        pacing: pacing?,
        on_logout: on_logout?,
        on_shutoff: on_shutoff?,
        ready_secs: ready_secs?,
        scale_down_delay_secs: scale_down_delay_secs?,
        predictive: predictive?,
    };
    // The checks above placed each problem at its key; the policy they let through must also
    // pass the one check the editor and the engine's set_policy apply, so no entry point
    // accepts what another refuses. Anything found here is reported at the policy table.
    let problems = policy.problems();
    for (field, why) in &problems {
        d.error(s.span(), format!("{}.{field}: {why}", s.path()));
    }
    problems.is_empty().then_some(policy)
}

fn production(f: &Field, d: &mut Diag, cap: Option<u32>) -> Option<u32> {
    let value: u32 = f.ranged(d, rules::PRODUCTION)?;
    if let Some(why) = cap.and_then(|cap| rules::production_problem(value, cap)) {
        f.error(d, why);
        return None;
    }
    Some(value)
}

/// A buffer rule; the ceiling defaults to the cap, and must lie between the floor and the cap.
fn buffer(d: &mut Diag, s: &Section, cap: Option<u32>) -> Option<BufferRule> {
    s.check_keys(d, BUFFER_KEYS);
    let floor: Option<u32> = s.opt(d, "floor", rules::DEFAULT_FLOOR, |f, d| {
        f.ranged(d, rules::BUFFER_FLOOR)
    });
    let percent: Option<u32> = s.opt(d, "percent", rules::DEFAULT_PERCENT, |f, d| {
        f.ranged(d, rules::BUFFER_PERCENT)
    });
    let ceiling_field = s.field("ceiling");
    let ceiling: Option<u32> = match &ceiling_field {
        Some(f) => f.ranged(d, rules::BUFFER_CEILING),
        None => cap,
    };
    let (floor, percent, ceiling) = (floor?, percent?, ceiling?);
    let mut ok = true;
    if let (Some(cap), Some(f)) = (cap, &ceiling_field)
        && let Some(why) = rules::ceiling_problem(ceiling, cap)
    {
        d.error(f.span(), format!("{}: {why}", s.path()));
        ok = false;
    }
    if let Some(why) = rules::floor_problem(floor, ceiling, ceiling_field.is_none()) {
        let at = s.field("floor").and_then(|f| f.span()).or_else(|| s.span());
        d.error(at, format!("{}: {why}", s.path()));
        ok = false;
    }
    ok.then_some(BufferRule {
        floor,
        percent,
        ceiling,
    })
}

/// `predictive = { service_level = 0.99 }`.
fn predictive(f: &Field, d: &mut Diag) -> Option<Predictive> {
    let s = f.table(d)?;
    s.check_keys(d, PREDICTIVE_KEYS);
    let service_level = s.req(d, "service_level", |f, d| {
        f.float(d, rules::SERVICE_LEVEL_MIN, rules::SERVICE_LEVEL_MAX)
    });
    Some(Predictive {
        service_level: service_level?,
    })
}

fn logout_action(f: &Field, d: &mut Diag) -> Option<LogoutAction> {
    let text = f.str(d)?;
    for action in [LogoutAction::Recycle, LogoutAction::Delete] {
        if text == rules::logout_name(action) {
            return Some(action);
        }
    }
    f.error(
        d,
        format!("unknown action {text:?}; expected \"recycle\" or \"delete\""),
    );
    None
}

fn shutoff_action(f: &Field, d: &mut Diag) -> Option<ShutoffAction> {
    let text = f.str(d)?;
    for action in [ShutoffAction::Restart, ShutoffAction::Recycle] {
        if text == rules::shutoff_name(action) {
            return Some(action);
        }
    }
    f.error(
        d,
        format!(
            "unknown action {}; expected \"restart\" or \"recycle\"",
            quoted(text)
        ),
    );
    None
}

fn pacing(f: &Field, d: &mut Diag) -> Option<Pacing> {
    let s = f.table(d)?;
    s.check_keys(d, PACING_KEYS);
    let def = rules::DEFAULT_PACING;
    let clones_per_host = s.opt(d, "clones_per_host", def.clones_per_host, |f, d| {
        f.ranged(d, rules::PACING)
    });
    let boots_per_host = s.opt(d, "boots_per_host", def.boots_per_host, |f, d| {
        f.ranged(d, rules::PACING)
    });
    Some(Pacing {
        clones_per_host: clones_per_host?,
        boots_per_host: boots_per_host?,
    })
}

/// The periods of a class; what a period leaves out (production, buffer) it takes from the
/// class's policy. Periods must not overlap.
fn periods(
    f: &Field,
    d: &mut Diag,
    cap: Option<u32>,
    production: Option<u32>,
    buffer: Option<BufferRule>,
    class: Option<&str>,
) -> Option<Vec<Period>> {
    let sections = f.tables(d)?;
    let parsed: Vec<Option<Period>> = sections
        .iter()
        .map(|s| period(d, s, cap, production, buffer))
        .collect();
    let of = class.map_or_else(
        || " of this class".to_string(),
        |c| format!(" of class {c:?}"),
    );
    let refs: Vec<Option<&Period>> = parsed.iter().map(Option::as_ref).collect();
    let overlaps = rules::overlapping_pairs(&refs);
    for &(i, j) in &overlaps {
        if let (Some(a), Some(b)) = (refs[i], refs[j]) {
            d.error(
                sections[j].span(),
                format!(
                    "{}: {}",
                    sections[j].path(),
                    rules::overlap_message(i, j, a, b, &of)
                ),
            );
        }
    }
    if !overlaps.is_empty() {
        return None;
    }
    parsed.into_iter().collect()
}

fn period(
    d: &mut Diag,
    s: &Section,
    cap: Option<u32>,
    default_production: Option<u32>,
    default_buffer: Option<BufferRule>,
) -> Option<Period> {
    s.check_keys(d, PERIOD_KEYS);
    let days = s.req(d, "days", |f, d| days(f, d));
    let from = s.req(d, "from", |f, d| time(f, d));
    let to = s.req(d, "to", |f, d| time(f, d));
    let production = match s.field("production") {
        Some(f) => production(&f, d, cap),
        None => default_production,
    };
    let buffer = match s.field("buffer") {
        Some(f) => f.table(d).and_then(|b| buffer(d, &b, cap)),
        None => default_buffer,
    };
    Some(Period {
        days: days?,
        from: from?,
        to: to?,
        production: production?,
        buffer: buffer?,
    })
}

fn days(f: &Field, d: &mut Diag) -> Option<Weekdays> {
    let entries = f.array(d)?;
    if entries.is_empty() {
        f.error(d, rules::NO_DAYS);
        return None;
    }
    let mut days = Some(Weekdays::default());
    for entry in &entries {
        let parsed = entry
            .str(d)
            .and_then(|name| match Weekdays::parse_day(name) {
                Ok(w) => Some(w),
                Err(why) => {
                    entry.error(d, why);
                    None
                }
            });
        days = match (days, parsed) {
            (Some(acc), Some(w)) => Some(Weekdays(acc.0 | w.0)),
            _ => None,
        };
    }
    days
}

fn time(f: &Field, d: &mut Diag) -> Option<TimeOfDay> {
    match TimeOfDay::parse(f.str(d)?) {
        Ok(t) => Some(t),
        Err(why) => {
            f.error(d, why);
            None
        }
    }
}
