//! Logins and releases: joining, serving from the buffer by the ledger's rule, waiting.

use super::*;

impl EngineState {
    pub(super) fn assign(
        &mut self,
        class: String,
        user: String,
        wait_secs: u64,
        reply: RequestId,
    ) -> Option<CommandResult> {
        if self.fleet.class(&class).is_none() {
            return Some(Err(CommandError::not_found(format!(
                "unknown class {class:?}"
            ))));
        }
        if let Err(e) = deskpool_core::policy::names::check_name(&user) {
            return Some(Err(CommandError::invalid(format!("user: {e}"))));
        }
        let now = self.now.mono;
        let deadline = now + Duration::from_secs(wait_secs);
        // A request of a user whose login is already under way gets that login's answer.
        if self.join_login(&class, &user, reply, deadline) {
            return None;
        }
        if !self.fleet_known() {
            // The user may hold a desktop on a host not read yet: wait for the first reads.
            let login = Login {
                class: class.clone(),
                user,
                replies: vec![reply],
                asked: now,
                deadline: deadline.max(now + FIRST_READ_GRACE),
                instant: true,
                given_back: false,
                reconnect: false,
            };
            self.ledger.wait(&class, login);
            return None;
        }
        let login = Login {
            class: class.clone(),
            user,
            replies: vec![reply],
            asked: now,
            deadline,
            instant: true,
            given_back: false,
            reconnect: false,
        };
        let holders = self.holders();
        match self.try_login(login, &holders) {
            Tried::Underway => {}
            Tried::OwnBusy(login) => {
                let login = Login {
                    deadline: login.deadline.max(now + OWN_DESKTOP_GRACE),
                    instant: false,
                    ..login
                };
                self.ledger.wait(&class, login);
            }
            Tried::NoDesktop(login) if wait_secs > 0 => {
                let login = Login {
                    instant: false,
                    ..login
                };
                self.ledger.wait(&class, login);
            }
            Tried::NoDesktop(login) => {
                self.refuse(login, format!("no {class} desktop is ready in the buffer"));
            }
        }
        None
    }

    /// Whether the engine knows which desktops exist: every host has answered its first
    /// connection (or has had [`FIRST_READ_GRACE`] to do so).
    pub(super) fn fleet_known(&self) -> bool {
        self.unread_hosts.is_empty() || self.now.mono >= FIRST_READ_GRACE
    }

    /// Adds `reply` to the login of (`class`, `user`) under way, if there is one (it then waits
    /// until the later of both deadlines); says whether there was.
    pub(super) fn join_login(
        &mut self,
        class: &str,
        user: &str,
        reply: RequestId,
        deadline: Duration,
    ) -> bool {
        let same = |l: &Login| l.class == class && l.user == user;
        let login = match self.pending_assign.values_mut().find(|l| same(l)) {
            Some(login) => Some(login),
            None => self.ledger.find_waiting_mut(class, same),
        };
        match login {
            Some(login) => {
                login.replies.push(reply);
                login.deadline = login.deadline.max(deadline);
                true
            }
            None => false,
        }
    }

    /// The desktop each user holds, by (class, user): assigned, or disconnected within its
    /// class's grace (the ledger's rule).
    pub(super) fn holders(&self) -> HashMap<(String, String), String> {
        let now = self.now().as_second();
        self.desktops
            .values()
            .filter(|d| {
                self.fleet
                    .class(&d.value.meta.class)
                    .is_some_and(|c| ledger::holds(&d.value.meta, &c.policy, now))
            })
            .filter_map(|d| {
                let user = d.value.meta.user.clone()?;
                Some(((d.value.meta.class.clone(), user), d.value.name.clone()))
            })
            .collect()
    }

