//! Markdown to safe HTML, shared by every tool: CommonMark with GitHub extensions (tables, task
//! lists, strikethrough, autolinks), fenced code highlighted with syntect, headings with
//! anchors, an optional `[TOC]`, and artifact references resolved through a map the tool
//! prepares (see [`crate::refs`]). The result is always sanitized with ammonia: no script,
//! event handler or `javascript:` URL from user text reaches a page.

pub mod highlight;

use std::sync::{Arc, OnceLock};

use comrak::nodes::{AstNode, NodeHtmlBlock, NodeLink, NodeValue};
use comrak::{
    Anchorizer, Arena, BrokenLinkReference, Options, ResolvedReference, format_html, parse_document,
};

use crate::refs::{self, Resolution, ResolvedRefs};

/// Marks links comrak made from `[reference]` syntax, to be resolved after parsing.
const REF_SCHEME: &str = "forge-ref:";
/// Heading ids get a prefix so user content cannot clobber the page's own element ids.
const ANCHOR_PREFIX: &str = "h-";

/// Longest run of text without white space in which bare URLs are still linked: comrak's
/// autolinker rescans a run for each link in it, quadratic in the run's length.
const MAX_AUTOLINK_RUN: usize = 2_000;
/// Most headings given anchors (ids and a table of contents): each repeated title is
/// numbered by trying `-1`, `-2`... in turn, quadratic in the repeats.
pub const MAX_ANCHORED_HEADINGS: usize = 500;

/// Whether the text can be autolinked in linear time (no long run without white space).
fn autolink_safe(text: &str) -> bool {
    text.split(char::is_whitespace)
        .all(|run| run.len() <= MAX_AUTOLINK_RUN)
}

fn options<'c>(text: &str) -> Options<'c> {
    let mut opts = Options::default();
    opts.extension.table = true;
    opts.extension.strikethrough = true;
    opts.extension.tasklist = true;
    opts.extension.autolink = autolink_safe(text);
    opts.extension.header_ids = Some(ANCHOR_PREFIX.to_owned());
    opts.extension.wikilinks_title_after_pipe = true;
    // Raw HTML passes through to the sanitizer, which is the one guard (users may write
    // <details>, <kbd>...; scripts and handlers are removed there).
    opts.render.unsafe_ = true;
    opts
}

/// Largest text rendered as markdown, in bytes; larger texts are shown as written.
pub const MAX_RENDER_BYTES: usize = 2_000_000;
/// Deepest nesting of markdown structure (block quotes, lists, emphasis, links) rendered;
/// deeper documents are shown as written. Real documents stay far below this.
pub const MAX_DEPTH: usize = 64;
/// Deepest nesting of raw HTML elements passed to the sanitizer.
pub const MAX_HTML_DEPTH: usize = 256;
/// Code highlighted per document, in bytes of code; the rest is shown plain.
pub const MAX_HIGHLIGHT_BYTES: usize = 256 * 1024;
/// Texts at least this large are rendered on a blocking thread (see [`render_async`]).
pub const INLINE_BYTES: usize = 32 * 1024;

/// Renders markdown with no artifact references (descriptions, previews without a tool).
pub fn render(text: &str) -> String {
    render_with_refs(text, &ResolvedRefs::new())
}

/// [`render_with_refs`], off the async threads when the text is large. Texts rendered lately
/// are kept by a digest of what went in (text and references), so the same text costs one
/// rendering however often (or, when large, however many at once) it is asked for: a ticket's
/// description and comments on every view, a popular big page, a preview sent again. The
/// digest costs far less than parsing and sanitizing.
pub async fn render_async(text: String, resolved: ResolvedRefs) -> crate::error::Result<String> {
    let key = digest(&text, &resolved);
    if let Some(html) = rendered_cache().get(&key) {
        return Ok(html.as_ref().clone());
    }
    if text.len() < INLINE_BYTES {
        let html = render_with_refs(&text, &resolved);
        rendered_cache().insert(key, Arc::new(html.clone()));
        return Ok(html);
    }
    let html = crate::heavy::run(move || {
        rendered_cache().get_with(key, || Arc::new(render_with_refs(&text, &resolved)))
    })
    .await?;
    Ok(html.as_ref().clone())
}

