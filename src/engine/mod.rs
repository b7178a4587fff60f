//! The provisioning engine: the pure planner, the reconcile loop, commands and events.

pub mod api;
pub mod backoffs;
pub mod clock;
pub mod demand;
pub mod history;
pub mod jobs;
pub mod ledger;
pub mod lock;
pub mod plan;
pub mod run;
