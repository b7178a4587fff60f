//! The steps the engine runs on the hosts. Each libvirt step is one whole blocking closure
//! (libvirt keeps its last error per thread); each is idempotent, so a step interrupted by a
//! crash is simply run again, or cleaned, by the next engine.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use deskpool_core::model::{DesktopMeta, ObservedDesktop, PoolState, SeedCopy};
use deskpool_core::policy::{ClassSpec, DomainTypeSetting};
use deskpool_hypervisor::conn::DaemonIdentity;
use deskpool_hypervisor::{DesktopDefinition, HostConnection, HvError, UnusableDesktop};

mod error;
mod ready;
pub use error::{HostCommandError, JobError, JobErrorKind};
pub use ready::probe;

/// Runs `f` on a blocking thread and flattens a panic or cancellation into an error.
pub async fn blocking<T, F>(what: &str, f: F) -> Result<T, JobError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, HvError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(JobError::worker_lost(what, e)),
    }
}

/// Runs a step with a time limit: past it, the step is given up as stuck. A libvirt call on
/// its blocking thread cannot be cancelled; it goes on, and what it leaves is read at the next
/// observation like any leftover.
pub async fn within<T>(
    what: &str,
    limit: Duration,
    step: impl Future<Output = Result<T, JobError>>,
) -> Result<T, JobError> {
    match tokio::time::timeout(limit, step).await {
        Ok(result) => result,
        Err(_) => Err(JobError::stuck(what, limit)),
    }
}

/// What a finished job tells the engine. Plain data: a new connection travels beside it (see
/// [`connect`]), so that the state machine never holds a libvirt handle.
#[derive(Debug)]
pub enum Outcome {
    Connected {
        host: String,
        /// Which daemon the connection reached (`None` when it could not be told).
        identity: Option<DaemonIdentity>,
        observation: deskpool_core::model::HostObservation,
        /// A standby host probed at start-up (no activation command run).
        probe: bool,
    },
    ConnectFailed {
        host: String,
        error: JobError,
        probe: bool,
    },
    Observed {
        host: String,
        observation: deskpool_core::model::HostObservation,
        started_seq: u64,
    },
    ObserveFailed {
        host: String,
        error: JobError,
    },
    /// A desktop was handed to a user (labelled for them, or found theirs and running).
    Assigned {
        desktop: ObservedDesktop,
        display: Option<deskpool_hypervisor::Display>,
        /// The guest's network address, from its agent (classes that wait for it only).
        address: Option<String>,
    },
    /// A desktop about to be handed out (or given back to its user) cannot be used: it is not
    /// running, or its disk is gone. `desktop` is as the host showed it; when it was its user's,
    /// it has been labelled retired (its user gets a fresh one).
    Unusable {
        desktop: ObservedDesktop,
        why: UnusableDesktop,
    },
    /// A desktop of a class that waits for its guest runs, still in creation: its readiness
    /// is probed from now on.
    Booted {
        desktop: ObservedDesktop,
    },
    /// What a creation or a boot ended with, and how long its steps took once their pacing
    /// slots were held (for the measured times; `None`: the step did not run or failed).
    Made {
        outcome: Box<Outcome>,
        clone: Option<Duration>,
        boot: Option<Duration>,
    },
    /// A probe found a desktop in creation not ready yet: `why` is what it saw (no agent
    /// connected, the ready command failing, ...).
    NotReady {
        host: String,
        desktop: String,
        why: String,
    },
    /// A probe found the guest ready: the desktop is labelled "buffer", with where a user
    /// connects to it.
    Ready {
        desktop: ObservedDesktop,
        reach: Reach,
    },
    /// A desktop reached a new state (created, booted, promoted, assigned, ...).
    Desktop {
        desktop: ObservedDesktop,
        event: Option<(deskpool_api::EventKind, String)>,
    },
    CreateFailed {
        host: String,
        class: String,
        desktop: String,
        /// The desktop as it stands, when its domain exists (the failure was at boot).
        left: Option<ObservedDesktop>,
        error: JobError,
    },
    DesktopFailed {
        host: String,
        desktop: String,
        error: JobError,
    },
    Destroyed {
        host: String,
        desktop: String,
        class: Option<String>,
        why: String,
    },
    VolumeDeleted {
        host: String,
        volume: String,
    },
    VolumeDeleteFailed {
        host: String,
        volume: String,
        error: JobError,
    },
    SeedCopied {
        host: String,
        copy: SeedCopy,
    },
    SeedCopyFailed {
        host: String,
        class: String,
        version: String,
        error: JobError,
    },
    SeedCopyDeleted {
        host: String,
        class: String,
        version: String,
    },
    Activated {
        host: String,
    },
    ActivationFailed {
        host: String,
        error: HostCommandError,
    },
    Deactivated {
        host: String,
        /// How its deactivation command went, when it has one.
        command: Option<Result<(), HostCommandError>>,
    },
}

