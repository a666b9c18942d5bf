//! What the editor of a rules ConfigMap reads in its Events
//! (`kubectl describe configmap`, `kubectl events --for configmap/NAME`):
//! a reload outcome as event notes, each within the API server's 1024-byte
//! limit for `events.k8s.io/v1` notes, and deterministic event names. The
//! active set and a candidate evaluated in shadow report under reasons of
//! their own, so neither is mistaken for the other. Pure.

use sha2::{Digest, Sha256};

use super::error::ReloadError;
use super::source::Origin;
use super::status::ErrorLocation;

pub(crate) const REASON_APPLIED: &str = "RulesApplied";
pub(crate) const REASON_REJECTED: &str = "RulesRejected";
pub(crate) const REASON_SHADOW_APPLIED: &str = "ShadowRulesApplied";
pub(crate) const REASON_SHADOW_REJECTED: &str = "ShadowRulesRejected";

/// What a reloaded set is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The set that decides.
    Active,
    /// A candidate evaluated beside the active set, never applied.
    Shadow,
}

impl Role {
    /// The set in log lines: `rules` or `shadow rules`.
    pub fn what(self) -> &'static str {
        match self {
            Role::Active => "rules",
            Role::Shadow => "shadow rules",
        }
    }
}

/// What a taken set replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Was<'a> {
    /// The same revision was already in place.
    Unchanged,
    Revision(&'a str),
    /// Nothing was (a first candidate).
    Nothing,
}

/// The API server refuses a longer `note` (pkg/apis/core/validation/events.go).
const MAX_NOTE: usize = 1024;
/// A refusal with more problems than fit here ends with a pointer to `/rules`.
const MAX_PARTS: usize = 8;
/// One problem's line is cut here so that a long message cannot crowd out
/// the positions of the others.
const MAX_LINE: usize = 240;
/// Longest object name the API server accepts.
const MAX_NAME: usize = 253;
/// Room kept for the "… N more" line.
const TRAILER_ROOM: usize = 64;

/// One event to publish about the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventDraft {
    pub reason: &'static str,
    pub warning: bool,
    pub note: String,
    /// Which part of a refusal split over several events (0 when one).
    pub part: usize,
}

/// A set was taken for `role`.
pub(crate) fn applied_as(role: Role, revision: &str, was: Was<'_>, files: usize) -> EventDraft {
    let was = match was {
        Was::Revision(p) => format!("; was {p}"),
        Was::Unchanged => "; unchanged".to_string(),
        Was::Nothing => String::new(),
    };
    let (reason, what) = match role {
        Role::Active => (
            REASON_APPLIED,
            format!("rules revision {revision} is deciding"),
        ),
        Role::Shadow => (
            REASON_SHADOW_APPLIED,
            format!("candidate rules revision {revision} is evaluated in shadow, never applied"),
        ),
    };
    EventDraft {
        reason,
        warning: false,
        note: format!("{what} ({files} files{was})"),
        part: 0,
    }
}

/// The active set's candidate was refused ([`rejected_as`]); `active` is
/// the revision that keeps deciding (`None` at startup: then nothing does).
pub(crate) fn rejected(error: &ReloadError, active: Option<&str>) -> Vec<EventDraft> {
    rejected_as(Role::Active, error, active)
}

/// A set was refused for `role`: every `file:line:col` it points at, over
/// as many events as needed (at most [`MAX_PARTS`]). `current` is the
/// revision that stays in its place (deciding, or evaluated in shadow).
pub(crate) fn rejected_as(
    role: Role,
    error: &ReloadError,
    current: Option<&str>,
) -> Vec<EventDraft> {
    let locations = error.locations();
    let header = |part: usize, parts: usize| {
        let of = if parts > 1 {
            format!(" (part {}/{parts})", part + 1)
        } else {
            String::new()
        };
        match (role, current) {
            (Role::Active, Some(c)) => format!("rules refused; revision {c} stays active{of}:"),
            (Role::Active, None) => format!("rules refused; the engine cannot start{of}:"),
            (Role::Shadow, Some(c)) => {
                format!("candidate rules refused; candidate revision {c} stays in shadow{of}:")
            }
            (Role::Shadow, None) => {
                format!("candidate rules refused; no candidate is evaluated in shadow{of}:")
            }
        }
    };
    let mut lines = problem_lines(error, &locations);
    let mut notes = pack(&lines, &header);
    if notes.len() > MAX_PARTS && !locations.is_empty() {
        // Too many to explain each: the positions alone, then.
        lines = locations.iter().map(position).collect();
        notes = pack(&lines, &header);
    }
    if notes.len() > MAX_PARTS {
        keep_parts_with_trailer(&mut notes, lines.len(), body_room(&header));
    }
    let parts = notes.len();
    notes
        .into_iter()
        .enumerate()
        .map(|(part, body)| EventDraft {
            reason: match role {
                Role::Active => REASON_REJECTED,
                Role::Shadow => REASON_SHADOW_REJECTED,
            },
            warning: true,
            note: format!("{}{body}", header(part, parts)),
            part,
        })
        .collect()
}

