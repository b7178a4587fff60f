//! Desktop classes, hosts and policies: the pure description of what the fleet should be.
//! Nothing here does I/O; the config loader builds these values and the planner reads them.

pub mod access;
pub mod calendar;
pub mod ha;
pub mod names;
pub mod rules;
pub mod schedule;

pub use calendar::{Event, InForce, RuleSource};
pub use schedule::{ScheduleError, TimeOfDay, Weekdays};

use jiff::tz::TimeZone;

/// Everything deskpool is told to manage.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub engine: EngineSettings,
    pub console: ConsoleSettings,
    pub broker: BrokerSettings,
    /// The election among controllers; `None`: this controller is alone.
    pub ha: Option<ha::HaSettings>,
    pub hosts: Vec<HostSpec>,
    pub classes: Vec<ClassSpec>,
}

impl Fleet {
    pub fn class(&self, name: &str) -> Option<&ClassSpec> {
        self.classes.iter().find(|c| c.name == name)
    }
    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// Console settings (`[console]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsoleSettings {
    /// A built-in theme name or a theme file path; `--theme` overrides it.
    pub theme: Option<String>,
}

/// The broker socket and network endpoint (`[broker]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerSettings {
    /// Unix socket the engine serves its JSON API on; `None` means `STATE_DIR/deskpool.sock`.
    pub socket: Option<std::path::PathBuf>,
    /// The TCP endpoint serving the same API to clients with a token; `None`: no endpoint.
    pub listen: Option<std::net::SocketAddr>,
    /// TLS on the endpoint; without it the endpoint is on a loopback address.
    pub tls: Option<access::TlsFiles>,
    /// The token file the clients' tokens were read from (read again on a reload).
    pub tokens_file: Option<std::path::PathBuf>,
    pub tokens: Vec<access::ClientToken>,
}

impl BrokerSettings {
    /// The socket path, given the state directory in use.
    pub fn socket_path(&self, state_dir: &std::path::Path) -> std::path::PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| state_dir.join("deskpool.sock"))
    }
}

/// A clone of a desktop's disk is an overlay (seconds) and its boot a few seconds more: ten
/// minutes is far past a slow host and still short of a stuck call left forever.
pub const DEFAULT_CREATE_TIMEOUT_SECS: u64 = 600;
/// Destroying a domain and deleting its overlay take seconds; a NFS-backed pool that hangs
/// should not hold the desktop's slot for longer than this.
pub const DEFAULT_REMOVE_TIMEOUT_SECS: u64 = 300;

/// Engine-wide settings (`[engine]` in the config file).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// Seconds between two reconcile passes when nothing else wakes the engine.
    pub tick_secs: u64,
    /// Seconds between two full re-reads of every host (catches changes made behind deskpool's back).
    pub resync_secs: u64,
    /// A standby host that has not been needed for this long is drained and returned to standby.
    pub standby_idle_secs: u64,
    /// Name of the libvirt storage pool deskpool defines and owns on every host.
    pub creation_pool: String,
    /// Directory backing the creation pool on every host (a `dir` pool), unless a host overrides it.
    pub creation_pool_path: String,
    /// Attempts before a desktop that keeps failing is destroyed and reported.
    pub max_attempts: u32,
    /// First retry delay; doubled per failure up to `retry_max_secs`.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// A desktop's creation step (its disk made and its domain defined) or its boot that has not
    /// finished in this long is given up as stuck and retried with backoff.
    pub create_timeout_secs: u64,
    /// A removal (a desktop destroyed and undefined, a volume or a seed copy deleted) that has
    /// not finished in this long is given up as stuck and tried again at a later pass.
    pub remove_timeout_secs: u64,
    /// Time zone in which policy periods, events and holidays are read.
    pub timezone: TimeZone,
    /// The site's holidays (`[engine] holidays`, sorted by the loader): on these days the
    /// weekly periods are matched as on a Sunday (see [`calendar`]).
    pub holidays: Vec<jiff::civil::Date>,
    /// Where the lock file and runtime files live; `None` means the XDG state directory.
    pub state_dir: Option<std::path::PathBuf>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            tick_secs: 5,
            resync_secs: 30,
            standby_idle_secs: 1800,
            creation_pool: "deskpool".into(),
            creation_pool_path: "/var/lib/libvirt/deskpool".into(),
            max_attempts: 3,
            retry_base_secs: 5,
            retry_max_secs: 300,
            create_timeout_secs: DEFAULT_CREATE_TIMEOUT_SECS,
            remove_timeout_secs: DEFAULT_REMOVE_TIMEOUT_SECS,
            timezone: TimeZone::UTC,
            holidays: Vec::new(),
            state_dir: None,
        }
    }
}