    /// Serves a login if it can: the user's own desktop back (checked, and started again if
    /// the class says so), else a ready one from the buffer.
    pub(super) fn try_login(
        &mut self,
        login: Login,
        holders: &HashMap<(String, String), String>,
    ) -> Tried {
        let own = holders
            .get(&(login.class.clone(), login.user.clone()))
            .and_then(|name| self.desktops.get(name))
            .map(|d| d.value.clone());
        if let Some(desktop) = own {
            let name = desktop.name.clone();
            let reconnect = desktop.meta.pool == PoolState::Disconnected;
            if self.in_flight.contains(&JobKey::Desktop(name.clone())) {
                return Tried::OwnBusy(login);
            }
            if !self.connected(&desktop.host) {
                self.answer_login(
                    login,
                    Err(CommandError::unavailable(format!(
                        "your desktop {name} is on host {}, which is not reachable",
                        desktop.host
                    ))),
                );
                return Tried::Underway;
            }
            let spec = self.fleet.class(&desktop.meta.class);
            let restart = spec.is_some_and(plan::restarts_on_shutoff);
            let read_address = spec.is_some_and(|c| c.ready.needs_probe());
            let job = Job::Reclaim {
                desktop,
                restart,
                now: self.now().as_second(),
                read_address,
            };
            let login = Login {
                given_back: true,
                reconnect,
                ..login
            };
            self.pending_assign.insert(name.clone(), login);
            self.spawn(JobKey::Desktop(name), job);
            return Tried::Underway;
        }
        match self.ready_desktop(&login.class) {
            Some(desktop) => {
                self.hand_out(desktop, login);
                Tried::Underway
            }
            None => Tried::NoDesktop(login),
        }
    }

    /// A login that gets no desktop: counted, told why, and an event for the console and log.
    pub(super) fn refuse(&mut self, login: Login, why: String) {
        self.ledger.refused(&login.class);
        let (class, user) = (login.class.clone(), login.user.clone());
        self.answer_login(login, Err(CommandError::unavailable(why.clone())));
        self.emit(
            EventKind::LoginRefused,
            Some(&class),
            None,
            None,
            format!("{user} refused: {why}"),
        );
    }

    /// Sends `result` to every request of `login`.
    pub(super) fn answer_login(&mut self, login: Login, result: CommandResult) {
        for id in login.replies {
            self.answer(id, result.clone());
        }
    }

    /// The buffered desktop a login of `class` gets, by the ledger's rule, among those no job
    /// is on and whose host is up.
    pub(super) fn ready_desktop(&self, class: &str) -> Option<ObservedDesktop> {
        let version = &self.fleet.class(class)?.seed.version;
        let usable = |h: &str| {
            self.hosts
                .get(h)
                .is_some_and(|rt| rt.status == HostStatus::Active && rt.connected)
        };
        let candidates = self.desktops.values().map(|d| &d.value).filter(|d| {
            ledger::can_hand_out(d, class)
                && !self.in_flight.contains(&JobKey::Desktop(d.name.clone()))
                && usable(&d.host)
        });
        ledger::pick(candidates, version).cloned()
    }

    /// Labels `desktop` for the login; the reply goes out when the label is written.
    pub(super) fn hand_out(&mut self, desktop: ObservedDesktop, login: Login) {
        if !self.connected(&desktop.host) {
            self.answer_login(
                login,
                Err(CommandError::unavailable("host connection lost")),
            );
            return;
        }
        let now = self.now().as_second();
        let name = desktop.name.clone();
        let read_address = self
            .fleet
            .class(&desktop.meta.class)
            .is_some_and(|c| c.ready.needs_probe());
        let job = Job::Assign {
            desktop,
            user: login.user.clone(),
            now,
            read_address,
        };
        self.pending_assign.insert(name.clone(), login);
        self.spawn(JobKey::Desktop(name), job);
    }

    /// Gives newly ready desktops to waiting logins, and turns away those whose wait ran out.
    pub(super) fn serve_waiting(&mut self) {
        if !self.ledger.has_waiting() {
            return;
        }
        let now = self.now.mono;
        let known = self.fleet_known();
        let holders = if known {
            self.holders()
        } else {
            HashMap::new()
        };
        for (class, queue) in self.ledger.take_all_waiting() {
            let mut left = VecDeque::new();
            let mut buffer_empty = false;
            for login in queue {
                // First come, first served: once the buffer had nothing for one login, the
                // later ones are tried only for their own desktops.
                let holds = holders.contains_key(&(login.class.clone(), login.user.clone()));
                let tried = if !known || (buffer_empty && !holds) {
                    Tried::NoDesktop(login)
                } else {
                    self.try_login(login, &holders)
                };
                let login = match tried {
                    Tried::Underway => continue,
                    Tried::NoDesktop(login) => {
                        buffer_empty = true;
                        login
                    }
                    Tried::OwnBusy(login) => login,
                };
                if login.deadline <= now {
                    let waited = now.saturating_sub(login.asked).as_secs();
                    self.refuse(
                        login,
                        format!("no {class} desktop became ready within {waited}s"),
                    );
                    continue;
                }
                left.push_back(login);
            }
            for login in left {
                self.ledger.wait(&class, login);
            }
        }
    }

