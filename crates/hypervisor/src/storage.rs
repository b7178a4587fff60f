//! Storage: the creation pool, seed copies (local clone or stream between hosts), desktop
//! overlays, deletions. Every volume operation holds the connection's volume lock (libvirt
//! refuses some pool operations while another volume job runs on the same pool), and every step
//! can be re-run after an interruption.
//!
//! - this file: the creation pool, desktop overlays, lookups
//! - [`seeds`]: seed copies, cloned on the host or streamed from another, with their marker
//! - [`deletion`]: deleting volumes, never one a domain or another volume still uses

mod deletion;
mod seeds;

use virt::error::ErrorNumber;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;

use super::conn::HostConnection;
use super::error::{HvError, HvErrorKind};
use super::model::{self, SeedCopy};
use super::xml::{escape_xml, parse_volume_xml};

pub use seeds::STREAM_CHUNK;

impl HostConnection {
    /// Makes sure the creation pool `name` exists as a `dir` pool (defined at `path` when
    /// missing), is built, running, autostarted and refreshed. Idempotent. An existing pool is
    /// used as it is, even if its path differs from `path` (a warning is logged).
    pub fn ensure_creation_pool(&self, name: &str, path: &str) -> Result<(), HvError> {
        const OP: &str = "ensure storage pool";
        self.check_name(OP, "pool", name)?;
        if !path.starts_with('/') || path.contains('\0') {
            return Err(self.fail(
                HvErrorKind::InvalidInput,
                OP,
                name,
                format!("the pool path {path:?} must be an absolute path"),
            ));
        }
        let _guard = self.lock_volumes();
        let pool = match self.lookup_pool(OP, name) {
            Ok(pool) => {
                self.warn_if_pool_path_differs(&pool, name, path);
                pool
            }
            Err(e) if e.is_not_found() => {
                let xml = format!(
                    "<pool type='dir'>\n  <name>{}</name>\n  <target>\n    <path>{}</path>\n  \
                     </target>\n</pool>\n",
                    escape_xml(name),
                    escape_xml(path)
                );
                tracing::info!(
                    uri = self.uri(),
                    pool = name,
                    path,
                    "defining creation pool"
                );
                match self.raw().define_storage_pool_xml(&xml, 0) {
                    Ok(pool) => pool,
                    // Another connection to this daemon defined it just now: use that one.
                    Err(e) => match self.lookup_pool(OP, name) {
                        Ok(pool) => pool,
                        Err(_) => return Err(self.err("define storage pool", name, e)),
                    },
                }
            }
            Err(e) => return Err(e),
        };
        let active = pool
            .is_active()
            .map_err(|e| self.err("check storage pool", name, e))?;
        if !active {
            // Building an existing directory is harmless; if it fails, starting reports why.
            if let Err(e) = pool.build(0) {
                tracing::warn!(
                    uri = self.uri(),
                    pool = name,
                    "building pool: {}",
                    e.message()
                );
            }
            pool.create(0)
                .map_err(|e| self.err("start storage pool", name, e))?;
        }
        let persistent = pool
            .is_persistent()
            .map_err(|e| self.err("check storage pool", name, e))?;
        if persistent
            && !pool
                .autostart()
                .map_err(|e| self.err("check storage pool autostart", name, e))?
        {
            pool.set_autostart(true)
                .map_err(|e| self.err("set autostart of storage pool", name, e))?;
        }
        if let Err(e) = pool.refresh(0) {
            let err = self.err("refresh storage pool", name, e);
            if !is_busy(&err) {
                return Err(err);
            }
            // A volume job still runs in the pool (a seed copy begun by an engine that stopped,
            // say): the pool works, and libvirt knows the volumes it makes itself. Every
            // observation refreshes it again once the job is over.
            tracing::info!(
                uri = self.uri(),
                pool = name,
                "creation pool busy, refreshed later: {}",
                err.message
            );
        }
        Ok(())
    }