/// A hypervisor host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    pub name: String,
    /// libvirt URI: `qemu:///system`, `qemu+ssh://h/system`, `test:///default`, ...
    pub uri: String,
    pub capacity: Capacity,
    /// A standby host is brought into service only when the active hosts are not enough.
    pub standby: bool,
    /// Run with `sh -c` before connecting to a standby host (wake-on-LAN, IPMI power on, ...).
    pub activate_command: Option<String>,
    /// Run with `sh -c` after a standby host has been drained and returned to standby.
    pub deactivate_command: Option<String>,
    /// Overrides [`EngineSettings::creation_pool_path`] for this host.
    pub creation_pool_path: Option<String>,
    /// Which libvirt domain type (accelerator) this host's desktops get.
    pub domain_type: DomainTypeSetting,
}

/// The libvirt domain type a host's desktops are defined with (`[[hosts]] domain_type`). KVM
/// that libvirt offers may still not boot a guest kernel (nested virtualisation such as PVM:
/// firmware runs, a stock kernel hangs), so a site can say what boots on each host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DomainTypeSetting {
    /// `kvm` when the host's libvirt capabilities offer a kvm domain, else `qemu`.
    #[default]
    Auto,
    /// Hardware virtualisation; refused at connect when the host does not offer it.
    Kvm,
    /// TCG emulation: slower, but boots wherever QEMU runs.
    Qemu,
}

impl DomainTypeSetting {
    /// The spellings the configuration file accepts, in the order they are listed in errors.
    pub const NAMES: [&'static str; 3] = ["auto", "kvm", "qemu"];

    pub fn parse(text: &str) -> Option<DomainTypeSetting> {
        match text {
            "auto" => Some(DomainTypeSetting::Auto),
            "kvm" => Some(DomainTypeSetting::Kvm),
            "qemu" => Some(DomainTypeSetting::Qemu),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DomainTypeSetting::Auto => "auto",
            DomainTypeSetting::Kvm => "kvm",
            DomainTypeSetting::Qemu => "qemu",
        }
    }
}

/// Direct kernel boot of a class's desktops (`[[classes]] boot`): files on each host, put into
/// the domain's `<os>` as `<kernel>`, `<initrd>` and `<cmdline>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectBoot {
    /// Absolute path of the kernel image on the host.
    pub kernel: String,
    /// Absolute path of the initramfs on the host.
    pub initrd: Option<String>,
    /// The kernel command line.
    pub cmdline: Option<String>,
}

/// How many desktops a host can run. Each limit that is set applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    pub desktops: Option<u32>,
    pub memory_mib: Option<u64>,
    pub vcpus: Option<u32>,
}

impl Capacity {
    /// How many more desktops of `class` fit, given what is already placed on the host.
    pub fn room_for(&self, used: &Usage, class: &ClassSpec) -> u32 {
        let mut room = u32::MAX;
        if let Some(max) = self.desktops {
            room = room.min(max.saturating_sub(used.desktops));
        }
        if let Some(max) = self.memory_mib {
            let free = max.saturating_sub(used.memory_mib);
            room = room.min(u32::try_from(free / class.memory_mib.max(1)).unwrap_or(u32::MAX));
        }
        if let Some(max) = self.vcpus {
            let free = max.saturating_sub(used.vcpus);
            room = room.min(free / class.vcpus.max(1));
        }
        room
    }

    /// How many desktops of `class` the empty host holds.
    pub fn total_for(&self, class: &ClassSpec) -> u32 {
        self.room_for(&Usage::default(), class)
    }
}

/// Resources taken on a host by the desktops placed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub desktops: u32,
    pub memory_mib: u64,
    pub vcpus: u32,
}

impl Usage {
    pub fn add(&mut self, class: &ClassSpec) {
        self.add_n(class, 1);
    }
    pub fn add_n(&mut self, class: &ClassSpec, n: u32) {
        self.desktops += n;
        self.memory_mib += class.memory_mib * u64::from(n);
        self.vcpus += class.vcpus * n;
    }
}

/// A desktop class: what its desktops are made of, and how many of them to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSpec {
    pub name: String,
    pub seed: SeedSpec,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub disk_gib: u64,
    /// libvirt domain XML template (its text), with `{placeholders}`; `None` uses the built-in one.
    pub template: Option<String>,
    /// Boot a kernel from the host's files instead of the disk's boot loader.
    pub boot: Option<DirectBoot>,
    /// When a booted desktop joins the buffer, and how long it may take.
    pub ready: crate::readiness::Readiness,
    pub policy: Policy,
}

