//! `--rules DIR`: a rules directory, or the shipped rules built into the binary.

use std::path::PathBuf;

use crate::rules::{self, LoadErrors, RuleSet};

#[derive(clap::Args, Debug, Clone)]
pub struct RulesArg {
    /// Rules directory (default: the shipped rules built into the binary).
    #[arg(long, env = "WFE_RULES", value_name = "DIR")]
    pub rules: Option<PathBuf>,
}

impl RulesArg {
    /// Where the rules come from, for messages.
    pub fn describe(&self) -> String {
        match &self.rules {
            Some(p) => p.display().to_string(),
            None => "built-in rules".to_string(),
        }
    }

    /// Load the set. `Err(Ok(msg))` is an input error (exit 2), `Err(Err(e))`
    /// invalid rules (exit 1).
    pub fn load(&self) -> Result<RuleSet, Result<String, LoadErrors>> {
        match &self.rules {
            None => rules::load_sources(rules::embedded::sources()).map_err(Err),
            Some(p) if !p.is_dir() => Err(Ok(format!(
                "rules directory {} does not exist or is not a directory",
                p.display()
            ))),
            Some(p) => rules::load_dir(p).map_err(Err),
        }
    }
}

impl RulesArg {
    /// Load the set for a command: a missing directory is an input error
    /// (exit 2), invalid rules a failure (exit 1).
    pub fn load_cli(&self) -> Result<RuleSet, super::output::CliError> {
        use super::output::CliError;
        self.load().map_err(|e| match e {
            Ok(msg) => CliError::Input(msg),
            Err(errors) => CliError::Rules {
                source: self.describe(),
                errors,
            },
        })
    }
}
