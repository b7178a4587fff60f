//! The election among controllers (`[ha]`): each `deskpool serve` holds an etcd lease, campaigns
//! in etcd's election API on the fleet's key, and publishes what it learns as a
//! [`Leadership`](deskpool_core::leadership::Leadership) on a watch channel. The engine reads it
//! before every job that changes a host; consoles and `/metrics` show it.
//!
//! [`local_etcd`] starts a private etcd on free ports (the tests, and trying HA on one machine).

mod election;
pub mod local_etcd;

pub use election::Election;
