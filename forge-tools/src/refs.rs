//! Artifact references in user text: `[PageName]`, `[[PageName]]`, `[wiki:PageName]`,
//! `[<mount>:PageName]`, `[project:mount:Page]`, `[#123]` (tickets) and `[abc1234]` (commits).
//! This module parses them; each tool resolves them to links (see `markdown::render_with_refs`).

use std::collections::HashMap;

use crate::names;

/// What a reference points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RefTarget {
    /// A named artifact (a wiki page): in this tool, another tool of this project, or another
    /// project.
    Artifact {
        project: Option<String>,
        mount: Option<String>,
        name: String,
    },
    /// A ticket by number, optionally in a named tracker.
    Ticket { mount: Option<String>, number: u64 },
    /// A commit by (abbreviated) id, optionally in a named repository.
    Commit { mount: Option<String>, id: String },
}

/// The sorts of reference a tool kind may answer (see `crate::tool::Tool::ref_kinds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// Named artifacts (`[Page]`).
    Artifact,
    /// Numbered tickets (`[#12]`).
    Ticket,
    /// Commits by id (`[abc1234]`).
    Commit,
}

/// How a reference renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A link to something that exists (or whose existence is not checked).
    Link { url: String },
    /// A missing page the viewer may create: a link to its edit form.
    Create { url: String },
    /// Plain text: unknown target, or nothing the viewer may create.
    Text,
}

/// Resolutions keyed by the reference as written (without brackets).
pub type ResolvedRefs = HashMap<String, Resolution>;

/// Parses the inside of `[...]`; `None` when it is not a reference.
pub fn parse(raw: &str) -> Option<RefTarget> {
    let raw = raw.trim();
    // `[x]` and `[ ]` are task-list markers, `[TOC]` the table of contents.
    if raw.is_empty()
        || raw.len() > 200
        || raw.contains(['\n', '[', ']'])
        || raw.contains("://")
        || matches!(raw, "TOC" | "x" | "X")
    {
        return None;
    }
    if let Some(n) = raw.strip_prefix('#') {
        return n.parse().ok().map(|number| RefTarget::Ticket {
            mount: None,
            number,
        });
    }
    if is_commit_id(raw) {
        return Some(RefTarget::Commit {
            mount: None,
            id: raw.to_owned(),
        });
    }
    let parts: Vec<&str> = raw.splitn(3, ':').collect();
    match parts.as_slice() {
        [name] => page_name_ok(name).then(|| RefTarget::Artifact {
            project: None,
            mount: None,
            name: (*name).to_owned(),
        }),
        [mount, rest] if names::check_mount(mount).is_ok() => {
            if let Some(n) = rest.strip_prefix('#') {
                return n.parse().ok().map(|number| RefTarget::Ticket {
                    mount: Some((*mount).to_owned()),
                    number,
                });
            }
            if is_commit_id(rest) {
                return Some(RefTarget::Commit {
                    mount: Some((*mount).to_owned()),
                    id: (*rest).to_owned(),
                });
            }
            page_name_ok(rest).then(|| RefTarget::Artifact {
                project: None,
                mount: Some((*mount).to_owned()),
                name: (*rest).to_owned(),
            })
        }
        [project, mount, name]
            if names::check_shortname(project).is_ok() && names::check_mount(mount).is_ok() =>
        {
            page_name_ok(name).then(|| RefTarget::Artifact {
                project: Some((*project).to_owned()),
                mount: Some((*mount).to_owned()),
                name: (*name).to_owned(),
            })
        }
        // "Note: something" is a page name with a colon, not a mount reference.
        _ => page_name_ok(raw).then(|| RefTarget::Artifact {
            project: None,
            mount: None,
            name: raw.to_owned(),
        }),
    }
}

fn is_commit_id(s: &str) -> bool {
    (7..=40).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        && s.chars().any(|c| c.is_ascii_digit())
}

/// Page names: 1 to 100 characters, no `/`, brackets, `|`, `#`, `?` or control characters, not
/// starting with `_` (reserved for the wiki's own pages) or `.`.
pub fn page_name_ok(name: &str) -> bool {
    let n = name.chars().count();
    (1..=100).contains(&n)
        && name.trim() == name
        && !name.starts_with(['_', '.'])
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\' | '[' | ']' | '|' | '#' | '?' | '%'))
}

/// Every reference written in `text` (as written, deduplicated, in order). A superset is fine:
/// resolving a few extra names costs a little, missing one would leave it unlinked.
pub fn scan(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let double = rest.starts_with('[');
        let inner_start = if double { &rest[1..] } else { rest };
        let Some(close) = inner_start.find([']', '[', '\n']) else {
            break;
        };
        if inner_start.as_bytes()[close] != b']' {
            continue;
        }
        let inner = &inner_start[..close];
        let key = if double {
            inner.split('|').next().unwrap_or(inner).trim()
        } else {
            inner.trim()
        };
        if parse(key).is_some() && !out.iter().any(|k| k == key) {
            out.push(key.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn art(p: Option<&str>, m: Option<&str>, n: &str) -> Option<RefTarget> {
        Some(RefTarget::Artifact {
            project: p.map(Into::into),
            mount: m.map(Into::into),
            name: n.into(),
        })
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(parse("PageName"), art(None, None, "PageName"));
        assert_eq!(parse("wiki:PageName"), art(None, Some("wiki"), "PageName"));
        assert_eq!(
            parse("docs:Install Guide"),
            art(None, Some("docs"), "Install Guide")
        );
        assert_eq!(
            parse("forge:wiki:Home"),
            art(Some("forge"), Some("wiki"), "Home")
        );
        assert_eq!(
            parse("#123"),
            Some(RefTarget::Ticket {
                mount: None,
                number: 123
            })
        );
        assert_eq!(
            parse("bugs:#7"),
            Some(RefTarget::Ticket {
                mount: Some("bugs".into()),
                number: 7
            })
        );
        assert_eq!(
            parse("abc1234"),
            Some(RefTarget::Commit {
                mount: None,
                id: "abc1234".into()
            })
        );
        assert_eq!(parse("Note: read this"), art(None, None, "Note: read this"));
    }

    #[test]
    fn rejects_what_is_not_a_reference() {
        for s in [
            "",
            "TOC",
            "http://x.org",
            "a/b",
            "_private",
            "#x",
            "x".repeat(101).as_str(),
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn scan_finds_single_and_double_brackets() {
        let found = scan(
            "See [Home] and [[Other Page|the other]] and [wiki:Home], not [a/b] or [ ]. [Home] again.",
        );
        assert_eq!(found, ["Home", "Other Page", "wiki:Home"]);
    }
}
