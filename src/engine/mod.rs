//! The provisioning engine: the pure planner, the reconcile loop, commands and events.

pub mod plan;
