//! Actions: each planner action started as a job.

use super::*;

impl EngineState {
    fn create_limit(&self) -> Duration {
        Duration::from_secs(self.fleet.engine.create_timeout_secs)
    }

    fn remove_limit(&self) -> Duration {
        Duration::from_secs(self.fleet.engine.remove_timeout_secs)
    }

    /// The pacing of `class`'s clones and boots on each host.
    pub(super) fn pacing(&self, class: &ClassSpec) -> Pacing {
        Pacing {
            class: class.name.clone(),
            generation: self
                .pacing_generation
                .get(&class.name)
                .copied()
                .unwrap_or(0),
            clones: class.policy.pacing.clones_per_host as usize,
            boots: class.policy.pacing.boots_per_host as usize,
        }
    }

    pub(super) fn new_desktop_name(&mut self, class: &str, now: Timestamp) -> String {
        // Time-ordered and unique across restarts: microseconds since the epoch in base 36 (ten
        // characters until the year 3600), bumped when two names fall in the same microsecond.
        let micros = now.as_microsecond().max(0) as u64;
        self.name_counter = self.name_counter.max(micros.saturating_sub(1)) + 1;
        while self
            .desktops
            .contains_key(&desktop_name(class, self.name_counter))
        {
            self.name_counter += 1;
        }
        desktop_name(class, self.name_counter)
    }

    pub(super) fn execute(&mut self, action: Action, now: Timestamp) {
        match action {
            Action::Create {
                host,
                class,
                version,
            } => self.create_desktop(host, class, version, now),
            Action::Boot { host, desktop } => self.boot(host, desktop, now),
            Action::Restart { host, desktop } => self.restart(host, desktop),
            Action::Promote { host, desktop } => self.promote(host, desktop, now),
            Action::Destroy {
                host,
                desktop,
                reason,
            } => self.destroy(host, desktop, reason, now),
            Action::DeleteVolume { host, volume } => self.delete_volume(host, volume),
            Action::CopySeed {
                host,
                class,
                version,
                source_host,
                from_copy,
            } => self.copy_seed(host, class, version, source_host, from_copy),
            Action::DeleteSeedCopy {
                host,
                class,
                version,
            } => self.delete_seed_copy(host, class, version),
            Action::ActivateHost { host } => self.activate_host(host),
            Action::DrainHost { host } => self.drain_host(host),
            Action::UndrainHost { host } => self.undrain_host(host),
            Action::ReturnToStandby { host } => self.return_to_standby(host),
        }
    }

    fn create_desktop(&mut self, host: String, class: String, version: String, now: Timestamp) {
        let pool = self.fleet.engine.creation_pool.clone();
        let stamp = now.as_second();
        let Some(spec) = self.fleet.class(&class).cloned() else {
            return;
        };
        if !self.connected(&host) {
            return;
        }
        let Some(seed) = self.hosts[&host]
            .seed_copies
            .get(&(class.clone(), version.clone()))
            .map(|t| t.value.clone())
        else {
            return;
        };
        let name = self.new_desktop_name(&class, now);
        let pacing = self.pacing(&spec);
        self.ledger.created(&class);
        // Shown in the creation pool at once, so the next pass counts it.
        let placeholder = ObservedDesktop {
            name: name.clone(),
            host: host.clone(),
            meta: deskpool_core::model::DesktopMeta {
                class: class.clone(),
                pool: PoolState::Creation,
                seed_version: version,
                user: None,
                created_at: stamp,
                changed_at: stamp,
                attempts: 0,
                term: self.leadership.term,
            },
            running: false,
            persistent: true,
            disk_problem: None,
        };
        let seq = self.next_seq();
        self.desktops.insert(
            name.clone(),
            Tracked {
                value: placeholder,
                touched: seq,
            },
        );
        let job = Job::Create {
            host,
            class: Box::new(spec),
            name: name.clone(),
            seed,
            creation_pool: pool,
            now: stamp,
            term: self.leadership.term,
            pacing,
            limit: self.create_limit(),
        };
        self.spawn(JobKey::Desktop(name), job);
    }

