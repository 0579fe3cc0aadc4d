//! Repository pages. Git is read on blocking threads (`with_repo`), and the CPU-heavy parts
//! (highlighting, markdown of READMEs and commit messages) run in the heavy-work pool, all
//! within caps: files over the highlighting caps are shown plain, larger ones not at all,
//! commit diffs are cut per file and per commit, blame is for files up to a size, and page
//! numbers are checked before any walk.

use askama::Template;
use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use forge_tools::acl::perm;
use forge_tools::markdown::{self, highlight};
use forge_tools::paging::Paging;
use forge_tools::repo::{self, browse};
use forge_tools::{Error, heavy, wiki::encode_name};
use serde::Deserialize;

use super::with_repo;
use crate::download::{self, Download};
use crate::error::PageResult;
use crate::state::AppState;
use crate::tools::ToolRequest;
use crate::views::{Page, render};

/// A path as URL segments (each percent-encoded, slashes kept).
pub(crate) fn enc_path(p: &str) -> String {
    p.split('/').map(encode_name).collect::<Vec<_>>().join("/")
}

fn time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

pub struct Crumb {
    pub name: String,
    pub url: String,
}

fn crumbs(base: &str, rev: &str, path: &str) -> Vec<Crumb> {
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

/// How far back the tree pages look for each entry's last change.
const LAST_COMMIT_DEPTH: usize = 2000;

pub struct CommitRow {
    pub id: String,
    pub short: String,
    pub summary: String,
    pub author: String,
    pub when: String,
    pub url: String,
}

fn row(base: &str, c: &browse::CommitInfo) -> CommitRow {
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

fn shell(st: &AppState, req: &ToolRequest, title: &str) -> Page {
    Page::new(&req.page, title).in_project(&st.forge, &req.ctx, &req.base)
}

fn size(n: usize) -> String {
    forge_tools::attachments::human_size(n as u64)
}

fn entries(
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

pub async fn summary(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
) -> PageResult {
    let base = req.base.clone();
    let b2 = base.clone();
    let (empty, branch, entries, readme, last) = with_repo(&st, &req, move |r| {
        let branch = browse::default_branch(r);
        if browse::is_empty(r) {
            return Ok((true, branch, Vec::new(), None, None));
        }
        let tip = browse::resolve(r, &branch).or_else(|_| {
            browse::refs(r, "refs/heads/")?
                .first()
                .map(|b| git2::Oid::from_str(&b.target).map_err(|e| Error::Internal(e.to_string())))
                .ok_or(Error::NotFound("branch"))?
        })?;
        let last = browse::last_commits(r, tip, "", LAST_COMMIT_DEPTH)?;
        let list = entries(&b2, &branch, browse::tree(r, tip, "")?, &last);
        let readme = browse::readme(r, tip);
        let last = browse::log(r, tip, "", 0, 1)?.first().map(|c| row(&b2, c));
        Ok((false, branch, list, readme, last))
    })
    .await?;
    let readme = match readme {
        Some((name, text)) => Some(heavy::run(move || render_readme(name, &text)).await?),
        None => None,
    };
    let tpl = SummaryTpl {
        page: shell(&st, &req, &req.tool.label),
        clone_url: repo::clone_url(st.forge.config(), &req.ctx.project, &req.tool),
        can_push: req.ctx.can_tool(&req.tool, perm::WRITE),
        base,
        empty,
        branch,
        entries,
        readme,
        last,
    };
    Ok(render(&tpl))
}

/// A README as HTML: markdown rendered, anything else escaped (on a blocking thread).
fn render_readme(name: String, text: &str) -> (String, String) {
    let lower = name.to_ascii_lowercase();
    let html = if lower.ends_with(".md") || lower.ends_with(".markdown") {
        markdown::render(text)
    } else {
        format!("<pre>{}</pre>", escape(text))
    };
    (name, html)
}

fn escape(text: &str) -> String {
    askama::filters::escape(text, askama::filters::Html)
        .map(|e| e.to_string())
        .unwrap_or_default()
}

/// Most lines of a file shown on its page (plain or highlighted); longer files link to raw.
pub const MAX_SHOWN_LINES: usize = 50_000;

/// A text file's page body: highlighted within the highlighting caps, plain text above them
/// (with a note), nothing above [`MAX_SHOWN_LINES`]. Returns (HTML, lines, note).
fn render_code(path: &str, bytes: &[u8]) -> (Option<String>, usize, String) {
    let text = String::from_utf8_lossy(bytes);
    let lines = text.lines().count().max(1);
    if lines > MAX_SHOWN_LINES {
        return (
            None,
            0,
            format!("This file has {lines} lines, too many to show here."),
        );
    }
    if let Some(html) = highlight::highlight_file(path, &text) {
        return (Some(html), lines, String::new());
    }
    let note = if highlight::within_caps(&text) {
        String::new()
    } else {
        format!(
            "Shown without highlighting: only files up to {}, {} lines and {} characters per line are highlighted.",
            size(highlight::MAX_BYTES),
            highlight::MAX_LINES,
            highlight::MAX_LINE_BYTES
        )
    };
    (Some(escape(&text)), lines, note)
}

pub async fn tree(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(rest): Path<String>,
) -> PageResult {
    let base = req.base.clone();
    let b2 = base.clone();
    let result = with_repo(&st, &req, move |r| {
        let (rev, oid, path) = browse::split_ref_path(r, &rest)?;
        match browse::tree(r, oid, &path) {
            Ok(list) => {
                let last = browse::last_commits(r, oid, &path, LAST_COMMIT_DEPTH)?;
                Ok(Ok((
                    rev.clone(),
                    path.clone(),
                    entries(&b2, &rev, list, &last),
                )))
            }
            // A file path under /tree/ goes to its file page.
            Err(Error::NotFound(_)) if browse::blob(r, oid, &path).is_ok() => Ok(Err(format!(
                "{b2}blob/{}/{}",
                enc_path(&rev),
                enc_path(&path)
            ))),
            Err(e) => Err(e),
        }
    })
    .await?;
    match result {
        Err(to) => Ok(Redirect::to(&to).into_response()),
        Ok((rev, path, entries)) => {
            let tpl = TreeTpl {
                page: shell(
                    &st,
                    &req,
                    &format!("{} at {rev}", if path.is_empty() { "/" } else { &path }),
                ),
                crumbs: crumbs(&base, &rev, &path),
                base,
                rev,
                path,
                entries,
            };
            Ok(render(&tpl))
        }
    }
}

fn is_image(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    [
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("gif", "image/gif"),
        ("webp", "image/webp"),
    ]
    .into_iter()
    .find(|(e, _)| lower.ends_with(&format!(".{e}")))
    .map(|(_, t)| t)
}

pub async fn blob(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(rest): Path<String>,
) -> PageResult {
    let base = req.base.clone();
    let (rev, path, b) = with_repo(&st, &req, move |r| {
        let (rev, oid, path) = browse::split_ref_path(r, &rest)?;
        let b = browse::blob(r, oid, &path)?;
        Ok((rev, path, b))
    })
    .await?;
    let raw_url = format!("{base}raw/{}/{}", enc_path(&rev), enc_path(&path));
    let image = is_image(&path).is_some();
    let (code, lines, note) = if b.binary || image {
        (
            None,
            0,
            if image {
                String::new()
            } else {
                "Binary file; download it to look inside.".to_owned()
            },
        )
    } else if b.truncated {
        (
            None,
            0,
            format!(
                "This file is {}; it is too large to show here.",
                size(b.size)
            ),
        )
    } else {
        let p = path.clone();
        let content = b.content;
        heavy::run(move || render_code(&p, &content)).await?
    };
    let tpl = BlobTpl {
        page: shell(&st, &req, &path),
        crumbs: crumbs(&base, &rev, &path),
        base,
        rev,
        raw_url,
        size: size(b.size),
        path,
        code,
        lines,
        image,
        note,
    };
    Ok(render(&tpl))
}

/// The file's bytes; text as `text/plain`, images as themselves, anything else as a download,
/// always `nosniff` and sandboxed. Large files stream from git (in a git slot) and are always
/// downloads unless they are images.
pub async fn raw(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(rest): Path<String>,
) -> PageResult {
    let (path, raw) = with_repo(&st, &req, move |r| {
        let (_, oid, path) = browse::split_ref_path(r, &rest)?;
        let raw = browse::raw(r, oid, &path)?;
        Ok((path, raw))
    })
    .await?;
    let name = path.rsplit('/').next().unwrap_or("file");
    let (body, binary, length) = match raw {
        browse::Raw::Loaded { binary, content } => {
            let length = content.len() as u64;
            (Body::from(content), binary, length)
        }
        browse::Raw::Large { id, size } => {
            let output = repo::cat_blob(&st.forge, &req.tool, id).await?;
            let stream = tokio_util::io::ReaderStream::with_capacity(output, 64 * 1024);
            (Body::from_stream(stream), true, size as u64)
        }
    };
    let (content_type, inline) = match is_image(&path) {
        Some(t) => (t, true),
        None if !binary => ("text/plain", true),
        None => ("application/octet-stream", false),
    };
    Ok(download::respond(
        body,
        Download {
            content_type,
            filename: name,
            inline,
            length: Some(length),
        },
    ))
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<String>,
}

pub const PER_PAGE: usize = 50;
/// Deepest log page: each page walks every commit before it.
pub const MAX_LOG_PAGE: u64 = 1_000;

/// A number from the query string, or a 400 saying what is allowed.
pub(crate) fn number(name: &str, value: Option<&str>, max: u64) -> Result<Option<u64>, Error> {
    value
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                Error::bad_request(format!("{name} must be a number between 1 and {max}"))
            })
        })
        .transpose()
}

