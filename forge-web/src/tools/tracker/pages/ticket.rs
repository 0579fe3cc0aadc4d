//! A ticket's page: its fields, rendered description, "linked from", imported attachments,
//! the history of changes, the comments (the shared discussion section), and the forms of
//! those who may act on it (edit with conflict handling that loses nothing, vote, watch,
//! delete, move, approve).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use forge_tools::attachments::human_size;
use forge_tools::notify::{self, Target};
use forge_tools::tool::xref;
use forge_tools::tools::tracker::actions::{self, Lookup, TicketPatch};
use forge_tools::tools::tracker::config::{FieldType, TrackerConfig};
use forge_tools::tools::tracker::perm as tperm;
use forge_tools::tools::tracker::tickets::{self, Ticket};
use forge_tools::{Error, FieldErrors, Forge, markdown};

use super::common::{
    Delete, Fields, Moderate, PENDING_PATH, Update, field_inputs, field_text, filtered_url,
    known_fields, milestone_names, nav, num_of, other_errors, parse_num, safe_next, sent_field,
    statuses,
};
use super::views::{EditView, FieldChangeRow, HistoryEntry, ImportedRow, LinkRow, TicketTpl};
use crate::auth::{CsrfForm, Empty, redirect_with_flash};
use crate::ctx::ToolReq;
use crate::discussion::SectionQuery;
use crate::error::{PageError, PageResult};
use crate::extract::Query;
use crate::page::render_status;
use crate::state::AppState;
use crate::views::{FormState, WatchButton, date};

/// The built-in inputs of the edit form.
const EDIT_FIELDS: &[&str] = &[
    "summary",
    "description",
    "status",
    "labels",
    "assigned_to",
    "milestone",
    "private",
];

/// `GET /{num}`: to the ticket's address.
pub async fn add_slash(t: ToolReq, Path(num): Path<String>) -> PageResult {
    let num = num_of(&num)?;
    Ok(Redirect::permanent(&format!("{}{num}/", t.base)).into_response())
}

/// The query string of a ticket page: the discussion section's parameters.
pub type PageQuery = Vec<(String, String)>;

/// `GET /{num}/`: the ticket, or a redirect to where it was moved.
pub async fn view(
    State(st): State<AppState>,
    t: ToolReq,
    Path(num): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let num = num_of(&num)?;
    let found = actions::lookup(&st.forge, t.viewer(), &t.ctx, &t.tool, num)
        .await
        .map_err(|e| t.page_error(e))?;
    match found {
        Lookup::Moved(url) => Ok(Redirect::permanent(&url).into_response()),
        Lookup::Found(k) => {
            let page = TicketPage {
                edit: None,
                conflict: None,
                query: Fields(q),
            };
            render_ticket(&st, &t, *k, page, StatusCode::OK).await
        }
    }
}

/// What a ticket page shows beside the ticket: the edit form as sent (after a refused
/// save) and what went wrong.
struct TicketPage {
    edit: Option<EditView>,
    conflict: Option<String>,
    query: Fields,
}

/// The values of the edit form.
struct Values {
    summary: String,
    description: String,
    status: String,
    labels: String,
    assigned_to: String,
    milestone: String,
    private: bool,
    /// `(custom field name, text)`.
    custom: Vec<(String, String)>,
}

impl Values {
    fn of_ticket(config: &TrackerConfig, k: &Ticket) -> Self {
        Self {
            summary: k.summary.clone(),
            description: k.description.clone(),
            status: k.status.clone(),
            labels: k.labels.join(", "),
            assigned_to: k.assigned_to.clone().unwrap_or_default(),
            milestone: k.milestone.clone().unwrap_or_default(),
            private: k.private,
            custom: config
                .custom_fields
                .iter()
                .map(|f| {
                    (
                        f.name.clone(),
                        field_text(f.kind, k.custom_fields.get(&f.name)),
                    )
                })
                .collect(),
        }
    }

