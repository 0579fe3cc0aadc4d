//! Wiki page handlers.

use crate::extract::Query;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use forge_tools::acl::perm;
use forge_tools::attachments::human_size;
use forge_tools::wiki::{self, Edit, Saved, pages as store};
use forge_tools::{Error, diff};
use serde::Deserialize;

use super::views::{
    AdminTpl, AttachmentRow, BacklinkRow, ConflictView, DiffTpl, EditTpl, HistoryRow, HistoryTpl,
    ListRow, ListTpl, PageTpl, WikiNav,
};
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::error::{PageError, PageResult};
use crate::routes::accounts::Empty;
use crate::state::AppState;
use crate::tools::ToolRequest;
use crate::views::{FormState, Page, date, render, render_status};

pub(super) fn nav(req: &ToolRequest) -> WikiNav {
    WikiNav {
        base: req.base.clone(),
        project: req.ctx.project.shortname.clone(),
        mount: req.tool.mount.clone(),
        home: wiki::encode_name(&wiki::home_page(&req.tool)),
        can_write: req.ctx.can_tool(&req.tool, perm::WRITE),
        can_admin: req.ctx.can_tool(&req.tool, perm::ADMIN),
    }
}

pub(super) fn shell(st: &AppState, req: &ToolRequest, title: &str) -> Page {
    Page::new(&req.page, title).in_project(&st.forge, &req.ctx, &req.base)
}

fn page_url(req: &ToolRequest, name: &str) -> String {
    wiki::page_url(&req.ctx.project, &req.tool, name)
}

/// Checks a tool permission, sending anonymous viewers to the login page.
pub(super) fn authorize(req: &ToolRequest, permission: &str) -> Result<(), PageError> {
    req.ctx
        .authorize_tool(&req.tool, permission)
        .map_err(|e| PageError::from(e).with_next(&req.page.path))
}

/// Loads a page; a renamed page's old name redirects (Err(Ok(redirect))).
pub(super) async fn load(
    st: &AppState,
    req: &ToolRequest,
    name: &str,
) -> Result<store::Page, PageError> {
    wiki::load_page(&st.forge, &req.ctx, &req.tool, name)
        .await?
        .ok_or_else(|| Error::NotFound("page").into())
}

pub async fn home(Extension(req): Extension<ToolRequest>) -> Response {
    Redirect::to(&page_url(&req, &wiki::home_page(&req.tool))).into_response()
}

pub async fn add_slash(
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
) -> Response {
    Redirect::permanent(&page_url(&req, &name)).into_response()
}

#[derive(Deserialize)]
pub struct VersionQuery {
    version: Option<i32>,
    /// `text`: the version's markdown source as a download.
    #[serde(default)]
    format: String,
}

