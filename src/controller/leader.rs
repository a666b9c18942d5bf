//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several
//! replicas exactly one reconciles. The Lease is kept by
//! [`kube_lease_manager`]: a candidate takes a free Lease with a
//! server-side apply under its own field manager, so of two candidates
//! that both saw it free the second is refused (409, the fields are owned
//! by the first); the holder renews `grace` before the Lease expires; a
//! Lease whose holder stopped renewing is free once `renewTime +
//! leaseDurationSeconds` has passed.
//!
//! Around it, this module keeps our rules:
//! - the controller runs only while this replica holds the Lease, and is
//!   aborted at once when the Lease is lost or a renewal fails (a failed
//!   renewal happens `grace` before expiry, so no other replica can have
//!   taken the Lease yet);
//! - a standby looks at the Lease every `retry_period`, so a Lease released
//!   by a graceful stop is taken at once rather than when it would have
//!   expired;
//! - on shutdown the leader stops its controller gracefully, then releases
//!   the Lease.
//!
//! Calls on the one Lease: `get`, `create` (once, if missing) and `patch`
//! (the chart's RBAC grants exactly these).

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::Client;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseParams};
use tokio::sync::watch;

use super::error::ControllerError;
use super::run::ControllerHandle;

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
    /// How long a Lease stays valid after its last renewal (whole seconds).
    pub lease_duration: Duration,
    /// The leader renews (and steps down if it cannot) this long after its
    /// last renewal: `lease_duration - renew_deadline`, rounded up to whole
    /// seconds, is the margin left before expiry (the lease manager's
    /// `grace`), which also covers clock skew between nodes.
    pub renew_deadline: Duration,
    /// How often a standby looks at the Lease.
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
        if self.lease_duration.as_secs() < 2 || self.lease_duration.subsec_nanos() != 0 {
            return Err(LeaderError::Timing(format!(
                "the lease duration {:?} must be whole seconds, at least 2 s (Leases count whole seconds; the leader renews a second or more before expiry)",
                self.lease_duration
            )));
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

    /// The margin before expiry at which the leader renews, whole seconds,
    /// at least 1 and below the lease duration.
    fn grace_seconds(&self) -> u64 {
        let margin = self.lease_duration.saturating_sub(self.renew_deadline);
        let secs = margin.as_secs() + u64::from(margin.subsec_nanos() > 0);
        secs.clamp(1, self.lease_duration.as_secs().saturating_sub(1).max(1))
    }

    /// The lease manager's parameters. Only called on validated settings:
    /// `LeaseParams::new` panics on a zero duration or a grace not below it.
    fn params(&self) -> LeaseParams {
        LeaseParams::new(
            self.identity.clone(),
            self.lease_duration.as_secs(),
            self.grace_seconds(),
        )
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

/// The holder named in the Lease now (`None`: free, or no Lease).
async fn holder_of(api: &Api<Lease>, name: &str) -> Result<Option<String>, kube::Error> {
    Ok(api
        .get_opt(name)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

/// What one round of the election saw.
enum Round {
    /// The lease manager reports a change: `true` when this replica holds
    /// the Lease now.
    Changed(bool),
    /// The lease manager failed (an API error): while leading, a renewal
    /// that did not happen.
    Failed(kube_lease_manager::LeaseManagerError),
    /// A standby's look at the Lease is due.
    Look,
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
    let params = settings.params();
    let leases: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let mut manager: Option<LeaseManager> = None;
    let mut running: Option<Running> = None;
    let mut leading = false;
    tokio::pin!(shutdown);
    tracing::info!(
        lease = %format!("{}/{}", settings.namespace, settings.name),
        identity = %settings.identity,
        "leader election started"
    );

    loop {
        if manager.is_none() {
            // A new manager reads the Lease afresh (and creates it if it
            // is missing).
            let built = tokio::select! {
                biased;
                () = &mut shutdown => break,
                r = LeaseManager::new(
                    client.clone(),
                    &settings.name,
                    &settings.namespace,
                    params.clone(),
                    LeaseCreateMode::AutoCreate,
                ) => r,
            };
            match built {
                Ok(m) => manager = Some(m),
                Err(e) => {
                    tracing::warn!(error = %e, lease = %settings.name, "cannot read the Lease");
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(settings.retry_period) => continue,
                    }
                }
            }
        }
        let Some(m) = manager.as_ref() else { continue };
        // The leader's `changed` renews and returns only on a change; a
        // standby's would sleep until the holder's Lease expires, so it is
        // cut short to look at the Lease every retry period.
        let round = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = m.changed() => match r {
                Ok(holds) => Round::Changed(holds),
                Err(e) => Round::Failed(e),
            },
            () = tokio::time::sleep(settings.retry_period), if !leading => Round::Look,
        };
        match round {
            Round::Changed(true) => {
                leading = true;
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
            Round::Changed(false) => {
                if leading || running.is_some() {
                    tracing::warn!("Lease taken by another replica; controller stopped");
                }
                // Dropping aborts the controller.
                running = None;
                leading = false;
                let holder = holder_of(&leases, &settings.name).await.ok().flatten();
                status.send_replace(LeaderStatus::Following { holder });
            }
            Round::Failed(e) => {
                if leading {
                    // A renewal failed `grace` before expiry: stop before
                    // any other replica may take the Lease.
                    running = None;
                    leading = false;
                    tracing::error!(error = %e, "could not renew the Lease; controller stopped");
                    status.send_replace(LeaderStatus::Following { holder: None });
                } else {
                    tracing::warn!(error = %e, lease = %settings.name, "Lease acquire failed");
                }
                manager = None;
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(settings.retry_period) => {}
                }
            }
            Round::Look => match holder_of(&leases, &settings.name).await {
                Ok(holder) => {
                    if holder.is_none() {
                        // Released (or never held): a fresh manager takes it
                        // now instead of waiting for the old expiry.
                        manager = None;
                    }
                    status.send_replace(LeaderStatus::Following { holder });
                }
                Err(e) => {
                    tracing::warn!(error = %e, lease = %settings.name, "cannot read the Lease")
                }
            },
        }
    }

    // Shutdown: finish in-flight reconciles, then hand the Lease over.
    if let Some(r) = running.take() {
        r.shutdown().await;
    }
    if let (true, Some(m)) = (leading, &manager) {
        match tokio::time::timeout(settings.renew_deadline, m.release()).await {
            Ok(Ok(())) => tracing::info!(lease = %settings.name, "Lease released"),
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
        assert_eq!(ok.grace_seconds(), 5);
        let mut bad = ok.clone();
        bad.renew_deadline = Duration::from_secs(15);
        assert!(matches!(bad.validate(), Err(LeaderError::Timing(_))));
        let mut bad = ok.clone();
        bad.retry_period = Duration::from_secs(10);
        assert!(matches!(bad.validate(), Err(LeaderError::Timing(_))));
        let mut bad = ok.clone();
        bad.lease_duration = Duration::from_millis(1500);
        bad.renew_deadline = Duration::from_millis(300);
        bad.retry_period = Duration::from_millis(100);
        assert!(matches!(bad.validate(), Err(LeaderError::Timing(_))));
        let mut bad = ok;
        bad.identity = String::new();
        assert!(matches!(bad.validate(), Err(LeaderError::Setting(_))));
    }

    #[test]
    fn grace_is_whole_seconds_below_the_duration() {
        let short = LeaseSettings {
            lease_duration: Duration::from_secs(2),
            renew_deadline: Duration::from_millis(1500),
            retry_period: Duration::from_millis(200),
            ..LeaseSettings::new("l", "ns", "me")
        };
        assert!(short.validate().is_ok());
        assert_eq!(short.grace_seconds(), 1);
        let tight = LeaseSettings {
            renew_deadline: Duration::from_millis(14_500),
            ..LeaseSettings::new("l", "ns", "me")
        };
        assert_eq!(tight.grace_seconds(), 1);
    }
}
