//! The `deskpool` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

mod generate;
mod token;

use deskpool::console::ConsoleEngine;
use deskpool::{report, setup};
use deskpool_api::Command;
use deskpool_broker as broker;
use deskpool_config as config;
use deskpool_core::clock::{ScaledClock, SystemClock};
use deskpool_engine::lock::EngineLock;
use deskpool_engine::run::{self, Connections, EngineOptions};
use deskpool_sim as sim;
use deskpool_tui::ConsoleOptions;
use deskpool_tui::theme::Theme;

/// The planner and the engine's passes make and drop many small names each pass; with glibc's
/// allocator, freeing them was about a third of a 100,000-desktop planner pass.
/// `examples/planner_bench.rs` measures the planner with this same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps pools of virtual desktops ahead of demand on libvirt hosts.
///
/// With no subcommand, opens the console (press ? in it for every key): attached to the engine
/// already serving the broker socket if there is one, else with an engine of its own that
/// serves the socket.
/// With no config file (neither --config nor ~/.config/deskpool/config.toml), deskpool runs an
/// embedded demo on libvirt's test driver. Logs go to STATE_DIR/deskpool.log
/// (~/.local/state/deskpool/deskpool.log by default; set DESKPOOL_LOG=debug for more).
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Configuration file (default: $XDG_CONFIG_HOME/deskpool/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Console colours: dark (default), light, high-contrast, or a theme file.
    #[arg(long, value_name = "NAME|FILE")]
    theme: Option<String>,
    /// Open the console on read-only libvirt connections, with every action disabled.
    #[arg(long)]
    read_only: bool,
    /// Replay a synthetic working day (morning logins, lunch, evening logouts) on the embedded
    /// demo, in accelerated time.
    #[arg(long)]
    demo: bool,
    /// How many times faster than real time the demo day runs.
    #[arg(long, default_value_t = 60, value_name = "N", requires = "demo", value_parser = clap::value_parser!(u32).range(1..=3600))]
    speed: u32,
    /// How long the demo's simulated hosts take to clone a desktop, in demo seconds (0: at
    /// once, as libvirt's test driver does).
    #[arg(long, default_value_t = 20, value_name = "SECS", requires = "demo", value_parser = clap::value_parser!(u32).range(0..=3600))]
    demo_clone_secs: u32,
    /// How long the demo's simulated hosts take to boot a desktop, in demo seconds (0: at once).
    #[arg(long, default_value_t = 60, value_name = "SECS", requires = "demo", value_parser = clap::value_parser!(u32).range(0..=3600))]
    demo_boot_secs: u32,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Subcommand)]
enum Sub {
    /// Validate the configuration and print a summary of it.
    Check,
    /// Run the engine without the console, then print per class and per host levels.
    Reconcile {
        /// Keep going until every class meets its targets (default: one pass).
        #[arg(long)]
        until_steady: bool,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Give up after this many seconds (exit status 2).
        #[arg(long, default_value_t = 600, value_name = "SECS")]
        timeout: u64,
    },
    /// Replay a login trace through the planner in virtual time and report what users saw.
    ///
    /// The trace is CSV with the header time,user,class,event (RFC 3339 UTC times in order,
    /// event login, logout or disconnect). Nothing touches libvirt: the hosts are a model in
    /// which cloning and booting take the times given.
    Simulate {
        /// The login trace (CSV).
        #[arg(long, value_name = "CSV")]
        trace: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Seconds to clone a desktop.
        #[arg(long, default_value_t = 20, value_name = "SECS")]
        clone_secs: u32,
        /// Seconds to boot a desktop until it is ready.
        #[arg(long, default_value_t = 60, value_name = "SECS")]
        boot_secs: u32,
        /// Seconds to copy a seed image to a host (0: at once).
        #[arg(long, default_value_t = 0, value_name = "SECS")]
        seed_secs: u32,
        /// Seconds to bring a standby host into service.
        #[arg(long, default_value_t = 120, value_name = "SECS")]
        activate_secs: u32,
        /// Seconds of virtual time between two planner passes.
        #[arg(long, default_value_t = 10, value_name = "SECS")]
        tick_secs: u32,
        /// A login waiting this long without a desktop is refused.
        #[arg(long, default_value_t = 900, value_name = "SECS")]
        max_wait_secs: u32,
    },
    /// Run the engine and the broker socket without a console, until SIGTERM or SIGINT
    /// (for a service manager). Consoles attach to it. SIGHUP reads the configuration file
    /// again: it is applied if it is valid and needs no restart, else the running one is kept.
    Serve,
    /// Talk to the running engine through its broker socket.
    Ctl {
        /// The broker socket (default: [broker] socket of the config, else STATE_DIR/deskpool.sock).
        #[arg(long, value_name = "PATH", global = true)]
        socket: Option<PathBuf>,
        #[command(subcommand)]
        command: Ctl,
    },
    /// Manage the tokens of the broker's network endpoint ([broker] listen).
    Token {
        #[command(subcommand)]
        command: Token,
    },
    /// Write the man pages or a shell completion script (for packagers).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
}