pub async fn view(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> PageResult {
    let forge = &st.forge;
    let Some(page) = wiki::load_page(forge, &req.ctx, &req.tool, &name).await? else {
        if let Some(current) = store::redirect_target(forge.db(), req.tool.id, &name).await? {
            return Ok(Redirect::permanent(&page_url(&req, &current)).into_response());
        }
        // A missing page is an invitation to write it, for those who may.
        if req.ctx.can_tool(&req.tool, perm::WRITE) && store::check_name(&name).is_ok() {
            return Ok(Redirect::to(&format!("{}edit", page_url(&req, &name))).into_response());
        }
        return Err(Error::NotFound("page").into());
    };
    let wiki::PageVersion {
        version,
        text,
        labels,
        author,
        updated,
    } = wiki::version_of(forge, &page, q.version).await?;
    if q.format == "text" {
        let filename = format!("{}-v{version}.md", page.name);
        let length = Some(text.len() as u64);
        return Ok(crate::download::respond(
            axum::body::Body::from(text),
            crate::download::Download {
                filename: &filename,
                content_type: "text/plain",
                length,
                inline: true,
            },
        ));
    }
    // The three look-ups are independent: run them together.
    let (rendered, attachments, backlinks) = futures::try_join!(
        wiki::render(forge, &req.ctx, &req.tool, Some((page.id, version)), &text),
        forge.attachments().list(forge.db(), req.tool.id, page.id),
        wiki::backlinks(forge, &req.tool, &page),
    )?;
    let url = page_url(&req, &page.name);
    let attachments = attachments
        .into_iter()
        .map(|a| AttachmentRow {
            url: format!("{url}attachments/{}", wiki::encode_name(&a.filename)),
            size: human_size(a.size as u64),
            is_image: a.is_image(),
            filename: a.filename,
        })
        .collect();
    let backlinks = backlinks
        .into_iter()
        .map(|l| BacklinkRow {
            title: l.from_title,
            url: l.from_url,
        })
        .collect();
    wiki::record_view(forge, &req.page.viewer, &req.ctx, &req.tool, &page);
    let watches = watch_buttons(forge, &req, &page, &url).await?;
    let tpl = PageTpl {
        page: shell(&st, &req, &page.name),
        nav: nav(&req),
        name: page.name.clone(),
        url,
        html: rendered.html.to_string(),
        labels,
        version,
        latest: page.version,
        author: if author.is_empty() {
            "Forge".into()
        } else {
            author
        },
        updated: date(updated),
        deleted: page.deleted,
        can_delete: req.ctx.can_tool(&req.tool, wiki::DELETE),
        attachments,
        backlinks,
        max_upload: human_size(forge.attachments().max_bytes),
        watches,
    };
    Ok(render(&tpl))
}

/// "Watch page" and "Watch wiki" for a logged-in viewer.
async fn watch_buttons(
    forge: &forge_tools::Forge,
    req: &ToolRequest,
    page: &store::Page,
    url: &str,
) -> Result<Vec<crate::views::WatchButton>, forge_tools::Error> {
    use forge_tools::notify::{self, Target};
    if req.page.viewer.user.is_none() {
        return Ok(Vec::new());
    }
    let key = format!("wiki:{}", page.id);
    let action = format!("{}_watch", req.ctx.project.url());
    let page_target = Target::Artifact {
        tool: &req.tool,
        key: key.clone(),
        title: String::new(),
    };
    let on_page = notify::is_watching(forge, &req.page.viewer, &req.ctx, page_target).await?;
    let on_wiki =
        notify::is_watching(forge, &req.page.viewer, &req.ctx, Target::Tool(&req.tool)).await?;
    let button = |artifact: &str, watching, label: &str| crate::views::WatchButton {
        action: action.clone(),
        tool: req.tool.mount.clone(),
        artifact: artifact.to_owned(),
        watching,
        label: label.to_owned(),
        next: url.to_owned(),
    };
    Ok(vec![
        button(&key, on_page, "page"),
        button("", on_wiki, "wiki"),
    ])
}

fn edit_form(text: &str, labels: &str, comment: &str, base: i32) -> FormState {
    FormState::new(&[
        ("text", text),
        ("labels", labels),
        ("comment", comment),
        ("base_version", &base.to_string()),
    ])
}

pub async fn edit_page(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
) -> PageResult {
    authorize(&req, perm::WRITE)?;
    store::check_name(&name)?;
    let existing = wiki::load_page(&st.forge, &req.ctx, &req.tool, &name).await?;
    let (form, is_new) = match &existing {
        Some(p) => (
            edit_form(&p.text, &p.labels.join(", "), "", p.version),
            false,
        ),
        None => (edit_form(&format!("# {name}\n\n"), "", "", 0), true),
    };
    let tpl = EditTpl {
        page: shell(&st, &req, &format!("Edit {name}")),
        nav: nav(&req),
        url: page_url(&req, &name),
        name,
        is_new,
        form,
        preview: None,
        conflict: None,
    };
    Ok(render(&tpl))
}

#[derive(Deserialize)]
pub struct EditForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    base_version: String,
    #[serde(default)]
    action: String,
}