/// Rendered texts by [`digest`], weighted by HTML size (about 32 MB per process).
fn rendered_cache() -> &'static moka::sync::Cache<[u8; 32], Arc<String>> {
    static CACHE: OnceLock<moka::sync::Cache<[u8; 32], Arc<String>>> = OnceLock::new();
    CACHE.get_or_init(|| {
        moka::sync::Cache::builder()
            .weigher(|_k, v: &Arc<String>| v.len().try_into().unwrap_or(u32::MAX))
            .max_capacity(32 << 20)
            .build()
    })
}

/// SHA-256 of the text and its resolved references (in a fixed order).
fn digest(text: &str, resolved: &ResolvedRefs) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(text.len().to_le_bytes());
    h.update(text.as_bytes());
    let mut refs: Vec<_> = resolved.iter().collect();
    refs.sort_by(|a, b| a.0.cmp(b.0));
    for (raw, how) in refs {
        h.update(format!("\0{}\0{raw}\0{how:?}", raw.len()).as_bytes());
    }
    h.finalize().into()
}

/// What a text that cannot be rendered shows instead: its source, escaped.
fn unrendered(text: &str, why: &str) -> String {
    format!(
        "<div class=\"unrendered\"><p class=\"notice\">{}</p><pre>{}</pre></div>",
        escape(why),
        escape(text)
    )
}

/// Deepest nesting of the parsed document, found without recursion.
fn depth<'a>(root: &'a AstNode<'a>) -> usize {
    use comrak::arena_tree::NodeEdge;
    let (mut depth, mut deepest) = (0usize, 0usize);
    for edge in root.traverse() {
        match edge {
            NodeEdge::Start(_) => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            NodeEdge::End(_) => depth = depth.saturating_sub(1),
        }
    }
    deepest
}

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// Deepest nesting of raw HTML tags in the rendered output: a cheap, linear over-estimate
/// (void elements and unclosed tags count as opened), so anything it passes is safe to hand
/// to the HTML parser (mail in checks HTML mail with it too).
pub fn html_depth(html: &str) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'<' {
            if bytes[i + 1] == b'/' {
                depth = depth.saturating_sub(1);
            } else if bytes[i + 1].is_ascii_alphabetic() {
                let name_end = bytes[i + 1..]
                    .iter()
                    .position(|b| !b.is_ascii_alphanumeric())
                    .map_or(bytes.len(), |p| i + 1 + p);
                let name = html[i + 1..name_end].to_ascii_lowercase();
                // Void elements never hold anything, closed or not.
                if !VOID.contains(&name.as_str()) {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                i = name_end;
                continue;
            }
        }
        i += 1;
    }
    deepest
}

