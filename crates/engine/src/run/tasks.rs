//! The driver's side of a job: the connections and pacing it needs, then its steps (in
//! [`crate::jobs`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::Connections;
use crate::jobs::{self, NewDesktop, Outcome, Pacer, SeedJob, StepDelays};
use crate::state::{Job, Pacing};
use deskpool_hypervisor::HostConnection;

/// How long a host's activation or deactivation command may take.
const HOST_COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// A finished job: its outcome, and the new connection of a `Connected` one.
pub(super) struct Finished {
    pub outcome: Outcome,
    pub conn: Option<(String, HostConnection)>,
}

impl From<Outcome> for Finished {
    fn from(outcome: Outcome) -> Self {
        Finished {
            outcome,
            conn: None,
        }
    }
}

/// The clone and boot slots of each class on each host, and the step times simulated on
/// test-driver hosts.
#[derive(Default)]
pub(super) struct Pacers {
    slots: HashMap<(String, String, u64), Pacer>,
    simulated: StepDelays,
}

/// Whether a connection reaches libvirt's test driver (in-memory, nothing boots): the only
/// hosts whose steps are ever slowed down on purpose.
fn simulated_host(conn: &HostConnection) -> bool {
    conn.uri().starts_with("test:")
}

impl Pacers {
    pub(super) fn with_simulated(simulated: StepDelays) -> Pacers {
        Pacers {
            slots: HashMap::new(),
            simulated,
        }
    }

    fn get(&mut self, host: &str, pacing: &Pacing, conn: Option<&HostConnection>) -> Pacer {
        let simulated = if conn.is_some_and(simulated_host) {
            self.simulated
        } else {
            StepDelays::default()
        };
        let key = (host.to_string(), pacing.class.clone(), pacing.generation);
        self.slots
            .entry(key)
            .or_insert_with(|| Pacer {
                clones: Arc::new(Semaphore::new(pacing.clones)),
                boots: Arc::new(Semaphore::new(pacing.boots)),
                simulated,
            })
            .clone()
    }
}

/// A job asked on a host the driver holds no connection to.
#[derive(Debug)]
pub(super) struct NoConnection {
    pub host: String,
}

/// The job ready to run.
pub(super) fn start(
    job: Job,
    connections: &Connections,
    pacers: &mut Pacers,
) -> Result<impl Future<Output = Finished> + Send + 'static, NoConnection> {
    let mut conns = Vec::new();
    for host in job.hosts() {
        match connections.get(host) {
            Some(conn) => conns.push(conn),
            None => {
                return Err(NoConnection {
                    host: host.to_string(),
                });
            }
        }
    }
    let left_by_previous = match &job {
        Job::Connect { host, .. } => connections.get(host),
        _ => None,
    };
    let pacer = match &job {
        Job::Create { host, pacing, .. } => Some(pacers.get(host, pacing, conns.first())),
        Job::Boot {
            desktop, pacing, ..
        } => Some(pacers.get(&desktop.host, pacing, conns.first())),
        _ => None,
    };
    Ok(run(job, conns, left_by_previous, pacer))
}

async fn run(
    job: Job,
    conns: Vec<HostConnection>,
    left_by_previous: Option<HostConnection>,
    pacer: Option<Pacer>,
) -> Finished {
    let mut conns = conns.into_iter();
    let mut conn = || {
        conns
            .next()
            .expect("start() looked up every host of the job")
    };
    let pacer = || {
        pacer
            .clone()
            .expect("start() made the pacer of every paced job")
    };
    match job {
        Job::Connect {
            host,
            uri,
            domain_type,
            read_only,
            creation_pool,
            classes,
            probe,
        } => match left_by_previous {
            // A connection handed over by a previous engine: read the host again through it.
            Some(c) => {
                let outcome =
                    jobs::observe(host.clone(), c.clone(), creation_pool.0, classes, 0).await;
                match outcome {
                    Outcome::Observed {
                        host, observation, ..
                    } => Finished {
                        outcome: Outcome::Connected {
                            host: host.clone(),
                            identity: c.identity(),
                            observation,
                            probe,
                        },
                        conn: Some((host, c)),
                    },
                    Outcome::ObserveFailed { host, error } => {
                        Outcome::ConnectFailed { host, error, probe }.into()
                    }
                    other => other.into(),
                }
            }
            None => {
                let (outcome, c) = jobs::connect(
                    host.clone(),
                    (uri, domain_type),
                    read_only,
                    creation_pool,
                    classes,
                    probe,
                )
                .await;
                Finished {
                    outcome,
                    conn: c.map(|c| (host, c)),
                }
            }
        },
        Job::Observe {
            host,
            creation_pool,
            classes,
            started_seq,
        } => jobs::observe(host, conn(), creation_pool, classes, started_seq)
            .await
            .into(),
        Job::Create {
            host,
            class,
            name,
            seed,
            creation_pool,
            now,
            term,
            pacing: _,
            limit,
        } => jobs::create(NewDesktop {
            host,
            conn: conn(),
            class: *class,
            name,
            seed,
            creation_pool,
            now,
            term,
            pacer: pacer(),
            limit,
        })
        .await
        .into(),
        Job::Boot {
            desktop,
            now,
            wait_for_guest,
            limit,
            ..
        } => jobs::boot(conn(), desktop, pacer(), now, wait_for_guest, limit)
            .await
            .into(),
        Job::Probe {
            desktop,
            ready,
            command_limit,
            now,
        } => jobs::probe(conn(), desktop, ready, command_limit, now)
            .await
            .into(),
        Job::Relabel {
            desktop,
            pool,
            user,
            now,
            event,
        } => jobs::relabel(conn(), desktop, pool, user, now, event)
            .await
            .into(),
        Job::Assign {
            desktop,
            user,
            now,
            read_address,
        } => jobs::assign(conn(), desktop, user, now, read_address)
            .await
            .into(),
        Job::Reclaim {
            desktop,
            restart,
            now,
            read_address,
        } => jobs::reclaim(conn(), desktop, restart, now, read_address)
            .await
            .into(),
        Job::Restart { desktop } => jobs::restart(conn(), desktop).await.into(),
        Job::Destroy(removal) => jobs::destroy(conn(), removal).await.into(),
        Job::DeleteVolume {
            host,
            pool,
            volume,
            limit,
        } => jobs::delete_volume(conn(), host, pool, volume, limit)
            .await
            .into(),
        Job::CopySeed {
            host,
            source_host,
            source_pool,
            source_volume,
            creation_pool,
            class,
            version,
            progress,
        } => {
            let (target, source) = (conn(), conn());
            jobs::copy_seed(SeedJob {
                same_host: host == source_host,
                host,
                conn: target,
                source,
                source_pool,
                source_volume,
                creation_pool,
                class,
                version,
                done: progress.done,
                total: progress.total,
            })
            .await
            .into()
        }
        Job::DeleteSeedCopy {
            host,
            pool,
            class,
            version,
            limit,
        } => jobs::delete_seed_copy(conn(), host, pool, class, version, limit)
            .await
            .into(),
        Job::Activate { host, command } => {
            let ran = match command {
                None => Ok(()),
                Some(command) => jobs::run_host_command(command, HOST_COMMAND_LIMIT).await,
            };
            match ran {
                Ok(()) => Outcome::Activated { host },
                Err(error) => Outcome::ActivationFailed { host, error },
            }
            .into()
        }
        Job::Deactivate { host, command } => {
            let command = match command {
                None => None,
                Some(command) => Some(jobs::run_host_command(command, HOST_COMMAND_LIMIT).await),
            };
            Outcome::Deactivated { host, command }.into()
        }
    }
}
