//! wfe-engine: a rules-driven controller for kubernaut WorkflowExecutions.
//!
//! Data flows one way: `observe` turns Kubernetes objects (live or captured)
//! into [`observe::Facts`]; [`engine::decide`] evaluates a validated
//! [`rules::RuleSet`] over them and returns a [`engine::Decision`]; the
//! controller applies it, the CLI prints it.

pub mod api;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod execute;
pub mod input;
pub mod observe;
pub mod reload;
pub mod rules;
pub mod telemetry;