    fn warn_if_pool_path_differs(&self, pool: &StoragePool, name: &str, path: &str) {
        let Ok(xml) = pool.xml_desc(0) else { return };
        let Ok(doc) = roxmltree::Document::parse(&xml) else {
            return;
        };
        let existing = doc
            .descendants()
            .find(|n| {
                n.has_tag_name("path") && n.parent().is_some_and(|p| p.has_tag_name("target"))
            })
            .and_then(|n| n.text())
            .map(str::trim);
        if let Some(existing) = existing
            && existing.trim_end_matches('/') != path.trim_end_matches('/')
        {
            tracing::warn!(
                uri = self.uri(),
                pool = name,
                existing,
                configured = path,
                "the creation pool exists with another path; using it as it is"
            );
        }
    }

    /// Creates the disk of desktop `desktop_name` in `creation_pool`: a qcow2 overlay named
    /// [`model::desktop_volume_name`] of `capacity_bytes`, backed by `seed` (its path and format
    /// declared). Returns the volume's path. If the volume already exists over the same seed
    /// (an interrupted earlier attempt), its path is returned.
    pub fn create_overlay(
        &self,
        creation_pool: &str,
        desktop_name: &str,
        seed: &SeedCopy,
        capacity_bytes: u64,
    ) -> Result<String, HvError> {
        const OP: &str = "create overlay";
        self.check_name(OP, "pool", creation_pool)?;
        self.check_name(OP, "desktop", desktop_name)?;
        if seed.path.contains('\0') || !matches!(seed.format.as_str(), "qcow2" | "raw") {
            return Err(self.fail(
                HvErrorKind::InvalidInput,
                OP,
                desktop_name,
                format!(
                    "bad seed copy (path {:?}, format {:?})",
                    seed.path, seed.format
                ),
            ));
        }
        let name = model::desktop_volume_name(desktop_name);
        let object = format!("{creation_pool}/{name}");
        let _guard = self.lock_volumes();
        let pool = self.lookup_pool(OP, creation_pool)?;
        match self.lookup_volume(&pool, creation_pool, &name) {
            Ok(existing) => {
                let xml = existing
                    .xml_desc(0)
                    .map_err(|e| self.err("read volume", &object, e))?;
                let info = parse_volume_xml(&xml).unwrap_or_default();
                if info.backing_path.as_deref() == Some(seed.path.as_str()) {
                    return existing
                        .path()
                        .map_err(|e| self.err("read path of volume", &object, e));
                }
                return Err(self.fail(
                    HvErrorKind::AlreadyExists,
                    OP,
                    &object,
                    format!(
                        "the volume exists with backing store {:?}, not {:?}",
                        info.backing_path, seed.path
                    ),
                ));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let xml = super::xml::overlay_volume_xml(&name, capacity_bytes, &seed.path, &seed.format);
        let vol = StorageVol::create_xml(&pool, &xml, 0).map_err(|e| self.err(OP, &object, e))?;
        vol.path()
            .map_err(|e| self.err("read path of volume", &object, e))
    }

    pub(crate) fn lookup_pool(&self, op: &str, name: &str) -> Result<StoragePool, HvError> {
        self.raw()
            .lookup_storage_pool_by_name(name)
            .map_err(|e| self.err(op, format!("storage pool {name}"), e))
    }

    pub(crate) fn lookup_volume(
        &self,
        pool: &StoragePool,
        pool_name: &str,
        name: &str,
    ) -> Result<StorageVol, HvError> {
        pool.lookup_storage_vol_by_name(name)
            .map_err(|e| self.err("look up volume", format!("{pool_name}/{name}"), e))
    }
}

/// Whether libvirt refused because a job still runs on the volume or its pool (a clone being
/// written: "still being allocated", its source: "still in use", a refresh meanwhile: "pool has
/// asynchronous jobs running"). Such a refusal is for later, not a failure of the host.
pub(crate) fn is_busy(err: &HvError) -> bool {
    let m = err.message.as_str();
    (err.has_code(ErrorNumber::OperationInvalid)
        && (m.contains("still being allocated") || m.contains("still in use")))
        || m.contains("asynchronous jobs running")
}