pub async fn save(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<EditForm>,
) -> PageResult {
    authorize(&req, perm::WRITE)?;
    let base: i32 = f.base_version.trim().parse().unwrap_or(0);
    let text = f.text.replace("\r\n", "\n");
    let view = |form: FormState,
                preview: Option<String>,
                conflict: Option<ConflictView>,
                is_new: bool| EditTpl {
        page: shell(&st, &req, &format!("Edit {name}")),
        nav: nav(&req),
        url: page_url(&req, &name),
        name: name.clone(),
        is_new,
        form,
        preview,
        conflict,
    };
    if f.action == "preview" {
        let rendered = wiki::render(&st.forge, &req.ctx, &req.tool, None, &text).await?;
        let tpl = view(
            edit_form(&text, &f.labels, &f.comment, base),
            Some(rendered.html.to_string()),
            None,
            base == 0,
        );
        return Ok(render(&tpl));
    }
    let labels = match store::parse_labels(&f.labels) {
        Ok(l) => l,
        Err(Error::Invalid(errs)) => {
            let tpl = view(
                edit_form(&text, &f.labels, &f.comment, base).with_errors(errs),
                None,
                None,
                base == 0,
            );
            return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl));
        }
        Err(e) => return Err(e.into()),
    };
    let edit = Edit {
        text: text.clone(),
        labels,
        comment: f.comment.clone(),
        base_version: base,
    };
    match wiki::save(
        &st.forge,
        &req.page.viewer,
        &req.ctx,
        &req.tool,
        &name,
        edit,
    )
    .await
    {
        Ok(Saved::Created(p)) => Ok(redirect_with_flash(
            &st,
            &page_url(&req, &p.name),
            &format!("Created {}.", p.name),
        )),
        Ok(Saved::Updated(p)) => Ok(redirect_with_flash(
            &st,
            &page_url(&req, &p.name),
            &format!("Saved version {}.", p.version),
        )),
        Ok(Saved::Conflict(c)) => {
            // Nothing is lost: the editor gets their text back (merged with the other edit when
            // that merges cleanly), the other version to compare, and a base to save over it.
            let (version, author, current_text) = c
                .current
                .as_ref()
                .map_or((0, String::new(), String::new()), |p| {
                    (p.version, p.author.clone(), p.text.clone())
                });
            let merged = c.merged.is_some();
            let proposal = c.merged.clone().unwrap_or_else(|| c.yours.clone());
            let conflict = ConflictView {
                version,
                author,
                current_text,
                your_text: c.yours,
                merged,
            };
            let tpl = view(
                edit_form(&proposal, &f.labels, &f.comment, version),
                None,
                Some(conflict),
                version == 0,
            );
            Ok(render_status(StatusCode::CONFLICT, &tpl))
        }
        Err(Error::Invalid(errs)) => {
            let tpl = view(
                edit_form(&text, &f.labels, &f.comment, base).with_errors(errs),
                None,
                None,
                base == 0,
            );
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl))
        }
        // Over the hourly limit: the form comes back with the text, nothing lost.
        Err(Error::RateLimited(m)) => {
            let tpl = view(
                edit_form(&text, &f.labels, &f.comment, base).with_message(m),
                None,
                None,
                base == 0,
            );
            Ok(render_status(StatusCode::TOO_MANY_REQUESTS, &tpl))
        }
        Err(e) => Err(PageError::from(e).with_next(&req.page.path)),
    }
}

pub async fn history(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
) -> PageResult {
    let page = load(&st, &req, &name).await?;
    let rows = store::versions(st.forge.db())
        .history(page.id)
        .await?
        .into_iter()
        .map(|v| HistoryRow {
            version: v.version,
            author: if v.author.is_empty() {
                "Forge".into()
            } else {
                v.author
            },
            when: date(v.timestamp),
            comment: v.comment,
        })
        .collect();
    let tpl = HistoryTpl {
        page: shell(&st, &req, &format!("History of {}", page.name)),
        nav: nav(&req),
        url: page_url(&req, &page.name),
        name: page.name,
        rows,
        latest: page.version,
    };
    Ok(render(&tpl))
}

