//! Line diffs with word-level emphasis inside changed lines (similar), for version
//! comparisons; and three-way merges (diffy) to propose a resolution of an edit conflict.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use similar::{Algorithm, ChangeTag, DiffOp, TextDiff};

/// Largest pair of texts compared, in bytes together; larger ones are "too large to diff".
pub const MAX_DIFF_BYTES: usize = 4_000_000;
/// Most lines (both sides together) compared.
pub const MAX_DIFF_LINES: usize = 100_000;
/// Time for the whole comparison, word emphasis included. When it runs out, the diff is
/// still correct but coarser (fewer, larger hunks; no word emphasis).
pub const DIFF_BUDGET: Duration = Duration::from_millis(750);
/// Most lines of diff output shown.
pub const MAX_OUTPUT_LINES: usize = 20_000;
/// Changed blocks larger than this (lines, both sides) are shown line by line without word
/// emphasis: a word diff of thousands of rewritten lines tells a reader nothing and costs
/// a quarter of a second per megabyte.
pub const MAX_EMPHASIS_LINES: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Added,
    Removed,
    /// A `@@` header between hunks.
    Hunk,
}

/// One line of a unified diff, split into segments; emphasized segments are the words that
/// changed.
#[derive(Debug, Clone)]
pub struct DiffLine {
    pub kind: LineKind,
    pub old_no: Option<usize>,
    pub new_no: Option<usize>,
    pub segments: Vec<(bool, String)>,
}

impl DiffLine {
    pub fn css(&self) -> &'static str {
        match self.kind {
            LineKind::Context => "ctx",
            LineKind::Added => "add",
            LineKind::Removed => "del",
            LineKind::Hunk => "hunk",
        }
    }

    pub fn sign(&self) -> &'static str {
        match self.kind {
            LineKind::Context => " ",
            LineKind::Added => "+",
            LineKind::Removed => "-",
            LineKind::Hunk => "",
        }
    }
}

/// The result of comparing two texts.
#[derive(Debug, Clone)]
pub enum Diff {
    Lines(Vec<DiffLine>),
    /// Beyond the size caps: shown as "too large to diff", with both versions to download.
    TooLarge,
}

impl Diff {
    /// The lines to show (none when too large).
    pub fn lines(&self) -> &[DiffLine] {
        match self {
            Diff::Lines(lines) => lines,
            Diff::TooLarge => &[],
        }
    }
}

/// Diffs computed lately, by a key naming the two texts (both immutable, such as two saved
/// versions of a page), weighted by output lines: a flood of requests for one expensive
/// diff costs one computation, not one per request.
fn cache() -> &'static moka::sync::Cache<String, Arc<Diff>> {
    static CACHE: OnceLock<moka::sync::Cache<String, Arc<Diff>>> = OnceLock::new();
    CACHE.get_or_init(|| {
        moka::sync::Cache::builder()
            .weigher(|_k, v: &Arc<Diff>| match v.as_ref() {
                Diff::Lines(lines) => lines.len().try_into().unwrap_or(u32::MAX).max(1),
                Diff::TooLarge => 1,
            })
            // About 200,000 lines of output (ten of the largest diffs).
            .max_capacity(200_000)
            .build()
    })
}

/// The diff cached under `key`, if any (cheap: no need to load the texts).
pub fn cached(key: &str) -> Option<Arc<Diff>> {
    cache().get(key)
}

/// [`unified`], cached under `key`, which must name `old` and `new` for good. Concurrent
/// callers with one key wait for one computation. CPU-bound: call it from a blocking thread.
pub fn unified_cached(key: String, old: &str, new: &str) -> Arc<Diff> {
    cache().get_with(key, || Arc::new(unified(old, new)))
}

