//! CPU used by an idle console: the release binary runs in an 80x24 tmux pane on the embedded
//! demo; once every class's buffer is at its target, its CPU time (utime + stime from
//! /proc/PID/stat) is read over a window (60 s by default) and given as a share of one core. For
//! reference, the tmux server's own CPU over the same window is printed beside it.
//!
//! `cargo build --release && cargo run --release --example idle_cpu [-- --secs 60]`

use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()
        .expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process alive");
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn buffers_full(screen: &str) -> bool {
    ["office", "dev", "cad"].iter().all(|class| {
        screen
            .lines()
            .find(|l| l.contains(&format!("{class} ")) && l.contains('/'))
            .map(|row| {
                let pairs: Vec<(String, String)> = row
                    .split_whitespace()
                    .filter_map(|w| w.split_once('/'))
                    .map(|(a, b)| {
                        (
                            a.trim_start_matches(|c: char| !c.is_ascii_digit())
                                .to_string(),
                            b.to_string(),
                        )
                    })
                    .collect();
                pairs.len() >= 2 && pairs[1].0 == pairs[1].1 && pairs[1].1 != "0"
            })
            .unwrap_or(false)
    })
}

fn main() {
    let secs: u64 = std::env::args()
        .skip_while(|a| a != "--secs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let binary = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("deskpool");
    assert!(
        binary.exists(),
        "build the release binary first: cargo build --release"
    );
    let home = std::env::temp_dir().join(format!("deskpool-idle-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let socket = format!("deskpool-idle-{}", std::process::id());
    let h = home.display();
    let script = format!(
        "export HOME={h} XDG_CONFIG_HOME={h}/config XDG_STATE_HOME={h}/state TERM=xterm-256color; exec {}",
        binary.display()
    );
    let ok = Command::new("tmux")
        .args([
            "-L",
            &socket,
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            "sh",
            "-c",
            &script,
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "tmux did not start");
    let start = Instant::now();
    while !buffers_full(&tmux(&socket, &["capture-pane", "-p"])) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "buffers never filled"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = tmux(&socket, &["list-panes", "-F", "#{pane_pid}"])
        .trim()
        .to_string();
    let server = tmux(&socket, &["display-message", "-p", "#{pid}"])
        .trim()
        .to_string();
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let (c0, s0, t0) = (cpu_ticks(&pid), cpu_ticks(&server), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, s1, elapsed) = (
        cpu_ticks(&pid),
        cpu_ticks(&server),
        t0.elapsed().as_secs_f64(),
    );
    tmux(&socket, &["kill-server"]);
    let _ = std::fs::remove_dir_all(&home);
    let share = |a: u64, b: u64| (b - a) as f64 / ticks_per_sec / elapsed * 100.0;
    let console = share(c0, c1);
    println!(
        "idle_cpu: console {:.2}% of one core over {elapsed:.0} s ({} ticks); tmux server {:.2}% (same window)",
        console,
        c1 - c0,
        share(s0, s1)
    );
    println!(
        "RESULT idle: console on the embedded demo, buffers full, {elapsed:.0} s: {console:.2}% of one core"
    );
}
