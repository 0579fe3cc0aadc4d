//! Markdown to safe HTML: CommonMark with GitHub extensions (comrak), then sanitized (ammonia),
//! so no script or event handler from user content ever reaches a page.

/// Renders user-written markdown to sanitized HTML.
pub fn render(text: &str) -> String {
    let mut opts = comrak::Options::default();
    opts.extension.table = true;
    opts.extension.strikethrough = true;
    opts.extension.tasklist = true;
    opts.extension.autolink = true;
    opts.render.escape = true;
    let html = comrak::markdown_to_html(text, &opts);
    ammonia::Builder::default()
        .add_tags(["input"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn renders_and_sanitizes() {
        let html = render("# Title\n\n*em* <script>alert(1)</script> [x](javascript:alert(1))");
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<em>em</em>"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("javascript:"));
    }

    #[test]
    fn tables_survive() {
        let html = render("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(html.contains("<table>"));
    }
}
