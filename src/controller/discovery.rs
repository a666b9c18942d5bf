//! What the cluster offers: whether Tekton's CRDs are installed, and
//! whether a WFE's declared dependencies exist in the execution namespace.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::Client;

use super::error::{is_not_found, ControllerError};
use crate::api::WorkflowExecution;

/// Whether `tekton.dev/v1` serves `pipelineruns` (and `taskruns`).
/// Absence (404) is an answer; any other error is returned.
pub async fn tekton_available(client: &Client) -> Result<bool, ControllerError> {
    match client.list_api_group_resources("tekton.dev/v1").await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == "pipelineruns")),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(ControllerError::api("discover", "tekton.dev/v1", e)),
    }
}

/// The engines a controller with this configuration offers: `job`, and
/// `tekton` first when its CRDs are served and not disabled.
pub async fn engines(
    client: &Client,
    config: &super::config::ControllerConfig,
) -> Result<Vec<String>, ControllerError> {
    let tekton = !config.disable_tekton && tekton_available(client).await?;
    let mut engines = vec!["job".to_string()];
    if tekton {
        engines.insert(0, "tekton".to_string());
    }
    Ok(engines)
}

/// Declared Secrets and ConfigMaps that are absent or have no data in
/// `namespace`, as `secret/<name>` / `configmap/<name>`, in declaration order.
pub async fn missing_dependencies(
    client: &Client,
    namespace: &str,
    wfe: &WorkflowExecution,
) -> Result<Vec<String>, ControllerError> {
    let Some(deps) = wfe.spec.workflow_ref.dependencies.as_ref() else {
        return Ok(Vec::new());
    };
    let mut missing = Vec::new();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for s in &deps.secrets {
        let found = secrets.get_opt(&s.name).await.map_err(|e| {
            ControllerError::api("get", format!("Secret {namespace}/{}", s.name), e)
        })?;
        let has_data = found.is_some_and(|o| o.data.is_some_and(|d| !d.is_empty()));
        if !has_data {
            missing.push(format!("secret/{}", s.name));
        }
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for c in &deps.config_maps {
        let found = maps.get_opt(&c.name).await.map_err(|e| {
            ControllerError::api("get", format!("ConfigMap {namespace}/{}", c.name), e)
        })?;
        let has_data = found.is_some_and(|o| {
            o.data.is_some_and(|d| !d.is_empty()) || o.binary_data.is_some_and(|d| !d.is_empty())
        });
        if !has_data {
            missing.push(format!("configmap/{}", c.name));
        }
    }
    Ok(missing)
}
