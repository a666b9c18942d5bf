//! The `batch/v1` Job for a WorkflowExecution (reference §3.3, with valid
//! label values and sorted env).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar,
    PodSecurityContext, PodSpec, PodTemplateSpec, SeccompProfile, SecretVolumeSource,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::labels::{
    label_value, LABEL_EXECUTION_ENGINE, LABEL_SOURCE_NAMESPACE, LABEL_WORKFLOW_EXECUTION,
};
use super::params::{filter_params, TARGET_RESOURCE_PARAM};
use super::{seconds_until, BuildInput, ExecuteError};

/// Name of the single container; the pod failure policy refers to it.
pub const CONTAINER_NAME: &str = "workflow";
/// Job deadline when the WFE has no `timesOutAt` (30 minutes).
pub const DEFAULT_ACTIVE_DEADLINE_SECONDS: i64 = 1800;
/// Finished Jobs are garbage-collected after this long (a fallback lock release).
pub const TTL_SECONDS_AFTER_FINISHED: i32 = 600;
/// Exit code of an OOM-killed container; such pod failures are ignored
/// (retried until the deadline), as kubernaut does.
const OOM_EXIT_CODE: i32 = 137;
/// Where dependency Secrets and ConfigMaps are mounted.
pub const SECRETS_MOUNT_ROOT: &str = "/run/kubernaut/secrets";
pub const CONFIGMAPS_MOUNT_ROOT: &str = "/run/kubernaut/configmaps";

