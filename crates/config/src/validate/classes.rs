//! `[[classes]]`: class names (short enough for their desktops' names), seeds and domain
//! templates (rendered as the engine renders them before they are accepted).

use std::path::Path;

use super::{policy, quoted, shown};
use crate::error::Diag;
use crate::reader::{Field, Section};
use deskpool_core::policy::{ClassSpec, DirectBoot, SeedSpec};
use deskpool_core::readiness::{self, Readiness, ReadyWhen};

const CLASS_KEYS: &[&str] = &[
    "name",
    "memory_mib",
    "vcpus",
    "disk_gib",
    "template",
    "boot",
    "ready",
    "ready_command",
    "ready_timeout_secs",
    "seed",
    "policy",
];
const SEED_KEYS: &[&str] = &["pool", "volume", "version", "host"];
const BOOT_KEYS: &[&str] = &["kernel", "initrd", "cmdline"];
/// The x86 kernel's limit on its command line (`COMMAND_LINE_SIZE`), terminating NUL included.
const MAX_CMDLINE_LEN: usize = 2047;

/// Placeholders a domain template must contain.
const TEMPLATE_PLACEHOLDERS: &[&str] = &["{name}", "{disk_path}"];

/// Longest class name: desktop names are `dp-<class>-<10 characters>` and must be valid names
/// themselves (at most [`MAX_NAME_LEN`](deskpool_core::policy::names::MAX_NAME_LEN) characters).
const MAX_CLASS_NAME_LEN: usize = deskpool_core::policy::names::MAX_NAME_LEN - "dp--".len() - 10;

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

pub(super) fn class(
    d: &mut Diag,
    s: &Section,
    hosts: &[&str],
    base_dir: &Path,
) -> Option<ClassSpec> {
    s.check_keys(d, CLASS_KEYS);
    let name = s.req(d, "name", class_name);
    let memory_mib = s.req(d, "memory_mib", |f, d| f.int(d, 64, 1_048_576));
    let vcpus = s.req(d, "vcpus", |f, d| f.int(d, 1, 512));
    let disk_gib = s.req(d, "disk_gib", |f, d| f.int(d, 1, 65_536));
    let boot = s.opt(d, "boot", None, |f, d| boot(f, d).map(Some));
    let ready = readiness(d, s);
    let needs_agent = ready.as_ref().is_some_and(Readiness::needs_probe);
    let template = s.opt(d, "template", None, |f, d| {
        let boot = boot.as_ref().and_then(Option::as_ref);
        template(f, d, base_dir, name.as_deref(), boot, needs_agent).map(Some)
    });
    let seed = s.req(d, "seed", |f, d| seed(f, d, hosts));
    let label = s.field("name").and_then(|f| f.peek_str());
    let policy = s.req(d, "policy", |f, d| policy::policy(f, d, label));
    Some(ClassSpec {
        name: name?,
        seed: seed?,
        memory_mib: memory_mib?,
        vcpus: vcpus?,
        disk_gib: disk_gib?,
        template: template?,
        boot: boot?,
        ready: ready?,
        policy: policy?,
    })
}

/// `ready`, `ready_command` and `ready_timeout_secs`: when a booted desktop joins the buffer.
fn readiness(d: &mut Diag, s: &Section) -> Option<Readiness> {
    let defaults = Readiness::default();
    let when = s.opt(d, "ready", defaults.when, |f, d| {
        let text = f.str(d)?;
        let when = ReadyWhen::parse(text);
        if when.is_none() {
            f.error(
                d,
                format!(
                    "unknown readiness {}; expected \"agent\" (the guest agent answers) or \
                     \"running\" (the domain runs)",
                    quoted(text)
                ),
            );
        }
        when
    });
    let command = s.opt(d, "ready_command", None, |f, d| {
        ready_command(f, d).map(Some)
    });
    let (lo, hi) = readiness::READY_TIMEOUT_RANGE;
    let timeout_secs = s.opt(d, "ready_timeout_secs", defaults.timeout_secs, |f, d| {
        f.int(d, lo as i64, hi as i64)
    });
    if let (Some(ReadyWhen::Running), Some(Some(_)), Some(f)) =
        (when, &command, s.field("ready_command"))
    {
        f.error(
            d,
            "ready_command runs through the guest agent; it needs ready = \"agent\"",
        );
        return None;
    }
    Some(Readiness {
        when: when?,
        command: command?,
        timeout_secs: timeout_secs?,
    })
}