/// One line per problem: `file:line:col: message` (its first line), or the
/// error's own lines when it points nowhere (a timeout).
fn problem_lines(error: &ReloadError, locations: &[ErrorLocation]) -> Vec<String> {
    if locations.is_empty() {
        return error
            .to_string()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| cut(l, MAX_LINE))
            .collect();
    }
    locations
        .iter()
        .map(|l| {
            // The first line only; a colon that introduced the rest goes too.
            let text = l.to_string();
            let first = text.lines().next().unwrap_or("").trim_end_matches(':');
            cut(first, MAX_LINE)
        })
        .collect()
}

/// `file:line:col`, or `file:line` when the column is unknown.
fn position(l: &ErrorLocation) -> String {
    if l.column == 0 {
        format!("{}:{}", l.file, l.line)
    } else {
        format!("{}:{}:{}", l.file, l.line, l.column)
    }
}

/// Keep [`MAX_PARTS`] notes and end the last with how many of `total`
/// problems are not shown.
fn keep_parts_with_trailer(notes: &mut Vec<String>, total: usize, room: usize) {
    notes.truncate(MAX_PARTS);
    if let Some(last) = notes.last_mut() {
        while last.len() + TRAILER_ROOM > room {
            match last.rfind('\n') {
                Some(i) => last.truncate(i),
                None => break,
            }
        }
    }
    let shown: usize = notes.iter().map(|n| line_count(n)).sum();
    if let Some(last) = notes.last_mut() {
        last.push_str(&format!(
            "\n… {} more: GET /rules or the engine log",
            total.saturating_sub(shown)
        ));
    }
}

fn line_count(body: &str) -> usize {
    body.lines().filter(|l| !l.is_empty()).count()
}

/// Room for a note's body: the limit less the longest header.
fn body_room(header: &dyn Fn(usize, usize) -> String) -> usize {
    MAX_NOTE.saturating_sub(header(98, 99).len())
}

/// Pack `lines` into note bodies that fit [`MAX_NOTE`] with their header
/// (sized for the largest part count, so the real header always fits).
fn pack(lines: &[String], header: &dyn Fn(usize, usize) -> String) -> Vec<String> {
    let room = body_room(header);
    let mut notes: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in lines {
        let line = cut(line, room.saturating_sub(1));
        if !current.is_empty() && current.len() + 1 + line.len() > room {
            notes.push(std::mem::take(&mut current));
        }
        current.push('\n');
        current.push_str(&line);
    }
    if !current.is_empty() || notes.is_empty() {
        notes.push(current);
    }
    notes
}

