//! Printing a rule test report: text (default), JUnit XML for CI systems,
//! or JSON.

use std::io::{self, Write};

use crate::engine::rule_tests::TestReport;

/// Output format of `wfe-engine test`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    Text,
    Junit,
    Json,
}

pub fn print(
    out: &mut impl Write,
    r: &TestReport,
    format: TestFormat,
    verbose: bool,
) -> io::Result<()> {
    match format {
        TestFormat::Text => text(out, r, verbose),
        TestFormat::Json => {
            let s = serde_json::to_string_pretty(r).map_err(io::Error::other)?;
            writeln!(out, "{s}")
        }
        TestFormat::Junit => junit(out, r),
    }
}

fn text(out: &mut impl Write, r: &TestReport, verbose: bool) -> io::Result<()> {
    if verbose {
        for c in &r.cases {
            let tag = if c.passed { "PASS" } else { "FAIL" };
            writeln!(out, "{tag} {}:{} {} / {}", c.file, c.line, c.test, c.case)?;
        }
        if !r.failures.is_empty() {
            writeln!(out)?;
        }
    }
    for f in &r.failures {
        writeln!(out, "FAIL {}:{} {} / {}", f.file, f.line, f.test, f.case)?;
        for line in f.diff.lines() {
            writeln!(out, "    {line}")?;
        }
        if let Some(e) = &f.rules_error {
            writeln!(out, "    rules error: {e}")?;
        }
    }
    if r.uncovered.is_empty() {
        writeln!(out, "Every rule was exercised by a test.")?;
    } else {
        writeln!(out, "Rules no test exercised ({}):", r.uncovered.len())?;
        for id in &r.uncovered {
            writeln!(out, "  {}:{} {}", id.file, id.line, id.name)?;
        }
    }
    writeln!(out, "{} passed, {} failed", r.passed, r.failed)
}

/// XML text and attribute escaping.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

fn junit(out: &mut impl Write, r: &TestReport) -> io::Result<()> {
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="wfe-engine test" tests="{}" failures="{}">"#,
        r.passed + r.failed,
        r.failed
    )?;
    let mut suites: Vec<&str> = Vec::new();
    for c in &r.cases {
        if !suites.contains(&c.test.as_str()) {
            suites.push(&c.test);
        }
    }
    for suite in suites {
        let cases: Vec<_> = r.cases.iter().filter(|c| c.test == suite).collect();
        let failed = cases.iter().filter(|c| !c.passed).count();
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}">"#,
            esc(suite),
            cases.len(),
            failed
        )?;
        for c in cases {
            let attrs = format!(
                r#"classname="{}" name="{}" file="{}" line="{}""#,
                esc(&c.file),
                esc(&c.case),
                esc(&c.file),
                c.line
            );
            let failure = r
                .failures
                .iter()
                .find(|f| f.file == c.file && f.line == c.line && f.case == c.case);
            match failure {
                None => writeln!(out, "    <testcase {attrs}/>")?,
                Some(f) => {
                    let mut body = f.diff.clone();
                    if let Some(e) = &f.rules_error {
                        body.push_str(&format!("rules error: {e}\n"));
                    }
                    let first = f
                        .diff
                        .lines()
                        .find(|l| l.starts_with('-') && !l.starts_with("---"));
                    writeln!(out, "    <testcase {attrs}>")?;
                    writeln!(
                        out,
                        r#"      <failure message="{}">{}</failure>"#,
                        esc(first.unwrap_or("expectation failed")),
                        esc(&body)
                    )?;
                    writeln!(out, "    </testcase>")?;
                }
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}