/// The page of a commit log, checked.
pub(crate) fn log_paging(page: Option<&str>, limit: Option<&str>) -> Result<Paging, Error> {
    let page = number("page", page, MAX_LOG_PAGE)?;
    let limit = number("limit", limit, forge_tools::paging::MAX_LIMIT)?;
    Paging::new(page, limit, PER_PAGE as u64, MAX_LOG_PAGE)
}

pub async fn log(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(rest): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let base = req.base.clone();
    let b2 = base.clone();
    let paging = log_paging(q.page.as_deref(), None)?;
    let page = paging.page;
    let (rev, path, mut commits) = with_repo(&st, &req, move |r| {
        let (rev, oid, path) = browse::split_ref_path(r, &rest)?;
        let list = browse::log(r, oid, &path, paging.offset(), PER_PAGE)?;
        Ok((
            rev,
            path,
            list.iter().map(|c| row(&b2, c)).collect::<Vec<_>>(),
        ))
    })
    .await?;
    let here = format!(
        "{base}commits/{}{}",
        enc_path(&rev),
        if path.is_empty() {
            String::new()
        } else {
            format!("/{}", enc_path(&path))
        }
    );
    let next = (commits.len() > PER_PAGE).then(|| format!("{here}?page={}", page + 1));
    commits.truncate(PER_PAGE);
    let prev = (page > 1).then(|| format!("{here}?page={}", page - 1));
    let tpl = LogTpl {
        page: shell(&st, &req, &format!("Commits on {rev}")),
        base,
        rev,
        path,
        commits,
        prev,
        next,
    };
    Ok(render(&tpl))
}