    /// Release (a logout), disconnect (a session ended without one) or recycle (an admin
    /// action) a desktop: labelled retired, then destroyed; or, for a disconnect under the
    /// class's grace, labelled disconnected and kept for its user (a class without a grace
    /// takes a disconnect as a logout). The answer goes out once the label is on the host, so
    /// one that was answered survives a crash; a second request while the label is written gets
    /// the same answer.
    pub(super) fn release(
        &mut self,
        desktop: &str,
        actor: &str,
        ending: Ending,
        reply: RequestId,
    ) -> Option<CommandResult> {
        let Some(d) = self.desktops.get(desktop).map(|d| d.value.clone()) else {
            let error = if self.fleet_known() {
                CommandError::not_found(format!("unknown desktop {desktop:?}"))
            } else {
                CommandError::unavailable(format!(
                    "desktop {desktop:?} is not known yet: the engine is still reading its \
                     hosts; try again in a moment"
                ))
            };
            return Some(Err(error));
        };
        let grace = self
            .fleet
            .class(&d.meta.class)
            .filter(|c| ledger::keeps_on_disconnect(&c.policy))
            .map(|c| c.policy.disconnect_grace_secs);
        let ending = match ending {
            Ending::Disconnect if grace.is_none() => Ending::Logout,
            // An outage ends many sessions at once: its users are expected back (the ledger's
            // rule of a mass logout).
            Ending::Logout
                if grace.is_some() && self.demand.in_mass_logout(&d.meta.class, self.now()) =>
            {
                Ending::MassLogout
            }
            other => other,
        };
        if let Some(pending) = self.pending_release.get_mut(desktop)
            && pending.ending == ending
        {
            pending.replies.push(reply);
            return None;
        }
        let by_user = ending != Ending::Recycle;
        // Repeated (a broker retrying after a lost answer, two requests racing), a logout finds
        // the desktop already retired and a disconnect finds it disconnected: the same answer.
        if by_user && d.meta.pool == PoolState::Retired {
            return Some(Ok(Reply::Done));
        }
        if matches!(ending, Ending::Disconnect | Ending::MassLogout)
            && d.meta.pool == PoolState::Disconnected
        {
            return Some(Ok(Reply::Done));
        }
        if by_user && !d.meta.pool.is_assigned() {
            return Some(Err(CommandError::conflict(format!(
                "desktop {desktop} is not assigned (it is in {})",
                d.meta.pool.as_str()
            ))));
        }
        if self
            .in_flight
            .contains(&JobKey::Desktop(desktop.to_string()))
        {
            return Some(Err(CommandError::conflict(format!(
                "desktop {desktop} is busy; try again in a moment"
            ))));
        }
        if !self.connected(&d.host) {
            return Some(Err(CommandError::unavailable(format!(
                "host {} is not connected",
                d.host
            ))));
        }
        let user = d.meta.user.clone().unwrap_or_default();
        let (kind, message) = match ending {
            Ending::Logout | Ending::GraceOver | Ending::KeptAfterMassLogout => {
                (EventKind::Released, format!("released by {user}"))
            }
            Ending::MassLogout => (
                EventKind::Disconnected,
                format!(
                    "{user} logged out during a mass logout: kept for them for {}s",
                    grace.unwrap_or_default()
                ),
            ),
            Ending::Disconnect => (
                EventKind::Disconnected,
                format!(
                    "{user} disconnected: kept for them for {}s",
                    grace.unwrap_or_default()
                ),
            ),
            Ending::Recycle => (EventKind::AdminAction, format!("recycled by {actor}")),
        };
        self.end_use(d, ending, kind, message, vec![reply]);
        None
    }

    /// Writes the label that ends a desktop's use (retired, or disconnected for its user); the
    /// pending release is settled when it is on the host.
    fn end_use(
        &mut self,
        d: ObservedDesktop,
        ending: Ending,
        kind: EventKind,
        message: String,
        replies: Vec<RequestId>,
    ) {
        let name = d.name.clone();
        let user = d.meta.user.clone().unwrap_or_default();
        let class = d.meta.class.clone();
        let (pool, keep_user) = match ending {
            // Labelled retired first (so the desktop can never be handed out again), destroyed
            // by the next pass unless the engine is paused; a logout's keeps its user's name,
            // so that a mass logout can still give it back to them while it settles.
            Ending::Logout => (PoolState::Retired, d.meta.user.clone()),
            Ending::GraceOver | Ending::Recycle => (PoolState::Retired, None),
            Ending::Disconnect | Ending::MassLogout | Ending::KeptAfterMassLogout => {
                (PoolState::Disconnected, d.meta.user.clone())
            }
        };
        let now = self.now().as_second();
        self.spawn(
            JobKey::Desktop(name.clone()),
            Job::Relabel {
                desktop: d,
                pool,
                user: keep_user,
                now,
                event: Some((kind, message)),
            },
        );
        self.pending_release.insert(
            name,
            PendingRelease {
                replies,
                ending,
                class,
                user,
            },
        );
    }