#[derive(Deserialize)]
pub struct DiffQuery {
    v1: Option<i32>,
    v2: Option<i32>,
}

pub async fn diff(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
    Query(q): Query<DiffQuery>,
) -> PageResult {
    let page = load(&st, &req, &name).await?;
    let v2 = q.v2.unwrap_or(page.version);
    let v1 = q.v1.unwrap_or(v2 - 1).max(1);
    let versions = store::versions(st.forge.db());
    let old = versions
        .get(page.id, v1)
        .await?
        .ok_or(Error::NotFound("version"))?;
    let new = versions
        .get(page.id, v2)
        .await?
        .ok_or(Error::NotFound("version"))?;
    // Off the async threads, with size and time caps.
    let (old_text, new_text) = (old.data.text, new.data.text);
    let (lines, too_large) =
        match forge_tools::heavy::run(move || diff::unified(&old_text, &new_text)).await? {
            diff::Diff::Lines(lines) => (lines, false),
            diff::Diff::TooLarge => (Vec::new(), true),
        };
    let tpl = DiffTpl {
        page: shell(&st, &req, &format!("{}: version {v1} → {v2}", page.name)),
        nav: nav(&req),
        url: page_url(&req, &page.name),
        name: page.name,
        v1,
        v2,
        lines,
        too_large,
    };
    Ok(render(&tpl))
}

#[derive(Deserialize)]
pub struct RevertForm {
    #[serde(default)]
    version: String,
}

