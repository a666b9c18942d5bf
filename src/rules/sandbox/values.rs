//! Facts as Rhai values: times as INT unix seconds, null as `()`, lists as
//! arrays, maps and list items as maps.

use rhai::{Dynamic, Map};

use super::roots::{Root, HISTORY_ITEMS_KEY};
use crate::rules::catalog::{AttemptField, EvidenceField, Fact};
use crate::rules::value::{FactLookup, FactValue, ItemLookup};

/// The Rhai value of a fact.
pub fn to_dynamic(v: &FactValue<'_>) -> Dynamic {
    match v {
        FactValue::Null => Dynamic::UNIT,
        FactValue::Bool(b) => Dynamic::from_bool(*b),
        FactValue::Int(i) => Dynamic::from_int(*i),
        FactValue::Str(s) => Dynamic::from(s.to_string()),
        FactValue::Owned(s) => Dynamic::from(s.clone()),
        FactValue::Time(t) => Dynamic::from_int(t.as_second()),
        FactValue::StrList(l) => {
            Dynamic::from_array(l.iter().map(|s| Dynamic::from(s.clone())).collect())
        }
        FactValue::StrMap(m) => Dynamic::from_map(
            m.iter()
                .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
                .collect(),
        ),
        FactValue::Evidence(items) => Dynamic::from_array(
            items
                .iter()
                .map(|e| {
                    let mut m = Map::new();
                    for f in EvidenceField::ALL {
                        m.insert(f.path().into(), to_dynamic(&e.evidence_field(*f)));
                    }
                    Dynamic::from_map(m)
                })
                .collect(),
        ),
        FactValue::Attempts(items) => Dynamic::from_array(
            items
                .iter()
                .map(|a| {
                    let mut m = Map::new();
                    for f in AttemptField::ALL {
                        m.insert(f.path().into(), to_dynamic(&a.attempt_field(*f)));
                    }
                    Dynamic::from_map(m)
                })
                .collect(),
        ),
    }
}

/// The read-only value of one root variable.
pub(super) fn root_value(root: Root, facts: &dyn FactLookup) -> Dynamic {
    if root == Root::Now {
        return to_dynamic(&facts.fact(Fact::Now));
    }
    let prefix = root.name();
    let mut map = Map::new();
    for fact in Fact::ALL {
        let path = fact.path();
        if root == Root::History && path == "history" {
            map.insert(HISTORY_ITEMS_KEY.into(), to_dynamic(&facts.fact(*fact)));
            continue;
        }
        if let Some(key) = path
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('.'))
        {
            map.insert(key.into(), to_dynamic(&facts.fact(*fact)));
        }
    }
    Dynamic::from_map(map)
}
