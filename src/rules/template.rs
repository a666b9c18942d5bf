//! Message templates: text with `{fact.path}` placeholders (resolved against
//! the catalogue at load time; `{wfe.labels[team]}` reads one entry of a map
//! fact, `{execution.reason|Pending}` gives the text to write when the fact
//! is null or empty), `{{` / `}}` for literal braces, or the map form
//! `{expr: "<rhai expression>"}`.

use std::sync::Arc;

use super::catalog::{Fact, FactRef, FactRefError};
use super::diag::{did_you_mean, Diags};
use super::error::EvalError;
use super::sandbox::{Sandbox, Script};
use super::value::FactLookup;
use super::yaml::{Kind, Node};

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// A fact and the text written when it is null or empty.
    Fact(FactRef, Option<String>),
}

#[derive(Debug, Clone)]
enum Body {
    Parts(Vec<Part>),
    Expr(Arc<Script>),
}

/// What is wrong with a template's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed `{{` at offset {0} (write `{{{{` for a literal brace)")]
    Unclosed(usize),
    #[error("unmatched `}}` at offset {0} (write `}}}}` for a literal brace)")]
    Unmatched(usize),
    #[error("unknown fact `{{{path}}}` in template{hint}")]
    UnknownFact { path: String, hint: String },
    #[error("in template: {0}")]
    Entry(#[source] FactRefError),
}

#[derive(Debug, Clone)]
pub struct Template {
    body: Body,
}

impl Template {
    /// A template without placeholders.
    pub fn literal(text: &str) -> Template {
        Template {
            body: Body::Parts(vec![Part::Text(text.to_string())]),
        }
    }

