//! A class's policy as `set_policy` carries it: the protocol's own twin of the core's
//! [`Policy`], converted both ways field by field. Reading one checks only its shape; the
//! engine holds the policy it gets to [`Policy::validate`], the rules of the config file and
//! the policy editor, so every way a policy arrives accepts the same ones.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use deskpool_core::policy::{
    BufferRule, Event, LogoutAction, Pacing, Period, Policy, Predictive, ShutoffAction, TimeOfDay,
    Weekdays,
};

/// How many desktops of a class to keep, and how fast to make them (the core's [`Policy`]).
/// Each struct here tells serde what it expects in its core twin's words, so the answer to a
/// request of the wrong shape reads as before ("expected struct Policy").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(expecting = "struct Policy")]
pub struct PolicyWire {
    pub cap: u32,
    pub buffer: BufferRuleWire,
    pub production: u32,
    pub periods: Vec<PeriodWire>,
    /// Policies written before dated events existed read as having none.
    #[serde(default)]
    pub events: Vec<EventWire>,
    pub pacing: PacingWire,
    pub on_logout: LogoutActionWire,
    /// Policies written before the key existed read as the default.
    #[serde(default)]
    pub on_shutoff: ShutoffActionWire,
    pub ready_secs: u64,
    pub scale_down_delay_secs: u64,
    /// Policies written before the key existed read as 0 (a disconnect is a logout).
    #[serde(default)]
    pub disconnect_grace_secs: u64,
    pub predictive: Option<PredictiveWire>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "struct BufferRule")]
pub struct BufferRuleWire {
    pub floor: u32,
    pub percent: u32,
    pub ceiling: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "struct Period")]
pub struct PeriodWire {
    /// Days on which the period starts, bit 0 = Monday.
    pub days: u8,
    /// Seconds since midnight.
    pub from: u32,
    /// Seconds since midnight; `to <= from` crosses midnight.
    pub to: u32,
    pub production: u32,
    pub buffer: BufferRuleWire,
}

/// A dated event: from `from` to `to` on every day from `first_day` to `last_day`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "struct Event")]
pub struct EventWire {
    pub name: String,
    /// `YYYY-MM-DD`, in the engine's time zone.
    pub first_day: jiff::civil::Date,
    /// `YYYY-MM-DD`, included.
    pub last_day: jiff::civil::Date,
    /// Seconds since midnight.
    pub from: u32,
    /// Seconds since midnight, after `from` (86400 is the end of the day).
    pub to: u32,
    pub production: u32,
    pub buffer: BufferRuleWire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "struct Pacing")]
