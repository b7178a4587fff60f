//! Deleting volumes: a desktop's disk, a seed copy and its marker. A volume a domain still
//! uses, or that backs another volume, is never deleted.

use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;

use super::is_busy;
use crate::conn::HostConnection;
use crate::error::{HvError, HvErrorKind};
use crate::model;
use crate::xml::{domain_disk_sources, parse_volume_xml};

impl HostConnection {
    /// Deletes volume `name` of `pool`. A missing volume (or pool) counts as deleted. Refused
    /// (an error, nothing deleted) while a domain of this daemon, defined or running, uses it as
    /// a disk or in a disk's backing chain, whatever the caller believes.
    pub fn delete_volume(&self, pool: &str, name: &str) -> Result<(), HvError> {
        const OP: &str = "delete volume";
        self.check_name(OP, "pool", pool)?;
        check_volume_name(self, OP, name)?;
        let _guard = self.lock_volumes();
        self.delete_volume_locked(pool, name)
    }

    /// Deletes the seed copy of `class` at `version` in `pool`: its marker first (so an
    /// interruption leaves an incomplete copy, never a complete-looking broken one), then the
    /// volume. Idempotent. Refused, with both left as they are, while a domain of this daemon
    /// uses the copy (as a disk or in a backing chain) or a volume of `pool` is backed by it.
    pub fn delete_seed_copy(&self, pool: &str, class: &str, version: &str) -> Result<(), HvError> {
        const OP: &str = "delete seed copy";
        self.check_name(OP, "pool", pool)?;
        self.check_name(OP, "class", class)?;
        self.check_name(OP, "version", version)?;
        let copy_name = model::seed_copy_volume_name(class, version);
        let _guard = self.lock_volumes();
        if let Some((storage, copy)) = self.find_volume(pool, &copy_name)? {
            let path = copy
                .path()
                .map_err(|e| self.err("read path of volume", format!("{pool}/{copy_name}"), e))?;
            self.refuse_if_used(OP, &format!("{pool}/{copy_name}"), &path, Some(&storage))?;
        }
        self.delete_volume_locked(pool, &model::seed_copy_marker_name(class, version))?;
        self.delete_volume_locked(pool, &copy_name)
    }

    /// [`Self::delete_volume`] for a caller that holds the volume lock.
    pub(crate) fn delete_volume_locked(&self, pool_name: &str, name: &str) -> Result<(), HvError> {
        let object = format!("{pool_name}/{name}");
        match self.find_volume(pool_name, name)? {
            Some((_, vol)) => self.delete_unused(&vol, &object, None),
            None => Ok(()),
        }
    }

    /// Deletes the volume at `path` if it is a volume of some pool of this daemon named
    /// `name` (a desktop's disk found in its domain's XML, wherever it was made); refused like
    /// [`Self::delete_volume`] while a domain uses it. A path no pool holds is left alone (libvirt
    /// cannot delete it, and deskpool deletes no file it did not make through libvirt).
    /// Call with the volume lock held.
    pub(crate) fn delete_volume_at_path_locked(
        &self,
        path: &str,
        name: &str,
    ) -> Result<(), HvError> {
        let vol = match self.raw().lookup_storage_vol_by_path(path) {
            Ok(v) => v,
            Err(e) => {
                let err = self.err("look up volume", path, e);
                if err.is_not_found() {
                    tracing::debug!(uri = self.uri(), path, "no pool holds this disk");
                    return Ok(());
                }
                return Err(err);
            }
        };
        let actual = vol
            .name()
            .map_err(|e| self.err("read name of volume", path, e))?;
        if actual != name {
            return Err(self.fail(
                HvErrorKind::InvalidInput,
                "delete volume",
                path,
                format!("the volume there is {actual:?}, not {name:?}: not deleted"),
            ));
        }
        let pool = vol
            .lookup_storage_pool()
            .and_then(|p| p.name())
            .unwrap_or_else(|_| "?".into());
        self.delete_unused(&vol, &format!("{pool}/{name}"), None)
    }

