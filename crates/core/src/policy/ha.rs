//! Two or more controllers and one leader (`[ha]` in the config file).

/// How this controller takes part in the election of the one that acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaSettings {
    /// The etcd endpoints (`http://host:2379`), tried in turn.
    pub etcd: Vec<String>,
    /// This controller's name among the others (default: the machine's host name).
    pub name: String,
    /// Where this controller's broker endpoint listens, as the others should tell clients
    /// (`https://ctl-a.example:8443`).
    pub advertise: Option<String>,
    /// The key prefix in etcd of this fleet's election; controllers of one fleet share it.
    pub election: String,
    /// How long the lease lives without a renewal; renewed every third of it.
    pub lease_ttl_secs: u64,
}

/// KubeVirt's and Kubernetes' leader-election default (lease 15 s, renewed well within it).
pub const DEFAULT_LEASE_TTL_SECS: u64 = 15;
/// etcd refuses leases shorter than about its election timeout; 2 s is the shortest that works
/// with a default etcd.
pub const MIN_LEASE_TTL_SECS: u64 = 2;
pub const MAX_LEASE_TTL_SECS: u64 = 300;
pub const DEFAULT_ELECTION: &str = "deskpool";
