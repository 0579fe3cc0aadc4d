//! Line diffs with word-level emphasis inside changed lines (similar), for version
//! comparisons; and three-way merges (diffy) to propose a resolution of an edit conflict.

use similar::{ChangeTag, TextDiff};

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

/// A unified diff (3 lines of context) between two texts.
pub fn unified(old: &str, new: &str) -> Vec<DiffLine> {
    let diff = TextDiff::from_lines(old, new);
    let mut out = Vec::new();
    for group in diff.grouped_ops(3) {
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
            for change in diff.iter_inline_changes(op) {
                let kind = match change.tag() {
                    ChangeTag::Equal => LineKind::Context,
                    ChangeTag::Insert => LineKind::Added,
                    ChangeTag::Delete => LineKind::Removed,
                };
                let segments = change
                    .iter_strings_lossy()
                    .map(|(emph, s)| (emph, s.trim_end_matches('\n').to_owned()))
                    .collect();
                out.push(DiffLine {
                    kind,
                    old_no: change.old_index().map(|i| i + 1),
                    new_no: change.new_index().map(|i| i + 1),
                    segments,
                });
            }
        }
    }
    out
}

/// Three-way merge of two edits of `base`: `Ok` when they merge cleanly, else the text with
/// conflict markers.
pub fn merge(base: &str, ours: &str, theirs: &str) -> Result<String, String> {
    diffy::merge(base, ours, theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diff_marks_changed_words() {
        let lines = unified("one\ntwo three\nfour\n", "one\ntwo THREE\nfour\nfive\n");
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
    fn merges_separate_edits() {
        let base = "a\nb\nc\n";
        assert_eq!(merge(base, "A\nb\nc\n", "a\nb\nC\n").unwrap(), "A\nb\nC\n");
        assert!(merge(base, "x\nb\nc\n", "y\nb\nc\n").is_err());
    }
}
