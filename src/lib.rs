//! deskpool keeps pools of virtual desktops ahead of demand on libvirt hosts.
//!
//! This crate is the program: it alone assembles the engine, the broker and the console
//! ([`console`]), and holds what only the binary does (the demo's synthetic day, first-run setup,
//! the `ctl status` report). The parts live in `crates/`.

pub mod console;
pub mod demo;
pub mod report;
pub mod setup;
