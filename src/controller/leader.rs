//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several
//! replicas exactly one reconciles.
//!
//! The algorithm is the Kubernetes one (client-go `leaderelection`): every
//! write is a `replace` guarded by the Lease's `resourceVersion`, so two
//! candidates can never both win the same round (the second gets 409). A
//! candidate takes a held Lease only after the record stayed unchanged for
//! `leaseDurationSeconds` as measured on its *own* clock from when it first
//! saw that record, so clock skew between nodes does not matter. The leader
//! renews every `retry_period`; if it could not renew for `renew_deadline`
//! (shorter than the lease duration) it stops its controller at once, before
//! any other replica may take over. On shutdown the leader stops its
//! controller gracefully, then clears `holderIdentity` so the standby takes
//! over without waiting for the lease to expire.
//!
//! Only `get`, `create` and `update` on the one Lease are used (the RBAC of
//! the chart grants exactly these).
//!
//! (Why not a crate: `kube-leader-election` 0.44 and `kubert` 0.25 are built
//! on older kube releases; `kube-lease-manager` 0.13 builds with kube 5 but
//! needs Rust 1.89 and takes the Lease with server-side-apply field-owner
//! conflicts, which the API emulator of our tests does not model, so its
//! exclusivity could not be tested here.)

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use super::error::{is_already_exists, is_conflict, is_not_found};
use super::run::ControllerHandle;
use super::ControllerError;

/// Where the Lease lives when neither a flag nor the pod says.
pub const DEFAULT_LEASE_NAMESPACE: &str = "kubernaut-workflows";
/// The in-cluster service-account namespace file.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Errors of leader election set-up (API errors are retried, never returned).
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("invalid leader election timing: {0}")]
    Timing(String),
    #[error("invalid leader election setting: {0}")]
    Setting(String),
}

/// The Lease and the timing of the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica's name in `holderIdentity`; unique per process.
    pub identity: String,
    /// How long a Lease stays valid after its last renewal.
    pub lease_duration: Duration,
    /// The leader steps down when it could not renew for this long.
    pub renew_deadline: Duration,
    /// Time between two acquire or renew attempts.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// The production timing: lease 15 s, renew deadline 10 s, retry 2 s.
    pub fn new(
        name: impl Into<String>,
        namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        LeaseSettings {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    pub fn validate(&self) -> Result<(), LeaderError> {
        if self.name.is_empty() || self.namespace.is_empty() || self.identity.is_empty() {
            return Err(LeaderError::Setting(
                "the Lease name, its namespace and the identity must not be empty".into(),
            ));
        }
        if self.lease_duration.as_secs() < 1 {
            return Err(LeaderError::Timing(
                "the lease duration must be at least 1 s (Leases count whole seconds)".into(),
            ));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(LeaderError::Timing(format!(
                "retry period {:?} must be above zero and below the renew deadline {:?}",
                self.retry_period, self.renew_deadline
            )));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(LeaderError::Timing(format!(
                "renew deadline {:?} must be below the lease duration {:?}",
                self.renew_deadline, self.lease_duration
            )));
        }
        Ok(())
    }
}

/// The Lease namespace when none is configured: `POD_NAMESPACE`, else the
/// service account's namespace file, else [`DEFAULT_LEASE_NAMESPACE`].
pub fn default_lease_namespace() -> String {
    if let Ok(ns) = std::env::var("POD_NAMESPACE") {
        if !ns.trim().is_empty() {
            return ns.trim().to_string();
        }
    }
    match std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE) {
        Ok(ns) if !ns.trim().is_empty() => ns.trim().to_string(),
        _ => DEFAULT_LEASE_NAMESPACE.to_string(),
    }
}

/// This process's identity: `POD_NAME`, else `<hostname>_<pid>` (two
/// processes on one host must not share an identity).
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME") {
        if !pod.trim().is_empty() {
            return pod.trim().to_string();
        }
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "wfe-engine".to_string());
    format!("{}_{}", host.trim(), std::process::id())
}

/// What this replica's elector knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderStatus {
    /// The Lease has not been read yet.
    Starting,
    /// Another replica (or nobody, `None`) holds the Lease.
    Following { holder: Option<String> },
    /// This replica holds the Lease and runs the controller.
    Leading,
    /// The election ended (shutdown).
    Stopped,
}

/// The parts of a Lease record that tell whether its holder is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<String>,
    acquire_time: Option<String>,
    duration_seconds: Option<i32>,
    transitions: i32,
}

