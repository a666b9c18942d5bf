//! Observe: pure functions from Kubernetes objects (live or captured) to
//! [`Facts`]. See `docs/facts.md`.

mod facts;

pub use facts::*;
