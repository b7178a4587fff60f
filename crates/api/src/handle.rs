//! The handle a console, the CLI and the broker hold on an engine: its published snapshots, its
//! events, and a way to send it commands. The same handle serves an engine of this process and
//! one reached through a broker socket, so nothing that holds it needs to know which.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::{Command, CommandError, CommandResult, Event, Request, Snapshot};

/// Events a subscriber may fall behind by before it misses some (it is told how many).
pub const EVENT_FANOUT: usize = 1024;
/// Events the console's own [`EngineHandle::events`] holds unread before newer ones are dropped.
const LOCAL_EVENTS: usize = 1024;

/// The console's and the CLI's handle on a running engine: one started in this process
/// (`deskpool_engine::run::start`), or one in another process reached through its broker socket
/// (`broker::client::attach`, built with [`EngineHandle::from_parts`]).
///
/// The engine's single event channel is read by a fan-out task the handle starts: each event goes
/// to [`EngineHandle::events`] (the console) and to every [`EngineHandle::events_subscribe`]r
/// (the broker), so no reader has to take the channel from another.
pub struct EngineHandle {
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub events: mpsc::Receiver<Event>,
    commands: mpsc::Sender<Request>,
    task: tokio::task::JoinHandle<()>,
    /// `None` for an attached engine: shutting the handle down stops only the local task.
    shutdown: Option<oneshot::Sender<()>>,
    /// Weak: the broadcast closes when the fan-out ends (the engine closed its channel), so a
    /// subscriber then sees `Closed` even while this handle lives.
    fanout: broadcast::WeakSender<Event>,
    /// Subscribed when the handle was made: the first subscriber gets the events from the start.
    first_subscriber: Option<broadcast::Receiver<Event>>,
    /// Events [`EngineHandle::events`] dropped because they were not read in time.
    events_dropped: Arc<AtomicU64>,
}

