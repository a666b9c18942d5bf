//! Declarative matchers, compiled at load time to a native tree. Paths are
//! resolved against the catalogue and literals type-checked then, so
//! evaluation only compares values: no parsing, no allocation for string
//! tests (needles are lowercased once; comparisons are ASCII
//! case-insensitive). Rhai runs only for `expr:` entries.

use std::fmt;

use super::regex_budget::Pattern;

use super::catalog::{AttemptField, EvidenceField, Fact, FactType};
use super::diag::{did_you_mean, Diags};
use super::error::EvalError;
use super::sandbox::{Sandbox, Script};
use super::value::{FactLookup, FactValue, ItemLookup};
use super::yaml::{Kind, Node};

/// What the keys of a matcher name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Fact paths (`execution.reason`); `expr:` allowed.
    Facts,
    /// Fields of an `execution.evidence` item (inside `some:` / `none:`).
    Evidence,
    /// Fields of a history attempt (Backoff, Cooldown, History selectors).
    Attempt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Fact(Fact),
    Evidence(EvidenceField),
    Attempt(AttemptField),
    /// The string element of a `StrList` inside `some:` / `none:`.
    Element,
}

impl Key {
    fn path(self) -> &'static str {
        match self {
            Key::Fact(f) => f.path(),
            Key::Evidence(f) => f.path(),
            Key::Attempt(f) => f.path(),
            Key::Element => "item",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lit::Null => f.write_str("null"),
            Lit::Bool(b) => write!(f, "{b}"),
            Lit::Int(i) => write!(f, "{i}"),
            Lit::Str(s) => write!(f, "{s:?}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
enum Op {
    Equals(Lit),
    NotEquals(Lit),
    In(Vec<Lit>),
    NotIn(Vec<Lit>),
    Exists(bool),
    /// Substring (Str) or element (StrList); lowercased needle.
    Contains(String),
    NotContains(String),
    ContainsAny(Vec<String>),
    StartsWith(String),
    Word(String),
    Matches(Pattern),
    Cmp(Cmp, i64),
    Some(Box<MNode>),
    None(Box<MNode>),
}

#[derive(Debug, Clone)]
enum MNode {
    All(Vec<MNode>),
    Any(Vec<MNode>),
    Not(Box<MNode>),
    Expr(Box<Script>),
    Test(Key, Vec<Op>),
}

/// A compiled matcher: every entry must hold.
#[derive(Debug, Clone)]
pub struct Matcher {
    root: MNode,
    facts: Vec<Fact>,
}

/// Where a test reads its value from.
#[derive(Clone, Copy)]
enum Source<'a> {
    Facts(&'a dyn FactLookup, &'a Sandbox),
    Item(&'a dyn ItemLookup),
    Element(&'a str),
}

impl Matcher {
    /// A matcher that always holds.
    pub fn always() -> Matcher {
        Matcher {
            root: MNode::All(Vec::new()),
            facts: Vec::new(),
        }
    }

    /// A matcher that never holds (an omitted `resets:`).
    pub fn never() -> Matcher {
        Matcher {
            root: MNode::Any(Vec::new()),
            facts: Vec::new(),
        }
    }

    /// Evaluate against facts (Lifecycle and classification guards).
    pub fn eval(&self, facts: &dyn FactLookup, sandbox: &Sandbox) -> Result<bool, EvalError> {
        eval_node(&self.root, Source::Facts(facts, sandbox))
    }

    /// Evaluate against one list item (attempt selectors).
    pub fn eval_item(&self, item: &dyn ItemLookup) -> Result<bool, EvalError> {
        eval_node(&self.root, Source::Item(item))
    }

    /// Facts this matcher reads (for `--explain` and coverage).
    pub fn facts(&self) -> Vec<Fact> {
        self.facts.clone()
    }

    /// Does this matcher hold whatever the facts (no entries)?
    pub fn is_always(&self) -> bool {
        matches!(&self.root, MNode::All(v) if v.is_empty())
    }

    /// Compile a YAML matcher. Problems are recorded in `diags`; `None` when there was any.
    pub(crate) fn compile(
        node: &Node,
        ctx: Context,
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

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            MNode::All(items) if items.is_empty() => f.write_str("always"),
            MNode::Any(items) if items.is_empty() => f.write_str("never"),
            MNode::All(items) => join(f, items, " and "),
            other => write!(f, "{other}"),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, items: &[MNode], sep: &str) -> fmt::Result {
    for (i, n) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{n}")?;
    }
    Ok(())
}

impl fmt::Display for MNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MNode::All(items) => {
                f.write_str("all(")?;
                join(f, items, ", ")?;
                f.write_str(")")
            }
            MNode::Any(items) => {
                f.write_str("any(")?;
                join(f, items, ", ")?;
                f.write_str(")")
            }
            MNode::Not(inner) => write!(f, "not({inner})"),
            MNode::Expr(s) => write!(f, "expr({:?})", s.source()),
            MNode::Test(key, ops) => {
                for (i, op) in ops.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    write!(f, "{} ", key.path())?;
                    write_op(f, op)?;
                }
                Ok(())
            }
        }
    }
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    f.write_str("[")?;
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{x}")?;
    }
    f.write_str("]")
}

