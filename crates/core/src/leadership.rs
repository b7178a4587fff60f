//! Which controller may act: with an `[ha]` section, several `deskpool serve` processes elect
//! one leader (through etcd, in the `deskpool-ha` crate); only the leader changes the hosts.
//! This is the plain data every layer shares: the engine gates its jobs on it, the snapshot
//! carries it to consoles and `/metrics`.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One controller taking part in the election.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerInfo {
    pub name: String,
    /// Where its broker endpoint listens (`https://host:port`), for followers to point at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
}

impl std::fmt::Display for ControllerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.advertise {
            Some(a) => write!(f, "{} at {a}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// No `[ha]` section: the only controller (the state directory's lock keeps it alone).
    Alone,
    /// Holds the lease and the election: the only controller that acts.
    Leader,
    /// Another controller leads (or the election is under way): watch, serve reads, refuse
    /// writes with where the leader is.
    Follower,
    /// The coordination service cannot be reached or the lease could not be renewed: act on
    /// nothing until it can.
    Lost,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Alone => "alone",
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Lost => "lost",
        }
    }
}

/// This controller's place in the election, as last learnt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leadership {
    pub role: Role,
    /// This controller's name (empty when alone).
    pub controller: String,
    /// The current leader's term: a number that grows with every election (etcd's revision
    /// of the leader key), 0 when unknown or alone.
    pub term: u64,
    /// The current leader, when known (this controller itself when it leads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<ControllerInfo>,
    /// Every controller registered with the coordination service, this one included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<ControllerInfo>,
    /// Why this controller does not lead, when that is worth saying (etcd unreachable, lease
    /// not renewed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Until when the lease is certainly held (the send time of the last renewal answered,
    /// plus the TTL it granted). A job starts only before it; not on the wire.
    #[serde(skip)]
    pub held_until: Option<Instant>,
}

impl Default for Leadership {
    fn default() -> Self {
        Leadership::alone()
    }
}

impl Leadership {
    /// A controller without `[ha]`: it always acts.
    pub fn alone() -> Leadership {
        Leadership {
            role: Role::Alone,
            controller: String::new(),
            term: 0,
            leader: None,
            controllers: Vec::new(),
            why: None,
            held_until: None,
        }
    }

    /// Whether a job that changes the hosts may start at `now`: alone, or leading with the
    /// lease still certainly held.
    pub fn may_act(&self, now: Instant) -> bool {
        match self.role {
            Role::Alone => true,
            Role::Leader => self.held_until.is_some_and(|until| now < until),
            Role::Follower | Role::Lost => false,
        }
    }

    /// Why a write sent here is refused, naming the leader when there is one.
    pub fn not_leading(&self) -> String {
        let name = if self.controller.is_empty() {
            "this controller".to_string()
        } else {
            format!("controller {}", self.controller)
        };
        match (&self.leader, &self.why) {
            (Some(leader), _) if self.role != Role::Leader => format!(
                "{name} is a follower: the leader is {leader} (term {}); send it there, or retry",
                self.term
            ),
            (_, Some(why)) => format!("{name} does not lead now ({why}); retry shortly"),
            _ => format!("{name} does not lead now and no leader is known yet; retry shortly"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_leader_may_act_only_while_its_lease_is_certainly_held() {
        let now = Instant::now();
        let mut l = Leadership {
            role: Role::Leader,
            controller: "a".into(),
            term: 7,
            held_until: Some(now + Duration::from_secs(5)),
            ..Leadership::alone()
        };
        assert!(l.may_act(now));
        assert!(!l.may_act(now + Duration::from_secs(5)));
        l.held_until = None;
        assert!(!l.may_act(now));
        assert!(Leadership::alone().may_act(now));
        l.role = Role::Follower;
        l.held_until = Some(now + Duration::from_secs(5));
        assert!(!l.may_act(now));
    }

    #[test]
    fn a_follower_names_the_leader_in_its_refusal() {
        let l = Leadership {
            role: Role::Follower,
            controller: "b".into(),
            term: 12,
            leader: Some(ControllerInfo {
                name: "a".into(),
                advertise: Some("https://a:8443".into()),
            }),
            ..Leadership::alone()
        };
        let why = l.not_leading();
        assert!(
            why.contains("the leader is a at https://a:8443 (term 12)"),
            "{why}"
        );
        let lost = Leadership {
            role: Role::Lost,
            controller: "b".into(),
            why: Some("etcd unreachable".into()),
            ..Leadership::alone()
        };
        assert!(lost.not_leading().contains("etcd unreachable"));
    }
}