/// Where a user's viewer, or a gateway, reaches a desktop: its display (`vnc://host:port`, from
/// the live domain XML) and its guest's network address (from the guest agent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub display: Option<String>,
    pub address: Option<String>,
}

/// Opens a host, makes sure its creation pool exists, identifies its daemon (so the engine can
/// refuse a second entry for the same one), and reads it. The new connection comes back beside
/// the outcome, for the driver to keep. `target` is the host's URI and its domain type setting.
pub async fn connect(
    host: String,
    target: (String, DomainTypeSetting),
    read_only: bool,
    creation_pool: (String, String),
    classes: Arc<Vec<ClassSpec>>,
    probe: bool,
) -> (Outcome, Option<HostConnection>) {
    let name = host.clone();
    let result = blocking("connect", move || {
        let (uri, domain_type) = target;
        let conn = HostConnection::open_as(&uri, read_only, domain_type)?;
        if !read_only {
            conn.ensure_creation_pool(&creation_pool.0, &creation_pool.1)?;
        }
        conn.identify(&creation_pool.0)?;
        let observation = conn.observe(&name, &creation_pool.0, &classes)?;
        Ok((conn, observation))
    })
    .await;
    match result {
        Ok((conn, observation)) => {
            let outcome = Outcome::Connected {
                host,
                identity: conn.identity(),
                observation,
                probe,
            };
            (outcome, Some(conn))
        }
        Err(error) => {
            let outcome = Outcome::ConnectFailed { host, error, probe };
            (outcome, None)
        }
    }
}

pub async fn observe(
    host: String,
    conn: HostConnection,
    creation_pool: String,
    classes: Arc<Vec<ClassSpec>>,
    started_seq: u64,
) -> Outcome {
    let name = host.clone();
    match blocking("observe", move || {
        conn.observe(&name, &creation_pool, &classes)
    })
    .await
    {
        Ok(observation) => Outcome::Observed {
            host,
            observation,
            started_seq,
        },
        Err(error) => Outcome::ObserveFailed { host, error },
    }
}

/// Pacing for one class on one host: concurrent clones and concurrent boots.
#[derive(Clone)]
pub struct Pacer {
    pub clones: Arc<Semaphore>,
    pub boots: Arc<Semaphore>,
    /// Time added to each clone and boot while it holds its slot (zero but on the demo's
    /// test-driver hosts, which make desktops instantly).
    pub simulated: StepDelays,
}

/// How long a clone and a boot take on a simulated host (libvirt's test driver), so the demo
/// shows creations in flight, pacing and a buffer that drains faster than it fills.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepDelays {
    pub clone: std::time::Duration,
    pub boot: std::time::Duration,
}

/// Everything one new desktop needs.
pub struct NewDesktop {
    pub host: String,
    pub conn: HostConnection,
    pub class: ClassSpec,
    pub name: String,
    pub seed: SeedCopy,
    pub creation_pool: String,
    pub now: i64,
    pub term: u64,
    pub pacer: Pacer,
    /// `[engine] create_timeout_secs`, for the disk and definition step and for the boot.
    pub limit: Duration,
}

