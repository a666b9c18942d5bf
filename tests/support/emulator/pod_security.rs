//! Pod Security admission (`k8s.io/pod-security-admission`) for Pods, at
//! the `baseline` or `restricted` level a namespace enforces: the checks a
//! workflow pod commonly fails, with the real message shape
//! `pods "x" is forbidden: violates PodSecurity "restricted:latest": ...`.
//! Workload objects (Jobs) are only warned about by the real plugin, so they
//! pass here.

use serde_json::Value;

/// An enforced level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Baseline,
    Restricted,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

fn containers(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| {
            pod.pointer(&format!("/spec/{k}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .collect()
}

fn name(c: &Value) -> &str {
    c.get("name").and_then(Value::as_str).unwrap_or("")
}

/// `container "a"` / `containers "a", "b"`.
fn which(kind: &str, names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    if names.len() == 1 {
        format!("{kind} {}", quoted[0])
    } else {
        format!("{kind}s {}", quoted.join(", "))
    }
}

fn baseline(pod: &Value, out: &mut Vec<String>) {
    let cs = containers(pod);
    let privileged: Vec<&str> = cs
        .iter()
        .filter(|c| c.pointer("/securityContext/privileged") == Some(&Value::Bool(true)))
        .map(|c| name(c))
        .collect();
    if !privileged.is_empty() {
        out.push(format!(
            "privileged ({} must not set securityContext.privileged=true)",
            which("container", &privileged)
        ));
    }
    let host: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|k| pod.pointer(&format!("/spec/{k}")) == Some(&Value::Bool(true)))
        .map(|k| format!("{k}=true"))
        .collect();
    if !host.is_empty() {
        out.push(format!("host namespaces ({})", host.join(", ")));
    }
    let paths: Vec<&str> = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("hostPath").is_some())
        .map(name)
        .collect();
    if !paths.is_empty() {
        let quoted: Vec<String> = paths.iter().map(|n| format!("{n:?}")).collect();
        let noun = if paths.len() == 1 {
            "volume"
        } else {
            "volumes"
        };
        out.push(format!("hostPath volumes ({noun} {})", quoted.join(", ")));
    }
}

fn restricted(pod: &Value, out: &mut Vec<String>) {
    let cs = containers(pod);
    let pod_sc = pod.pointer("/spec/securityContext");
    let escalating: Vec<&str> = cs
        .iter()
        .filter(|c| {
            c.pointer("/securityContext/allowPrivilegeEscalation") != Some(&Value::Bool(false))
        })
        .map(|c| name(c))
        .collect();
    if !escalating.is_empty() {
        out.push(format!(
            "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
            which("container", &escalating)
        ));
    }
    let caps: Vec<&str> = cs
        .iter()
        .filter(|c| {
            let drops_all = c
                .pointer("/securityContext/capabilities/drop")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|x| x == "ALL"));
            !drops_all
        })
        .map(|c| name(c))
        .collect();
    if !caps.is_empty() {
        out.push(format!(
            "unrestricted capabilities ({} must set securityContext.capabilities.drop=[\"ALL\"])",
            which("container", &caps)
        ));
    }
    let pod_non_root = pod_sc.and_then(|s| s.get("runAsNonRoot")) == Some(&Value::Bool(true));
    let root: Vec<&str> = cs
        .iter()
        .filter(|c| match c.pointer("/securityContext/runAsNonRoot") {
            Some(Value::Bool(b)) => !b,
            _ => !pod_non_root,
        })
        .map(|c| name(c))
        .collect();
    if !root.is_empty() {
        out.push(format!(
            "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
            which("container", &root)
        ));
    }
    let seccomp_ok = |sc: Option<&Value>| {
        matches!(
            sc.and_then(|s| s.pointer("/seccompProfile/type"))
                .and_then(Value::as_str),
            Some("RuntimeDefault" | "Localhost")
        )
    };
    let pod_seccomp = seccomp_ok(pod_sc);
    let no_seccomp: Vec<&str> = cs
        .iter()
        .filter(|c| {
            let own = c.pointer("/securityContext/seccompProfile/type");
            match own {
                Some(_) => !seccomp_ok(c.get("securityContext")),
                None => !pod_seccomp,
            }
        })
        .map(|c| name(c))
        .collect();
    if !no_seccomp.is_empty() {
        out.push(format!(
            "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
            which("container", &no_seccomp)
        ));
    }
}

/// The violations of `pod` at `level`, in the plugin's order; empty when allowed.
pub fn violations(pod: &Value, level: Level) -> Vec<String> {
    let mut out = Vec::new();
    baseline(pod, &mut out);
    if level == Level::Restricted {
        restricted(pod, &mut out);
    }
    out
}
