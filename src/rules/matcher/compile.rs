//! Compiling a YAML matcher: every key resolved against the catalogue, every
//! literal checked against the fact's type, every problem recorded with its
//! position.

use super::tree::{Cmp, Key, Lit, MNode, Matcher, Op, Subject};
use crate::rules::catalog::{AttemptField, EvidenceField, Fact, FactRef, FactRefError, FactType};
use crate::rules::diag::{did_you_mean, Diags};
use crate::rules::sandbox::Sandbox;
use crate::rules::yaml::{Kind, Node};

impl Matcher {
    /// Compile a YAML matcher. Problems are recorded in `diags`; `None` when there was any.
    pub(crate) fn compile(
        node: &Node,
        ctx: Subject,
        sandbox: &Sandbox,
        diags: &mut Diags,
    ) -> Option<Matcher> {
        let before = diags.errors.len();
        let mut c = Compiler {
            sandbox,
            diags,
            facts: Vec::new(),
        };
        let root = c.matcher(node, ctx);
        let facts = c.facts;
        match root {
            Some(root) if diags.errors.len() == before => Some(Matcher { root, facts }),
            _ => None,
        }
    }
}

const OPS: &[&str] = &[
    "equals",
    "notEquals",
    "in",
    "notIn",
    "exists",
    "contains",
    "notContains",
    "containsAny",
    "startsWith",
    "word",
    "matches",
    "gt",
    "gte",
    "lt",
    "lte",
    "some",
    "none",
];

const COMBINATORS: &[&str] = &["all", "any", "not", "expr"];

fn type_name(t: FactType) -> &'static str {
    match t {
        FactType::Bool => "Bool",
        FactType::Int => "Int",
        FactType::Str => "Str",
        FactType::Time => "Time",
        FactType::StrList => "StrList",
        FactType::EvidenceList => "EvidenceList",
        FactType::AttemptList => "AttemptList",
        FactType::StrMap => "StrMap",
    }
}

struct Compiler<'a> {
    sandbox: &'a Sandbox,
    diags: &'a mut Diags,
    facts: Vec<Fact>,
}

fn paths(ctx: Subject) -> Vec<&'static str> {
    match ctx {
        Subject::Facts => Fact::ALL.iter().map(|f| f.path()).collect(),
        Subject::Evidence => EvidenceField::ALL.iter().map(|f| f.path()).collect(),
        Subject::Attempt => AttemptField::ALL.iter().map(|f| f.path()).collect(),
    }
}

/// The key a path names; `Some(Err)` for a fact with a bad `[key]` subscript.
fn resolve(path: &str, ctx: Subject) -> Option<Result<(Key, FactType), FactRefError>> {
    match ctx {
        Subject::Facts => FactRef::parse(path).map(|r| r.map(|f| (Key::Fact(f.clone()), f.ty()))),
        Subject::Evidence => EvidenceField::from_path(path).map(|f| Ok((Key::Evidence(f), f.ty()))),
        Subject::Attempt => AttemptField::from_path(path).map(|f| Ok((Key::Attempt(f), f.ty()))),
    }
}

fn ctx_name(ctx: Subject) -> &'static str {
    match ctx {
        Subject::Facts => "fact",
        Subject::Evidence => "evidence field",
        Subject::Attempt => "attempt field",
    }
}

