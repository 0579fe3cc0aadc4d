//! The forum tool's settings (`GET|POST /_admin`, the tool's admins): add a forum, change
//! each (name, description, hidden, what mail from unknown senders becomes), delete and
//! restore, reorder (a position per forum, or up and down), the "anonymous posting" switch,
//! and the people blocked from posting (unblocked through `POST /_block`). Each form names
//! its operation in `op`; a refused one comes back as typed, messages by their fields.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use forge_tools::acl::{Ace, Principal, perm};
use forge_tools::discussion;
use forge_tools::tools::forum::forums::{self, ForumUpdate, NewForum};
use forge_tools::tools::forum::model::{Forum, UnknownSenders};
use forge_tools::tools::forum::moderation;
use forge_tools::{Error, FieldErrors};

use super::common::{Fields, nav};
use super::views::{AdminForumRow, AdminTpl};
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::{Admin, ToolReq};
use crate::error::PageResult;
use crate::page::render_status;
use crate::state::AppState;
use crate::views::FormState;

/// The entry that lets anonymous visitors post (their posts always wait for a moderator:
/// anonymous never holds `unmoderated_post`).
fn anonymous_entry() -> Ace {
    Ace::allow(Principal::Anonymous, discussion::perm::POST)
}

fn row_form(f: &Forum) -> FormState {
    FormState::new(&[
        ("name", &f.name),
        ("description", &f.description),
        ("unknown_senders", f.unknown_senders.as_str()),
        ("hidden", if f.hidden { "on" } else { "" }),
    ])
}

/// A refused form to show again: the add form, or one forum's edit form.
enum Refused {
    Add(FormState),
    Edit(String, FormState),
}

async fn page(
    st: &AppState,
    t: &ToolReq<Admin>,
    refused: Option<Refused>,
    status: StatusCode,
) -> Result<Response, Error> {
    let forge = &st.forge;
    let all = forums::list(forge, &t.ctx, &t.tool).await?;
    let can_moderate = t.can(perm::MODERATE);
    let blocked = if can_moderate {
        moderation::blocked(forge, &t.ctx, &t.tool).await?
    } else {
        Vec::new()
    };
    let (mut add, mut edit) = (FormState::default(), None);
    match refused {
        Some(Refused::Add(f)) => add = f,
        Some(Refused::Edit(name, f)) => edit = Some((name, f)),
        None => {}
    }
    let rows = all
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let form = match edit.take() {
                Some((name, form)) if name == f.shortname => form,
                other => {
                    edit = other;
                    row_form(f)
                }
            };
            AdminForumRow {
                shortname: f.shortname.clone(),
                url: format!("{}{}/", t.base, f.shortname),
                position: i32::try_from(i + 1).unwrap_or(i32::MAX),
                hidden: form.checked("hidden"),
                refuse_unknown: form.value("unknown_senders") == "refuse",
                form,
                deleted: f.deleted,
                topics: f.num_topics,
            }
        })
        .collect();
    let tpl = AdminTpl {
        page: t.shell(forge, "Forum settings"),
        nav: nav(t),
        add,
        forums: rows,
        anonymous_posting: t.tool.acl.contains(&anonymous_entry()),
        blocked,
        can_moderate,
    };
    Ok(render_status(status, &tpl))
}

/// `GET /_admin`.
pub async fn settings(State(st): State<AppState>, t: ToolReq<Admin>) -> PageResult {
    page(&st, &t, None, StatusCode::OK)
        .await
        .map_err(|e| t.page_error(e))
}

/// The forums' short names in the order `key` sorts them (ties keep their place).
fn ordered(all: &[Forum], key: impl Fn(usize, &Forum) -> i64) -> Vec<String> {
    let mut keyed: Vec<(i64, usize, &Forum)> = all
        .iter()
        .enumerate()
        .map(|(i, f)| (key(i, f), i, f))
        .collect();
    keyed.sort_by_key(|(k, i, _)| (*k, *i));
    keyed
        .into_iter()
        .map(|(_, _, f)| f.shortname.clone())
        .collect()
}

