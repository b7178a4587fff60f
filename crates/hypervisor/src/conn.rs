//! A connection to one libvirt host.
//!
//! `virt::connect::Connect` panics in `Drop` when closing fails (a dead remote connection can do
//! that). [`HostConnection`] holds it in `ManuallyDrop` and closes it itself, logging a failure
//! instead. It is cheap to clone (an `Arc`), and `Send + Sync`: libvirt connections are
//! thread-safe, but libvirt keeps its last error per thread, so each operation here runs whole on
//! the calling thread and turns the error into an [`HvError`] before returning.

use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex, MutexGuard, Once};

use deskpool_core::policy::DomainTypeSetting;
use virt::connect::Connect;

use super::error::{HvError, HvErrorKind};

struct Inner {
    /// Never dropped by Rust: closed in `Inner::drop` through `virConnectClose`.
    conn: ManuallyDrop<Connect>,
    uri: String,
    read_only: bool,
    domain_type: String,
    /// Serialises volume operations on the creation pool: libvirt refuses some pool operations
    /// while another volume job runs on the same pool ("pool has asynchronous jobs running").
    volume_lock: Mutex<()>,
    /// Who the daemon is, once [`HostConnection::identify`] has read it.
    identity: Mutex<Option<DaemonIdentity>>,
}

/// Who a libvirt daemon is, read at connect, so that two `[[hosts]]` entries reaching one daemon
/// (one URI twice, `qemu:///system` and `qemu+unix:///system`, DNS aliases) are told apart from
/// two daemons. The machine's identity (host UUID, hostname) alone is not enough: the system and
/// the session daemon of one machine share it, yet are different daemons with different
/// domains and pools. What tells those apart is an object the daemon owns: the UUID of deskpool's
/// creation pool on it (made at connect, so every daemon deskpool uses has one). Both must
/// match for "same daemon": a pool UUID copied onto several machines by an admin's pool XML
/// still leaves the machines apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonIdentity {
    /// `<host><uuid>` of the capabilities (the machine's SMBIOS or generated UUID).
    pub host_uuid: Option<String>,
    /// `virConnectGetHostname`.
    pub hostname: Option<String>,
    /// The creation pool's name and UUID on this daemon; `None` when it does not exist (a
    /// read-only connection, which does not make it).
    pub pool: Option<(String, String)>,
    /// The URI as libvirt reports it for this connection, with the transport of a local socket
    /// dropped (`qemu+unix:///system` is `qemu:///system`); compared only when a pool is missing.
    pub uri: String,
}

impl DaemonIdentity {
    /// Whether `self` and `other` are the same daemon.
    pub fn same_daemon(&self, other: &DaemonIdentity) -> bool {
        if self.host_uuid != other.host_uuid || self.hostname != other.hostname {
            return false;
        }
        match (&self.pool, &other.pool) {
            (Some((_, a)), Some((_, b))) => a == b,
            // Without a pool to tell them apart (read-only), only the URI can; two spellings
            // of one remote host then stay undetected, but a read-only engine acts on nothing.
            _ => self.uri == other.uri,
        }
    }
}

impl std::fmt::Display for DaemonIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "hostname {}, host UUID {}",
            self.hostname.as_deref().unwrap_or("unknown"),
            self.host_uuid.as_deref().unwrap_or("unknown")
        )?;
        match &self.pool {
            Some((name, uuid)) => write!(f, ", creation pool {name} UUID {uuid}"),
            None => write!(f, ", URI {}", self.uri),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: `conn` holds one reference on a valid connection, owned by this struct and
        // released exactly once, here. The `Connect` wrapper is never dropped (ManuallyDrop),
        // so the reference is not released twice.
        let rc = unsafe { virt::sys::virConnectClose(self.conn.as_ptr()) };
        if rc < 0 {
            let err = virt::error::Error::last_error();
            tracing::warn!(uri = %self.uri, "closing libvirt connection failed: {}", err.message());
        }
    }
}

/// A connection to one libvirt host. Clones share the connection.
#[derive(Clone)]
pub struct HostConnection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HostConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConnection")
            .field("uri", &self.inner.uri)
            .field("read_only", &self.inner.read_only)
            .field("domain_type", &self.inner.domain_type)
            .finish()
    }
}

static QUIET_LIBVIRT: Once = Once::new();