    fn sent(config: &TrackerConfig, f: &Fields) -> Self {
        Self {
            summary: f.get("summary").to_owned(),
            description: f.text("description"),
            status: f.get("status").to_owned(),
            labels: f.get("labels").to_owned(),
            assigned_to: f.get("assigned_to").to_owned(),
            milestone: f.get("milestone").to_owned(),
            private: f.checked("private"),
            custom: config
                .custom_fields
                .iter()
                .map(|c| (c.name.clone(), sent_field(c.kind, f, &c.name)))
                .collect(),
        }
    }

    /// After a conflict: what the editor changed (from what their form started with), and
    /// the current ticket's value of every field they left alone, so saving the form again
    /// applies their changes and undoes nobody else's.
    fn merged(config: &TrackerConfig, f: &Fields, current: &Ticket) -> Self {
        let sent = Self::sent(config, f);
        let now = Self::of_ticket(config, current);
        let orig = |name: &str| f.get(&format!("orig_{name}")).trim().to_owned();
        let pick = |name: &str, mine: &str, theirs: &str| {
            if mine.trim() != orig(name) {
                mine.to_owned()
            } else {
                theirs.to_owned()
            }
        };
        Self {
            summary: pick("summary", &sent.summary, &now.summary),
            description: if digest(&sent.description) != orig("description") {
                sent.description.clone()
            } else {
                now.description.clone()
            },
            status: pick("status", &sent.status, &now.status),
            labels: if actions::parse_labels(&sent.labels) != actions::parse_labels(&orig("labels"))
            {
                sent.labels.clone()
            } else {
                now.labels.clone()
            },
            assigned_to: pick("assigned_to", &sent.assigned_to, &now.assigned_to),
            milestone: pick("milestone", &sent.milestone, &now.milestone),
            private: if sent.private != (orig("private") == "true") {
                sent.private
            } else {
                now.private
            },
            custom: config
                .custom_fields
                .iter()
                .map(|c| {
                    let mut was = orig(&c.name);
                    if c.kind == FieldType::Boolean && was.is_empty() {
                        was = "false".into();
                    }
                    let mine = sent.custom(&c.name);
                    let value = if mine.trim() != was {
                        mine
                    } else {
                        now.custom(&c.name)
                    };
                    (c.name.clone(), value)
                })
                .collect(),
        }
    }

    fn custom(&self, name: &str) -> String {
        self.custom
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The hidden inputs saying what an edit form starts from.
    fn orig_inputs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = [
            ("summary", self.summary.clone()),
            ("description", digest(&self.description)),
            ("status", self.status.clone()),
            ("labels", self.labels.clone()),
            ("assigned_to", self.assigned_to.clone()),
            ("milestone", self.milestone.clone()),
            ("private", self.private.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("orig_{k}"), v))
        .collect();
        out.extend(
            self.custom
                .iter()
                .map(|(k, v)| (format!("orig_{k}"), v.clone())),
        );
        out
    }
}

/// A fingerprint of a description, to tell whether the editor changed it without sending it
/// twice (line ends and surrounding whitespace do not count).
fn digest(text: &str) -> String {
    use std::hash::{Hash, Hasher};
    let normal = text.replace("\r\n", "\n");
    let normal = normal.trim();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    normal.hash(&mut h);
    format!("{:016x}-{}", h.finish(), normal.len())
}

