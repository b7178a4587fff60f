//! The provisioning engine: the reconcile loop over the hosts, its jobs, the demand history it
//! keeps and the lock that keeps one engine per state directory. Its wire types and the handle a
//! console holds are in `deskpool-api`; the planner it runs is in `deskpool-core`.

pub mod backoffs;
pub mod history;
pub mod jobs;
pub mod lock;
pub mod login_window;
pub mod run;
pub mod state;
