//! The Debian package on this machine: `scripts/build-deb.sh` packages the binary under test,
//! `dpkg -i` installs it, the files, the unit (`systemd-analyze verify`), the system user and the
//! installed `deskpool check` of the shipped configuration are checked, and `dpkg --purge`
//! leaves the machine as it was.
//!
//! Runs only as root with `DESKPOOL_PACKAGE=1` (`make test` sets it as root), and never on a
//! machine where a deskpool package is already installed (purging it would remove a real setup).

use std::path::Path;
use std::process::{Command, Output};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: cannot run: {e}"))
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed() -> bool {
    let out = run("dpkg-query", &["-W", "-f=${Status}", "deskpool"]);
    String::from_utf8_lossy(&out.stdout).contains("install ok installed")
}

/// Purges the package when the test ends, passed or failed.
struct Purge;
impl Drop for Purge {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "deskpool"]);
    }
}

#[test]
fn the_package_installs_a_valid_unit_and_a_checked_config_and_purges_cleanly() {
    if std::env::var_os("DESKPOOL_PACKAGE").is_none_or(|v| v != "1") {
        eprintln!(
            "skipped: set DESKPOOL_PACKAGE=1 (as root) to install the package on this machine"
        );
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: installing the package needs root");
        return;
    }
    assert!(
        !installed(),
        "a deskpool package is already installed here; this test would purge it"
    );
    let out_dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-deb.sh");
    let built = run_ok(
        script,
        &[
            "--binary",
            env!("CARGO_BIN_EXE_deskpool"),
            "--out",
            out_dir.path().to_str().unwrap(),
        ],
    );
    let deb = built
        .trim()
        .lines()
        .last()
        .expect("build-deb.sh printed the .deb")
        .to_string();
    assert!(Path::new(&deb).is_file(), "{deb}: not built");

    let _purge = Purge;
    run_ok("dpkg", &["-i", &deb]);
    assert!(installed(), "dpkg -i did not leave deskpool installed");

    for file in [
        "/usr/bin/deskpool",
        "/lib/systemd/system/deskpool.service",
        "/etc/deskpool/config.toml",
        "/usr/share/man/man1/deskpool.1.gz",
        "/usr/share/man/man1/deskpool-serve.1.gz",
        "/usr/share/bash-completion/completions/deskpool",
        "/usr/share/zsh/vendor-completions/_deskpool",
        "/usr/share/fish/vendor_completions.d/deskpool.fish",
        "/usr/share/doc/deskpool/examples/deskpool.toml",
    ] {
        let meta = std::fs::metadata(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(meta.len() > 0, "{file}: empty");
    }
    let conffiles = run_ok("dpkg-query", &["-W", "-f=${Conffiles}", "deskpool"]);
    assert!(
        conffiles.contains("/etc/deskpool/config.toml"),
        "the config is not a conffile: {conffiles}"
    );
    let bash = std::fs::read_to_string("/usr/share/bash-completion/completions/deskpool").unwrap();
    assert!(
        bash.contains("reconcile") && bash.contains("ctl"),
        "bash completion lacks subcommands"
    );
    if Command::new("man").arg("--version").output().is_ok() {
        let page = run_ok("man", &["-w", "deskpool"]);
        assert!(
            page.contains("/usr/share/man/man1/deskpool.1"),
            "man -w: {page}"
        );
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        run_ok(
            "systemd-analyze",
            &["verify", "/lib/systemd/system/deskpool.service"],
        );
    } else {
        eprintln!("systemd-analyze missing: the unit is not verified");
    }
    let unit = std::fs::read_to_string("/lib/systemd/system/deskpool.service").unwrap();
    for line in [
        "User=deskpool",
        "StateDirectory=deskpool",
        "ConfigurationDirectory=deskpool",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ExecStart=/usr/bin/deskpool --config /etc/deskpool/config.toml serve",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }

    let user = run_ok("id", &["deskpool"]);
    if run("getent", &["group", "libvirt"]).status.success() {
        assert!(
            user.contains("(libvirt)"),
            "deskpool is not in group libvirt: {user}"
        );
    }
    assert!(
        Path::new("/var/lib/deskpool").is_dir(),
        "no state directory"
    );
    // As the service runs it: the user deskpool reads the shipped configuration.
    let check = run_ok(
        "runuser",
        &[
            "-u",
            "deskpool",
            "--",
            "/usr/bin/deskpool",
            "--config",
            "/etc/deskpool/config.toml",
            "check",
        ],
    );
    assert!(
        check.starts_with("/etc/deskpool/config.toml: valid"),
        "deskpool check: {check}"
    );

    run_ok("dpkg", &["--purge", "deskpool"]);
    assert!(!installed(), "still installed after dpkg --purge");
    for gone in ["/usr/bin/deskpool", "/etc/deskpool", "/var/lib/deskpool"] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    assert!(
        !run("getent", &["passwd", "deskpool"]).status.success(),
        "the user deskpool is left after purge"
    );
}
