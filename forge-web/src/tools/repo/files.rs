//! A repository's files: the file page (highlighted within caps), raw bytes, blame, and
//! archive downloads. Large files stream from git in one of the forge's git slots.

use axum::body::Body;
use axum::extract::{Path, State};
use forge_tools::markdown::highlight;
use forge_tools::tools::repo::{self, browse};
use forge_tools::{Error, heavy};

use super::read::{self, At, with_repo};
use super::templates::{BlameTpl, BlobTpl, crumbs, enc_path, escape, row, size};
use crate::ctx::ToolReq;
use crate::download::{self, Download};
use crate::error::PageResult;
use crate::page::render;
use crate::state::AppState;

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

pub async fn blob(State(st): State<AppState>, t: ToolReq, Path(rest): Path<String>) -> PageResult {
    let base = t.base.clone();
    let (At { rev, path, .. }, b) = read::blob(&st, &t, rest).await?;
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
        page: t.shell(&st.forge, &path),
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
/// downloads unless they are images. Logged as `repo.raw` (`{ref, path}`).
pub async fn raw(State(st): State<AppState>, t: ToolReq, Path(rest): Path<String>) -> PageResult {
    let (rev, path, raw) = with_repo(&st, &t, move |r| {
        let (rev, oid, path) = browse::split_ref_path(r, &rest)?;
        let raw = browse::raw(r, oid, &path)?;
        Ok((rev, path, raw))
    })
    .await?;
    let name = path.rsplit('/').next().unwrap_or("file");
    let (body, binary, length) = match raw {
        browse::Raw::Loaded { binary, content } => {
            let length = content.len() as u64;
            (Body::from(content), binary, length)
        }
        browse::Raw::Large { id, size } => {
            let output = repo::cat_blob(&st.forge, &t.tool, id).await?;
            let stream = tokio_util::io::ReaderStream::with_capacity(output, 64 * 1024);
            (Body::from_stream(stream), true, size as u64)
        }
    };
    let (content_type, inline) = match is_image(&path) {
        Some(t) => (t, true),
        None if !binary => ("text/plain", true),
        None => ("application/octet-stream", false),
    };
    st.forge.events().record(
        "repo.raw",
        t.viewer()
            .event_context(Some(&t.ctx.project), Some(&t.tool.mount)),
        bson::Bson::Document(bson::doc! {"ref": &rev, "path": &path}),
    );
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

pub async fn blame(State(st): State<AppState>, t: ToolReq, Path(rest): Path<String>) -> PageResult {
    let base = t.base.clone();
    let (rev, oid, path, bytes, binary, line_count) = with_repo(&st, &t, move |r| {
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
        repo::blame(&st.forge, &t.tool, oid, &path)
            .await?
            .into_iter()
            .map(|(c, l)| (c.map(|c| row(&base, &c)), l))
            .collect()
    } else {
        Vec::new()
    };
    let tpl = BlameTpl {
        page: t.shell(&st.forge, &format!("Blame {path}")),
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
    t: ToolReq,
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
    let oid = with_repo(&st, &t, move |r| browse::resolve(r, &r2)).await?;
    let prefix = format!("{}-{}/", t.ctx.project.shortname, rev.replace('/', "-"));
    // Holds a git slot until the download ends; a client that goes away kills git.
    let output = repo::archive(&st.forge, &t.tool, oid, format, &prefix).await?;
    st.forge.events().record(
        "repo.archive",
        t.viewer()
            .event_context(Some(&t.ctx.project), Some(&t.tool.mount)),
        bson::Bson::Document(bson::doc! {"ref": &rev, "format": format}),
    );
    let file = format!(
        "{}-{}.{format}",
        t.ctx.project.shortname,
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