impl HostConnection {
    /// Opens a connection to `uri` (`qemu:///system`, `qemu+ssh://h/system`, `test:///default`,
    /// `test:///abs/path.xml`, ...), its desktops' domain type chosen by `auto` (see
    /// [`HostConnection::open_as`]).
    pub fn open(uri: &str, read_only: bool) -> Result<HostConnection, HvError> {
        HostConnection::open_as(uri, read_only, DomainTypeSetting::Auto)
    }

    /// Opens a connection to `uri` whose new desktops get the domain type `setting` says:
    /// `kvm` or `qemu` as given (`kvm` is refused when libvirt's capabilities offer none), and
    /// for `auto` `kvm` when they offer it, else `qemu`. On libvirt's test driver it is always
    /// `test`, the only type that driver runs.
    ///
    /// libvirt's default error handler prints every error to stderr, which would scribble over
    /// the TUI; the first open replaces it with a silent one (errors still reach us as values).
    pub fn open_as(
        uri: &str,
        read_only: bool,
        setting: DomainTypeSetting,
    ) -> Result<HostConnection, HvError> {
        QUIET_LIBVIRT.call_once(virt::error::clear_error_callback);
        if uri.contains('\0') {
            return Err(HvError::new(
                HvErrorKind::InvalidInput,
                "connect to",
                "host",
                uri,
                "the URI contains a NUL character",
            ));
        }
        let opened = if read_only {
            Connect::open_read_only(Some(uri))
        } else {
            Connect::open(Some(uri))
        };
        let conn = opened.map_err(|e| HvError::libvirt("connect to", "host", uri, e))?;
        let chosen = choose_domain_type(&conn, setting);
        let host = HostConnection {
            inner: Arc::new(Inner {
                conn: ManuallyDrop::new(conn),
                uri: uri.to_string(),
                read_only,
                domain_type: chosen.clone().unwrap_or_default(),
                volume_lock: Mutex::new(()),
                identity: Mutex::new(None),
            }),
        };
        // On a refusal `host` is dropped here, which closes the connection.
        if let Err(why) = chosen {
            return Err(HvError::new(
                HvErrorKind::Unsupported,
                "connect to",
                "host",
                uri,
                why,
            ));
        }
        tracing::debug!(uri, domain_type = %host.domain_type(), "connected");
        Ok(host)
    }

    /// The URI this connection was opened with.
    pub fn uri(&self) -> &str {
        &self.inner.uri
    }

    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// Whether the connection still works (a remote host can go away).
    pub fn is_alive(&self) -> bool {
        self.inner.conn.is_alive().unwrap_or(false)
    }

    /// Domain type for new desktops (see [`HostConnection::open_as`]).
    pub fn domain_type(&self) -> &str {
        &self.inner.domain_type
    }

    /// Whether this is libvirt's mock `test` driver (in-memory volumes, no streams).
    pub fn is_test_driver(&self) -> bool {
        self.inner.domain_type == "test"
    }

    /// The host's memory in MiB and its number of active CPUs.
    pub fn node_capacity(&self) -> Result<(u64, u32), HvError> {
        let info = self
            .inner
            .conn
            .node_info()
            .map_err(|e| self.err("read node info of", "host", e))?;
        Ok((info.memory / 1024, info.cpus))
    }