    /// Disconnected desktops whose grace is over are recycled as at a logout (the ledger's
    /// rule), each once: labelled retired, then counted as its user's logout.
    pub(super) fn end_disconnect_graces(&mut self) {
        let now = self.now().as_second();
        let over: Vec<(ObservedDesktop, u64)> = self
            .desktops
            .values()
            .map(|d| &d.value)
            .filter(|d| d.meta.pool == PoolState::Disconnected)
            .filter(|d| !self.in_flight.contains(&JobKey::Desktop(d.name.clone())))
            .filter(|d| self.connected(&d.host))
            .filter_map(|d| {
                let policy = &self.fleet.class(&d.meta.class)?.policy;
                ledger::grace_over(&d.meta, policy, now)
                    .then(|| (d.clone(), policy.disconnect_grace_secs))
            })
            .collect();
        for (d, grace) in over {
            let user = d.meta.user.clone().unwrap_or_default();
            let message = format!("released: {user} did not reconnect within {grace}s");
            self.end_use(
                d,
                Ending::GraceOver,
                EventKind::Released,
                message,
                Vec::new(),
            );
        }
    }

    /// A release whose label is on the host: counted, and answered.
    pub(super) fn released(&mut self, release: PendingRelease) {
        let PendingRelease {
            replies,
            ending,
            class,
            user,
        } = release;
        let mut wave = Vec::new();
        if matches!(
            ending,
            Ending::Logout | Ending::MassLogout | Ending::GraceOver
        ) {
            self.history.record_logout(&class, self.now());
            let users = self.demand.record_logout(&class, &user, self.now());
            match ending {
                Ending::Logout => wave = users,
                Ending::MassLogout => self.demand.kept_for_reconnect(&class, &user),
                _ => {}
            }
            self.history_unsaved = true;
            if ending != Ending::MassLogout
                && let Some(spec) = self.fleet.class(&class)
            {
                self.ledger.logged_out(&class, &spec.policy);
            }
        }
        for id in replies {
            self.answer(id, Ok(Reply::Done));
        }
        self.keep_mass_logout(&class, &wave);
    }

    /// The settling desktops of `users`, whose logouts turned out to be a mass logout of
    /// `class`: each kept for its user as at a disconnect (the ledger's rule).
    fn keep_mass_logout(&mut self, class: &str, users: &[String]) {
        let Some(policy) = self.fleet.class(class).map(|c| c.policy.clone()) else {
            return;
        };
        let now = self.now().as_second();
        // A user who already has a desktop of the class again keeps that one.
        let holding: std::collections::HashSet<&str> = self
            .desktops
            .values()
            .map(|d| &d.value.meta)
            .filter(|m| m.class == class && m.pool.is_assigned())
            .filter_map(|m| m.user.as_deref())
            .collect();
        let users: std::collections::HashSet<&str> = users
            .iter()
            .map(String::as_str)
            .filter(|u| !holding.contains(u))
            .collect();
        let kept: Vec<ObservedDesktop> = self
            .desktops
            .values()
            .map(|d| &d.value)
            .filter(|d| d.meta.class == class)
            .filter(|d| {
                d.meta.user.as_deref().is_some_and(|u| {
                    users.contains(u) && ledger::kept_after_mass_logout(&d.meta, &policy, u, now)
                })
            })
            .filter(|d| !self.in_flight.contains(&JobKey::Desktop(d.name.clone())))
            .filter(|d| self.connected(&d.host))
            .cloned()
            .collect();
        for d in kept {
            let user = d.meta.user.clone().unwrap_or_default();
            self.ledger.kept_after_logout(class, &policy);
            self.demand.kept_for_reconnect(class, &user);
            let message = format!(
                "kept for {user} for {}s: their logout was part of a mass logout",
                policy.disconnect_grace_secs
            );
            self.end_use(
                d,
                Ending::KeptAfterMassLogout,
                EventKind::Disconnected,
                message,
                Vec::new(),
            );
        }
    }
}