pub async fn commit(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(sha): Path<String>,
) -> PageResult {
    let base = req.base.clone();
    let d = with_repo(&st, &req, move |r| browse::commit(r, &sha)).await?;
    let id = d.info.id.clone();
    let parent = d.info.parents.first().cloned();
    let blob_url = |rev: &str, path: &str| format!("{base}blob/{rev}/{}", enc_path(path));
    let files = d
        .files
        .into_iter()
        .map(|f| FileView {
            too_large: f.too_large,
            old_url: parent
                .as_deref()
                .filter(|_| f.status != 'A')
                .map(|p| blob_url(p, &f.old_path)),
            new_url: (f.status != 'D').then(|| blob_url(&id, &f.new_path)),
            path: if f.status == 'R' {
                format!("{} → {}", f.old_path, f.new_path)
            } else {
                f.new_path.clone()
            },
            status: f.status,
            additions: f.additions,
            deletions: f.deletions,
            lines: f
                .patch
                .lines()
                .map(|l| {
                    let class = match l.chars().next() {
                        Some('+') => "add",
                        Some('-') => "del",
                        Some('@') => "hunk",
                        _ => "ctx",
                    };
                    (class.to_owned(), l.to_owned())
                })
                .collect(),
            binary: f.binary,
            truncated: f.truncated,
        })
        .collect();
    let body = d
        .info
        .message
        .split_once('\n')
        .map(|(_, rest)| rest.trim().to_owned())
        .unwrap_or_default();
    let message_html = if body.is_empty() {
        String::new()
    } else {
        heavy::run(move || markdown::render(&body)).await?
    };
    let tpl = CommitTpl {
        page: shell(&st, &req, &d.info.summary),
        c: row(&base, &d.info),
        message_html,
        parents: d.info.parents.clone(),
        base,
        files,
        additions: d.additions,
        deletions: d.deletions,
        files_truncated: d.files_truncated,
        files_changed: d.files_changed,
        partial_stats: d.partial_stats,
    };
    Ok(render(&tpl))
}