/// Overlay volume, domain (labelled "creation"), boot, then "buffer".
pub async fn create(job: NewDesktop) -> Outcome {
    let NewDesktop {
        host,
        conn,
        class,
        name,
        seed,
        creation_pool,
        now,
        term,
        pacer,
        limit,
    } = job;
    let meta = DesktopMeta {
        class: class.name.clone(),
        pool: PoolState::Creation,
        seed_version: seed.version.clone(),
        user: None,
        created_at: now,
        changed_at: now,
        attempts: 0,
        term,
    };
    let class_name = class.name.clone();
    let wait_for_guest = class.ready.needs_probe();
    let made = {
        let _slot = pacer.clones.acquire().await;
        let began = tokio::time::Instant::now();
        let (conn, name, meta) = (conn.clone(), name.clone(), meta.clone());
        let simulated = pacer.simulated.clone;
        within("creating the disk and domain", limit, async move {
            let made = blocking("create", move || {
                let display_password = deskpool_hypervisor::domain::new_display_password();
                let capacity = class.disk_gib.saturating_mul(1 << 30);
                let disk_path = conn.create_overlay(&creation_pool, &name, &seed, capacity)?;
                let defined = conn.define_desktop(&DesktopDefinition {
                    name: &name,
                    class: &class,
                    disk_path: &disk_path,
                    disk_format: "qcow2",
                    meta: &meta,
                    display_password: &display_password,
                });
                if let Err(e) = defined {
                    // Leave nothing behind: the volume without its domain is useless.
                    let _ = conn.delete_volume(
                        &creation_pool,
                        &deskpool_core::model::desktop_volume_name(&name),
                    );
                    return Err(e);
                }
                Ok(())
            })
            .await;
            if made.is_ok() && !simulated.is_zero() {
                tokio::time::sleep(simulated).await;
            }
            made
        })
        .await
        .map(|()| began.elapsed())
    };
    let cloned = match made {
        Ok(took) => took,
        Err(error) => {
            return Outcome::CreateFailed {
                host,
                class: class_name,
                desktop: name,
                left: None,
                error,
            };
        }
    };
    let desktop = ObservedDesktop {
        name: name.clone(),
        host: host.clone(),
        meta,
        running: false,
        persistent: true,
        disk_problem: None,
    };
    match boot(conn, desktop, pacer, now, wait_for_guest, limit).await {
        Outcome::Made { outcome, boot, .. } => Outcome::Made {
            outcome,
            clone: Some(cloned),
            boot,
        },
        other => other,
    }
}

/// Boots a desktop in the creation pool and, once it runs, moves it to the buffer; or, when
/// its class waits for the guest (`wait_for_guest`), leaves it in creation for the probes.
pub async fn boot(
    conn: HostConnection,
    desktop: ObservedDesktop,
    pacer: Pacer,
    now: i64,
    wait_for_guest: bool,
    limit: Duration,
) -> Outcome {
    let _slot = pacer.boots.acquire().await;
    let began = tokio::time::Instant::now();
    let mut ready = desktop.clone();
    if !wait_for_guest {
        ready.meta.pool = PoolState::Buffer;
        ready.meta.changed_at = now;
    }
    ready.running = true;
    let meta = ready.meta.clone();
    let name = desktop.name.clone();
    let c = conn.clone();
    let simulated = pacer.simulated.boot;
    let result = within("booting", limit, async move {
        if !simulated.is_zero() {
            tokio::time::sleep(simulated).await;
        }
        blocking("boot", move || {
            if !c.is_running(&name)? {
                c.start(&name)?;
            }
            if !c.is_running(&name)? {
                return Err(HvError::new(
                    deskpool_hypervisor::HvErrorKind::Libvirt,
                    "boot",
                    &name,
                    c.uri(),
                    "the domain stopped right after it started",
                ));
            }
            if wait_for_guest {
                // Still "creation" on the host: nothing to write until the guest answers.
                return Ok(());
            }
            c.set_meta(&name, &meta)
        })
        .await
    })
    .await;
    let took = result.is_ok().then(|| began.elapsed());
    let outcome = match result {
        Ok(()) if wait_for_guest => Outcome::Booted { desktop: ready },
        Ok(()) => Outcome::Desktop {
            desktop: ready,
            event: Some((
                deskpool_api::EventKind::Provisioned,
                "ready in the buffer".into(),
            )),
        },
        Err(error) => {
            // Count the failed attempt in the domain's own label, so it survives a restart.
            let mut left = desktop.clone();
            left.meta.attempts += 1;
            let meta = left.meta.clone();
            let name = desktop.name.clone();
            let record = blocking("record attempt", move || conn.set_meta(&name, &meta));
            let _ = within("recording the attempt", limit, record).await;
            Outcome::CreateFailed {
                host: desktop.host.clone(),
                class: desktop.meta.class.clone(),
                desktop: desktop.name.clone(),
                left: Some(left),
                error,
            }
        }
    };
    Outcome::Made {
        outcome: Box::new(outcome),
        clone: None,
        boot: took,
    }
}

