//! The broker socket: a small JSON API over HTTP/1.1 on a Unix domain socket, for connection
//! brokers (assign, release, classes, status), for monitoring (`GET /metrics`) and for consoles
//! attaching to a running engine (snapshot and event long-polls, admin commands).
//!
//! ```text
//!  curl / ctl / broker ──┐                      ┌── snapshot (watch) ◄── engine
//!  attached consoles ────┼─► server (socket) ───┼── commands (Commander) ─► engine
//!  Prometheus ───────────┘                      └── event ring ◄── events (mpsc, fanned out)
//! ```
//!
//! The server owns the engine's single-consumer event channel: it keeps the last
//! [`server::EVENT_RING`] events with sequence numbers for long-polls, and forwards each to the
//! local console (if any) through a fresh channel it puts in the engine handle.

pub mod client;
pub mod http;
pub mod metrics;
pub mod server;
pub mod status;
pub mod stream;

pub use client::{attach, is_live};
pub use server::Broker;
