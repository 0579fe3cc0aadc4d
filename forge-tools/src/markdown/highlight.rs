//! Syntax highlighting of fenced code blocks and repository files with syntect, as CSS classes
//! (the stylesheet is generated from a theme once), so sanitized output needs no inline styles.
//!
//! Highlighting is CPU work that grows with the input and can blow it up ~60 times into HTML,
//! so it is bounded: inputs over [`MAX_BYTES`], [`MAX_LINES`] or with a line over
//! [`MAX_LINE_BYTES`] are not highlighted, and work stops (the caller shows plain text) once
//! the output passes [`MAX_HTML_BYTES`] or the time passes [`MAX_TIME`]. Callers run it on a
//! blocking thread.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use syntect::highlighting::ThemeSet;
use syntect::html::{ClassStyle, css_for_theme_with_class_style, line_tokens_to_classed_spans};
use syntect::parsing::{ParseState, ScopeStack, SyntaxReference, SyntaxSet};
use syntect::util::LinesWithEndings;

const STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

/// Largest text highlighted.
pub const MAX_BYTES: usize = 512 * 1024;
/// Most lines highlighted.
pub const MAX_LINES: usize = 20_000;
/// Longest line in a highlighted text (minified code is shown plain).
pub const MAX_LINE_BYTES: usize = 10_000;
/// Most HTML one highlighting may produce.
pub const MAX_HTML_BYTES: usize = 8 << 20;
/// Longest one highlighting may take.
pub const MAX_TIME: Duration = Duration::from_secs(2);

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

/// Whether `code` is within the caps for highlighting (size, lines, line length).
pub fn within_caps(code: &str) -> bool {
    code.len() <= MAX_BYTES
        && code.lines().count() <= MAX_LINES
        && code.lines().all(|l| l.len() <= MAX_LINE_BYTES)
}

/// Highlighted HTML of `code`, `None` when over a cap or when syntect fails.
fn generate(syntax: &SyntaxReference, code: &str) -> Option<String> {
    if !within_caps(code) {
        return None;
    }
    let ss = syntaxes();
    let started = Instant::now();
    let mut state = ParseState::new(syntax);
    let mut stack = ScopeStack::new();
    let mut open_spans: isize = 0;
    let mut html = String::with_capacity(code.len() * 2);
    for line in LinesWithEndings::from(code) {
        let ops = state.parse_line(line, ss).ok()?;
        let (formatted, delta) =
            line_tokens_to_classed_spans(line, ops.as_slice(), STYLE, &mut stack).ok()?;
        open_spans += delta;
        html.push_str(&formatted);
        if html.len() > MAX_HTML_BYTES || started.elapsed() > MAX_TIME {
            return None;
        }
    }
    for _ in 0..open_spans {
        html.push_str("</span>");
    }
    Some(html)
}

/// Highlighted HTML (spans) for `code` in language `lang`; `None` for unknown languages and
/// texts over the caps.
pub fn highlight(code: &str, lang: &str) -> Option<String> {
    let syntax = syntaxes().find_syntax_by_token(lang)?;
    generate(syntax, code)
}

/// The stylesheet for highlighted code.
pub fn css() -> &'static str {
    static CSS: OnceLock<String> = OnceLock::new();
    CSS.get_or_init(|| {
        let themes = ThemeSet::load_defaults();
        themes
            .themes
            .get("InspiredGitHub")
            .and_then(|t| css_for_theme_with_class_style(t, STYLE).ok())
            .unwrap_or_default()
    })
}

/// Highlighted HTML for a whole file, choosing the syntax by file name (or first line);
/// `None` for unknown kinds of file and files over the caps.
pub fn highlight_file(path: &str, code: &str) -> Option<String> {
    let ss = syntaxes();
    let ext = path.rsplit('.').next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or(path);
    let first_line = code.lines().next().unwrap_or("");
    let syntax = ss
        .find_syntax_by_extension(name)
        .or_else(|| ss.find_syntax_by_extension(ext))
        .or_else(|| {
            // A first line over the cap would only be matched against every syntax's regex.
            (first_line.len() <= MAX_LINE_BYTES)
                .then(|| ss.find_syntax_by_first_line(first_line))
                .flatten()
        })?;
    generate(syntax, code)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn highlights_within_caps_only() {
        let code = "fn main() {\n    let x = 1;\n}\n";
        let html = highlight_file("src/main.rs", code).unwrap();
        assert!(html.contains("class=\"hl-"));
        assert_eq!(
            html.matches("<span").count(),
            html.matches("</span>").count()
        );
        assert!(highlight(code, "rust").is_some());
        assert!(highlight(code, "no-such-language").is_none());

        let big = "let x = 1;\n".repeat(MAX_BYTES / 10);
        assert!(!within_caps(&big));
        assert!(highlight_file("big.rs", &big).is_none());
        let many = "x\n".repeat(MAX_LINES + 1);
        assert!(highlight_file("many.rs", &many).is_none());
        let wide = format!("let s = \"{}\";\n", "a".repeat(MAX_LINE_BYTES));
        assert!(highlight_file("wide.rs", &wide).is_none());
        assert!(highlight(&wide, "rust").is_none());
    }
}