/// `POST /_admin`: one operation (`op`): `add`, `save`, `delete`, `restore`, `reorder`,
/// `up`, `down`, `anonymous`.
pub async fn save(
    State(st): State<AppState>,
    t: ToolReq<Admin>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let forge = &st.forge;
    let f = Fields(pairs);
    let back = format!("{}_admin", t.base);
    let forum = f.get("forum").trim().to_owned();
    let (st_ref, t_ref) = (&st, &t);
    let refused = |r: Refused| async move {
        page(st_ref, t_ref, Some(r), StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .map_err(|e| t_ref.page_error(e))
    };
    let result: Result<String, Error> = match f.get("op") {
        "add" => {
            let new = NewForum {
                shortname: f.get("shortname").trim().to_owned(),
                name: f.get("name").to_owned(),
                description: f.text("description"),
            };
            match forums::create(forge, t.viewer(), &t.ctx, &t.tool, new).await {
                Ok(created) => Ok(format!("Forum {} added.", created.name)),
                Err(Error::Invalid(errs)) => {
                    let form = FormState::new(&[
                        ("shortname", f.get("shortname")),
                        ("name", f.get("name")),
                        ("description", &f.text("description")),
                    ])
                    .with_errors(errs)
                    .with_message("The forum was not added: see the messages below.");
                    return refused(Refused::Add(form)).await;
                }
                Err(e) => Err(e),
            }
        }
        "save" => {
            let Some(unknown_senders) = UnknownSenders::parse(f.get("unknown_senders")) else {
                return Err(t.page_error(Error::bad_request(
                    "Mail from unknown senders is pending or refuse",
                )));
            };
            let upd = ForumUpdate {
                name: f.get("name").to_owned(),
                description: f.text("description"),
                hidden: f.checked("hidden"),
                unknown_senders,
            };
            match forums::update(forge, t.viewer(), &t.ctx, &t.tool, &forum, upd).await {
                Ok(saved) => Ok(format!("Forum {} saved.", saved.name)),
                Err(Error::Invalid(errs)) => {
                    let form = FormState::new(&[
                        ("name", f.get("name")),
                        ("description", &f.text("description")),
                        ("unknown_senders", unknown_senders.as_str()),
                        ("hidden", if f.checked("hidden") { "on" } else { "" }),
                    ])
                    .with_errors(errs)
                    .with_message("Not saved: see the messages below.");
                    return refused(Refused::Edit(forum, form)).await;
                }
                Err(e) => Err(e),
            }
        }
        op @ ("delete" | "restore") => {
            let deleted = op == "delete";
            forums::set_deleted(forge, t.viewer(), &t.ctx, &t.tool, &forum, deleted)
                .await
                .map(|()| {
                    if deleted {
                        format!("Forum {forum} deleted.")
                    } else {
                        format!("Forum {forum} restored.")
                    }
                })
        }
        op @ ("reorder" | "up" | "down") => {
            let all = forums::list(forge, &t.ctx, &t.tool).await?;
            let order = match op {
                // A position per forum (`pos_<shortname>`); unreadable ones keep their place.
                "reorder" => ordered(&all, |i, x| {
                    f.get(&format!("pos_{}", x.shortname))
                        .trim()
                        .parse::<i64>()
                        .unwrap_or(i as i64 + 1)
                }),
                _ => {
                    let at = all
                        .iter()
                        .position(|x| x.shortname == forum)
                        .ok_or_else(|| t.page_error(Error::NotFound("forum")))?;
                    let mut names: Vec<String> = all.iter().map(|x| x.shortname.clone()).collect();
                    let other = if op == "up" {
                        at.checked_sub(1)
                    } else {
                        Some(at + 1).filter(|o| *o < names.len())
                    };
                    if let Some(o) = other {
                        names.swap(at, o);
                    }
                    names
                }
            };
            forums::reorder(forge, t.viewer(), &t.ctx, &t.tool, &order)
                .await
                .map(|()| "The forums are reordered.".to_owned())
        }
        "anonymous" => {
            let entry = anonymous_entry();
            let allow = f.get("allow") == "1";
            let done = if allow {
                forge_tools::instances::prepend_ace(forge.db(), t.tool.id, &entry).await
            } else {
                forge_tools::instances::remove_ace(forge.db(), t.tool.id, &entry).await
            };
            done.map(|()| {
                if allow {
                    "Anonymous visitors may post; their posts wait for a moderator.".to_owned()
                } else {
                    "Anonymous visitors may no longer post.".to_owned()
                }
            })
        }
        _ => Err(Error::bad_request("Unknown operation")),
    };
    match result {
        Ok(message) => Ok(redirect_with_flash(&st, &back, &message)),
        Err(Error::Invalid(errs)) => {
            let message = messages(&errs);
            Ok(redirect_with_flash(&st, &back, &message))
        }
        Err(e) => Err(t.page_error(e)),
    }
}

fn messages(errs: &FieldErrors) -> String {
    errs.0
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}
