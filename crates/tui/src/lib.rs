//! The console: ratatui over the engine, which runs as a background task of the same process
//! (serving the broker socket), or in another process reached through that socket (attached).
//! It redraws only when something changed (a snapshot, an event, a key, a resize), restores the
//! terminal on quit, on panic and on SIGTERM/SIGHUP, and stops the engine cleanly (libvirt keeps
//! the desktops and their state).

pub mod app;
pub mod audit;
pub mod editor;
pub mod history;
pub mod sample;
pub mod screen;
pub mod signals;
pub mod strings;
pub mod theme;
pub mod views;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::Event as TermEvent;
use tokio::sync::mpsc;

use app::{App, Effect};
use audit::AuditLog;
use deskpool_api::{Command, CommandError, Commander, EngineHandle, Reply};
use deskpool_config::EditError;
use deskpool_core::policy::Fleet;
use theme::Theme;

pub struct ConsoleOptions {
    pub theme: Theme,
    pub read_only: bool,
    /// The config file policies are saved to (`None` for the embedded demo).
    pub config_path: Option<PathBuf>,
    pub config_label: String,
    pub state_dir: PathBuf,
    /// The demo's clock speed (shown in the title), when a demo day is played.
    pub demo_speed: Option<u32>,
    /// The socket of the engine this console is attached to (`None`: the engine runs in this
    /// process).
    pub attached: Option<PathBuf>,
    /// Something the admin should know from the start (a broker socket that is not served).
    pub note: Option<String>,
}