/// Where a class's seed image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSpec {
    /// Storage pool holding the source volume.
    pub pool: String,
    /// Source volume name in that pool.
    pub volume: String,
    /// Version label; a new label makes deskpool copy the seed again and replace old desktops.
    pub version: String,
    /// Host whose pool holds the source; `None` means any host that has it (its own first).
    pub host: Option<String>,
}

/// How many desktops of a class to keep, and how fast to make them.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Most desktops of this class in all pools together.
    pub cap: u32,
    /// Buffer rule outside every period.
    pub buffer: BufferRule,
    /// Production expected outside every period.
    pub production: u32,
    pub periods: Vec<Period>,
    /// Dated events, which take precedence over the periods while in force; they never
    /// overlap one another.
    pub events: Vec<Event>,
    pub pacing: Pacing,
    pub on_logout: LogoutAction,
    /// What becomes of a production desktop found shut off.
    pub on_shutoff: ShutoffAction,
    /// Seconds a new desktop takes to become ready (clone + boot); the planner looks this far
    /// ahead so desktops are ready when a period starts.
    pub ready_secs: u64,
    /// A buffer surplus must last this long before desktops are removed (no flapping).
    pub scale_down_delay_secs: u64,
    /// A disconnected user's desktop stays theirs this long (a reconnect within it gets it
    /// back); after it, it is recycled as at a logout. 0: a disconnect is a logout.
    pub disconnect_grace_secs: u64,
    /// A predictive buffer: the spare follows the forecast of logins instead of the buffer
    /// rule's percentage (the rule's floor and ceiling still bound it). `None`: the rule alone.
    pub predictive: Option<Predictive>,
}

/// A buffer sized from the forecast of logins (`[classes.policy] predictive = { service_level =
/// 0.99 }`): the planner keeps ready, besides the desktop for the login at hand, the
/// `service_level` quantile of the logins expected while a new desktop is made (`ready_secs`),
/// assuming Poisson arrivals at the forecast rate. See [`crate::plan`] and
/// [`crate::demand`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Predictive {
    /// Share of logins that should find a ready desktop, 0.5..=0.9999.
    pub service_level: f64,
}

/// Unassigned ready desktops to hold: `percent` of the current production, at least `floor`,
/// at most `ceiling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferRule {
    pub floor: u32,
    pub percent: u32,
    pub ceiling: u32,
}

impl BufferRule {
    pub fn spare_for(&self, production: u32) -> u32 {
        let by_percent = (u64::from(production) * u64::from(self.percent)).div_ceil(100);
        let by_percent = u32::try_from(by_percent).unwrap_or(u32::MAX);
        by_percent.max(self.floor).min(self.ceiling)
    }
}

/// A recurring stretch of time with its own expected production and buffer rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// Days on which the period starts (a period ending past midnight runs into the next day).
    pub days: Weekdays,
    pub from: TimeOfDay,
    /// When `to <= from`, the period crosses midnight.
    pub to: TimeOfDay,
    pub production: u32,
    pub buffer: BufferRule,
}

/// Per host limits on concurrent work for one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub clones_per_host: u32,
    pub boots_per_host: u32,
}

/// What happens to a desktop when its user logs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutAction {
    /// Destroy it and make a fresh one in its place at once (the default).
    Recycle,
    /// Destroy it; a new one is made only when the buffer target asks for it.
    Delete,
}

/// What happens to a production (assigned) desktop found shut off (destroyed behind
/// deskpool's back, or shut down from inside the guest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShutoffAction {
    /// Start it again for its user: what was on its disk is kept (the default).
    #[default]
    Restart,
    /// Destroy it and give its user a fresh desktop at their next assign.
    Recycle,
}

impl Policy {
    /// The weekly period in force at `at`, if any, by weekday alone (no holidays, no events:
    /// [`Policy::in_force_at`] says what the planner applies).
    pub fn period_at(&self, at: jiff::Timestamp, tz: &TimeZone) -> Option<(usize, &Period)> {
        let local = at.to_zoned(tz.clone());
        let weekday = local.weekday();
        let time = TimeOfDay::from_civil(local.time());
        self.periods
            .iter()
            .enumerate()
            .find(|(_, p)| schedule::covers(p, weekday, time))
    }
}
