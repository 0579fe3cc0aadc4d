//! Where a hit's snippet comes from: a window of a long text around the first query word.

/// Lower-cased words of the query (field names and operators dropped), to find where in a
/// long text the snippet should come from.
pub(super) fn query_words(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric() && c != ':')
        .map(|w| w.rsplit(':').next().unwrap_or_default().to_lowercase())
        .filter(|w| w.len() > 1 && !matches!(w.as_str(), "and" | "or" | "not"))
        .collect()
}

/// Snippets tokenize the text they are given, so a hit's text is cut to about 500 bytes
/// around the first place a query word occurs (or its start): the cost stays flat however
/// long the page is.
pub(super) fn snippet_window<'a>(text: &'a str, words: &[String]) -> &'a str {
    const BEFORE: usize = 150;
    const SIZE: usize = 480;
    if text.len() <= SIZE {
        return text;
    }
    let lower = text.to_lowercase();
    // Lower-casing can change byte lengths; only trust positions when it did not.
    let at = if lower.len() == text.len() {
        words
            .iter()
            .filter_map(|w| lower.find(w.as_str()))
            .min()
            .unwrap_or(0)
    } else {
        0
    };
    let floor = |mut i: usize| {
        while i > 0 && !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(at.saturating_sub(BEFORE));
    let end = floor((start + SIZE).min(text.len()));
    &text[start..end]
}

#[cfg(test)]
mod tests {
    use super::{query_words, snippet_window};

    #[test]
    fn snippets_come_from_around_the_first_match() {
        let text = format!("{} needle here {}", "a ".repeat(2000), "b ".repeat(2000));
        let words = query_words("title:xy NEEDLE");
        assert_eq!(words, vec!["xy", "needle"]);
        let w = snippet_window(&text, &words);
        assert!(w.len() <= 480 && w.contains("needle here"), "{w}");
        // Short texts are used whole; multi-byte text is cut on character boundaries.
        assert_eq!(snippet_window("short", &words), "short");
        let wide = "é".repeat(1000);
        assert!(snippet_window(&wide, &words).chars().all(|c| c == 'é'));
    }
}
