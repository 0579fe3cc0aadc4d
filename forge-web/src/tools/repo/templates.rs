//! View models and templates of the repository pages, and the helpers that build their rows
//! (URLs, dates, sizes).

use askama::Template;
use forge_tools::tools::repo::browse;
use forge_tools::tools::wiki::encode_name;

use crate::page::Page;

/// A path as URL segments (each percent-encoded, slashes kept).
pub fn enc_path(p: &str) -> String {
    p.split('/').map(encode_name).collect::<Vec<_>>().join("/")
}

pub fn time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

pub struct Crumb {
    pub name: String,
    pub url: String,
}

pub fn crumbs(base: &str, rev: &str, path: &str) -> Vec<Crumb> {
    let mut out = vec![Crumb {
        name: rev.to_owned(),
        url: format!("{base}tree/{}", enc_path(rev)),
    }];
    let mut acc = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(seg);
        out.push(Crumb {
            name: seg.to_owned(),
            url: format!("{base}tree/{}/{}", enc_path(rev), enc_path(&acc)),
        });
    }
    out
}

pub struct Entry {
    pub name: String,
    pub url: String,
    pub is_dir: bool,
    pub size: String,
    /// The newest commit that changed the entry.
    pub last: Option<CommitRow>,
}

pub struct CommitRow {
    pub id: String,
    pub short: String,
    pub summary: String,
    pub author: String,
    pub when: String,
    pub url: String,
}

pub fn row(base: &str, c: &browse::CommitInfo) -> CommitRow {
    CommitRow {
        url: format!("{base}commit/{}", c.id),
        id: c.id.clone(),
        short: c.short.clone(),
        summary: c.summary.clone(),
        author: c.author.clone(),
        when: time(c.time),
    }
}

#[derive(Template)]
#[template(path = "repo/summary.html")]
pub struct SummaryTpl {
    pub page: Page,
    pub base: String,
    pub clone_url: String,
    pub empty: bool,
    pub branch: String,
    pub can_push: bool,
    pub entries: Vec<Entry>,
    pub readme: Option<(String, String)>,
    pub last: Option<CommitRow>,
    /// Clones and fetches of the project's repositories in the last 30 days (left out when
    /// the figure could not be read).
    pub clones: Option<i64>,
    /// The project's statistics page.
    pub stats_url: String,
}

#[derive(Template)]
#[template(path = "repo/tree.html")]
pub struct TreeTpl {
    pub page: Page,
    pub base: String,
    pub rev: String,
    pub path: String,
    pub crumbs: Vec<Crumb>,
    pub entries: Vec<Entry>,
}

#[derive(Template)]
#[template(path = "repo/blob.html")]
pub struct BlobTpl {
    pub page: Page,
    pub base: String,
    pub rev: String,
    pub path: String,
    pub crumbs: Vec<Crumb>,
    pub raw_url: String,
    pub size: String,
    /// Highlighted (or escaped) text, `None` for binary or too large files.
    pub code: Option<String>,
    pub lines: usize,
    pub image: bool,
    pub note: String,
}

#[derive(Template)]
#[template(path = "repo/log.html")]
pub struct LogTpl {
    pub page: Page,
    pub base: String,
    pub rev: String,
    pub path: String,
    pub commits: Vec<CommitRow>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

pub struct FileView {
    pub path: String,
    pub status: char,
    pub additions: usize,
    pub deletions: usize,
    pub lines: Vec<(String, String)>,
    pub binary: bool,
    pub truncated: bool,
    /// The diff was not computed; the links show both versions instead.
    pub too_large: bool,
    pub old_url: Option<String>,
    pub new_url: Option<String>,
}

#[derive(Template)]
#[template(path = "repo/commit.html")]
pub struct CommitTpl {
    pub page: Page,
    pub base: String,
    pub c: CommitRow,
    pub message_html: String,
    pub parents: Vec<String>,
    pub files: Vec<FileView>,
    pub additions: usize,
    pub deletions: usize,
    pub files_truncated: bool,
    pub files_changed: usize,
    pub partial_stats: bool,
    /// The commit's "Discussion" section, rendered HTML (`crate::discussion::section`).
    pub discussion: String,
}

#[derive(Template)]
#[template(path = "repo/refs.html")]
pub struct RefsTpl {
    pub page: Page,
    pub base: String,
    pub heading: String,
    pub refs: Vec<(String, CommitRow)>,
}

#[derive(Template)]
#[template(path = "repo/blame.html")]
pub struct BlameTpl {
    pub page: Page,
    pub base: String,
    pub crumbs: Vec<Crumb>,
    pub raw_url: String,
    pub history_url: String,
    /// Why there is no blame (binary or too large), or empty.
    pub note: String,
    pub lines: Vec<(Option<CommitRow>, String)>,
}

pub fn size(n: usize) -> String {
    forge_tools::attachments::human_size(n as u64)
}

pub fn entries(
    base: &str,
    rev: &str,
    list: Vec<browse::TreeEntry>,
    last: &[(String, browse::CommitInfo)],
) -> Vec<Entry> {
    list.into_iter()
        .map(|e| Entry {
            last: last
                .iter()
                .find(|(n, _)| *n == e.name)
                .map(|(_, c)| row(base, c)),
            url: format!(
                "{base}{}/{}/{}",
                if e.is_dir { "tree" } else { "blob" },
                enc_path(rev),
                enc_path(&e.path)
            ),
            is_dir: e.is_dir,
            size: e.size.map(size).unwrap_or_default(),
            name: e.name,
        })
        .collect()
}

/// Text as HTML.
pub fn escape(text: &str) -> String {
    askama::filters::escape(text, askama::filters::Html)
        .map(|e| e.to_string())
        .unwrap_or_default()
}
