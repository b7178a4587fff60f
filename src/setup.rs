//! What every command does first: find the configuration (or build the embedded demo), the state
//! directory, the engine lock and the log file.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use deskpool_config as config;
use deskpool_core::policy::Fleet;
use deskpool_hypervisor::testbed;

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
    // Made private without a log line: logging starts later, and these files hold only the
    // demo's own configuration and seeds (the state directory itself is tightened, and said
    // so, by init_logging).
    private_dir(&hosts_dir).with_context(|| format!("cannot create {}", hosts_dir.display()))?;
    let path = state_dir.join("deskpool.toml");
    if path.exists() {
        private_file(&path).with_context(|| format!("cannot make {} private", path.display()))?;
    } else {
        let tmp = state_dir.join(".deskpool.toml.tmp");
        write_private(&tmp, config::demo_text(&hosts_dir).as_bytes())
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
            .and_then(|()| private_file(&node).map(drop))
            .with_context(|| format!("cannot write the demo host file {}", node.display()))?;
    }
    Ok((fleet, path))
}

/// What deskpool writes in the state directory, besides the socket (born 0600) and the demo's
/// files: user names, login history and admin actions, for the engine's user alone.
pub const STATE_FILES: [&str; 4] = ["deskpool.log", "demand.json", "audit.log", "engine.lock"];

/// Creates `dir` and its missing parents with mode 0700, or makes an existing `dir` 0700 if
/// others may read or enter it. Returns the mode it had when it was tightened. A shared
/// directory (world-writable, like /tmp) is left as it is, with an error: it is not
/// deskpool's to close.
pub fn private_dir(dir: &Path) -> std::io::Result<Option<u32>> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    if mode & 0o1002 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is shared (mode {mode:o}): it is not made private; set engine.state_dir to a directory of deskpool's own",
            dir.display()
        )));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(Some(mode))
}

/// Makes the file at `path` 0600 if others may read it (a symbolic link is left alone: chmod
/// would change its target). Returns the mode it had when it was tightened; a missing file is
/// no error.
pub fn private_file(path: &Path) -> std::io::Result<Option<u32>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_file() || mode & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Some(mode))
}

/// Writes `bytes` to `path` as a file only its owner may read (0600 even if it existed).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

/// Sends tracing output to `STATE_DIR/deskpool.log` (never to the terminal). The guard must
/// live as long as the program. First makes the state directory 0700 and deskpool's files in
/// it 0600 (older versions left them readable by every local account), and logs what it
/// tightened.
pub fn init_logging(
    state_dir: &Path,
    demo: Option<DemoLogClock>,
) -> Result<tracing_appender::non_blocking::WorkerGuard> {
    let mut tightened = Vec::new();
    let mut failed = Vec::new();
    match private_dir(state_dir) {
        Ok(Some(mode)) => tightened.push((state_dir.to_path_buf(), mode, 0o700)),
        Ok(None) => {}
        // Not ours to change (shared, or another owner): the engine runs, the log says why.
        Err(e) if state_dir.is_dir() => failed.push(e.to_string()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create {}", state_dir.display()));
        }
    }
    for name in STATE_FILES {
        let path = state_dir.join(name);
        match private_file(&path) {
            Ok(Some(mode)) => tightened.push((path, mode, 0o600)),
            Ok(None) => {}
            Err(e) => failed.push(format!("{}: {e}", path.display())),
        }
    }
    let log = state_dir.join("deskpool.log");
    // Created private here: the appender would create it 0644.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let file = tracing_appender::rolling::never(state_dir, "deskpool.log");
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("DESKPOOL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .with_timer(LogTime { demo })
        .try_init();
    for (path, from, to) in tightened {
        tracing::warn!(
            "made {} private (mode {from:o} -> {to:o}): an older deskpool left it readable by other local accounts",
            path.display()
        );
    }
    for why in failed {
        tracing::warn!("state directory not private: {why}");
    }
    Ok(guard)
}

/// The demo's clock, for the log: the console shows the demo's time, so each log line says
/// it beside the real one.
pub struct DemoLogClock {
    pub clock: std::sync::Arc<deskpool_core::clock::ScaledClock>,
    pub timezone: jiff::tz::TimeZone,
}

/// The time at the start of each log line.
struct LogTime {
    demo: Option<DemoLogClock>,
}

impl tracing_subscriber::fmt::time::FormatTime for LogTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        use deskpool_core::clock::Clock;
        let demo = self.demo.as_ref().map(|d| (d.clock.now(), &d.timezone));
        w.write_str(&log_time(jiff::Timestamp::now(), demo))
    }
}

/// "2026-12-03T08:28:18.535364Z", then in a demo "demo Wed 08:14:05 UTC".
fn log_time(real: jiff::Timestamp, demo: Option<(jiff::Timestamp, &jiff::tz::TimeZone)>) -> String {
    let mut text = real.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    if let Some((at, tz)) = demo {
        text.push_str(" demo ");
        text.push_str(
            &at.to_zoned(tz.clone())
                .strftime("%a %H:%M:%S %Z")
                .to_string(),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_demo_log_line_gives_the_demo_time_beside_the_real_one() {
        let real: jiff::Timestamp = "2026-12-03T08:28:18.535364Z".parse().unwrap();
        let demo: jiff::Timestamp = "2026-01-07T08:14:05Z".parse().unwrap();
        let tz = jiff::tz::TimeZone::UTC;
        assert_eq!(log_time(real, None), "2026-12-03T08:28:18.535364Z");
        assert_eq!(
            log_time(real, Some((demo, &tz))),
            "2026-12-03T08:28:18.535364Z demo Wed 08:14:05 UTC"
        );
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn directories_and_files_are_made_private_and_shared_directories_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        assert_eq!(private_dir(&dir).unwrap(), None, "created private");
        assert_eq!((mode(&root.path().join("a")), mode(&dir)), (0o700, 0o700));

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(private_dir(&dir).unwrap(), Some(0o755));
        assert_eq!(mode(&dir), 0o700);

        let file = dir.join("demand.json");
        assert_eq!(private_file(&file).unwrap(), None, "missing is fine");
        std::fs::write(&file, "{}").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(private_file(&file).unwrap(), Some(0o644));
        assert_eq!(mode(&file), 0o600);
        assert_eq!(private_file(&file).unwrap(), None, "already private");

        // A symbolic link is not followed: its target is not deskpool's.
        let outside = root.path().join("outside");
        std::fs::write(&outside, "").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("audit.log")).unwrap();
        assert_eq!(private_file(&dir.join("audit.log")).unwrap(), None);
        assert_eq!(mode(&outside), 0o644);

        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = private_dir(&shared).unwrap_err().to_string();
        assert!(err.contains("shared"), "{err}");
        assert_eq!(mode(&shared), 0o1777);

        let written = dir.join("x.tmp");
        std::fs::write(&written, "old").unwrap();
        std::fs::set_permissions(&written, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&written, b"new").unwrap();
        assert_eq!(mode(&written), 0o600);
        assert_eq!(std::fs::read_to_string(&written).unwrap(), "new");
    }
}
