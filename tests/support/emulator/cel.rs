//! A small CEL interpreter for CRD validation rules
//! (`x-kubernetes-validations`): the subset a CRD of ours can use, parsed
//! properly, so an unsupported rule is a setup error instead of a rule
//! silently ignored. Supported: `self`, `oldSelf`, literals (strings,
//! integers, booleans), member access, `has(x.f)`, `size(x)`, `x.size()`,
//! `!`, `&&`, `||`, `==`, `!=`, `<`, `<=`, `>`, `>=`, parentheses, and the
//! macros/methods `all`, `exists`, `matches`, `startsWith`, `endsWith`,
//! `contains`. Maps iterate over their keys, as in CEL.

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    Lit(Value),
    Ident(String),
    Member(Box<Expr>, String),
    Has(Box<Expr>, String),
    Not(Box<Expr>),
    Bin(Box<Expr>, Op, Box<Expr>),
    Call(String, Vec<Expr>),
    Method(Box<Expr>, String, Vec<Expr>),
    /// `target.all(var, body)` / `target.exists(var, body)`.
    Macro(Box<Expr>, String, String, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Sym(&'static str),
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(b[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let text: String = b[start..i].iter().collect();
            out.push(Tok::Int(text.parse().map_err(|e| format!("{text}: {e}"))?));
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&d) = b.get(i) else {
                    return Err("unterminated string".into());
                };
                i += 1;
                if d == c {
                    break;
                }
                if d == '\\' {
                    let e = *b.get(i).ok_or("unterminated escape")?;
                    i += 1;
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    s.push(d);
                }
            }
            out.push(Tok::Str(s));
        } else {
            let two: String = b[i..(i + 2).min(b.len())].iter().collect();
            let sym = ["&&", "||", "==", "!=", "<=", ">="]
                .into_iter()
                .find(|s| *s == two);
            if let Some(s) = sym {
                out.push(Tok::Sym(s));
                i += 2;
                continue;
            }
            let one = ["(", ")", ".", ",", "!", "<", ">"]
                .into_iter()
                .find(|s| s.starts_with(c))
                .ok_or_else(|| format!("unsupported character {c:?}"))?;
            out.push(Tok::Sym(one));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, sym: &str) -> Result<(), String> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(format!("expected {sym:?} at token {}", self.pos))
        }
    }
    fn ident(&mut self) -> Result<String, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Ident(s)) => {
                self.pos += 1;
                Ok(s)
            }
            other => Err(format!("expected a name, got {other:?}")),
        }
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Bin(Box::new(e), Op::Or, Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.cmp()?;
        while self.eat("&&") {
            e = Expr::Bin(Box::new(e), Op::And, Box::new(self.cmp()?));
        }
        Ok(e)
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let e = self.unary()?;
        let ops = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        for (s, op) in ops {
            if self.eat(s) {
                return Ok(Expr::Bin(Box::new(e), op, Box::new(self.unary()?)));
            }
        }
        Ok(e)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.postfix()
    }
    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        while self.eat(".") {
            let name = self.ident()?;
            if !self.eat("(") {
                e = Expr::Member(Box::new(e), name);
                continue;
            }
            if matches!(name.as_str(), "all" | "exists") {
                let var = self.ident()?;
                self.expect(",")?;
                let body = self.or()?;
                self.expect(")")?;
                e = Expr::Macro(Box::new(e), name, var, Box::new(body));
            } else {
                let args = self.args()?;
                e = Expr::Method(Box::new(e), name, args);
            }
        }
        Ok(e)
    }
    fn args(&mut self) -> Result<Vec<Expr>, String> {
        let mut args = Vec::new();
        if self.eat(")") {
            return Ok(args);
        }
        loop {
            args.push(self.or()?);
            if self.eat(")") {
                return Ok(args);
            }
            self.expect(",")?;
        }
    }
    fn primary(&mut self) -> Result<Expr, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Expr::Lit(Value::String(s)))
            }
            Some(Tok::Int(n)) => {
                self.pos += 1;
                Ok(Expr::Lit(Value::from(n)))
            }
            Some(Tok::Sym("(")) => {
                self.pos += 1;
                let e = self.or()?;
                self.expect(")")?;
                Ok(e)
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                match name.as_str() {
                    "true" => return Ok(Expr::Lit(Value::Bool(true))),
                    "false" => return Ok(Expr::Lit(Value::Bool(false))),
                    _ => {}
                }
                if !self.eat("(") {
                    return Ok(Expr::Ident(name));
                }
                if name == "has" {
                    let e = self.postfix()?;
                    self.expect(")")?;
                    return match e {
                        Expr::Member(target, field) => Ok(Expr::Has(target, field)),
                        _ => Err("has() needs a field selection".into()),
                    };
                }
                let args = self.args()?;
                Ok(Expr::Call(name, args))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

/// A compiled rule.
#[derive(Debug)]
pub struct Program {
    pub source: String,
    expr: Expr,
    /// Regexes of `matches` calls with literal patterns.
    regexes: HashMap<String, Regex>,
    /// References `oldSelf` (a transition rule: checked on updates only).
    pub transition: bool,
}

impl Program {
    pub fn compile(source: &str) -> Result<Self, String> {
        let mut p = Parser {
            toks: lex(source)?,
            pos: 0,
        };
        let expr = p.or()?;
        if p.pos != p.toks.len() {
            return Err(format!("unexpected trailing input in {source:?}"));
        }
        let mut regexes = HashMap::new();
        collect_regexes(&expr, &mut regexes)?;
        Ok(Program {
            source: source.to_string(),
            transition: source.contains("oldSelf"),
            expr,
            regexes,
        })
    }

    /// Evaluate to a boolean; errors are evaluation errors (the real server
    /// reports those as failures of the rule too).
    pub fn eval(&self, this: &Value, old: Option<&Value>) -> Result<bool, String> {
        let mut env = vec![("self".to_string(), this.clone())];
        if let Some(o) = old {
            env.push(("oldSelf".to_string(), o.clone()));
        }
        match self.eval_expr(&self.expr, &mut env)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!("rule returned {other}, not a boolean")),
        }
    }

    fn eval_expr(&self, e: &Expr, env: &mut Vec<(String, Value)>) -> Result<Value, String> {
        Ok(match e {
            Expr::Lit(v) => v.clone(),
            Expr::Ident(n) => env
                .iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("undeclared reference to {n:?}"))?,
            Expr::Member(t, f) => self
                .eval_expr(t, env)?
                .get(f)
                .cloned()
                .ok_or_else(|| format!("no such key: {f}"))?,
            Expr::Has(t, f) => Value::Bool(self.eval_expr(t, env)?.get(f).is_some()),
            Expr::Not(x) => Value::Bool(!truth(&self.eval_expr(x, env)?)?),
            Expr::Bin(l, Op::And, r) => {
                Value::Bool(truth(&self.eval_expr(l, env)?)? && truth(&self.eval_expr(r, env)?)?)
            }
            Expr::Bin(l, Op::Or, r) => {
                Value::Bool(truth(&self.eval_expr(l, env)?)? || truth(&self.eval_expr(r, env)?)?)
            }
            Expr::Bin(l, op, r) => {
                let (a, b) = (self.eval_expr(l, env)?, self.eval_expr(r, env)?);
                Value::Bool(compare(&a, *op, &b)?)
            }
            Expr::Call(name, args) if name == "size" && args.len() == 1 => {
                size(&self.eval_expr(&args[0], env)?)?
            }
            Expr::Call(name, _) => return Err(format!("unsupported function {name}")),
            Expr::Method(t, name, args) => {
                let target = self.eval_expr(t, env)?;
                let arg = match args.first() {
                    Some(a) => Some(self.eval_expr(a, env)?),
                    None => None,
                };
                self.method(&target, name, arg.as_ref())?
            }
            Expr::Macro(t, name, var, body) => {
                let target = self.eval_expr(t, env)?;
                let items: Vec<Value> = match &target {
                    Value::Object(m) => m.keys().map(|k| Value::String(k.clone())).collect(),
                    Value::Array(a) => a.clone(),
                    other => return Err(format!("{name} over {other}")),
                };
                let mut result = name == "all";
                for item in items {
                    env.push((var.clone(), item));
                    let v = truth(&self.eval_expr(body, env)?);
                    env.pop();
                    let v = v?;
                    if name == "all" && !v {
                        result = false;
                        break;
                    }
                    if name == "exists" && v {
                        result = true;
                        break;
                    }
                }
                Value::Bool(result)
            }
        })
    }

    fn method(&self, target: &Value, name: &str, arg: Option<&Value>) -> Result<Value, String> {
        if name == "size" {
            return size(target);
        }
        let s = target
            .as_str()
            .ok_or_else(|| format!("{name} on a non-string"))?;
        let a = arg
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name} needs a string argument"))?;
        Ok(Value::Bool(match name {
            "matches" => match self.regexes.get(a) {
                Some(re) => re.is_match(s),
                None => Regex::new(a).map_err(|e| e.to_string())?.is_match(s),
            },
            "startsWith" => s.starts_with(a),
            "endsWith" => s.ends_with(a),
            "contains" => s.contains(a),
            other => return Err(format!("unsupported method {other}")),
        }))
    }
}