/// Writes a new pool state (and user) into a desktop's label.
pub async fn relabel(
    conn: HostConnection,
    mut desktop: ObservedDesktop,
    pool: PoolState,
    user: Option<String>,
    now: i64,
    event: Option<(deskpool_api::EventKind, String)>,
) -> Outcome {
    desktop.meta.pool = pool;
    desktop.meta.user = user;
    desktop.meta.changed_at = now;
    let (name, meta) = (desktop.name.clone(), desktop.meta.clone());
    match blocking("relabel", move || conn.set_meta(&name, &meta)).await {
        Ok(()) => Outcome::Desktop { desktop, event },
        Err(error) => Outcome::DesktopFailed {
            host: desktop.host.clone(),
            desktop: desktop.name.clone(),
            error,
        },
    }
}

/// Hands a buffered desktop to a user: checks that it runs with its disk, labels it
/// "production" for them and reads its display (and, with `read_address`, its guest's address
/// from the agent). Nothing is written for an unusable desktop.
pub async fn assign(
    conn: HostConnection,
    mut desktop: ObservedDesktop,
    user: String,
    now: i64,
    read_address: bool,
) -> Outcome {
    let (name, mut meta) = (desktop.name.clone(), desktop.meta.clone());
    meta.pool = PoolState::Production;
    meta.user = Some(user);
    meta.changed_at = now;
    let labelled = meta.clone();
    let result = blocking("assign", move || {
        if let Err(why) = conn.check_usable(&name)? {
            return Ok(Err(why));
        }
        conn.set_meta(&name, &meta)?;
        Ok(Ok(reach_for_user(&conn, &name, read_address)))
    })
    .await;
    match result {
        Ok(Ok((display, address))) => {
            desktop.meta = labelled;
            Outcome::Assigned {
                desktop,
                display,
                address,
            }
        }
        Ok(Err(reason)) => unusable(desktop, reason),
        Err(error) => Outcome::DesktopFailed {
            host: desktop.host.clone(),
            desktop: desktop.name.clone(),
            error,
        },
    }
}

/// Gives a user back the desktop they hold: started again first when it is shut off and its
/// class restarts such desktops (`restart`). One that cannot be used (shut off and not to be
/// restarted, failing to start, or without its disk) is labelled retired in the same step, so
/// that it is never its user's again once the user is given a fresh one. A desktop its user
/// disconnected from is labelled production again before the answer (their reconnect).
pub async fn reclaim(
    conn: HostConnection,
    mut desktop: ObservedDesktop,
    restart: bool,
    now: i64,
    read_address: bool,
) -> Outcome {
    let name = desktop.name.clone();
    let mut retired = desktop.meta.clone();
    retired.pool = PoolState::Retired;
    retired.changed_at = now;
    let meta = retired.clone();
    let reconnected = (desktop.meta.pool == PoolState::Disconnected).then(|| {
        let mut meta = desktop.meta.clone();
        meta.pool = PoolState::Production;
        meta.changed_at = now;
        meta
    });
    let in_use = reconnected.clone();
    let result = blocking("give back", move || {
        let mut usable = conn.check_usable(&name)?;
        if restart && matches!(usable, Err(UnusableDesktop::NotRunning)) {
            usable = match conn.start(&name) {
                Ok(()) => conn.check_usable(&name)?,
                Err(e) => Err(UnusableDesktop::RestartFailed(e)),
            };
        }
        match usable {
            Ok(()) => {
                if let Some(meta) = &in_use {
                    conn.set_meta(&name, meta)?;
                }
                Ok(Ok(reach_for_user(&conn, &name, read_address)))
            }
            Err(why) => {
                conn.set_meta(&name, &meta)?;
                Ok(Err(why))
            }
        }
    })
    .await;
    match result {
        Ok(Ok((display, address))) => {
            desktop.running = true;
            if let Some(meta) = reconnected {
                desktop.meta = meta;
            }
            Outcome::Assigned {
                desktop,
                display,
                address,
            }
        }
        Ok(Err(reason)) => {
            desktop.meta = retired;
            unusable(desktop, reason)
        }
        Err(error) => Outcome::DesktopFailed {
            host: desktop.host.clone(),
            desktop: desktop.name.clone(),
            error,
        },
    }
}

