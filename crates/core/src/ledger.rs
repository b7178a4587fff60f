//! The login ledger: which ready desktop a login gets, the logins waiting for one (per class,
//! first come first served), the replacements owed to classes, and the served/instant/wait/
//! refused counts. The engine and the simulator both keep their logins here, so they hand out
//! desktops by one rule.
//!
//! It also holds the rules of a disconnect, which both follow: a disconnected user's desktop
//! stays theirs for the class's `disconnect_grace_secs` ([`holds`]); a login of that user and
//! class within it gets the same desktop back and counts as an instant login
//! ([`Ledger::reconnected`]); once the grace is over ([`grace_over`]) it is recycled as at a
//! logout ([`Ledger::logged_out`]). A class with no grace treats a disconnect as a logout.
//!
//! And the rule of a mass logout (an outage ends many sessions at once; see
//! `crate::demand`): in a class with a grace, a logged-out desktop keeps its user's name and is
//! destroyed only [`LOGOUT_SETTLE_SECS`] after the logout ([`settling`]); when its logout turns
//! out to be part of a mass logout it is kept for that user as at a disconnect
//! ([`kept_after_mass_logout`]), so the reconnect that follows finds every desktop in place.
//!
//! Pure bookkeeping: no libvirt, no async runtime. A waiting login is any value `L` (the engine
//! keeps its reply channels in it, the simulator a user and a time).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::model::{DesktopMeta, ObservedDesktop, PoolState};
use crate::policy::{LogoutAction, Policy};

/// Whether `desktop` may be handed out to a login of `class`: a running buffered desktop of
/// that class with its disk. The caller adds what it alone knows (no job on it, its host up).
pub fn can_hand_out(desktop: &ObservedDesktop, class: &str) -> bool {
    desktop.meta.class == class
        && desktop.meta.pool == PoolState::Buffer
        && desktop.running
        && desktop.disk_problem.is_none()
}

/// The one hand-out rule: of the desktops that may be handed out, one on the class's current
/// seed `version` first, then the one created first (the name breaks ties, so the choice does
/// not depend on the order the candidates come in).
pub fn pick<'a>(
    candidates: impl IntoIterator<Item = &'a ObservedDesktop>,
    version: &str,
) -> Option<&'a ObservedDesktop> {
    candidates.into_iter().min_by(|a, b| {
        let key = |d: &'a ObservedDesktop| {
            (
                d.meta.seed_version != version,
                d.meta.created_at,
                d.name.as_str(),
            )
        };
        key(a).cmp(&key(b))
    })
}

/// Whether a user's disconnect keeps their desktop for them (the class has a grace), rather
/// than logging them out.
pub fn keeps_on_disconnect(policy: &Policy) -> bool {
    policy.disconnect_grace_secs > 0
}

/// Whether a disconnected desktop's grace is over at `now` (Unix seconds): counted from its
/// `changed_at`, the moment it was labelled disconnected.
pub fn grace_over(meta: &DesktopMeta, policy: &Policy, now: i64) -> bool {
    let grace = i64::try_from(policy.disconnect_grace_secs).unwrap_or(i64::MAX);
    meta.pool == PoolState::Disconnected && now >= meta.changed_at.saturating_add(grace)
}

/// Whether the desktop is still its user's at `now`: assigned, or disconnected within its
/// grace. A login of that user and class gets it back.
pub fn holds(meta: &DesktopMeta, policy: &Policy, now: i64) -> bool {
    match meta.pool {
        PoolState::Production => true,
        PoolState::Disconnected => !grace_over(meta, policy, now),
        _ => false,
    }
}

/// How long a logged-out desktop of a class with a disconnect grace waits before it is
/// destroyed: the window in which a mass logout is recognised, so that a wave's first logouts,
/// made before it was recognised, can still be kept for their users.
pub const LOGOUT_SETTLE_SECS: i64 = crate::demand::MASS_LOGOUT_WINDOW_SECS;

/// Whether a retired desktop is a logout's, still settling at `now`: the planner leaves it
/// for [`LOGOUT_SETTLE_SECS`] in a class with a grace (it is never handed out meanwhile; only
/// [`kept_after_mass_logout`] gives it back, to its own user).
pub fn settling(meta: &DesktopMeta, policy: &Policy, now: i64) -> bool {
    meta.pool == PoolState::Retired
        && meta.user.is_some()
        && keeps_on_disconnect(policy)
        && now < meta.changed_at.saturating_add(LOGOUT_SETTLE_SECS)
}

