//! The libvirt layer: connections, storage, domains, metadata and XML. Every call here blocks;
//! the engine runs them on blocking threads, one whole operation per closure (libvirt keeps its
//! last error per thread).
//!
//! - [`agent`] — the guest agent: ping, a command run through it, the guest's address
//! - [`conn`] — [`HostConnection`] (open, liveness, capacity, the per-connection volume lock)
//! - [`error`] — [`HvError`], naming operation, object and host
//! - [`xml`] — escaping, domain templates with embedded metadata, volume XML, parsing back
//! - [`storage`] — creation pool, seed copies (clone or stream), overlays, deletions
//! - [`domain`] — define, start, relabel, remove desktops; display address
//! - [`observe`] — one read of a host into a [`model::HostObservation`]
//! - [`testbed`] — test-driver node files for demos and tests

pub mod agent;
pub mod conn;
pub mod domain;
pub mod error;
pub mod observe;
pub mod storage;
pub mod testbed;

pub use conn::HostConnection;
pub use deskpool_core::xml::{DEFAULT_DOMAIN_TEMPLATE, escape_xml, parse_meta};
pub use domain::{DesktopDefinition, Display, UnusableDesktop};
pub use error::{HvError, HvErrorKind};
pub use storage::STREAM_CHUNK;
pub use testbed::{demo_uri, write_demo_node, write_demo_node_sized};

// The observed-fleet model and the domain XML are pure and live in deskpool-core; the modules
// here read and write them through these names.
use deskpool_core::{model, xml};