#[derive(Subcommand)]
enum Generate {
    /// Write deskpool.1 and one page per subcommand into DIR.
    Man { dir: PathBuf },
    /// Print the completion script for SHELL to stdout.
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum Token {
    /// Add a client: print a new secret once (stdout) and append NAME, SCOPE and the secret's
    /// SHA-256 to the token file.
    Add {
        name: String,
        /// read (GET endpoints, events), assign (assign and release too), admin (everything).
        #[arg(long)]
        scope: String,
        /// The token file (default: [broker] tokens of the config).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Ctl {
    /// Give USER a desktop of CLASS (the one they hold, if any); print its name, host and display.
    Assign {
        class: String,
        user: String,
        /// With the buffer empty, wait this long for the next desktop to become ready.
        #[arg(long, default_value_t = 0, value_name = "SECS")]
        wait: u64,
        /// Print the JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// The user of DESKTOP logged out: it is recycled.
    Release { desktop: String },
    /// The user of DESKTOP disconnected without logging out: it is kept for their reconnect
    /// for the class's disconnect_grace_secs, then recycled.
    Disconnect { desktop: String },
    /// Per class levels and targets, per host state and load.
    Status {
        /// Print the JSON answer.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Some(Sub::Check | Sub::Simulate { .. } | Sub::Generate { .. })
    ) {
        // Commands that only print end quietly when their reader goes (`deskpool check | head`),
        // as other command-line tools do; the others keep Rust's ignored SIGPIPE, so a closed
        // socket is an error they report, not a silent death mid-action.
        // SAFETY: restoring the default disposition of a signal, before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match run_cli(cli) {
        Ok(code) => code,
        Err(e) => {
            // Configuration errors print as FILE:LINE:COL: lines, as compilers do, so that
            // editors and terminals can jump to them.
            match e.downcast_ref::<config::ConfigErrors>() {
                Some(errors) => eprintln!("{errors}"),
                None => eprintln!("deskpool: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Sub::Check) => check(cli.config),
        Some(Sub::Reconcile {
            until_steady,
            json,
            timeout,
        }) => reconcile(cli.config, until_steady, json, Duration::from_secs(timeout)),
        Some(Sub::Simulate {
            trace,
            json,
            clone_secs,
            boot_secs,
            seed_secs,
            activate_secs,
            tick_secs,
            max_wait_secs,
        }) => {
            let options = sim::SimOptions {
                clone_secs: clone_secs.into(),
                boot_secs: boot_secs.into(),
                seed_secs: seed_secs.into(),
                activate_secs: activate_secs.into(),
                tick_secs: i64::from(tick_secs.max(1)),
                max_wait_secs: max_wait_secs.into(),
            };
            simulate(cli.config, &trace, json, &options)
        }
        Some(Sub::Serve) => serve(cli.config),
        Some(Sub::Ctl { socket, command }) => ctl(cli.config, socket, command),
        Some(Sub::Token {
            command: Token::Add { name, scope, file },
        }) => {
            let file = match file {
                Some(file) => file,
                None => {
                    let loaded = setup::load(cli.config.as_deref())?;
                    loaded.fleet.broker.tokens_file.ok_or_else(|| {
                        anyhow::anyhow!(
                            "{} sets no [broker] tokens; give the token file with --file",
                            loaded.source.path().display()
                        )
                    })?
                }
            };
            token::add(&file, &name, &scope)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Sub::Generate { what }) => {
            match what {
                Generate::Man { dir } => generate::man_pages(Cli::command(), &dir)?,
                Generate::Completions { shell } => generate::completions(Cli::command(), shell),
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let demo = if cli.demo {
                if cli.config.is_some() {
                    anyhow::bail!("--demo runs on the embedded demo; leave out --config");
                }
                let today = jiff::Zoned::now()
                    .with_time_zone(jiff::tz::TimeZone::UTC)
                    .date();
                let start = deskpool::demo::day::demo_start(today);
                Some(deskpool::demo::Demo {
                    clock: Arc::new(ScaledClock::new(start, cli.speed)),
                    clone_secs: cli.demo_clone_secs,
                    boot_secs: cli.demo_boot_secs,
                })
            } else {
                None
            };
            console(cli.config, cli.theme, cli.read_only, demo)
        }
    }
}

fn check(explicit: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let loaded = setup::load(explicit.as_deref())?;
    match &loaded.source {
        setup::Source::File(p) => println!("{}: valid", p.display()),
        setup::Source::Demo(p) => println!(
            "no config file: the embedded demo configuration ({})",
            p.display()
        ),
    }
    print!("{}", config::summary(&loaded.fleet));
    Ok(ExitCode::SUCCESS)
}

fn simulate(
    explicit: Option<PathBuf>,
    trace: &std::path::Path,
    json: bool,
    options: &sim::SimOptions,
) -> anyhow::Result<ExitCode> {
    let loaded = setup::load(explicit.as_deref())?;
    let text = std::fs::read_to_string(trace)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", trace.display()))?;
    let events = sim::trace::parse(&text, &loaded.fleet)
        .map_err(|e| anyhow::anyhow!("{}: {e}", trace.display()))?;
    let report = sim::simulate(&loaded.fleet, &events, options);
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}

fn console(
    explicit: Option<PathBuf>,
    theme: Option<String>,
    read_only: bool,
    demo: Option<deskpool::demo::Demo>,
) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    let loaded = setup::load(explicit.as_deref())?;
    let theme_name = theme
        .or_else(|| loaded.fleet.console.theme.clone())
        .unwrap_or_else(|| "dark".into());
    let theme = Theme::load(&theme_name)?;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("the console needs a terminal; for headless runs use `deskpool reconcile`");
    }
    let socket = loaded.fleet.broker.socket_path(&loaded.state_dir);
    let attach = broker::is_live(&socket);
    // An attached console needs no lock (the engine it talks to holds it); a read-only console
    // acts on nothing, so it may run beside the engine that does.
    let _lock = if read_only || attach {
        None
    } else {
        Some(EngineLock::acquire(&loaded.state_dir)?)
    };
    // The demo's log lines carry its clock beside the real time (the console shows the demo's).
    let demo_clock = demo.as_ref().map(|d| setup::DemoLogClock {
        clock: d.clock.clone(),
        timezone: loaded.fleet.engine.timezone.clone(),
    });
    let _log = setup::init_logging(&loaded.state_dir, demo_clock)?;
    let (engine, config_label) = if attach {
        let label = format!("attached to {}", socket.display());
        (ConsoleEngine::Attach { socket }, label)
    } else {
        // A read-only engine of its own serves no socket: it owns nothing to hand out.
        let socket = (!read_only).then_some(socket);
        (ConsoleEngine::Own { socket }, loaded.source.label())
    };
    let options = ConsoleOptions {
        theme,
        read_only,
        config_path: Some(loaded.source.path().to_path_buf()),
        config_label,
        state_dir: loaded.state_dir.clone(),
        demo_speed: None,
        attached: None,
        note: None,
    };
    deskpool::console::run(loaded.fleet, options, engine, demo)?;
    Ok(ExitCode::SUCCESS)
}

fn serve(explicit: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    let loaded = setup::load(explicit.as_deref())?;
    let _lock = EngineLock::acquire(&loaded.state_dir)?;
    let _log = setup::init_logging(&loaded.state_dir, None)?;
    let socket = loaded.fleet.broker.socket_path(&loaded.state_dir);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let classes = loaded
            .fleet
            .classes
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let config_path = loaded.source.path().to_path_buf();
        let endpoint_settings = loaded.fleet.broker.clone();
        // With [ha], this controller acts only while the election says it leads.
        let election = loaded.fleet.ha.clone().map(deskpool_ha::Election::start);
        let (mut engine, reloads) = run::start_reloadable(
            loaded.fleet,
            EngineOptions {
                clock: Arc::new(SystemClock),
                read_only: false,
                paused: false,
                connections: Connections::new(),
                state_dir: Some(loaded.state_dir.clone()),
                simulated_steps: Default::default(),
                leadership: election.as_ref().map(|e| e.leadership.clone()),
            },
        );
        let mut broker = match broker::Broker::start(&mut engine, &socket, classes) {
            Ok(b) => b,
            Err(e) => {
                engine.shutdown().await;
                return Err(e.into());
            }
        };
        let audit_log = loaded.state_dir.join("audit.log");
        let endpoint = match broker.serve_endpoint(&endpoint_settings, audit_log).await {
            Ok(endpoint) => endpoint,
            Err(e) => {
                broker.shutdown().await;
                engine.shutdown().await;
                return Err(e.into());
            }
        };
        let endpoint = match endpoint {
            Some(addr) if endpoint_settings.tls.is_some() => format!("; endpoint https://{addr}"),
            Some(addr) => format!("; endpoint http://{addr}"),
            None => String::new(),
        };
        println!(
            "deskpool: engine running; broker socket {}{endpoint} (logs in {})",
            socket.display(),
            loaded.state_dir.join("deskpool.log").display()
        );
        let signal = loop {
            tokio::select! {
                _ = terminate.recv() => break "SIGTERM",
                _ = interrupt.recv() => break "SIGINT",
                _ = hangup.recv() => reload_config(&config_path, &reloads, &broker).await,
                _ = async { while engine.snapshot.changed().await.is_ok() {} } => {
                    break "the engine stopping"
                }
            }
        };
        tracing::info!("{signal}: shutting down");
        // No new requests, then the engine stops at a clean point.
        broker.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(60), engine.shutdown()).await;
        // Last: the lease revoked, so a follower takes over without waiting for it to expire.
        if let Some(election) = election {
            election.step_down().await;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGHUP: reads the configuration file again and hands it to the engine, which applies it or
/// keeps the running one (a file with errors, or a change that takes a restart); either way the
/// outcome is logged, printed and shown to attached consoles as an event.
async fn reload_config(
    path: &std::path::Path,
    reloads: &tokio::sync::mpsc::Sender<run::Reload>,
    broker: &broker::Broker,
) {
    tracing::info!("SIGHUP: reading {} again", path.display());
    let config = config::load_file(path).map_err(|e| e.to_string());
    // The endpoint's tokens, read again with the file: taken once the engine accepts it.
    let tokens = config.as_ref().map(|f| f.broker.tokens.clone()).ok();
    let (reply, outcome) = tokio::sync::oneshot::channel();
    if reloads.send(run::Reload { config, reply }).await.is_err() {
        return;
    }
    // Written, not printed: a closed stdout (the journal gone) must not end the engine.
    use std::io::Write;
    let _ = match outcome.await {
        Ok(Ok(summary)) => {
            if let Some(tokens) = &tokens {
                broker.set_tokens(tokens);
            }
            writeln!(
                std::io::stdout(),
                "deskpool: configuration reloaded: {summary}"
            )
        }
        Ok(Err(why)) => writeln!(
            std::io::stderr(),
            "deskpool: configuration not reloaded, the running one is kept: {why}"
        ),
        Err(_) => Ok(()),
    };
}

fn ctl(
    explicit: Option<PathBuf>,
    socket: Option<PathBuf>,
    command: Ctl,
) -> anyhow::Result<ExitCode> {
    let socket = match socket {
        Some(s) => s,
        None => {
            let loaded = setup::load(explicit.as_deref())?;
            loaded.fleet.broker.socket_path(&loaded.state_dir)
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let call = |method: &'static str,
                    target: &'static str,
                    body: Option<serde_json::Value>,
                    limit: u64| {
            let socket = socket.clone();
            async move {
                broker::client::call(
                    &socket,
                    method,
                    target,
                    body.as_ref(),
                    Duration::from_secs(limit),
                )
                .await
            }
        };
        let answer = match &command {
            Ctl::Assign {
                class, user, wait, ..
            } => {
                let body = serde_json::json!({ "class": class, "user": user, "wait_secs": wait });
                call("POST", "/v1/assign", Some(body), wait + 60).await?
            }
            Ctl::Release { desktop } | Ctl::Disconnect { desktop } => {
                let path = if matches!(command, Ctl::Release { .. }) {
                    "/v1/release"
                } else {
                    "/v1/disconnect"
                };
                let body = serde_json::json!({ "desktop": desktop });
                call("POST", path, Some(body), 60).await?
            }
            Ctl::Status { .. } => call("GET", "/v1/status", None, 60).await?,
        };
        if !answer.ok() {
            eprintln!("deskpool: {} ({})", answer.error(), answer.status);
            // 503: nothing to hand out now (a login script may retry); anything else: refused.
            return Ok(ExitCode::from(if answer.status == 503 { 3 } else { 1 }));
        }
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        match command {
            Ctl::Assign { json: true, .. } | Ctl::Status { json: true } => println!("{text}"),
            Ctl::Assign { .. } => {
                let v: serde_json::Value = answer.json().map_err(anyhow::Error::msg)?;
                let field = |k: &str| v[k].as_str().unwrap_or("-").to_string();
                println!(
                    "{} on {} display {} address {} password {} (waited {} ms)",
                    field("desktop"),
                    field("host"),
                    field("display"),
                    field("address"),
                    field("display_password"),
                    v["waited_ms"].as_u64().unwrap_or(0)
                );
            }
            Ctl::Release { desktop } => println!("{desktop} released"),
            Ctl::Disconnect { desktop } => println!("{desktop} disconnected"),
            Ctl::Status { .. } => {
                let s: broker::server::Status = answer.json().map_err(anyhow::Error::msg)?;
                print!("{}", ctl_status_table(&s));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The controller's place in an `[ha]` election, for `ctl status` (nothing when alone).
fn leadership_line(l: &deskpool_core::leadership::Leadership) -> Option<String> {
    use deskpool_core::leadership::Role;
    let others = l.controllers.len().saturating_sub(1);
    match l.role {
        Role::Alone => None,
        Role::Leader => Some(format!(
            "controller {} leads (term {}), {others} other controller(s) registered",
            l.controller, l.term
        )),
        Role::Follower | Role::Lost => Some(l.not_leading()),
    }
}

fn ctl_status_table(s: &broker::server::Status) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let state = if s.paused { "paused" } else { "running" };
    let _ = writeln!(
        out,
        "engine {state}, pass {}, {} jobs in flight",
        s.passes, s.jobs_in_flight
    );
    if let Some(line) = leadership_line(&s.leadership) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "{:<16} {:>6} {:>6} {:>6} {:>8} {:>8} {:>7} {:>7}",
        "CLASS", "PROD", "BUFFER", "CREATE", "PROD-TGT", "BUF-TGT", "LOGINS", "WAITING"
    );
    for c in &s.classes {
        let _ = writeln!(
            out,
            "{:<16} {:>6} {:>6} {:>6} {:>8} {:>8} {:>7} {:>7}",
            c.name,
            c.production,
            c.buffer,
            c.creation,
            c.production_target,
            c.buffer_target,
            c.logins.served,
            c.logins.waiting
        );
    }
    let _ = writeln!(out, "{:<16} {:<10} {:>8}", "HOST", "STATE", "DESKTOPS");
    for h in &s.hosts {
        let cap = h
            .capacity_desktops
            .map_or(String::new(), |c| format!("/{c}"));
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:>8}",
            h.name,
            h.state,
            format!("{}{cap}", h.desktops)
        );
    }
    out
}

fn reconcile(
    explicit: Option<PathBuf>,
    until_steady: bool,
    json: bool,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let loaded = setup::load(explicit.as_deref())?;
    let _lock = EngineLock::acquire(&loaded.state_dir)?;
    let _log = setup::init_logging(&loaded.state_dir, None)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let mut engine = run::start(
            loaded.fleet,
            EngineOptions {
                clock: Arc::new(SystemClock),
                read_only: false,
                paused: !until_steady,
                connections: Connections::new(),
                state_dir: Some(loaded.state_dir.clone()),
                simulated_steps: Default::default(),
                leadership: None,
            },
        );
        let settled = |s: &deskpool_api::Snapshot| {
            s.passes > 0
                && s.hosts
                    .iter()
                    .all(|h| h.status != deskpool_api::HostStatusView::Activating)
        };
        let outcome = if until_steady {
            engine.wait_for(timeout, |s| s.steady).await
        } else {
            // One pass: wait for the hosts, let one pass act, then stop acting and let its jobs end.
            match engine.wait_for(timeout, settled).await {
                Err(s) => Err(s),
                Ok(s) => {
                    let after = s.passes;
                    engine
                        .send(Command::Resume, "reconcile")
                        .await
                        .map_err(anyhow::Error::msg)?;
                    let _ = engine.wait_for(timeout, |s| s.passes > after).await;
                    engine
                        .send(Command::Pause, "reconcile")
                        .await
                        .map_err(anyhow::Error::msg)?;
                    engine.wait_for(timeout, |s| s.jobs_in_flight == 0).await
                }
            }
        };
        let (snapshot, code) = match outcome {
            Ok(s) => (s, ExitCode::SUCCESS),
            Err(s) => {
                eprintln!(
                    "deskpool: not steady after {}s; where each class stands:",
                    timeout.as_secs()
                );
                (s, ExitCode::from(2))
            }
        };
        if json {
            println!("{}", report::json(&snapshot));
        } else {
            print!("{}", report::table(&snapshot));
        }
        while let Ok(event) = engine.events.try_recv() {
            tracing::debug!(?event, "event at exit");
        }
        engine.shutdown().await;
        Ok(code)
    })
}