/// Whether a retired desktop is to be kept for `user` at `now`, their logout being part of a
/// mass logout: it is theirs, and still settling. It is then labelled disconnected for them.
pub fn kept_after_mass_logout(meta: &DesktopMeta, policy: &Policy, user: &str, now: i64) -> bool {
    settling(meta, policy, now) && meta.user.as_deref() == Some(user)
}

/// Logins waiting, replacements owed and login counts, per class.
pub struct Ledger<L> {
    waiting: HashMap<String, VecDeque<L>>,
    /// Replacements owed to classes that recycle on logout (one fresh desktop each, made even
    /// when the buffer is at its target).
    owed: HashMap<String, u32>,
    stats: HashMap<String, LoginStats>,
}

impl<L> Default for Ledger<L> {
    fn default() -> Self {
        Ledger {
            waiting: HashMap::new(),
            owed: HashMap::new(),
            stats: HashMap::new(),
        }
    }
}

impl<L> Ledger<L> {
    /// `login` waits for a desktop of `class`, after those already waiting.
    pub fn wait(&mut self, class: &str, login: L) {
        self.waiting
            .entry(class.to_string())
            .or_default()
            .push_back(login);
    }

    /// `login` waits first in line (it had a desktop that turned out unusable).
    pub fn wait_first(&mut self, class: &str, login: L) {
        self.waiting
            .entry(class.to_string())
            .or_default()
            .push_front(login);
    }

    pub fn has_waiting(&self) -> bool {
        self.waiting.values().any(|q| !q.is_empty())
    }

    /// How many logins of `class` wait.
    pub fn waiting_count(&self, class: &str) -> usize {
        self.waiting.get(class).map_or(0, VecDeque::len)
    }

    /// Every waiting login, by class.
    pub fn waiting(&self) -> impl Iterator<Item = (&str, &L)> {
        self.waiting
            .iter()
            .flat_map(|(c, q)| q.iter().map(move |l| (c.as_str(), l)))
    }

    /// The first waiting login of `class` for which `matches` holds.
    pub fn find_waiting_mut(
        &mut self,
        class: &str,
        matches: impl Fn(&L) -> bool,
    ) -> Option<&mut L> {
        self.waiting.get_mut(class)?.iter_mut().find(|l| matches(l))
    }

    /// Takes out the first waiting login of `class` for which `matches` holds.
    pub fn take_waiting(&mut self, class: &str, matches: impl Fn(&L) -> bool) -> Option<L> {
        let queue = self.waiting.get_mut(class)?;
        let pos = queue.iter().position(matches)?;
        let login = queue.remove(pos);
        if queue.is_empty() {
            self.waiting.remove(class);
        }
        login
    }

    /// Takes out the oldest waiting login of `class`.
    pub fn take_first(&mut self, class: &str) -> Option<L> {
        self.take_waiting(class, |_| true)
    }

