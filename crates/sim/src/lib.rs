//! The simulator: replays a login trace through the real planner in virtual time, on a model of
//! the hosts in which cloning and booting take configurable times, and measures what users saw
//! (instant logins, waits, refusals) and what it cost (idle desktop-hours, peak desktops,
//! host-hours).
//!
//! ```text
//! trace.csv ──► trace::parse ──► run::simulate ──► report::Report (table, JSON)
//!                                  │  ▲
//!                   plan::plan ◄───┘  └── model::Model (hosts, desktops, jobs in virtual time)
//! ```

pub mod model;
pub mod report;
pub mod run;
pub mod trace;
pub mod windows;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod calendar_tests;

#[cfg(test)]
mod forecast_tests;

#[cfg(test)]
mod standby_tests;

#[cfg(test)]
mod disconnect_tests;
#[cfg(test)]
mod mass_logout_tests;

#[cfg(test)]
mod windows_tests;

pub use report::{ClassReport, Report};
pub use run::{HandOut, LoginOutcome, SimOptions, simulate, simulate_with_hand_outs};
pub use trace::{TraceError, TraceEvent};
