//! Job results: what each finished job changes in the engine's view, and whom it answers.

use super::*;
use deskpool_core::readiness::NotReadyYet;

impl EngineState {
    /// A job ended without an outcome: it no longer holds its key.
    pub(super) fn job_lost(&mut self, id: JobId) {
        if let Some(JobKey::Host(host)) = self.job_ended(id)
            && let Some(rt) = self.hosts.get_mut(&host)
        {
            rt.observing = false;
        }
    }

    /// The bookkeeping of every finished job: its key is free again.
    fn job_ended(&mut self, id: JobId) -> Option<JobKey> {
        let key = self.job_keys.remove(&id)?;
        self.in_flight.remove(&key);
        if let JobKey::Host(host) = &key {
            // Connected, refused or failed: either way the host's first answer is in.
            self.unread_hosts.remove(host);
        }
        Some(key)
    }

    pub(super) fn job_done(&mut self, id: JobId, outcome: Outcome) {
        self.job_ended(id);
        self.apply_outcome(outcome);
    }

    fn apply_outcome(&mut self, outcome: Outcome) {
        let seq = self.next_seq();
        match outcome {
            Outcome::Made {
                outcome,
                clone,
                boot,
            } => {
                self.record_made(&outcome, clone, boot);
                self.apply_outcome(*outcome);
            }
            Outcome::Connected {
                host,
                identity,
                observation,
                probe,
            } => self.host_connected(&host, identity, observation, probe),
            Outcome::ConnectFailed { host, error, probe } => {
                self.connect_failed(host, error, probe)
            }
            Outcome::Observed {
                host,
                observation,
                started_seq,
            } => self.observed(host, observation, started_seq),
            Outcome::ObserveFailed { host, error } => self.observe_failed(host, error),
            Outcome::Desktop { desktop, event } => self.desktop_changed(desktop, event, seq),
            Outcome::Booted { desktop } => {
                // The clock of its readiness timeout starts now.
                self.booted_at.insert(desktop.name.clone(), self.now.mono);
                self.desktop_changed(desktop, None, seq)
            }
            Outcome::NotReady { host, desktop, why } => self.not_ready(host, desktop, why),
            Outcome::Ready { desktop, reach } => self.guest_ready(desktop, reach, seq),
            Outcome::Assigned {
                desktop,
                display,
                address,
            } => self.assigned(desktop, display, address, seq),
            Outcome::Unusable { desktop, why } => self.found_unusable(desktop, why, seq),
            Outcome::CreateFailed {
                host,
                class,
                desktop,
                left,
                error,
            } => self.create_failed(host, class, desktop, left, error, seq),
            Outcome::DesktopFailed {
                host,
                desktop,
                error,
            } => self.desktop_failed(host, desktop, error),
            Outcome::Destroyed {
                host,
                desktop,
                class,
                why,
            } => self.destroyed(host, desktop, class, why, seq),
            Outcome::VolumeDeleted { host, volume } => self.volume_deleted(host, volume),
            Outcome::VolumeDeleteFailed {
                host,
                volume,
                error,
            } => self.volume_delete_failed(host, volume, error),
            Outcome::SeedCopied { host, copy } => self.seed_copied(host, copy, seq),
            Outcome::SeedCopyFailed {
                host,
                class,
                version,
                error,
            } => self.seed_copy_failed(host, class, version, error),
            Outcome::SeedCopyDeleted {
                host,
                class,
                version,
            } => self.seed_copy_deleted(host, class, version),
            Outcome::Activated { host } => self.activated(host),
            Outcome::ActivationFailed { host, error } => self.activation_failed(host, error),
            Outcome::Deactivated { host, command } => self.deactivated(host, command),
        }
    }

