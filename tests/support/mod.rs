//! Test support shared by the integration tests: the Kubernetes API
//! emulator and the Tekton/Job execution simulator. Include it with
//! `mod support;` from a file directly under `tests/`.
#![allow(dead_code, unused_imports)]

pub mod emulator;
pub mod simulator;

pub use emulator::{Emulator, EmulatorBuilder, FaultRule, Quota, Verb, WebhookDenial};
