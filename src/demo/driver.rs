//! Plays the demo days against the engine, in the demo clock's accelerated time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::ToSpan;

use super::day::working_day;
use deskpool_api::Commander;
use deskpool_api::{Command, Reply};
use deskpool_core::clock::{Clock, ScaledClock};

/// How long (real seconds) a demo login waits for a desktop before giving up.
const LOGIN_WAIT_SECS: u64 = 30;

/// Replays working days, one after another, from the clock's current day; runs until the engine
/// stops answering.
pub async fn drive(commands: Commander, clock: Arc<ScaledClock>) {
    let held: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let mut date = clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    loop {
        for event in working_day(date) {
            if event.at < clock.now() {
                continue;
            }
            tokio::time::sleep_until(clock.real_instant(event.at).into()).await;
            let (commands, held) = (commands.clone(), held.clone());
            if event.login {
                tokio::spawn(async move {
                    let command = Command::Assign {
                        class: event.class.to_string(),
                        user: event.user.clone(),
                        wait_secs: LOGIN_WAIT_SECS,
                    };
                    if let Ok(Reply::Assigned { desktop, .. }) =
                        commands.send(command, "demo").await
                    {
                        held.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(event.user, desktop);
                    }
                });
            } else {
                let desktop = held
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&event.user);
                if let Some(desktop) = desktop
                    && let Err(e) = commands.send(Command::Release { desktop }, "demo").await
                    && e.kind == deskpool_api::ErrorKind::Unavailable
                    && e.message.starts_with("the engine")
                {
                    // The engine is gone: so is the demo.
                    return;
                }
            }
        }
        date = date.checked_add(1.day()).unwrap_or(date);
    }
}
