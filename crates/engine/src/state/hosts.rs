//! The engine's hosts: connections, first reads, observations merged in, resyncs.

use super::*;

impl EngineState {
    pub(super) fn connect_all(&mut self) {
        let names: Vec<(String, bool)> = self
            .fleet
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.standby))
            .collect();
        for (name, standby) in names {
            // Standby hosts are probed without their activation command: one found holding
            // deskpool desktops was in service before a restart and stays so.
            self.connect(&name, standby);
        }
    }

    /// Connects to `host` (the driver reuses a connection a previous engine left, if any).
    pub(super) fn connect(&mut self, host: &str, probe: bool) {
        let Some(spec) = self.fleet.host(host).cloned() else {
            return;
        };
        let path = spec
            .creation_pool_path
            .clone()
            .unwrap_or_else(|| self.fleet.engine.creation_pool_path.clone());
        let job = Job::Connect {
            host: host.to_string(),
            uri: spec.uri.clone(),
            domain_type: spec.domain_type,
            read_only: self.read_only,
            creation_pool: (self.fleet.engine.creation_pool.clone(), path),
            classes: self.classes.clone(),
            probe,
        };
        self.spawn(JobKey::Host(host.to_string()), job);
    }

    pub(super) fn host_failed(&mut self, host: &str, reason: String) {
        let now = self.now();
        let bounds = self.retry_bounds();
        let Some(rt) = self.hosts.get_mut(host) else {
            return;
        };
        let failures = self
            .host_retry
            .failed_again(host.to_string(), now, reason.clone(), bounds)
            .failures;
        let delay = bounds.delay_secs(failures);
        rt.connected = false;
        rt.identity = None;
        let was_down = matches!(rt.status, HostStatus::Down { .. });
        rt.status = HostStatus::Down {
            reason: reason.clone(),
        };
        self.effects.push(Effect::DropConnection {
            host: host.to_string(),
        });
        if !was_down {
            self.emit(
                EventKind::HostDown,
                None,
                Some(host),
                None,
                format!("{reason}; retrying in {delay}s"),
            );
        }
    }

    pub(super) fn host_connected(
        &mut self,
        host: &str,
        identity: Option<DaemonIdentity>,
        observation: HostObservation,
        probe: bool,
    ) {
        // Two entries reaching one daemon would each see, and clean, the other's desktops and
        // volumes: the entry connected first keeps the daemon; this one is refused, and nothing
        // it read is merged.
        if let Some(identity) = &identity {
            let same = self.hosts.iter().find(|(name, rt)| {
                name.as_str() != host
                    && rt.connected
                    && rt
                        .identity
                        .as_ref()
                        .is_some_and(|other| other.same_daemon(identity))
            });
            if let Some(other) = same.map(|(name, _)| name.clone()) {
                let reason = format!("same libvirt daemon as host {other} ({identity})");
                self.host_failed(host, reason);
                return;
            }
        }
        let spec_standby = self.fleet.host(host).is_some_and(|h| h.standby);
        let holds_desktops = !observation.desktops.is_empty();
        if probe && spec_standby && !holds_desktops {
            // A standby host nobody uses: leave it alone until it is needed.
            if let Some(rt) = self.hosts.get_mut(host) {
                rt.status = HostStatus::Standby;
            }
            return;
        }
        self.effects.push(Effect::KeepConnection {
            host: host.to_string(),
        });
        let was_down = self
            .hosts
            .get(host)
            .is_some_and(|rt| matches!(rt.status, HostStatus::Down { .. }));
        let seq = self.seq;
        if let Some(rt) = self.hosts.get_mut(host) {
            rt.connected = true;
            rt.identity = identity;
            self.host_retry.clear(&host.to_string());
            if !matches!(rt.status, HostStatus::Draining { .. }) {
                rt.status = HostStatus::Active;
            }
            if spec_standby {
                rt.in_service_from_standby = true;
            }
        }
        self.apply_observation(host, observation, seq);
        if was_down {
            self.emit(
                EventKind::HostUp,
                None,
                Some(host),
                None,
                "reachable again".into(),
            );
        }
    }

    /// Merges a full read of `host` into the cache, keeping what the engine changed after the
    /// read began (`started_seq`).
    pub(super) fn apply_observation(
        &mut self,
        host: &str,
        observation: HostObservation,
        started_seq: u64,
    ) {
        let now = self.now();
        let fresh = |touched: u64| touched > started_seq;
        let seen: HashMap<String, ObservedDesktop> = observation
            .desktops
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
        let cached: Vec<String> = self
            .desktops
            .iter()
            .filter(|(_, d)| d.value.host == host)
            .map(|(n, _)| n.clone())
            .collect();
        for name in cached {
            let busy = self.in_flight.contains(&JobKey::Desktop(name.clone()));
            let touched = self.desktops.get(&name).map_or(0, |d| d.touched);
            if busy || fresh(touched) {
                continue;
            }
            if !seen.contains_key(&name) {
                // Gone behind our back (undefined with virsh, say): the planner replaces it.
                self.desktops.remove(&name);
                self.emit(
                    EventKind::Destroyed,
                    None,
                    Some(host),
                    Some(&name),
                    "disappeared from the host".into(),
                );
            }
        }
        for (name, desktop) in seen {
            if self.removed.get(&name).is_some_and(|&s| s > started_seq) {
                continue;
            }
            let keep = self.desktops.get(&name).is_some_and(|d| {
                fresh(d.touched) || self.in_flight.contains(&JobKey::Desktop(name.clone()))
            });
            if !keep {
                self.desktops.insert(
                    name,
                    Tracked {
                        value: desktop,
                        touched: started_seq,
                    },
                );
            }
        }
        let Some(rt) = self.hosts.get_mut(host) else {
            return;
        };
        let copies: BTreeMap<(String, String), SeedCopy> = observation
            .seed_copies
            .into_iter()
            .map(|c| ((c.class.clone(), c.version.clone()), c))
            .collect();
        rt.seed_copies
            .retain(|k, v| fresh(v.touched) || copies.contains_key(k));
        for (k, c) in copies {
            if !rt.seed_copies.get(&k).is_some_and(|v| fresh(v.touched)) {
                rt.seed_copies.insert(
                    k,
                    Tracked {
                        value: c,
                        touched: started_seq,
                    },
                );
            }
        }
        let volumes: HashSet<String> = observation.desktop_volumes.into_iter().collect();
        rt.desktop_volumes
            .retain(|k, v| fresh(v.touched) || volumes.contains(k));
        for v in volumes {
            rt.desktop_volumes.entry(v).or_insert(Tracked {
                value: (),
                touched: started_seq,
            });
        }
        rt.seed_sources = observation.seed_sources;
        rt.unlabelled = observation.unlabelled_desktops;
        rt.last_observed = Some(now);
    }

    pub(super) fn resync(&mut self) {
        let mono = self.now.mono;
        let due = self.last_resync.is_none_or(|t| {
            mono.saturating_sub(t) >= Duration::from_secs(self.fleet.engine.resync_secs.max(1))
        });
        if !due {
            return;
        }
        self.last_resync = Some(mono);
        let now = self.now();
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        for name in names {
            let rt = &self.hosts[&name];
            let key = JobKey::Host(name.clone());
            if self.in_flight.contains(&key) {
                continue;
            }
            match (&rt.status, rt.connected) {
                (HostStatus::Down { .. }, _)
                    if self.host_retry.get(&name).is_none_or(|b| b.until <= now) =>
                {
                    let standby = self.fleet.host(&name).is_some_and(|h| h.standby);
                    self.connect(&name, standby && !rt.in_service_from_standby);
                }
                (_, true) if !rt.observing => {
                    let job = Job::Observe {
                        host: name.clone(),
                        creation_pool: self.fleet.engine.creation_pool.clone(),
                        classes: self.classes.clone(),
                        started_seq: self.seq,
                    };
                    if let Some(rt) = self.hosts.get_mut(&name) {
                        rt.observing = true;
                    }
                    self.spawn(key, job);
                }
                _ => {}
            }
        }
    }

    pub(super) fn connect_failed(&mut self, host: String, error: JobError, probe: bool) {
        let standby = self.fleet.host(&host).is_some_and(|h| h.standby);
        if probe && standby {
            if let Some(rt) = self.hosts.get_mut(&host) {
                rt.status = HostStatus::Standby;
            }
        } else {
            self.host_failed(&host, error.to_string());
        }
    }

    pub(super) fn observed(
        &mut self,
        host: String,
        observation: HostObservation,
        started_seq: u64,
    ) {
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.observing = false;
        }
        self.apply_observation(&host, observation, started_seq);
    }

    pub(super) fn observe_failed(&mut self, host: String, error: JobError) {
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.observing = false;
        }
        self.host_failed(&host, error.to_string());
    }

    pub(super) fn activated(&mut self, host: String) {
        // Activation command done: connect.
        self.emit(
            EventKind::HostActivated,
            None,
            Some(&host),
            None,
            "activation command done, connecting".into(),
        );
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.in_service_from_standby = true;
        }
        self.connect(&host, false);
    }

    pub(super) fn activation_failed(&mut self, host: String, error: HostCommandError) {
        self.host_failed(&host, format!("activation failed: {error}"));
    }

    pub(super) fn deactivated(
        &mut self,
        host: String,
        command: Option<Result<(), HostCommandError>>,
    ) {
        if let Some(rt) = self.hosts.get_mut(&host) {
            rt.status = HostStatus::Standby;
            rt.connected = false;
            rt.identity = None;
            rt.in_service_from_standby = false;
        }
        self.effects
            .push(Effect::DropConnection { host: host.clone() });
        let message = match command {
            Some(Ok(())) => "returned to standby (deactivation command done)".into(),
            Some(Err(e)) => {
                format!("returned to standby (deactivation command failed: {e})")
            }
            None => "returned to standby".into(),
        };
        self.emit(EventKind::HostStandby, None, Some(&host), None, message);
    }
}