async fn refs_page(
    st: &AppState,
    req: &ToolRequest,
    prefix: &'static str,
    heading: &str,
) -> PageResult {
    let base = req.base.clone();
    let b2 = base.clone();
    let refs = with_repo(st, req, move |r| {
        Ok(browse::refs(r, prefix)?
            .into_iter()
            .map(|e| {
                let c = CommitRow {
                    url: format!("{b2}commit/{}", e.target),
                    short: e.target[..10].to_owned(),
                    id: e.target,
                    summary: e.summary,
                    author: String::new(),
                    when: time(e.time),
                };
                (e.name, c)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(render(&RefsTpl {
        page: shell(st, req, heading),
        base,
        heading: heading.to_owned(),
        refs,
    }))
}

pub async fn branches(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
) -> PageResult {
    refs_page(&st, &req, "refs/heads/", "Branches").await
}

pub async fn tags(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
) -> PageResult {
    refs_page(&st, &req, "refs/tags/", "Tags").await
}

pub async fn blame(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(rest): Path<String>,
) -> PageResult {
    let base = req.base.clone();
    let (rev, oid, path, bytes, binary, line_count) = with_repo(&st, &req, move |r| {
        let (rev, oid, path) = browse::split_ref_path(r, &rest)?;
        let b = browse::blob(r, oid, &path)?;
        let lines = b.content.iter().filter(|&&c| c == b'\n').count();
        Ok((rev, oid, path, b.size, b.binary, lines))
    })
    .await?;
    let note = if binary {
        "Binary file; blame is shown for text files.".to_owned()
    } else if bytes > browse::MAX_BLAME_BYTES || line_count > browse::MAX_BLAME_LINES {
        format!(
            "This file is {} ({line_count} lines), too large to blame here; blame is shown for files up to {} and {} lines.",
            size(bytes),
            size(browse::MAX_BLAME_BYTES),
            browse::MAX_BLAME_LINES
        )
    } else {
        String::new()
    };
    let lines = if note.is_empty() {
        repo::blame(&st.forge, &req.tool, oid, &path)
            .await?
            .into_iter()
            .map(|(c, l)| (c.map(|c| row(&base, &c)), l))
            .collect()
    } else {
        Vec::new()
    };
    let tpl = BlameTpl {
        page: shell(&st, &req, &format!("Blame {path}")),
        crumbs: crumbs(&base, &rev, &path),
        raw_url: format!("{base}raw/{}/{}", enc_path(&rev), enc_path(&path)),
        history_url: format!("{base}commits/{}/{}", enc_path(&rev), enc_path(&path)),
        note,
        base,
        lines,
    };
    Ok(render(&tpl))
}

/// `archive/<ref>.tar.gz` or `.zip`: `git archive` of the resolved commit (its id, never the
/// name from the URL, is what git sees), streamed.
pub async fn archive(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
) -> PageResult {
    let (rev, format, ctype) = if let Some(r) = name.strip_suffix(".tar.gz") {
        (r.to_owned(), "tar.gz", "application/gzip")
    } else if let Some(r) = name.strip_suffix(".zip") {
        (r.to_owned(), "zip", "application/zip")
    } else {
        return Err(Error::NotFound("archive").into());
    };
    let r2 = rev.clone();
    let oid = with_repo(&st, &req, move |r| browse::resolve(r, &r2)).await?;
    let prefix = format!("{}-{}/", req.ctx.project.shortname, rev.replace('/', "-"));
    // Holds a git slot until the download ends; a client that goes away kills git.
    let output = repo::archive(&st.forge, &req.tool, oid, format, &prefix).await?;
    st.forge.events().record(
        "repo.archive",
        req.page
            .viewer
            .event_context(Some(&req.ctx.project), Some(&req.tool.mount)),
        bson::Bson::Document(bson::doc! {"ref": &rev, "format": format}),
    );
    let file = format!(
        "{}-{}.{format}",
        req.ctx.project.shortname,
        rev.replace('/', "-")
    );
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        output,
        64 * 1024,
    ));
    Ok(download::respond(
        body,
        Download {
            content_type: ctype,
            filename: &file,
            inline: false,
            length: None,
        },
    ))
}