pub async fn revert(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<RevertForm>,
) -> PageResult {
    authorize(&req, perm::WRITE)?;
    let page = load(&st, &req, &name).await?;
    let version: i32 = f
        .version
        .trim()
        .parse()
        .map_err(|_| Error::invalid("version", "Choose a version"))?;
    match wiki::revert(
        &st.forge,
        &req.page.viewer,
        &req.ctx,
        &req.tool,
        &page,
        version,
    )
    .await?
    {
        Saved::Conflict(_) => Err(Error::conflict(
            "edit_conflict",
            "The page changed meanwhile; look at its history again",
        )
        .into()),
        Saved::Created(p) | Saved::Updated(p) => Ok(redirect_with_flash(
            &st,
            &page_url(&req, &p.name),
            &format!("Reverted to version {version} (now version {}).", p.version),
        )),
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

pub async fn rename(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<RenameForm>,
) -> PageResult {
    authorize(&req, perm::WRITE)?;
    let page = load(&st, &req, &name).await?;
    match wiki::rename(
        &st.forge,
        &req.page.viewer,
        &req.ctx,
        &req.tool,
        &page,
        &f.name,
    )
    .await
    {
        Ok(Saved::Updated(p)) => Ok(redirect_with_flash(
            &st,
            &page_url(&req, &p.name),
            &format!("Renamed from {name}."),
        )),
        Ok(_) => {
            Err(Error::conflict("edit_conflict", "The page changed meanwhile; try again").into())
        }
        Err(Error::Invalid(errs)) => Ok(redirect_with_flash(
            &st,
            &page_url(&req, &name),
            &format!("Not renamed: {errs}"),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    set_deleted(&st, &req, &name, true).await
}

pub async fn undelete(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    set_deleted(&st, &req, &name, false).await
}

async fn set_deleted(st: &AppState, req: &ToolRequest, name: &str, deleted: bool) -> PageResult {
    authorize(req, wiki::DELETE)?;
    let page = load(st, req, name).await?;
    wiki::set_deleted(
        &st.forge,
        &req.page.viewer,
        &req.ctx,
        &req.tool,
        &page,
        deleted,
    )
    .await?;
    let message = if deleted {
        format!("Deleted {name}. It can be restored from this page.")
    } else {
        format!("Restored {name}.")
    };
    Ok(redirect_with_flash(st, &page_url(req, name), &message))
}

fn list_rows(req: &ToolRequest, list: Vec<store::Page>) -> Vec<ListRow> {
    list.into_iter()
        .map(|p| ListRow {
            url: page_url(req, &p.name),
            author: if p.author.is_empty() {
                "Forge".into()
            } else {
                p.author
            },
            updated: date(p.updated),
            labels: p.labels,
            deleted: p.deleted,
            name: p.name,
        })
        .collect()
}

#[derive(Deserialize)]
pub struct IndexQuery {
    #[serde(default)]
    deleted: Option<String>,
}

pub async fn index(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Query(q): Query<IndexQuery>,
) -> PageResult {
    let show_deleted = q.deleted.is_some() && req.ctx.can_tool(&req.tool, wiki::DELETE);
    let filter = if show_deleted {
        bson::doc! {}
    } else {
        bson::doc! {"deleted": false}
    };
    let list = store::list(st.forge.db(), req.tool.id, filter, false, 5000).await?;
    let tpl = ListTpl {
        page: shell(&st, &req, "Page index"),
        nav: nav(&req),
        heading: "Page index".into(),
        rows: list_rows(&req, list),
        labels: Vec::new(),
    };
    Ok(render(&tpl))
}

pub async fn recent(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
) -> PageResult {
    let list = store::list(
        st.forge.db(),
        req.tool.id,
        bson::doc! {"deleted": false},
        true,
        50,
    )
    .await?;
    let tpl = ListTpl {
        page: shell(&st, &req, "Recent changes"),
        nav: nav(&req),
        heading: "Recent changes".into(),
        rows: list_rows(&req, list),
        labels: Vec::new(),
    };
    Ok(render(&tpl))
}

#[derive(Deserialize)]
pub struct LabelQuery {
    label: Option<String>,
}

pub async fn labels(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Query(q): Query<LabelQuery>,
) -> PageResult {
    let db = st.forge.db();
    let (heading, rows) = match &q.label {
        Some(label) => {
            let list = store::list(
                db,
                req.tool.id,
                bson::doc! {"deleted": false, "labels": label},
                false,
                5000,
            )
            .await?;
            (format!("Pages labelled “{label}”"), list_rows(&req, list))
        }
        None => ("Labels".to_owned(), Vec::new()),
    };
    let labels = store::labels(db, req.tool.id).await?;
    let tpl = ListTpl {
        page: shell(&st, &req, &heading),
        nav: nav(&req),
        heading,
        rows,
        labels,
    };
    Ok(render(&tpl))
}

#[derive(Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    name: String,
}

pub async fn new_page(
    Extension(req): Extension<ToolRequest>,
    Query(q): Query<NewQuery>,
) -> PageResult {
    authorize(&req, perm::WRITE)?;
    let name = q.name.trim();
    store::check_name(name)?;
    Ok(Redirect::to(&format!("{}edit", page_url(&req, name))).into_response())
}

pub async fn admin_page(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
) -> PageResult {
    authorize(&req, perm::ADMIN)?;
    let form = FormState::new(&[("home", &wiki::home_page(&req.tool))]);
    Ok(render(&AdminTpl {
        page: shell(&st, &req, "Wiki settings"),
        nav: nav(&req),
        form,
    }))
}

#[derive(Deserialize)]
pub struct AdminForm {
    #[serde(default)]
    home: String,
}

pub async fn save_admin(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    CsrfForm(f): CsrfForm<AdminForm>,
) -> PageResult {
    match wiki::set_home(&st.forge, &req.page.viewer, &req.ctx, &req.tool, &f.home).await {
        Ok(()) => Ok(redirect_with_flash(
            &st,
            &format!("{}_admin", req.base),
            "Wiki settings saved.",
        )),
        Err(Error::Invalid(errs)) => {
            let form = FormState::new(&[("home", &f.home)]).with_errors(errs);
            Ok(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &AdminTpl {
                    page: shell(&st, &req, "Wiki settings"),
                    nav: nav(&req),
                    form,
                },
            ))
        }
        Err(e) => Err(PageError::from(e).with_next(&req.page.path)),
    }
}
