//! What keeps the controller from doing its work although it runs (its
//! environment, not its caches): reported by `/readyz` with the reason. One
//! handle lives as long as the process; each leadership term's controller
//! writes into it and clears it when it stops.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Problems by source (`execution-namespace`, ...), each a readable sentence.
#[derive(Debug, Default)]
pub struct Readiness {
    problems: Mutex<BTreeMap<&'static str, String>>,
}

impl Readiness {
    /// Set (`Some`) or clear (`None`) the problem reported by `source`.
    pub fn set(&self, source: &'static str, problem: Option<String>) {
        let mut map = self.lock();
        match problem {
            Some(p) => {
                map.insert(source, p);
            }
            None => {
                map.remove(source);
            }
        }
    }

    /// Every current problem, in source order.
    pub fn problems(&self) -> Vec<String> {
        self.lock().values().cloned().collect()
    }

    /// Forget everything (the controller of this term stopped).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, String>> {
        // One map operation per call: a poisoned map is still consistent.
        self.problems.lock().unwrap_or_else(|p| p.into_inner())
    }
}
