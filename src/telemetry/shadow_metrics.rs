//! Shadow evaluation metrics: how many decisions the candidate in shadow
//! made beside the active set and how many differed, and which fields
//! differed. The field label takes its values from the closed list of
//! compared fields (`engine::Field`), so it is bounded.

use prometheus::{IntCounterVec, Opts, Registry};

use crate::engine::{DecisionDiff, Field};

/// Every shadow metric. Cloning shares the series.
#[derive(Clone)]
pub struct ShadowMetrics {
    /// `wfe_rules_shadow_decisions_total{result="agree"|"differ"}`.
    pub decisions: IntCounterVec,
    /// `wfe_rules_shadow_disagreements_total{field}`: one per differing
    /// field of each differing decision.
    pub disagreements: IntCounterVec,
}

impl std::fmt::Debug for ShadowMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowMetrics").finish_non_exhaustive()
    }
}

impl ShadowMetrics {
    pub(crate) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let decisions = IntCounterVec::new(
            Opts::new(
                "wfe_rules_shadow_decisions_total",
                "Decisions the candidate rule set in shadow made beside the active set, by whether they agreed.",
            ),
            &["result"],
        )?;
        for r in ["agree", "differ"] {
            decisions.with_label_values(&[r]);
        }
        let disagreements = IntCounterVec::new(
            Opts::new(
                "wfe_rules_shadow_disagreements_total",
                "Fields the candidate rule set in shadow decided differently from the active set (one per field of each differing decision).",
            ),
            &["field"],
        )?;
        // Every field from the start: rate() and alerts see a zero.
        for f in Field::ALL {
            disagreements.with_label_values(&[f.name()]);
        }
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(disagreements.clone()))?;
        Ok(ShadowMetrics {
            decisions,
            disagreements,
        })
    }

    /// One decision compared.
    pub fn observe(&self, disagreement: Option<&DecisionDiff>) {
        let Some(d) = disagreement else {
            self.decisions.with_label_values(&["agree"]).inc();
            return;
        };
        self.decisions.with_label_values(&["differ"]).inc();
        for c in &d.changes {
            self.disagreements
                .with_label_values(&[c.field.name()])
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::FieldChange;
    use serde_json::json;

    #[test]
    fn one_increment_per_differing_field() {
        let registry = Registry::new();
        let m = ShadowMetrics::register(&registry).unwrap();
        let change = |field| FieldChange {
            field,
            base: json!("a"),
            candidate: json!("b"),
        };
        let d = DecisionDiff {
            source: "WorkflowExecution/ns/w".into(),
            primary: None,
            wfe: "ns/w".into(),
            now: "2026-03-01T10:00:00Z".into(),
            base_revision: "sha256:a".into(),
            candidate_revision: "sha256:b".into(),
            changes: vec![change(Field::Phase), change(Field::Hold)],
        };
        m.observe(Some(&d));
        m.observe(None);
        let get = |f: Field| m.disagreements.with_label_values(&[f.name()]).get();
        assert_eq!(
            (get(Field::Phase), get(Field::Hold), get(Field::Reason)),
            (1, 1, 0)
        );
        assert_eq!(m.decisions.with_label_values(&["differ"]).get(), 1);
        assert_eq!(m.decisions.with_label_values(&["agree"]).get(), 1);
        let families = registry.gather();
        let f = families
            .iter()
            .find(|f| f.name() == "wfe_rules_shadow_disagreements_total")
            .unwrap();
        assert_eq!(f.get_metric().len(), Field::ALL.len());
    }
}
