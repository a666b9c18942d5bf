//! Loading a rules directory (STUB: being implemented).

use std::path::Path;

use super::error::LoadErrors;
use super::model::RuleSet;

pub const MAX_FILE_BYTES: usize = 256 * 1024;
pub const MAX_SET_BYTES: usize = 1024 * 1024;

/// A rules file held in memory.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub content: Vec<u8>,
}

pub fn load_dir(_dir: &Path) -> Result<RuleSet, LoadErrors> {
    Err(LoadErrors(vec![]))
}

pub fn load_sources(_files: Vec<SourceFile>) -> Result<RuleSet, LoadErrors> {
    Err(LoadErrors(vec![]))
}
