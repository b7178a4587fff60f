//! The broker socket: a small JSON API over HTTP/1.1 (hyper, routed by axum) on a Unix domain
//! socket, for connection brokers (assign, release, classes, status), for monitoring (`GET
//! /metrics`) and for consoles attaching to a running engine (a stream of snapshots and events,
//! long-polls, admin commands).
//!
//! ```text
//!  curl / ctl / broker ──┐                      ┌── snapshot (watch) ◄── engine
//!  attached consoles ────┼─► server (socket) ───┼── commands (Commander) ─► engine
//!  Prometheus ───────────┘                      └── event ring ◄── events (a subscription)
//! ```
//!
//! The server subscribes to the engine's events (`EngineHandle::events_subscribe`) and keeps the
//! last [`server::EVENT_RING`] of them with sequence numbers for the stream and long-polls; the
//! console of the same process reads its own copy from the handle.

mod access;
pub mod audit;
pub mod client;
mod conn;
mod endpoint;
pub mod metrics;
mod routes;
pub mod server;
pub mod status;
pub mod stream;

pub use access::{command_scope, new_secret, sha256_hex};
pub use client::{attach, is_live};
pub use endpoint::EndpointError;
pub use server::{BindError, Broker};
