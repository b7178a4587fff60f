//! A mass logout as a signal: when a large share of a class's production logs out within a
//! minute (an outage, a network cut, a broken gateway), those users are expected back within
//! minutes, and their replacements are ordered at once.
//!
//! A mass logout is `MASS_MIN_LOGOUTS` or more logouts in `MASS_WINDOW_SECS` that are at least
//! `MASS_SHARE` of the users logged in just before. Its users are expected back until none of
//! them has come back for `RECONNECT_QUIET_SECS` (so a mass logout nobody returns from, such as
//! the end of a shift, costs its desktops for that long only). When at least half of them came
//! back, the day is a *recognised outage*: a one-off day, not learnt as the usual week.
//!
//! The users of a mass logout are handed back to the caller ([`Logouts::logout`]) so that their
//! desktops are kept for them as at a disconnect: a class with a disconnect grace destroys a
//! logged-out desktop only [`MASS_WINDOW_SECS`] after the logout (`crate::ledger::settling`), so
//! the first logouts of a wave, made before it was recognised, are kept as well.

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};

/// The window in which a mass logout is counted.
pub(super) const MASS_WINDOW_SECS: i64 = 60;
/// The share of the users logged in just before that makes a mass logout.
pub(super) const MASS_SHARE: f64 = 0.25;
/// Fewer logouts than this are never a mass logout (a small class's two users leaving).
pub(super) const MASS_MIN_LOGOUTS: usize = 5;
/// Users of a mass logout are no longer expected when none came back for this long.
pub(super) const RECONNECT_QUIET_SECS: i64 = 180;

/// A mass logout whose users are expected back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct MassLogout {
    /// When it was recognised (Unix seconds).
    at: i64,
    /// Its users who have not logged in again.
    away: HashSet<String>,
    /// Its users in all, and those back so far.
    users: usize,
    back: usize,
    /// The last time one of them came back (or `at`).
    last_back: i64,
    /// Users of `away` whose own desktops are kept for them (nothing need be made for them).
    #[serde(default)]
    kept: HashSet<String>,
}

/// The logouts of the last minute and the mass logout under way, if any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Logouts {
    /// (Unix seconds, user) of the last `MASS_WINDOW_SECS`, oldest first.
    recent: VecDeque<(i64, String)>,
    mass: Option<MassLogout>,
}

impl Logouts {
    /// Records that `user` logged out at `at`, with `present` users still logged in after it.
    /// Returns the users whose logout this shows to be part of a mass logout: all of the last
    /// minute's when this logout makes one, `user` alone when it joins one under way, else none.
    pub(super) fn logout(&mut self, user: &str, at: i64, present: usize) -> Vec<String> {
        self.recent.push_back((at, user.to_string()));
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| *t <= at - MASS_WINDOW_SECS)
        {
            self.recent.pop_front();
        }
        if let Some(mass) = self.mass.as_mut().filter(|m| at - m.at <= MASS_WINDOW_SECS) {
            // A logout of the same wave: expected back too.
            if mass.away.insert(user.to_string()) {
                mass.users += 1;
            }
            return vec![user.to_string()];
        }
        let count = self.recent.len();
        let before = present + count;
        if count >= MASS_MIN_LOGOUTS && count as f64 >= MASS_SHARE * before as f64 {
            let away: HashSet<String> = self.recent.iter().map(|(_, u)| u.clone()).collect();
            let mut users: Vec<String> = away.iter().cloned().collect();
            users.sort();
            self.mass = Some(MassLogout {
                at,
                users: away.len(),
                away,
                back: 0,
                last_back: at,
                kept: HashSet::new(),
            });
            return users;
        }
        Vec::new()
    }

    /// Whether a logout at `at` joins a mass logout under way (within a minute of its
    /// recognition): its desktop is kept for its user.
    pub(super) fn in_wave(&self, at: i64) -> bool {
        self.mass
            .as_ref()
            .is_some_and(|m| at >= m.at && at - m.at <= MASS_WINDOW_SECS)
    }

    /// Records that `user` of the mass logout under way has their own desktop kept for them:
    /// they are no longer counted among the users whose desktops are to be made.
    pub(super) fn keep(&mut self, user: &str) {
        if let Some(mass) = self.mass.as_mut()
            && mass.away.contains(user)
        {
            mass.kept.insert(user.to_string());
        }
    }

    /// Records that `user` logged in at `at` (or got their kept desktop back); true when this
    /// makes the mass logout under way a recognised outage (half of its users back).
    pub(super) fn login(&mut self, user: &str, at: i64) -> bool {
        self.expire(at);
        let Some(mass) = self.mass.as_mut() else {
            return false;
        };
        mass.kept.remove(user);
        if !mass.away.remove(user) {
            return false;
        }
        mass.back += 1;
        mass.last_back = at;
        2 * mass.back >= mass.users && 2 * (mass.back - 1) < mass.users
    }

    /// Forgets a mass logout nobody came back from for [`RECONNECT_QUIET_SECS`].
    fn expire(&mut self, now: i64) {
        if self
            .mass
            .as_ref()
            .is_some_and(|m| now - m.last_back >= RECONNECT_QUIET_SECS || m.away.is_empty())
        {
            self.mass = None;
        }
    }

    /// Users of the mass logout under way expected back at `now`.
    /// Those whose desktops are kept are not counted: nothing need be made for them.
    pub(super) fn expected_back(&self, now: i64) -> f64 {
        match &self.mass {
            Some(m) if now - m.last_back < RECONNECT_QUIET_SECS && now >= m.at => {
                m.away.len().saturating_sub(m.kept.len()) as f64
            }
            _ => 0.0,
        }
    }
}
