//! The Kubernetes client of the commands that talk to a cluster (`run`,
//! `capture`, `explain`): a kubeconfig file, else the in-cluster
//! configuration or `~/.kube/config`. Failing here is an input error (exit 2).

use std::path::Path;

/// An input problem of `run` (flags, files, cluster configuration), as
/// opposed to a failure of the running controller: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Build the client.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, UsageError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| UsageError(format!("reading kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| UsageError(format!("using kubeconfig {}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| UsageError(format!("no cluster configuration found: {e}")))?,
    };
    kube::Client::try_from(config)
        .map_err(|e| UsageError(format!("building the Kubernetes client: {e}")))
}