/// Starts a task that reads `upstream` until its sender (the engine, or an attached handle's
/// pump) closes it, copying each event to the returned channel (dropped when its reader lags, as
/// the engine drops them for a slow console) and to the broadcast. Needs a tokio runtime.
fn fan_out(
    mut upstream: mpsc::Receiver<Event>,
) -> (
    mpsc::Receiver<Event>,
    broadcast::WeakSender<Event>,
    broadcast::Receiver<Event>,
    Arc<AtomicU64>,
) {
    let (local_tx, local_rx) = mpsc::channel(LOCAL_EVENTS);
    let (sender, first_subscriber) = broadcast::channel(EVENT_FANOUT);
    let fanout = sender.downgrade();
    let dropped = Arc::new(AtomicU64::new(0));
    let count = dropped.clone();
    tokio::spawn(async move {
        while let Some(event) = upstream.recv().await {
            // No subscriber yet, or none left: the event still reaches the console.
            let _ = sender.send(event.clone());
            // Nobody reading locally (`deskpool serve`): dropped, as the engine would.
            if let Err(mpsc::error::TrySendError::Full(_)) = local_tx.try_send(event) {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    (local_rx, fanout, first_subscriber, dropped)
}

/// A cloneable way to send commands to the engine (from tasks of the console).
#[derive(Clone)]
pub struct Commander(mpsc::Sender<Request>);

impl Commander {
    /// Sends a command and waits for its result (a refusal keeps its kind).
    pub async fn send(&self, command: Command, actor: &str) -> CommandResult {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(Request {
                command,
                actor: actor.to_string(),
                reply,
            })
            .await
            .map_err(|_| CommandError::unavailable("the engine has stopped"))?;
        answer
            .await
            .map_err(|_| CommandError::unavailable("the engine stopped before answering"))?
    }
}

impl EngineHandle {
    /// A handle on an engine that runs elsewhere: `snapshot`, `events` and `commands` are fed
    /// and served by `task` (which owns whatever pumps them). [`EngineHandle::shutdown`] then
    /// stops `task` only.
    pub fn from_parts(
        snapshot: watch::Receiver<Arc<Snapshot>>,
        events: mpsc::Receiver<Event>,
        commands: mpsc::Sender<Request>,
        task: tokio::task::JoinHandle<()>,
    ) -> EngineHandle {
        let (events, fanout, first_subscriber, events_dropped) = fan_out(events);
        EngineHandle {
            snapshot,
            events,
            commands,
            task,
            shutdown: None,
            fanout,
            first_subscriber: Some(first_subscriber),
            events_dropped,
        }
    }

    /// Events [`EngineHandle::events`] dropped because it was not read in time (the fan-out
    /// drains the engine's own channel, so the snapshot's `events_dropped` no longer counts them).
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped.load(Ordering::Relaxed)
    }

    /// A receiver of every event from now on, beside [`EngineHandle::events`]. The first call
    /// gets the events since the handle was made (as many as [`EVENT_FANOUT`]); a receiver that
    /// falls further behind is told how many it missed (`RecvError::Lagged`).
    pub fn events_subscribe(&mut self) -> broadcast::Receiver<Event> {
        if let Some(first) = self.first_subscriber.take() {
            return first;
        }
        match self.fanout.upgrade() {
            Some(sender) => sender.subscribe(),
            // The engine's events have ended: so does this receiver's.
            None => broadcast::channel(1).1,
        }
    }

    /// Sends a command and waits for its result.
    pub async fn send(&self, command: Command, actor: &str) -> CommandResult {
        self.commander().send(command, actor).await
    }

    /// The handle on an engine started in this process: `stop` asks `task` to stop at a clean
    /// point.
    pub fn local(
        snapshot: watch::Receiver<Arc<Snapshot>>,
        events: mpsc::Receiver<Event>,
        commands: mpsc::Sender<Request>,
        task: tokio::task::JoinHandle<()>,
        stop: oneshot::Sender<()>,
    ) -> EngineHandle {
        EngineHandle {
            shutdown: Some(stop),
            ..EngineHandle::from_parts(snapshot, events, commands, task)
        }
    }

    pub fn commander(&self) -> Commander {
        Commander(self.commands.clone())
    }

    /// Waits until a published snapshot satisfies `ready`, for at most `limit`.
    pub async fn wait_for(
        &mut self,
        limit: Duration,
        mut ready: impl FnMut(&Snapshot) -> bool,
    ) -> Result<Arc<Snapshot>, Arc<Snapshot>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let current = self.snapshot.borrow_and_update().clone();
            if ready(&current) {
                return Ok(current);
            }
            match tokio::time::timeout_at(deadline, self.snapshot.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(self.snapshot.borrow().clone()),
            }
        }
    }

    /// Stops the engine at a clean point: jobs under way finish, nothing new starts. For an
    /// attached engine, stops the local pumps and leaves the engine running.
    pub async fn shutdown(mut self) {
        match self.shutdown.take() {
            Some(stop) => {
                let _ = stop.send(());
            }
            None => self.task.abort(),
        }
        let _ = (&mut self.task).await;
    }

    /// Kills the engine task where it stands (tests of interrupted runs).
    pub fn abort(self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventKind;

    fn event(message: &str) -> Event {
        Event {
            at: jiff::Timestamp::UNIX_EPOCH,
            kind: EventKind::Provisioned,
            class: None,
            host: None,
            desktop: None,
            message: message.to_string(),
        }
    }

    fn handle() -> (mpsc::Sender<Event>, EngineHandle) {
        let (_, snapshot) = watch::channel(Arc::new(Snapshot::default()));
        let (events_tx, events) = mpsc::channel(8);
        let (commands, _) = mpsc::channel(1);
        let task = tokio::spawn(async {});
        (
            events_tx,
            EngineHandle::from_parts(snapshot, events, commands, task),
        )
    }

    #[tokio::test]
    async fn the_console_and_every_subscriber_get_each_event() {
        let (engine, mut handle) = handle();
        engine
            .send(event("before anyone subscribed"))
            .await
            .unwrap();
        // The console has it, so the fan-out has passed it on: a subscriber from now on has not.
        assert_eq!(
            handle.events.recv().await.unwrap().message,
            "before anyone subscribed"
        );
        let mut first = handle.events_subscribe();
        let mut second = handle.events_subscribe();
        engine.send(event("after")).await.unwrap();
        assert_eq!(handle.events.recv().await.unwrap().message, "after");
        // The first subscriber has the events from the handle's start; a later one from its own.
        assert_eq!(
            first.recv().await.unwrap().message,
            "before anyone subscribed"
        );
        assert_eq!(first.recv().await.unwrap().message, "after");
        assert_eq!(second.recv().await.unwrap().message, "after");
        // The engine's channel closing closes every copy, and a subscriber from then on.
        drop(engine);
        assert!(handle.events.recv().await.is_none());
        for mut subscriber in [first, second, handle.events_subscribe()] {
            assert!(matches!(
                subscriber.recv().await,
                Err(broadcast::error::RecvError::Closed)
            ));
        }
    }

    #[tokio::test]
    async fn events_the_console_does_not_read_are_dropped_and_counted() {
        let (engine, handle) = handle();
        for n in 0..LOCAL_EVENTS + 3 {
            engine.send(event(&n.to_string())).await.unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while handle.events_dropped() < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "dropped {} of 3",
                handle.events_dropped()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(engine);
        let mut handle = handle;
        let mut kept = 0;
        while handle.events.recv().await.is_some() {
            kept += 1;
        }
        assert_eq!(kept, LOCAL_EVENTS);
        assert_eq!(handle.events_dropped(), 3);
    }
}
