//! One read of everything deskpool cares about on a host. Cheap enough to run often: one
//! domain listing plus one metadata read per desktop, one volume listing, one read per seed
//! copy and per seed source.

use std::collections::{BTreeSet, HashSet};

use virt::error::ErrorNumber;
use virt::sys;

use super::conn::HostConnection;
use super::error::HvError;
use super::model::{
    self, DESKTOP_PREFIX, HostObservation, METADATA_URI, ObservedDesktop, SEED_COPY_PREFIX,
    SeedCopy,
};
use super::xml::{domain_disk_sources, parse_meta, parse_volume_xml};
use deskpool_core::policy::ClassSpec;

const COPY_SUFFIX: &str = ".img";

/// The creation pool as one observation listed it.
struct PoolListing {
    /// The pool's directory, without a trailing `/`.
    dir: String,
    /// Every volume in it, by name.
    names: HashSet<String>,
}
const MARKER_SUFFIX: &str = ".complete";

impl HostConnection {
    /// Reads the host: deskpool desktops (domains named `dp-*` with their metadata and whether
    /// they run), `dp-*` domains without readable metadata, the creation pool's desktop volumes
    /// and seed copies, and which seed sources of `classes` this host holds. Domains not named
    /// like desktops are ignored. A failure that could make a desktop look unlabelled (a lost
    /// connection, say) fails the whole observation rather than misreport it.
    pub fn observe(
        &self,
        host_name: &str,
        creation_pool: &str,
        classes: &[ClassSpec],
    ) -> Result<HostObservation, HvError> {
        let mut obs = HostObservation::default();
        self.observe_domains(host_name, &mut obs)?;
        if let Some(listing) = self.observe_creation_pool(creation_pool, &mut obs)? {
            self.judge_disks(&mut obs, &listing);
        }
        obs.seed_sources = self.observe_seed_sources(classes)?;
        Ok(obs)
    }

    /// Marks each desktop whose own volume, or an image backing it, is gone (deleted with
    /// `virsh vol-delete`, or by a second engine on the same daemon): such a desktop must never
    /// be handed out. A desktop whose volume and seed copy are both in the creation pool's
    /// listing (taken after the domain listing) is fine; only the others have their XML read
    /// (the live XML of a running domain shows its backing chain), and each of their images is
    /// missing when it lies in the creation pool and is not listed, or when libvirt knows the
    /// volume but can no longer read it. A disk outside any pool is not judged.
    fn judge_disks(&self, obs: &mut HostObservation, listing: &PoolListing) {
        for d in &mut obs.desktops {
            let own = model::desktop_volume_name(&d.name);
            let seed = model::seed_copy_volume_name(&d.meta.class, &d.meta.seed_version);
            if listing.names.contains(&own) && listing.names.contains(&seed) {
                continue;
            }
            let xml = self
                .raw()
                .lookup_domain_by_name(&d.name)
                .and_then(|dom| dom.xml_desc(0));
            let Ok(xml) = xml else {
                // Gone since the listing, or unreadable: the next observation tells.
                continue;
            };
            d.disk_problem = domain_disk_sources(&xml).iter().find_map(|disk| {
                let is_own = disk.path.rsplit('/').next() == Some(own.as_str());
                if is_own && self.image_missing(&disk.path, listing) {
                    return Some(format!("its disk {} is gone", disk.path));
                }
                disk.backing
                    .iter()
                    .find(|b| self.image_missing(b, listing))
                    .map(|b| format!("the image {b} backing its disk is gone"))
            });
        }
    }

