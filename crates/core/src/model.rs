//! What deskpool reads from a host: its desktops (domains carrying deskpool metadata), the volumes
//! in its creation pool, and its seed copies. Plain data, shared by the hypervisor layer (which
//! fills it) and the planner (which reads it).

/// The XML namespace of deskpool's domain metadata element.
pub const METADATA_URI: &str = "https://deskpool.dev/xmlns/desktop/1";
/// The prefix used for that namespace in domain XML.
pub const METADATA_PREFIX: &str = "deskpool";
/// Every desktop domain and volume deskpool makes starts with this, so leftovers are recognisable.
pub const DESKTOP_PREFIX: &str = "dp-";
/// Seed copies in the creation pool are named `seed-<class>@<version>.img`, their completion
/// markers `seed-<class>@<version>.complete` (`@` never occurs in a validated name, so the class
/// and version can be read back unambiguously).
pub const SEED_COPY_PREFIX: &str = "seed-";

/// Which pool a desktop belongs to. Recorded in the domain's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PoolState {
    /// Being made: volume and domain exist, not yet booted and ready.
    Creation,
    /// Booted, ready, unassigned.
    Buffer,
    /// Assigned to a user.
    Production,
    /// Assigned to a user who disconnected (not logged out): kept for them for the class's
    /// `disconnect_grace_secs` from its `changed_at`, then recycled as at a logout.
    Disconnected,
    /// Released or surplus; being destroyed. Never handed out again.
    Retired,
}

impl PoolState {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolState::Creation => "creation",
            PoolState::Buffer => "buffer",
            PoolState::Production => "production",
            PoolState::Disconnected => "disconnected",
            PoolState::Retired => "retired",
        }
    }
    /// Whether a user holds the desktop (production, or disconnected within its grace).
    pub fn is_assigned(self) -> bool {
        matches!(self, PoolState::Production | PoolState::Disconnected)
    }
    pub fn parse(s: &str) -> Option<PoolState> {
        Some(match s {
            "creation" => PoolState::Creation,
            "buffer" => PoolState::Buffer,
            "production" => PoolState::Production,
            "disconnected" => PoolState::Disconnected,
            "retired" => PoolState::Retired,
            _ => return None,
        })
    }
}

/// deskpool's record of a desktop, stored in the domain's libvirt metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopMeta {
    pub class: String,
    pub pool: PoolState,
    pub seed_version: String,
    pub user: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last pool change.
    pub changed_at: i64,
    /// Failed attempts to make this desktop ready.
    pub attempts: u32,
    /// The leader's term when it last wrote this metadata (`[ha]`); 0 without an election.
    /// A controller that finds a term above its own learns that another one leads.
    pub term: u64,
}

/// A deskpool desktop seen on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedDesktop {
    pub name: String,
    pub host: String,
    pub meta: DesktopMeta,
    pub running: bool,
    /// Defined on the host (false: a transient domain, e.g. after `virsh undefine` of a running
    /// desktop; it vanishes at shutdown and its metadata can no longer be saved).
    pub persistent: bool,
    /// Why the desktop cannot run from its disk, when the host showed that its own volume (or
    /// an image backing it) is gone. `None` when the disk is there or could not be judged.
    pub disk_problem: Option<String>,
}

/// A seed copy in a host's creation pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedCopy {
    pub class: String,
    pub version: String,
    /// Volume name in the creation pool.
    pub volume: String,
    /// Path of the volume on the host (what overlays name as their backing store).
    pub path: String,
    /// Disk format of the copy (`qcow2` or `raw`), declared as the overlays' backing format.
    pub format: String,
    /// Whether the copy finished (its completion marker volume exists).
    pub complete: bool,
}

/// Everything deskpool reads from one host in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostObservation {
    pub desktops: Vec<ObservedDesktop>,
    /// Domains named like deskpool desktops but with no (or unreadable) deskpool metadata:
    /// leftovers of a creation interrupted between define and set-metadata.
    pub unlabelled_desktops: Vec<String>,
    /// Volumes in the creation pool named like desktop disks (`dp-*`).
    pub desktop_volumes: Vec<String>,
    pub seed_copies: Vec<SeedCopy>,
    /// Seed source volumes present on this host, as (pool, volume).
    pub seed_sources: Vec<(String, String)>,
}

/// Name of a desktop's disk volume in the creation pool.
pub fn desktop_volume_name(desktop: &str) -> String {
    format!("{desktop}.qcow2")
}

/// Name of a class's seed copy volume in the creation pool.
pub fn seed_copy_volume_name(class: &str, version: &str) -> String {
    format!("{SEED_COPY_PREFIX}{class}@{version}.img")
}

/// Name of the marker volume that says a seed copy is complete.
pub fn seed_copy_marker_name(class: &str, version: &str) -> String {
    format!("{SEED_COPY_PREFIX}{class}@{version}.complete")
}