/// A unified diff (3 lines of context) between two texts, within the size and time caps.
/// CPU-bound: call it from a blocking thread ([`crate::heavy::run`]).
pub fn unified(old: &str, new: &str) -> Diff {
    if old.len() + new.len() > MAX_DIFF_BYTES
        || old.lines().count() + new.lines().count() > MAX_DIFF_LINES
    {
        return Diff::TooLarge;
    }
    // Texts without a line in common are one replaced block: an already-passed deadline gives
    // exactly that at once, where the search would spend its whole budget finding nothing.
    let shared: std::collections::HashSet<&str> = old.lines().collect();
    let started = Instant::now();
    let line_deadline = if new.lines().any(|l| shared.contains(l)) {
        started + DIFF_BUDGET
    } else {
        started
    };
    // Word emphasis shares what is left of the budget.
    let deadline = started + DIFF_BUDGET;
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .deadline(line_deadline)
        .diff_lines(old, new);
    let mut out = Vec::new();
    'groups: for group in diff.grouped_ops(3) {
        if let (Some(first), Some(last)) = (group.first(), group.last()) {
            let (o, n) = (first.old_range().start, first.new_range().start);
            let (oe, ne) = (last.old_range().end, last.new_range().end);
            out.push(DiffLine {
                kind: LineKind::Hunk,
                old_no: None,
                new_no: None,
                segments: vec![(
                    false,
                    format!("@@ -{},{} +{},{} @@", o + 1, oe - o, n + 1, ne - n),
                )],
            });
        }
        for op in &group {
            let emphasis = op.old_range().len() + op.new_range().len() <= MAX_EMPHASIS_LINES;
            let changes: Box<dyn Iterator<Item = _>> = if emphasis {
                // One deadline for every hunk: per-hunk budgets add up to minutes on big texts.
                Box::new(
                    diff.iter_inline_changes_deadline(op, Some(deadline))
                        .map(|c| {
                            line(
                                c.tag(),
                                c.old_index(),
                                c.new_index(),
                                c.iter_strings_lossy(),
                            )
                        }),
                )
            } else {
                Box::new(plain_changes(&diff, op))
            };
            for change in changes {
                if out.len() >= MAX_OUTPUT_LINES {
                    out.push(DiffLine {
                        kind: LineKind::Hunk,
                        old_no: None,
                        new_no: None,
                        segments: vec![(false, "… the rest of the diff is not shown".into())],
                    });
                    break 'groups;
                }
                out.push(change);
            }
        }
    }
    Diff::Lines(out)
}

/// The lines of one operation without word emphasis, lazily (the output cap stops it early).
fn plain_changes<'a>(
    diff: &'a TextDiff<'a, 'a, 'a, str>,
    op: &DiffOp,
) -> impl Iterator<Item = DiffLine> + 'a {
    diff.iter_changes(op).map(|c| {
        let text = c.to_string_lossy();
        line(
            c.tag(),
            c.old_index(),
            c.new_index(),
            std::iter::once((false, text)),
        )
    })
}

fn line<'s>(
    tag: ChangeTag,
    old: Option<usize>,
    new: Option<usize>,
    segments: impl IntoIterator<Item = (bool, std::borrow::Cow<'s, str>)>,
) -> DiffLine {
    let kind = match tag {
        ChangeTag::Equal => LineKind::Context,
        ChangeTag::Insert => LineKind::Added,
        ChangeTag::Delete => LineKind::Removed,
    };
    DiffLine {
        kind,
        old_no: old.map(|i| i + 1),
        new_no: new.map(|i| i + 1),
        segments: segments
            .into_iter()
            .map(|(emph, s)| (emph, s.trim_end_matches('\n').to_owned()))
            .collect(),
    }
}

/// Texts beyond these (any of the three) are not merged: the three-way merge is quadratic in
/// lines, and a conflict without a proposal loses nothing (both texts are shown).
pub const MAX_MERGE_BYTES: usize = 256 * 1024;
pub const MAX_MERGE_LINES: usize = 5_000;

