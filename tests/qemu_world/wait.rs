//! Waiting for the engine's snapshots on a real host.

use std::sync::Arc;

use deskpool_api::{EngineHandle, Snapshot};

use super::QEMU_DEADLINE;

/// Waits for `ready` (after the first pass), or fails showing the fleet as `deskpool reconcile`
/// would.
pub async fn until(
    engine: &mut EngineHandle,
    what: &str,
    mut ready: impl FnMut(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    // The snapshot before the first pass knows no class yet.
    match engine
        .wait_for(QEMU_DEADLINE, |s| s.passes > 0 && ready(s))
        .await
    {
        Ok(s) => s,
        Err(s) => panic!(
            "timed out waiting for {what}:\n{}",
            deskpool::report::table(&s)
        ),
    }
}
