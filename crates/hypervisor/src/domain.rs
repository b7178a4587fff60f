//! Desktop domains: define (with metadata embedded, so a desktop never exists unlabelled by our
//! own hand), start, relabel, remove. Only domains named with [`model::DESKTOP_PREFIX`] are ever
//! touched.

use virt::domain::Domain;
use virt::error::ErrorNumber;
use virt::sys;

use super::conn::HostConnection;
use super::error::{HvError, HvErrorKind};
use super::model::{self, DesktopMeta, METADATA_PREFIX, METADATA_URI};
use super::xml::{
    DomainValues, builtin_template, display_address_from_xml, display_password_from_xml,
    domain_disk_sources, meta_element, network_interface_count, render_domain_xml,
};
use deskpool_core::policy::ClassSpec;

/// Why a desktop cannot be handed to a user right now. The message is the sentence the events
/// and the engine's replies show.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UnusableDesktop {
    #[error("it is not running")]
    NotRunning,
    /// Its own disk volume (`<name>.qcow2`) is unknown to libvirt at `path`, or unreadable.
    #[error("its disk {path} is gone")]
    DiskGone { path: String },
    /// It was shut off and starting it again failed.
    #[error("restarting it failed: {0}")]
    RestartFailed(HvError),
}

/// Everything needed to define one desktop domain.
#[derive(Debug, Clone, Copy)]
pub struct DesktopDefinition<'a> {
    /// Domain name; must start with [`model::DESKTOP_PREFIX`].
    pub name: &'a str,
    pub class: &'a ClassSpec,
    /// Path of the desktop's disk (the overlay made by `create_overlay`).
    pub disk_path: &'a str,
    /// Format of that disk (`qcow2` for overlays).
    pub disk_format: &'a str,
    pub meta: &'a DesktopMeta,
    /// Filled into the template's `{display_password}` (the built-in one sets it as the VNC
    /// password).
    pub display_password: &'a str,
}

/// Where a user's viewer connects to a desktop, and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Display {
    /// `spice://host:port` or `vnc://host:port`.
    pub address: String,
    /// The desktop's own display password (VNC) or ticket (SPICE), when it has one.
    pub password: Option<String>,
}

