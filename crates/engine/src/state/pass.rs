//! The pass: what the planner is told (busy, hosts), the history, snapshots published.

use super::*;

/// Sets a class's count in creation, and its reason, to what the pass left in flight (the
/// planner counted before the pass's own creations were ordered).
fn in_creation(plan: &mut deskpool_api::ClassPlanView, count: u32) {
    use deskpool_api::ReasonView;
    plan.creation = count;
    plan.reasons
        .retain(|r| !matches!(r, ReasonView::InCreation { .. }));
    if count > 0 {
        plan.reasons.insert(0, ReasonView::InCreation { count });
    }
}

impl EngineState {
    /// The configured retry delays (the fleet's, which a policy change may replace).
    pub(super) fn retry_bounds(&self) -> RetryBounds {
        RetryBounds::of(&self.fleet.engine)
    }

    pub(super) fn busy(&self, now: Timestamp) -> Busy {
        let mut busy = Busy::default();
        for key in &self.in_flight {
            match key {
                JobKey::Desktop(n) => {
                    busy.desktops.insert(n.clone());
                }
                JobKey::Volume(h, v) => {
                    busy.volumes.insert((h.clone(), v.clone()));
                }
                JobKey::Seed(h, c, v) => {
                    busy.seed_copies.insert((h.clone(), c.clone(), v.clone()));
                }
                JobKey::Host(_) => {}
            }
        }
        busy.desktops
            .extend(self.desktop_retry.waiting_at(now).cloned());
        // A guest that did not answer yet is left alone until its next probe.
        let mono = self.now.mono;
        busy.desktops.extend(
            self.probe_due
                .iter()
                .filter(|(_, due)| **due > mono)
                .map(|(name, _)| name.clone()),
        );
        busy.seed_copies
            .extend(self.seed_retry.waiting_at(now).cloned());
        for (c, b) in self.class_backoff.iter() {
            busy.class_backoff
                .insert(c.clone(), (b.until, b.reason.clone()));
        }
        busy.floor_raises = self.floor_raises.clone();
        // Logins waiting for a desktop are owed one each, whatever the buffer target says.
        busy.owed_replacements = self.ledger.owed_for_plan();
        busy
    }

    pub(super) fn host_views(&self) -> Vec<HostView> {
        self.hosts
            .iter()
            .map(|(name, rt)| HostView {
                name: name.clone(),
                status: rt.status.clone(),
                seed_copies: rt.seed_copies.values().map(|t| t.value.clone()).collect(),
                seed_sources: rt.seed_sources.clone(),
                desktop_volumes: rt.desktop_volumes.keys().cloned().collect(),
                unlabelled_desktops: rt.unlabelled.clone(),
            })
            .collect()
    }

    /// Saves the demand history when it changed, at most once a minute (and at shutdown). A
    /// failed save comes back as [`Input::HistoryNotSaved`].
    pub(super) fn save_history(&mut self, force: bool) {
        let mono = self.now.mono;
        let due = force || mono.saturating_sub(self.history_saved) >= HISTORY_SAVE_GAP;
        if !self.history_unsaved || !due {
            return;
        }
        if self.keep_history {
            self.effects
                .push(Effect::SaveHistory(Box::new(self.history.clone())));
            self.history_unsaved = false;
        }
        self.history_saved = mono;
    }

    pub(super) fn pass(&mut self) {
        self.save_history(false);
        self.resync();
        self.serve_waiting();
        // Desktops gone from the hosts (read again, or removed) take what was known of their
        // guests with them.
        let known = &self.desktops;
        self.booted_at.retain(|name, _| known.contains_key(name));
        self.made_secs.retain(|name, _| known.contains_key(name));
        self.probe_due.retain(|name, _| known.contains_key(name));
        self.reach.retain(|name, _| known.contains_key(name));
        self.check_terms();
        if !self.paused && !self.read_only && self.acting() {
            self.end_disconnect_graces();
        }
        let now = self.now();
        self.floor_raises.retain(|_, (_, until)| *until > now);
        let desktops: Vec<ObservedDesktop> =
            self.desktops.values().map(|d| d.value.clone()).collect();
        let views = self.host_views();
        let busy = self.busy(now);
        // Expected logins while creation can deliver, for predictive classes (the simulator's
        // rule: core's DemandModel::plan_mean_for).
        let active_hosts = views
            .iter()
            .filter(|h| h.status == HostStatus::Active)
            .count();
        let mut stock: HashMap<&str, u64> = HashMap::new();
        for d in &desktops {
            if matches!(d.meta.pool, PoolState::Creation | PoolState::Buffer) {
                *stock.entry(d.meta.class.as_str()).or_default() += 1;
            }
        }
        let measured_ready = self.timings.measured_ready(&self.fleet);
        let forecasts: HashMap<String, f64> = self
            .fleet
            .classes
            .iter()
            .filter_map(|c| {
                let predictive = c.policy.predictive?;
                let stock = stock.get(c.name.as_str()).copied().unwrap_or(0);
                let mean = self.demand.plan_mean_for(
                    c,
                    predictive.service_level,
                    now,
                    active_hosts,
                    stock,
                    measured_ready.get(&c.name).copied(),
                );
                Some((c.name.clone(), mean))
            })
            .collect();
        let plan = plan::plan(&PlanInput {
            fleet: &self.fleet,
            hosts: &views,
            desktops: &desktops,
            busy: &busy,
            memory: &self.memory,
            now,
            forecasts: &forecasts,
            measured_ready: &measured_ready,
        });
        self.memory = plan.memory.clone();
        self.passes += 1;
        let mut desktops = desktops;
        if !self.paused && self.acting() {
            let creates = plan
                .actions
                .iter()
                .any(|a| matches!(a, Action::Create { .. }));
            for action in plan.actions.clone() {
                self.execute(action, now);
            }
            // The snapshot shows the desktops this pass started making (their placeholders),
            // not the fleet as it was before them.
            if creates {
                desktops = self.desktops.values().map(|d| d.value.clone()).collect();
            }
        }
        self.seed_events(&plan.classes);
        self.publish_with(&plan.classes, desktops);
    }

