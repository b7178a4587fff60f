//! Builds the policy model ([`Fleet`]) from a parsed document, checking every rule of the file
//! format and recording every mistake found. One file per part of the format:
//!
//! - [`settings`] — `[engine]` and `[console]`
//! - [`broker`] — `[broker]`: the socket, the network endpoint, its TLS files and tokens
//! - [`ha`] — `[ha]`: the etcd endpoints, this controller's name, the lease
//! - [`hosts`] — `[[hosts]]`: URIs (and their uniqueness), capacity, pool paths, commands
//! - [`classes`] — `[[classes]]`: names, seeds, domain templates
//! - [`policy`] — `[classes.policy]`: buffer rules, pacing, periods, predictive buffers
//! - [`calendar`] — `[[classes.policy.events]]` and `[engine] holidays`

mod broker;
mod calendar;
mod classes;
mod ha;
mod hosts;
mod policy;
mod settings;

use std::collections::HashMap;
use std::path::Path;

use toml_edit::Table;

use super::error::{Diag, Span};
use super::reader::Section;
use deskpool_core::policy::{
    BrokerSettings, ClassSpec, ConsoleSettings, EngineSettings, Fleet, HostSpec,
};

#[cfg(test)]
pub(super) use {classes::template_problem, hosts::canonical_uri};

const TOP_KEYS: &[&str] = &["engine", "console", "broker", "ha", "hosts", "classes"];

/// The fleet described by `root`, or `None` when any error was recorded in `diag`.
/// Relative paths in the file (templates, `state_dir`) are resolved against `base_dir`.
pub(super) fn build(root: &Table, diag: &mut Diag, base_dir: &Path) -> Option<Fleet> {
    let root = Section::root(root);
    root.check_keys(diag, TOP_KEYS);

    let engine = root.opt(diag, "engine", EngineSettings::default(), |f, d| {
        let section = f.table(d)?;
        settings::engine(d, &section, base_dir)
    });

    let console = root.opt(diag, "console", ConsoleSettings::default(), |f, d| {
        let section = f.table(d)?;
        section.check_keys(d, settings::CONSOLE_KEYS);
        let theme = section.opt(d, "theme", None, |f, d| {
            settings::theme(f, d, base_dir).map(Some)
        });
        Some(ConsoleSettings { theme: theme? })
    });

    let broker = root.opt(diag, "broker", BrokerSettings::default(), |f, d| {
        let section = f.table(d)?;
        broker::broker(d, &section, base_dir)
    });

    let ha = root.opt(diag, "ha", None, |f, d| {
        let section = f.table(d)?;
        ha::ha(d, &section).map(Some)
    });

    let host_sections = entries(diag, &root, "hosts", "host");
    check_unique(diag, &host_sections, "host");
    hosts::check_unique_uris(diag, &host_sections);
    let hosts: Vec<Option<HostSpec>> = host_sections.iter().map(|s| hosts::host(diag, s)).collect();
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
        .map(|s| classes::class(diag, s, &host_names, base_dir))
        .collect();

    if diag.has_errors() {
        return None;
    }
    Some(Fleet {
        ha: ha?,
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