    fn boot(&mut self, host: String, desktop: String, now: Timestamp) {
        let stamp = now.as_second();
        let (true, Some(d), Some(spec)) = (
            self.connected(&host),
            self.desktops.get(&desktop).map(|d| d.value.clone()),
            self.desktops
                .get(&desktop)
                .and_then(|d| self.fleet.class(&d.value.meta.class)),
        ) else {
            return;
        };
        let pacing = self.pacing(spec);
        let job = Job::Boot {
            desktop: d,
            pacing,
            now: stamp,
            wait_for_guest: spec.ready.needs_probe(),
            limit: self.create_limit(),
        };
        self.spawn(JobKey::Desktop(desktop), job);
    }

    fn restart(&mut self, host: String, desktop: String) {
        let (true, Some(d)) = (
            self.connected(&host),
            self.desktops.get(&desktop).map(|d| d.value.clone()),
        ) else {
            return;
        };
        self.spawn(JobKey::Desktop(desktop), Job::Restart { desktop: d });
    }

    fn promote(&mut self, host: String, desktop: String, now: Timestamp) {
        let stamp = now.as_second();
        let (true, Some(d)) = (
            self.connected(&host),
            self.desktops.get(&desktop).map(|d| d.value.clone()),
        ) else {
            return;
        };
        let ready = self.fleet.class(&d.meta.class).map(|c| c.ready.clone());
        if let Some(ready) = ready.filter(|r| r.needs_probe()) {
            self.probe(d, ready, stamp);
            return;
        }
        let event = Some((
            EventKind::Provisioned,
            "ready in the buffer (finished after a restart)".to_string(),
        ));
        self.spawn(
            JobKey::Desktop(desktop),
            Job::Relabel {
                desktop: d,
                pool: PoolState::Buffer,
                user: None,
                now: stamp,
                event,
            },
        );
    }

    /// Asks a running desktop in creation whether its guest is ready. Its boot time is the one
    /// its boot reported, or now for one this engine finds running (booted before it started).
    fn probe(&mut self, d: ObservedDesktop, ready: deskpool_core::readiness::Readiness, now: i64) {
        let mono = self.now.mono;
        let booted = *self.booted_at.entry(d.name.clone()).or_insert(mono);
        self.probe_due.remove(&d.name);
        // The ready command may use what is left of the timeout, and not much more than one
        // probe gap past it.
        let left = (booted + ready.timeout()).saturating_sub(mono);
        let command_limit = left.max(deskpool_core::readiness::PROBE_GAP);
        let name = d.name.clone();
        let job = Job::Probe {
            desktop: d,
            ready,
            command_limit,
            now,
        };
        self.spawn(JobKey::Desktop(name), job);
    }

    /// Destroys a desktop for `why` (shown in its event).
    pub(super) fn destroy_for(
        &mut self,
        host: String,
        desktop: String,
        why: String,
        now: Timestamp,
    ) {
        let pool = self.fleet.engine.creation_pool.clone();
        if !self.connected(&host) {
            return;
        }
        let known = self.desktops.get(&desktop).map(|d| d.value.clone());
        self.spawn(
            JobKey::Desktop(desktop.clone()),
            Job::Destroy(crate::jobs::Removal {
                host,
                desktop,
                known,
                creation_pool: pool,
                now: now.as_second(),
                why,
                limit: self.remove_limit(),
            }),
        );
    }

    fn destroy(
        &mut self,
        host: String,
        desktop: String,
        reason: plan::DestroyReason,
        now: Timestamp,
    ) {
        if !self.connected(&host) {
            return;
        }
        let known = self.desktops.get(&desktop).map(|d| d.value.clone());
        let why = match reason {
            plan::DestroyReason::Surplus => "surplus buffer".to_string(),
            plan::DestroyReason::StaleSeed => "old seed version".to_string(),
            plan::DestroyReason::HostDraining => "host draining".to_string(),
            plan::DestroyReason::Undefined => "undefined behind deskpool's back".to_string(),
            plan::DestroyReason::Retired => "recycled".to_string(),
            plan::DestroyReason::Failed => {
                let attempts = known.as_ref().map_or(0, |d| d.meta.attempts);
                let last = self
                    .desktop_retry
                    .get(&desktop)
                    .map(|b| b.reason.clone())
                    .unwrap_or_default();
                let class = known.as_ref().map(|d| d.meta.class.clone());
                self.emit(
                    EventKind::Failed,
                    class.as_deref(),
                    Some(&host),
                    Some(&desktop),
                    format!(
                        "gave up after {attempts} attempts{}",
                        if last.is_empty() {
                            String::new()
                        } else {
                            format!(": {last}")
                        }
                    ),
                );
                "failed too often".to_string()
            }
            plan::DestroyReason::NotRunning => "found shut off".to_string(),
            plan::DestroyReason::Unlabelled => {
                "left unlabelled by an interrupted creation".to_string()
            }
            plan::DestroyReason::UnknownClass => "class no longer configured".to_string(),
            plan::DestroyReason::DiskMissing => known
                .as_ref()
                .and_then(|d| d.disk_problem.clone())
                .unwrap_or_else(|| "its disk is gone".into()),
            plan::DestroyReason::ShutOff => {
                "assigned and found shut off: recycled, its user gets a fresh desktop".to_string()
            }
        };
        self.destroy_for(host, desktop, why, now);
    }

