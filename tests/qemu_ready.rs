//! Readiness from the guest on a real libvirt daemon (`qemu:///system`): a desktop of a class
//! with `ready = "agent"` joins the buffer only once its guest agent answers. These seeds hold
//! no operating system, so no agent ever answers: such a desktop is never buffered, is given
//! up after `ready_timeout_secs` and replaced, and the reason is shown.
//!
//! Runs only with `DESKPOOL_QEMU=1`, as root (see tests/qemu.rs).

mod common;
mod qemu_world;

use std::time::{Duration, Instant};

use deskpool_api::{EngineHandle, EventKind, PoolStateView};
use deskpool_core::model::{DesktopMeta, PoolState};
use deskpool_hypervisor::parse_meta;
use qemu_world::wait::until;
use qemu_world::{QEMU_DEADLINE, World, enabled, virsh};

// Long enough for the checks below to run on a loaded machine before it is given up.
const TIMEOUT_SECS: u64 = 20;

/// deskpool's metadata of `domain` as `virsh dumpxml` shows it, `None` once it is gone.
fn meta_if_defined(domain: &str) -> Option<DesktopMeta> {
    let out = std::process::Command::new("virsh")
        .args(["-c", qemu_world::URI, "dumpxml", domain])
        .output()
        .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // virsh says either, depending on when in its lookup the domain went.
        let gone = err.contains("Domain not found") || err.contains("failed to get domain");
        assert!(gone, "virsh dumpxml {domain}: {err}");
        return None;
    }
    let xml = String::from_utf8_lossy(&out.stdout);
    Some(parse_meta(&xml).unwrap_or_else(|| panic!("unreadable metadata in {domain}:\n{xml}")))
}

/// The running desktop of `class` in creation that is not `other`, once there is one.
async fn booted_desktop(engine: &mut EngineHandle, class: &str, other: Option<&str>) -> String {
    let s = until(engine, "a booted desktop in creation", |s| {
        s.desktops.iter().any(|d| {
            d.meta.class == class
                && d.meta.pool == PoolStateView::Creation
                && d.running
                && Some(d.name.as_str()) != other
        })
    })
    .await;
    s.desktops
        .iter()
        .find(|d| d.meta.class == class && d.running && Some(d.name.as_str()) != other)
        .map(|d| d.name.clone())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_whose_agent_never_answers_is_never_buffered_and_is_replaced_after_its_timeout() {
    if !enabled(
        "a_guest_whose_agent_never_answers_is_never_buffered_and_is_replaced_after_its_timeout",
    ) {
        return;
    }
    let mut world = World::new(&["mute"]);
    world.ready = format!("ready = \"agent\"\nready_timeout_secs = {TIMEOUT_SECS}");
    world.write_config(&[1], "");
    let class = world.classes[0].clone();
    let mut engine = world.start_engine();

    let first = booted_desktop(&mut engine, &class, None).await;
    let seen_running = Instant::now();
    // The built-in template gives it the agent's port; nothing in the guest opens it.
    let xml = virsh(&["dumpxml", &first]);
    assert!(
        xml.contains("org.qemu.guest_agent.0"),
        "no agent channel:\n{xml}"
    );
    let ping = std::process::Command::new("virsh")
        .args(["-c", qemu_world::URI, "qemu-agent-command", &first])
        .arg(r#"{"execute":"guest-ping"}"#)
        .output()
        .unwrap();
    assert!(
        !ping.status.success(),
        "a guest without an OS answered guest-ping"
    );

    // Until it is gone, the host never shows it (or any desktop of the class) in the buffer.
    let deadline = Instant::now() + QEMU_DEADLINE;
    loop {
        let ours = world.domains(true);
        for d in &ours {
            // One given up between the listing and this read is gone: nothing to check.
            let Some(meta) = meta_if_defined(d) else {
                continue;
            };
            assert_ne!(
                meta.pool,
                PoolState::Buffer,
                "{d} joined the buffer without an answer from its guest"
            );
        }
        if !ours.contains(&first) {
            break;
        }
        assert!(Instant::now() < deadline, "{first} was never given up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lived = seen_running.elapsed();
    assert!(
        lived >= Duration::from_secs(TIMEOUT_SECS - 1),
        "given up after {lived:?}, before its {TIMEOUT_SECS} s"
    );

    // The reason, as an event naming the desktop and on the class.
    let reason = format!(
        "not ready within {TIMEOUT_SECS} s (ready_timeout_secs), waiting for its guest agent: \
         the guest agent does not answer: "
    );
    let mut given_up = None;
    while let Ok(e) = engine.events.try_recv() {
        if e.kind == EventKind::Failed && e.desktop.as_deref() == Some(first.as_str()) {
            given_up = Some(e.message);
        }
    }
    let given_up = given_up.expect("a failed event for the desktop given up");
    assert!(given_up.starts_with(&reason), "{given_up}");

    // Replaced: a new desktop boots, and is never buffered either.
    let second = booted_desktop(&mut engine, &class, Some(&first)).await;
    assert_ne!(second, first);
    let s = until(&mut engine, "the class counting its failure", |s| {
        s.classes
            .iter()
            .any(|c| c.plan.name == class && c.logins.failures >= 1)
    })
    .await;
    let office = s.classes.iter().find(|c| c.plan.name == class).unwrap();
    assert_eq!(office.plan.buffer, 0, "{}", deskpool::report::table(&s));
    assert_eq!(world.meta(&second).pool, PoolState::Creation);
    engine.shutdown().await;
}
