//! Repository pages.

use askama::Template;
use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use forge_tools::acl::perm;
use forge_tools::markdown::{self, highlight};
use forge_tools::repo::{self, browse};
use forge_tools::{Error, wiki::encode_name};
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
    let readme = readme.map(|(name, text)| {
        let html = if name.to_ascii_lowercase().ends_with(".md")
            || name.to_ascii_lowercase().ends_with(".markdown")
        {
            markdown::render(&text)
        } else {
            format!(
                "<pre>{}</pre>",
                askama::filters::escape(&text, askama::filters::Html)
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            )
        };
        (name, html)
    });
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
        let text = String::from_utf8_lossy(&b.content).into_owned();
        let lines = text.lines().count().max(1);
        let html = highlight::highlight_file(&path, &text).unwrap_or_else(|| {
            askama::filters::escape(&text, askama::filters::Html)
                .map(|e| e.to_string())
                .unwrap_or_default()
        });
        (Some(html), lines, String::new())
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
/// always `nosniff` and sandboxed.
pub async fn raw(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(rest): Path<String>,
) -> PageResult {
    let (path, (binary, bytes)) = with_repo(&st, &req, move |r| {
        let (_, oid, path) = browse::split_ref_path(r, &rest)?;
        let raw = browse::raw(r, oid, &path)?;
        Ok((path, raw))
    })
    .await?;
    let name = path.rsplit('/').next().unwrap_or("file");
    let (content_type, inline) = match is_image(&path) {
        Some(t) => (t, true),
        None if !binary => ("text/plain", true),
        None => ("application/octet-stream", false),
    };
    let length = Some(bytes.len() as u64);
    Ok(download::respond(
        Body::from(bytes),
        Download {
            content_type,
            filename: name,
            inline,
            length,
        },
    ))
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<usize>,
}

pub const PER_PAGE: usize = 50;

pub async fn log(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(rest): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let base = req.base.clone();
    let b2 = base.clone();
    let page = q.page.unwrap_or(1).max(1);
    let (rev, path, mut commits) = with_repo(&st, &req, move |r| {
        let (rev, oid, path) = browse::split_ref_path(r, &rest)?;
        let list = browse::log(r, oid, &path, (page - 1) * PER_PAGE, PER_PAGE)?;
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
    let files = d
        .files
        .into_iter()
        .map(|f| FileView {
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
    let tpl = CommitTpl {
        page: shell(&st, &req, &d.info.summary),
        c: row(&base, &d.info),
        message_html: if body.is_empty() {
            String::new()
        } else {
            markdown::render(&body)
        },
        parents: d.info.parents.clone(),
        base,
        files,
        additions: d.additions,
        deletions: d.deletions,
        files_truncated: d.files_truncated,
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
    let b2 = base.clone();
    let (rev, path, lines) = with_repo(&st, &req, move |r| {
        let (rev, oid, path) = browse::split_ref_path(r, &rest)?;
        let lines = browse::blame(r, oid, &path)?
            .into_iter()
            .map(|(c, l)| (c.map(|c| row(&b2, &c)), l))
            .collect::<Vec<_>>();
        Ok((rev, path, lines))
    })
    .await?;
    let tpl = BlameTpl {
        page: shell(&st, &req, &format!("Blame {path}")),
        crumbs: crumbs(&base, &rev, &path),
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
    let mut child = repo::archive(st.forge.config(), &req.tool, oid, format, &prefix)?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Internal("git archive: no output".into()))?;
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
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
        stdout,
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
