//! The console assembled: an engine of this process serving the broker socket (or one reached
//! through that socket), the demo's synthetic day when asked, and the views of `deskpool-tui`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use deskpool_core::clock::{Clock, SystemClock};
use deskpool_core::policy::Fleet;
use deskpool_engine::run::{self, Connections, EngineOptions};
use deskpool_tui::ConsoleOptions;

/// Where the console's engine runs.
pub enum ConsoleEngine {
    /// Start one in this process and serve the broker socket at this path from it (so that
    /// `deskpool ctl` and other consoles can reach it); `None` serves nothing (a read-only
    /// engine beside the one that works).
    Own { socket: Option<PathBuf> },
    /// Attach to the engine listening on this socket (another console or `deskpool serve`).
    Attach { socket: PathBuf },
}

/// Runs the console until the admin quits; an engine of this process stops with it.
/// `demo`: an accelerated clock, and a synthetic day played against the engine.
pub fn run(
    fleet: Fleet,
    mut options: ConsoleOptions,
    engine: ConsoleEngine,
    demo: Option<crate::demo::Demo>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    runtime.block_on(async move {
        let (handle, broker) = match engine {
            ConsoleEngine::Attach { socket } => {
                let handle = deskpool_broker::attach(&socket, options.read_only).await?;
                options.attached = Some(socket);
                (handle, None)
            }
            ConsoleEngine::Own { socket } => {
                let clock: Arc<dyn Clock> = match &demo {
                    Some(demo) => demo.clock.clone(),
                    None => Arc::new(SystemClock),
                };
                let mut handle = run::start(
                    fleet.clone(),
                    EngineOptions {
                        clock,
                        read_only: options.read_only,
                        paused: false,
                        connections: Connections::new(),
                        state_dir: Some(options.state_dir.clone()),
                        simulated_steps: demo.as_ref().map(|d| d.steps()).unwrap_or_default(),
                        leadership: None,
                    },
                );
                let classes = fleet.classes.iter().map(|c| c.name.clone()).collect();
                // A console without its socket still works; it says why nobody can reach it.
                let broker = match socket
                    .as_ref()
                    .map(|socket| deskpool_broker::Broker::start(&mut handle, socket, classes))
                {
                    None => None,
                    Some(Ok(b)) => Some(b),
                    Some(Err(e)) => {
                        tracing::warn!("broker socket: {e:#}");
                        options.note = Some(format!("broker socket not served: {e:#}"));
                        None
                    }
                };
                // The network endpoint as `serve` has it; without it the console still works.
                let mut broker = broker;
                if let Some(b) = broker.as_mut() {
                    let audit_log = options.state_dir.join("audit.log");
                    if let Err(e) = b.serve_endpoint(&fleet.broker, audit_log).await {
                        tracing::warn!("broker endpoint: {e:#}");
                        options.note = Some(format!("broker endpoint not served: {e:#}"));
                    }
                }
                if let Some(demo) = &demo {
                    options.demo_speed = Some(demo.clock.speed());
                    tokio::spawn(crate::demo::drive(handle.commander(), demo.clock.clone()));
                }
                (handle, broker)
            }
        };
        let result = deskpool_tui::run(handle, fleet, options).await;
        if let Some(broker) = broker {
            broker.shutdown().await;
        }
        Ok(result?)
    })
}
