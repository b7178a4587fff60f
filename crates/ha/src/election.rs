//! One controller's part in the election: a session (lease, registration, campaign, renewals,
//! the leader watched) run again after every failure, until told to stop.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, GetOptions, LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use deskpool_core::leadership::{ControllerInfo, Leadership, Role};
use deskpool_core::policy::ha::HaSettings;

/// How long one call to etcd may take before it counts as failed.
const CALL_LIMIT: Duration = Duration::from_secs(3);
/// The wait before a failed session is tried again.
const RETRY_GAP: Duration = Duration::from_secs(1);
/// How long stepping down may take at shutdown.
const STEP_DOWN_LIMIT: Duration = Duration::from_secs(3);

/// A running election; dropping it aborts it (its lease then expires on its own).
pub struct Election {
    pub leadership: watch::Receiver<Leadership>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Election {
    /// Takes part in the election `settings` describe, from now until [`Election::step_down`].
    pub fn start(settings: HaSettings) -> Election {
        let (tx, leadership) = watch::channel(Leadership {
            role: Role::Follower,
            controller: settings.name.clone(),
            why: Some("joining the election".into()),
            ..Leadership::alone()
        });
        let (stop_tx, stop) = oneshot::channel();
        let task = tokio::spawn(run(settings, tx, stop));
        Election {
            leadership,
            stop: Some(stop_tx),
            task,
        }
    }

    /// Leaves the election at once (the lease revoked: another controller can lead without
    /// waiting for it to expire).
    pub async fn step_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = &mut self.task;
        if tokio::time::timeout(STEP_DOWN_LIMIT, task).await.is_err() {
            self.task.abort();
        }
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn leader_key(settings: &HaSettings) -> String {
    format!("{}/leader", settings.election)
}

fn controllers_prefix(settings: &HaSettings) -> String {
    format!("{}/controllers/", settings.election)
}

fn me(settings: &HaSettings) -> ControllerInfo {
    ControllerInfo {
        name: settings.name.clone(),
        advertise: settings.advertise.clone(),
    }
}

async fn run(settings: HaSettings, tx: watch::Sender<Leadership>, mut stop: oneshot::Receiver<()>) {
    loop {
        let why = match session(&settings, &tx, &mut stop).await {
            Ok(()) => return,
            Err(why) => why,
        };
        tracing::warn!("ha: {why}; trying again");
        tx.send_modify(|l| {
            if l.role == Role::Leader {
                tracing::warn!(term = l.term, "ha: leadership lost: {why}");
            }
            l.role = Role::Lost;
            l.held_until = None;
            l.why = Some(why.clone());
        });
        tokio::select! {
            _ = tokio::time::sleep(RETRY_GAP) => {}
            _ = &mut stop => return,
        }
    }
}

/// Bounds a call to etcd and names it in its error.
async fn call<T>(
    what: &str,
    endpoints: &[String],
    f: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_LIMIT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!(
            "etcd {} refused to {what}: {e}",
            endpoints.join(",")
        )),
        Err(_) => Err(format!(
            "etcd {} did not answer within {} s ({what})",
            endpoints.join(","),
            CALL_LIMIT.as_secs()
        )),
    }
}

type Campaign = Pin<Box<dyn Future<Output = Result<u64, etcd_client::Error>> + Send>>;

