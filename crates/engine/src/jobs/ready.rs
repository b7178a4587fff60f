//! The readiness probe: one look at a booted desktop's guest. The state decides what a "not
//! yet" means (probe again, or give up: [`deskpool_core::readiness`]); this only asks.

use std::time::{Duration, Instant};

use super::{Outcome, Reach, blocking};
use deskpool_core::model::{ObservedDesktop, PoolState};
use deskpool_core::readiness::Readiness;
use deskpool_hypervisor::HostConnection;

/// Why a guest whose agent answers is not ready yet, when it has an interface but no address.
const NO_ADDRESS_YET: &str =
    "the guest has a network interface but its agent reports no address on it yet";

/// How often a running ready command's status is asked.
const COMMAND_POLL: Duration = Duration::from_millis(500);

/// Asks the guest agent of a running desktop in creation whether it answers (`guest-ping`),
/// then runs the class's ready command through it (ready when it exits 0 within
/// `command_limit`), and, when its domain has a network interface, waits for the address its
/// agent reports there. A ready desktop is labelled "buffer", and comes back with its display
/// and that address.
pub async fn probe(
    conn: HostConnection,
    desktop: ObservedDesktop,
    ready: Readiness,
    command_limit: Duration,
    now: i64,
) -> Outcome {
    let not_ready = |why: String| Outcome::NotReady {
        host: desktop.host.clone(),
        desktop: desktop.name.clone(),
        why,
    };
    let (c, name) = (conn.clone(), desktop.name.clone());
    match blocking("ping guest agent", move || c.agent_ping(&name)).await {
        Ok(Ok(())) => {}
        Ok(Err(silence)) => {
            return not_ready(format!("the guest agent does not answer: {silence}"));
        }
        Err(error) => return not_ready(error.to_string()),
    }
    if let Some(argv) = &ready.command
        && let Err(why) = run_ready_command(&conn, &desktop.name, argv, command_limit).await
    {
        return not_ready(why);
    }
    let mut ready_desktop = desktop.clone();
    ready_desktop.meta.pool = PoolState::Buffer;
    ready_desktop.meta.changed_at = now;
    let (name, meta) = (desktop.name.clone(), ready_desktop.meta.clone());
    let labelled = blocking("label ready desktop", move || {
        let reach = Reach {
            display: conn.display_address(&name).unwrap_or(None),
            address: conn.guest_address(&name).unwrap_or(None),
        };
        // A guest given a network interface is reached over it: until its agent reports an
        // address (DHCP still under way, say) no user could connect, so it is not ready yet.
        // A guest with no interface (reached through its display alone) needs none, nor does
        // one on the test driver, whose guests have no agent to report it.
        if reach.address.is_none() && !conn.is_test_driver() && conn.network_interfaces(&name)? > 0
        {
            return Ok(Err(NO_ADDRESS_YET.to_string()));
        }
        conn.set_meta(&name, &meta)?;
        Ok(Ok(reach))
    })
    .await;
    match labelled {
        Ok(Ok(reach)) => Outcome::Ready {
            desktop: ready_desktop,
            reach,
        },
        Ok(Err(why)) => not_ready(why),
        Err(error) => Outcome::DesktopFailed {
            host: desktop.host.clone(),
            desktop: desktop.name.clone(),
            error,
        },
    }
}

/// Runs `argv` in the guest and waits for it to exit 0, for at most `limit`.
async fn run_ready_command(
    conn: &HostConnection,
    name: &str,
    argv: &[String],
    limit: Duration,
) -> Result<(), String> {
    let shown = argv.join(" ");
    let (c, n, a) = (conn.clone(), name.to_string(), argv.to_vec());
    let pid = match blocking("run ready command", move || c.agent_exec(&n, &a)).await {
        Ok(Ok(pid)) => pid,
        Ok(Err(silence)) => return Err(format!("ready_command `{shown}` not started: {silence}")),
        Err(error) => return Err(error.to_string()),
    };
    let started = Instant::now();
    loop {
        let (c, n) = (conn.clone(), name.to_string());
        match blocking("read ready command", move || c.agent_exec_status(&n, pid)).await {
            Ok(Ok(Some(0))) => return Ok(()),
            Ok(Ok(Some(code))) => {
                return Err(format!("ready_command `{shown}` exited with {code}"));
            }
            Ok(Ok(None)) => {}
            Ok(Err(silence)) => {
                return Err(format!(
                    "ready_command `{shown}`: the agent stopped answering: {silence}"
                ));
            }
            Err(error) => return Err(error.to_string()),
        }
        if started.elapsed() >= limit {
            return Err(format!(
                "ready_command `{shown}` still running after {} s",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(COMMAND_POLL).await;
    }
}
