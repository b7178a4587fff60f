//! What every command does first: find the configuration (or build the embedded demo), the state
//! directory, the engine lock and the log file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config;
use crate::hypervisor::testbed;
use crate::policy::Fleet;

/// Where the fleet description came from.
pub enum Source {
    File(PathBuf),
    /// No config file anywhere: the embedded demo on libvirt's test driver, whose configuration
    /// is written once to this file (so that policy edits made in the console persist).
    Demo(PathBuf),
}

impl Source {
    /// The file policies are saved to.
    pub fn path(&self) -> &Path {
        match self {
            Source::File(p) | Source::Demo(p) => p,
        }
    }
    /// How the console's title names it.
    pub fn label(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Demo(_) => "demo (test driver)".into(),
        }
    }
}

pub struct Loaded {
    pub fleet: Fleet,
    pub source: Source,
    pub state_dir: PathBuf,
}

/// The XDG state directory for deskpool: `$XDG_STATE_HOME/deskpool`, else `~/.local/state/deskpool`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("deskpool");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib"));
    home.join(".local/state/deskpool")
}

/// Loads `--config`, else the default config file if it exists, else the embedded demo (whose
/// test-driver host files are written under the state directory).
pub fn load(explicit: Option<&Path>) -> Result<Loaded> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => config::default_config_path().filter(|p| p.exists()),
    };
    match path {
        Some(path) => {
            let fleet = config::load_file(&path)?;
            let state_dir = fleet
                .engine
                .state_dir
                .clone()
                .unwrap_or_else(default_state_dir);
            Ok(Loaded {
                fleet,
                source: Source::File(path),
                state_dir,
            })
        }
        None => {
            let state_dir = default_state_dir().join("demo");
            let (fleet, path) = demo_fleet(&state_dir)?;
            Ok(Loaded {
                fleet,
                source: Source::Demo(path),
                state_dir,
            })
        }
    }
}

/// The embedded demo: its config file (written on first use, then kept with any edits), and one
/// test-driver node file per host holding the seeds.
pub fn demo_fleet(state_dir: &Path) -> Result<(Fleet, PathBuf)> {
    let hosts_dir = state_dir.join("hosts");
    std::fs::create_dir_all(&hosts_dir)
        .with_context(|| format!("cannot create {}", hosts_dir.display()))?;
    let path = state_dir.join("deskpool.toml");
    if !path.exists() {
        let tmp = state_dir.join(".deskpool.toml.tmp");
        std::fs::write(&tmp, config::demo_text(&hosts_dir))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .with_context(|| format!("cannot write the demo configuration {}", path.display()))?;
    }
    let fleet = config::load_file(&path)?;
    let seeds: Vec<(String, String, u64)> = fleet
        .classes
        .iter()
        .map(|c| (c.seed.pool.clone(), c.seed.volume.clone(), c.disk_gib << 30))
        .collect();
    for host in &fleet.hosts {
        let node = hosts_dir.join(format!("{}.xml", host.name));
        let seeds: Vec<(&str, &str, u64)> = seeds
            .iter()
            .map(|(p, v, c)| (p.as_str(), v.as_str(), *c))
            .collect();
        testbed::write_demo_node(&node, &seeds)
            .with_context(|| format!("cannot write the demo host file {}", node.display()))?;
    }
    Ok((fleet, path))
}

/// Sends tracing output to `STATE_DIR/deskpool.log` (never to the terminal). The guard must
/// live as long as the program.
pub fn init_logging(state_dir: &Path) -> Result<tracing_appender::non_blocking::WorkerGuard> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let file = tracing_appender::rolling::never(state_dir, "deskpool.log");
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("DESKPOOL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Ok(guard)
}