fn write_op(f: &mut fmt::Formatter<'_>, op: &Op) -> fmt::Result {
    match op {
        Op::Equals(l) => write!(f, "== {l}"),
        Op::NotEquals(l) => write!(f, "!= {l}"),
        Op::In(l) => {
            f.write_str("in ")?;
            write_list(f, l)
        }
        Op::NotIn(l) => {
            f.write_str("not in ")?;
            write_list(f, l)
        }
        Op::Exists(b) => write!(f, "exists={b}"),
        Op::Contains(s) => write!(f, "contains {s:?}"),
        Op::NotContains(s) => write!(f, "notContains {s:?}"),
        Op::ContainsAny(l) => {
            let quoted: Vec<String> = l.iter().map(|s| format!("{s:?}")).collect();
            f.write_str("containsAny ")?;
            write_list(f, &quoted)
        }
        Op::StartsWith(s) => write!(f, "startsWith {s:?}"),
        Op::Word(s) => write!(f, "word {s:?}"),
        Op::Matches(r) => write!(f, "matches /{}/", r.as_str()),
        Op::Cmp(c, v) => {
            let sym = match c {
                Cmp::Gt => ">",
                Cmp::Gte => ">=",
                Cmp::Lt => "<",
                Cmp::Lte => "<=",
            };
            write!(f, "{sym} {v}")
        }
        Op::Some(m) => write!(f, "some({m})"),
        Op::None(m) => write!(f, "none({m})"),
    }
}

// ---------------------------------------------------------------- evaluation