/// Only what the editor changed from what the form started with, so changes others made
/// meanwhile to other fields are kept (the domain merges them) and the same field changed
/// both ways is a conflict.
fn patch_of(config: &TrackerConfig, f: &Fields, base: i64) -> TicketPatch {
    let sent = Values::sent(config, f);
    let orig = |name: &str| f.get(&format!("orig_{name}")).trim().to_owned();
    let changed = |name: &str, now: &str| now.trim() != orig(name);
    let optional = |v: &str| {
        let v = v.trim();
        (!v.is_empty()).then(|| v.to_owned())
    };
    let labels = actions::parse_labels(&sent.labels);
    let custom_fields = config
        .custom_fields
        .iter()
        .filter_map(|c| {
            let now = sent.custom(&c.name);
            let mut was = orig(&c.name);
            if c.kind == FieldType::Boolean && was.is_empty() {
                was = "false".into();
            }
            (now.trim() != was).then(|| (c.name.clone(), now))
        })
        .collect();
    TicketPatch {
        summary: changed("summary", &sent.summary).then(|| sent.summary.clone()),
        description: (digest(&sent.description) != orig("description"))
            .then(|| sent.description.clone()),
        status: changed("status", &sent.status).then(|| sent.status.trim().to_owned()),
        labels: (labels != actions::parse_labels(&orig("labels"))).then_some(labels),
        assigned_to: changed("assigned_to", &sent.assigned_to).then(|| optional(&sent.assigned_to)),
        milestone: changed("milestone", &sent.milestone).then(|| optional(&sent.milestone)),
        private: (sent.private != (orig("private") == "true")).then_some(sent.private),
        custom_fields,
        base_version: Some(base),
    }
}

fn patch_is_empty(p: &TicketPatch) -> bool {
    p.summary.is_none()
        && p.description.is_none()
        && p.status.is_none()
        && p.labels.is_none()
        && p.assigned_to.is_none()
        && p.milestone.is_none()
        && p.private.is_none()
        && p.custom_fields.is_empty()
}

fn edit_view(
    config: &TrackerConfig,
    v: &Values,
    orig: Vec<(String, String)>,
    base: i64,
    errors: FieldErrors,
) -> EditView {
    let fields = field_inputs(config, |name| v.custom(name), &errors);
    let other = other_errors(&errors, &known_fields(config, EDIT_FIELDS));
    let form = FormState::new(&[
        ("summary", &v.summary),
        ("description", &v.description),
        ("status", &v.status),
        ("labels", &v.labels),
        ("assigned_to", &v.assigned_to),
        ("milestone", &v.milestone),
        ("private", if v.private { "on" } else { "" }),
        ("base_version", &base.to_string()),
    ])
    .with_errors(errors);
    EditView {
        form,
        orig,
        statuses: statuses(config),
        milestones: milestone_names(config),
        fields,
        other_errors: other,
    }
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "(none)".into()
    } else {
        s.to_owned()
    }
}

fn field_label(config: &TrackerConfig, field: &str) -> String {
    match config.field(field) {
        Some(f) if field.starts_with('_') => f.label.clone(),
        _ => field.replace('_', " "),
    }
}

/// "Linked from": what links here, as the viewer may see it.
async fn backlinks<P>(forge: &Forge, t: &ToolReq<P>, k: &Ticket) -> Result<Vec<LinkRow>, Error> {
    Ok(actions::backlinks(forge, t.viewer(), &t.ctx, &t.tool, k)
        .await?
        .into_iter()
        .map(|l| LinkRow {
            title: l.from_title,
            url: l.from_url,
        })
        .collect())
}

async fn watch_buttons<P>(
    forge: &Forge,
    t: &ToolReq<P>,
    k: &Ticket,
    url: &str,
) -> Result<Vec<WatchButton>, Error> {
    if t.viewer().user.is_none() {
        return Ok(Vec::new());
    }
    let action = format!("{}_watch", t.ctx.project.url());
    let on_ticket = notify::is_watching(
        forge,
        t.viewer(),
        &t.ctx,
        Target::Artifact {
            tool: &t.tool,
            key: k.key(),
            title: String::new(),
        },
    )
    .await?;
    let on_tracker = notify::is_watching(forge, t.viewer(), &t.ctx, Target::Tool(&t.tool)).await?;
    let button = |artifact: String, watching, label: &str| WatchButton {
        action: action.clone(),
        tool: t.tool.mount.clone(),
        artifact,
        watching,
        label: label.to_owned(),
        next: url.to_owned(),
    };
    Ok(vec![
        button(k.key(), on_ticket, "ticket"),
        button(String::new(), on_tracker, "tracker"),
    ])
}