    /// Pool `pool_name` and its volume `name`; `None` when either is missing.
    pub(super) fn find_volume(
        &self,
        pool_name: &str,
        name: &str,
    ) -> Result<Option<(StoragePool, StorageVol)>, HvError> {
        let pool = match self.lookup_pool("delete volume", pool_name) {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        match self.lookup_volume(&pool, pool_name, name) {
            Ok(v) => Ok(Some((pool, v))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes `vol` unless a domain uses it (or, with `backed_in`, a volume of that pool is
    /// backed by it). A volume gone meanwhile counts as deleted.
    pub(super) fn delete_unused(
        &self,
        vol: &StorageVol,
        object: &str,
        backed_in: Option<&StoragePool>,
    ) -> Result<(), HvError> {
        const OP: &str = "delete volume";
        let path = match vol.path() {
            Ok(p) => p,
            Err(e) => {
                let err = self.err("read path of volume", object, e);
                return if err.is_not_found() { Ok(()) } else { Err(err) };
            }
        };
        self.refuse_if_used(OP, object, &path, backed_in)?;
        match vol.delete(0) {
            Ok(()) => {
                tracing::debug!(uri = self.uri(), %object, "deleted volume");
                Ok(())
            }
            Err(e) => {
                let mut err = self.err(OP, object, e);
                if err.is_not_found() {
                    return Ok(());
                }
                if is_busy(&err) {
                    err.message = format!(
                        "{} (a libvirt job still writes or reads it, such as a seed copy begun \
                         by an engine that stopped; it is left alone until that job ends)",
                        err.message
                    );
                }
                Err(err)
            }
        }
    }

    /// Fails when a domain of this daemon, defined or running, has `path` as a disk or in a
    /// disk's backing chain, or (with `backed_in`) a volume of that pool has it as backing
    /// store. What cannot be read counts as a use: a delete must be proven safe.
    pub(super) fn refuse_if_used(
        &self,
        op: &str,
        object: &str,
        path: &str,
        backed_in: Option<&StoragePool>,
    ) -> Result<(), HvError> {
        let mut users = self.domains_using(path)?;
        if let Some(pool) = backed_in {
            users.extend(self.volumes_backed_by(pool, object, path)?);
        }
        if users.is_empty() {
            return Ok(());
        }
        Err(self.fail(
            HvErrorKind::InvalidInput,
            op,
            object,
            format!("refused: {path} is in use by {}", users.join(", ")),
        ))
    }

    /// "domain NAME" for every domain (defined or running) using `path`, in its live or its
    /// persistent definition (a running domain's live XML shows the backing chain).
    pub(super) fn domains_using(&self, path: &str) -> Result<Vec<String>, HvError> {
        const OP: &str = "check who uses";
        let want = normalise_path(path);
        let domains = self
            .raw()
            .list_all_domains(0)
            .map_err(|e| self.err(OP, path, e))?;
        let mut users = Vec::new();
        for dom in &domains {
            let name = match dom.name() {
                Ok(n) => n,
                Err(e) => {
                    let err = self.err(OP, path, e);
                    if err.is_not_found() {
                        continue;
                    }
                    return Err(err);
                }
            };
            let mut uses = false;
            for flags in [0, virt::sys::VIR_DOMAIN_XML_INACTIVE] {
                let xml = match dom.xml_desc(flags) {
                    Ok(xml) => xml,
                    Err(e) => {
                        let err = self.err(OP, path, e);
                        if err.is_not_found() {
                            break;
                        }
                        return Err(err);
                    }
                };
                uses |= domain_disk_sources(&xml).iter().any(|d| {
                    normalise_path(&d.path) == want
                        || d.backing.iter().any(|b| normalise_path(b) == want)
                });
            }
            if uses {
                users.push(format!("domain {name}"));
            }
        }
        Ok(users)
    }

    /// "volume NAME" for every volume of `pool` whose backing store is `path`.
    pub(super) fn volumes_backed_by(
        &self,
        pool: &StoragePool,
        object: &str,
        path: &str,
    ) -> Result<Vec<String>, HvError> {
        const OP: &str = "check who uses";
        let want = normalise_path(path);
        let volumes = pool
            .list_all_volumes(0)
            .map_err(|e| self.err(OP, object, e))?;
        let mut users = Vec::new();
        for vol in volumes {
            let (Ok(name), Ok(xml)) = (vol.name(), vol.xml_desc(0)) else {
                // Deleted between the listing and now.
                continue;
            };
            let backing = parse_volume_xml(&xml).and_then(|i| i.backing_path);
            if backing.is_some_and(|b| normalise_path(&b) == want) {
                users.push(format!("volume {name}"));
            }
        }
        Ok(users)
    }
}

/// `path` with repeated and trailing `/` dropped, for comparing paths written differently.
fn normalise_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.trim().chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// Volume names deskpool makes contain `@` (seed copies), which `check_name` refuses; they are
/// checked here for what libvirt and a path need: not empty, no `/`, no NUL, not `.`/`..`.
fn check_volume_name(conn: &HostConnection, op: &str, name: &str) -> Result<(), HvError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0']);
    if ok {
        Ok(())
    } else {
        Err(conn.fail(
            HvErrorKind::InvalidInput,
            op,
            name,
            "invalid volume name (empty, too long, or contains '/' or NUL)",
        ))
    }
}
