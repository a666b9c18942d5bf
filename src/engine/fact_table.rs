//! The facts as the rules see them at one instant (observed and derived), for
//! rule authors (`dry-run --facts`). The `hold.*` and `failure.*` facts exist
//! only while a hold or a failure is being written and read as `null` here.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::derive::derive;
use super::fact_view::FactView;
use crate::observe::Facts;
use crate::rules::{EvalError, Fact, FactLookup, FactValue, RuleSet};

fn to_json(v: &FactValue<'_>) -> Value {
    match v {
        FactValue::Null => Value::Null,
        FactValue::Bool(b) => json!(b),
        FactValue::Int(i) => json!(i),
        FactValue::Str(s) => json!(s),
        FactValue::Owned(s) => json!(s),
        FactValue::Time(t) => json!(t.to_string()),
        FactValue::StrList(l) => json!(l),
        FactValue::Evidence(items) => serde_json::to_value(items).unwrap_or(Value::Null),
        FactValue::Attempts(items) => serde_json::to_value(items).unwrap_or(Value::Null),
        FactValue::StrMap(m) => json!(m),
    }
}

/// Every fact path with its value, in documentation order.
pub fn fact_values(
    facts: &Facts,
    rules: &RuleSet,
    now: Timestamp,
) -> Result<Vec<(&'static str, Value)>, EvalError> {
    let derived = derive(facts, rules, now)?;
    let view = FactView::new(facts, &derived, rules, now);
    Ok(Fact::ALL
        .iter()
        .map(|f| (f.path(), to_json(&view.fact(*f))))
        .collect())
}
