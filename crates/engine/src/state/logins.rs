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

    /// The desktop each user holds, by (class, user).
    pub(super) fn holders(&self) -> HashMap<(String, String), String> {
        self.desktops
            .values()
            .filter(|d| d.value.meta.pool == PoolState::Production)
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

    /// Release (a logout) or recycle (an admin action) a desktop: it is labelled retired, then
    /// destroyed. The answer goes out once the label is on the host, so a release that was
    /// answered survives a crash; a second request while the label is written gets the same
    /// answer.
    pub(super) fn release(
        &mut self,
        desktop: &str,
        actor: &str,
        logout: bool,
        reply: RequestId,
    ) -> Option<CommandResult> {
        if let Some(pending) = self.pending_release.get_mut(desktop)
            && pending.logout == logout
        {
            pending.replies.push(reply);
            return None;
        }
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
        // A logout repeated (a broker retrying after a lost answer, two requests racing) finds
        // the desktop already retired: it is released, so the answer is the same.
        if logout && d.meta.pool == PoolState::Retired {
            return Some(Ok(Reply::Done));
        }
        if logout && d.meta.pool != PoolState::Production {
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
        let class = d.meta.class.clone();
        let now = self.now().as_second();
        let message = if logout {
            format!("released by {user}")
        } else {
            format!("recycled by {actor}")
        };
        let kind = if logout {
            EventKind::Released
        } else {
            EventKind::AdminAction
        };
        // Labelled retired first (so the desktop can never be handed out again), destroyed by
        // the next pass unless the engine is paused.
        self.spawn(
            JobKey::Desktop(desktop.to_string()),
            Job::Relabel {
                desktop: d,
                pool: PoolState::Retired,
                user: None,
                now,
                event: Some((kind, message)),
            },
        );
        self.pending_release.insert(
            desktop.to_string(),
            PendingRelease {
                replies: vec![reply],
                logout,
                class,
                user,
            },
        );
        None
    }

    /// A release whose label is on the host: counted, and answered.
    pub(super) fn released(&mut self, release: PendingRelease) {
        let PendingRelease {
            replies,
            logout,
            class,
            user,
        } = release;
        if logout {
            self.history.record_logout(&class, self.now());
            self.demand.record_logout(&class, &user);
            self.history_unsaved = true;
            let on_logout = self.fleet.class(&class).map(|c| c.policy.on_logout);
            if on_logout == Some(LogoutAction::Recycle) {
                self.ledger.owe(&class);
            }
        }
        for id in replies {
            self.answer(id, Ok(Reply::Done));
        }
    }
}