impl HostConnection {
    /// Defines (or redefines, keeping its UUID) the desktop's domain from its class template or
    /// the built-in one, with deskpool's metadata embedded.
    pub fn define_desktop(&self, def: &DesktopDefinition<'_>) -> Result<(), HvError> {
        const OP: &str = "define domain";
        self.check_desktop_name(OP, def.name)?;
        if def.disk_format.is_empty() || !def.disk_format.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(self.fail(
                HvErrorKind::InvalidInput,
                OP,
                def.name,
                format!("invalid disk format {:?}", def.disk_format),
            ));
        }
        if def.disk_path.contains('\0') {
            return Err(self.fail(
                HvErrorKind::InvalidInput,
                OP,
                def.name,
                "the disk path contains a NUL character",
            ));
        }
        // Redefining an existing desktop must keep its UUID (libvirt refuses a new one).
        let uuid = match self.raw().lookup_domain_by_name(def.name) {
            Ok(dom) => dom
                .uuid_string()
                .map_err(|e| self.err("read uuid of domain", def.name, e))?,
            Err(e) => {
                let err = self.err(OP, def.name, e);
                if !err.is_not_found() {
                    return Err(err);
                }
                new_uuid()
            }
        };
        let values = DomainValues {
            name: def.name,
            uuid: &uuid,
            memory_mib: def.class.memory_mib,
            vcpus: def.class.vcpus,
            disk_path: def.disk_path,
            disk_format: def.disk_format,
            domain_type: self.domain_type(),
            display_password: def.display_password,
            boot: def.class.boot.as_ref(),
        };
        let builtin;
        let template = match &def.class.template {
            Some(own) => own.as_str(),
            None => {
                builtin = builtin_template(def.class.ready.needs_probe());
                &builtin
            }
        };
        let xml = render_domain_xml(Some(template), &values, def.meta).map_err(|why| {
            self.fail(
                HvErrorKind::InvalidInput,
                OP,
                def.name,
                format!("template of class {}: {why}", def.class.name),
            )
        })?;
        self.raw()
            .define_domain_xml(&xml)
            .map(|_| ())
            .map_err(|e| self.err(OP, def.name, e))
    }

    /// Starts the desktop. Already running counts as started.
    pub fn start(&self, name: &str) -> Result<(), HvError> {
        const OP: &str = "start domain";
        self.check_desktop_name(OP, name)?;
        let dom = self.lookup_domain(OP, name)?;
        if dom.is_active().map_err(|e| self.err(OP, name, e))? {
            return Ok(());
        }
        match dom.create() {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = self.err(OP, name, e);
                // Started by someone else between the check and the call.
                if err.has_code(ErrorNumber::OperationInvalid) && dom.is_active().unwrap_or(false) {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Replaces the desktop's deskpool metadata, in its persistent config and, when it runs, in
    /// the live domain too (only there for a transient domain).
    pub fn set_meta(&self, name: &str, meta: &DesktopMeta) -> Result<(), HvError> {
        const OP: &str = "set metadata of domain";
        self.check_desktop_name(OP, name)?;
        let dom = self.lookup_domain(OP, name)?;
        let element = meta_element(meta, false);
        let set = |flags: u32| {
            dom.set_metadata(
                sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
                Some(&element),
                Some(METADATA_PREFIX),
                Some(METADATA_URI),
                flags,
            )
        };
        let running = dom.is_active().map_err(|e| self.err(OP, name, e))?;
        let persistent = dom.is_persistent().map_err(|e| self.err(OP, name, e))?;
        if running && !persistent {
            // Undefined behind our back while running: the live domain is all there is.
            return set(sys::VIR_DOMAIN_AFFECT_LIVE).map_err(|e| self.err(OP, name, e));
        }
        let config = sys::VIR_DOMAIN_AFFECT_CONFIG;
        if !running {
            return set(config).map_err(|e| self.err(OP, name, e));
        }
        match set(config | sys::VIR_DOMAIN_AFFECT_LIVE) {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = self.err(OP, name, e);
                // Stopped between the check and the call: the config is what remains.
                if err.has_code(ErrorNumber::OperationInvalid) && !dom.is_active().unwrap_or(true) {
                    set(config).map_err(|e| self.err(OP, name, e))
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Whether the domain runs (or is paused). `Domain::state()` swallows errors, so this
    /// asks `virDomainIsActive`. A missing domain is an error (see [`HvError::is_not_found`]).
    pub fn is_running(&self, name: &str) -> Result<bool, HvError> {
        const OP: &str = "check domain";
        let dom = self.lookup_domain(OP, name)?;
        dom.is_active().map_err(|e| self.err(OP, name, e))
    }

    /// Removes a desktop: destroys it if it runs, undefines it (with its nvram, TPM state,
    /// managed save and snapshot/checkpoint metadata where the driver knows them), deletes its
    /// disk volume. The disk is deleted where the domain's XML says it is (read before the
    /// undefine: `creation_pool` may have changed since the desktop was made), but only a disk
    /// named after the desktop (`<name>.qcow2`), never another disk a template attaches; then
    /// any `<name>.qcow2` left in `creation_pool`. Every part is idempotent: a missing domain
    /// or volume is fine, so an interrupted removal can simply be run again. A volume another
    /// domain uses is never deleted (see [`HostConnection::delete_volume`]).
    pub fn remove_desktop(&self, name: &str, creation_pool: &str) -> Result<(), HvError> {
        const OP: &str = "remove domain";
        self.check_desktop_name(OP, name)?;
        self.check_name(OP, "pool", creation_pool)?;
        let volume = model::desktop_volume_name(name);
        let mut disks = Vec::new();
        match self.raw().lookup_domain_by_name(name) {
            Ok(dom) => {
                disks = self.own_disks(&dom, name, &volume)?;
                self.destroy_and_undefine(&dom, name)?
            }
            Err(e) => {
                let err = self.err(OP, name, e);
                if !err.is_not_found() {
                    return Err(err);
                }
            }
        }
        let _guard = self.lock_volumes();
        for path in &disks {
            self.delete_volume_at_path_locked(path, &volume)?;
        }
        self.delete_volume_locked(creation_pool, &volume)
    }

    /// The paths of the domain's file disks named `volume` (its own disk), from its live and
    /// its persistent XML.
    fn own_disks(&self, dom: &Domain, name: &str, volume: &str) -> Result<Vec<String>, HvError> {
        let mut paths: Vec<String> = Vec::new();
        for flags in [0, sys::VIR_DOMAIN_XML_INACTIVE] {
            let xml = match dom.xml_desc(flags) {
                Ok(xml) => xml,
                Err(e) => {
                    let err = self.err("read domain", name, e);
                    if err.is_not_found() {
                        break;
                    }
                    return Err(err);
                }
            };
            for disk in domain_disk_sources(&xml) {
                let own = std::path::Path::new(&disk.path)
                    .file_name()
                    .is_some_and(|f| f == volume);
                if own && !paths.contains(&disk.path) {
                    paths.push(disk.path);
                }
            }
        }
        Ok(paths)
    }

    fn destroy_and_undefine(&self, dom: &Domain, name: &str) -> Result<(), HvError> {
        let active = match dom.is_active() {
            Ok(a) => a,
            Err(e) => {
                let err = self.err("check domain", name, e);
                return if err.is_not_found() { Ok(()) } else { Err(err) };
            }
        };
        if active && let Err(e) = dom.destroy() {
            let err = self.err("destroy domain", name, e);
            let gone = err.is_not_found()
                || (err.has_code(ErrorNumber::OperationInvalid)
                    && !dom.is_active().unwrap_or(true));
            if !gone {
                return Err(err);
            }
        }
        // Newest flags first; older hosts and the test driver refuse flags they do not know
        // ("unsupported flags"), so fall back step by step to a plain undefine.
        let base =
            sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
        let full =
            base | sys::VIR_DOMAIN_UNDEFINE_NVRAM | sys::VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
        let attempts = [
            Some(full | sys::VIR_DOMAIN_UNDEFINE_TPM),
            Some(full),
            Some(base),
            None,
        ];
        let mut last = None;
        for flags in attempts {
            let result = match flags {
                Some(flags) => dom.undefine_flags(flags),
                None => dom.undefine(),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let err = self.err("undefine domain", name, e);
                    if err.is_not_found() {
                        return Ok(());
                    }
                    tracing::debug!(flags, "undefine refused: {err}");
                    last = Some(err);
                }
            }
        }
        match last {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// How many network interfaces the desktop's domain gives its guest (its live XML when it
    /// runs, else its definition).
    pub fn network_interfaces(&self, name: &str) -> Result<usize, HvError> {
        const OP: &str = "read network interfaces of domain";
        let dom = self.lookup_domain(OP, name)?;
        let xml = dom.xml_desc(0).map_err(|e| self.err(OP, name, e))?;
        Ok(network_interface_count(&xml))
    }

    /// The desktop's display as `spice://host:port` or `vnc://host:port`, read from its live
    /// XML; `None` when it does not run, has no graphics, or no port is assigned.
    pub fn display_address(&self, name: &str) -> Result<Option<String>, HvError> {
        const OP: &str = "read display of domain";
        let dom = self.lookup_domain(OP, name)?;
        if !dom.is_active().map_err(|e| self.err(OP, name, e))? {
            return Ok(None);
        }
        let xml = dom.xml_desc(0).map_err(|e| self.err(OP, name, e))?;
        Ok(display_address_from_xml(&xml))
    }

    /// The desktop's display and its password (from the secure XML, which only a read-write
    /// connection may read; a read-only one gets the address alone). `None` when it does not
    /// run or shows no port.
    pub fn display(&self, name: &str) -> Result<Option<Display>, HvError> {
        const OP: &str = "read display of domain";
        let dom = self.lookup_domain(OP, name)?;
        if !dom.is_active().map_err(|e| self.err(OP, name, e))? {
            return Ok(None);
        }
        let xml = match dom.xml_desc(sys::VIR_DOMAIN_XML_SECURE) {
            Ok(xml) => xml,
            Err(_) => dom.xml_desc(0).map_err(|e| self.err(OP, name, e))?,
        };
        Ok(display_address_from_xml(&xml).map(|address| Display {
            address,
            password: display_password_from_xml(&xml),
        }))
    }

    /// Whether a desktop can be handed to a user right now: it runs, and its own disk volume
    /// is there. `Ok(Err(why))` says why not.
    pub fn check_usable(&self, name: &str) -> Result<Result<(), UnusableDesktop>, HvError> {
        const OP: &str = "check domain";
        let dom = self.lookup_domain(OP, name)?;
        if !dom.is_active().map_err(|e| self.err(OP, name, e))? {
            return Ok(Err(UnusableDesktop::NotRunning));
        }
        Ok(match self.own_disk_problem(&dom, name)? {
            Some(problem) => Err(problem),
            None => Ok(()),
        })
    }

    /// Why the desktop's own disk volume (`<name>.qcow2`, wherever its domain points) is
    /// unusable, if it is: libvirt knows no volume at that path, or cannot read it
    /// ([`UnusableDesktop::DiskGone`]).
    pub fn own_disk_problem(
        &self,
        dom: &Domain,
        name: &str,
    ) -> Result<Option<UnusableDesktop>, HvError> {
        let xml = dom
            .xml_desc(0)
            .map_err(|e| self.err("read domain", name, e))?;
        let own = model::desktop_volume_name(name);
        for disk in domain_disk_sources(&xml) {
            if disk.path.rsplit('/').next() != Some(own.as_str()) {
                continue;
            }
            let readable = self
                .raw()
                .lookup_storage_vol_by_path(&disk.path)
                .is_ok_and(|vol| vol.info().is_ok());
            if !readable {
                return Ok(Some(UnusableDesktop::DiskGone { path: disk.path }));
            }
        }
        Ok(None)
    }

    fn lookup_domain(&self, op: &str, name: &str) -> Result<Domain, HvError> {
        self.raw()
            .lookup_domain_by_name(name)
            .map_err(|e| self.err(op, name, e))
    }

    /// Desktop names must be valid names and carry deskpool's prefix: this layer never
    /// changes a domain that is not one of deskpool's desktops.
    fn check_desktop_name(&self, op: &str, name: &str) -> Result<(), HvError> {
        self.check_name(op, "desktop", name)?;
        if !name.starts_with(model::DESKTOP_PREFIX) || name.len() == model::DESKTOP_PREFIX.len() {
            return Err(self.fail(
                HvErrorKind::InvalidInput,
                op,
                name,
                format!(
                    "not a deskpool desktop name (must start with {:?})",
                    model::DESKTOP_PREFIX
                ),
            ));
        }
        Ok(())
    }
}

/// A fresh display password for one desktop: 8 characters (VNC uses no more) from
/// `[a-zA-Z0-9]`, drawn from the kernel's random source (a desktop with a guessable
/// password is open to every local account that can reach its port).
pub fn new_display_password() -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(8);
    while out.len() < 8 {
        for b in random_bytes::<16>() {
            // Rejection sampling keeps the characters uniform (256 is not a multiple of 62).
            if (b as usize) < 248 && out.len() < 8 {
                out.push(ALPHABET[b as usize % 62] as char);
            }
        }
    }
    out
}

/// A random (version 4) UUID.
fn new_uuid() -> String {
    let mut bytes = random_bytes::<16>();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `N` random bytes from the kernel's random source; if that cannot be read, from std's
/// randomly keyed hasher mixed with the time and a counter (unique, if less random).
fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut bytes = [0u8; N];
    let from_kernel = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !from_kernel {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(nanos);
            h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            h.write_u32(std::process::id());
            let word = h.finish().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let a = new_uuid();
        let b = new_uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn display_passwords_are_eight_alphanumerics_and_distinct() {
        let a = new_display_password();
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, new_display_password());
    }
}
