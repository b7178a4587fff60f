//! The test seed (`scripts/build-test-seed.sh`: a small Debian guest with qemu-guest-agent,
//! booted by direct kernel boot) in a [`World`], and questions to its guest agent through
//! `virsh qemu-agent-command`, as an administrator would ask them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{URI, World, run, virsh};

/// The built test seed: its directory in the cache, with `seed.qcow2`, `vmlinuz`, `initrd.img`
/// and `cmdline`.
pub struct TestSeed {
    pub dir: PathBuf,
    pub cmdline: String,
}

impl TestSeed {
    /// The seed `scripts/build-test-seed.sh` prints: `DESKPOOL_TEST_SEED` when `make test` has
    /// built it already, otherwise the script is run (a cached seed is reused; a first build
    /// takes a few minutes).
    pub fn built() -> TestSeed {
        let dir = match std::env::var("DESKPOOL_TEST_SEED") {
            Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => {
                let script =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-test-seed.sh");
                PathBuf::from(run(script.to_str().unwrap(), &[]).trim())
            }
        };
        let cmdline = std::fs::read_to_string(dir.join("cmdline"))
            .unwrap_or_else(|e| panic!("{} has no cmdline: {e}", dir.display()));
        TestSeed {
            cmdline: cmdline.trim().to_string(),
            dir,
        }
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }

    /// The class keys of a desktop of this seed: its size and its direct kernel boot.
    pub fn class_lines(&self, memory_mib: u32) -> String {
        format!(
            "memory_mib = {memory_mib}\nvcpus = 1\ndisk_gib = 1\nboot = {{ kernel = \"{}\", \
             initrd = \"{}\", cmdline = \"{}\" }}\n",
            self.file("vmlinuz"),
            self.file("initrd.img"),
            self.cmdline
        )
    }
}

impl World {
    /// Makes each class's seed volume a copy of the test seed's disk.
    pub fn use_test_seed(&self, seed: &TestSeed) {
        for c in &self.classes {
            std::fs::copy(seed.dir.join("seed.qcow2"), self.seed_path(c)).unwrap();
        }
        virsh(&["pool-refresh", &self.seed_pool]);
    }
}

/// The guest agent's answer to `command` (a QMP command name, with `arguments` JSON or none)
/// in `domain`, or `None` while the agent does not answer.
pub fn agent(domain: &str, command: &str, arguments: Option<&str>) -> Option<serde_json::Value> {
    let request = match arguments {
        Some(a) => format!("{{\"execute\":\"{command}\",\"arguments\":{a}}}"),
        None => format!("{{\"execute\":\"{command}\"}}"),
    };
    let out = Command::new("virsh")
        .args(["-c", URI, "qemu-agent-command", domain, &request])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    reply.get("return").cloned()
}

/// The hostname the agent of `domain` reports, once it answers.
pub fn agent_hostname(domain: &str) -> Option<String> {
    let reply = agent(domain, "guest-get-host-name", None)?;
    reply["host-name"].as_str().map(str::to_string)
}

/// The guest's `/etc/machine-id`, read through its agent.
pub fn agent_machine_id(domain: &str) -> String {
    let open = agent(
        domain,
        "guest-file-open",
        Some("{\"path\":\"/etc/machine-id\"}"),
    )
    .unwrap_or_else(|| panic!("the agent of {domain} does not open /etc/machine-id"));
    let handle = open.as_i64().expect("a file handle");
    let read = agent(
        domain,
        "guest-file-read",
        Some(&format!("{{\"handle\":{handle}}}")),
    )
    .unwrap_or_else(|| panic!("the agent of {domain} does not read /etc/machine-id"));
    agent(
        domain,
        "guest-file-close",
        Some(&format!("{{\"handle\":{handle}}}")),
    );
    let encoded = read["buf-b64"].as_str().expect("buf-b64 in the read reply");
    decode_base64(encoded).trim().to_string()
}

fn decode_base64(text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("base64 runs (coreutils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until the agent of every domain in `domains` answers with a hostname, for at most
/// `deadline`; returns each domain's hostname and how long after `since` its agent first
/// answered.
pub fn wait_for_agents(
    domains: &[String],
    since: Instant,
    deadline: Duration,
) -> Vec<(String, String, Duration)> {
    let mut answered: Vec<Option<(String, Duration)>> = vec![None; domains.len()];
    let give_up = since + deadline;
    while answered.iter().any(Option::is_none) {
        assert!(
            Instant::now() < give_up,
            "no agent answer within {deadline:?} from {:?}",
            domains
                .iter()
                .zip(&answered)
                .filter(|(_, a)| a.is_none())
                .map(|(d, _)| d)
                .collect::<Vec<_>>()
        );
        for (d, slot) in domains.iter().zip(answered.iter_mut()) {
            if slot.is_none()
                && let Some(name) = agent_hostname(d)
            {
                *slot = Some((name, since.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    domains
        .iter()
        .zip(answered)
        .map(|(d, a)| {
            let (name, after) = a.unwrap();
            (d.clone(), name, after)
        })
        .collect()
}