/// Three-way merge of two edits of `base`: `Ok` when they merge cleanly, else the text with
/// conflict markers (or, beyond the merge caps, `ours` unmerged). CPU-bound: call it from a
/// blocking thread.
pub fn merge(base: &str, ours: &str, theirs: &str) -> Result<String, String> {
    let too_big = [base, ours, theirs]
        .iter()
        .any(|t| t.len() > MAX_MERGE_BYTES || t.lines().count() > MAX_MERGE_LINES);
    if too_big {
        return Err(ours.to_owned());
    }
    diffy::merge(base, ours, theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(d: Diff) -> Vec<DiffLine> {
        match d {
            Diff::Lines(l) => l,
            Diff::TooLarge => panic!("too large"),
        }
    }

    #[test]
    fn big_different_texts_diff_within_the_budget() {
        // Two unrelated 1 MB texts: this took minutes with per-hunk budgets.
        let a: String = (0..40_000)
            .map(|i| format!("alpha line {i} {}\n", i * 7))
            .collect();
        let b: String = (0..40_000)
            .map(|i| format!("beta row {} {i}\n", i * 3))
            .collect();
        let started = Instant::now();
        let out = lines(unified(&a, &b));
        assert!(!out.is_empty());
        assert!(out.len() <= MAX_OUTPUT_LINES + 1);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let huge = "x\n".repeat(MAX_DIFF_BYTES / 2);
        assert!(matches!(unified(&huge, "y"), Diff::TooLarge));
    }

    #[test]
    fn unified_diff_marks_changed_words() {
        let lines = lines(unified(
            "one\ntwo three\nfour\n",
            "one\ntwo THREE\nfour\nfive\n",
        ));
        assert_eq!(lines[0].kind, LineKind::Hunk);
        let removed = lines.iter().find(|l| l.kind == LineKind::Removed).unwrap();
        assert!(
            removed
                .segments
                .iter()
                .any(|(emph, s)| *emph && s == "three")
        );
        let added: Vec<_> = lines.iter().filter(|l| l.kind == LineKind::Added).collect();
        assert_eq!(added.len(), 2);
        assert!(
            added[0]
                .segments
                .iter()
                .any(|(emph, s)| *emph && s == "THREE")
        );
    }

    #[test]
    fn a_one_line_edit_still_marks_the_word() {
        // No line in common: the line search is skipped, word emphasis is not.
        let lines = lines(unified("two three\n", "two four\n"));
        let added = lines.iter().find(|l| l.kind == LineKind::Added).unwrap();
        assert!(added.segments.iter().any(|(emph, s)| *emph && s == "four"));
        assert!(
            added
                .segments
                .iter()
                .any(|(emph, s)| !*emph && s.starts_with("two"))
        );
    }

    #[test]
    fn big_blocks_are_shown_without_word_emphasis() {
        let a: String = (0..3_000).map(|i| format!("a {i}\n")).collect();
        let b: String = (0..3_000).map(|i| format!("b {i}\n")).collect();
        let out = lines(unified(&a, &b));
        assert_eq!(
            out.iter().filter(|l| l.kind == LineKind::Removed).count(),
            3_000
        );
        assert_eq!(
            out.iter().filter(|l| l.kind == LineKind::Added).count(),
            3_000
        );
        assert!(out.iter().all(|l| l.segments.iter().all(|(emph, _)| !emph)));
    }

    #[test]
    fn cached_diffs_are_computed_once() {
        let key = format!("test:{:?}", Instant::now());
        assert!(cached(&key).is_none());
        let first = unified_cached(key.clone(), "a\n", "b\n");
        // The same key answers the first result even if asked with other texts.
        let again = unified_cached(key.clone(), "x\n", "x\n");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(cached(&key).is_some_and(|d| Arc::ptr_eq(&d, &first)));
    }

    #[test]
    fn merges_separate_edits() {
        let base = "a\nb\nc\n";
        assert_eq!(merge(base, "A\nb\nc\n", "a\nb\nC\n").unwrap(), "A\nb\nC\n");
        assert!(merge(base, "x\nb\nc\n", "y\nb\nc\n").is_err());
    }
}
