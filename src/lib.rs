//! deskpool keeps pools of virtual desktops ahead of demand on libvirt hosts.

pub mod broker;
pub mod config;
pub mod demo;
pub mod engine;
pub mod hypervisor;
pub mod policy;
pub mod report;
pub mod setup;
pub mod sim;
pub mod tui;