pub struct PacingWire {
    pub clones_per_host: u32,
    pub boots_per_host: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogoutActionWire {
    Recycle,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutoffActionWire {
    #[default]
    Restart,
    Recycle,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(expecting = "struct Predictive")]
pub struct PredictiveWire {
    pub service_level: f64,
}

impl From<&Policy> for PolicyWire {
    fn from(policy: &Policy) -> Self {
        let Policy {
            cap,
            buffer,
            production,
            periods,
            events,
            pacing,
            on_logout,
            on_shutoff,
            ready_secs,
            scale_down_delay_secs,
            disconnect_grace_secs,
            predictive,
        } = policy;
        PolicyWire {
            cap: *cap,
            buffer: (*buffer).into(),
            production: *production,
            periods: periods.iter().map(PeriodWire::from).collect(),
            events: events.iter().map(EventWire::from).collect(),
            pacing: (*pacing).into(),
            on_logout: (*on_logout).into(),
            on_shutoff: (*on_shutoff).into(),
            ready_secs: *ready_secs,
            scale_down_delay_secs: *scale_down_delay_secs,
            disconnect_grace_secs: *disconnect_grace_secs,
            predictive: predictive
                .map(|Predictive { service_level }| PredictiveWire { service_level }),
        }
    }
}

impl From<PolicyWire> for Policy {
    fn from(policy: PolicyWire) -> Self {
        let PolicyWire {
            cap,
            buffer,
            production,
            periods,
            events,
            pacing,
            on_logout,
            on_shutoff,
            ready_secs,
            scale_down_delay_secs,
            disconnect_grace_secs,
            predictive,
        } = policy;
        Policy {
            cap,
            buffer: buffer.into(),
            production,
            periods: periods.into_iter().map(Period::from).collect(),
            events: events.into_iter().map(Event::from).collect(),
            pacing: pacing.into(),
            on_logout: on_logout.into(),
            on_shutoff: on_shutoff.into(),
            ready_secs,
            scale_down_delay_secs,
            disconnect_grace_secs,
            predictive: predictive
                .map(|PredictiveWire { service_level }| Predictive { service_level }),
        }
    }
}

impl From<BufferRule> for BufferRuleWire {
    fn from(
        BufferRule {
            floor,
            percent,
            ceiling,
        }: BufferRule,
    ) -> Self {
        BufferRuleWire {
            floor,
            percent,
            ceiling,
        }
    }
}

impl From<BufferRuleWire> for BufferRule {
    fn from(
        BufferRuleWire {
            floor,
            percent,
            ceiling,
        }: BufferRuleWire,
    ) -> Self {
        BufferRule {
            floor,
            percent,
            ceiling,
        }
    }
}

impl From<&Period> for PeriodWire {
    fn from(period: &Period) -> Self {
        let Period {
            days,
            from,
            to,
            production,
            buffer,
        } = period;
        PeriodWire {
            days: days.0,
            from: from.0,
            to: to.0,
            production: *production,
            buffer: (*buffer).into(),
        }
    }
}

impl From<PeriodWire> for Period {
    fn from(period: PeriodWire) -> Self {
        let PeriodWire {
            days,
            from,
            to,
            production,
            buffer,
        } = period;
        Period {
            days: Weekdays(days),
            from: TimeOfDay(from),
            to: TimeOfDay(to),
            production,
            buffer: buffer.into(),
        }
    }
}

impl From<&Event> for EventWire {
    fn from(event: &Event) -> Self {
        let Event {
            name,
            first_day,
            last_day,
            from,
            to,
            production,
            buffer,
        } = event;
        EventWire {
            name: name.clone(),
            first_day: *first_day,
            last_day: *last_day,
            from: from.0,
            to: to.0,
            production: *production,
            buffer: (*buffer).into(),
        }
    }
}

impl From<EventWire> for Event {
    fn from(event: EventWire) -> Self {
        let EventWire {
            name,
            first_day,
            last_day,
            from,
            to,
            production,
            buffer,
        } = event;
        Event {
            name,
            first_day,
            last_day,
            from: TimeOfDay(from),
            to: TimeOfDay(to),
            production,
            buffer: buffer.into(),
        }
    }
}

impl From<Pacing> for PacingWire {
    fn from(
        Pacing {
            clones_per_host,
            boots_per_host,
        }: Pacing,
    ) -> Self {
        PacingWire {
            clones_per_host,
            boots_per_host,
        }
    }
}

impl From<PacingWire> for Pacing {
    fn from(
        PacingWire {
            clones_per_host,
            boots_per_host,
        }: PacingWire,
    ) -> Self {
        Pacing {
            clones_per_host,
            boots_per_host,
        }
    }
}

impl From<LogoutAction> for LogoutActionWire {
    fn from(action: LogoutAction) -> Self {
        match action {
            LogoutAction::Recycle => LogoutActionWire::Recycle,
            LogoutAction::Delete => LogoutActionWire::Delete,
        }
    }
}

impl From<LogoutActionWire> for LogoutAction {
    fn from(action: LogoutActionWire) -> Self {
        match action {
            LogoutActionWire::Recycle => LogoutAction::Recycle,
            LogoutActionWire::Delete => LogoutAction::Delete,
        }
    }
}

impl From<ShutoffAction> for ShutoffActionWire {
    fn from(action: ShutoffAction) -> Self {
        match action {
            ShutoffAction::Restart => ShutoffActionWire::Restart,
            ShutoffAction::Recycle => ShutoffActionWire::Recycle,
        }
    }
}

impl From<ShutoffActionWire> for ShutoffAction {
    fn from(action: ShutoffActionWire) -> Self {
        match action {
            ShutoffActionWire::Restart => ShutoffAction::Restart,
            ShutoffActionWire::Recycle => ShutoffAction::Recycle,
        }
    }
}

/// `#[serde(with = "...")]` for a command's `Box<Policy>`: the command keeps the core's policy
/// (what the engine applies), the wire sees a [`PolicyWire`].
pub(crate) mod as_wire {
    use super::*;

    pub fn serialize<S: Serializer>(policy: &Policy, serializer: S) -> Result<S::Ok, S::Error> {
        PolicyWire::from(policy).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Box<Policy>, D::Error> {
        PolicyWire::deserialize(deserializer).map(|wire| Box::new(wire.into()))
    }
}