    /// Parse the text form; the error says what is wrong (unknown fact, unclosed brace).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(TemplateError::Unclosed(i));
                    };
                    let inner = &rest[..end];
                    let (path, fallback) = match inner.split_once('|') {
                        Some((p, f)) => (p.trim(), Some(f.to_string())),
                        None => (inner.trim(), None),
                    };
                    let fact = match FactRef::parse(path) {
                        Some(Ok(f)) => f,
                        Some(Err(problem)) => return Err(TemplateError::Entry(problem)),
                        None => {
                            let base = path.split('[').next().unwrap_or(path);
                            let hint = did_you_mean(base, Fact::ALL.iter().map(|f| f.path()));
                            return Err(TemplateError::UnknownFact {
                                path: path.to_string(),
                                hint,
                            });
                        }
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Fact(fact, fallback));
                    for _ in 0..rest[..=end].chars().count() {
                        chars.next();
                    }
                }
                '}' => return Err(TemplateError::Unmatched(i)),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Template {
            body: Body::Parts(parts),
        })
    }

    /// Compile a template node: a string, or `{expr: "..."}`.
    pub(crate) fn compile(node: &Node, sandbox: &Sandbox, diags: &mut Diags) -> Option<Template> {
        match &node.kind {
            Kind::Str(s) => match Template::parse(s) {
                Ok(t) => Some(t),
                Err(e) => {
                    diags.error(node.pos, e.to_string());
                    None
                }
            },
            Kind::Map(entries) => {
                let Some(src_node) = node.get("expr").filter(|_| entries.len() == 1) else {
                    diags.error(
                        node.pos,
                        "a template is a string or a map with only `expr: \"<rhai expression>\"`",
                    );
                    return None;
                };
                let Some(src) = src_node.as_str() else {
                    diags.error(
                        src_node.pos,
                        format!("`expr` takes a string, got {}", src_node.type_name()),
                    );
                    return None;
                };
                match sandbox.compile_expr(src) {
                    Ok(s) => Some(Template {
                        body: Body::Expr(Arc::new(s)),
                    }),
                    Err(e) => {
                        diags.script_error(src_node, &e);
                        None
                    }
                }
            }
            // A number or boolean written as a message is plain text.
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => Some(Template::literal(&node.short())),
            _ => {
                diags.error(
                    node.pos,
                    format!("a template is a string, got {}", node.type_name()),
                );
                None
            }
        }
    }

    /// The text of a template without placeholders or expression (rendered
    /// without work or allocation).
    pub fn as_literal(&self) -> Option<&str> {
        match &self.body {
            Body::Parts(parts) => match parts.as_slice() {
                [] => Some(""),
                [Part::Text(t)] => Some(t.as_str()),
                _ => None,
            },
            Body::Expr(_) => None,
        }
    }

    /// Facts the template reads.
    pub fn facts(&self) -> Vec<Fact> {
        match &self.body {
            Body::Parts(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    Part::Fact(f, _) => Some(f.fact),
                    Part::Text(_) => None,
                })
                .collect(),
            Body::Expr(s) => s.facts().to_vec(),
        }
    }

    /// Render; null or empty placeholders render as "".
    pub fn render(&self, facts: &dyn FactLookup, sandbox: &Sandbox) -> Result<String, EvalError> {
        Ok(self.render_inner(facts, sandbox)?.0)
    }

    /// Render a summary line: `None` when the template has placeholders and
    /// all of them are empty (the line is left out), or an `expr` returned "".
    pub fn render_line(
        &self,
        facts: &dyn FactLookup,
        sandbox: &Sandbox,
    ) -> Result<Option<String>, EvalError> {
        let (text, placeholders, filled) = self.render_inner(facts, sandbox)?;
        Ok(if placeholders > 0 && filled == 0 {
            None
        } else {
            Some(text)
        })
    }

    fn render_inner(
        &self,
        facts: &dyn FactLookup,
        sandbox: &Sandbox,
    ) -> Result<(String, usize, usize), EvalError> {
        match &self.body {
            Body::Expr(script) => {
                let s = sandbox.eval_string(script, facts)?;
                let filled = usize::from(!s.is_empty());
                Ok((s, 1, filled))
            }
            Body::Parts(parts) => {
                let mut out = String::new();
                let (mut placeholders, mut filled) = (0, 0);
                for p in parts {
                    match p {
                        Part::Text(t) => out.push_str(t),
                        Part::Fact(f, fallback) => {
                            placeholders += 1;
                            match (facts.fact_ref(f).render(), fallback) {
                                (Some(v), _) => {
                                    filled += 1;
                                    out.push_str(&v);
                                }
                                (None, Some(text)) => out.push_str(text),
                                (None, None) => {}
                            }
                        }
                    }
                }
                Ok((out, placeholders, filled))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::value::FactValue;

    struct F;
    impl FactLookup for F {
        fn fact(&self, fact: Fact) -> FactValue<'_> {
            match fact {
                Fact::WfeName => FactValue::Str("wfe-1"),
                Fact::ExecExitCode => FactValue::Int(137),
                _ => FactValue::Null,
            }
        }
    }

    #[test]
    fn placeholders_and_escapes() {
        let sb = Sandbox::default();
        let t = Template::parse("{wfe.name} exited {execution.exitCode} {{x}} é").unwrap();
        assert_eq!(t.render(&F, &sb).unwrap(), "wfe-1 exited 137 {x} é");
        assert_eq!(t.facts(), vec![Fact::WfeName, Fact::ExecExitCode]);
    }

    #[test]
    fn empty_lines_are_left_out() {
        let sb = Sandbox::default();
        let t = Template::parse("Failed task: {execution.failedTaskName}").unwrap();
        assert_eq!(t.render_line(&F, &sb).unwrap(), None);
        assert_eq!(t.render(&F, &sb).unwrap(), "Failed task: ");
        let t = Template::parse("no placeholders").unwrap();
        assert_eq!(
            t.render_line(&F, &sb).unwrap().as_deref(),
            Some("no placeholders")
        );
    }

    #[test]
    fn map_entries_and_fallbacks() {
        struct M(std::collections::BTreeMap<String, String>);
        impl FactLookup for M {
            fn fact(&self, fact: Fact) -> FactValue<'_> {
                match fact {
                    Fact::WfeLabels => FactValue::StrMap(&self.0),
                    _ => FactValue::Null,
                }
            }
        }
        let m = M([("team".to_string(), "payments".to_string())].into());
        let sb = Sandbox::default();
        let t = Template::parse(
            "{wfe.labels[team]}/{wfe.labels[tier]|none} {execution.reason|Pending}",
        )
        .unwrap();
        assert_eq!(t.render(&m, &sb).unwrap(), "payments/none Pending");
        assert!(Template::parse("{wfe.name[x]}")
            .unwrap_err()
            .to_string()
            .contains("not a map"));
    }

    #[test]
    fn bad_templates() {
        assert!(Template::parse("{wfe.nam}")
            .unwrap_err()
            .to_string()
            .contains("did you mean `wfe.name`"));
        assert!(Template::parse("{wfe.name")
            .unwrap_err()
            .to_string()
            .contains("unclosed"));
        assert!(Template::parse("a } b")
            .unwrap_err()
            .to_string()
            .contains("unmatched"));
    }

    #[test]
    fn expression_form() {
        let sb = Sandbox::default();
        let node = crate::rules::yaml::parse_documents("expr: '`exit ${execution.exitCode}`'")
            .unwrap()
            .remove(0);
        let mut d = Diags::new("t.yaml");
        let t = Template::compile(&node, &sb, &mut d).unwrap();
        assert_eq!(t.render(&F, &sb).unwrap(), "exit 137");
    }
}