/// Where a user handed desktop `name` reaches it: its display (with its password) and, with
/// `read_address`, its guest's address from the agent. Conveniences for the broker: a read that
/// fails leaves them out, and the desktop is handed out all the same.
fn reach_for_user(
    conn: &HostConnection,
    name: &str,
    read_address: bool,
) -> (Option<deskpool_hypervisor::Display>, Option<String>) {
    let display = conn.display(name).unwrap_or(None);
    let address = if read_address {
        conn.guest_address(name).unwrap_or(None)
    } else {
        None
    };
    (display, address)
}

/// An unusable desktop as the checks found it: not running, or without its disk.
fn unusable(mut desktop: ObservedDesktop, why: UnusableDesktop) -> Outcome {
    if matches!(why, UnusableDesktop::NotRunning) {
        desktop.running = false;
    } else {
        desktop.disk_problem = Some(why.to_string());
    }
    Outcome::Unusable { desktop, why }
}

/// Starts an assigned desktop found shut off again, for its user. A failure is counted in its
/// label (after `max_attempts` the planner recycles it instead).
pub async fn restart(conn: HostConnection, desktop: ObservedDesktop) -> Outcome {
    let name = desktop.name.clone();
    let c = conn.clone();
    let result = blocking("restart", move || {
        c.start(&name)?;
        c.check_usable(&name)
    })
    .await;
    let error = match result {
        Ok(Ok(())) => {
            let mut running = desktop;
            running.running = true;
            return Outcome::Desktop {
                desktop: running,
                event: Some((
                    deskpool_api::EventKind::Provisioned,
                    "found shut off: started again for its user".into(),
                )),
            };
        }
        Ok(Err(why)) => JobError::unusable(why.to_string()),
        Err(error) => error,
    };
    let mut left = desktop.clone();
    left.meta.attempts += 1;
    let (name, meta) = (left.name.clone(), left.meta.clone());
    let _ = blocking("record attempt", move || conn.set_meta(&name, &meta)).await;
    Outcome::CreateFailed {
        host: left.host.clone(),
        class: left.meta.class.clone(),
        desktop: left.name.clone(),
        error: error.context("restart for its user failed"),
        left: Some(left),
    }
}

/// A desktop to destroy, undefine and whose disk to delete.
#[derive(Debug, Clone)]
pub struct Removal {
    pub host: String,
    pub desktop: String,
    /// Its last known state: relabelled retired first, so a crash mid-way leaves it marked.
    pub known: Option<ObservedDesktop>,
    pub creation_pool: String,
    pub now: i64,
    pub why: String,
    /// Past this, the removal is given up as stuck (`[engine] remove_timeout_secs`).
    pub limit: Duration,
}

/// Destroys a desktop: marks it retired first (so an interruption cannot bring it back into
/// a pool), then stops it, undefines it and deletes its disk.
pub async fn destroy(conn: HostConnection, removal: Removal) -> Outcome {
    let Removal {
        host,
        desktop,
        known,
        creation_pool,
        now,
        why,
        limit,
    } = removal;
    let name = desktop.clone();
    let class = known.as_ref().map(|d| d.meta.class.clone());
    let result = within(
        "destroying the desktop",
        limit,
        blocking("destroy", move || {
            if let Some(mut d) = known
                && d.meta.pool != PoolState::Retired
            {
                d.meta.pool = PoolState::Retired;
                d.meta.changed_at = now;
                match conn.set_meta(&name, &d.meta) {
                    Err(e) if !e.is_not_found() => return Err(e),
                    _ => {}
                }
            }
            conn.remove_desktop(&name, &creation_pool)
        }),
    )
    .await;
    match result {
        Ok(()) => Outcome::Destroyed {
            host,
            desktop,
            class,
            why,
        },
        Err(error) => Outcome::DesktopFailed {
            host,
            desktop,
            error,
        },
    }
}