/// Renders markdown, turning references into links as `resolved` says (references missing from
/// the map render as text). Too large or too deeply nested input is shown as written, never
/// rendered: every step here is linear or bounded, whatever the input.
pub fn render_with_refs(text: &str, resolved: &ResolvedRefs) -> String {
    if text.len() > MAX_RENDER_BYTES {
        return unrendered(
            text,
            "This text is too large to render; it is shown as written.",
        );
    }
    let arena = Arena::new();
    let mut opts = options(text);
    opts.parse.broken_link_callback = Some(Arc::new(|r: BrokenLinkReference| {
        refs::parse(r.original).map(|_| ResolvedReference {
            url: format!("{REF_SCHEME}{}", r.original),
            title: String::new(),
        })
    }));
    let root = parse_document(&arena, text, &opts);
    if depth(root) > MAX_DEPTH {
        return unrendered(
            text,
            "This text is nested too deeply to render; it is shown as written.",
        );
    }
    let nodes: Vec<&AstNode> = root.descendants().collect();
    let heading_count = nodes
        .iter()
        .filter(|n| matches!(n.data.borrow().value, NodeValue::Heading(_)))
        .count();
    let anchored = heading_count <= MAX_ANCHORED_HEADINGS;
    if !anchored {
        opts.extension.header_ids = None;
    }
    let mut anchorizer = Anchorizer::new();
    let mut headings: Vec<(u8, String, String)> = Vec::new();
    let mut tocs = Vec::new();
    let mut highlighted = 0usize;
    for node in nodes {
        let value = node.data.borrow().value.clone();
        match value {
            NodeValue::Heading(h) if anchored => {
                let text = plain_text(node);
                let anchor = anchorizer.anchorize(text.clone());
                headings.push((h.level, text, anchor));
            }
            NodeValue::CodeBlock(cb) => {
                let lang = cb.info.split_whitespace().next().unwrap_or("").to_owned();
                // Highlighting multiplies text into spans; past a budget, code is plain.
                let body = if highlighted + cb.literal.len() <= MAX_HIGHLIGHT_BYTES {
                    highlighted += cb.literal.len();
                    highlight::highlight(&cb.literal, &lang)
                } else {
                    None
                }
                .unwrap_or_else(|| escape(&cb.literal));
                let class = if lang.is_empty() {
                    String::new()
                } else {
                    format!(" class=\"language-{}\"", escape(&lang))
                };
                node.data.borrow_mut().value = NodeValue::HtmlBlock(NodeHtmlBlock {
                    block_type: 0,
                    literal: format!("<pre><code{class}>{body}</code></pre>\n"),
                });
            }
            NodeValue::WikiLink(link) => resolve_link(node, link.url.trim(), true, resolved),
            NodeValue::Link(link) if link.url.starts_with(REF_SCHEME) => {
                let key = link.url[REF_SCHEME.len()..].to_owned();
                resolve_link(node, key.trim(), false, resolved);
            }
            NodeValue::Paragraph if plain_text(node).trim() == "[TOC]" => tocs.push(node),
            _ => {}
        }
    }
    if !tocs.is_empty() {
        let toc = toc_html(&headings);
        for node in tocs {
            node.data.borrow_mut().value = NodeValue::HtmlBlock(NodeHtmlBlock {
                block_type: 0,
                literal: toc.clone(),
            });
            for child in node.children().collect::<Vec<_>>() {
                child.detach();
            }
        }
    }
    let mut html = Vec::new();
    if format_html(root, &opts, &mut html).is_err() {
        return String::new();
    }
    // comrak prefixes heading ids but not their self-links; all ids carry the prefix, so every
    // in-page link (users' `[x](#install)` too) gets it.
    let html =
        String::from_utf8_lossy(&html).replace("href=\"#", &format!("href=\"#{ANCHOR_PREFIX}"));
    if html_depth(&html) > MAX_HTML_DEPTH {
        return unrendered(
            text,
            "This text's HTML is nested too deeply to render; it is shown as written.",
        );
    }
    sanitize(&html)
}

/// Applies a reference's resolution to its link node.
fn resolve_link<'a>(node: &'a AstNode<'a>, key: &str, double: bool, resolved: &ResolvedRefs) {
    match resolved.get(key) {
        Some(Resolution::Link { url }) => {
            node.data.borrow_mut().value = NodeValue::Link(NodeLink {
                url: url.clone(),
                title: String::new(),
            });
        }
        Some(Resolution::Create { url }) => {
            node.data.borrow_mut().value = NodeValue::Link(NodeLink {
                url: url.clone(),
                title: format!("Create page {key}"),
            });
        }
        Some(Resolution::Text) | None => {
            // Keep the text as written, brackets included.
            for child in node.children().collect::<Vec<_>>() {
                child.detach();
            }
            let shown = if double {
                format!("[[{key}]]")
            } else {
                format!("[{key}]")
            };
            node.data.borrow_mut().value = NodeValue::Text(shown);
        }
    }
}

