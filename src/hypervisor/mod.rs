//! The libvirt layer: connections, storage, domains, metadata and XML. Every call here blocks;
//! the engine runs them on blocking threads, one whole operation per closure (libvirt keeps its
//! last error per thread).

pub mod model;
