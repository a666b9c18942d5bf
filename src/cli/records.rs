//! Printing decision records as they are decided: JSON lines, a YAML list,
//! or a table that fits 120 columns (`-o wide`: every value whole).

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use super::table::{Column, Cut, Table};
use crate::engine::replay::NowSource;
use crate::engine::{Decision, DecisionRecord};

/// Output format of record-printing commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Wide,
    Yaml,
    Json,
}

/// One decided input.
pub struct Row<'a> {
    pub record: &'a DecisionRecord,
    pub decision: &'a Decision,
    pub now_source: NowSource,
    /// `--facts`: every fact path with its value.
    pub facts: Option<&'a [(&'static str, Value)]>,
}

/// A record as printed (serialized in field order, unlike a JSON map).
#[derive(serde::Serialize)]
struct Printed<'a> {
    #[serde(flatten)]
    record: &'a DecisionRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    facts: Option<Map<String, Value>>,
}

/// The evaluation instants seen so far, for the footer.
#[derive(Default)]
struct Nows {
    first: Option<(String, NowSource)>,
    mixed: bool,
}

/// Streams rows in one format.
pub struct Printer {
    format: Format,
    explain: bool,
    table: Table,
    nows: Nows,
    rows: usize,
}

fn columns(wide: bool) -> Vec<Column> {
    let c = |header, width, cut| Column { header, width, cut };
    let mut cols = vec![
        c("SOURCE", 28, Cut::Start),
        c("OUTCOME", 9, Cut::End),
        c("REASON", 18, Cut::End),
        c("EXEC-FAIL", 9, Cut::End),
        c("FAILED TASK", 14, Cut::End),
        c("EXIT", 4, Cut::End),
        c("PHASE", 9, Cut::End),
        c("RULE", 15, Cut::End),
    ];
    if wide {
        cols.push(c("NOW", 20, Cut::End));
    }
    cols
}

fn cell<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |x| x.to_string())
}

/// `name` of a `file#name` rule id (the table has no room for the file).
fn rule_name(id: &str) -> &str {
    id.rsplit_once('#').map_or(id, |(_, n)| n)
}

pub fn trace_json(d: &Decision) -> Value {
    json!(d
        .trace
        .iter()
        .map(|t| json!({
            "rule": t.rule.to_string(),
            "at": format!("{}:{}", t.rule.file, t.rule.line),
            "stage": t.stage,
            "matched": t.matched,
            "note": t.note,
        }))
        .collect::<Vec<_>>())
}

impl Printer {
    pub fn new(format: Format, explain: bool, headers: bool) -> Printer {
        let wide = format == Format::Wide;
        Printer {
            format,
            explain,
            table: Table::new(columns(wide), wide, headers),
            nows: Nows::default(),
            rows: 0,
        }
    }

    pub fn begin(&mut self, out: &mut impl Write) -> io::Result<()> {
        match self.format {
            Format::Table | Format::Wide => self.table.header(out),
            _ => Ok(()),
        }
    }

    /// The record with `trace` and `facts` after its keys, in order.
    fn value<'r>(&self, row: &'r Row<'_>) -> Printed<'r> {
        Printed {
            record: row.record,
            trace: self.explain.then(|| trace_json(row.decision)),
            facts: row.facts.map(|f| {
                f.iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect::<Map<String, Value>>()
            }),
        }
    }

    pub fn row(&mut self, out: &mut impl Write, row: &Row<'_>) -> io::Result<()> {
        self.rows += 1;
        let now = (row.record.now.clone(), row.now_source);
        match &self.nows.first {
            None => self.nows.first = Some(now),
            Some(first) if *first != now => self.nows.mixed = true,
            Some(_) => {}
        }
        match self.format {
            Format::Json => {
                let line = serde_json::to_string(&self.value(row)).map_err(io::Error::other)?;
                writeln!(out, "{line}")?;
            }
            Format::Yaml => {
                let text = serde_yaml::to_string(&[self.value(row)]).map_err(io::Error::other)?;
                write!(out, "{text}")?;
            }
            Format::Table | Format::Wide => self.table_row(out, row)?,
        }
        out.flush()
    }

    fn table_row(&self, out: &mut impl Write, row: &Row<'_>) -> io::Result<()> {
        let r = row.record;
        let wide = self.table.is_wide();
        // The pipeline task names a Tekton task best; `-o wide` adds the TaskRun.
        let task = match (&r.failed_pipeline_task, &r.failed_task_name) {
            (_, None) => "-".to_string(),
            (Some(p), Some(n)) if wide => format!("{p} ({n}#{})", cell(r.failed_task_index)),
            (Some(p), Some(_)) => format!("{p}#{}", cell(r.failed_task_index)),
            (None, Some(n)) => format!("{n}#{}", cell(r.failed_task_index)),
        };
        let rule = match &r.rule {
            Some(id) if !wide => rule_name(id).to_string(),
            other => cell(other.clone()),
        };
        let mut cells = vec![
            r.file.clone().unwrap_or_default(),
            cell(r.outcome.clone()),
            cell(r.reason.clone()),
            cell(r.was_execution_failure),
            task,
            cell(r.exit_code),
            r.phase.clone(),
            rule,
        ];
        if wide {
            cells.push(r.now.clone());
        }
        self.table.row(out, &cells)?;
        if let Some(h) = &r.hold {
            self.table.note(
                out,
                "held",
                &format!(
                    "{} until {}",
                    h.reason,
                    h.until.as_deref().unwrap_or("the facts change")
                ),
            )?;
        }
        if let Some(m) = r.message.as_ref().filter(|m| !m.is_empty()) {
            self.table.note(out, "message", m)?;
        }
        if let Some(e) = &r.rules_error {
            self.table.note(out, "rules error", e)?;
        }
        if let Some(facts) = row.facts {
            for (k, v) in facts {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                self.table.note(out, &format!("fact {k}"), &text)?;
            }
        }
        if self.explain {
            for t in &row.decision.trace {
                let line = format!(
                    "{} {}:{} {} ({}){}",
                    if t.matched { "✓" } else { "·" },
                    t.rule.file,
                    t.rule.line,
                    t.rule.name,
                    t.stage,
                    t.note
                        .as_ref()
                        .map(|n| format!(" — {n}"))
                        .unwrap_or_default()
                );
                writeln!(out, "    {line}")?;
            }
            if let Some(s) = &r.summary {
                for l in s.lines() {
                    writeln!(out, "    | {l}")?;
                }
            }
        }
        Ok(())
    }

    /// The footer of a table: the rules revision and where `now` came from.
    pub fn end(&mut self, out: &mut impl Write, revision: &str, headers: bool) -> io::Result<()> {
        if !matches!(self.format, Format::Table | Format::Wide) || !headers {
            return Ok(());
        }
        writeln!(out, "rules revision {revision}")?;
        match (&self.nows.first, self.nows.mixed) {
            (Some((t, src)), false) => writeln!(out, "evaluated at {t} ({})", src.describe())?,
            (Some(_), true) => writeln!(
                out,
                "evaluated at each input's own instant (-o wide or -o json shows it)"
            )?,
            (None, _) => {}
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_fits_120_columns() {
        let t = Table::new(columns(false), false, true);
        assert!(t.width() <= super::super::table::MAX_WIDTH, "{}", t.width());
    }
}