/// The words of a markdown text without its markup (what the search index stores and shows
/// in snippets): block boundaries become line breaks, code stays, syntax goes.
pub fn to_plain_text(text: &str) -> String {
    if text.len() > MAX_RENDER_BYTES {
        return text.to_owned();
    }
    let arena = Arena::new();
    let root = parse_document(&arena, text, &options(text));
    let mut out = String::with_capacity(text.len());
    for node in root.descendants() {
        match &node.data.borrow().value {
            NodeValue::Paragraph
            | NodeValue::Heading(_)
            | NodeValue::TableCell
            | NodeValue::Item(_)
            | NodeValue::BlockQuote => out.push('\n'),
            NodeValue::Text(t) => out.push_str(t),
            NodeValue::Code(c) => out.push_str(&c.literal),
            NodeValue::CodeBlock(cb) => {
                out.push('\n');
                out.push_str(&cb.literal);
            }
            NodeValue::SoftBreak | NodeValue::LineBreak => out.push(' '),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// The text inside a node (a heading, a paragraph), collected without recursion: nesting is
/// the user's to choose.
fn plain_text<'a>(node: &'a AstNode<'a>) -> String {
    let mut out = String::new();
    for n in node.descendants() {
        match &n.data.borrow().value {
            NodeValue::Text(t) => out.push_str(t),
            NodeValue::Code(c) => out.push_str(&c.literal),
            NodeValue::SoftBreak | NodeValue::LineBreak => out.push(' '),
            _ => {}
        }
    }
    out
}

fn toc_html(headings: &[(u8, String, String)]) -> String {
    let mut html = String::from("<nav class=\"toc\"><ul>");
    for (level, text, anchor) in headings {
        html.push_str(&format!(
            "<li class=\"toc-{level}\"><a href=\"#{}\">{}</a></li>",
            escape(anchor),
            escape(text)
        ));
    }
    html.push_str("</ul></nav>\n");
    html
}

/// Escapes text for HTML (element content and quoted attributes).
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The one sanitizer for user HTML.
pub fn sanitize(html: &str) -> String {
    static CLEANER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    CLEANER
        .get_or_init(|| {
            let mut b = ammonia::Builder::default();
            b.add_tags(["input", "nav"])
                .add_tag_attributes("input", ["type", "checked", "disabled"])
                .add_tag_attributes("a", ["id", "aria-hidden", "title"])
                .add_tag_attributes("span", ["class"])
                .add_tag_attributes("code", ["class"])
                .add_tag_attributes("li", ["class"])
                .add_tag_attributes("nav", ["class"])
                .link_rel(Some("noopener noreferrer nofollow"));
            b.add_allowed_classes("a", ["anchor"]);
            b
        })
        .clean(html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_texts_render_once_per_text_and_references() {
        let text = format!("# Big\n\n[Other]\n\n{}", "word ".repeat(INLINE_BYTES / 4));
        let link = |url: &str| {
            ResolvedRefs::from([("Other".to_owned(), Resolution::Link { url: url.into() })])
        };
        let html = render_async(text.clone(), link("/a/")).await.unwrap();
        assert_eq!(html, render_with_refs(&text, &link("/a/")));
        assert!(rendered_cache().get(&digest(&text, &link("/a/"))).is_some());
        // Small texts (a comment) are kept too, rendered on the spot.
        let small = "A *comment* on [Other]".to_owned();
        let html = render_async(small.clone(), link("/c/")).await.unwrap();
        assert_eq!(html, render_with_refs(&small, &link("/c/")));
        assert!(
            rendered_cache()
                .get(&digest(&small, &link("/c/")))
                .is_some()
        );
        // Other references are another rendering, not the cached one.
        assert_ne!(digest(&text, &link("/a/")), digest(&text, &link("/b/")));
        let other = render_async(text.clone(), link("/b/")).await.unwrap();
        assert!(
            other.contains("href=\"/b/\"") && !other.contains("href=\"/a/\""),
            "{other}"
        );
    }

    #[test]
    fn renders_and_sanitizes() {
        let html = render("# Title\n\n*em* <script>alert(1)</script> [x](javascript:alert(1))");
        assert!(html.contains("Title</h1>"), "{html}");
        assert!(html.contains("id=\"h-title\""), "{html}");
        assert!(html.contains("<em>em</em>"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("javascript:"));
    }

    #[test]
    fn tables_tasks_and_code() {
        let html =
            render("| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n\n```rust\nfn main() {}\n```\n");
        assert!(html.contains("<table>"));
        assert!(html.contains("type=\"checkbox\""), "{html}");
        assert!(html.contains("class=\"language-rust\""));
        assert!(html.contains("<span class=\"hl-"), "{html}");
    }

    #[test]
    fn toc_lists_headings() {
        let html = render("[TOC]\n\n# One\n\n## Two\n");
        assert!(html.contains("<nav class=\"toc\">"), "{html}");
        assert!(html.contains("href=\"#h-one\""));
        assert!(html.contains("href=\"#h-two\""));
    }

    #[test]
    fn references_follow_the_map() {
        let mut map = ResolvedRefs::new();
        map.insert(
            "Home".into(),
            Resolution::Link {
                url: "/p/x/wiki/Home/".into(),
            },
        );
        map.insert(
            "New Page".into(),
            Resolution::Create {
                url: "/p/x/wiki/New%20Page/edit".into(),
            },
        );
        let html = render_with_refs(
            "See [Home], [[New Page|the new one]], [Unknown] and [#12].",
            &map,
        );
        assert!(
            html.contains(
                "<a href=\"/p/x/wiki/Home/\" rel=\"noopener noreferrer nofollow\">Home</a>"
            ),
            "{html}"
        );
        assert!(html.contains("href=\"/p/x/wiki/New%20Page/edit\""));
        assert!(html.contains("title=\"Create page New Page\""));
        assert!(html.contains("[Unknown]") && html.contains("[#12]"));
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;

    /// Runs `f` on a thread with the stack an async worker has (2 MiB), so a test fails the
    /// way the server would crash.
    fn on_small_stack(f: impl FnOnce() -> String + Send + 'static) -> String {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    fn nested_inputs() -> Vec<(&'static str, String)> {
        let n = 40_000;
        vec![
            (
                "emphasis",
                format!("{}x{}", "*a ".repeat(n), " b*".repeat(n)),
            ),
            ("strong", format!("{}x{}", "**".repeat(n), "**".repeat(n))),
            ("mixed", "*a **b _c __d ".repeat(n / 4)),
            ("blockquotes", format!("{} x\n", ">".repeat(n))),
            (
                "lists",
                (0..2_000)
                    .map(|i| format!("{}- x\n", "  ".repeat(i)))
                    .collect(),
            ),
            ("links", format!("{}x{}", "[".repeat(n), "](u)".repeat(n))),
            ("images", "![".repeat(n)),
            (
                "html",
                format!("{}x{}", "<div><em>".repeat(n), "</em></div>".repeat(n)),
            ),
            ("unclosed html", "<span>".repeat(n)),
            ("heading", format!("# {}x{}", "*".repeat(n), "*".repeat(n))),
            (
                "table",
                format!("|{}\n|{}\n", "a|".repeat(5_000), "-|".repeat(5_000)),
            ),
            ("backticks", "`".repeat(n * 10)),
        ]
    }

    #[test]
    fn deep_and_large_input_never_crashes() {
        for (name, text) in nested_inputs() {
            let started = std::time::Instant::now();
            let t = text.clone();
            let html = on_small_stack(move || render(&t));
            assert!(!html.contains("<script"), "{name}");
            let t = text.clone();
            let _ = on_small_stack(move || to_plain_text(&t));
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{name} took {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn repeated_headings_and_autolink_runs_stay_linear() {
        let started = std::time::Instant::now();
        let html = render(&"# a\n\n".repeat(20_000));
        assert!(!html.contains("id=\"h-a-19999\""));
        let _ = render(&"http://x\u{2039}".repeat(40_000));
        let _ = to_plain_text(&"a@b.c\u{2039}".repeat(40_000));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        // Ordinary documents keep anchors and links.
        let html = render("# Intro\n\n# Intro\n\nsee https://example.org/x\n");
        assert!(html.contains("id=\"h-intro-1\""), "{html}");
        assert!(html.contains("href=\"https://example.org/x\""), "{html}");
    }

    #[test]
    fn huge_code_blocks_are_not_highlighted() {
        let code = "fn main() { let x = 1 + 2; }\n".repeat(30_000);
        let html = render(&format!("```rust\n{code}```\n"));
        assert!(
            !html.contains("hl-"),
            "highlighted a {} byte block",
            code.len()
        );
        assert!(html.len() < code.len() * 2);
        let small = render("```rust\nfn main() {}\n```\n");
        assert!(small.contains("hl-"));
    }

    #[test]
    fn too_deep_or_large_shows_the_source_escaped() {
        let deep = format!("{} <script>x</script>\n", ">".repeat(500));
        let html = render(&deep);
        assert!(
            html.contains("nested too deeply"),
            "{}",
            &html[..200.min(html.len())]
        );
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script"));
        let big = "word ".repeat(MAX_RENDER_BYTES / 4);
        assert!(render(&big).contains("too large to render"));
        // Ordinary nesting still renders.
        assert!(render("> > quoted *twice*").contains("<em>twice</em>"));
    }
}

#[cfg(test)]
mod plain_text_tests {
    #[test]
    fn markup_goes_words_stay() {
        let t = super::to_plain_text(
            "# Parts\n\n| Part | Count |\n|--|--|\n| **Bolt** | 12 |\n\n`x = 1`",
        );
        assert!(
            !t.contains('|') && !t.contains('#') && !t.contains("**"),
            "{t}"
        );
        for w in ["Parts", "Bolt", "12", "x = 1"] {
            assert!(t.contains(w), "{w} missing from {t}");
        }
        assert!(!t.contains("Bolt12"), "cells stay apart: {t}");
    }
}