    /// Takes out every waiting queue (to be tried and put back with [`Ledger::wait`]).
    pub fn take_all_waiting(&mut self) -> Vec<(String, VecDeque<L>)> {
        let mut all: Vec<_> = self.waiting.drain().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// One fresh desktop owed to `class` (a recycled logout's replacement).
    pub fn owe(&mut self, class: &str) {
        *self.owed.entry(class.to_string()).or_default() += 1;
    }

    /// A desktop of `class` is being made: one owed replacement fewer, if any.
    pub fn created(&mut self, class: &str) {
        if let Some(owed) = self.owed.get_mut(class) {
            *owed = owed.saturating_sub(1);
        }
    }

    /// What the planner must make whatever the buffer target: the owed replacements, and one
    /// desktop for each waiting login.
    pub fn owed_for_plan(&self) -> HashMap<String, u32> {
        let mut owed = self.owed.clone();
        for (class, queue) in &self.waiting {
            if !queue.is_empty() {
                *owed.entry(class.clone()).or_default() += queue.len() as u32;
            }
        }
        owed
    }

    /// A login of `class` handed a desktop: at once (`None`) or after waiting.
    pub fn served(&mut self, class: &str, waited: Option<Duration>) {
        self.stats_mut(class).record_served(waited);
    }

    /// A user of `class` logged out, or their disconnect's grace ran out: a class that recycles
    /// on logout is owed a fresh desktop in place of theirs.
    pub fn logged_out(&mut self, class: &str, policy: &Policy) {
        if policy.on_logout == LogoutAction::Recycle {
            self.owe(class);
        }
    }

    /// A logged-out desktop of `class` was kept for its user after all (a mass logout): the
    /// replacement its logout owed, if any, is no longer owed (the grace's end owes it again).
    pub fn kept_after_logout(&mut self, class: &str, policy: &Policy) {
        if policy.on_logout == LogoutAction::Recycle
            && let Some(owed) = self.owed.get_mut(class)
        {
            *owed = owed.saturating_sub(1);
        }
    }

    /// A disconnected user of `class` logged in again and got their desktop back: an instant
    /// login (nothing had to be made for it).
    pub fn reconnected(&mut self, class: &str) {
        self.served(class, None);
    }

    /// A login of `class` that got no desktop.
    pub fn refused(&mut self, class: &str) {
        self.stats_mut(class).refused += 1;
    }

    /// A desktop of `class` that failed to become ready.
    pub fn failed(&mut self, class: &str) {
        self.stats_mut(class).failures += 1;
    }

    /// The counts of `class`, with the logins waiting now.
    pub fn stats(&self, class: &str) -> LoginStats {
        let mut stats = self.stats.get(class).cloned().unwrap_or_default();
        stats.waiting = self.waiting_count(class) as u32;
        stats
    }

    fn stats_mut(&mut self, class: &str) -> &mut LoginStats {
        self.stats.entry(class.to_string()).or_default()
    }
}

/// Upper bounds (seconds) of the login wait histogram's buckets, `+Inf` implied. An instant
/// login counts as a 0 s wait; a waited one waits for a desktop to be made or to boot, which
/// takes seconds on a warm host and minutes on a cold or loaded one. Past 10 minutes a wait is
/// an outage, not a latency: only `+Inf` and the max gauge tell how long.
pub const LOGIN_WAIT_BUCKETS: [f64; 11] = [
    0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Logins served since the engine started, for the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoginStats {
    /// Desktops handed out (a user asking again for the one they hold is not counted).
    pub served: u64,
    /// Of those, served at once from the buffer.
    pub instant: u64,
    /// Logins waiting now for a desktop to become ready.
    pub waiting: u32,
    /// Total and longest wait of the logins that waited, in seconds.
    pub wait_secs_total: f64,
    pub wait_secs_max: f64,
    /// Served logins that waited at most `LOGIN_WAIT_BUCKETS[i]` (instant ones as 0 s),
    /// cumulative like Prometheus buckets; `served` is the `+Inf` bucket. Empty from an engine
    /// that predates the histogram.
    pub wait_le: Vec<u64>,
    /// Logins that got no desktop (empty buffer without waiting, or the wait ran out).
    pub refused: u64,
    /// Desktops that failed to become ready.
    pub failures: u64,
}

impl LoginStats {
    /// One login handed a desktop: at once (`None`) or after waiting `waited`.
    pub fn record_served(&mut self, waited: Option<std::time::Duration>) {
        self.served += 1;
        let secs = match waited {
            None => {
                self.instant += 1;
                0.0
            }
            Some(w) => {
                let secs = w.as_secs_f64();
                self.wait_secs_total += secs;
                self.wait_secs_max = self.wait_secs_max.max(secs);
                secs
            }
        };
        self.wait_le.resize(LOGIN_WAIT_BUCKETS.len(), 0);
        for (count, le) in self.wait_le.iter_mut().zip(LOGIN_WAIT_BUCKETS) {
            if secs <= le {
                *count += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DesktopMeta;

    fn desktop(name: &str, version: &str, created_at: i64) -> ObservedDesktop {
        ObservedDesktop {
            name: name.into(),
            host: "h".into(),
            meta: DesktopMeta {
                class: "office".into(),
                pool: PoolState::Buffer,
                seed_version: version.into(),
                user: None,
                created_at,
                changed_at: created_at,
                attempts: 0,
                term: 0,
            },
            running: true,
            persistent: true,
            disk_problem: None,
        }
    }

    #[test]
    fn the_current_seed_goes_first_then_the_oldest() {
        let all = [
            desktop("a", "v1", 10),
            desktop("b", "v2", 30),
            desktop("c", "v2", 20),
        ];
        assert_eq!(pick(&all, "v2").map(|d| d.name.as_str()), Some("c"));
        assert_eq!(pick(&all, "v1").map(|d| d.name.as_str()), Some("a"));
        assert_eq!(pick(&all[..0], "v1"), None);
    }

    #[test]
    fn waiting_logins_are_owed_a_desktop_each_on_top_of_replacements() {
        let mut ledger: Ledger<&str> = Ledger::default();
        ledger.owe("office");
        ledger.wait("office", "ann");
        ledger.wait("office", "bob");
        assert_eq!(ledger.owed_for_plan()["office"], 3);
        ledger.created("office");
        ledger.created("office");
        assert_eq!(ledger.owed_for_plan()["office"], 2);
        assert_eq!(ledger.take_first("office"), Some("ann"));
        ledger.served("office", Some(Duration::from_secs(5)));
        ledger.refused("office");
        let stats = ledger.stats("office");
        assert_eq!((stats.served, stats.instant, stats.refused), (1, 0, 1));
        assert_eq!(stats.waiting, 1);
    }
}

#[cfg(test)]
mod disconnect_tests {
    use super::*;
    use crate::model::DesktopMeta;
    use crate::policy::rules;

    fn meta(pool: PoolState, changed_at: i64) -> DesktopMeta {
        DesktopMeta {
            class: "office".into(),
            pool,
            seed_version: "v1".into(),
            user: Some("ann".into()),
            created_at: 0,
            changed_at,
            term: 0,
            attempts: 0,
        }
    }

    fn policy(grace: u64, on_logout: LogoutAction) -> Policy {
        Policy {
            cap: 10,
            buffer: rules::default_buffer(10),
            production: 0,
            periods: Vec::new(),
            events: Vec::new(),
            pacing: rules::DEFAULT_PACING,
            on_logout,
            on_shutoff: rules::DEFAULT_ON_SHUTOFF,
            ready_secs: rules::DEFAULT_READY_SECS,
            scale_down_delay_secs: rules::DEFAULT_SCALE_DOWN_DELAY_SECS,
            disconnect_grace_secs: grace,
            predictive: None,
        }
    }

    #[test]
    fn a_disconnected_desktop_is_its_users_until_the_grace_is_over() {
        let p = policy(300, LogoutAction::Recycle);
        let d = meta(PoolState::Disconnected, 1_000);
        assert!(keeps_on_disconnect(&p));
        assert!(holds(&d, &p, 1_000) && holds(&d, &p, 1_299));
        assert!(!grace_over(&d, &p, 1_299));
        assert!(grace_over(&d, &p, 1_300) && !holds(&d, &p, 1_300));
        // Production is held whatever the clock; the buffer and retired ones never are.
        assert!(holds(&meta(PoolState::Production, 0), &p, i64::MAX));
        assert!(!grace_over(&meta(PoolState::Production, 0), &p, i64::MAX));
        assert!(!holds(&meta(PoolState::Buffer, 1_000), &p, 1_000));
        assert!(!holds(&meta(PoolState::Retired, 1_000), &p, 1_000));
        // No grace: a disconnect is a logout.
        assert!(!keeps_on_disconnect(&policy(0, LogoutAction::Recycle)));
    }

    #[test]
    fn a_grace_that_runs_out_is_a_logout_and_a_reconnect_an_instant_login() {
        let mut ledger: Ledger<()> = Ledger::default();
        ledger.logged_out("office", &policy(300, LogoutAction::Recycle));
        ledger.logged_out("office", &policy(300, LogoutAction::Delete));
        assert_eq!(ledger.owed_for_plan()["office"], 1, "only recycle owes one");
        ledger.reconnected("office");
        let stats = ledger.stats("office");
        assert_eq!((stats.served, stats.instant), (1, 1));
    }

    #[test]
    fn a_logouts_desktop_settles_a_minute_and_only_its_user_can_keep_it() {
        let p = policy(300, LogoutAction::Recycle);
        let mut d = meta(PoolState::Retired, 1_000);
        d.user = Some("ann".into());
        assert!(settling(&d, &p, 1_000) && settling(&d, &p, 1_000 + LOGOUT_SETTLE_SECS - 1));
        assert!(!settling(&d, &p, 1_000 + LOGOUT_SETTLE_SECS));
        assert!(kept_after_mass_logout(&d, &p, "ann", 1_030));
        assert!(
            !kept_after_mass_logout(&d, &p, "bob", 1_030),
            "never another user's"
        );
        assert!(!kept_after_mass_logout(
            &d,
            &p,
            "ann",
            1_000 + LOGOUT_SETTLE_SECS
        ));
        // No grace: destroyed at once. Retired without a user (an admin's recycle, a grace
        // that ran out, a surplus): destroyed at once.
        assert!(!settling(&d, &policy(0, LogoutAction::Recycle), 1_000));
        let mut nobodys = meta(PoolState::Retired, 1_000);
        nobodys.user = None;
        assert!(!settling(&nobodys, &p, 1_000));
        // A kept logout owes no replacement; its grace's end will.
        let mut ledger: Ledger<()> = Ledger::default();
        ledger.logged_out("office", &p);
        ledger.kept_after_logout("office", &p);
        assert_eq!(
            ledger.owed_for_plan().get("office").copied().unwrap_or(0),
            0
        );
    }
}
