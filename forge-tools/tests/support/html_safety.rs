//! What "safe HTML" means to the fuzzing of markdown, shared by the proptest cases
//! (`tests/fuzz_props.rs`) and the time-boxed fuzz runner (`examples/fuzz.rs`): no script,
//! frame, event handler or script URL in any tag a browser would see.

/// The tags of an HTML text (`<name ...>`), as a browser would see them: escaped text
/// (`&lt;img onerror=...&gt;`) is not a tag.
pub fn tags(html: &str) -> impl Iterator<Item = &str> {
    html.match_indices('<').filter_map(move |(i, _)| {
        let rest = &html[i + 1..];
        rest.starts_with(|c: char| c.is_ascii_alphabetic())
            .then(|| &rest[..rest.find('>').unwrap_or(rest.len())])
    })
}

/// Attributes of a tag's inside (`a href="x" title='y' hidden`) as (lower-case name, value),
/// quotes respected.
pub fn attributes(tag: &str) -> Vec<(String, String)> {
    let b = tag.as_bytes();
    let text =
        |from: usize, to: usize| String::from_utf8_lossy(&b[from..to.min(b.len())]).into_owned();
    let mut i = b
        .iter()
        .position(|c| !c.is_ascii_alphanumeric())
        .unwrap_or(b.len());
    let mut out = Vec::new();
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'/') {
            i += 1;
        }
        let name = text(start, i).to_ascii_lowercase();
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            match b.get(i) {
                Some(q @ (b'"' | b'\'')) => {
                    let q = *q;
                    let from = i + 1;
                    i = from;
                    while i < b.len() && b[i] != q {
                        i += 1;
                    }
                    value = text(from, i);
                    i += 1;
                }
                _ => {
                    let from = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    value = text(from, i);
                }
            }
        } else if i == start {
            i += 1;
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

/// The first unsafe tag of `html` (shortened for a message), if any: a scripting or framing
/// element, an event handler, or a script URL in a link or source attribute. Escaped text
/// that looks like one is fine.
pub fn unsafe_tag(html: &str) -> Option<String> {
    for tag in tags(html) {
        let t = tag.to_ascii_lowercase();
        let name = t
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("");
        let mut bad = matches!(
            name,
            "script" | "iframe" | "object" | "embed" | "style" | "svg"
        );
        for (attr, value) in attributes(tag) {
            let v: String = value
                .chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .collect::<String>()
                .to_ascii_lowercase();
            bad |= attr.starts_with("on")
                || (matches!(
                    attr.as_str(),
                    "href" | "src" | "action" | "formaction" | "xlink:href"
                ) && (v.starts_with("javascript:")
                    || v.starts_with("vbscript:")
                    || v.starts_with("data:text/html")));
        }
        if bad {
            return Some(tag.chars().take(200).collect());
        }
    }
    None
}