/// Build the Job. Deterministic: the same input gives the same bytes.
pub fn job(input: &BuildInput<'_>) -> Result<Job, ExecuteError> {
    let meta = input.metadata()?;
    let spec = &input.wfe.spec;
    let wref = &spec.workflow_ref;

    let mut labels = meta.labels.clone();
    labels.insert(LABEL_EXECUTION_ENGINE.into(), "job".into());
    let pod_labels = BTreeMap::from([
        (
            LABEL_WORKFLOW_EXECUTION.to_string(),
            label_value(meta.owner_name),
        ),
        (LABEL_EXECUTION_ENGINE.to_string(), "job".to_string()),
        // Not in kubernaut's template: lets a Pod event map back to its WFE
        // even before the Job itself is in the cache.
        (
            LABEL_SOURCE_NAMESPACE.to_string(),
            label_value(input.wfe.metadata.namespace.as_deref().unwrap_or("")),
        ),
    ]);

    let deadline = match &spec.times_out_at {
        Some(t) => seconds_until(t.0, input.now),
        None => DEFAULT_ACTIVE_DEADLINE_SECONDS,
    };

    let mut env = vec![env_var(TARGET_RESOURCE_PARAM, &spec.target_resource)];
    env.extend(
        filter_params(spec)
            .kept
            .into_iter()
            .map(|(n, v)| env_var(n, v)),
    );
    env.push(env_var("HOME", "/tmp"));
    env.push(env_var("TMPDIR", "/tmp"));

    let deps = input.dependencies();
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for s in &deps.secrets {
        let vol = volume_name("secret", s);
        volumes.push(Volume {
            name: vol.clone(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(s.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(read_only_mount(&vol, &format!("{SECRETS_MOUNT_ROOT}/{s}")));
    }
    for c in &deps.config_maps {
        let vol = volume_name("configmap", c);
        volumes.push(Volume {
            name: vol.clone(),
            config_map: Some(ConfigMapVolumeSource {
                name: c.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(read_only_mount(
            &vol,
            &format!("{CONFIGMAPS_MOUNT_ROOT}/{c}"),
        ));
    }
    volumes.push(Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    });
    mounts.push(VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    });

    let container = Container {
        name: CONTAINER_NAME.into(),
        image: Some(wref.execution_bundle.clone()),
        env: Some(env),
        resources: Some(wref.resources.clone().unwrap_or_default()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    };

    let pod = PodSpec {
        restart_policy: Some("Never".into()),
        service_account_name: wref.service_account_name.clone().filter(|s| !s.is_empty()),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        containers: vec![container],
        volumes: Some(volumes),
        ..Default::default()
    };

    Ok(Job {
        metadata: ObjectMeta {
            name: Some(meta.name.clone()),
            namespace: Some(input.namespace.to_string()),
            labels: Some(labels),
            annotations: Some(meta.annotations.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            ttl_seconds_after_finished: Some(TTL_SECONDS_AFTER_FINISHED),
            active_deadline_seconds: Some(deadline),
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![
                    PodFailurePolicyRule {
                        action: "Ignore".into(),
                        on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                            type_: "DisruptionTarget".into(),
                            status: Some("True".into()),
                        }]),
                        ..Default::default()
                    },
                    PodFailurePolicyRule {
                        action: "Ignore".into(),
                        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                            container_name: Some(CONTAINER_NAME.into()),
                            operator: "In".into(),
                            values: vec![OOM_EXIT_CODE],
                        }),
                        ..Default::default()
                    },
                ],
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    })
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn read_only_mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..Default::default()
    }
}

/// `<prefix>-<name>` as a valid volume name (a DNS label: lowercase
/// alphanumerics and `-`, ≤ 63). Secret names may contain dots or be longer,
/// so such names are rewritten and, if needed, shortened with a hash suffix.
fn volume_name(prefix: &str, name: &str) -> String {
    let raw = format!("{prefix}-{name}");
    let valid = raw.len() <= 63
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !raw.ends_with('-');
    if valid {
        return raw;
    }
    let cleaned: String = raw
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let hash = &super::labels::lock_name(&raw)[4..12];
    let head: String = cleaned.chars().take(63 - 9).collect();
    format!("{}-{hash}", head.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{NamedRef, WorkflowDependencies};
    use crate::execute::labels::*;
    use crate::execute::testing::{at, wfe};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn build(w: &crate::api::WorkflowExecution) -> Job {
        job(&BuildInput {
            wfe: w,
            namespace: "kubernaut-workflows",
            now: at("2026-01-01T00:00:00Z"),
        })
        .unwrap()
    }

    fn pod(j: &Job) -> &PodSpec {
        j.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    #[test]
    fn job_shape_matches_the_reference() {
        let w = wfe("restart-api", "team-a", "team-a/Deployment/api");
        let j = build(&w);
        let labels = j.metadata.labels.as_ref().unwrap();
        assert_eq!(
            j.metadata.name.as_deref(),
            Some(lock_name("team-a/Deployment/api").as_str())
        );
        assert_eq!(labels[LABEL_EXECUTION_ENGINE], "job");
        assert_eq!(labels[LABEL_WORKFLOW_EXECUTION], "restart-api");
        assert_eq!(labels[LABEL_SOURCE_NAMESPACE], "team-a");
        let spec = j.spec.as_ref().unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.ttl_seconds_after_finished, Some(600));
        assert_eq!(spec.active_deadline_seconds, Some(1800));
        let rules = &spec.pod_failure_policy.as_ref().unwrap().rules;
        assert_eq!(rules.len(), 2);
        assert!(rules.iter().all(|r| r.action == "Ignore"));
        assert_eq!(rules[1].on_exit_codes.as_ref().unwrap().values, vec![137]);
        let tpl_labels = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(tpl_labels.len(), 3);
        assert_eq!(tpl_labels[LABEL_SOURCE_NAMESPACE], "team-a");
        let p = pod(&j);
        assert_eq!(p.restart_policy.as_deref(), Some("Never"));
        assert_eq!(p.service_account_name, None);
        assert_eq!(
            p.security_context.as_ref().unwrap().run_as_non_root,
            Some(true)
        );
        let c = &p.containers[0];
        assert_eq!(c.name, "workflow");
        assert_eq!(c.image.as_deref(), Some("quay.io/k/restart@sha256:abc"));
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop,
            Some(vec!["ALL".to_string()])
        );
        let mounts = c.volume_mounts.as_ref().unwrap();
        assert!(mounts
            .iter()
            .any(|m| m.name == "tmp" && m.mount_path == "/tmp"));
    }

    #[test]
    fn env_order_target_params_home_tmpdir() {
        let mut w = wfe("w", "ns", "ns/Deployment/a");
        w.spec.parameters = Some(
            [("B", "2"), ("A", "1"), ("TARGET_RESOURCE", "evil")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let j = build(&w);
        let env: Vec<(String, String)> = pod(&j).containers[0]
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.clone(), e.value.clone().unwrap()))
            .collect();
        let expected: Vec<(String, String)> = [
            ("TARGET_RESOURCE", "ns/Deployment/a"),
            ("A", "1"),
            ("B", "2"),
            ("HOME", "/tmp"),
            ("TMPDIR", "/tmp"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(env, expected);
    }

    #[test]
    fn deadline_from_times_out_at_with_minimum() {
        let mut w = wfe("w", "ns", "ns/Deployment/a");
        w.spec.times_out_at = Some(Time(at("2026-01-01T00:10:00.900Z")));
        assert_eq!(build(&w).spec.unwrap().active_deadline_seconds, Some(600));
        w.spec.times_out_at = Some(Time(at("2020-01-01T00:00:00Z")));
        assert_eq!(build(&w).spec.unwrap().active_deadline_seconds, Some(1));
    }

    #[test]
    fn dependency_mounts() {
        let mut w = wfe("w", "ns", "ns/Deployment/a");
        w.spec.workflow_ref.service_account_name = Some("runner".into());
        w.spec.workflow_ref.dependencies = Some(WorkflowDependencies {
            secrets: vec![
                NamedRef {
                    name: "db-creds".into(),
                },
                NamedRef {
                    name: "tls.cert".into(),
                },
            ],
            config_maps: vec![NamedRef { name: "cfg".into() }],
        });
        let j = build(&w);
        let p = pod(&j);
        assert_eq!(p.service_account_name.as_deref(), Some("runner"));
        let vols: Vec<&str> = p
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(vols[0], "secret-db-creds");
        assert!(!vols[1].contains('.'), "{}", vols[1]);
        assert_eq!(vols[2], "configmap-cfg");
        assert_eq!(vols[3], "tmp");
        let mounts = p.containers[0].volume_mounts.as_ref().unwrap();
        assert_eq!(mounts[0].mount_path, "/run/kubernaut/secrets/db-creds");
        assert_eq!(mounts[1].mount_path, "/run/kubernaut/secrets/tls.cert");
        assert_eq!(mounts[2].mount_path, "/run/kubernaut/configmaps/cfg");
        assert!(mounts[..3].iter().all(|m| m.read_only == Some(true)));
    }

    #[test]
    fn volume_names_are_always_dns_labels() {
        for name in ["a.b", &"x".repeat(100), "UPPER", "ok"] {
            let v = volume_name("secret", name);
            assert!(v.len() <= 63, "{v}");
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{v}"
            );
            assert!(!v.ends_with('-') && !v.starts_with('-'), "{v}");
        }
        assert_ne!(volume_name("secret", "a.b"), volume_name("secret", "a-b"));
    }

    #[test]
    fn deterministic_bytes() {
        let mut w = wfe("w", "ns", "ns/Deployment/a");
        w.spec.parameters = Some((0..30).map(|i| (format!("K{i}"), i.to_string())).collect());
        let a = serde_json::to_string(&build(&w)).unwrap();
        assert_eq!(a, serde_json::to_string(&build(&w)).unwrap());
    }
}