    /// Whether the image at `path` is known to be gone (see [`Self::judge_disks`]).
    fn image_missing(&self, path: &str, listing: &PoolListing) -> bool {
        if let Some(name) = path
            .strip_prefix(listing.dir.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            && !name.contains('/')
        {
            return !listing.names.contains(name);
        }
        // Elsewhere (an earlier creation pool, say): missing only if libvirt knows the volume
        // and cannot read it any more.
        match self.raw().lookup_storage_vol_by_path(path) {
            Ok(vol) => vol.info().is_err(),
            Err(_) => false,
        }
    }

    fn observe_domains(&self, host_name: &str, obs: &mut HostObservation) -> Result<(), HvError> {
        const OP: &str = "list domains of";
        // Which domains run, and which are transient, in one listing each (instead of one
        // virDomainIsActive/IsPersistent per domain, a round trip each on a remote host).
        let names = |flags| -> Result<HashSet<String>, HvError> {
            Ok(self
                .raw()
                .list_all_domains(flags)
                .map_err(|e| self.err(OP, "host", e))?
                .iter()
                .filter_map(|d| d.name().ok())
                .collect())
        };
        let running = names(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)?;
        let transient = names(sys::VIR_CONNECT_LIST_DOMAINS_TRANSIENT)?;
        let domains = self
            .raw()
            .list_all_domains(0)
            .map_err(|e| self.err(OP, "host", e))?;
        for dom in &domains {
            let name = dom.name().map_err(|e| self.err(OP, "host", e))?;
            if !name.starts_with(DESKTOP_PREFIX) {
                continue;
            }
            let element = dom.metadata(
                sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
                Some(METADATA_URI),
                0,
            );
            match element {
                Ok(xml) => match parse_meta(&xml) {
                    Some(meta) => {
                        let is_running = running.contains(&name);
                        obs.desktops.push(ObservedDesktop {
                            running: is_running,
                            persistent: !transient.contains(&name),
                            name,
                            host: host_name.to_string(),
                            meta,
                            disk_problem: None,
                        })
                    }
                    None => {
                        tracing::debug!(domain = %name, "unreadable deskpool metadata: {xml}");
                        obs.unlabelled_desktops.push(name);
                    }
                },
                Err(e) => {
                    let err = self.err("read metadata of domain", &name, e);
                    if err.has_code(ErrorNumber::NoDomainMetadata) {
                        obs.unlabelled_desktops.push(name);
                    } else if err.is_not_found() {
                        // Undefined between the listing and now: it is gone.
                        continue;
                    } else {
                        return Err(err);
                    }
                }
            }
        }
        obs.desktops.sort_by(|a, b| a.name.cmp(&b.name));
        obs.unlabelled_desktops.sort();
        Ok(())
    }

    /// Reads the creation pool's desktop volumes and seed copies. Returns the pool's directory
    /// and volume names when that listing can be trusted to show every volume libvirt has.
    fn observe_creation_pool(
        &self,
        creation_pool: &str,
        obs: &mut HostObservation,
    ) -> Result<Option<PoolListing>, HvError> {
        const OP: &str = "list volumes of";
        let pool = match self.lookup_pool(OP, creation_pool) {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        if !pool
            .is_active()
            .map_err(|e| self.err(OP, creation_pool, e))?
        {
            tracing::debug!(
                uri = self.uri(),
                pool = creation_pool,
                "creation pool not active"
            );
            return Ok(None);
        }
        // Refresh to see files made outside libvirt, unless a volume job runs right now (it
        // would refuse: "pool has asynchronous jobs running"; and libvirt knows the volumes
        // it makes itself).
        // A failed refresh can leave libvirt's list of the pool's volumes empty or partial: then
        // no disk is judged missing from it.
        let mut trusted = true;
        if let Some(_guard) = self.try_lock_volumes()
            && let Err(e) = pool.refresh(0)
        {
            trusted = false;
            tracing::warn!(
                uri = self.uri(),
                pool = creation_pool,
                "refresh: {}",
                e.message()
            );
        }
        let volumes = pool
            .list_all_volumes(0)
            .map_err(|e| self.err(OP, creation_pool, e))?;
        let dir = if trusted {
            pool.xml_desc(0)
                .ok()
                .and_then(|xml| super::xml::pool_target_path(&xml))
        } else {
            None
        };
        let mut names = HashSet::new();
        let mut copies = Vec::new();
        let mut markers = BTreeSet::new();
        for vol in volumes {
            let name = vol.name().map_err(|e| self.err(OP, creation_pool, e))?;
            names.insert(name.clone());
            if name.starts_with(DESKTOP_PREFIX) {
                obs.desktop_volumes.push(name);
            } else if let Some((class, version)) = parse_seed_name(&name, MARKER_SUFFIX) {
                markers.insert((class, version));
            } else if let Some((class, version)) = parse_seed_name(&name, COPY_SUFFIX) {
                copies.push((class, version, vol));
            }
        }
        for (class, version, vol) in copies {
            let volume = model::seed_copy_volume_name(&class, &version);
            let object = format!("{creation_pool}/{volume}");
            // Deleted between the listing and now (the engine removes a leftover copy on
            // another thread): it is gone, not a sign the host is down.
            let read = vol
                .path()
                .map_err(|e| self.err("read path of volume", &object, e))
                .and_then(|path| {
                    vol.xml_desc(0)
                        .map(|xml| (path, xml))
                        .map_err(|e| self.err("read volume", &object, e))
                });
            let (path, xml) = match read {
                Ok(read) => read,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let format = parse_volume_xml(&xml)
                .and_then(|i| i.format)
                .unwrap_or_else(|| "raw".into());
            let complete = markers.contains(&(class.clone(), version.clone()));
            obs.seed_copies.push(SeedCopy {
                class,
                version,
                volume,
                path,
                format,
                complete,
            });
        }
        obs.desktop_volumes.sort();
        obs.seed_copies
            .sort_by(|a, b| (&a.class, &a.version).cmp(&(&b.class, &b.version)));
        Ok(dir.map(|dir| PoolListing { dir, names }))
    }

    fn observe_seed_sources(
        &self,
        classes: &[ClassSpec],
    ) -> Result<Vec<(String, String)>, HvError> {
        let wanted: BTreeSet<(&str, &str)> = classes
            .iter()
            .map(|c| (c.seed.pool.as_str(), c.seed.volume.as_str()))
            .collect();
        let mut present = Vec::new();
        for (pool_name, volume) in wanted {
            if volume.contains('\0') {
                continue;
            }
            let pool = match self.lookup_pool("look up seed pool", pool_name) {
                Ok(p) => p,
                Err(e) if e.is_not_found() || e.has_code(ErrorNumber::InvalidArg) => continue,
                Err(e) => return Err(e),
            };
            let mut found = self.lookup_volume(&pool, pool_name, volume);
            if found.as_ref().is_err_and(|e| e.is_not_found()) {
                // A seed file copied into the pool's directory is unknown to libvirt until the
                // pool is refreshed (a refresh refused while a job runs is only a later look).
                if pool.refresh(0).is_ok() {
                    found = self.lookup_volume(&pool, pool_name, volume);
                }
            }
            match found {
                Ok(_) => present.push((pool_name.to_string(), volume.to_string())),
                Err(e) if e.is_not_found() => {}
                // An inactive pool lists no volumes: the seed is not available here now.
                Err(e) if e.has_code(ErrorNumber::OperationInvalid) => {
                    tracing::debug!(uri = self.uri(), pool = pool_name, "seed pool: {e}");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(present)
    }
}

/// `seed-<class>@<version><suffix>` → (class, version).
fn parse_seed_name(name: &str, suffix: &str) -> Option<(String, String)> {
    let inner = name.strip_prefix(SEED_COPY_PREFIX)?.strip_suffix(suffix)?;
    let (class, version) = inner.split_once('@')?;
    if class.is_empty() || version.is_empty() || version.contains('@') {
        return None;
    }
    Some((class.to_string(), version.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_names_read_back() {
        let copy = model::seed_copy_volume_name("office", "2026.11");
        let marker = model::seed_copy_marker_name("office", "2026.11");
        let want = Some(("office".to_string(), "2026.11".to_string()));
        assert_eq!(parse_seed_name(&copy, COPY_SUFFIX), want);
        assert_eq!(parse_seed_name(&marker, MARKER_SUFFIX), want);
        assert_eq!(parse_seed_name(&copy, MARKER_SUFFIX), None);
        assert_eq!(parse_seed_name("seed-office.img", COPY_SUFFIX), None);
        assert_eq!(parse_seed_name("seed-@1.img", COPY_SUFFIX), None);
        assert_eq!(parse_seed_name("other@1.img", COPY_SUFFIX), None);
    }
}
