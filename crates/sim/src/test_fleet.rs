//! The fleet the simulator's tests run on: one host and one class `office`, with the policy
//! each test needs.

use std::path::Path;

use deskpool_core::policy::Fleet;

/// One host `h1` holding `desktops` desktops and one class `office` whose `[classes.policy]`
/// table is `policy`; `engine` is the body of the `[engine]` table.
pub(crate) fn office_fleet(engine: &str, desktops: u32, policy: &str) -> Fleet {
    let text = format!(
        r#"[engine]
{engine}

[[hosts]]
name = "h1"
uri = "test:///default"
capacity = {{ desktops = {desktops} }}

[[classes]]
name = "office"
memory_mib = 2048
vcpus = 2
disk_gib = 20
seed = {{ pool = "seeds", volume = "office.qcow2", version = "1" }}

[classes.policy]
{policy}
"#
    );
    deskpool_config::parse_str(&text, Path::new("sim.toml")).unwrap_or_else(|e| panic!("{e}"))
}
