//! Reloading the configuration (SIGHUP on `serve`). What can change while the engine runs is
//! applied at once: policies, classes, host capacities and commands, hosts added, engine
//! tunables, the network endpoint's tokens (the broker takes them from the reloaded file). A file that needs a restart to take effect, or that would take desktops away from
//! their users, is refused whole and the running configuration kept, so a reload changes either
//! everything the file says or nothing.

use super::*;

impl EngineState {
    /// Applies `config` (the file read again, or why it could not be read), tells the outcome
    /// in an event and returns it: what changed, or why nothing did.
    pub(super) fn reload(&mut self, config: Result<Box<Fleet>, String>) -> Result<String, String> {
        let outcome = config
            .and_then(|fleet| self.refusal(&fleet).map_or(Ok(fleet), Err))
            .map(|fleet| self.apply_reload(*fleet));
        match &outcome {
            Ok(summary) => self.emit(
                EventKind::ConfigReloaded,
                None,
                None,
                None,
                format!("configuration reloaded: {summary}"),
            ),
            Err(why) => self.emit(
                EventKind::ConfigRefused,
                None,
                None,
                None,
                format!("configuration not reloaded, the running one is kept: {why}"),
            ),
        }
        self.publish_now = true;
        outcome
    }

    /// Why `new` cannot replace the running configuration, if it cannot.
    fn refusal(&self, new: &Fleet) -> Option<String> {
        let old = &self.fleet;
        let mut restart = Vec::new();
        if old.engine.state_dir != new.engine.state_dir {
            restart.push("[engine] state_dir".to_string());
        }
        if old.engine.creation_pool != new.engine.creation_pool {
            restart.push("[engine] creation_pool".to_string());
        }
        if old.engine.creation_pool_path != new.engine.creation_pool_path {
            restart.push("[engine] creation_pool_path".to_string());
        }
        if old.broker.socket != new.broker.socket {
            restart.push("[broker] socket".to_string());
        }
        // The endpoint is bound and its TLS files read once; its tokens are taken anew.
        if old.broker.listen != new.broker.listen {
            restart.push("[broker] listen".to_string());
        }
        if old.broker.tls != new.broker.tls {
            restart.push("[broker] tls_cert, tls_key or client_ca".to_string());
        }
        // The election joined at the start is the one this controller keeps.
        if old.ha != new.ha {
            restart.push("[ha]".to_string());
        }
        for host in &new.hosts {
            let Some(was) = old.host(&host.name) else {
                continue;
            };
            if was.uri != host.uri {
                restart.push(format!("the uri of host {}", host.name));
            }
            if was.creation_pool_path != host.creation_pool_path {
                restart.push(format!("the creation_pool_path of host {}", host.name));
            }
        }
        if !restart.is_empty() {
            return Some(format!(
                "{} changed, which takes a restart of serve",
                restart.join(", ")
            ));
        }
        for host in old.hosts.iter().filter(|h| new.host(&h.name).is_none()) {
            let held = self
                .desktops
                .values()
                .filter(|d| d.value.host == host.name)
                .count();
            if held > 0 {
                return Some(format!(
                    "host {} is removed but holds {held} desktop{}: drain it (and recycle its \
                     desktops) before removing it",
                    host.name,
                    if held == 1 { "" } else { "s" }
                ));
            }
            if self.in_flight.contains(&JobKey::Host(host.name.clone())) {
                return Some(format!(
                    "host {} is removed while a connection to it is under way: try again once \
                     it has answered",
                    host.name
                ));
            }
        }
        for class in old.classes.iter().filter(|c| new.class(&c.name).is_none()) {
            let assigned = self
                .desktops
                .values()
                // A disconnected user's desktop is theirs as much as one in use.
                .filter(|d| d.value.meta.class == class.name && d.value.meta.pool.is_assigned())
                .count();
            if assigned > 0 {
                return Some(format!(
                    "class {} is removed but {assigned} of its desktops are in production: \
                     wait until their users have logged out",
                    class.name
                ));
            }
        }
        None
    }