    /// Reads who the daemon is (see [`DaemonIdentity`]), with the UUID of `creation_pool` when
    /// it exists, and keeps it for [`HostConnection::identity`]. Call it after
    /// [`HostConnection::ensure_creation_pool`].
    pub fn identify(&self, creation_pool: &str) -> Result<DaemonIdentity, HvError> {
        const OP: &str = "identify daemon of";
        let pool = match self.lookup_pool(OP, creation_pool) {
            Ok(pool) => Some((
                creation_pool.to_string(),
                pool.uuid_string()
                    .map_err(|e| self.err("read uuid of storage pool", creation_pool, e))?,
            )),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let host_uuid = self
            .inner
            .conn
            .capabilities()
            .ok()
            .and_then(|caps| capabilities_host_uuid(&caps));
        let hostname = self.inner.conn.hostname().ok();
        let uri = self
            .inner
            .conn
            .uri()
            .unwrap_or_else(|_| self.inner.uri.clone());
        let identity = DaemonIdentity {
            host_uuid,
            hostname,
            pool,
            uri: canonical_uri(&uri),
        };
        *self
            .inner
            .identity
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(identity.clone());
        Ok(identity)
    }

    /// The daemon's identity as [`HostConnection::identify`] last read it.
    pub fn identity(&self) -> Option<DaemonIdentity> {
        self.inner
            .identity
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The underlying `virt` connection, for what this layer does not wrap (tests use it to
    /// make foreign domains). Do not clone it: a cloned `Connect` panics when its close fails.
    pub fn raw(&self) -> &Connect {
        &self.inner.conn
    }

    /// Takes the creation pool's volume lock (see [`Inner::volume_lock`]). A poisoned lock is
    /// still usable: the `()` it guards cannot be left inconsistent.
    pub(crate) fn lock_volumes(&self) -> MutexGuard<'_, ()> {
        self.inner
            .volume_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The volume lock, if no volume operation holds it right now.
    pub(crate) fn try_lock_volumes(&self) -> Option<MutexGuard<'_, ()>> {
        match self.inner.volume_lock.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Builds an [`HvError`] for a failed libvirt call on this host.
    pub(crate) fn err(
        &self,
        op: &str,
        object: impl std::fmt::Display,
        e: virt::error::Error,
    ) -> HvError {
        HvError::libvirt(op, object, &self.inner.uri, e)
    }

    /// Builds an [`HvError`] deskpool raises itself for this host.
    pub(crate) fn fail(
        &self,
        kind: HvErrorKind,
        op: &str,
        object: impl std::fmt::Display,
        message: impl Into<String>,
    ) -> HvError {
        HvError::new(kind, op, object, &self.inner.uri, message)
    }

    /// Refuses a name that is not a safe libvirt object name (see `policy::names`).
    pub(crate) fn check_name(&self, op: &str, what: &str, name: &str) -> Result<(), HvError> {
        deskpool_core::policy::names::check_name(name).map_err(|why| {
            self.fail(
                HvErrorKind::InvalidInput,
                op,
                name,
                format!("invalid {what} name: {why}"),
            )
        })
    }
}

/// The domain type `setting` gives on this connection (see [`HostConnection::open_as`]), or
/// why it cannot be used there.
fn choose_domain_type(conn: &Connect, setting: DomainTypeSetting) -> Result<String, String> {
    if let Ok(driver) = conn.driver_type()
        && driver.eq_ignore_ascii_case("test")
    {
        return Ok("test".into());
    }
    let caps = conn.capabilities().map_err(|e| e.message().to_string());
    domain_type_for(setting, caps.as_deref().map_err(String::as_str))
}

/// [`choose_domain_type`] from the host's capabilities document (or the error reading them).
fn domain_type_for(setting: DomainTypeSetting, caps: Result<&str, &str>) -> Result<String, String> {
    match (setting, caps) {
        (DomainTypeSetting::Qemu, _) => Ok("qemu".into()),
        (DomainTypeSetting::Auto, Ok(caps)) if capabilities_offer_kvm(caps) => Ok("kvm".into()),
        (DomainTypeSetting::Auto, Ok(_)) => Ok("qemu".into()),
        (DomainTypeSetting::Auto, Err(why)) => {
            tracing::warn!("reading capabilities failed, assuming qemu: {why}");
            Ok("qemu".into())
        }
        (DomainTypeSetting::Kvm, Ok(caps)) if capabilities_offer_kvm(caps) => Ok("kvm".into()),
        (DomainTypeSetting::Kvm, Ok(_)) => Err(
            "domain_type = \"kvm\", but the host's libvirt offers no kvm domain (no usable \
             /dev/kvm there); set domain_type = \"qemu\" or \"auto\""
                .into(),
        ),
        (DomainTypeSetting::Kvm, Err(why)) => Err(format!(
            "domain_type = \"kvm\", but the host's capabilities do not read: {why}"
        )),
    }
}

/// The `<host><uuid>` of a capabilities document.
pub(crate) fn capabilities_host_uuid(caps: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(caps).ok()?;
    let host = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("host"))?;
    let uuid = host.children().find(|n| n.has_tag_name("uuid"))?.text()?;
    Some(uuid.trim().to_ascii_lowercase()).filter(|u| !u.is_empty())
}

/// `driver+unix:///path` is `driver:///path`: the local socket is the default transport.
fn canonical_uri(uri: &str) -> String {
    match uri.split_once("+unix://") {
        Some((driver, rest)) if !driver.contains(['/', ':']) => format!("{driver}://{rest}"),
        _ => uri.to_string(),
    }
}

/// Whether a capabilities document offers a `<domain type='kvm'/>` for some guest.
pub(crate) fn capabilities_offer_kvm(caps: &str) -> bool {
    let Ok(doc) = roxmltree::Document::parse(caps) else {
        return false;
    };
    doc.descendants().any(|n| {
        n.has_tag_name("domain")
            && n.attribute("type") == Some("kvm")
            && n.ancestors().any(|a| a.has_tag_name("guest"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<HostConnection>();
    }

    #[test]
    fn the_setting_decides_the_domain_type_and_kvm_must_be_offered() {
        let with = "<capabilities><guest><arch name='x86_64'><domain type='qemu'/>\
            <domain type='kvm'/></arch></guest></capabilities>";
        let without = "<capabilities><guest><arch name='x86_64'><domain type='qemu'/>\
            </arch></guest></capabilities>";
        use DomainTypeSetting::{Auto, Kvm, Qemu};
        assert_eq!(domain_type_for(Auto, Ok(with)).unwrap(), "kvm");
        assert_eq!(domain_type_for(Auto, Ok(without)).unwrap(), "qemu");
        assert_eq!(domain_type_for(Auto, Err("gone")).unwrap(), "qemu");
        // `qemu` is TCG even where KVM is offered: what boots a guest on nested PVM hosts.
        assert_eq!(domain_type_for(Qemu, Ok(with)).unwrap(), "qemu");
        assert_eq!(domain_type_for(Kvm, Ok(with)).unwrap(), "kvm");
        let refused = domain_type_for(Kvm, Ok(without)).unwrap_err();
        assert!(refused.contains("offers no kvm domain"), "{refused}");
        assert!(
            domain_type_for(Kvm, Err("gone"))
                .unwrap_err()
                .contains("gone")
        );
    }

    #[test]
    fn kvm_is_detected_from_capabilities() {
        let with = "<capabilities><guest><os_type>hvm</os_type><arch name='x86_64'>\
            <domain type='qemu'/><domain type='kvm'/></arch></guest></capabilities>";
        let without = "<capabilities><guest><os_type>hvm</os_type><arch name='x86_64'>\
            <domain type='qemu'/></arch></guest></capabilities>";
        assert!(capabilities_offer_kvm(with));
        assert!(!capabilities_offer_kvm(without));
        assert!(!capabilities_offer_kvm("<broken"));
    }

    fn identity(host: &str, pool: Option<&str>, uri: &str) -> DaemonIdentity {
        DaemonIdentity {
            host_uuid: Some(host.into()),
            hostname: Some("kvm01".into()),
            pool: pool.map(|p| ("deskpool".into(), p.into())),
            uri: canonical_uri(uri),
        }
    }

    #[test]
    fn one_machine_holds_two_daemons_told_apart_by_their_creation_pool() {
        let system = identity("m1", Some("p1"), "qemu:///system");
        let again = identity("m1", Some("p1"), "qemu+unix:///system");
        let session = identity("m1", Some("p2"), "qemu:///session");
        assert!(system.same_daemon(&again));
        assert!(!system.same_daemon(&session), "system vs session daemon");
        // A pool UUID copied to another machine does not make it the same daemon.
        assert!(!system.same_daemon(&identity("m2", Some("p1"), "qemu+ssh://kvm02/system")));
        // Without a pool (read-only), the canonical URI decides.
        let ro = identity("m1", None, "qemu+unix:///system");
        assert!(ro.same_daemon(&identity("m1", None, "qemu:///system")));
        assert!(!ro.same_daemon(&identity("m1", None, "qemu:///session")));
        assert!(
            system
                .to_string()
                .contains("creation pool deskpool UUID p1")
        );
    }

    #[test]
    fn host_uuid_is_read_from_capabilities() {
        let caps = "<capabilities><host><uuid>ABCD-1</uuid><cpu/></host>\
            <guest><os_type>hvm</os_type></guest></capabilities>";
        assert_eq!(capabilities_host_uuid(caps).as_deref(), Some("abcd-1"));
        assert_eq!(
            capabilities_host_uuid("<capabilities><host/></capabilities>"),
            None
        );
        assert_eq!(
            canonical_uri("qemu+unix:///session?socket=/s"),
            "qemu:///session?socket=/s"
        );
        assert_eq!(canonical_uri("qemu+ssh://h/system"), "qemu+ssh://h/system");
    }
}
