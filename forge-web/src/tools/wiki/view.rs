//! Reading a wiki page: the wiki's home, a page (any version, or its markdown source), with
//! its attachments, backlinks, watch toggles and discussion.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use forge_tools::Error;
use forge_tools::Forge;
use forge_tools::acl::perm;
use forge_tools::attachments::human_size;
use forge_tools::notify::{self, Target};
use forge_tools::tools::wiki::{self, pages as store};
use serde::Deserialize;

use super::common::{Delete, author_or_forge, edit_url, nav, page_url};
use super::ops;
use super::templates::{AttachmentRow, BacklinkRow, PageTpl};
use crate::ctx::{Permission, ToolReq};
use crate::discussion::{self, SectionQuery, ThreadRef};
use crate::error::PageResult;
use crate::extract::Query;
use crate::page::render;
use crate::state::AppState;
use crate::views::{WatchButton, date, figure};

pub async fn home(t: ToolReq) -> Response {
    Redirect::to(&page_url(&t, &wiki::home_page(&t.tool))).into_response()
}

pub async fn add_slash(t: ToolReq, Path(name): Path<String>) -> Response {
    Redirect::permanent(&page_url(&t, &name)).into_response()
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
    t: ToolReq,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
    Query(dq): Query<SectionQuery>,
) -> PageResult {
    let forge = &st.forge;
    let Some(page) = wiki::load_page(forge, &t.ctx, &t.tool, &name).await? else {
        if let Some(current) = store::redirect_target(forge.db(), t.tool.id, &name).await? {
            return Ok(Redirect::permanent(&page_url(&t, &current)).into_response());
        }
        // A missing page is an invitation to write it, for those who may.
        if t.can(perm::WRITE) && store::check_name(&name).is_ok() {
            return Ok(Redirect::to(&edit_url(&t, &name)).into_response());
        }
        return Err(Error::NotFound("page").into());
    };
    let v = wiki::version_of(forge, &page, q.version).await?;
    if q.format == "text" {
        let filename = format!("{}-v{}.md", page.name, v.version);
        let length = Some(v.text.len() as u64);
        return Ok(crate::download::respond(
            axum::body::Body::from(v.text),
            crate::download::Download {
                filename: &filename,
                content_type: "text/plain",
                length,
                inline: true,
            },
        ));
    }
    // The three look-ups are independent: run them together.
    let (html, attachments, backlinks) = futures::try_join!(
        ops::html(&st, &t, &page, &v),
        ops::attachments(&st, &t, &page),
        wiki::backlinks(forge, &t.tool, &page),
    )?;
    let url = page_url(&t, &page.name);
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
    t.viewed(bson::doc! {"page": &page.name});
    let watches = watch_buttons(forge, &t, &page, &url).await?;
    let thread = ThreadRef {
        artifact: format!("wiki:{}", page.id),
        title: format!("page {}", page.name),
        url: url.clone(),
        also: Vec::new(),
    };
    let discussion = discussion::section(&st, &t, &thread, &dq).await?;
    let views_of = format!("views:{}", t.tool.mount);
    let views = figure("wiki views", forge.project_recent(&t.ctx, &views_of, 30)).await;
    let tpl = PageTpl {
        page: t.shell(forge, &page.name),
        nav: nav(&t),
        name: page.name.clone(),
        url,
        html,
        labels: v.labels,
        version: v.version,
        latest: page.version,
        author: author_or_forge(v.author),
        updated: date(v.updated),
        deleted: page.deleted,
        can_delete: t.can(Delete::NAME),
        attachments,
        backlinks,
        max_upload: human_size(forge.attachments().max_bytes),
        watches,
        discussion,
        views,
        stats_url: format!("{}stats/", t.ctx.project.url()),
    };
    Ok(render(&tpl))
}

/// "Watch page" and "Watch wiki" for a logged-in viewer.
async fn watch_buttons(
    forge: &Forge,
    t: &ToolReq,
    page: &store::Page,
    url: &str,
) -> Result<Vec<WatchButton>, Error> {
    if t.viewer().user.is_none() {
        return Ok(Vec::new());
    }
    let key = format!("wiki:{}", page.id);
    let action = format!("{}_watch", t.ctx.project.url());
    let page_target = Target::Artifact {
        tool: &t.tool,
        key: key.clone(),
        title: String::new(),
    };
    let on_page = notify::is_watching(forge, t.viewer(), &t.ctx, page_target).await?;
    let on_wiki = notify::is_watching(forge, t.viewer(), &t.ctx, Target::Tool(&t.tool)).await?;
    let button = |artifact: &str, watching, label: &str| WatchButton {
        action: action.clone(),
        tool: t.tool.mount.clone(),
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