/// Why the console stopped other than by the admin's choice.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot set up the terminal")]
    Terminal(#[source] std::io::Error),
    /// The engine of this process ended; its log says why.
    #[error("the engine stopped unexpectedly; see {}", log.display())]
    EngineStopped { log: PathBuf },
    /// Drawing, or listening for SIGTERM/SIGHUP, failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Why an edited policy did not reach both the engine and the config file.
#[derive(Debug, thiserror::Error)]
enum SaveError {
    /// The engine refused it (nothing changed).
    #[error("{0}")]
    Refused(CommandError),
    /// The config file could not be checked, or its policy changed since it was loaded:
    /// neither the engine nor the file was changed.
    #[error("nothing applied: {0}")]
    Unchecked(EditError),
    /// The engine took it, but the config file could not be written.
    #[error("applied to the engine, but not saved: {0}")]
    NotSaved(EditError),
}

/// What a finished effect reports back to the loop.
enum Done {
    Engine {
        what: String,
        result: Result<Reply, CommandError>,
        /// Said instead of the reply's outcome when the command succeeds (a refill taken
        /// while the engine is paused is not done yet).
        instead: Option<&'static str>,
    },
}

/// Runs the console on `engine` until the admin quits (or SIGTERM/SIGHUP), then shuts the handle
/// down: an engine of this process stops at a clean point, an attached one keeps running.
pub async fn run(
    mut engine: EngineHandle,
    fleet: Fleet,
    options: ConsoleOptions,
) -> Result<(), ConsoleError> {
    if options.attached.is_some() {
        // The first snapshot is already there: show it at once.
        engine.snapshot.mark_changed();
    }
    let log_path = options.state_dir.join("deskpool.log");
    // libvirt and libxml2 may print to stderr; on the console's screen that is garbage.
    let stderr_guard = StderrToFile::redirect(&log_path);
    let mut terminal = ratatui::try_init().map_err(ConsoleError::Terminal)?;
    mouse_capture(true);
    let result = event_loop(&mut terminal, engine, fleet, &options).await;
    mouse_capture(false);
    ratatui::restore();
    drop(stderr_guard);
    result
}

/// Turns the terminal's mouse reports on (clicks select rows, the wheel scrolls) or off. While
/// on, a panic turns them off before ratatui's own hook restores the rest of the terminal.
fn mouse_capture(on: bool) {
    use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
    let mut out = std::io::stdout();
    if on {
        let _ = crossterm::execute!(out, EnableMouseCapture);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
            previous(info);
        }));
    } else {
        let _ = crossterm::execute!(out, DisableMouseCapture);
    }
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    mut engine: EngineHandle,
    fleet: Fleet,
    options: &ConsoleOptions,
) -> Result<(), ConsoleError> {
    let audit = AuditLog::new(&options.state_dir);
    let mut app = App::new(
        fleet,
        options.read_only,
        options.config_label.clone(),
        options.config_path.is_some(),
    );
    app.demo_speed = options.demo_speed;
    app.attached = options.attached.is_some();
    // A read-only engine of this process provisions nothing and serves no socket.
    app.quit_stops_engine = options.attached.is_none() && !options.read_only;
    if let Some(note) = &options.note {
        app.complain(note.clone());
    }
    let (keys_tx, mut keys) = mpsc::channel::<TermEvent>(64);
    // crossterm's read blocks: it gets a thread of its own, and costs nothing while idle.
    std::thread::spawn(move || {
        while let Ok(event) = crossterm::event::read() {
            if keys_tx.blocking_send(event).is_err() {
                break;
            }
        }
    });
    let (done_tx, mut done) = mpsc::channel::<Done>(16);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut commands = engine.commander();
    // While the attached engine is away: the task that tries to attach again, and its result.
    let (reattached_tx, mut reattached) = mpsc::channel::<EngineHandle>(1);
    let mut redraw = true;
    'run: loop {
        // Every wake-up below is a change (a key, a resize, a snapshot, an event, a result):
        // draw once, then sleep until the next one. Nothing redraws on a timer.
        if redraw {
            terminal.draw(|frame| views::draw(frame, &mut app, &options.theme))?;
        }
        redraw = true;
        tokio::select! {
            Some(event) = keys.recv() => {
                // The terminal reports every mouse move while the mouse is captured: none
                // changes anything, so none costs a frame.
                if is_mouse_motion(&event) {
                    redraw = false;
                    continue;
                }
                for effect in app.handle(&event) {
                    match effect {
                        Effect::Quit => break 'run,
                        Effect::Engine { command, what } => {
                            let (commands, done_tx, who) = (commands.clone(), done_tx.clone(), audit.who.clone());
                            app.say(format!("{what}…"));
                            let instead = (matches!(command, Command::Refill { .. }) && app.snapshot.paused)
                                .then_some(strings::REFILL_WHILE_PAUSED);
                            tokio::spawn(async move {
                                let result = commands.send(command, &who).await;
                                let _ = done_tx.send(Done::Engine { what, result, instead }).await;
                            });
                        }
                        Effect::OpenEditor { class } => {
                            let on_disk = match options.config_path.as_deref() {
                                Some(path) => deskpool_config::policy_on_disk(path, &class),
                                None => Err(deskpool_config::EditError::Unreadable {
                                    file: "(no config file)".into(),
                                    error: std::io::Error::other("this console has no config file"),
                                }),
                            };
                            app.open_editor_checked(&class, on_disk);
                        }
                        Effect::SavePolicy { class, loaded, policy } => {
                            let what = strings::policy_change(&class, &loaded, &policy);
                            let result = save_policy(&commands, &audit.who, options.config_path.as_deref(), &class, &loaded, &policy).await;
                            if result.is_ok()
                                && let Some(c) = app.fleet.classes.iter_mut().find(|c| c.name == class)
                            {
                                c.policy = *policy;
                            }
                            report(&mut app, &audit, &what, result);
                        }
                    }
                }
            }
            changed = engine.snapshot.changed(), if app.disconnected.is_none() => {
                if changed.is_err() {
                    let Some(socket) = &options.attached else {
                        return Err(ConsoleError::EngineStopped { log: options.state_dir.join("deskpool.log") });
                    };
                    // The engine went away (restarted, or stopped): keep its last state on
                    // screen, greyed, and attach again as soon as it listens.
                    let at = jiff::Timestamp::now();
                    app.on_engine_gone(at, socket);
                    tokio::spawn(reattach(socket.clone(), options.read_only, reattached_tx.clone()));
                    continue;
                }
                let mut snapshot = engine.snapshot.borrow_and_update().clone();
                // Events this console's own copy lost count as dropped too (the engine counts
                // only those its channel could not take).
                let lost_here = engine.events_dropped();
                if lost_here > 0 {
                    Arc::make_mut(&mut snapshot).events_dropped += lost_here;
                }
                app.on_snapshot(snapshot);
            }
            Some(handle) = reattached.recv() => {
                engine = handle;
                commands = engine.commander();
                // The new engine's first snapshot is already there: show it at once.
                engine.snapshot.mark_changed();
                if let Some(socket) = &options.attached {
                    app.on_engine_back(socket);
                }
            }
            Some(event) = engine.events.recv(), if app.disconnected.is_none() => {
                app.on_event(event);
                while let Ok(event) = engine.events.try_recv() {
                    app.on_event(event);
                }
            }
            Some(Done::Engine { what, result, instead }) = done.recv() => {
                let result = result.map(|reply| match instead {
                    Some(text) => text.to_string(),
                    None => strings::reply_outcome(&reply),
                });
                report(&mut app, &audit, &what, result);
            }
            _ = sleep_until(app.status_expiry()) => {
                app.expire_status(std::time::Instant::now());
            }
            _ = terminate.recv() => break 'run,
            _ = hangup.recv() => break 'run,
        }
    }
    finish(engine).await;
    Ok(())
}

