//! `dry-run --expect FILE`: check the records against a golden file (the
//! `expected.yaml` format of `tests/fixtures/captures/`): a map from capture
//! file name (or `file#primaryName` when a file holds several executions) to
//! the record keys and values it must have. A team keeps its own captures
//! and this file as a regression suite.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value};

use super::output::CliError;
use crate::engine::DecisionRecord;
use crate::rules::flow::flow;

pub struct Golden {
    file: String,
    entries: BTreeMap<String, Map<String, Value>>,
    used: BTreeSet<String>,
    problems: Vec<String>,
}

fn base_name(file: &str) -> &str {
    Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(file)
}

impl Golden {
    pub fn load(path: &Path) -> Result<Golden, CliError> {
        let file = path.display().to_string();
        let text = crate::input::read_text(path, crate::observe::MAX_CAPTURE_BYTES)
            .map_err(|e| CliError::Input(e.to_string()))?;
        let entries: BTreeMap<String, Map<String, Value>> =
            serde_yaml::from_str(&text).map_err(|e| {
                CliError::Input(format!(
                    "{file}: not a golden file (a map of capture file name to expected keys): {e}"
                ))
            })?;
        Ok(Golden {
            file,
            entries,
            used: BTreeSet::new(),
            problems: Vec::new(),
        })
    }

    /// Check one record against its entry.
    pub fn check(&mut self, record: &DecisionRecord) {
        let file = base_name(record.file.as_deref().unwrap_or(""));
        let name = record
            .primary
            .as_deref()
            .and_then(|p| p.rsplit('/').next())
            .unwrap_or("");
        let by_primary = format!("{file}#{name}");
        let key = if self.entries.contains_key(&by_primary) {
            by_primary.clone()
        } else {
            file.to_string()
        };
        let Some(want) = self.entries.get(&key) else {
            self.problems.push(format!(
                "+{by_primary}: no entry in {} (a new capture?)",
                self.file
            ));
            return;
        };
        if !self.used.insert(key.clone()) {
            self.problems.push(format!(
                " {key}: several executions match this entry; key them `file#primaryName`"
            ));
            return;
        }
        let got = match serde_json::to_value(record) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for (k, v) in want {
            match got.get(k) {
                None => self
                    .problems
                    .push(format!(" {key}: unknown record key {k:?}")),
                Some(g) if g != v => {
                    self.problems.push(format!(
                        " {key}:\n-  {k}: {}\n+  {k}: {}",
                        flow(v),
                        flow(g)
                    ));
                }
                Some(_) => {}
            }
        }
    }

    /// Every difference (`-` expected, `+` actual), entries no capture used
    /// included; empty when the records match the file.
    pub fn finish(mut self) -> Vec<String> {
        for k in self.entries.keys() {
            if !self.used.contains(k) {
                self.problems
                    .push(format!("-{k}: in {} but no capture matched it", self.file));
            }
        }
        self.problems
    }
}
