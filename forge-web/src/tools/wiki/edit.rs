//! Writing a wiki page: the editor (new or existing page), preview, and saving with conflict
//! handling that never loses what was typed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use forge_tools::Error;
use forge_tools::tools::wiki::{self, Saved, pages as store};
use serde::Deserialize;

use super::common::{edit_url, nav, page_url};
use super::ops;
use super::templates::{ConflictView, EditTpl};
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::{ToolReq, Write};
use crate::error::PageResult;
use crate::extract::Query;
use crate::page::{render, render_status};
use crate::state::AppState;
use crate::views::FormState;

fn edit_form(text: &str, labels: &str, comment: &str, base: i32) -> FormState {
    FormState::new(&[
        ("text", text),
        ("labels", labels),
        ("comment", comment),
        ("base_version", &base.to_string()),
    ])
}

/// The editor page for `name`: what the form holds, and what to show beside it.
struct Editor<'a> {
    st: &'a AppState,
    t: &'a ToolReq<Write>,
    name: &'a str,
}

impl Editor<'_> {
    fn page(
        &self,
        form: FormState,
        preview: Option<String>,
        conflict: Option<ConflictView>,
        is_new: bool,
    ) -> EditTpl {
        EditTpl {
            page: self.t.shell(&self.st.forge, &format!("Edit {}", self.name)),
            nav: nav(self.t),
            url: page_url(self.t, self.name),
            name: self.name.to_owned(),
            is_new,
            form,
            preview,
            conflict,
        }
    }
}

pub async fn edit_page(
    State(st): State<AppState>,
    t: ToolReq<Write>,
    Path(name): Path<String>,
) -> PageResult {
    store::check_name(&name)?;
    let existing = wiki::load_page(&st.forge, &t.ctx, &t.tool, &name).await?;
    let (form, is_new) = match &existing {
        Some(p) => (
            edit_form(&p.text, &p.labels.join(", "), "", p.version),
            false,
        ),
        None => (edit_form(&format!("# {name}\n\n"), "", "", 0), true),
    };
    let editor = Editor {
        st: &st,
        t: &t,
        name: &name,
    };
    Ok(render(&editor.page(form, None, None, is_new)))
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
    t: ToolReq<Write>,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<EditForm>,
) -> PageResult {
    let base: i32 = f.base_version.trim().parse().unwrap_or(0);
    // Browsers send form text with CRLF line ends.
    let text = f.text.replace("\r\n", "\n");
    let editor = Editor {
        st: &st,
        t: &t,
        name: &name,
    };
    // The form as it was sent, for answers that hand it back.
    let as_sent = || edit_form(&text, &f.labels, &f.comment, base);
    if f.action == "preview" {
        let rendered = wiki::render(&st.forge, &t.ctx, &t.tool, None, &text).await?;
        let tpl = editor.page(as_sent(), Some(rendered.html.to_string()), None, base == 0);
        return Ok(render(&tpl));
    }
    let saved = ops::save(
        &st,
        &t,
        &name,
        text.clone(),
        &f.labels,
        f.comment.clone(),
        base,
    )
    .await;
    match saved {
        Ok(Saved::Created(p)) => Ok(redirect_with_flash(
            &st,
            &page_url(&t, &p.name),
            &format!("Created {}.", p.name),
        )),
        Ok(Saved::Updated(p)) => Ok(redirect_with_flash(
            &st,
            &page_url(&t, &p.name),
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
            let form = edit_form(&proposal, &f.labels, &f.comment, version);
            let tpl = editor.page(form, None, Some(conflict), version == 0);
            Ok(render_status(StatusCode::CONFLICT, &tpl))
        }
        Err(Error::Invalid(errs)) => {
            let tpl = editor.page(as_sent().with_errors(errs), None, None, base == 0);
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl))
        }
        // Over the hourly limit: the form comes back with the text, nothing lost.
        Err(Error::RateLimited(m)) => {
            let tpl = editor.page(as_sent().with_message(m), None, None, base == 0);
            Ok(render_status(StatusCode::TOO_MANY_REQUESTS, &tpl))
        }
        Err(e) => Err(t.page_error(e)),
    }
}

#[derive(Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    name: String,
}

/// The "new page" box: to the editor of the named page.
pub async fn new_page(t: ToolReq<Write>, Query(q): Query<NewQuery>) -> PageResult<Response> {
    let name = q.name.trim();
    store::check_name(name)?;
    Ok(Redirect::to(&edit_url(&t, name)).into_response())
}
