//! Two controllers and one leader on a real libvirt daemon (`qemu:///system`): two `deskpool
//! serve` processes with the same hosts and an `[ha]` section, electing through a private etcd
//! (Debian's etcd-server on loopback ports). Checked from outside with `virsh`:
//!
//! - the leader killed with `kill -9` while it provisions: the follower leads within the lease's
//!   TTL and a pass, finishes the buffer, nothing is made twice or leaked, an assignment made
//!   before the kill is kept, and a login sent to the follower meanwhile is answered (a desktop,
//!   or a 503 naming the election, then a desktop);
//! - etcd stopped: the leader stops acting and says why, both controllers keep showing the fleet,
//!   and it acts again once etcd is back;
//! - the leader paused (SIGSTOP) past its lease while the other takes over, then continued
//!   (SIGCONT): it acts on nothing; what it made carries its older term.
//!
//! Each prints what it measured (`takeover:` lines). Runs only with `DESKPOOL_QEMU=1`, holding
//! the real-host lock (`World::new`).

mod common;
mod qemu_world;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use deskpool_core::model::PoolState;
use deskpool_ha::local_etcd::LocalEtcd;
use qemu_world::crash::broker_call;
use qemu_world::{QEMU_DEADLINE, World, count_in, enabled, virsh, virsh_quiet};
use serde_json::{Value, json};

/// The lease's TTL: short, so that a takeover is quick to test (etcd takes leases of 2 s and
/// more); `DESKPOOL_HA_TTL_SECS` sets another (15 to measure with the default).
fn ttl_secs() -> u64 {
    match std::env::var("DESKPOOL_HA_TTL_SECS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("DESKPOOL_HA_TTL_SECS={v:?} is not a number")),
        Err(_) => 3,
    }
}
const BUFFER: u32 = 5;
/// One clone and one boot at a time: the buffer takes a few seconds to build, so a kill lands
/// in the middle of it.
const PACING: &str = "pacing = { clones_per_host = 1, boots_per_host = 1 }";

/// One controller of the test: its config (its own state directory and socket) and process.
struct Controller {
    name: &'static str,
    config: PathBuf,
    socket: PathBuf,
    child: Option<usize>,
}

/// Writes the world's config for `name`: the shared hosts and classes, its own state directory,
/// and the `[ha]` section of the election in `etcd`.
fn controller(world: &World, etcd: &LocalEtcd, election: &str, name: &'static str) -> Controller {
    let base = std::fs::read_to_string(world.config_path()).unwrap();
    let shared_state = world.dir.path().join("state");
    let state = world.dir.path().join(format!("state-{name}"));
    let mut text = base.replace(
        &format!("state_dir = \"{}\"", shared_state.display()),
        &format!("state_dir = \"{}\"", state.display()),
    );
    assert_ne!(text, base, "the state_dir line is replaced");
    text.push_str(&format!(
        "\n[ha]\netcd = [\"{}\"]\nname = \"{name}\"\nelection = \"{election}\"\nlease_ttl_secs = {}\n",
        etcd.endpoint(),
        ttl_secs()
    ));
    let config = world.dir.path().join(format!("{name}.toml"));
    std::fs::write(&config, text).unwrap();
    Controller {
        name,
        config,
        socket: state.join("deskpool.sock"),
        child: None,
    }
}

struct Bed {
    world: World,
    etcd: LocalEtcd,
    a: Controller,
    b: Controller,
    class: String,
    runtime: tokio::runtime::Runtime,
}