fn collect_regexes(e: &Expr, out: &mut HashMap<String, Regex>) -> Result<(), String> {
    match e {
        Expr::Method(t, name, args) => {
            if let (true, Some(Expr::Lit(Value::String(p)))) = (name == "matches", args.first()) {
                out.insert(
                    p.clone(),
                    Regex::new(p).map_err(|e| format!("bad regex {p}: {e}"))?,
                );
            }
            collect_regexes(t, out)?;
            for a in args {
                collect_regexes(a, out)?;
            }
        }
        Expr::Member(t, _) | Expr::Has(t, _) | Expr::Not(t) => collect_regexes(t, out)?,
        Expr::Bin(l, _, r) => {
            collect_regexes(l, out)?;
            collect_regexes(r, out)?;
        }
        Expr::Macro(t, _, _, b) => {
            collect_regexes(t, out)?;
            collect_regexes(b, out)?;
        }
        Expr::Call(_, args) => {
            for a in args {
                collect_regexes(a, out)?;
            }
        }
        Expr::Lit(_) | Expr::Ident(_) => {}
    }
    Ok(())
}

fn truth(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| format!("{v} is not a boolean"))
}

fn size(v: &Value) -> Result<Value, String> {
    Ok(Value::from(match v {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(m) => m.len(),
        other => return Err(format!("size of {other}")),
    }))
}

fn compare(a: &Value, op: Op, b: &Value) -> Result<bool, String> {
    match op {
        Op::Eq => return Ok(a == b),
        Op::Ne => return Ok(a != b),
        _ => {}
    }
    let ord = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .ok_or("incomparable numbers")?,
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => return Err(format!("cannot compare {a} and {b}")),
    };
    Ok(match op {
        Op::Lt => ord.is_lt(),
        Op::Le => ord.is_le(),
        Op::Gt => ord.is_gt(),
        Op::Ge => ord.is_ge(),
        _ => false,
    })
}