/// The comments: the shared discussion section of the ticket's thread (its order and page
/// read from the page's query string).
async fn comments_section<P>(
    st: &AppState,
    t: &ToolReq<P>,
    k: &Ticket,
    query: &Fields,
) -> Result<String, Error> {
    let optional = |name: &str| Some(query.get(name).to_owned()).filter(|v| !v.is_empty());
    let section_query = SectionQuery {
        posts: optional("posts"),
        posts_page: optional("posts_page"),
        post: optional("post"),
        quote: optional("quote"),
    };
    let r = actions::thread_ref(&t.ctx, &t.tool, k);
    crate::discussion::section(st, t, &r, &section_query).await
}

async fn render_ticket<P>(
    st: &AppState,
    t: &ToolReq<P>,
    k: Ticket,
    page: TicketPage,
    status: StatusCode,
) -> PageResult {
    let forge = &st.forge;
    let config = TrackerConfig::of(&t.tool);
    let url = actions::ticket_url(&t.ctx, &t.tool, k.ticket_num);
    let (resolved, _) = xref::resolve(forge, &t.ctx, &t.tool, &k.description, false).await?;
    let description_html = markdown::render_async(k.description.clone(), resolved).await?;
    let backlinks = backlinks(forge, t, &k).await?;
    let history = tickets::history(forge.db(), k.id)
        .await?
        .into_iter()
        .map(|c| HistoryEntry {
            anchor: format!("change-{}", c.version),
            author: if c.author.is_empty() {
                "(anonymous)".into()
            } else {
                c.author.clone()
            },
            when: date(c.when),
            changes: c
                .changes
                .iter()
                .map(|f| FieldChangeRow {
                    field: field_label(&config, &f.field),
                    old: or_none(&f.old),
                    new: or_none(&f.new),
                    edited_only: f.field == "description",
                })
                .collect(),
            note_html: if c.note.is_empty() {
                String::new()
            } else {
                markdown::render(&c.note)
            },
        })
        .collect();
    let my_vote = match t.viewer().username() {
        Some(me) => tickets::vote_of(forge.db(), k.id, me).await?,
        None => 0,
    };
    let watches = watch_buttons(forge, t, &k, &url).await?;
    let discussion_html = comments_section(st, t, &k, &page.query).await?;
    let edit = match page.edit {
        Some(e) => Some(e),
        None if t.can(tperm::UPDATE) => {
            let v = Values::of_ticket(&config, &k);
            Some(edit_view(
                &config,
                &v,
                v.orig_inputs(),
                k.version,
                FieldErrors::new(),
            ))
        }
        None => None,
    };
    let fields = config
        .custom_fields
        .iter()
        .map(|f| {
            (
                f.label.clone(),
                field_text(f.kind, k.custom_fields.get(&f.name)),
            )
        })
        .collect();
    let attachments = k
        .imported_attachments
        .iter()
        .map(|a| ImportedRow {
            filename: a.filename.clone(),
            url: (a.url.starts_with("https://") || a.url.starts_with("http://"))
                .then(|| a.url.clone()),
            size: human_size(u64::try_from(a.bytes).unwrap_or(0)),
        })
        .collect();
    let files = actions::attachments(forge, &k)
        .await?
        .into_iter()
        .map(|a| super::views::FileRow {
            url: format!(
                "{url}attachments/{}",
                forge_tools::tool::xref::encode_segment(&a.filename)
            ),
            size: human_size(u64::try_from(a.size).unwrap_or(0)),
            is_image: a.is_image(),
            filename: a.filename,
        })
        .collect();
    let can_attach = actions::may_attach(t.viewer(), &t.ctx, &t.tool, &k);
    let tpl = TicketTpl {
        page: t.shell(forge, &format!("#{} {}", k.ticket_num, k.summary)),
        nav: nav(t, &config),
        num: k.ticket_num,
        summary: k.summary.clone(),
        closed: config.is_closed(&k.status),
        status: k.status.clone(),
        labels: k
            .labels
            .iter()
            .map(|l| (l.clone(), filtered_url(&t.base, "label", l)))
            .collect(),
        assigned_to: k.assigned_to.clone().unwrap_or_default(),
        reported_by: if k.reported_by.is_empty() {
            "(anonymous)".into()
        } else {
            k.reported_by.clone()
        },
        milestone: k
            .milestone
            .as_ref()
            .map(|m| (m.clone(), filtered_url(&t.base, "milestone", m))),
        private: k.private,
        pending: k.moderation == tickets::PENDING,
        created: date(k.created),
        modified: date(k.modified),
        version: k.version,
        votes_up: k.votes_up,
        votes_down: k.votes_down,
        my_vote,
        can_vote: t.viewer().user.is_some(),
        fields,
        description_html,
        backlinks,
        attachments,
        files,
        can_attach,
        max_upload: human_size(forge.attachments().max_bytes),
        history,
        discussion_html,
        edit,
        conflict: page.conflict,
        watches,
        can_delete: t.can(tperm::DELETE),
        can_moderate: t.can(forge_tools::acl::perm::MODERATE),
        moderate_url: format!("{}{PENDING_PATH}", t.base),
        url,
    };
    Ok(render_status(status, &tpl))
}