    /// An event when a class's seed volume goes missing (not on every pass while it stays so).
    fn seed_events(&mut self, classes: &[plan::ClassPlan]) {
        let mut missing = HashSet::new();
        for class in classes {
            for reason in &class.reasons {
                if let plan::Reason::SeedMissing { .. } = reason {
                    missing.insert(class.name.clone());
                    if !self.seeds_missing.contains(&class.name) {
                        self.emit(
                            EventKind::SeedMissing,
                            Some(&class.name),
                            None,
                            None,
                            format!("{reason}: no desktop can be made"),
                        );
                    }
                }
            }
        }
        self.seeds_missing = missing;
    }

    pub(super) fn publish(&mut self, classes: &[plan::ClassPlan]) {
        let desktops: Vec<ObservedDesktop> =
            self.desktops.values().map(|d| d.value.clone()).collect();
        self.publish_with(classes, desktops);
    }

    pub(super) fn publish_with(
        &mut self,
        classes: &[plan::ClassPlan],
        desktops: Vec<ObservedDesktop>,
    ) {
        let now = self.now();
        let classes_steady = classes.iter().all(plan::ClassPlan::is_steady);
        let classes: Vec<ClassStatus> = classes
            .iter()
            .map(|p| {
                let spec = self.fleet.class(&p.name);
                let version = spec.map(|c| c.seed.version.clone()).unwrap_or_default();
                let mut on_old_seed = 0;
                let mut creating = 0;
                for d in desktops.iter().filter(|d| d.meta.class == p.name) {
                    if d.meta.seed_version != version && d.meta.pool != PoolState::Retired {
                        on_old_seed += 1;
                    }
                    if d.meta.pool == PoolState::Creation {
                        creating += 1;
                    }
                }
                let stats = self.ledger.stats(&p.name);
                let mut logins: deskpool_api::LoginStatsView = (&stats).into();
                logins.last_hour = self.login_windows.window(&p.name, now, &stats);
                let mut plan: deskpool_api::ClassPlanView = p.into();
                if plan.creation != creating {
                    in_creation(&mut plan, creating);
                }
                if self.paused {
                    // Said first: while paused nothing else on the line moves.
                    plan.reasons
                        .insert(0, deskpool_api::ReasonView::EnginePaused);
                }
                ClassStatus {
                    plan,
                    seed_version: version,
                    on_old_seed,
                    cap: spec.map_or(0, |c| c.policy.cap),
                    logins,
                    demand: self
                        .history
                        .recent_logins(&p.name, now, DEMAND_BUCKETS_SHOWN),
                }
            })
            .collect();
        let mut per_host: HashMap<&str, u32> = HashMap::new();
        for d in &desktops {
            *per_host.entry(d.host.as_str()).or_default() += 1;
        }
        let hosts: Vec<HostState> = self
            .fleet
            .hosts
            .iter()
            .map(|h| {
                let rt = &self.hosts[&h.name];
                HostState {
                    name: h.name.clone(),
                    uri: h.uri.clone(),
                    status: (&rt.status).into(),
                    standby: h.standby,
                    desktops: per_host.get(h.name.as_str()).copied().unwrap_or(0),
                    capacity: h.capacity.into(),
                    retry_in_secs: self
                        .host_retry
                        .get(&h.name)
                        .filter(|_| matches!(rt.status, HostStatus::Down { .. }))
                        .map(|b| b.until.duration_since(now).as_secs().max(0) as u64),
                }
            })
            .collect();
        let seed_copies = self
            .seed_progress
            .iter()
            .map(|((host, class, version), progress)| SeedProgress {
                host: host.clone(),
                class: class.clone(),
                version: version.clone(),
                done_bytes: progress.done.load(Ordering::Relaxed),
                total_bytes: progress.total.load(Ordering::Relaxed),
            })
            .collect();
        let hosts_settled = self
            .hosts
            .values()
            .all(|rt| !matches!(rt.status, HostStatus::Activating));
        let steady = !classes.is_empty()
            && classes_steady
            && self.in_flight.iter().all(|k| matches!(k, JobKey::Host(_)))
            && hosts_settled;
        let snapshot = Snapshot {
            at: Some(now),
            paused: self.paused,
            read_only: self.read_only,
            passes: self.passes,
            classes,
            hosts,
            desktops: Arc::new(
                desktops
                    .into_iter()
                    .map(|d| {
                        let reach = self.reach.get(&d.name).cloned().unwrap_or_default();
                        deskpool_api::DesktopView {
                            display: reach.display,
                            address: reach.address,
                            ..d.into()
                        }
                    })
                    .collect(),
            ),
            seed_copies,
            jobs_in_flight: self.in_flight.len(),
            steady,
            // Counted by the driver, which sends the events.
            events_dropped: 0,
            leadership: self.leadership.clone(),
            timings: self.timings.views(),
        };
        self.effects.push(Effect::Publish(Box::new(snapshot)));
    }
}