/// A command for the guest agent's `guest-exec`: the program, then its arguments; each a
/// non-empty string without control characters.
fn ready_command(f: &Field, d: &mut Diag) -> Option<Vec<String>> {
    let words = f.array(d)?;
    if words.is_empty() {
        f.error(
            d,
            "ready_command is empty; give the program and its arguments, \
             e.g. [\"systemctl\", \"is-system-running\", \"--wait\"]",
        );
        return None;
    }
    if words.len() > readiness::MAX_READY_COMMAND_WORDS {
        f.error(
            d,
            format!(
                "ready_command has {} words; at most {} are allowed",
                words.len(),
                readiness::MAX_READY_COMMAND_WORDS
            ),
        );
        return None;
    }
    let mut out = Vec::with_capacity(words.len());
    let mut ok = true;
    for word in &words {
        let Some(text) = word.str(d) else {
            ok = false;
            continue;
        };
        if text.is_empty() {
            word.error(d, "an empty word in ready_command");
            ok = false;
        } else if text.chars().any(char::is_control) {
            word.error(d, format!("{} contains a control character", quoted(text)));
            ok = false;
        } else {
            out.push(text.to_string());
        }
    }
    ok.then_some(out)
}

/// Reads a domain template file: it must be well-formed XML with a `<domain>` root, hold every
/// placeholder the engine fills in, and make a domain as the engine would (see
/// [`template_problem`]); with `needs_agent` (the class waits for its guest agent) it must
/// also give the guest agent its channel. `class` is the class's name when it is valid.
/// Returns its text.
fn template(
    f: &Field,
    d: &mut Diag,
    base_dir: &Path,
    class: Option<&str>,
    boot: Option<&DirectBoot>,
    needs_agent: bool,
) -> Option<String> {
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
    if let Some(why) = template_problem(&text, class.unwrap_or("class"), boot) {
        f.error(
            d,
            format!("template {shown_path} cannot make a desktop: {why}"),
        );
        return None;
    }
    if needs_agent && !deskpool_core::xml::has_agent_channel(&text) {
        f.error(
            d,
            format!(
                "template {shown_path} has no guest agent channel, which ready = \"agent\" \
                 (the default) asks through: add <channel type='unix'><target type='virtio' \
                 name='{}'/></channel> to its <devices>, or set ready = \"running\"",
                deskpool_core::xml::AGENT_CHANNEL
            ),
        );
        return None;
    }
    Some(text)
}

/// What keeps `template` from making a desktop of `class`, if anything: it is rendered as the
/// engine renders it (sample values for a desktop of that class), and the domain must be named
/// by `{name}` and have a disk whose file is `{disk_path}` (the desktop's own volume). With the
/// class's `boot`, the template must take its kernel (an `<os>` without one of its own).
pub(crate) fn template_problem(
    template: &str,
    class: &str,
    boot: Option<&DirectBoot>,
) -> Option<String> {
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
        boot,
    };
    let meta = DesktopMeta {
        class: class.to_string(),
        pool: PoolState::Creation,
        seed_version: "v1".into(),
        user: None,
        created_at: 0,
        changed_at: 0,
        attempts: 0,
        term: 0,
    };
    let xml = match render_domain_xml(Some(template), &values, &meta) {
        Ok(xml) => xml,
        Err(why) => return Some(why.to_string()),
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

/// `boot = { kernel, initrd, cmdline }`: files on each host (absolute paths, as libvirt opens
/// them there) and the kernel's command line.
fn boot(f: &Field, d: &mut Diag) -> Option<DirectBoot> {
    let s = f.table(d)?;
    s.check_keys(d, BOOT_KEYS);
    let kernel = s.req(d, "kernel", host_file);
    let initrd = s.opt(d, "initrd", None, |f, d| host_file(f, d).map(Some));
    let cmdline = s.opt(d, "cmdline", None, |f, d| cmdline(f, d).map(Some));
    Some(DirectBoot {
        kernel: kernel?,
        initrd: initrd?,
        cmdline: cmdline?,
    })
}

/// A file on the host: an absolute path without `..`, whitespace or control characters.
fn host_file(f: &Field, d: &mut Diag) -> Option<String> {
    let text = f.str(d)?;
    match super::hosts::check_pool_path(text) {
        Ok(()) => Some(text.to_string()),
        Err(why) => {
            f.error(d, why);
            None
        }
    }
}

fn cmdline(f: &Field, d: &mut Diag) -> Option<String> {
    let text = f.str(d)?;
    if let Some(bad) = text.chars().find(|c| c.is_control()) {
        f.error(
            d,
            format!("cmdline contains {bad:?}; control characters are not allowed"),
        );
        return None;
    }
    if text.len() > MAX_CMDLINE_LEN {
        f.error(
            d,
            format!(
                "cmdline is {} bytes long; the kernel takes at most {MAX_CMDLINE_LEN}",
                text.len()
            ),
        );
        return None;
    }
    Some(text.to_string())
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