    fn delete_volume(&mut self, host: String, volume: String) {
        let pool = self.fleet.engine.creation_pool.clone();
        if !self.connected(&host) {
            return;
        }
        self.spawn(
            JobKey::Volume(host.clone(), volume.clone()),
            Job::DeleteVolume {
                host,
                pool,
                volume,
                limit: self.remove_limit(),
            },
        );
    }

    fn copy_seed(
        &mut self,
        host: String,
        class: String,
        version: String,
        source_host: String,
        from_copy: bool,
    ) {
        let pool = self.fleet.engine.creation_pool.clone();
        let (true, true, Some(spec)) = (
            self.connected(&host),
            self.connected(&source_host),
            self.fleet.class(&class),
        ) else {
            return;
        };
        let (source_pool, source_volume) = if from_copy {
            (
                pool.clone(),
                deskpool_core::model::seed_copy_volume_name(&class, &version),
            )
        } else {
            (spec.seed.pool.clone(), spec.seed.volume.clone())
        };
        let key = (host.clone(), class.clone(), version.clone());
        let progress = CopyProgress::default();
        self.seed_progress.insert(key.clone(), progress.clone());
        self.spawn(
            JobKey::Seed(key.0, key.1, key.2),
            Job::CopySeed {
                host,
                source_host,
                source_pool,
                source_volume,
                creation_pool: pool,
                class,
                version,
                progress,
            },
        );
    }

    fn delete_seed_copy(&mut self, host: String, class: String, version: String) {
        let pool = self.fleet.engine.creation_pool.clone();
        if !self.connected(&host) {
            return;
        }
        self.spawn(
            JobKey::Seed(host.clone(), class.clone(), version.clone()),
            Job::DeleteSeedCopy {
                host,
                pool,
                class,
                version,
                limit: self.remove_limit(),
            },
        );
    }

    fn activate_host(&mut self, host: String) {
        let Some(spec) = self.fleet.host(&host).cloned() else {
            return;
        };
        if self.in_flight.contains(&JobKey::Host(host.clone())) {
            // Still being probed or connected: its answer decides.
            return;
        }
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.status = HostStatus::Activating;
        }
        self.emit(
            EventKind::HostActivated,
            None,
            Some(&host),
            None,
            "activating: the active hosts are full".into(),
        );
        let command = spec.activate_command.clone();
        self.spawn(JobKey::Host(host.clone()), Job::Activate { host, command });
    }

    fn drain_host(&mut self, host: String) {
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.status = HostStatus::Draining { by_admin: false };
        }
        let idle = self.fleet.engine.standby_idle_secs;
        self.emit(
            EventKind::HostDraining,
            None,
            Some(&host),
            None,
            format!("unneeded for {idle}s: draining"),
        );
    }

    fn undrain_host(&mut self, host: String) {
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.status = HostStatus::Active;
        }
        self.emit(
            EventKind::HostActivated,
            None,
            Some(&host),
            None,
            "needed again: drain cancelled".into(),
        );
    }

    fn return_to_standby(&mut self, host: String) {
        if self.in_flight.contains(&JobKey::Host(host.clone())) {
            return;
        }
        let command = self
            .fleet
            .host(&host)
            .and_then(|h| h.deactivate_command.clone());
        self.spawn(
            JobKey::Host(host.clone()),
            Job::Deactivate { host, command },
        );
    }
}
