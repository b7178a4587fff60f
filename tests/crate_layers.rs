//! The workspace's crate boundaries are its architecture: this test fails when a crate gains a
//! dependency its layer forbids (README, "Crates and what they may import").

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each workspace crate and the workspace crates it may depend on (normal and dev dependencies).
/// The binary `deskpool` assembles everything and may depend on all of them.
const ALLOWED: &[(&str, &[&str])] = &[
    ("deskpool-core", &[]),
    ("deskpool-config", &["deskpool-core"]),
    ("deskpool-hypervisor", &["deskpool-core"]),
    ("deskpool-api", &["deskpool-core"]),
    (
        "deskpool-engine",
        &[
            "deskpool-core",
            "deskpool-config",
            "deskpool-hypervisor",
            "deskpool-api",
        ],
    ),
    ("deskpool-broker", &["deskpool-core", "deskpool-api"]),
    ("deskpool-sim", &["deskpool-core", "deskpool-config"]),
    ("deskpool-ha", &["deskpool-core"]),
    (
        "deskpool-tui",
        &[
            "deskpool-core",
            "deskpool-config",
            "deskpool-api",
            "deskpool-broker",
        ],
    ),
];

/// The only library crate that may link libvirt (the binary and its tests link it through it).
const LIBVIRT_CRATE: &str = "deskpool-hypervisor";

struct Package {
    /// Workspace crates it depends on.
    internal: BTreeSet<String>,
    /// Crates from elsewhere it depends on.
    external: BTreeSet<String>,
}

fn workspace() -> BTreeMap<String, Package> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let names: BTreeSet<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let mut internal = BTreeSet::new();
            let mut external = BTreeSet::new();
            for d in p["dependencies"].as_array().unwrap() {
                let name = d["name"].as_str().unwrap().to_string();
                if names.contains(&name) {
                    internal.insert(name);
                } else {
                    external.insert(name);
                }
            }
            (
                p["name"].as_str().unwrap().to_string(),
                Package { internal, external },
            )
        })
        .collect()
}

/// Every crate `name` pulls in from elsewhere, through the workspace crates it depends on.
fn external_closure(packages: &BTreeMap<String, Package>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    let mut external = BTreeSet::new();
    while let Some(next) = todo.pop() {
        if !seen.insert(next.clone()) {
            continue;
        }
        let p = &packages[&next];
        external.extend(p.external.iter().cloned());
        todo.extend(p.internal.iter().cloned());
    }
    external
}

#[test]
fn every_crate_depends_only_on_the_layers_below_it() {
    let packages = workspace();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    for (name, package) in &packages {
        if name == "deskpool" {
            continue;
        }
        let Some(ok) = allowed.get(name.as_str()) else {
            panic!("crate {name} is not in this test's table: give it a layer here and in README");
        };
        let forbidden: Vec<&String> = package
            .internal
            .iter()
            .filter(|d| !ok.contains(&d.as_str()))
            .collect();
        assert!(
            forbidden.is_empty(),
            "{name} depends on {forbidden:?}; its layer allows only {ok:?}"
        );
    }
    assert!(
        packages.len() == ALLOWED.len() + 1,
        "a crate of the table is missing from the workspace"
    );
}

#[test]
fn only_the_hypervisor_crate_links_libvirt() {
    let packages = workspace();
    for name in packages.keys() {
        if name == "deskpool" || name == LIBVIRT_CRATE || name == "deskpool-engine" {
            continue;
        }
        let linked = external_closure(&packages, name);
        assert!(
            !linked.contains("virt"),
            "{name} links libvirt (through {:?})",
            packages[name].internal
        );
    }
    assert!(packages[LIBVIRT_CRATE].external.contains("virt"));
    // The console (and so its view tests) builds without libvirt.
    assert!(!external_closure(&packages, "deskpool-tui").contains("virt"));
}

#[test]
fn the_crates_that_only_decide_do_no_io_of_their_own() {
    // The core is pure: no runtime, no terminal, no libvirt.
    let packages = workspace();
    let core = external_closure(&packages, "deskpool-core");
    for io in ["tokio", "virt", "ratatui", "crossterm", "tracing"] {
        assert!(!core.contains(io), "deskpool-core depends on {io}");
    }
}

#[test]
fn only_the_binary_reports_errors_with_anyhow() {
    // Library crates return typed errors (a caller can match on what went wrong); anyhow is
    // for the binary's edge, where an error is only printed.
    let packages = workspace();
    for (name, package) in &packages {
        if name == "deskpool" {
            continue;
        }
        assert!(
            !package.external.contains("anyhow"),
            "{name} depends on anyhow"
        );
    }
    assert!(packages["deskpool"].external.contains("anyhow"));
}
