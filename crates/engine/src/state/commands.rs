//! Commands: answers held until the snapshot that shows them, and each command applied.

use super::*;

/// A command as the event log says it, in words (no Rust `Debug` text).
pub(super) fn describe(command: &Command) -> String {
    match command {
        Command::Pause => "pause the engine".into(),
        Command::Resume => "resume the engine".into(),
        Command::Refill { class } => format!("refill {class}"),
        Command::RaiseFloor {
            class,
            floor,
            until,
        } => format!("raise the buffer floor of {class} to {floor} until {until}"),
        Command::DrainHost { host } => format!("drain host {host}"),
        Command::UndrainHost { host } => format!("undrain host {host}"),
        Command::SetPolicy { class, policy } => format!(
            "set the policy of {class}: production {}, buffer {}% {}..{}, cap {}, {} periods",
            policy.production,
            policy.buffer.percent,
            policy.buffer.floor,
            policy.buffer.ceiling,
            policy.cap,
            policy.periods.len()
        ),
        Command::Assign { class, user, .. } => format!("assign a {class} desktop to {user}"),
        Command::Release { desktop } => format!("release {desktop}"),
        Command::Disconnect { desktop } => format!("disconnect {desktop}"),
        Command::Recycle { desktop } => format!("recycle {desktop}"),
    }
}

impl EngineState {
    /// Queues an answer; it goes out once the next snapshot (which shows its effect) is out, so
    /// that a client reading the status right after its answer sees what it did.
    pub(super) fn answer(&mut self, id: RequestId, result: CommandResult) {
        self.answers.push((id, result));
    }

    pub(super) fn send_answers(&mut self) {
        let answers = std::mem::take(&mut self.answers);
        self.effects.extend(
            answers
                .into_iter()
                .map(|(id, result)| Effect::Answer { id, result }),
        );
    }

    pub(super) fn command(&mut self, id: RequestId, command: Command, actor: &str) {
        self.publish_now = true;
        // Logins and logouts have their own events; everything else is an admin action.
        let admin = !matches!(
            command,
            Command::Assign { .. } | Command::Release { .. } | Command::Disconnect { .. }
        );
        let describe = describe(&command);
        let result = self.apply_command(command, actor, id);
        if let Some(result) = result {
            if admin {
                let note = match &result {
                    Ok(_) => "ok".to_string(),
                    Err(e) => format!("refused: {e}"),
                };
                self.emit(
                    EventKind::AdminAction,
                    None,
                    None,
                    None,
                    format!("{actor}: {describe}: {note}"),
                );
            }
            self.answer(id, result);
        }
    }

    /// Applies a command; returns the reply to send now, or `None` when a job will answer.
    pub(super) fn apply_command(
        &mut self,
        command: Command,
        actor: &str,
        id: RequestId,
    ) -> Option<CommandResult> {
        let writes = !matches!(
            command,
            Command::Assign { .. } | Command::Release { .. } | Command::Disconnect { .. }
        );
        if self.read_only && writes {
            return Some(Err(CommandError::read_only("the engine is read-only")));
        }
        if !self.acting() {
            return Some(Err(self.not_leading()));
        }
        let result = match command {
            Command::Pause => {
                self.paused = true;
                Ok(Reply::Done)
            }
            Command::Resume => {
                if self.read_only {
                    Err(CommandError::read_only("the engine is read-only"))
                } else {
                    self.paused = false;
                    Ok(Reply::Done)
                }
            }
            Command::Refill { class } => {
                if self.fleet.class(&class).is_none() {
                    Err(CommandError::not_found(format!("unknown class {class:?}")))
                } else {
                    self.class_backoff.clear(&class);
                    let names: Vec<String> = self
                        .desktops
                        .values()
                        .filter(|d| d.value.meta.class == class)
                        .map(|d| d.value.name.clone())
                        .collect();
                    for n in names {
                        self.desktop_retry.clear(&n);
                    }
                    self.seed_retry.retain(|(_, c, _), _| *c != class);
                    Ok(Reply::Done)
                }
            }
            Command::RaiseFloor {
                class,
                floor,
                until,
            } => {
                let cap = self.fleet.class(&class).map(|c| c.policy.cap);
                if cap.is_none() {
                    Err(CommandError::not_found(format!("unknown class {class:?}")))
                } else if let Some(why) = cap.and_then(|cap| {
                    deskpool_core::policy::rules::raised_floor_problem(floor, &class, cap)
                }) {
                    Err(CommandError::invalid(why))
                } else if until <= self.now() {
                    Err(CommandError::invalid("the expiry is in the past"))
                } else {
                    self.floor_raises.insert(class, (floor, until));
                    Ok(Reply::Done)
                }
            }
            Command::DrainHost { host } => match self.hosts.get_mut(&host) {
                None => Err(CommandError::not_found(format!("unknown host {host:?}"))),
                Some(rt) if matches!(rt.status, HostStatus::Standby) => Err(
                    CommandError::conflict(format!("host {host} is on standby; nothing to drain")),
                ),
                Some(rt) => {
                    rt.status = HostStatus::Draining { by_admin: true };
                    self.emit(
                        EventKind::HostDraining,
                        None,
                        Some(&host),
                        None,
                        format!("drained by {actor}"),
                    );
                    Ok(Reply::Done)
                }
            },
            Command::UndrainHost { host } => match self.hosts.get_mut(&host) {
                None => Err(CommandError::not_found(format!("unknown host {host:?}"))),
                Some(rt) if matches!(rt.status, HostStatus::Draining { .. }) => {
                    rt.status = if rt.connected {
                        HostStatus::Active
                    } else {
                        HostStatus::Activating
                    };
                    Ok(Reply::Done)
                }
                Some(_) => Err(CommandError::conflict(format!(
                    "host {host} is not draining"
                ))),
            },
            Command::SetPolicy { class, policy } => {
                // Policy::problems: the same rules as the config file and the policy editor.
                let valid = policy.validate();
                match self.fleet.classes.iter_mut().find(|c| c.name == class) {
                    None => Err(CommandError::not_found(format!("unknown class {class:?}"))),
                    Some(_) if let Err(why) = &valid => Err(CommandError::invalid(format!(
                        "invalid policy for class {class:?}: {why}"
                    ))),
                    Some(c) => {
                        c.policy = *policy;
                        self.classes = Arc::new(self.fleet.classes.clone());
                        // Its events are one-off days the demand model must not learn from.
                        self.demand.follow_calendar(&self.fleet);
                        *self.pacing_generation.entry(class.clone()).or_default() += 1;
                        self.emit(
                            EventKind::PolicyChanged,
                            Some(&class),
                            None,
                            None,
                            format!("policy changed by {actor}"),
                        );
                        Ok(Reply::Done)
                    }
                }
            }
            Command::Assign {
                class,
                user,
                wait_secs,
            } => return self.assign(class, user, wait_secs, id),
            Command::Release { desktop } => {
                return self.release(&desktop, actor, Ending::Logout, id);
            }
            Command::Disconnect { desktop } => {
                return self.release(&desktop, actor, Ending::Disconnect, id);
            }
            Command::Recycle { desktop } => {
                return self.release(&desktop, actor, Ending::Recycle, id);
            }
        };
        Some(result)
    }
}
