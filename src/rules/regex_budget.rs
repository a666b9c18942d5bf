//! Regular expressions of a rule set, compiled under one budget for the
//! whole set: a count and the memory of the compiled automata. Each regex is
//! also capped on its own, but a thousand regexes under the per-regex cap
//! took seconds and a gigabyte to load.

use std::fmt;
use std::sync::Mutex;

use regex_automata::meta;

/// Regexes (`matches:`) in one rule set.
pub const MAX_REGEXES: usize = 128;
/// Memory of all compiled regexes of one rule set.
pub const MAX_REGEX_BYTES: usize = 8 * 1024 * 1024;
/// Compiled size of one regex.
const MAX_ONE_REGEX: usize = 1024 * 1024;
/// Capacity of each regex's lazy-DFA cache, which grows while it matches.
const CACHE_BYTES: usize = 256 * 1024;

/// A compiled regex with the pattern it was written as.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: meta::Regex,
}

impl Pattern {
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

/// What a rule set has spent so far: regexes and bytes.
#[derive(Debug, Default)]
pub struct RegexBudget {
    spent: Mutex<(usize, usize)>,
}

impl RegexBudget {
    /// Compile `pattern`, charging it to the set's budget.
    pub fn compile(&self, pattern: &str) -> Result<Pattern, String> {
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        let (count, bytes) = *spent;
        if count >= MAX_REGEXES {
            return Err(format!(
                "too many regular expressions: a rule set may hold at most {MAX_REGEXES}"
            ));
        }
        let left = MAX_REGEX_BYTES.saturating_sub(bytes);
        if left == 0 {
            return Err(spent_message());
        }
        let config = meta::Config::new()
            .nfa_size_limit(Some(left.min(MAX_ONE_REGEX)))
            .onepass_size_limit(Some(left.min(MAX_ONE_REGEX)))
            .dfa_size_limit(Some(left.min(MAX_ONE_REGEX)))
            .hybrid_cache_capacity(CACHE_BYTES);
        let regex = meta::Builder::new()
            .configure(config)
            .build(pattern)
            .map_err(|e| {
                if e.size_limit().is_some() && left < MAX_ONE_REGEX {
                    // Spent: the next regexes fail at once instead of each
                    // compiling up to what is left.
                    *spent = (count, MAX_REGEX_BYTES);
                    spent_message()
                } else {
                    format!("invalid regular expression: {e}")
                }
            })?;
        *spent = (count + 1, bytes + regex.memory_usage());
        Ok(Pattern {
            source: pattern.to_string(),
            regex,
        })
    }
}

fn spent_message() -> String {
    format!(
        "regular expressions too large: those of a rule set may compile to at most {} MiB together",
        MAX_REGEX_BYTES / (1024 * 1024)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_by_the_set() {
        let b = RegexBudget::default();
        let mut errors = Vec::new();
        for _ in 0..40 {
            if let Err(e) = b.compile(r"\w{20}") {
                errors.push(e);
            }
        }
        assert!(!errors.is_empty());
        assert!(errors[0].contains("at most 8 MiB"), "{}", errors[0]);
        let b = RegexBudget::default();
        for _ in 0..MAX_REGEXES {
            b.compile("(?i)oom").unwrap();
        }
        assert!(b.compile("x").unwrap_err().contains("at most 128"));
    }

    #[test]
    fn patterns_match_like_the_regex_crate() {
        let b = RegexBudget::default();
        let p = b.compile(r"(?i)^exit code \d+$").unwrap();
        assert!(p.is_match("Exit code 137"));
        assert!(!p.is_match("exit code x"));
        assert!(b
            .compile("(")
            .unwrap_err()
            .contains("invalid regular expression"));
    }
}