impl Compiler<'_> {
    fn matcher(&mut self, node: &Node, ctx: Subject) -> Option<MNode> {
        let Some(entries) = node.as_map() else {
            let hint = if node.as_str().is_some() && ctx == Subject::Facts {
                "; for a Rhai expression write `expr: \"...\"`"
            } else {
                ""
            };
            self.diags.error(
                node.pos,
                format!(
                    "a matcher is a map of tests, got {}{hint}",
                    node.type_name()
                ),
            );
            return None;
        };
        let mut out = Vec::with_capacity(entries.len());
        let mut ok = true;
        for (k, v) in entries {
            match self.entry(k, v, ctx) {
                Some(n) => out.push(n),
                None => ok = false,
            }
        }
        ok.then_some(if out.len() == 1 {
            out.remove(0)
        } else {
            MNode::All(out)
        })
    }

    fn matcher_list(&mut self, node: &Node, ctx: Subject, what: &str) -> Option<Vec<MNode>> {
        let Kind::Seq(items) = &node.kind else {
            self.diags.error(
                node.pos,
                format!(
                    "`{what}` takes a list of matchers, got {}",
                    node.type_name()
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            match self.matcher(item, ctx) {
                Some(n) => out.push(n),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn entry(&mut self, key: &Node, val: &Node, ctx: Subject) -> Option<MNode> {
        let Some(name) = key.as_str() else {
            self.diags.error(
                key.pos,
                format!("matcher keys are strings, got {}", key.short()),
            );
            return None;
        };
        match name {
            "all" => self.matcher_list(val, ctx, "all").map(MNode::All),
            "any" => self.matcher_list(val, ctx, "any").map(MNode::Any),
            "not" => self.matcher(val, ctx).map(|m| MNode::Not(Box::new(m))),
            "expr" => {
                if ctx != Subject::Facts {
                    self.diags.error(
                        key.pos,
                        "`expr:` is only allowed where facts are matched, not on list items",
                    );
                    return None;
                }
                let Some(src) = val.as_str() else {
                    self.diags.error(
                        val.pos,
                        format!(
                            "`expr` takes a Rhai expression string, got {}",
                            val.type_name()
                        ),
                    );
                    return None;
                };
                match self.sandbox.compile_expr(src) {
                    Ok(script) => {
                        for f in script.facts() {
                            if !self.facts.contains(f) {
                                self.facts.push(*f);
                            }
                        }
                        Some(MNode::Expr(Box::new(script)))
                    }
                    Err(e) => {
                        self.diags.script_error(val, &e);
                        None
                    }
                }
            }
            path => {
                let resolved = match resolve(path, ctx) {
                    Some(Err(problem)) => {
                        self.diags.error(key.pos, problem.to_string());
                        return None;
                    }
                    Some(Ok(r)) => Some(r),
                    None => None,
                };
                let Some((key_id, ty)) = resolved else {
                    let mut candidates = paths(ctx);
                    candidates.extend_from_slice(COMBINATORS);
                    let hint = did_you_mean(path, candidates);
                    let hint = if hint.is_empty() && ctx == Subject::Facts && OPS.contains(&path) {
                        format!(" (`{path}` is an operator: put it under a fact, e.g. `execution.reason: {{{path}: ...}}`)")
                    } else {
                        hint
                    };
                    self.diags
                        .error(key.pos, format!("unknown {} `{path}`{hint}", ctx_name(ctx)));
                    return None;
                };
                if let Key::Fact(f) = &key_id {
                    if !self.facts.contains(&f.fact) {
                        self.facts.push(f.fact);
                    }
                }
                self.test(key_id, ty, val)
            }
        }
    }

    /// A test on one value: scalar (equals), list (in) or a map of operators.
    fn test(&mut self, key: Key, ty: FactType, val: &Node) -> Option<MNode> {
        let ops = match &val.kind {
            Kind::Map(entries) => {
                let mut ops = Vec::new();
                let mut ok = true;
                for (k, v) in entries {
                    match self.op(&key, ty, k, v) {
                        Some(op) => ops.push(op),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                if ops.is_empty() {
                    self.diags
                        .error(val.pos, format!("empty test for `{}`", key.path()));
                    return None;
                }
                ops
            }
            Kind::Seq(_) => vec![Op::In(self.lits(&key, ty, val, "in")?)],
            _ => vec![Op::Equals(self.lit(&key, ty, val, "equals")?)],
        };
        Some(MNode::Test(key, ops))
    }

    fn lit(&mut self, key: &Key, ty: FactType, n: &Node, op: &str) -> Option<Lit> {
        let lit = match (&n.kind, ty) {
            (Kind::Null, _) => Some(Lit::Null),
            (Kind::Bool(b), FactType::Bool) => Some(Lit::Bool(*b)),
            (Kind::Int(i), FactType::Int) => Some(Lit::Int(*i)),
            (Kind::Str(s), FactType::Str) => Some(Lit::Str(s.clone())),
            _ => None,
        };
        if lit.is_none() {
            let want = match ty {
                FactType::Bool => "true or false",
                FactType::Int => "an integer",
                FactType::Str => "a string",
                FactType::Time
                | FactType::StrList
                | FactType::EvidenceList
                | FactType::AttemptList
                | FactType::StrMap => "null (use `exists`, `some`, `contains` for this type)",
            };
            let quote = if ty == FactType::Str
                && matches!(n.kind, Kind::Int(_) | Kind::Float(_) | Kind::Bool(_))
            {
                "; quote it to compare as text"
            } else {
                ""
            };
            self.diags.error(
                n.pos,
                format!(
                    "`{}` is {} {}: `{op}` needs {want}, got {}{quote}",
                    key.path(),
                    article(ty),
                    type_name(ty),
                    n.short()
                ),
            );
        }
        lit
    }

    fn lits(&mut self, key: &Key, ty: FactType, n: &Node, op: &str) -> Option<Vec<Lit>> {
        let Kind::Seq(items) = &n.kind else {
            self.diags
                .error(n.pos, format!("`{op}` takes a list, got {}", n.type_name()));
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            match self.lit(key, ty, item, op) {
                Some(l) => out.push(l),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn string(&mut self, n: &Node, op: &str) -> Option<String> {
        match n.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.diags
                    .error(n.pos, format!("`{op}` takes a string, got {}", n.short()));
                None
            }
        }
    }

    fn require(
        &mut self,
        key: &Key,
        ty: FactType,
        n: &Node,
        op: &str,
        allowed: &[FactType],
    ) -> Option<()> {
        if allowed.contains(&ty) {
            return Some(());
        }
        let names: Vec<&str> = allowed.iter().map(|t| type_name(*t)).collect();
        self.diags.error(
            n.pos,
            format!(
                "`{op}` does not apply to `{}` ({}); it works on {}",
                key.path(),
                type_name(ty),
                names.join(", ")
            ),
        );
        None
    }

    fn op(&mut self, key: &Key, ty: FactType, k: &Node, v: &Node) -> Option<Op> {
        use FactType as T;
        let Some(name) = k.as_str() else {
            self.diags.error(
                k.pos,
                format!("operator names are strings, got {}", k.short()),
            );
            return None;
        };
        let scalar = [
            T::Bool,
            T::Int,
            T::Str,
            T::Time,
            T::StrList,
            T::EvidenceList,
            T::AttemptList,
            T::StrMap,
        ];
        match name {
            "equals" => Some(Op::Equals(self.lit(key, ty, v, name)?)),
            "notEquals" => Some(Op::NotEquals(self.lit(key, ty, v, name)?)),
            "in" => Some(Op::In(self.lits(key, ty, v, name)?)),
            "notIn" => Some(Op::NotIn(self.lits(key, ty, v, name)?)),
            "exists" => {
                self.require(key, ty, k, name, &scalar)?;
                match v.kind {
                    Kind::Bool(b) => Some(Op::Exists(b)),
                    _ => {
                        self.diags.error(
                            v.pos,
                            format!("`exists` takes true or false, got {}", v.short()),
                        );
                        None
                    }
                }
            }
            "contains" | "notContains" => {
                self.require(key, ty, k, name, &[T::Str, T::StrList, T::StrMap])?;
                let s = self.string(v, name)?.to_ascii_lowercase();
                Some(if name == "contains" {
                    Op::Contains(s)
                } else {
                    Op::NotContains(s)
                })
            }
            "containsAny" => {
                self.require(key, ty, k, name, &[T::Str, T::StrList, T::StrMap])?;
                let Kind::Seq(items) = &v.kind else {
                    self.diags.error(
                        v.pos,
                        format!(
                            "`containsAny` takes a list of strings, got {}",
                            v.type_name()
                        ),
                    );
                    return None;
                };
                let mut out = Vec::new();
                for item in items {
                    out.push(self.string(item, name)?.to_ascii_lowercase());
                }
                Some(Op::ContainsAny(out))
            }
            "startsWith" => {
                self.require(key, ty, k, name, &[T::Str])?;
                Some(Op::StartsWith(self.string(v, name)?.to_ascii_lowercase()))
            }
            "word" => {
                self.require(key, ty, k, name, &[T::Str])?;
                let w = self.string(v, name)?;
                if w.is_empty() {
                    self.diags.error(v.pos, "`word` needs a non-empty word");
                    return None;
                }
                Some(Op::Word(w.to_ascii_lowercase()))
            }
            "matches" => {
                self.require(key, ty, k, name, &[T::Str])?;
                let pattern = self.string(v, name)?;
                match self.sandbox.regexes.compile(&pattern) {
                    Ok(r) => Some(Op::Matches(r)),
                    Err(e) => {
                        self.diags.error(v.pos, e.to_string());
                        None
                    }
                }
            }
            "gt" | "gte" | "lt" | "lte" => {
                self.require(key, ty, k, name, &[T::Int])?;
                let Kind::Int(i) = v.kind else {
                    self.diags.error(
                        v.pos,
                        format!("`{name}` takes an integer, got {}", v.short()),
                    );
                    return None;
                };
                let c = match name {
                    "gt" => Cmp::Gt,
                    "gte" => Cmp::Gte,
                    "lt" => Cmp::Lt,
                    _ => Cmp::Lte,
                };
                Some(Op::Cmp(c, i))
            }
            "some" | "none" => {
                let inner = match ty {
                    T::EvidenceList => self.matcher(v, Subject::Evidence)?,
                    T::AttemptList => self.matcher(v, Subject::Attempt)?,
                    T::StrList => self.test(Key::Element, T::Str, v)?,
                    _ => {
                        self.require(
                            key,
                            ty,
                            k,
                            name,
                            &[T::StrList, T::EvidenceList, T::AttemptList],
                        )?;
                        return None;
                    }
                };
                Some(if name == "some" {
                    Op::Some(Box::new(inner))
                } else {
                    Op::None(Box::new(inner))
                })
            }
            other => {
                let hint = did_you_mean(other, OPS.iter().copied());
                let hint = if hint.is_empty() {
                    format!(" (operators: {})", OPS.join(", "))
                } else {
                    hint
                };
                self.diags.error(
                    k.pos,
                    format!("unknown operator `{other}` for `{}`{hint}", key.path()),
                );
                None
            }
        }
    }
}

fn article(t: FactType) -> &'static str {
    match t {
        FactType::Int => "an",
        _ => "a",
    }
}
