//! Storage: the creation pool, seed copies (local clone or stream between hosts), desktop
//! overlays, deletions. Every volume operation holds the connection's volume lock (libvirt
//! refuses some pool operations while another volume job runs on the same pool), and every step
//! can be re-run after an interruption.

use virt::error::ErrorNumber;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use super::conn::HostConnection;
use super::error::{HvError, HvErrorKind};
use super::model::{self, SeedCopy};
use super::xml::{domain_disk_sources, escape_xml, parse_volume_xml, volume_xml};

/// Bytes moved per stream call when copying a seed between hosts.
pub const STREAM_CHUNK: usize = 4 << 20;
/// Size of the completion marker volume.
const MARKER_BYTES: u64 = 512;

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

    /// Copies the seed `src_pool/src_volume` of this host into `creation_pool` as
    /// [`model::seed_copy_volume_name`] (a libvirt volume clone, keeping the source's format),
    /// then creates the completion marker [`model::seed_copy_marker_name`]. A complete copy
    /// already there is returned as it is; an incomplete one (no marker) is deleted and redone.
    /// `progress(done, total)` is called at 0 and at the end (a clone is one libvirt call).
    #[allow(clippy::too_many_arguments)]
    pub fn copy_seed_local(
        &self,
        src_pool: &str,
        src_volume: &str,
        creation_pool: &str,
        class: &str,
        version: &str,
        progress: &dyn Fn(u64, u64),
    ) -> Result<SeedCopy, HvError> {
        const OP: &str = "copy seed";
        self.check_seed_names(OP, src_pool, src_volume, creation_pool, class, version)?;
        let copy_name = model::seed_copy_volume_name(class, version);
        let _guard = self.lock_volumes();

        let (src, total, format) = self.source_volume(src_pool, src_volume)?;
        let pool = self.lookup_pool(OP, creation_pool)?;
        if let Some(done) = self.existing_copy(&pool, creation_pool, class, version, &format)? {
            progress(total, total);
            return Ok(done);
        }

        progress(0, total);
        let xml = volume_xml(&copy_name, total, Some(0), &format, None);
        let object = format!("{src_pool}/{src_volume} -> {creation_pool}/{copy_name}");
        tracing::info!(uri = self.uri(), %object, "cloning seed volume");
        let copy = match StorageVol::create_xml_from(&pool, &xml, &src, 0) {
            Ok(vol) => vol,
            Err(e) => {
                let err = self.err(OP, &object, e);
                if !(err.is_not_found() && self.is_test_driver() && src_pool != creation_pool) {
                    return Err(err);
                }
                // The test driver looks the source volume up in the *target* pool, so it
                // cannot clone across pools. Its volumes hold no data: an empty volume of the
                // same capacity and format is an exact copy there.
                tracing::debug!(%object, "test driver: emulating a cross-pool clone");
                StorageVol::create_xml(&pool, &xml, 0).map_err(|e| self.err(OP, &object, e))?
            }
        };
        let done = self.mark_complete(&pool, creation_pool, &copy, class, version, format)?;
        progress(total, total);
        Ok(done)
    }

    /// Copies the seed `src_pool/src_volume` of host `src` into `creation_pool` on host `dst`:
    /// a libvirt download stream on `src` feeds an upload stream on `dst`, in
    /// [`STREAM_CHUNK`]-byte chunks, into a new volume of the same capacity and format; then the
    /// completion marker. `progress(done, total)` is called per chunk. On any failure both
    /// streams are aborted and the partial volume is deleted. The test driver supports no
    /// streams: there this returns an `Unsupported` error.
    #[allow(clippy::too_many_arguments)]
    pub fn copy_seed_between(
        src: &HostConnection,
        src_pool: &str,
        src_volume: &str,
        dst: &HostConnection,
        creation_pool: &str,
        class: &str,
        version: &str,
        progress: &dyn Fn(u64, u64),
    ) -> Result<SeedCopy, HvError> {
        const OP: &str = "copy seed between hosts";
        dst.check_seed_names(OP, src_pool, src_volume, creation_pool, class, version)?;
        let copy_name = model::seed_copy_volume_name(class, version);

        let (src_vol, capacity, format) = src.source_volume(src_pool, src_volume)?;
        // Bytes the download will carry: the file's physical size (a qcow2 is smaller than its
        // capacity). Only used for progress.
        let physical = src_vol
            .info_flags(virt::sys::VIR_STORAGE_VOL_GET_PHYSICAL)
            .or_else(|_| src_vol.info())
            .map(|i| i.allocation)
            .unwrap_or(capacity);
        let src_object = format!("{src_pool}/{src_volume}");

        let _guard = dst.lock_volumes();
        let pool = dst.lookup_pool(OP, creation_pool)?;
        if let Some(done) = dst.existing_copy(&pool, creation_pool, class, version, &format)? {
            progress(physical, physical);
            return Ok(done);
        }

        let download = Stream::new(src.raw(), 0)
            .map_err(|e| src.err("open download stream for", &src_object, e))?;
        if let Err(e) = src_vol.download(&download, 0, 0, 0) {
            let mut err = src.err("download volume", &src_object, e);
            if err.is_unsupported() && src.is_test_driver() {
                err.message = format!(
                    "{} (the libvirt test driver has no volume download/upload streams; \
                     seed copies between test hosts are not possible)",
                    err.message
                );
            }
            abort_stream(download);
            return Err(err);
        }

        let xml = volume_xml(&copy_name, capacity, Some(0), &format, None);
        let dst_object = format!("{creation_pool}/{copy_name}");
        let new_vol = match StorageVol::create_xml(&pool, &xml, 0) {
            Ok(v) => v,
            Err(e) => {
                abort_stream(download);
                return Err(dst.err("create volume", &dst_object, e));
            }
        };
        let upload = match Stream::new(dst.raw(), 0) {
            Ok(s) => s,
            Err(e) => {
                abort_stream(download);
                dst.delete_partial(&new_vol, &dst_object);
                return Err(dst.err("open upload stream for", &dst_object, e));
            }
        };
        if let Err(e) = new_vol.upload(&upload, 0, 0, 0) {
            abort_stream(download);
            abort_stream(upload);
            dst.delete_partial(&new_vol, &dst_object);
            let mut err = dst.err("upload volume", &dst_object, e);
            if err.is_unsupported() && dst.is_test_driver() {
                err.message = format!(
                    "{} (the libvirt test driver has no volume upload streams)",
                    err.message
                );
            }
            return Err(err);
        }

        tracing::info!(from = src.uri(), to = dst.uri(), %dst_object, "streaming seed volume");
        progress(0, physical);
        let pumped = pump(&download, &upload, physical, progress);
        let done = match pumped {
            Ok(done) => done,
            Err(e) => {
                abort_stream(download);
                abort_stream(upload);
                dst.delete_partial(&new_vol, &dst_object);
                return Err(match e {
                    PumpError::Download(e) => src.err("download volume", &src_object, e),
                    PumpError::Upload(e) => dst.err("upload volume", &dst_object, e),
                    PumpError::Stalled(why) => dst.fail(HvErrorKind::Libvirt, OP, &dst_object, why),
                });
            }
        };
        if let Err(e) = download.finish() {
            abort_stream(upload);
            dst.delete_partial(&new_vol, &dst_object);
            return Err(src.err("finish download of volume", &src_object, e));
        }
        if let Err(e) = upload.finish() {
            dst.delete_partial(&new_vol, &dst_object);
            return Err(dst.err("finish upload of volume", &dst_object, e));
        }
        let copy = dst.mark_complete(&pool, creation_pool, &new_vol, class, version, format)?;
        progress(done, done);
        Ok(copy)
    }

    /// Writes the completion marker of a finished seed copy `volume` and describes the copy.
    fn mark_complete(
        &self,
        pool: &StoragePool,
        creation_pool: &str,
        volume: &StorageVol,
        class: &str,
        version: &str,
        format: String,
    ) -> Result<SeedCopy, HvError> {
        let copy_name = model::seed_copy_volume_name(class, version);
        let path = volume
            .path()
            .map_err(|e| self.err("read path of volume", &copy_name, e))?;
        self.create_marker(
            pool,
            creation_pool,
            &model::seed_copy_marker_name(class, version),
        )?;
        Ok(SeedCopy {
            class: class.to_string(),
            version: version.to_string(),
            volume: copy_name,
            path,
            format,
            complete: true,
        })
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
    fn find_volume(
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
    fn delete_unused(
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
    fn refuse_if_used(
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
    fn domains_using(&self, path: &str) -> Result<Vec<String>, HvError> {
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
    fn volumes_backed_by(
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

    /// The source volume of a seed with its capacity and format (`raw` when undeclared).
    fn source_volume(
        &self,
        pool_name: &str,
        name: &str,
    ) -> Result<(StorageVol, u64, String), HvError> {
        let object = format!("{pool_name}/{name}");
        let pool = self.lookup_pool("read seed source", pool_name)?;
        let vol = self.lookup_volume(&pool, pool_name, name)?;
        let info = vol
            .info()
            .map_err(|e| self.err("read info of volume", &object, e))?;
        let xml = vol
            .xml_desc(0)
            .map_err(|e| self.err("read volume", &object, e))?;
        let format = parse_volume_xml(&xml)
            .and_then(|i| i.format)
            .unwrap_or_else(|| "raw".into());
        if !matches!(format.as_str(), "qcow2" | "raw") {
            return Err(self.fail(
                HvErrorKind::InvalidInput,
                "read seed source",
                &object,
                format!("the seed's format is {format:?}; deskpool needs qcow2 or raw"),
            ));
        }
        Ok((vol, info.capacity, format))
    }

    /// With the volume lock held: a complete copy already in `pool` is returned; an incomplete
    /// one (copy without marker, or marker without copy) is deleted so the caller redoes it.
    fn existing_copy(
        &self,
        pool: &StoragePool,
        pool_name: &str,
        class: &str,
        version: &str,
        format: &str,
    ) -> Result<Option<SeedCopy>, HvError> {
        let copy_name = model::seed_copy_volume_name(class, version);
        let marker_name = model::seed_copy_marker_name(class, version);
        let copy = match self.lookup_volume(pool, pool_name, &copy_name) {
            Ok(v) => Some(v),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let marker = match self.lookup_volume(pool, pool_name, &marker_name) {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(e),
        };
        match (copy, marker) {
            (Some(copy), true) => {
                let object = format!("{pool_name}/{copy_name}");
                let path = copy
                    .path()
                    .map_err(|e| self.err("read path of volume", &object, e))?;
                let xml = copy
                    .xml_desc(0)
                    .map_err(|e| self.err("read volume", &object, e))?;
                let format = parse_volume_xml(&xml)
                    .and_then(|i| i.format)
                    .unwrap_or_else(|| format.to_string());
                Ok(Some(SeedCopy {
                    class: class.to_string(),
                    version: version.to_string(),
                    volume: copy_name,
                    path,
                    format,
                    complete: true,
                }))
            }
            (copy, marker) => {
                if marker {
                    self.delete_volume_locked(pool_name, &marker_name)?;
                }
                if let Some(copy) = copy {
                    tracing::info!(
                        uri = self.uri(),
                        volume = %copy_name,
                        "deleting an incomplete seed copy before copying again"
                    );
                    let object = format!("{pool_name}/{copy_name}");
                    self.delete_unused(&copy, &object, Some(pool))?;
                }
                Ok(None)
            }
        }
    }

    fn create_marker(
        &self,
        pool: &StoragePool,
        pool_name: &str,
        marker: &str,
    ) -> Result<(), HvError> {
        let object = format!("{pool_name}/{marker}");
        match self.lookup_volume(pool, pool_name, marker) {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let xml = volume_xml(marker, MARKER_BYTES, Some(0), "raw", None);
        StorageVol::create_xml(pool, &xml, 0)
            .map(|_| ())
            .map_err(|e| self.err("create completion marker", &object, e))
    }

    /// Deletes a partially written volume after a failed copy, logging (not returning) failure.
    fn delete_partial(&self, vol: &StorageVol, object: &str) {
        if let Err(e) = vol.delete(0) {
            tracing::warn!(
                uri = self.uri(),
                object,
                "deleting partial volume: {}",
                e.message()
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_seed_names(
        &self,
        op: &str,
        src_pool: &str,
        src_volume: &str,
        creation_pool: &str,
        class: &str,
        version: &str,
    ) -> Result<(), HvError> {
        self.check_name(op, "pool", src_pool)?;
        self.check_name(op, "volume", src_volume)?;
        self.check_name(op, "pool", creation_pool)?;
        self.check_name(op, "class", class)?;
        self.check_name(op, "version", version)
    }
}

/// Why moving data between the two streams stopped.
enum PumpError {
    Download(virt::error::Error),
    Upload(virt::error::Error),
    /// A stream returned a count that a blocking stream never should (0 sent, or negative).
    Stalled(&'static str),
}

/// Moves everything from `download` into `upload`; returns the bytes moved.
fn pump(
    download: &Stream,
    upload: &Stream,
    total: u64,
    progress: &dyn Fn(u64, u64),
) -> Result<u64, PumpError> {
    let mut buf = vec![0u8; STREAM_CHUNK];
    let mut done: u64 = 0;
    loop {
        let got = download.recv(&mut buf).map_err(PumpError::Download)?;
        let got = match usize::try_from(got) {
            Ok(0) => return Ok(done),
            Ok(n) => n.min(buf.len()),
            Err(_) => return Err(PumpError::Stalled("the download stream returned no data")),
        };
        let mut sent = 0;
        while sent < got {
            let n = upload.send(&buf[sent..got]).map_err(PumpError::Upload)?;
            match usize::try_from(n) {
                Ok(n) if n > 0 => sent += n,
                _ => return Err(PumpError::Stalled("the upload stream accepted no data")),
            }
        }
        done += got as u64;
        progress(done, total.max(done));
    }
}

fn abort_stream(stream: Stream) {
    if let Err(e) = stream.abort() {
        tracing::debug!("aborting stream: {}", e.message());
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
