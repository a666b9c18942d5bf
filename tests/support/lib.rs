//! Test support shared by the integration tests and the benches, as one
//! workspace-internal crate (`wfe-test-support`, imported as `support`):
//!
//! - [`emulator`]: the Kubernetes API emulator (real HTTP, real watches);
//! - [`simulator`]: Tekton's and the Job controller's behaviour;
//! - [`harness`]: a controller running against both, with helpers;
//! - [`bin`]: running the real `wfe-engine` binary as a child process;
//! - [`hostile`]: running it on hostile input and measuring the cost;
//! - [`atomic_writer`]: the kubelet's atomic writer, for reload tests;
//! - [`bench_stats`]: percentiles and timing for the benches;
//! - [`rules_configmap`]: the rules ConfigMap, applied as kubectl does, and its Events.
//!
//! See `README.md` beside this file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod atomic_writer;
pub mod bench_stats;
pub mod bin;
pub mod emulator;
pub mod harness;
pub mod hostile;
pub mod rules_configmap;
pub mod simulator;

use std::path::PathBuf;

pub use emulator::{Emulator, EmulatorBuilder, FaultRule, Quota, Verb, WebhookDenial};

/// The repository's root (where `rules/` and `tests/fixtures/` are).
pub fn repo_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
