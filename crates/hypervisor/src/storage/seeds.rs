//! Seed copies: a class's seed volume copied into the creation pool, by a clone on the host
//! that holds it or streamed from another host, and marked complete only once all of it is
//! there (a copy without its marker is redone).

use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use crate::conn::HostConnection;
use crate::error::{HvError, HvErrorKind};
use crate::model::{self, SeedCopy};
use crate::xml::{parse_volume_xml, volume_xml};

/// Bytes moved per stream call when copying a seed between hosts.
pub const STREAM_CHUNK: usize = 4 << 20;
/// Size of the completion marker volume.
const MARKER_BYTES: u64 = 512;

impl HostConnection {
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
    pub(super) fn mark_complete(
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

    /// The source volume of a seed with its capacity and format (`raw` when undeclared).
    pub(super) fn source_volume(
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
    pub(super) fn existing_copy(
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

    pub(super) fn create_marker(
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
    pub(super) fn delete_partial(&self, vol: &StorageVol, object: &str) {
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
    pub(super) fn check_seed_names(
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