/// Applies a policy to the engine, then writes it to the config file (atomically, keeping the
/// file's comments). Nothing happens when the class's policy in the file is no longer `loaded`
/// (the one the edit started from): the admin's edit would overwrite a change made on disk.
/// The file is checked again as it is written; a file that cannot be written is reported.
async fn save_policy(
    commands: &Commander,
    who: &str,
    path: Option<&std::path::Path>,
    class: &str,
    loaded: &deskpool_core::policy::Policy,
    policy: &deskpool_core::policy::Policy,
) -> Result<String, SaveError> {
    if let Some(path) = path {
        let on_disk = deskpool_config::policy_on_disk(path, class).map_err(SaveError::Unchecked)?;
        if on_disk.policy != *loaded {
            return Err(SaveError::Unchecked(deskpool_config::EditError::Conflict {
                file: path.to_path_buf(),
                class: class.to_string(),
                why: deskpool_config::edit::changed_since_loaded(loaded, &on_disk.policy),
            }));
        }
    }
    commands
        .send(
            Command::SetPolicy {
                class: class.to_string(),
                policy: Box::new(policy.clone()),
            },
            who,
        )
        .await
        .map_err(SaveError::Refused)?;
    match path {
        Some(path) => deskpool_config::save_policy_checked(path, class, loaded, policy)
            .map(|()| format!("applied and saved to {}", path.display()))
            .map_err(SaveError::NotSaved),
        None => Ok("applied (demo: no config file to save to)".into()),
    }
}

/// Says in the status line, and records in the audit log, how an action ended: `Ok` holds what
/// to say of its success.
fn report(
    app: &mut App,
    audit: &AuditLog,
    what: &str,
    result: Result<String, impl std::fmt::Display>,
) {
    // The outcome names what came of it (the desktop an assign gave, where a policy was
    // saved), as the status line says it.
    let outcome = match &result {
        Ok(detail) => format!("ok: {detail}"),
        Err(e) => format!("error: {e}"),
    };
    let logged = audit.record(what, &outcome);
    match (result, logged) {
        (Ok(detail), Ok(())) => app.say(format!("{what}: {detail}")),
        (Err(e), _) => app.complain(format!("{what}: {e}")),
        (Ok(_), Err(e)) => app.complain(format!(
            "{what}: done, but the audit log could not be written: {e}"
        )),
    }
}

fn is_mouse_motion(event: &TermEvent) -> bool {
    use crossterm::event::MouseEventKind;
    matches!(event, TermEvent::Mouse(m) if matches!(m.kind, MouseEventKind::Moved))
}

/// How often an attached console whose engine went away tries its socket again.
const REATTACH_EVERY: Duration = Duration::from_millis(500);

/// Attaches to the engine on `socket` again, trying every [`REATTACH_EVERY`] until it listens
/// (or the console is gone), and hands the new handle to the loop.
async fn reattach(socket: PathBuf, read_only: bool, to: mpsc::Sender<EngineHandle>) {
    loop {
        tokio::time::sleep(REATTACH_EVERY).await;
        if to.is_closed() {
            return;
        }
        match deskpool_broker::attach(&socket, read_only).await {
            Ok(handle) => {
                let _ = to.send(handle).await;
                return;
            }
            Err(e) => tracing::debug!("attaching again to {}: {e}", socket.display()),
        }
    }
}

/// Sleeps until `at`, or forever without one (no message shown: nothing to wake for).
async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn finish(engine: EngineHandle) {
    // Jobs under way finish (a libvirt call is never cut in half); nothing new starts.
    let _ = tokio::time::timeout(Duration::from_secs(30), engine.shutdown()).await;
}

/// Points file descriptor 2 at the log file while the console owns the terminal.
struct StderrToFile {
    saved: Option<i32>,
}

impl StderrToFile {
    fn redirect(path: &std::path::Path) -> StderrToFile {
        use std::os::fd::AsRawFd;
        let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        else {
            return StderrToFile { saved: None };
        };
        // SAFETY: plain descriptor juggling on descriptors this process owns.
        let saved = unsafe { libc::dup(2) };
        if saved < 0 || unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
            return StderrToFile { saved: None };
        }
        StderrToFile { saved: Some(saved) }
    }
}

impl Drop for StderrToFile {
    fn drop(&mut self) {
        if let Some(fd) = self.saved.take() {
            // SAFETY: restores the descriptor saved above.
            unsafe {
                libc::dup2(fd, 2);
                libc::close(fd);
            }
        }
    }
}
