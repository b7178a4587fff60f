//! The guest agent (qemu-guest-agent on the virtio-serial port `org.qemu.guest_agent.0`):
//! whether it answers, a command run through it, and the guest's network address. This is how
//! a desktop shows that its guest booted (KubeVirt's `guestAgentPing`).
//!
//! libvirt's test driver has no guest agent. There a guest "answers" as soon as its domain
//! runs (the demo's simulated boot delay comes before that), a ready command exits 0, and no
//! guest has an address: readiness on the test driver means what `ready = "running"` means.

use serde_json::{Value, json};
use virt::domain::Domain;
use virt::sys;

use super::conn::HostConnection;
use super::error::HvError;

/// Seconds libvirt waits for the agent's answer to one command. An agent that is not connected
/// (no guest has opened the port yet) is refused at once, whatever this says.
const AGENT_TIMEOUT_SECS: i32 = 5;

/// What the guest agent said, when it did not answer as asked.
pub type Silence = String;

impl HostConnection {
    /// Whether the desktop's guest agent answers `guest-ping`. `Ok(Err(why))`: it does not
    /// (the domain does not run, no agent is connected, or it did not answer in time), with
    /// libvirt's words.
    pub fn agent_ping(&self, name: &str) -> Result<Result<(), Silence>, HvError> {
        const OP: &str = "ping guest agent of";
        let dom = self.running_domain(OP, name)?;
        let Some(dom) = dom else {
            return Ok(Err("it is not running".into()));
        };
        if self.is_test_driver() {
            return Ok(Ok(()));
        }
        Ok(agent_command(&dom, &json!({"execute": "guest-ping"})).map(|_| ()))
    }

    /// Starts `argv` (program, then arguments) in the guest through its agent
    /// (`guest-exec`, output not captured). Returns the guest's process id.
    pub fn agent_exec(&self, name: &str, argv: &[String]) -> Result<Result<i64, Silence>, HvError> {
        const OP: &str = "run a command through the guest agent of";
        let Some((program, args)) = argv.split_first() else {
            return Ok(Err("the command is empty".into()));
        };
        let Some(dom) = self.running_domain(OP, name)? else {
            return Ok(Err("it is not running".into()));
        };
        if self.is_test_driver() {
            return Ok(Ok(0));
        }
        let command = json!({
            "execute": "guest-exec",
            "arguments": {"path": program, "arg": args, "capture-output": false},
        });
        Ok(agent_command(&dom, &command).and_then(|answer| {
            answer["pid"]
                .as_i64()
                .ok_or_else(|| format!("guest-exec answered without a pid: {answer}"))
        }))
    }

    /// The exit code of a command [`Self::agent_exec`] started, once it has exited
    /// (`Ok(Ok(None))` while it runs).
    pub fn agent_exec_status(
        &self,
        name: &str,
        pid: i64,
    ) -> Result<Result<Option<i64>, Silence>, HvError> {
        const OP: &str = "read a command's status through the guest agent of";
        let Some(dom) = self.running_domain(OP, name)? else {
            return Ok(Err("it is not running".into()));
        };
        if self.is_test_driver() {
            return Ok(Ok(Some(0)));
        }
        let command = json!({"execute": "guest-exec-status", "arguments": {"pid": pid}});
        Ok(agent_command(&dom, &command).map(|answer| {
            if answer["exited"].as_bool() == Some(true) {
                // Killed by a signal: no exit code, and not a success.
                Some(answer["exitcode"].as_i64().unwrap_or(-1))
            } else {
                None
            }
        }))
    }

    /// The guest's network address as its agent reports it (`virsh domifaddr --source agent`):
    /// the first IPv4 address of an interface other than loopback, else the first global IPv6
    /// one. `None` when the guest has none, does not run, or its agent does not answer.
    pub fn guest_address(&self, name: &str) -> Result<Option<String>, HvError> {
        const OP: &str = "read the guest address of";
        let Some(dom) = self.running_domain(OP, name)? else {
            return Ok(None);
        };
        if self.is_test_driver() {
            return Ok(None);
        }
        let source = sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT;
        let Ok(interfaces) = dom.interface_addresses(source, 0) else {
            return Ok(None);
        };
        let addresses: Vec<(i64, String)> = interfaces
            .iter()
            .filter(|i| i.name != "lo")
            .flat_map(|i| i.addrs.iter().map(|a| (a.typed, a.addr.clone())))
            .collect();
        Ok(pick_address(&addresses))
    }

    /// The domain when it runs; `None` when it is defined but shut off.
    fn running_domain(&self, op: &str, name: &str) -> Result<Option<Domain>, HvError> {
        let dom = self
            .raw()
            .lookup_domain_by_name(name)
            .map_err(|e| self.err(op, name, e))?;
        let active = dom.is_active().map_err(|e| self.err(op, name, e))?;
        Ok(active.then_some(dom))
    }
}

/// Sends one command to the agent and returns its `return` value, or why there is none.
fn agent_command(dom: &Domain, command: &Value) -> Result<Value, Silence> {
    let answer = dom
        .qemu_agent_command(&command.to_string(), AGENT_TIMEOUT_SECS, 0)
        .map_err(|e| e.message().to_string())?;
    let parsed: Value = serde_json::from_str(&answer)
        .map_err(|e| format!("the agent's answer is not JSON ({e}): {answer}"))?;
    match parsed.get("return") {
        Some(value) => Ok(value.clone()),
        None => Err(format!("the agent answered without a result: {answer}")),
    }
}

/// Of (libvirt address type, address) pairs: the first IPv4 address not in 127/8, else the
/// first IPv6 address that is neither loopback nor link-local.
fn pick_address(addresses: &[(i64, String)]) -> Option<String> {
    let ipv4 = i64::from(sys::VIR_IP_ADDR_TYPE_IPV4);
    let ipv6 = i64::from(sys::VIR_IP_ADDR_TYPE_IPV6);
    addresses
        .iter()
        .find(|(t, a)| *t == ipv4 && !a.starts_with("127."))
        .or_else(|| {
            addresses.iter().find(|(t, a)| {
                *t == ipv6 && a != "::1" && !a.to_ascii_lowercase().starts_with("fe80")
            })
        })
        .map(|(_, a)| a.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_the_first_routable_ipv4_else_a_global_ipv6() {
        let v4 = i64::from(sys::VIR_IP_ADDR_TYPE_IPV4);
        let v6 = i64::from(sys::VIR_IP_ADDR_TYPE_IPV6);
        let all = [
            (v4, "127.0.0.1".to_string()),
            (v6, "fe80::1".to_string()),
            (v6, "2001:db8::5".to_string()),
            (v4, "10.0.0.5".to_string()),
        ];
        assert_eq!(pick_address(&all).as_deref(), Some("10.0.0.5"));
        assert_eq!(pick_address(&all[..3]).as_deref(), Some("2001:db8::5"));
        assert_eq!(pick_address(&all[..2]), None);
    }
}
