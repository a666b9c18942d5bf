//! Where the rules come from: a directory watched on disk, or one ConfigMap
//! read through the API. The reloader asks its source for a [`Snapshot`]
//! (content fingerprint + what to load) and hands the outcome back, so the
//! gate, the swap and the status are the same for both.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::rules::{load_dir, load_sources, LoadErrors, RuleSet, SourceFile};

use super::fingerprint::Fingerprint;

/// Where the reloader takes rule sets from.
#[derive(Clone, Debug)]
pub enum RulesSource {
    /// A rules directory (a mounted ConfigMap volume, a GitOps checkout),
    /// watched with notify.
    Directory(PathBuf),
    /// One ConfigMap, watched through the API; each outcome is also
    /// reported as an Event on it.
    ConfigMap(ConfigMapSource),
}

impl RulesSource {
    /// For logs: `directory /etc/rules` or `configmap ns/name`.
    pub fn describe(&self) -> String {
        match self {
            RulesSource::Directory(d) => format!("directory {}", d.display()),
            RulesSource::ConfigMap(c) => format!("configmap {}", c.target),
        }
    }
}

/// A rules ConfigMap and how to reach it.
#[derive(Clone)]
pub struct ConfigMapSource {
    pub client: kube::Client,
    pub target: ConfigMapRef,
    /// `reportingInstance` of the Events (the pod name in a cluster).
    pub instance: String,
}

impl fmt::Debug for ConfigMapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigMapSource")
            .field("target", &self.target)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// `NAMESPACE/NAME` of a ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigMapRef {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ConfigMapRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Why a `NAMESPACE/NAME` does not name a ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigMapRefError {
    #[error("{0:?} is not NAMESPACE/NAME")]
    Shape(String),
    #[error("namespace {0:?} is not a valid namespace name (lowercase letters, digits and '-', at most 63)")]
    Namespace(String),
    #[error(
        "{0:?} is not a valid ConfigMap name (lowercase letters, digits, '-' and '.', at most 253)"
    )]
    Name(String),
}

impl FromStr for ConfigMapRef {
    type Err = ConfigMapRefError;

    fn from_str(s: &str) -> Result<Self, ConfigMapRefError> {
        let Some((namespace, name)) = s.split_once('/') else {
            return Err(ConfigMapRefError::Shape(s.to_string()));
        };
        if !is_dns_label(namespace) {
            return Err(ConfigMapRefError::Namespace(namespace.to_string()));
        }
        if !is_dns_subdomain(name) {
            return Err(ConfigMapRefError::Name(name.to_string()));
        }
        Ok(ConfigMapRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

/// RFC 1123 label, as the API server checks namespace names.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// RFC 1123 subdomain, as the API server checks most object names.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The identity of the ConfigMap content a snapshot was taken from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub uid: String,
    pub resource_version: String,
}

/// What to load: a directory on disk, or files already in memory.
#[derive(Clone, Debug)]
pub(crate) enum Candidate {
    Dir(PathBuf),
    Files(Vec<SourceFile>),
}

impl Candidate {
    /// Load and validate the whole set (no rule tests).
    pub fn load(self) -> Result<RuleSet, LoadErrors> {
        match self {
            Candidate::Dir(dir) => load_dir(&dir),
            Candidate::Files(files) => load_sources(files),
        }
    }

    pub fn dir(path: &Path) -> Candidate {
        Candidate::Dir(path.to_path_buf())
    }
}

/// The content the source holds now.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    pub fingerprint: Fingerprint,
    pub candidate: Candidate,
    /// Set for a ConfigMap: where the outcome is reported.
    pub origin: Option<Origin>,
}

/// Why there is no content to look at.
#[derive(Clone, Debug)]
pub(crate) struct NoSnapshot {
    pub message: String,
    /// The source was looked at and holds nothing (a missing directory or
    /// ConfigMap), rather than not read yet.
    pub known: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespace_and_name() {
        let r: ConfigMapRef = "wfe-engine/wfe-engine-rules".parse().unwrap();
        assert_eq!(r.namespace, "wfe-engine");
        assert_eq!(r.name, "wfe-engine-rules");
        assert_eq!(r.to_string(), "wfe-engine/wfe-engine-rules");
        let dotted: ConfigMapRef = "ns/rules.v2".parse().unwrap();
        assert_eq!(dotted.name, "rules.v2");
    }

    #[test]
    fn refuses_what_the_api_server_would_refuse() {
        for bad in [
            "rules",
            "/rules",
            "ns/",
            "Ns/rules",
            "ns/Rules",
            "ns/a/b",
            "-ns/rules",
            "ns/rules-",
            "ns/a..b",
            "ns/rules_1",
        ] {
            assert!(bad.parse::<ConfigMapRef>().is_err(), "{bad} accepted");
        }
        let long = format!("ns/{}", "a".repeat(254));
        assert!(long.parse::<ConfigMapRef>().is_err());
        let err = "rules".parse::<ConfigMapRef>().unwrap_err();
        assert!(err.to_string().contains("NAMESPACE/NAME"), "{err}");
    }
}