impl Record {
    fn of(lease: &Lease) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        Record {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            renew_time: spec.renew_time.map(|t| t.0.to_string()),
            acquire_time: spec.acquire_time.map(|t| t.0.to_string()),
            duration_seconds: spec.lease_duration_seconds,
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

/// The last record seen and when (on our clock) it was first seen.
struct Observed {
    record: Record,
    since: Instant,
}

/// The Lease lock: one acquire-or-renew attempt at a time.
pub struct LeaseLock {
    api: Api<Lease>,
    settings: LeaseSettings,
    observed: Option<Observed>,
}

impl LeaseLock {
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        LeaseLock {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
        }
    }

    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// The holder in the last record seen.
    pub fn observed_holder(&self) -> Option<&str> {
        self.observed
            .as_ref()
            .and_then(|o| o.record.holder.as_deref())
    }

    fn observe(&mut self, lease: &Lease) {
        let record = Record::of(lease);
        let changed = self.observed.as_ref().is_none_or(|o| o.record != record);
        if changed {
            self.observed = Some(Observed {
                record,
                since: Instant::now(),
            });
        }
    }

    fn lease_body(&self, spec: LeaseSpec, resource_version: Option<String>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.settings.name.clone()),
                namespace: Some(self.settings.namespace.clone()),
                resource_version,
                ..Default::default()
            },
            spec: Some(spec),
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.settings.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// One attempt: create the Lease, renew it, or take it over if its
    /// holder is gone. `Ok(true)` means this replica holds the Lease now.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let me = self.settings.identity.clone();
        let Some(lease) = self.api.get_opt(&self.settings.name).await? else {
            let spec = LeaseSpec {
                holder_identity: Some(me),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            };
            return match self
                .api
                .create(&PostParams::default(), &self.lease_body(spec, None))
                .await
            {
                Ok(created) => {
                    self.observe(&created);
                    Ok(true)
                }
                // Another replica created it first: it holds it.
                Err(e) if is_already_exists(&e) => Ok(false),
                Err(e) => Err(e),
            };
        };
        self.observe(&lease);
        let Some(observed) = &self.observed else {
            return Ok(false);
        };
        let record = observed.record.clone();
        let holding = record.holder.as_deref() == Some(me.as_str());
        if !holding {
            if let Some(_other) = &record.holder {
                let valid_for = record
                    .duration_seconds
                    .and_then(|s| u64::try_from(s).ok())
                    .map_or(self.settings.lease_duration, Duration::from_secs);
                if observed.since.elapsed() < valid_for {
                    return Ok(false);
                }
            }
        }
        let mut spec = lease.spec.clone().unwrap_or_default();
        if !holding {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(record.transitions.saturating_add(1));
        }
        spec.holder_identity = Some(me);
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(self.duration_seconds());
        let body = self.lease_body(spec, lease.metadata.resource_version.clone());
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &body)
            .await
        {
            Ok(updated) => {
                self.observe(&updated);
                Ok(true)
            }
            // Someone else wrote the Lease since our read: they won this round.
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Give the Lease up if this replica holds it: clear `holderIdentity`
    /// so a standby takes over at its next attempt.
    pub async fn release(&mut self) -> Result<bool, kube::Error> {
        let Some(lease) = self.api.get_opt(&self.settings.name).await? else {
            return Ok(false);
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        let body = self.lease_body(spec, lease.metadata.resource_version.clone());
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &body)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A running controller that is aborted when dropped, so that dropping the
/// election future (a killed task) never leaves a controller running
/// without the Lease.
struct Running(Option<ControllerHandle>);

impl Running {
    fn is_finished(&self) -> bool {
        self.0.as_ref().is_none_or(ControllerHandle::is_finished)
    }

    async fn shutdown(mut self) {
        if let Some(h) = self.0.take() {
            if let Err(e) = h.shutdown().await {
                tracing::warn!(error = %e, "controller did not stop cleanly");
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// Run the election until `shutdown` resolves: while this replica holds
/// the Lease, a controller started by `start` runs; when the Lease is lost
/// it is aborted at once; on shutdown it is stopped gracefully and the
/// Lease released. `status` follows every change.
pub async fn run_leader_election<F, Fut>(
    client: Client,
    settings: LeaseSettings,
    mut start: F,
    shutdown: impl Future<Output = ()> + Send,
    status: watch::Sender<LeaderStatus>,
) -> Result<(), LeaderError>
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Result<ControllerHandle, ControllerError>> + Send,
{
    settings.validate()?;
    let mut lock = LeaseLock::new(client, settings.clone());
    let mut running: Option<Running> = None;
    // When the last successful attempt started (only while leading).
    let mut renewed: Option<Instant> = None;
    tokio::pin!(shutdown);
    tracing::info!(
        lease = %format!("{}/{}", settings.namespace, settings.name),
        identity = %settings.identity,
        "leader election started"
    );

    loop {
        let attempt_started = Instant::now();
        // A renewal that hangs must not outlive the renew deadline.
        let limit = match renewed {
            Some(at) => settings
                .renew_deadline
                .saturating_sub(at.elapsed())
                .max(Duration::from_millis(10)),
            None => settings.renew_deadline,
        };
        let attempt = tokio::time::timeout(limit, lock.try_acquire_or_renew());
        let result = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = attempt => r,
        };
        let holds = match result {
            Ok(Ok(holds)) => Some(holds),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, lease = %settings.name, "Lease acquire/renew failed");
                None
            }
            Err(_) => {
                tracing::warn!(lease = %settings.name, ?limit, "Lease acquire/renew timed out");
                None
            }
        };
        match holds {
            Some(true) => {
                renewed = Some(attempt_started);
                if running.as_ref().is_some_and(Running::is_finished) {
                    tracing::error!("controller stopped on its own; restarting it");
                    running = None;
                }
                if running.is_none() {
                    tracing::info!(identity = %settings.identity, "became leader; starting the controller");
                    status.send_replace(LeaderStatus::Leading);
                    let started = tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        r = start() => r,
                    };
                    match started {
                        Ok(h) => running = Some(Running(Some(h))),
                        Err(e) => {
                            tracing::error!(error = %e, "controller did not start; retrying")
                        }
                    }
                }
            }
            Some(false) => {
                if running.take().is_some() || renewed.is_some() {
                    tracing::warn!(
                        holder = ?lock.observed_holder(),
                        "Lease taken by another replica; controller stopped"
                    );
                }
                renewed = None;
                status.send_replace(LeaderStatus::Following {
                    holder: lock.observed_holder().map(str::to_string),
                });
            }
            None => {
                if let Some(at) = renewed {
                    if at.elapsed() >= settings.renew_deadline {
                        // Dropping aborts the controller before the Lease
                        // can expire for the other replicas.
                        running = None;
                        renewed = None;
                        tracing::error!(
                            deadline = ?settings.renew_deadline,
                            "could not renew the Lease in time; controller stopped"
                        );
                        status.send_replace(LeaderStatus::Following {
                            holder: lock.observed_holder().map(str::to_string),
                        });
                    }
                }
            }
        }

        // Candidates spread their attempts so they do not collide each round.
        let pause = if renewed.is_some() {
            settings.retry_period
        } else {
            let jitter = rand::thread_rng().gen_range(0.0..0.2);
            settings.retry_period.mul_f64(1.0 + jitter)
        };
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = tokio::time::sleep(pause) => {}
        }
    }

    // Shutdown: finish in-flight reconciles, then hand the Lease over.
    if let Some(r) = running.take() {
        r.shutdown().await;
    }
    if renewed.is_some() {
        match tokio::time::timeout(settings.renew_deadline, lock.release()).await {
            Ok(Ok(true)) => tracing::info!(lease = %settings.name, "Lease released"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "Lease not released; it expires on its own"),
            Err(_) => tracing::warn!("Lease release timed out; it expires on its own"),
        }
    }
    status.send_replace(LeaderStatus::Stopped);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_must_leave_room_before_expiry() {
        let ok = LeaseSettings::new("l", "ns", "me");
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.renew_deadline = Duration::from_secs(15);
        assert!(matches!(bad.validate(), Err(LeaderError::Timing(_))));
        let mut bad = ok.clone();
        bad.retry_period = Duration::from_secs(10);
        assert!(matches!(bad.validate(), Err(LeaderError::Timing(_))));
        let mut bad = ok.clone();
        bad.lease_duration = Duration::from_millis(500);
        bad.renew_deadline = Duration::from_millis(300);
        bad.retry_period = Duration::from_millis(100);
        assert!(matches!(bad.validate(), Err(LeaderError::Timing(_))));
        let mut bad = ok;
        bad.identity = String::new();
        assert!(matches!(bad.validate(), Err(LeaderError::Setting(_))));
    }

    #[test]
    fn an_empty_holder_is_no_holder() {
        let lease = Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(String::new()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(Record::of(&lease).holder, None);
    }
}
