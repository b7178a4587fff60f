//! The demo: a synthetic working day on the embedded default — a morning login storm, a lunch
//! dip, an evening logout — replayed in accelerated time through the engine's command API (the
//! same assign and release a broker uses), so a new user sees the pools move at once.

pub mod day;
pub mod driver;

pub use day::{DemoEvent, working_day};
pub use driver::drive;
