//! The locked-down Rhai engine (STUB: being implemented).

#[derive(Debug, Default)]
pub struct Sandbox {}