    /// Replaces the running configuration with `new` (already checked) and says what changed.
    fn apply_reload(&mut self, new: Fleet) -> String {
        let old = std::mem::replace(&mut self.fleet, new);
        let mut changes = Vec::new();

        let added: Vec<&str> = names_missing(&self.fleet.classes, &old.classes, |c| &c.name);
        let removed: Vec<&str> = names_missing(&old.classes, &self.fleet.classes, |c| &c.name);
        let mut changed = Vec::new();
        for class in &self.fleet.classes {
            if let Some(was) = old.class(&class.name)
                && was != class
            {
                changed.push(class.name.clone());
            }
        }
        // A changed class paces afresh, as after a policy edit.
        for name in &changed {
            *self.pacing_generation.entry(name.clone()).or_default() += 1;
        }
        describe(&mut changes, "class", "added", &added);
        describe(&mut changes, "class", "removed", &removed);
        describe(&mut changes, "class", "changed", &changed);
        self.classes = Arc::new(self.fleet.classes.clone());

        let hosts_added: Vec<String> = names_missing(&self.fleet.hosts, &old.hosts, |h| &h.name)
            .into_iter()
            .map(str::to_string)
            .collect();
        let hosts_removed: Vec<String> = names_missing(&old.hosts, &self.fleet.hosts, |h| &h.name)
            .into_iter()
            .map(str::to_string)
            .collect();
        let hosts_changed: Vec<&str> = self
            .fleet
            .hosts
            .iter()
            .filter(|h| old.host(&h.name).is_some_and(|was| was != *h))
            .map(|h| h.name.as_str())
            .collect();
        describe(&mut changes, "host", "changed", &hosts_changed);
        for name in &hosts_removed {
            self.hosts.remove(name);
            self.unread_hosts.remove(name);
            self.host_retry.clear(name);
            self.effects
                .push(Effect::DropConnection { host: name.clone() });
        }
        for name in &hosts_added {
            let standby = self.fleet.host(name).is_some_and(|h| h.standby);
            self.hosts.insert(name.clone(), HostRuntime::new(standby));
            // As at the start: a standby host is probed, without its activation command.
            self.connect(name, standby);
        }
        describe(&mut changes, "host", "added", &hosts_added);
        describe(&mut changes, "host", "removed", &hosts_removed);

        if old.engine.timezone != self.fleet.engine.timezone {
            self.demand
                .set_time_zone(self.fleet.engine.timezone.clone());
        }
        // Holidays and events are one-off days the demand model must not learn from.
        self.demand.follow_calendar(&self.fleet);
        if old.engine != self.fleet.engine {
            changes.push("[engine] settings changed".to_string());
        }
        if old.broker.tokens != self.fleet.broker.tokens
            || old.broker.tokens_file != self.fleet.broker.tokens_file
        {
            changes.push("[broker] tokens changed".to_string());
        }
        if changes.is_empty() {
            "nothing changed".to_string()
        } else {
            changes.join("; ")
        }
    }

    /// The outcome of the last reload, once (the driver logs it and answers whoever asked).
    pub fn take_reload_outcome(&mut self) -> Option<Result<String, String>> {
        self.last_reload.take()
    }
}

/// The names of `items` that `others` does not have, in `items`' order.
fn names_missing<'a, T>(
    items: &'a [T],
    others: &[T],
    name: impl Fn(&T) -> &String,
) -> Vec<&'a str> {
    items
        .iter()
        .filter(|i| !others.iter().any(|o| name(o) == name(i)))
        .map(|i| name(i).as_str())
        .collect()
}

/// "classes added: a, b" (or "class added: a").
fn describe(changes: &mut Vec<String>, what: &str, how: &str, names: &[impl AsRef<str>]) {
    let list = names
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    match names.len() {
        0 => {}
        1 => changes.push(format!("{what} {how}: {list}")),
        _ => {
            let plural = if what.ends_with('s') { "es" } else { "s" };
            changes.push(format!("{what}{plural} {how}: {list}"))
        }
    }
}
