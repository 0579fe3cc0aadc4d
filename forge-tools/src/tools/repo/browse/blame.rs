//! Reading `git blame --porcelain` output (running `git blame` itself is `repo::blame`).

use super::history::CommitInfo;
use super::{MAX_BLAME_LINES, lossy};

/// Reads `git blame --porcelain` output: each line of the file with the commit that last
/// changed it (author, time and summary as git reports them).
pub fn parse_blame(out: &[u8]) -> Vec<(Option<CommitInfo>, String)> {
    use std::collections::HashMap;
    let mut commits: HashMap<String, CommitInfo> = HashMap::new();
    let mut lines: Vec<(Option<String>, String)> = Vec::new();
    // The commit and final line number of the group being read.
    let mut current: Option<(String, usize)> = None;
    for raw in out.split(|&b| b == b'\n') {
        if let Some(content) = raw.strip_prefix(b"\t") {
            if let Some((id, n)) = current.take()
                && (1..=MAX_BLAME_LINES * 10).contains(&n)
            {
                if lines.len() < n {
                    lines.resize(n, (None, String::new()));
                }
                lines[n - 1] = (Some(id), lossy(content));
            }
            continue;
        }
        let text = lossy(raw);
        let mut words = text.split(' ');
        let first = words.next().unwrap_or("");
        let is_header = matches!(first.len(), 40 | 64)
            && first.bytes().all(|b| b.is_ascii_hexdigit())
            && words.next().is_some_and(|w| w.parse::<usize>().is_ok());
        if is_header {
            let line = words
                .next()
                .and_then(|w| w.parse::<usize>().ok())
                .unwrap_or(0);
            commits
                .entry(first.to_owned())
                .or_insert_with(|| CommitInfo {
                    id: first.to_owned(),
                    short: first[..10].to_owned(),
                    summary: String::new(),
                    message: String::new(),
                    author: String::new(),
                    email: String::new(),
                    time: 0,
                    parents: Vec::new(),
                });
            current = Some((first.to_owned(), line));
            continue;
        }
        let Some(c) = current.as_ref().and_then(|(id, _)| commits.get_mut(id)) else {
            continue;
        };
        let (key, value) = text.split_once(' ').unwrap_or((&text, ""));
        match key {
            "author" => c.author = value.to_owned(),
            "author-mail" => value.trim_matches(['<', '>']).clone_into(&mut c.email),
            "author-time" => c.time = value.parse().unwrap_or(0),
            "summary" => {
                c.summary = value.to_owned();
                c.message = value.to_owned();
            }
            _ => {}
        }
    }
    lines
        .into_iter()
        .map(|(id, text)| (id.and_then(|id| commits.get(&id).cloned()), text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blame_porcelain_is_read_by_final_line() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let out = format!(
            "{b} 2 2 1\nauthor Bea\nauthor-mail <bea@x>\nauthor-time 20\nsummary second\nfilename f\n\ttwo\n\
             {a} 1 1 1\nauthor Al\nauthor-mail <al@x>\nauthor-time 10\nsummary first\nprevious {b} f\nfilename f\n\tone\n\
             {b} 3 3\n\tthree\n"
        );
        let lines = parse_blame(out.as_bytes());
        let got: Vec<(String, &str)> = lines
            .iter()
            .map(|(c, l)| {
                (
                    c.as_ref().map(|c| c.summary.clone()).unwrap_or_default(),
                    l.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("first".into(), "one"),
                ("second".into(), "two"),
                ("second".into(), "three")
            ]
        );
        let first = lines[0].0.as_ref().unwrap();
        assert_eq!(
            (first.author.as_str(), first.email.as_str(), first.time),
            ("Al", "al@x", 10)
        );
        assert!(parse_blame(b"garbage\n\tline\n0 0 0\n").is_empty());
    }
}