    fn desktop_changed(
        &mut self,
        desktop: ObservedDesktop,
        event: Option<(EventKind, String)>,
        seq: u64,
    ) {
        let name = desktop.name.clone();
        let (host, class) = (desktop.host.clone(), desktop.meta.class.clone());
        self.desktop_retry.clear(&name);
        if desktop.meta.pool == PoolState::Buffer {
            self.class_backoff.clear(&class);
        }
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.desktop_volumes.insert(
                deskpool_core::model::desktop_volume_name(&name),
                Tracked {
                    value: (),
                    touched: seq,
                },
            );
        }
        let settles = matches!(
            desktop.meta.pool,
            PoolState::Retired | PoolState::Disconnected
        );
        self.desktops.insert(
            name.clone(),
            Tracked {
                value: desktop,
                touched: seq,
            },
        );
        if let Some((kind, message)) = event {
            self.emit(kind, Some(&class), Some(&host), Some(&name), message);
        }
        if settles && let Some(release) = self.pending_release.remove(&name) {
            self.released(release);
        }
    }

    /// A probe found the guest of a desktop in creation not ready: probe it again a little
    /// later, or give up on it once its class's readiness timeout has passed (destroyed, and
    /// the class's next creation waits out a backoff that names the reason).
    fn not_ready(&mut self, host: String, desktop: String, why: String) {
        let mono = self.now.mono;
        let Some(d) = self.desktops.get(&desktop).map(|d| d.value.clone()) else {
            return;
        };
        let class = d.meta.class.clone();
        let Some(ready) = self.fleet.class(&class).map(|c| c.ready.clone()) else {
            return;
        };
        let booted = *self.booted_at.entry(desktop.clone()).or_insert(mono);
        match ready.after_no_answer(mono.saturating_sub(booted)) {
            NotReadyYet::ProbeAgainIn(gap) => {
                tracing::debug!(desktop, "not ready yet: {why}");
                self.probe_due.insert(desktop, mono + gap);
            }
            NotReadyYet::GiveUp => {
                let now = self.now();
                let message = ready.given_up_message(&why);
                self.booted_at.remove(&desktop);
                self.probe_due.remove(&desktop);
                let bounds = self.retry_bounds();
                self.class_backoff
                    .failed_again(class.clone(), now, message.clone(), bounds);
                let event = format!("{message}; destroyed, a new one is made after a backoff");
                self.creation_failed(&class, &host, &desktop, event);
                self.destroy_for(host, desktop, message, now);
            }
        }
    }

    /// The measured steps of a creation or a boot (`outcome` is what it ended with).
    fn record_made(&mut self, outcome: &Outcome, clone: Option<Duration>, boot: Option<Duration>) {
        use deskpool_core::timings::Step;
        let (desktop, ready) = match outcome {
            Outcome::Desktop { desktop, .. } => (desktop, true),
            Outcome::Booted { desktop } => (desktop, false),
            _ => return,
        };
        let (host, class) = (desktop.host.as_str(), desktop.meta.class.as_str());
        let speed = self.clock_speed;
        if let Some(c) = clone {
            self.timings
                .record(host, class, Step::Clone, c.as_secs_f64() * speed);
        }
        if let Some(b) = boot {
            self.timings
                .record(host, class, Step::Boot, b.as_secs_f64() * speed);
        }
        // Only a desktop made from its clone on has a whole time (not a boot tried again).
        let (Some(c), Some(b)) = (clone, boot) else {
            return;
        };
        let made = (c + b).as_secs_f64() * speed;
        if ready {
            self.timings.record(host, class, Step::Ready, 0.0);
            self.timings.record(host, class, Step::Whole, made);
        } else {
            self.made_secs.insert(desktop.name.clone(), made);
        }
    }

    /// A probe found the guest ready and labelled the desktop "buffer".
    fn guest_ready(&mut self, desktop: ObservedDesktop, reach: crate::jobs::Reach, seq: u64) {
        use deskpool_core::timings::Step;
        let name = desktop.name.clone();
        self.probe_due.remove(&name);
        let waited = self
            .booted_at
            .remove(&name)
            .map(|booted| self.now.mono.saturating_sub(booted));
        if let Some(w) = waited {
            let (host, class) = (desktop.host.as_str(), desktop.meta.class.as_str());
            let w = w.as_secs_f64() * self.clock_speed;
            self.timings.record(host, class, Step::Ready, w);
            if let Some(made) = self.made_secs.remove(&name) {
                self.timings.record(host, class, Step::Whole, made + w);
            }
        }
        let mut message = match waited {
            Some(w) => format!(
                "ready in the buffer: its guest answered {} s after boot",
                w.as_secs()
            ),
            None => "ready in the buffer: its guest answered".to_string(),
        };
        if let Some(address) = &reach.address {
            message.push_str(&format!(" (address {address})"));
        }
        self.reach.insert(name, reach);
        self.desktop_changed(desktop, Some((EventKind::Provisioned, message)), seq);
    }

    fn assigned(
        &mut self,
        desktop: ObservedDesktop,
        display: Option<deskpool_hypervisor::Display>,
        address: Option<String>,
        seq: u64,
    ) {
        let now = self.now();
        self.publish_now = true;
        let name = desktop.name.clone();
        // What the host says now; an address the agent gave at readiness stands in when it
        // does not answer this time.
        let known = self.reach.get(&name).cloned().unwrap_or_default();
        let reach = crate::jobs::Reach {
            display: display.as_ref().map(|d| d.address.clone()),
            address: address.or(known.address),
        };
        self.reach.insert(name.clone(), reach.clone());
        let (host, class) = (desktop.host.clone(), desktop.meta.class.clone());
        let user = desktop.meta.user.clone().unwrap_or_default();
        self.desktop_retry.clear(&name);
        self.desktops.insert(
            name.clone(),
            Tracked {
                value: desktop,
                touched: seq,
            },
        );
        let Some(login) = self.pending_assign.remove(&name) else {
            return;
        };
        // A user given back a desktop they hold waited for nothing new.
        let waited = if login.given_back && login.instant {
            Duration::ZERO
        } else {
            self.now.mono.saturating_sub(login.asked)
        };
        let reply = Reply::Assigned {
            desktop: name.clone(),
            host: host.clone(),
            display: reach.display,
            address: reach.address,
            display_password: display.and_then(|d| d.password),
            waited_ms: waited.as_millis() as u64,
        };
        let message = if login.given_back {
            if !login.reconnect {
                // A user asking again for the desktop they use: no new login.
                self.answer_login(login, Ok(reply));
                return;
            }
            // Nothing was made for it: an instant login, and the desktop is in use again.
            self.ledger.reconnected(&class);
            self.demand.record_reconnect(&class, &user, now);
            format!("given back to {user}, who reconnected")
        } else {
            self.history.record_login(&class, now);
            self.demand.record_user_login(&class, &user, now);
            self.demand.record_outcome(&class, now, login.instant);
            self.history_unsaved = true;
            self.ledger
                .served(&class, (!login.instant).then_some(waited));
            if login.instant {
                format!("assigned to {user}")
            } else {
                format!("assigned to {user} after waiting {}s", waited.as_secs())
            }
        };
        self.answer_login(login, Ok(reply));
        self.emit(
            EventKind::Assigned,
            Some(&class),
            Some(&host),
            Some(&name),
            message,
        );
    }

    fn found_unusable(&mut self, desktop: ObservedDesktop, why: UnusableDesktop, seq: u64) {
        let reason = why.to_string();
        // Never handed out: the planner replaces it; its login tries the next desktop.
        self.publish_now = true;
        let name = desktop.name.clone();
        let (host, class) = (desktop.host.clone(), desktop.meta.class.clone());
        let given_back = desktop.meta.pool == PoolState::Retired;
        self.desktops.insert(
            name.clone(),
            Tracked {
                value: desktop,
                touched: seq,
            },
        );
        let message = if given_back {
            format!("not given back to its user ({reason}): recycled, a fresh one instead")
        } else {
            format!("not handed out ({reason}): replaced")
        };
        self.emit(
            EventKind::Failed,
            Some(&class),
            Some(&host),
            Some(&name),
            message,
        );
        if let Some(login) = self.pending_assign.remove(&name) {
            let login = Login {
                given_back: false,
                reconnect: false,
                ..login
            };
            self.ledger.wait_first(&class, login);
        }
    }

    fn create_failed(
        &mut self,
        host: String,
        class: String,
        desktop: String,
        left: Option<ObservedDesktop>,
        error: JobError,
        seq: u64,
    ) {
        let now = self.now();
        let reason = error.to_string();
        match left {
            Some(left) => {
                // Booting failed: retry this desktop later (or give up at max attempts).
                let failures = left.meta.attempts;
                let bounds = self.retry_bounds();
                self.desktop_retry
                    .record(desktop.clone(), now, failures, reason.clone(), bounds);
                self.desktops.insert(
                    desktop.clone(),
                    Tracked {
                        value: left,
                        touched: seq,
                    },
                );
            }
            None => {
                self.desktops.remove(&desktop);
                self.removed.insert(desktop.clone(), seq);
                let bounds = self.retry_bounds();
                self.class_backoff
                    .failed_again(class.clone(), now, reason.clone(), bounds);
            }
        }
        self.creation_failed(&class, &host, &desktop, reason);
    }

    /// A desktop of `class` failed to become ready: counted, and said in a failed event.
    fn creation_failed(&mut self, class: &str, host: &str, desktop: &str, message: String) {
        self.ledger.failed(class);
        self.emit(
            EventKind::Failed,
            Some(class),
            Some(host),
            Some(desktop),
            message,
        );
    }

    fn desktop_failed(&mut self, host: String, desktop: String, error: JobError) {
        let now = self.now();
        let reason = error.to_string();
        if let Some(login) = self.pending_assign.remove(&desktop) {
            // Another desktop may serve it: back to the front of its queue.
            let login = Login {
                instant: false,
                ..login
            };
            let class = login.class.clone();
            self.ledger.wait_first(&class, login);
        }
        if let Some(release) = self.pending_release.remove(&desktop) {
            let result = Err(CommandError::unavailable(format!(
                "desktop {desktop}: the release could not be recorded ({reason}); \
                 it is still assigned: try again"
            )));
            for id in release.replies {
                self.answer(id, result.clone());
            }
        }
        let bounds = self.retry_bounds();
        self.desktop_retry
            .failed_again(desktop.clone(), now, reason.clone(), bounds);
        let class = self
            .desktops
            .get(&desktop)
            .map(|d| d.value.meta.class.clone());
        self.emit(
            EventKind::Failed,
            class.as_deref(),
            Some(&host),
            Some(&desktop),
            reason,
        );
        // The host may be gone, or the desktop with it: read it again soon (unless the
        // step was refused before it reached the host).
        if error.may_come_from_the_host() {
            self.last_resync = None;
        }
    }

    fn destroyed(
        &mut self,
        host: String,
        desktop: String,
        class: Option<String>,
        why: String,
        seq: u64,
    ) {
        self.desktops.remove(&desktop);
        self.removed.insert(desktop.clone(), seq);
        self.desktop_retry.clear(&desktop);
        self.forget_guest(&desktop);
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.desktop_volumes
                .remove(&deskpool_core::model::desktop_volume_name(&desktop));
            rt.unlabelled.retain(|u| *u != desktop);
        }
        self.emit(
            EventKind::Destroyed,
            class.as_deref(),
            Some(&host),
            Some(&desktop),
            why,
        );
    }

    /// Drops what was known of a desktop's guest (it is gone).
    pub(super) fn forget_guest(&mut self, desktop: &str) {
        self.booted_at.remove(desktop);
        self.probe_due.remove(desktop);
        self.reach.remove(desktop);
    }

    fn volume_deleted(&mut self, host: String, volume: String) {
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.desktop_volumes.remove(&volume);
        }
        tracing::info!(host, volume, "deleted a volume nothing used");
    }

    fn volume_delete_failed(&mut self, host: String, volume: String, error: JobError) {
        // Asked again only once the next full read of the host lists it again (a
        // refusal, e.g. a volume some domain uses, is not retried on every pass).
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.desktop_volumes.remove(&volume);
        }
        self.emit(
            EventKind::Failed,
            None,
            Some(&host),
            None,
            format!("volume {volume}: {error}"),
        );
    }

    fn seed_copied(&mut self, host: String, copy: SeedCopy, seq: u64) {
        let key = (host.clone(), copy.class.clone(), copy.version.clone());
        self.seed_retry.clear(&key);
        self.seed_progress.remove(&key);
        let message = format!("seed {} copied", copy.version);
        let class = copy.class.clone();
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.seed_copies.insert(
                (copy.class.clone(), copy.version.clone()),
                Tracked {
                    value: copy,
                    touched: seq,
                },
            );
        }
        self.emit(
            EventKind::SeedCopied,
            Some(&class),
            Some(&host),
            None,
            message,
        );
    }

    fn seed_copy_failed(&mut self, host: String, class: String, version: String, error: JobError) {
        let now = self.now();
        let reason = error.to_string();
        let key = (host.clone(), class.clone(), version.clone());
        self.seed_progress.remove(&key);
        let bounds = self.retry_bounds();
        let backoff = self
            .seed_retry
            .failed_again(key, now, reason.clone(), bounds);
        let failures = backoff.failures;
        let retry_in = backoff.until.duration_since(now).as_secs().max(0);
        // Creations of the class wait on this copy: say so on the class.
        self.class_backoff.record(
            class.clone(),
            now,
            failures,
            format!("seed copy on {host}: {reason}"),
            bounds,
        );
        self.emit(
            EventKind::Failed,
            Some(&class),
            Some(&host),
            None,
            format!("seed {version}: {reason}; retry in {retry_in}s"),
        );
    }

    fn seed_copy_deleted(&mut self, host: String, class: String, version: String) {
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.seed_copies.remove(&(class.clone(), version.clone()));
        }
        tracing::info!(host, class, version, "deleted a seed copy nothing uses");
    }
}