/// `s` cut to at most `max` bytes on a character boundary, marked with `…`.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A name for the event: the same outcome of the same ConfigMap version
/// gets the same name on every replica, so the second one to report it is
/// answered AlreadyExists instead of adding a duplicate.
pub(crate) fn event_name(configmap: &str, origin: &Origin, draft: &EventDraft) -> String {
    let mut h = Sha256::new();
    for part in [
        origin.uid.as_str(),
        origin.resource_version.as_str(),
        draft.reason,
        &draft.part.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update(b"/");
    }
    let digest = hex::encode(&h.finalize()[..8]);
    let keep = MAX_NAME - digest.len() - 1;
    let mut prefix: String = configmap.chars().take(keep).collect();
    // A cut name may end in '-' or '.', which a DNS subdomain may not
    // before the '.' that follows.
    while prefix.ends_with(['-', '.']) {
        prefix.pop();
    }
    format!("{prefix}.{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{LoadError, LoadErrors};

    fn invalid(n: usize, msg: &str) -> ReloadError {
        ReloadError::Invalid(LoadErrors(
            (0..n)
                .map(|i| LoadError {
                    file: format!("rules-{i:03}.yaml"),
                    line: i as u32 + 1,
                    column: 7,
                    message: msg.to_string(),
                })
                .collect(),
        ))
    }

    fn origin() -> Origin {
        Origin {
            uid: "u-1".into(),
            resource_version: "42".into(),
        }
    }

    #[test]
    fn a_refusal_names_every_position_with_its_message() {
        let drafts = rejected(&invalid(2, "unknown field `whne`"), Some("sha256:aaaa"));
        assert_eq!(drafts.len(), 1);
        let d = &drafts[0];
        assert_eq!((d.reason, d.warning), ("RulesRejected", true));
        assert!(d
            .note
            .starts_with("rules refused; revision sha256:aaaa stays active:"));
        assert!(d
            .note
            .contains("\nrules-000.yaml:1:7: unknown field `whne`"));
        assert!(d
            .note
            .contains("\nrules-001.yaml:2:7: unknown field `whne`"));
    }

    #[test]
    fn many_problems_split_over_events_within_the_limit() {
        let drafts = rejected(&invalid(30, &"x".repeat(100)), Some("sha256:aaaa"));
        assert!(
            drafts.len() > 1 && drafts.len() <= MAX_PARTS,
            "{}",
            drafts.len()
        );
        for (i, d) in drafts.iter().enumerate() {
            assert!(d.note.len() <= MAX_NOTE, "part {i}: {} bytes", d.note.len());
            assert!(d
                .note
                .contains(&format!("(part {}/{})", i + 1, drafts.len())));
            assert_eq!(d.part, i);
        }
        let all: String = drafts.iter().map(|d| d.note.as_str()).collect();
        for i in 0..30 {
            assert!(
                all.contains(&format!("rules-{i:03}.yaml:{}:7", i + 1)),
                "{i}"
            );
        }
    }

    #[test]
    fn too_many_to_explain_keeps_every_position() {
        let drafts = rejected(&invalid(150, &"y".repeat(200)), Some("sha256:aaaa"));
        assert!(drafts.len() <= MAX_PARTS);
        let all: String = drafts.iter().map(|d| d.note.as_str()).collect();
        for i in 0..150 {
            assert!(
                all.contains(&format!("rules-{i:03}.yaml:{}:7", i + 1)),
                "{i}"
            );
        }
        assert!(!all.contains("yyyy"), "messages should have been dropped");
    }

    #[test]
    fn beyond_every_limit_the_last_event_says_how_many_more() {
        let drafts = rejected(&invalid(2000, "z"), Some("sha256:aaaa"));
        assert_eq!(drafts.len(), MAX_PARTS);
        let last = &drafts[MAX_PARTS - 1].note;
        assert!(last.len() <= MAX_NOTE, "{}", last.len());
        let shown: usize = drafts
            .iter()
            .map(|d| d.note.lines().filter(|l| l.starts_with("rules-")).count())
            .sum();
        assert!(
            last.ends_with(&format!(
                "… {} more: GET /rules or the engine log",
                2000 - shown
            )),
            "{last}"
        );
    }

    #[test]
    fn a_refusal_at_startup_says_the_engine_does_not_start() {
        let note = &rejected(&invalid(1, "bad"), None)[0].note;
        assert!(
            note.starts_with("rules refused; the engine cannot start:"),
            "{note}"
        );
    }

    #[test]
    fn a_refusal_without_positions_says_why() {
        let e = ReloadError::Timeout(std::time::Duration::from_secs(30));
        let drafts = rejected(&e, Some("sha256:aaaa"));
        assert_eq!(drafts.len(), 1);
        assert!(
            drafts[0].note.contains("did not finish within 30s"),
            "{:?}",
            drafts[0]
        );
    }

    #[test]
    fn a_rule_test_failure_points_at_file_and_line() {
        let e = ReloadError::TestsFailed {
            failed: 1,
            details: String::new(),
            locations: vec![ErrorLocation {
                file: "local.test.yaml".into(),
                line: 12,
                column: 0,
                message: "rule test t / c failed:\n- phase: Failed\n+ phase: Running".into(),
            }],
        };
        let note = &rejected(&e, Some("sha256:aaaa"))[0].note;
        assert!(
            note.ends_with("\nlocal.test.yaml:12: rule test t / c failed"),
            "{note}"
        );
        assert!(
            !note.contains("phase: Running"),
            "only the first line: {note}"
        );
    }

    fn applied(revision: &str, previous: Option<&str>, files: usize) -> EventDraft {
        let was = previous.map_or(Was::Unchanged, Was::Revision);
        applied_as(Role::Active, revision, was, files)
    }

    #[test]
    fn applied_names_the_revision_and_what_it_replaced() {
        let d = applied("sha256:bbbb", Some("sha256:aaaa"), 7);
        assert_eq!((d.reason, d.warning), ("RulesApplied", false));
        assert_eq!(
            d.note,
            "rules revision sha256:bbbb is deciding (7 files; was sha256:aaaa)"
        );
        assert!(applied("sha256:bbbb", None, 7).note.ends_with("unchanged)"));
    }

    #[test]
    fn a_candidate_in_shadow_reports_under_its_own_reasons() {
        let first = applied_as(Role::Shadow, "sha256:cccc", Was::Nothing, 7);
        assert_eq!((first.reason, first.warning), ("ShadowRulesApplied", false));
        assert_eq!(
            first.note,
            "candidate rules revision sha256:cccc is evaluated in shadow, never applied (7 files)"
        );
        let next = applied_as(Role::Shadow, "sha256:dddd", Was::Revision("sha256:cccc"), 7);
        assert!(
            next.note.ends_with("(7 files; was sha256:cccc)"),
            "{}",
            next.note
        );

        let kept = rejected_as(Role::Shadow, &invalid(1, "bad"), Some("sha256:cccc"));
        assert_eq!(
            (kept[0].reason, kept[0].warning),
            ("ShadowRulesRejected", true)
        );
        assert!(
            kept[0].note.starts_with(
                "candidate rules refused; candidate revision sha256:cccc stays in shadow:\nrules-000.yaml:1:7: bad"
            ),
            "{}",
            kept[0].note
        );
        let none = &rejected_as(Role::Shadow, &invalid(1, "bad"), None)[0].note;
        assert!(
            none.starts_with("candidate rules refused; no candidate is evaluated in shadow:"),
            "{none}"
        );
        // The longer header still leaves every part within the limit.
        for d in rejected_as(Role::Shadow, &invalid(2000, "z"), Some("sha256:cccc")) {
            assert!(d.note.len() <= MAX_NOTE, "{}", d.note.len());
        }
        // Same ConfigMap version, same outcome kind: the shadow's event is
        // a different object from the active set's.
        let active = applied("sha256:cccc", None, 7);
        let shadow = applied_as(Role::Shadow, "sha256:cccc", Was::Unchanged, 7);
        assert_ne!(
            event_name("rules", &origin(), &active),
            event_name("rules", &origin(), &shadow)
        );
    }

    #[test]
    fn event_names_are_stable_distinct_and_valid() {
        let d = applied("sha256:b", None, 1);
        let a = event_name("wfe-engine-rules", &origin(), &d);
        assert_eq!(a, event_name("wfe-engine-rules", &origin(), &d));
        assert!(a.starts_with("wfe-engine-rules."));
        let other = Origin {
            resource_version: "43".into(),
            ..origin()
        };
        assert_ne!(a, event_name("wfe-engine-rules", &other, &d));
        let r = &rejected(&invalid(1, "m"), Some("sha256:a"))[0];
        assert_ne!(a, event_name("wfe-engine-rules", &origin(), r));
        // A long name is cut without leaving '-' or '.' before the digest.
        let long = format!("{}-{}", "a".repeat(235), "b".repeat(17));
        let n = event_name(&long, &origin(), &d);
        assert!(n.len() <= MAX_NAME, "{}", n.len());
        assert!(!n.contains("-.") && !n.contains(".."), "{n}");
    }

    #[test]
    fn cut_respects_char_boundaries() {
        let s = "é".repeat(300);
        let c = cut(&s, 101);
        assert!(c.len() <= 101 && c.ends_with('…'));
        assert_eq!(cut("short", 10), "short");
    }
}
