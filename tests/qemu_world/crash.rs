//! Helpers of the crash-safety test (`tests/qemu_crash.rs`): a seeded random source, the
//! broker socket spoken to over HTTP, and the host read from outside (`virsh`, `qemu-img`)
//! without panicking, so that one round can report every broken invariant at once.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use deskpool_core::model::{DesktopMeta, METADATA_URI};
use deskpool_hypervisor::parse_meta;

use super::{URI, World};

/// xorshift64*: small and reproducible from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // The state must not be 0 (xorshift stays at 0); any other seed is used as is.
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64 - 1) as usize]
    }
}

/// The crash test's seed: `DESKPOOL_CRASH_SEED` when set (to replay a failure), else the clock.
pub fn crash_seed() -> u64 {
    match std::env::var("DESKPOOL_CRASH_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("DESKPOOL_CRASH_SEED={s:?} is not a number")),
        Err(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            now.as_secs() ^ (u64::from(now.subsec_nanos()) << 20)
        }
    }
}

/// The output of `program args`, or what went wrong.
pub fn try_run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program} does not run: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub fn try_virsh(args: &[&str]) -> Result<String, String> {
    let mut all = vec!["-c", URI];
    all.extend_from_slice(args);
    try_run("virsh", &all)
}

/// deskpool's metadata of `domain` from `virsh dumpxml`, or why there is none.
pub fn try_meta(domain: &str) -> Result<DesktopMeta, String> {
    let xml = try_virsh(&["dumpxml", domain])?;
    if !xml.contains(METADATA_URI) {
        return Err("no deskpool metadata in its XML".into());
    }
    parse_meta(&xml).ok_or_else(|| "unreadable deskpool metadata".into())
}

/// The source files of `domain`'s disk devices (`virsh domblklist --details`; CD-ROMs and
/// devices without a source are left out).
pub fn disks_of(domain: &str) -> Result<Vec<String>, String> {
    let listing = try_virsh(&["domblklist", "--details", domain])?;
    Ok(listing
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("---"))
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[0] == "file" && f[1] == "disk" && f[3] != "-")
                .then(|| f[3].to_string())
        })
        .collect())
}

/// `qemu-img info --backing-chain` of `disk`: Ok when the image and every image it is backed by
/// can be opened (so the desktop's disk is there, and its seed copy too).
pub fn disk_readable(disk: &str) -> Result<(), String> {
    let info = try_run(
        "qemu-img",
        &["info", "-U", "--backing-chain", "--output=json", disk],
    )?;
    let chain: serde_json::Value =
        serde_json::from_str(&info).map_err(|e| format!("qemu-img info of {disk}: {e}"))?;
    match chain.as_array() {
        Some(images) if !images.is_empty() => Ok(()),
        _ => Err(format!("qemu-img info of {disk} lists no image: {info}")),
    }
}

/// Whether `domain` runs now with its disk (and that disk's backing chain) present: Ok, or
/// what is wrong, as seen by `virsh domstate`, `virsh domblklist` and `qemu-img info`.
pub fn running_with_disk(domain: &str) -> Result<(), String> {
    let state = try_virsh(&["domstate", domain])?;
    let state = state.trim();
    if state != "running" {
        return Err(format!("virsh domstate says {state:?}"));
    }
    let disks = disks_of(domain)?;
    if disks.is_empty() {
        return Err("virsh domblklist shows no file-backed disk".into());
    }
    for disk in &disks {
        if !Path::new(disk).exists() {
            return Err(format!("its disk {disk} does not exist"));
        }
        disk_readable(disk)?;
    }
    Ok(())
}

/// One desktop of the world as the outside tools see it.
#[derive(Debug)]
pub struct SeenDesktop {
    pub meta: Result<DesktopMeta, String>,
    pub running: bool,
    /// Problems with its disk (`virsh domblklist` + `qemu-img info`), if any.
    pub disk: Result<(), String>,
}

/// The world's part of the host, read from outside at one moment.
#[derive(Debug)]
pub struct HostView {
    /// Every defined or running `dp-` domain of the world's classes.
    pub desktops: BTreeMap<String, SeenDesktop>,
    /// Every volume of the creation pool.
    pub volumes: Vec<String>,
}

impl World {
    /// Reads the world's desktops (`virsh list`, `dumpxml`, `domblklist`, `qemu-img info`) and
    /// the creation pool's volumes (`virsh vol-list`).
    pub fn look(&self) -> HostView {
        let running = self.domains(false);
        let desktops = self
            .domains(true)
            .into_iter()
            .map(|d| {
                let seen = SeenDesktop {
                    meta: try_meta(&d),
                    running: running.contains(&d),
                    disk: disks_of(&d).and_then(|disks| {
                        if disks.is_empty() {
                            return Err("virsh domblklist shows no file-backed disk".into());
                        }
                        disks.iter().try_for_each(|p| disk_readable(p))
                    }),
                };
                (d, seen)
            })
            .collect();
        HostView {
            desktops,
            volumes: self.volumes(),
        }
    }

    /// The broker socket of `deskpool serve` (the default: in the world's state directory).
    pub fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("state").join("deskpool.sock")
    }
}

/// Half-made seed copies among `volumes`: a `seed-<class>@<version>.img` without its
/// `.complete` marker.
pub fn half_seed_copies(volumes: &[String]) -> Vec<String> {
    volumes
        .iter()
        .filter(|v| v.starts_with("seed-") && v.ends_with(".img"))
        .filter(|v| {
            let marker = format!("{}.complete", v.trim_end_matches(".img"));
            !volumes.contains(&marker)
        })
        .cloned()
        .collect()
}

/// One request to the broker at `socket`: the status and JSON body of its answer, or why no
/// answer came (the engine was killed, the limit passed).
pub async fn broker_call(
    socket: &Path,
    method: &str,
    target: &str,
    body: Option<serde_json::Value>,
    limit: Duration,
) -> Result<(u16, serde_json::Value), String> {
    let answer = deskpool_broker::client::call(socket, method, target, body.as_ref(), limit)
        .await
        .map_err(|e| e.to_string())?;
    let json = serde_json::from_slice(&answer.body).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&answer.body).into_owned())
    });
    Ok((answer.status, json))
}
