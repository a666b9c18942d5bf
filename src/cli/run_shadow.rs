//! `run --shadow-rules-configmap NAMESPACE/NAME` / `--shadow-rules DIR`: a
//! candidate rule set kept through the same gate as the active one and
//! evaluated beside it on every decision, never applied
//! (docs/hot-reload.md, "A candidate in shadow").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::kube_client::UsageError;
use crate::controller::Shadow;
use crate::reload::{
    ConfigMapRef, ConfigMapSource, ReloadHandle, ReloadOptions, Reloader, RulesSource,
};

/// How much longer than the gate's own limit `run` waits for the
/// candidate's first outcome before it starts reconciling without it.
const SETTLE_GRACE: Duration = Duration::from_secs(5);

/// The shadow flags of `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct ShadowArgs {
    /// Evaluate the rules in this ConfigMap beside the active set on every
    /// decision, never applying them: disagreements go to the log,
    /// `wfe_rules_shadow_disagreements_total{field}` and `GET /rules/shadow`.
    #[arg(
        long,
        env = "WFE_SHADOW_RULES_CONFIGMAP",
        value_name = "NAMESPACE/NAME",
        conflicts_with = "shadow_rules"
    )]
    pub shadow_rules_configmap: Option<ConfigMapRef>,
    /// The same, with the candidate rules in a directory.
    #[arg(long, env = "WFE_SHADOW_RULES", value_name = "DIR")]
    pub shadow_rules: Option<PathBuf>,
}

impl ShadowArgs {
    /// Refuse what cannot work before anything starts: a candidate
    /// directory that is not there, or a candidate that is the active set
    /// itself (it could never disagree).
    pub fn check(
        &self,
        active_dir: Option<&Path>,
        active_cm: Option<&ConfigMapRef>,
    ) -> Result<(), UsageError> {
        if let Some(dir) = &self.shadow_rules {
            if !dir.is_dir() {
                return Err(UsageError(format!(
                    "shadow rules directory {} does not exist or is not a directory",
                    dir.display()
                )));
            }
            let same = active_dir.is_some_and(|a| same_dir(a, dir));
            if same {
                return Err(UsageError(format!(
                    "--shadow-rules {} is the active rules directory: the candidate could never disagree",
                    dir.display()
                )));
            }
        }
        if let (Some(shadow), Some(active)) = (&self.shadow_rules_configmap, active_cm) {
            if shadow == active {
                return Err(UsageError(format!(
                    "--shadow-rules-configmap {shadow} is the active rules ConfigMap: the candidate could never disagree"
                )));
            }
        }
        Ok(())
    }

    fn source(&self, client: &kube::Client, instance: &str) -> Option<RulesSource> {
        if let Some(dir) = &self.shadow_rules {
            return Some(RulesSource::Directory(dir.clone()));
        }
        let target = self.shadow_rules_configmap.clone()?;
        Some(RulesSource::ConfigMap(ConfigMapSource {
            client: client.clone(),
            target,
            instance: instance.to_string(),
        }))
    }

    /// Start the candidate's reloader, show it in `reload`'s `/rules`, and
    /// wait (bounded) for its first outcome, so that the reconciles right
    /// after a start are compared too. `None` without a shadow flag.
    pub async fn start(
        &self,
        client: &kube::Client,
        instance: &str,
        options: ReloadOptions,
        reload: &ReloadHandle,
    ) -> Option<Arc<Shadow>> {
        let source = self.source(client, instance)?;
        let described = source.describe();
        let shadow = Arc::new(Shadow::default());
        let limit = options.gate_timeout + SETTLE_GRACE;
        let handle = Reloader::spawn_shadow(source, options, shadow.candidate_slot());
        reload.attach_shadow(handle.clone());
        let settled = handle.settled(limit).await;
        match handle.candidate() {
            Some(c) => {
                tracing::info!(source = %described, revision = %c.revision, "candidate rules in shadow: evaluated beside the active set, never applied")
            }
            None if settled => {
                tracing::warn!(source = %described, "no candidate rules in shadow yet (see /rules); evaluating none until one passes the gate")
            }
            None => {
                tracing::warn!(source = %described, "the candidate rules were not read within {limit:?}; starting without them")
            }
        }
        Some(shadow)
    }
}

/// Whether two paths name the same directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