impl Bed {
    /// `a` leads with its buffer full, `b` follows it.
    fn new() -> Bed {
        let world = World::new(&["ha"]);
        world.write_config(&[BUFFER], PACING);
        let etcd = LocalEtcd::start().expect("a local etcd starts (etcd-server installed?)");
        let election = format!("deskpool-{}", world.creation_pool);
        let a = controller(&world, &etcd, &election, "a");
        let b = controller(&world, &etcd, &election, "b");
        let class = world.classes[0].clone();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mut bed = Bed {
            world,
            etcd,
            a,
            b,
            class,
            runtime,
        };
        bed.start_a();
        bed.wait(&bed.a, "a leads", |s| role(s) == "leader");
        bed.start_b();
        bed.wait(&bed.b, "b follows a", |s| {
            role(s) == "follower" && s["leadership"]["leader"]["name"] == "a"
        });
        // What an admin reads on either machine.
        for (c, says) in [
            (&bed.a, "controller a leads (term "),
            (&bed.b, "controller b is a follower: the leader is a (term "),
        ] {
            let out = bed
                .world
                .deskpool_at(&c.config, &["ctl", "status"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains(says),
                "ctl status of {}: {text}",
                c.name
            );
        }
        bed
    }

    fn start_a(&mut self) {
        let config = self.a.config.clone();
        self.a.child = Some(self.world.serve_at(&config));
    }

    fn start_b(&mut self) {
        let config = self.b.config.clone();
        self.b.child = Some(self.world.serve_at(&config));
    }

    fn pid(&self, c: &Controller) -> i32 {
        self.world.children[c.child.expect("started")].id() as i32
    }

    fn status(&self, c: &Controller) -> Option<Value> {
        let answer = self.call(c, "GET", "/v1/status", None, Duration::from_secs(5));
        match answer {
            Ok((200, v)) => Some(v),
            _ => None,
        }
    }

    fn call(
        &self,
        c: &Controller,
        method: &str,
        target: &str,
        body: Option<Value>,
        limit: Duration,
    ) -> Result<(u16, Value), String> {
        self.runtime
            .block_on(broker_call(&c.socket, method, target, body, limit))
    }

    /// Polls `c`'s status until `ok` holds, for at most [`QEMU_DEADLINE`]; returns it.
    fn wait(&self, c: &Controller, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + QEMU_DEADLINE;
        loop {
            let status = self.status(c);
            if let Some(s) = status.as_ref().filter(|s| ok(s)) {
                return s.clone();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}; {}'s last status: {status:?}",
                c.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `c` holds the full buffer with nothing under way.
    fn settled(&self, c: &Controller) -> Value {
        let class = self.class.clone();
        self.wait(c, "the buffer is full and nothing is under way", move |s| {
            let line = class_line(s, &class);
            line["buffer"] == BUFFER && line["creation"] == 0 && s["jobs_in_flight"] == 0
        })
    }

    /// Waits until `c` settled and the host shows it from outside: every desktop running,
    /// one disk volume per desktop (a controller's view lags the host by up to a resync).
    fn settled_on_host(&self, c: &Controller) {
        let deadline = Instant::now() + QEMU_DEADLINE;
        loop {
            self.settled(c);
            let all = self.world.domains(true);
            let running = self.world.domains(false);
            let (disks, want) = self.world.disks_against(&all);
            if all == running && disks == want && all.len() >= BUFFER as usize {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the host never settled: domains {all:?}, running {running:?}, disks {disks:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn assign(&self, c: &Controller, user: &str) -> Result<(u16, Value), String> {
        let body = json!({"class": self.class, "user": user, "wait_secs": 30});
        self.call(c, "POST", "/v1/assign", Some(body), Duration::from_secs(60))
    }

    /// What the host holds once the leader settled: every desktop labelled, running and with its
    /// disk; exactly the buffer plus one desktop per user in `users`, nobody holding two.
    fn assert_exactly(&self, users: &[&str]) -> Vec<(String, deskpool_core::model::DesktopMeta)> {
        let desktops = self.world.assert_clean();
        assert_eq!(
            count_in(&desktops, &self.class, PoolState::Buffer),
            BUFFER as usize,
            "the buffer, no more: {desktops:?}"
        );
        let mut holders: Vec<&str> = desktops
            .iter()
            .filter(|(_, m)| m.pool == PoolState::Production)
            .filter_map(|(_, m)| m.user.as_deref())
            .collect();
        holders.sort();
        let mut want = users.to_vec();
        want.sort();
        assert_eq!(holders, want, "one desktop per user: {desktops:?}");
        desktops
    }
}

fn role(s: &Value) -> &str {
    s["leadership"]["role"].as_str().unwrap_or_default()
}

fn term(s: &Value) -> u64 {
    s["leadership"]["term"].as_u64().unwrap_or_default()
}

fn class_line<'a>(s: &'a Value, class: &str) -> &'a Value {
    s["classes"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == class))
        .unwrap_or(&Value::Null)
}

fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: signalling a child process this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

#[test]
fn the_follower_takes_over_from_a_leader_killed_mid_provisioning() {
    if !enabled("the_follower_takes_over_from_a_leader_killed_mid_provisioning") {
        return;
    }
    let bed = Bed::new();
    let class = bed.class.clone();
    bed.wait(&bed.a, "a has a desktop ready", |s| {
        class_line(s, &class)["buffer"].as_u64() >= Some(1)
    });
    let (code, answer) = bed.assign(&bed.a, "alice").unwrap();
    assert_eq!(code, 200, "{answer}");
    let alices = answer["desktop"].as_str().unwrap().to_string();
    // Alice's desktop left the buffer: a builds one more (besides any of the first fill).
    let before = bed.wait(&bed.a, "a provisions", |s| {
        s["jobs_in_flight"].as_u64() > Some(0)
    });
    let old_term = term(&before);

    signal(bed.pid(&bed.a), libc::SIGKILL);
    let killed = Instant::now();
    let killed_wall = wall_now();

    // A login sent to the follower during the change: a desktop, or a clear retry first.
    let first = bed.assign(&bed.b, "bob").unwrap();
    let mut retries = 0;
    let bobs = match first {
        (200, v) => v["desktop"].as_str().unwrap().to_string(),
        (503, v) => {
            assert_eq!(v["kind"], "not_leader", "{v}");
            let why = v["error"].as_str().unwrap_or_default();
            assert!(
                why.contains("leader is a") || why.contains("election") || why.contains("lead"),
                "the refusal says where the leader is or that one is being elected: {why}"
            );
            loop {
                retries += 1;
                match bed.assign(&bed.b, "bob").unwrap() {
                    (200, v) => break v["desktop"].as_str().unwrap().to_string(),
                    (503, v) if v["kind"] == "not_leader" => {
                        assert!(killed.elapsed() < QEMU_DEADLINE, "b never led: {v}");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    other => panic!("bob's retry got {other:?}"),
                }
            }
        }
        other => panic!("bob's login got {other:?}"),
    };
    let led = bed.wait(&bed.b, "b leads", |s| role(s) == "leader");
    let takeover = killed.elapsed();
    let new_term = term(&led);
    assert!(new_term > old_term, "a new term: {new_term} > {old_term}");
    bed.settled_on_host(&bed.b);
    let desktops = bed.assert_exactly(&["alice", "bob"]);
    let first_made = desktops
        .iter()
        .filter(|(_, m)| m.term == new_term)
        .map(|(_, m)| m.created_at)
        .min();
    println!(
        "takeover: kill -9 of the leader to the follower leading: {:.2} s (lease TTL {} s); \
         bob's login retried {retries} times; first desktop of term {new_term} made {:?} s after the kill",
        takeover.as_secs_f64(),
        ttl_secs(),
        first_made.map(|t| t - killed_wall)
    );
    // The election hands over when the dead leader's lease runs out: its TTL, plus a pass and
    // a margin for a loaded machine.
    assert!(
        takeover < Duration::from_secs(ttl_secs() + 10),
        "the takeover took {takeover:?}"
    );
    let alice = desktops.iter().find(|(d, _)| *d == alices).unwrap();
    assert_eq!(
        alice.1.user.as_deref(),
        Some("alice"),
        "alice's desktop is kept"
    );
    assert!(desktops.iter().any(|(d, _)| *d == bobs));
    assert!(
        desktops.iter().any(|(_, m)| m.term == new_term),
        "the new leader made desktops under its term: {desktops:?}"
    );
    // Alice asking again gets the same desktop from the new leader.
    let (code, again) = bed.assign(&bed.b, "alice").unwrap();
    assert_eq!(
        (code, again["desktop"].as_str()),
        (200, Some(alices.as_str()))
    );
}

#[test]
fn a_leader_that_cannot_reach_etcd_stops_acting_and_says_why() {
    if !enabled("a_leader_that_cannot_reach_etcd_stops_acting_and_says_why") {
        return;
    }
    let mut bed = Bed::new();
    bed.settled(&bed.a);

    bed.etcd.stop();
    let stopped = Instant::now();
    let lost = bed.wait(&bed.a, "a no longer leads", |s| role(s) == "lost");
    let why = lost["leadership"]["why"].as_str().unwrap_or_default();
    assert!(why.contains("etcd"), "a says why: {why}");
    println!(
        "takeover: etcd stopped to the leader standing down: {:.2} s",
        stopped.elapsed().as_secs_f64()
    );
    // A desktop of the buffer stops while nobody may act: it stays stopped.
    let victim = bed.world.domains(false)[0].clone();
    virsh(&["destroy", &victim]);
    let class = bed.class.clone();
    let seen = bed.wait(&bed.a, "a sees the buffer short", |s| {
        class_line(s, &class)["buffer"].as_u64() < Some(BUFFER as u64)
    });
    let passes = seen["passes"].as_u64().unwrap();
    // Consoles keep showing the fleet on both: three more passes of a, and b's view of it.
    bed.wait(&bed.a, "a passes three more times", |s| {
        s["passes"].as_u64() >= Some(passes + 3)
    });
    bed.wait(&bed.b, "b shows the fleet", |s| {
        class_line(s, &class)["buffer"].as_u64() < Some(BUFFER as u64)
    });
    let state = virsh(&["domstate", &victim]);
    assert!(
        state.trim() == "shut off",
        "nobody acted on {victim}: {state}"
    );
    let (code, refusal) = bed.assign(&bed.a, "carol").unwrap();
    assert_eq!((code, refusal["kind"].as_str()), (503, Some("not_leader")));

    bed.etcd.resume().unwrap();
    let class = bed.class.clone();
    let leader = loop {
        let a = bed.status(&bed.a).filter(|s| role(s) == "leader");
        let b = bed.status(&bed.b).filter(|s| role(s) == "leader");
        if a.is_some() {
            break &bed.a;
        }
        if b.is_some() {
            break &bed.b;
        }
        assert!(stopped.elapsed() < QEMU_DEADLINE, "nobody leads again");
        std::thread::sleep(Duration::from_millis(100));
    };
    bed.wait(leader, "the buffer is whole again", |s| {
        class_line(s, &class)["buffer"] == BUFFER && s["jobs_in_flight"] == 0
    });
    bed.settled_on_host(leader);
    bed.assert_exactly(&[]);
}

#[test]
fn a_leader_paused_past_its_lease_acts_on_nothing_when_it_continues() {
    if !enabled("a_leader_paused_past_its_lease_acts_on_nothing_when_it_continues") {
        return;
    }
    let bed = Bed::new();
    let settled = bed.settled(&bed.a);
    let old_term = term(&settled);

    let before: Vec<String> = bed.world.domains(true);
    let a = bed.pid(&bed.a);
    signal(a, libc::SIGSTOP);
    let paused = Instant::now();
    let led = bed.wait(&bed.b, "b leads", |s| role(s) == "leader");
    let new_term = term(&led);
    assert!(new_term > old_term);
    println!(
        "takeover: leader paused (SIGSTOP) to the follower leading: {:.2} s",
        paused.elapsed().as_secs_f64()
    );
    // While a sleeps, b replaces a desktop of the buffer: a's view is now out of date.
    let victim = bed.world.domains(false)[0].clone();
    virsh(&["destroy", &victim]);
    virsh_quiet(&["undefine", &victim]);
    // Before the pause a made every desktop: one of b's term is the replacement.
    bed.world.poll("b replaces the desktop", || {
        bed.world
            .domains(true)
            .iter()
            .any(|d| bed.world.meta(d).term == new_term)
    });
    bed.settled_on_host(&bed.b);

    signal(a, libc::SIGCONT);
    bed.wait(&bed.a, "a follows b", |s| {
        role(s) == "follower" && s["leadership"]["leader"]["name"] == "b"
    });
    bed.settled_on_host(&bed.b);
    let desktops = bed.assert_exactly(&[]);
    let late: Vec<_> = desktops
        .iter()
        .filter(|(d, m)| m.term == old_term && !before.contains(d))
        .collect();
    assert!(late.is_empty(), "a made desktops after its pause: {late:?}");
    assert!(
        desktops.iter().any(|(_, m)| m.term == new_term),
        "b replaced the desktop under its term: {desktops:?}"
    );
}