pub async fn delete_volume(
    conn: HostConnection,
    host: String,
    pool: String,
    volume: String,
    limit: Duration,
) -> Outcome {
    let v = volume.clone();
    let delete = blocking("delete volume", move || conn.delete_volume(&pool, &v));
    match within("deleting the volume", limit, delete).await {
        Ok(()) => Outcome::VolumeDeleted { host, volume },
        Err(error) => Outcome::VolumeDeleteFailed {
            host,
            volume,
            error,
        },
    }
}

pub struct SeedJob {
    pub host: String,
    pub conn: HostConnection,
    pub source: HostConnection,
    pub same_host: bool,
    pub source_pool: String,
    pub source_volume: String,
    pub creation_pool: String,
    pub class: String,
    pub version: String,
    pub done: Arc<AtomicU64>,
    pub total: Arc<AtomicU64>,
}

/// Copies a seed into a host's creation pool: a volume clone on the same host, streams across.
pub async fn copy_seed(job: SeedJob) -> Outcome {
    let SeedJob {
        host,
        conn,
        source,
        same_host,
        source_pool,
        source_volume,
        creation_pool,
        class,
        version,
        done,
        total,
    } = job;
    let (c, v) = (class.clone(), version.clone());
    let result = blocking("copy seed", move || {
        let progress = |d: u64, t: u64| {
            done.store(d, Ordering::Relaxed);
            total.store(t, Ordering::Relaxed);
        };
        if same_host {
            conn.copy_seed_local(
                &source_pool,
                &source_volume,
                &creation_pool,
                &c,
                &v,
                &progress,
            )
        } else {
            HostConnection::copy_seed_between(
                &source,
                &source_pool,
                &source_volume,
                &conn,
                &creation_pool,
                &c,
                &v,
                &progress,
            )
        }
    })
    .await;
    match result {
        Ok(copy) => Outcome::SeedCopied { host, copy },
        Err(error) => Outcome::SeedCopyFailed {
            host,
            class,
            version,
            error,
        },
    }
}

pub async fn delete_seed_copy(
    conn: HostConnection,
    host: String,
    pool: String,
    class: String,
    version: String,
    limit: Duration,
) -> Outcome {
    let (c, v) = (class.clone(), version.clone());
    let delete = blocking("delete seed copy", move || {
        conn.delete_seed_copy(&pool, &c, &v)
    });
    match within("deleting the seed copy", limit, delete).await {
        Ok(()) => Outcome::SeedCopyDeleted {
            host,
            class,
            version,
        },
        Err(error) => Outcome::SeedCopyFailed {
            host,
            class,
            version,
            error: error.context("could not delete"),
        },
    }
}

/// Runs a host's activation or deactivation command (`sh -c`), with a time limit.
pub async fn run_host_command(
    command: String,
    limit: std::time::Duration,
) -> Result<(), HostCommandError> {
    let mut child = match tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(source) => return Err(HostCommandError::Spawn { command, source }),
    };
    let mut stderr = child.stderr.take();
    let waited = tokio::time::timeout(limit, child.wait()).await;
    match waited {
        Err(_) => Err(HostCommandError::Timeout { command, limit }),
        Ok(Err(source)) => Err(HostCommandError::Wait { command, source }),
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => {
            let mut text = String::new();
            if let Some(err) = stderr.as_mut() {
                use tokio::io::AsyncReadExt;
                let _ = err.read_to_string(&mut text).await;
            }
            Err(HostCommandError::Failed {
                command,
                status,
                stderr: text.trim().to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_step_past_its_limit_is_given_up_as_stuck_and_one_within_it_is_not() {
        let never = std::future::pending::<Result<(), JobError>>();
        let e = within("deleting the volume", Duration::from_secs(300), never)
            .await
            .expect_err("a step that never ends is stuck");
        assert_eq!(e.kind, JobErrorKind::Stuck);
        assert!(
            e.message
                .starts_with("deleting the volume did not finish within 300 s"),
            "{e}"
        );
        let quick = async {
            tokio::time::sleep(Duration::from_secs(299)).await;
            Ok::<_, JobError>(7)
        };
        assert_eq!(
            within("booting", Duration::from_secs(300), quick).await,
            Ok(7)
        );
    }
}