/// `POST /{num}/edit`: saves what the editor changed; a conflict or a refused value shows the
/// page again with everything they typed.
pub async fn edit(
    State(st): State<AppState>,
    t: ToolReq<Update>,
    Path(num): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let num = num_of(&num)?;
    let f = Fields(pairs);
    let config = TrackerConfig::of(&t.tool);
    let base: i64 = parse_num("base_version", f.get("base_version"))?;
    let url = actions::ticket_url(&t.ctx, &t.tool, num);
    let patch = patch_of(&config, &f, base);
    if patch_is_empty(&patch) {
        return Ok(redirect_with_flash(&st, &url, "Nothing changed."));
    }
    let forge = &st.forge;
    match actions::update(forge, t.viewer(), &t.ctx, &t.tool, num, patch).await {
        Ok(k) => Ok(redirect_with_flash(
            &st,
            &format!("{url}#change-{}", k.version),
            &format!("Saved ticket #{num}."),
        )),
        Err(Error::Conflict { message, .. }) => {
            // Nothing is lost: the form keeps what they changed (and the current value of what
            // they did not), and now starts from the current ticket, so saving it again
            // applies their changes.
            let current = actions::get(forge, t.viewer(), &t.ctx, &t.tool, num)
                .await
                .map_err(|e| t.page_error(e))?;
            let orig = Values::of_ticket(&config, &current).orig_inputs();
            let view = edit_view(
                &config,
                &Values::merged(&config, &f, &current),
                orig,
                current.version,
                FieldErrors::new(),
            );
            let page = TicketPage {
                edit: Some(view),
                conflict: Some(format!(
                    "Not saved: {message}. Your values are kept in the form below; the ticket above shows what is saved now. Save again to apply yours."
                )),
                query: Fields::default(),
            };
            render_ticket(&st, &t, current, page, StatusCode::CONFLICT).await
        }
        Err(Error::Invalid(errs)) => {
            let current = actions::get(forge, t.viewer(), &t.ctx, &t.tool, num)
                .await
                .map_err(|e| t.page_error(e))?;
            let orig =
                f.0.iter()
                    .filter(|(k, _)| k.starts_with("orig_"))
                    .cloned()
                    .collect();
            let view = edit_view(&config, &Values::sent(&config, &f), orig, base, errs);
            let page = TicketPage {
                edit: Some(view),
                conflict: Some("Not saved: see the messages by the fields below.".into()),
                query: Fields::default(),
            };
            render_ticket(&st, &t, current, page, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(t.page_error(e)),
    }
}

/// `POST /{num}/vote`: `value` 1 (up), -1 (down) or 0 (withdraw).
pub async fn vote(
    State(st): State<AppState>,
    t: ToolReq,
    Path(num): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let num = num_of(&num)?;
    let f = Fields(pairs);
    let value: i32 = parse_num("value", f.get("value"))?;
    let url = actions::ticket_url(&t.ctx, &t.tool, num);
    let (up, down) = actions::vote(&st.forge, t.viewer(), &t.ctx, &t.tool, num, value)
        .await
        .map_err(|e| PageError::from(e).with_next(&url))?;
    let message = if value == 0 {
        format!("Vote withdrawn: {up} up, {down} down.")
    } else {
        format!("Vote recorded: {up} up, {down} down.")
    };
    Ok(redirect_with_flash(&st, &url, &message))
}

/// `POST /{num}/delete`.
pub async fn delete(
    State(st): State<AppState>,
    t: ToolReq<Delete>,
    Path(num): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let num = num_of(&num)?;
    actions::delete(&st.forge, t.viewer(), &t.ctx, &t.tool, num)
        .await
        .map_err(|e| t.page_error(e))?;
    Ok(redirect_with_flash(
        &st,
        &t.base,
        &format!("Deleted ticket #{num}."),
    ))
}

/// `POST /{num}/move`: to the tracker at `mount` of the project `project` (same
/// neighborhood).
pub async fn move_ticket(
    State(st): State<AppState>,
    t: ToolReq<Delete>,
    Path(num): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let num = num_of(&num)?;
    let f = Fields(pairs);
    let forge = &st.forge;
    let url = actions::ticket_url(&t.ctx, &t.tool, num);
    let refuse = |why: String| Ok(redirect_with_flash(&st, &url, &format!("Not moved: {why}")));
    let (project, mount) = (f.get("project").trim(), f.get("mount").trim());
    if project.is_empty() || mount.is_empty() {
        return refuse("name the project and the mount point of its tracker.".into());
    }
    let to_ctx = match forge
        .load_project(t.viewer(), t.ctx.project.neighborhood, project)
        .await
    {
        Ok(c) => c,
        Err(Error::NotFound(_)) => return refuse(format!("there is no project “{project}”.")),
        Err(e) => return Err(t.page_error(e)),
    };
    let Some(to_tool) = to_ctx.tool(mount).cloned() else {
        return refuse(format!("project “{project}” has no tool at “{mount}”."));
    };
    match actions::move_ticket(forge, t.viewer(), &t.ctx, &t.tool, num, &to_ctx, &to_tool).await {
        Ok(k) => Ok(redirect_with_flash(
            &st,
            &actions::ticket_url(&to_ctx, &to_tool, k.ticket_num),
            &format!(
                "Moved here from {}{}/{num}.",
                t.ctx.project.shortname, t.tool.mount
            ),
        )),
        Err(Error::Invalid(errs)) => refuse(
            errs.0
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(Error::Forbidden) => {
            refuse("you may only move tickets to trackers you administer.".into())
        }
        Err(e) => Err(t.page_error(e)),
    }
}

/// `POST /{num}/approve`: a ticket waiting for a moderator goes live.
pub async fn approve(
    State(st): State<AppState>,
    t: ToolReq<Moderate>,
    Path(num): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let num = num_of(&num)?;
    let f = Fields(pairs);
    let url = actions::ticket_url(&t.ctx, &t.tool, num);
    let next = match f.get("next") {
        "" => url,
        n => safe_next(&t.base, n),
    };
    actions::approve(&st.forge, t.viewer(), &t.ctx, &t.tool, num)
        .await
        .map_err(|e| t.page_error(e))?;
    Ok(redirect_with_flash(
        &st,
        &next,
        &format!("Approved ticket #{num}."),
    ))
}