fn eval_node(node: &MNode, src: Source<'_>) -> Result<bool, EvalError> {
    match node {
        MNode::All(items) => {
            for n in items {
                if !eval_node(n, src)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        MNode::Any(items) => {
            for n in items {
                if eval_node(n, src)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        MNode::Not(inner) => Ok(!eval_node(inner, src)?),
        MNode::Expr(script) => match src {
            Source::Facts(facts, sandbox) => sandbox.eval_bool(script, facts),
            _ => Err(EvalError::new(
                "an `expr:` matcher needs facts, not a list item",
            )),
        },
        MNode::Test(key, ops) => {
            let value = lookup(*key, src)?;
            for op in ops {
                if !eval_op(op, &value)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

fn lookup<'a>(key: Key, src: Source<'a>) -> Result<FactValue<'a>, EvalError> {
    match (key, src) {
        (Key::Fact(f), Source::Facts(facts, _)) => Ok(facts.fact(f)),
        (Key::Evidence(f), Source::Item(item)) => Ok(item.evidence_field(f)),
        (Key::Attempt(f), Source::Item(item)) => Ok(item.attempt_field(f)),
        (Key::Element, Source::Element(s)) => Ok(FactValue::Str(s)),
        (key, _) => Err(EvalError::new(format!(
            "`{}` cannot be read in this context",
            key.path()
        ))),
    }
}

fn str_of<'v>(v: &'v FactValue<'_>) -> &'v str {
    v.as_str().unwrap_or("")
}

fn lit_eq(lit: &Lit, v: &FactValue<'_>) -> bool {
    match (lit, v) {
        (Lit::Null, v) => v.is_empty(),
        (Lit::Bool(a), FactValue::Bool(b)) => a == b,
        (Lit::Int(a), FactValue::Int(b)) => a == b,
        (Lit::Str(a), FactValue::Null) => a.is_empty(),
        (Lit::Str(a), v) => v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(a)),
        _ => false,
    }
}

/// ASCII case-insensitive substring search; `needle` is already lowercase.
pub(crate) fn contains_ci(hay: &str, needle: &str) -> bool {
    find_ci(hay.as_bytes(), needle.as_bytes(), 0).is_some()
}

fn find_ci(h: &[u8], n: &[u8], from: usize) -> Option<usize> {
    if n.is_empty() {
        return Some(from.min(h.len()));
    }
    if h.len() < n.len() {
        return None;
    }
    let first = n[0];
    (from..=h.len() - n.len())
        .find(|&i| h[i].to_ascii_lowercase() == first && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Whole-word match: the needle bounded by non-alphanumeric characters or the ends.
pub(crate) fn word_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(i) = find_ci(h, n, from) {
        let before_ok = i == 0 || !h[i - 1].is_ascii_alphanumeric();
        let end = i + n.len();
        let after_ok = end == h.len() || !h[end].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return true;
        }
        from = i + 1;
    }
    false
}

fn eval_op(op: &Op, v: &FactValue<'_>) -> Result<bool, EvalError> {
    Ok(match op {
        Op::Equals(l) => lit_eq(l, v),
        Op::NotEquals(l) => !lit_eq(l, v),
        Op::In(ls) => ls.iter().any(|l| lit_eq(l, v)),
        Op::NotIn(ls) => !ls.iter().any(|l| lit_eq(l, v)),
        Op::Exists(want) => v.is_empty() != *want,
        Op::Contains(n) => match v {
            FactValue::StrList(l) => l.iter().any(|s| s.eq_ignore_ascii_case(n)),
            _ => contains_ci(str_of(v), n),
        },
        Op::NotContains(n) => match v {
            FactValue::StrList(l) => !l.iter().any(|s| s.eq_ignore_ascii_case(n)),
            _ => !contains_ci(str_of(v), n),
        },
        Op::ContainsAny(ns) => match v {
            FactValue::StrList(l) => l
                .iter()
                .any(|s| ns.iter().any(|n| s.eq_ignore_ascii_case(n))),
            _ => {
                let s = str_of(v);
                ns.iter().any(|n| contains_ci(s, n))
            }
        },
        Op::StartsWith(n) => {
            let s = str_of(v).as_bytes();
            s.len() >= n.len() && s[..n.len()].eq_ignore_ascii_case(n.as_bytes())
        }
        Op::Word(n) => word_ci(str_of(v), n),
        Op::Matches(r) => r.is_match(str_of(v)),
        Op::Cmp(c, rhs) => match v {
            FactValue::Int(lhs) => match c {
                Cmp::Gt => lhs > rhs,
                Cmp::Gte => lhs >= rhs,
                Cmp::Lt => lhs < rhs,
                Cmp::Lte => lhs <= rhs,
            },
            _ => false,
        },
        Op::Some(m) => any_item(m, v)?,
        Op::None(m) => !any_item(m, v)?,
    })
}

fn any_item(m: &MNode, v: &FactValue<'_>) -> Result<bool, EvalError> {
    match v {
        FactValue::Evidence(items) => {
            for e in *items {
                if eval_node(m, Source::Item(e))? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        FactValue::Attempts(items) => {
            for a in *items {
                if eval_node(m, Source::Item(a))? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        FactValue::StrList(items) => {
            for s in *items {
                if eval_node(m, Source::Element(s))? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

// ---------------------------------------------------------------- compilation

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
    }
}

struct Compiler<'a> {
    sandbox: &'a Sandbox,
    diags: &'a mut Diags,
    facts: Vec<Fact>,
}

fn paths(ctx: Context) -> Vec<&'static str> {
    match ctx {
        Context::Facts => Fact::ALL.iter().map(|f| f.path()).collect(),
        Context::Evidence => EvidenceField::ALL.iter().map(|f| f.path()).collect(),
        Context::Attempt => AttemptField::ALL.iter().map(|f| f.path()).collect(),
    }
}

fn resolve(path: &str, ctx: Context) -> Option<(Key, FactType)> {
    match ctx {
        Context::Facts => Fact::from_path(path).map(|f| (Key::Fact(f), f.ty())),
        Context::Evidence => EvidenceField::from_path(path).map(|f| (Key::Evidence(f), f.ty())),
        Context::Attempt => AttemptField::from_path(path).map(|f| (Key::Attempt(f), f.ty())),
    }
}

fn ctx_name(ctx: Context) -> &'static str {
    match ctx {
        Context::Facts => "fact",
        Context::Evidence => "evidence field",
        Context::Attempt => "attempt field",
    }
}

impl Compiler<'_> {
    fn matcher(&mut self, node: &Node, ctx: Context) -> Option<MNode> {
        let Some(entries) = node.as_map() else {
            let hint = if node.as_str().is_some() && ctx == Context::Facts {
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

    fn matcher_list(&mut self, node: &Node, ctx: Context, what: &str) -> Option<Vec<MNode>> {
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

    fn entry(&mut self, key: &Node, val: &Node, ctx: Context) -> Option<MNode> {
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
                if ctx != Context::Facts {
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
                let Some((key_id, ty)) = resolve(path, ctx) else {
                    let mut candidates = paths(ctx);
                    candidates.extend_from_slice(COMBINATORS);
                    let hint = did_you_mean(path, candidates);
                    let hint = if hint.is_empty() && ctx == Context::Facts && OPS.contains(&path) {
                        format!(" (`{path}` is an operator: put it under a fact, e.g. `execution.reason: {{{path}: ...}}`)")
                    } else {
                        hint
                    };
                    self.diags
                        .error(key.pos, format!("unknown {} `{path}`{hint}", ctx_name(ctx)));
                    return None;
                };
                if let Key::Fact(f) = key_id {
                    if !self.facts.contains(&f) {
                        self.facts.push(f);
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
                    match self.op(key, ty, k, v) {
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
            Kind::Seq(_) => vec![Op::In(self.lits(key, ty, val, "in")?)],
            _ => vec![Op::Equals(self.lit(key, ty, val, "equals")?)],
        };
        Some(MNode::Test(key, ops))
    }

    fn lit(&mut self, key: Key, ty: FactType, n: &Node, op: &str) -> Option<Lit> {
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
                | FactType::AttemptList => "null (use `exists`, `some`, `contains` for this type)",
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

    fn lits(&mut self, key: Key, ty: FactType, n: &Node, op: &str) -> Option<Vec<Lit>> {
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
        key: Key,
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

    fn op(&mut self, key: Key, ty: FactType, k: &Node, v: &Node) -> Option<Op> {
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
                self.require(key, ty, k, name, &[T::Str, T::StrList])?;
                let s = self.string(v, name)?.to_ascii_lowercase();
                Some(if name == "contains" {
                    Op::Contains(s)
                } else {
                    Op::NotContains(s)
                })
            }
            "containsAny" => {
                self.require(key, ty, k, name, &[T::Str, T::StrList])?;
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
                        self.diags.error(v.pos, e);
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
                    T::EvidenceList => self.matcher(v, Context::Evidence)?,
                    T::AttemptList => self.matcher(v, Context::Attempt)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Attempt, Evidence};
    use crate::rules::yaml::parse_documents;

    struct F {
        evidence: Vec<Evidence>,
        deps: Vec<String>,
    }
    impl FactLookup for F {
        fn fact(&self, fact: Fact) -> FactValue<'_> {
            match fact {
                Fact::ExecReason => FactValue::Str("PipelineRunTimeout"),
                Fact::ExecMessage => {
                    FactValue::Str("step-build: exit code 137 (OOMKilled) after 3m")
                }
                Fact::ExecExitCode => FactValue::Int(137),
                Fact::ExecStarted => FactValue::Bool(true),
                Fact::ExecEvidence => FactValue::Evidence(&self.evidence),
                Fact::EnvMissingDependencies => FactValue::StrList(&self.deps),
                _ => FactValue::Null,
            }
        }
    }

    fn facts() -> F {
        F {
            evidence: vec![Evidence {
                source: "step".into(),
                state: "terminated".into(),
                reason: "OOMKilled".into(),
                exit_code: Some(137),
                ..Evidence::default()
            }],
            deps: vec!["secret/db".into()],
        }
    }

    fn compile(yaml: &str, ctx: Context) -> Result<Matcher, Vec<String>> {
        let node = parse_documents(yaml).unwrap().remove(0);
        let mut d = Diags::new("t.yaml");
        let sb = Sandbox::default();
        Matcher::compile(&node, ctx, &sb, &mut d)
            .ok_or_else(|| d.errors.iter().map(|e| e.to_string()).collect())
    }

    fn check(yaml: &str) -> bool {
        let m = compile(yaml, Context::Facts).unwrap();
        m.eval(&facts(), &Sandbox::default()).unwrap()
    }

    #[test]
    fn scalar_list_and_operators() {
        assert!(check("execution.reason: pipelineruntimeout"));
        assert!(check("execution.reason: [Foo, PipelineRunTimeout]"));
        assert!(!check("execution.reason: {notIn: [PipelineRunTimeout]}"));
        assert!(check(
            "execution.message: {contains: OOMKILLED, word: exit}"
        ));
        assert!(!check("execution.message: {word: OOM}"));
        assert!(check("execution.message: {word: oomkilled}"));
        assert!(check("execution.message: {startsWith: STEP-}"));
        assert!(check("execution.message: {matches: '(?i)exit code \\d+'}"));
        assert!(check("execution.exitCode: {gte: 137, lt: 200}"));
        assert!(check("execution.exitCode: 137"));
        assert!(check("execution.started: true"));
        assert!(check("execution.failureMessage: null"));
        assert!(check("execution.failureMessage: {exists: false}"));
        assert!(check(
            "execution.message: {containsAny: [nothing, '(oomkilled)']}"
        ));
    }

    #[test]
    fn combinators_and_lists() {
        assert!(check(
            "any: [{execution.exitCode: 1}, {execution.reason: PipelineRunTimeout}]"
        ));
        assert!(check("not: {execution.started: false}"));
        assert!(check(
            "all: [{execution.started: true}, {execution.exitCode: {gt: 0}}]"
        ));
        assert!(check("execution.evidence: {some: {reason: oomkilled, exitCode: 137, source: [step, container]}}"));
        assert!(check("execution.evidence: {none: {synthetic: true}}"));
        assert!(check(
            "env.missingDependencies: {some: {startsWith: secret/}, contains: SECRET/DB}"
        ));
        assert!(check("expr: 'execution.exitCode > 100'"));
    }

    #[test]
    fn attempt_items() {
        let m = compile(
            "phase: Failed\nwasExecutionFailure: true\ncleared: {notEquals: true}",
            Context::Attempt,
        )
        .unwrap();
        let a = Attempt {
            phase: "failed".into(),
            was_execution_failure: true,
            ..Attempt::default()
        };
        assert!(m.eval_item(&a).unwrap());
        let b = Attempt {
            phase: "Completed".into(),
            ..Attempt::default()
        };
        assert!(!m.eval_item(&b).unwrap());
    }

    #[test]
    fn load_errors_name_the_problem() {
        let e = compile("execution.reasn: x", Context::Facts).unwrap_err();
        assert!(
            e[0].contains(
                "t.yaml:1:1: unknown fact `execution.reasn` (did you mean `execution.reason`"
            ),
            "{e:?}"
        );
        let e = compile("execution.started: \"yes\"", Context::Facts).unwrap_err();
        assert!(e[0].contains("Bool"), "{e:?}");
        let e = compile("execution.reason: {gt: 3}", Context::Facts).unwrap_err();
        assert!(e[0].contains("`gt` does not apply"), "{e:?}");
        let e = compile("execution.reason: {matches: '('}", Context::Facts).unwrap_err();
        assert!(e[0].contains("invalid regular expression"), "{e:?}");
        let e = compile("expr: 'execution.exitCode >'", Context::Facts).unwrap_err();
        assert!(e[0].starts_with("t.yaml:1:"), "{e:?}");
        let e = compile("expr: 'true'", Context::Attempt).unwrap_err();
        assert!(e[0].contains("only allowed"), "{e:?}");
        // Every error of the matcher is reported, not only the first.
        let e = compile(
            "a.b: 1\nexecution.exitCode: {foo: 1}\nexecution.reason: 3",
            Context::Facts,
        )
        .unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        let e = compile("execution.evidence: {some: {reasn: x}}", Context::Facts).unwrap_err();
        assert!(e[0].contains("unknown evidence field `reasn`"), "{e:?}");
    }

    #[test]
    fn display_describes_the_tree() {
        let m = compile(
            "execution.reason: [A, B]\nnot: {execution.exitCode: {gt: 1}}",
            Context::Facts,
        )
        .unwrap();
        assert_eq!(
            m.to_string(),
            "execution.reason in [\"A\", \"B\"] and not(execution.exitCode > 1)"
        );
        assert_eq!(m.facts(), vec![Fact::ExecReason, Fact::ExecExitCode]);
    }
}