/// One session: returns `Ok` when told to stop, `Err(why)` when it can no longer go on.
async fn session(
    settings: &HaSettings,
    tx: &watch::Sender<Leadership>,
    stop: &mut oneshot::Receiver<()>,
) -> Result<(), String> {
    let endpoints = &settings.etcd;
    let ttl = settings.lease_ttl_secs;
    let options = ConnectOptions::new().with_connect_timeout(CALL_LIMIT);
    let mut client = call(
        "connect",
        endpoints,
        Client::connect(endpoints.clone(), Some(options)),
    )
    .await?;
    let sent = Instant::now();
    let lease = call(
        "grant a lease",
        endpoints,
        client.lease_grant(ttl as i64, None),
    )
    .await?;
    let lease_id = lease.id();
    let mut held_until = held(sent, lease.ttl());
    let me = me(settings);
    let registration = serde_json::to_string(&me).expect("a controller's name serialises");
    call(
        "register this controller",
        endpoints,
        client.put(
            format!("{}{}", controllers_prefix(settings), settings.name),
            registration.clone(),
            Some(etcd_client::PutOptions::new().with_lease(lease_id)),
        ),
    )
    .await?;
    // etcd answers a watch on the leader only once there is one: it runs on its own task.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::channel(8);
    let watcher = AbortOnDrop(tokio::spawn(watch_leader(
        client.election_client(),
        leader_key(settings),
        format!("etcd {}", endpoints.join(",")),
        seen_tx,
    )));
    let mut election = client.election_client();
    let key = leader_key(settings);
    let mut campaign: Option<Campaign> = Some(Box::pin(async move {
        let won = election.campaign(key, registration, lease_id).await?;
        Ok(won.leader().map_or(0, |k| k.rev() as u64))
    }));
    let mut renewer: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
    let mut renew = tokio::time::interval(Duration::from_secs(ttl).div_f64(3.0));
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewal_failing: Option<String> = None;
    tx.send_modify(|l| {
        l.role = Role::Follower;
        l.why = None;
    });
    tracing::info!(controller = %settings.name, lease = lease_id, "ha: joined the election");
    let _watcher = watcher;
    loop {
        tokio::select! {
            _ = &mut *stop => {
                // The lease's keys (the leader key and the registration) go with it.
                let _ = call("revoke the lease", endpoints, client.lease_revoke(lease_id)).await;
                tx.send_modify(|l| {
                    l.role = Role::Follower;
                    l.held_until = None;
                    l.why = Some("stepped down".into());
                });
                tracing::info!(controller = %settings.name, "ha: stepped down");
                return Ok(());
            }
            won = run_campaign(&mut campaign) => {
                campaign = None;
                let term = won.map_err(|e| format!("the campaign failed: {e}"))?;
                tracing::info!(controller = %settings.name, term, "ha: this controller leads");
                tx.send_modify(|l| {
                    l.role = Role::Leader;
                    l.term = term;
                    l.leader = Some(me.clone());
                    l.held_until = Some(held_until);
                    l.why = None;
                });
            }
            seen = seen_rx.recv() => {
                let (term, leader) = match seen {
                    Some(Ok(seen)) => seen,
                    Some(Err(why)) => return Err(why),
                    None => return Err("the watch on the leader ended".into()),
                };
                let leading = tx.borrow().role == Role::Leader;
                if leading && leader.name != settings.name {
                    return Err(format!("{leader} took the lead (term {term})"));
                }
                if !leading {
                    tx.send_modify(|l| {
                        l.term = term;
                        l.leader = Some(leader);
                    });
                }
            }
            _ = renew.tick() => {
                let sent = Instant::now();
                match renew_once(&mut client, &mut renewer, lease_id, endpoints).await {
                    Ok(granted) if granted > 0 => {
                        held_until = held(sent, granted);
                        if renewal_failing.take().is_some() {
                            tracing::info!("ha: the lease is renewed again");
                        }
                    }
                    Ok(_) => return Err(format!("the lease {lease_id:x} expired before it was renewed")),
                    Err(e) => {
                        renewer = None;
                        if Instant::now() >= held_until {
                            return Err(format!("cannot renew the lease: {e}"));
                        }
                        tracing::warn!("ha: renewal failed, the lease holds a little longer: {e}");
                        renewal_failing = Some(e);
                    }
                }
                let controllers = list_controllers(&mut client, settings).await;
                tx.send_modify(|l| {
                    if l.role == Role::Leader {
                        l.held_until = Some(held_until);
                        l.why = renewal_failing
                            .as_ref()
                            .map(|e| format!("the lease is not renewed: {e}"));
                    }
                    if let Some(controllers) = controllers {
                        // A leader gone from the registrations has lost its lease: the
                        // election is under way.
                        if l.role != Role::Leader
                            && l.leader
                                .as_ref()
                                .is_some_and(|leader| !controllers.iter().any(|c| c.name == leader.name))
                        {
                            l.leader = None;
                            l.why = Some("the leader's lease expired; an election is under way".into());
                        } else if l.role == Role::Follower {
                            l.why = None;
                        }
                        l.controllers = controllers;
                    }
                });
            }
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Seen = Result<(u64, ControllerInfo), String>;

/// Sends every leader etcd reports (its term and who), or why the watch ended.
async fn watch_leader(
    mut election: etcd_client::ElectionClient,
    key: String,
    etcd: String,
    seen: tokio::sync::mpsc::Sender<Seen>,
) {
    let mut stream = match election.observe(key).await {
        Ok(s) => s,
        Err(e) => {
            let _ = seen
                .send(Err(format!("{etcd}: watching the leader failed: {e}")))
                .await;
            return;
        }
    };
    loop {
        let next = match stream.message().await {
            Ok(Some(answer)) => match answer.kv() {
                Some(kv) => Ok((
                    kv.create_revision() as u64,
                    serde_json::from_slice(kv.value()).unwrap_or_else(|_| ControllerInfo {
                        name: String::from_utf8_lossy(kv.value()).into_owned(),
                        advertise: None,
                    }),
                )),
                None => continue,
            },
            Ok(None) => Err(format!("{etcd} ended the watch on the leader")),
            Err(e) => Err(format!("{etcd}: watching the leader failed: {e}")),
        };
        let ended = next.is_err();
        if seen.send(next).await.is_err() || ended {
            return;
        }
    }
}

/// Until when a lease granted `ttl` seconds by a request sent at `sent` is certainly held:
/// etcd counts from when it answered, which is later; a tenth of the TTL is kept in hand for
/// clock rates and the time a job takes to start.
fn held(sent: Instant, ttl: i64) -> Instant {
    let ttl = Duration::from_secs(ttl.max(0) as u64);
    sent + ttl - ttl / 10
}

async fn run_campaign(campaign: &mut Option<Campaign>) -> Result<u64, etcd_client::Error> {
    match campaign {
        Some(c) => c.await,
        None => std::future::pending().await,
    }
}

/// One renewal; the TTL granted (0: the lease is gone).
async fn renew_once(
    client: &mut Client,
    renewer: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    lease_id: i64,
    endpoints: &[String],
) -> Result<i64, String> {
    if renewer.is_none() {
        *renewer = Some(
            call(
                "renew the lease",
                endpoints,
                client.lease_keep_alive(lease_id),
            )
            .await?,
        );
    }
    let (keeper, stream) = renewer.as_mut().expect("set above");
    call("renew the lease", endpoints, keeper.keep_alive()).await?;
    match call("renew the lease", endpoints, stream.message()).await? {
        Some(answer) => Ok(answer.ttl()),
        None => Err("etcd closed the renewal stream".into()),
    }
}

/// The controllers registered now (`None` when etcd could not say).
async fn list_controllers(
    client: &mut Client,
    settings: &HaSettings,
) -> Option<Vec<ControllerInfo>> {
    let answer = call(
        "list the controllers",
        &settings.etcd,
        client.get(
            controllers_prefix(settings),
            Some(GetOptions::new().with_prefix()),
        ),
    )
    .await
    .ok()?;
    let mut controllers: Vec<ControllerInfo> = answer
        .kvs()
        .iter()
        .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
        .collect();
    controllers.sort_by(|a, b| a.name.cmp(&b.name));
    Some(controllers)
}
