//! What people do with tickets, each action checking the viewer's permission first: read one
//! (private and pending tickets only for those who may see them), list and filter, file,
//! change fields (merging concurrent edits field by field), comment, vote, bulk-edit, move,
//! delete, approve. Changes are recorded as history, logged as events, indexed for search and
//! told to watchers.
//!
//! Events: `tracker.ticket.open` (filed, or approved by a moderator), `tracker.ticket.close`
//! and `tracker.ticket.reopen` (the status moved from an open to a closed one or back; such an
//! edit logs only that, with the fields it changed), `tracker.ticket.change` (any other edit),
//! `tracker.ticket.comment` (besides the discussion's own `discussion.post`),
//! `tracker.ticket.delete`, `tracker.ticket.move`, `tracker.ticket.attachment`.

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};

use super::config::{TrackerConfig, value_text};
use super::perm as tperm;
use super::query;
use super::tickets::{self, Change, FieldChange, Ticket};
use crate::acl::perm;
use crate::attachments::Attachment;
use crate::discussion::{self, NewPost, Post, ThreadRef};
use crate::error::{Error, FieldErrors, Result};
use crate::paging::Paging;
use crate::project_ctx::ProjectCtx;
use crate::tool::{Forge, ToolInstance};
use crate::viewer::Viewer;

/// Tickets an account may file per hour (those who may update tickets are not limited).
pub const TICKETS_PER_HOUR: u32 = 60;
pub const MAX_SUMMARY: usize = 200;
pub const MAX_LABELS: usize = 20;
pub const MAX_LABEL: usize = 50;
/// Tickets one bulk edit may change.
pub const MAX_BULK: usize = 500;

pub fn ticket_url(ctx: &ProjectCtx, tool: &ToolInstance, num: i64) -> String {
    format!("{}{}/{num}/", ctx.project.url(), tool.mount)
}

/// Whether the viewer may see private tickets they neither reported nor are assigned.
pub fn sees_private(ctx: &ProjectCtx, tool: &ToolInstance) -> bool {
    ctx.can_tool(tool, tperm::UPDATE)
}

fn is_me(viewer: &Viewer, name: &str) -> bool {
    !name.is_empty() && viewer.username() == Some(name)
}

/// Whether the viewer may see this ticket.
pub fn visible(t: &Ticket, viewer: &Viewer, ctx: &ProjectCtx, tool: &ToolInstance) -> bool {
    let mine = is_me(viewer, &t.reported_by);
    let assigned = t.assigned_to.as_deref().is_some_and(|a| is_me(viewer, a));
    !t.deleted
        && ctx.can_tool(tool, perm::READ)
        && (t.moderation == tickets::LIVE || mine || ctx.can_tool(tool, perm::MODERATE))
        && (!t.private || mine || assigned || sees_private(ctx, tool))
}

/// The filter selecting the tickets of `tool` the viewer may see.
pub fn visibility_filter(viewer: &Viewer, ctx: &ProjectCtx, tool: &ToolInstance) -> Document {
    let mut and: Vec<Document> = vec![doc! {"tool_id": tool.id, "deleted": false}];
    let me = viewer.username();
    if !ctx.can_tool(tool, perm::MODERATE) {
        match me {
            Some(me) => {
                and.push(doc! {"$or": [{"moderation": tickets::LIVE}, {"reported_by": me}]})
            }
            None => and.push(doc! {"moderation": tickets::LIVE}),
        }
    }
    if !sees_private(ctx, tool) {
        match me {
            Some(me) => and
                .push(doc! {"$or": [{"private": false}, {"reported_by": me}, {"assigned_to": me}]}),
            None => and.push(doc! {"private": false}),
        }
    }
    doc! {"$and": and}
}

/// A ticket number found: the ticket, or where it moved.
pub enum Lookup {
    Found(Box<Ticket>),
    Moved(String),
}

/// The ticket numbered `num` as the viewer may see it.
pub async fn lookup(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    num: i64,
) -> Result<Lookup> {
    ctx.authorize_tool(tool, perm::READ)?;
    match tickets::by_num(forge.db(), tool.id, num).await? {
        Some(t) if visible(&t, viewer, ctx, tool) => Ok(Lookup::Found(Box::new(t))),
        Some(_) => Err(Error::NotFound("ticket")),
        None => match tickets::moved_to(forge.db(), tool.id, num).await? {
            Some(url) => Ok(Lookup::Moved(url)),
            None => Err(Error::NotFound("ticket")),
        },
    }
}

/// The ticket numbered `num` (moved ones are not found).
pub async fn get(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    num: i64,
) -> Result<Ticket> {
    match lookup(forge, viewer, ctx, tool, num).await? {
        Lookup::Found(t) => Ok(*t),
        Lookup::Moved(_) => Err(Error::NotFound("ticket")),
    }
}

/// A ticket as filed (form or REST). Custom fields by name, as text.
#[derive(Debug, Clone, Default)]
pub struct NewTicket {
    pub summary: String,
    pub description: String,
    pub status: Option<String>,
    pub labels: Vec<String>,
    pub assigned_to: Option<String>,
    pub milestone: Option<String>,
    pub private: bool,
    pub custom_fields: Vec<(String, String)>,
    pub honeypot: Option<String>,
}

/// Labels from a comma-separated list.
pub fn parse_labels(input: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in input.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        if !out.iter().any(|o| o == l) {
            out.push(l.to_owned());
        }
    }
    out
}

pub(super) fn check_labels(labels: &[String], errors: &mut FieldErrors) {
    if labels.len() > MAX_LABELS {
        errors.add("labels", format!("At most {MAX_LABELS} labels"));
    }
    if labels
        .iter()
        .any(|l| l.trim().is_empty() || l.chars().count() > MAX_LABEL || l.contains([',', '\n']))
    {
        errors.add(
            "labels",
            format!("Labels are 1 to {MAX_LABEL} characters, without commas"),
        );
    }
}

fn check_summary(summary: &str, errors: &mut FieldErrors) {
    let n = summary.trim().chars().count();
    if n == 0 {
        errors.add("summary", "A ticket needs a summary");
    } else if n > MAX_SUMMARY || summary.contains(['\n', '\r']) {
        errors.add(
            "summary",
            format!("The summary is one line of at most {MAX_SUMMARY} characters"),
        );
    }
}

fn check_description(forge: &Forge, text: &str, errors: &mut FieldErrors) {
    let max = forge.config().max_text_bytes;
    if text.len() as u64 > max {
        errors.add(
            "description",
            format!(
                "The description is too long ({} at most)",
                crate::attachments::human_size(max)
            ),
        );
    }
}

async fn check_user(
    forge: &Forge,
    field: &str,
    name: &str,
    errors: &mut FieldErrors,
) -> Result<()> {
    if crate::users::by_username(forge.db(), name).await?.is_none() {
        errors.add(
            field,
            format!("No user \"{}\"", crate::markdown::escape(name)),
        );
    }
    Ok(())
}

/// Parses custom field values given as text; fields not given get their default (for a new
/// ticket) or stay as they are (an edit).
fn custom_values(
    config: &TrackerConfig,
    given: &[(String, String)],
    start: &Document,
    fill_defaults: bool,
    errors: &mut FieldErrors,
) -> Document {
    let mut out = start.clone();
    for (name, text) in given {
        match config.field(name) {
            Some(f) => match config.parse_value(f, text) {
                Ok(v) => {
                    out.insert(f.name.clone(), v);
                }
                Err(m) => errors.add(&f.name, m),
            },
            None => errors.add(
                "custom_fields",
                format!("No custom field \"{}\"", crate::markdown::escape(name)),
            ),
        }
    }
    if fill_defaults {
        for f in &config.custom_fields {
            if !out.contains_key(&f.name) {
                match config.parse_value(f, &f.default) {
                    Ok(v) => {
                        out.insert(f.name.clone(), v);
                    }
                    Err(m) => errors.add(&f.name, m),
                }
            }
        }
    }
    out
}

use crate::activity::{Activity, Restricted};
use crate::tool::{record_activity as activity, record_event as event};

/// Files a ticket. Anonymous visitors may when the tracker allows it; their tickets wait for
/// a moderator.
pub async fn create(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    new: NewTicket,
) -> Result<Ticket> {
    let config = TrackerConfig::of(tool);
    let anonymous_ok =
        viewer.user.is_none() && config.anonymous_tickets && ctx.can_tool(tool, perm::READ);
    if !anonymous_ok {
        ctx.authorize_tool(tool, tperm::CREATE)?;
    }
    if new
        .honeypot
        .as_deref()
        .is_some_and(|h| !h.trim().is_empty())
    {
        event(
            forge,
            "discussion.spam.honeypot",
            viewer,
            ctx,
            tool,
            doc! {},
        );
        return Err(Error::invalid(
            "summary",
            "This ticket was refused as automated. If you are a person, leave the \"website\" field empty.",
        ));
    }
    let updater = ctx.can_tool(tool, tperm::UPDATE);
    let mut errors = FieldErrors::new();
    check_summary(&new.summary, &mut errors);
    check_description(forge, &new.description, &mut errors);
    check_labels(&new.labels, &mut errors);
    let status = match new.status.as_deref().filter(|s| !s.is_empty()) {
        // Only those who may update tickets choose a status other than the first.
        Some(s) if updater => {
            if !config.has_status(s) {
                errors.add(
                    "status",
                    format!("Unknown status \"{}\"", crate::markdown::escape(s)),
                );
            }
            s.to_owned()
        }
        _ => config.initial_status().to_owned(),
    };
    let assigned_to = new.assigned_to.filter(|a| !a.trim().is_empty());
    if let Some(a) = &assigned_to {
        check_user(forge, "assigned_to", a, &mut errors).await?;
    }
    let milestone = new.milestone.filter(|m| !m.trim().is_empty());
    if let Some(m) = &milestone
        && config.milestone(m).is_none()
    {
        errors.add(
            "milestone",
            format!("No milestone \"{}\"", crate::markdown::escape(m)),
        );
    }
    let custom = custom_values(
        &config,
        &new.custom_fields,
        &Document::new(),
        true,
        &mut errors,
    );
    errors.into_result()?;
    if !updater {
        match &viewer.user {
            Some(u) => crate::ratelimit::hit(forge.db(), "ticket", u.id, TICKETS_PER_HOUR).await?,
            None => {
                if let Some(ip) = &viewer.ip {
                    crate::ratelimit::hit_key(forge.db(), "ticket-ip", ip, TICKETS_PER_HOUR)
                        .await?;
                }
            }
        }
    }
    let num = tickets::next_number(forge.db(), tool.id).await?;
    let now = DateTime::now();
    let moderated = viewer.user.is_none()
        || !ctx.can_tool(tool, discussion::perm::UNMODERATED_POST)
            && !ctx.can_tool(tool, tperm::UPDATE);
    let ticket = Ticket {
        id: ObjectId::new(),
        tool_id: tool.id,
        ticket_num: num,
        summary: new.summary.trim().to_owned(),
        description: new.description,
        status,
        labels: new.labels,
        assigned_to,
        reported_by: viewer.username().unwrap_or_default().to_owned(),
        milestone,
        private: new.private,
        votes_up: 0,
        votes_down: 0,
        votes: 0,
        custom_fields: custom,
        created: now,
        modified: now,
        version: 1,
        moderation: if moderated {
            tickets::PENDING
        } else {
            tickets::LIVE
        }
        .to_owned(),
        deleted: false,
        comments_text: String::new(),
        imported_attachments: Vec::new(),
    };
    tickets::insert(forge.db(), &ticket).await?;
    if ticket.moderation == tickets::LIVE {
        went_live(forge, viewer, ctx, tool, &ticket).await?;
    } else {
        event(
            forge,
            "tracker.ticket.held",
            viewer,
            ctx,
            tool,
            doc! {"ticket": num},
        );
    }
    Ok(ticket)
}

/// Follow-up of a ticket becoming visible: event, watchers, backlinks, index, mail.
async fn went_live(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    t: &Ticket,
) -> Result<()> {
    let a = ticket_activity(ctx, tool, t).summary_markdown(&t.description);
    let extra = doc! {"ticket": t.ticket_num, "private": t.private};
    activity(forge, "tracker.ticket.open", viewer, ctx, tool, a, extra);
    let title = title_of(t);
    for who in [Some(t.reported_by.as_str()), t.assigned_to.as_deref()]
        .into_iter()
        .flatten()
    {
        auto_watch(forge, ctx, tool, t, &title, who).await?;
    }
    refresh_links(forge, ctx, tool, t).await?;
    changed(
        forge,
        viewer,
        ctx,
        tool,
        t,
        "created",
        &t.summary,
        Vec::new(),
    )
    .await
}

/// A ticket's activity: number, summary and address, restricted as the ticket is.
fn ticket_activity(ctx: &ProjectCtx, tool: &ToolInstance, t: &Ticket) -> Activity {
    Activity::new(
        format!("ticket #{}: {}", t.ticket_num, t.summary),
        ticket_url(ctx, tool, t.ticket_num),
    )
    .restricted(restriction(t))
}

/// Who may see a private ticket's activity (as its search document: those who see private
/// tickets, its reporter and its assignee); `None` for a public ticket.
pub fn restriction(t: &Ticket) -> Option<Restricted> {
    t.private.then(|| Restricted {
        permission: tperm::UPDATE.to_owned(),
        users: [Some(t.reported_by.as_str()), t.assigned_to.as_deref()]
            .into_iter()
            .flatten()
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Keeps a ticket's past activity (its events and comments) as visible as the ticket now is.
async fn restrict_history(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    t: &Ticket,
) -> Result<()> {
    let filter = doc! {
        "context.neighborhood": ctx.project.neighborhood.prefix(),
        "context.project": &ctx.project.shortname,
        "context.tool": &tool.mount,
        "$or": [{"extra.ticket": t.ticket_num}, {"extra.artifact": t.key()}],
    };
    crate::activity::set_restricted(forge.db(), filter, restriction(t).as_ref()).await
}

pub fn title_of(t: &Ticket) -> String {
    format!("ticket #{} {}", t.ticket_num, t.summary)
}

async fn auto_watch(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    t: &Ticket,
    title: &str,
    username: &str,
) -> Result<()> {
    if username.is_empty() {
        return Ok(());
    }
    let Some(user) = crate::users::by_username(forge.db(), username).await? else {
        return Ok(());
    };
    let as_them = Viewer {
        user: Some(user),
        ip: None,
    };
    crate::notify::watch(
        forge,
        &as_them,
        ctx,
        crate::notify::Target::Artifact {
            tool,
            key: t.key(),
            title: title.to_owned(),
        },
    )
    .await
}

async fn refresh_links(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    t: &Ticket,
) -> Result<()> {
    let (_, keys) = crate::tool::xref::resolve(forge, ctx, tool, &t.description, false).await?;
    crate::links::replace(
        forge.db(),
        &t.key(),
        &format!("#{} {}", t.ticket_num, t.summary),
        &ticket_url(ctx, tool, t.ticket_num),
        &keys,
    )
    .await
}

fn readers_of(t: &Ticket) -> Option<crate::notify::Readers> {
    t.private.then(|| crate::notify::Readers {
        permission: tperm::UPDATE.to_owned(),
        usernames: [Some(t.reported_by.clone()), t.assigned_to.clone()]
            .into_iter()
            .flatten()
            .filter(|u| !u.is_empty())
            .collect(),
    })
}

/// The search index and watchers' mail after any change.
#[allow(clippy::too_many_arguments)]
async fn changed(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    t: &Ticket,
    action: &str,
    comment: &str,
    also: Vec<String>,
) -> Result<()> {
    crate::search::indexer::queue_artifacts(forge, &ctx.project, tool, vec![t.key()]).await?;
    let mut change = crate::notify::change(
        viewer,
        ctx,
        tool,
        &t.key(),
        &title_of(t),
        &ticket_url(ctx, tool, t.ticket_num),
        action,
        comment,
    );
    change.also = also;
    change.readers = readers_of(t);
    crate::notify::queue(forge, change).await
}

/// Changes to a ticket's fields, as submitted: `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct TicketPatch {
    pub summary: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub labels: Option<Vec<String>>,
    /// `Some(None)` unassigns.
    pub assigned_to: Option<Option<String>>,
    pub milestone: Option<Option<String>>,
    pub private: Option<bool>,
    pub custom_fields: Vec<(String, String)>,
    /// The version the editor started from; a field changed since then by someone else and
    /// changed here too is a conflict.
    pub base_version: Option<i64>,
}

fn opt_text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// Applies a patch to a copy of `t`, validating it; the field changes it makes.
async fn apply(
    forge: &Forge,
    config: &TrackerConfig,
    t: &Ticket,
    p: &TicketPatch,
) -> Result<(Ticket, Vec<FieldChange>)> {
    let mut errors = FieldErrors::new();
    let mut n = t.clone();
    let mut out: Vec<FieldChange> = Vec::new();
    let mut note = |field: &str, old: String, new: String| {
        if old != new {
            out.push(FieldChange {
                field: field.to_owned(),
                old,
                new,
            });
        }
    };
    if let Some(s) = &p.summary {
        check_summary(s, &mut errors);
        n.summary = s.trim().to_owned();
        note("summary", t.summary.clone(), n.summary.clone());
    }
    if let Some(d) = &p.description {
        check_description(forge, d, &mut errors);
        n.description = d.clone();
        if t.description != *d {
            // The history says the description changed; the texts are in the versions.
            note("description", String::new(), "(edited)".into());
        }
    }
    if let Some(s) = &p.status {
        if !config.has_status(s) {
            errors.add(
                "status",
                format!("Unknown status \"{}\"", crate::markdown::escape(s)),
            );
        }
        n.status = s.clone();
        note("status", t.status.clone(), n.status.clone());
    }
    if let Some(l) = &p.labels {
        check_labels(l, &mut errors);
        n.labels = l.clone();
        note("labels", t.labels.join(", "), n.labels.join(", "));
    }
    if let Some(a) = &p.assigned_to {
        let a = a.clone().filter(|a| !a.trim().is_empty());
        if let Some(name) = &a
            && t.assigned_to.as_ref() != Some(name)
        {
            check_user(forge, "assigned_to", name, &mut errors).await?;
        }
        n.assigned_to = a;
        note(
            "assigned_to",
            opt_text(&t.assigned_to),
            opt_text(&n.assigned_to),
        );
    }
    if let Some(m) = &p.milestone {
        let m = m.clone().filter(|m| !m.trim().is_empty());
        if let Some(name) = &m
            && config.milestone(name).is_none()
        {
            errors.add(
                "milestone",
                format!("No milestone \"{}\"", crate::markdown::escape(name)),
            );
        }
        n.milestone = m;
        note("milestone", opt_text(&t.milestone), opt_text(&n.milestone));
    }
    if let Some(private) = p.private {
        n.private = private;
        note("private", t.private.to_string(), private.to_string());
    }
    if !p.custom_fields.is_empty() {
        n.custom_fields = custom_values(
            config,
            &p.custom_fields,
            &t.custom_fields,
            false,
            &mut errors,
        );
        for f in &config.custom_fields {
            let old = t
                .custom_fields
                .get(&f.name)
                .map(value_text)
                .unwrap_or_default();
            let new = n
                .custom_fields
                .get(&f.name)
                .map(value_text)
                .unwrap_or_default();
            note(&f.name, old, new);
        }
    }
    errors.into_result()?;
    Ok((n, out))
}

/// Changes a ticket's fields. With `base_version`, changes made since by others to other
/// fields are kept (merged); a field both changed is a conflict naming it, and nothing is
/// written.
pub async fn update(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    num: i64,
    patch: TicketPatch,
) -> Result<Ticket> {
    ctx.authorize_tool(tool, tperm::UPDATE)?;
    let config = TrackerConfig::of(tool);
    // A lost race re-reads and re-merges; a handful of rounds is plenty.
    for _ in 0..8 {
        let current = get(forge, viewer, ctx, tool, num).await?;
        let (next, fields) = apply(forge, &config, &current, &patch).await?;
        if fields.is_empty() {
            return Ok(current);
        }
        if let Some(base) = patch.base_version
            && base < current.version
        {
            let since = tickets::changes_since(forge.db(), current.id, base).await?;
            let mut clash: Vec<String> = Vec::new();
            for c in since
                .iter()
                .flat_map(|c| c.changes.iter().map(move |f| (c, f)))
            {
                let (who, f) = c;
                if fields.iter().any(|mine| mine.field == f.field) && !clash.contains(&f.field) {
                    clash.push(f.field.clone());
                    let _ = who;
                }
            }
            if !clash.is_empty() {
                let by: Vec<&str> = since.iter().map(|c| c.author.as_str()).collect();
                return Err(Error::conflict(
                    "edit_conflict",
                    format!(
                        "{} changed since version {base} (by {}); reload the ticket and apply your change again",
                        clash.join(", "),
                        by.join(", ")
                    ),
                ));
            }
        }
        let mut next = next;
        next.version = current.version + 1;
        next.modified = DateTime::now();
        if !tickets::replace_if(forge.db(), &next, current.version).await? {
            continue;
        }
        record(
            forge,
            viewer,
            ctx,
            tool,
            &current,
            &next,
            fields,
            String::new(),
            Vec::new(),
        )
        .await?;
        return Ok(next);
    }
    Err(Error::Busy(
        "the ticket is being changed by others right now; try again".into(),
    ))
}

/// History, events, watchers and links after a saved change.
#[allow(clippy::too_many_arguments)]
async fn record(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    old: &Ticket,
    new: &Ticket,
    fields: Vec<FieldChange>,
    note: String,
    also: Vec<String>,
) -> Result<()> {
    let live =
        history_and_events(forge, viewer, ctx, tool, old, new, &fields, &note, false).await?;
    if !live {
        return Ok(());
    }
    if old.description != new.description || old.summary != new.summary {
        refresh_links(forge, ctx, tool, new).await?;
    }
    let mut comment = change_lines(&fields).join("\n");
    if !note.is_empty() {
        comment = format!("{comment}\n{note}");
    }
    changed(forge, viewer, ctx, tool, new, "changed", &comment, also).await
}

/// The history entry of a saved change and, for a live ticket, its events (closed,
/// reopened, changed) and the new owner's watch. Shared by single and bulk edits; returns
/// whether the ticket is live (pending tickets tell no one).
#[allow(clippy::too_many_arguments)]
async fn history_and_events(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    old: &Ticket,
    new: &Ticket,
    fields: &[FieldChange],
    note: &str,
    bulk: bool,
) -> Result<bool> {
    let config = TrackerConfig::of(tool);
    let c = Change {
        id: ObjectId::new(),
        ticket_id: new.id,
        tool_id: tool.id,
        author: viewer.username().unwrap_or_default().to_owned(),
        when: new.modified,
        version: new.version,
        changes: fields.to_vec(),
        note: note.to_owned(),
    };
    tickets::record_change(forge.db(), &c).await?;
    if new.moderation != tickets::LIVE {
        return Ok(false);
    }
    let was_open = config.is_open(&old.status);
    let is_open = config.is_open(&new.status);
    let status_event = match (was_open, is_open) {
        (true, false) => Some("tracker.ticket.close"),
        (false, true) => Some("tracker.ticket.reopen"),
        _ => None,
    };
    if old.private != new.private {
        restrict_history(forge, ctx, tool, new).await?;
    }
    // One event (and activity) per saved change: `tracker.ticket.close` or
    // `tracker.ticket.reopen` when the status moves between an open and a closed one, else
    // `tracker.ticket.change`. A close is not also a change: its event carries the fields the
    // same edit changed (status and any others), so nothing is counted twice and nothing lost.
    let a = ticket_activity(ctx, tool, new).summary(&change_lines(fields).join("; "));
    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    let mut extra = doc! {"ticket": new.ticket_num, "fields": names, "bulk": bulk};
    let kind = match status_event {
        Some(kind) => {
            extra.insert("status", &new.status);
            kind
        }
        None => "tracker.ticket.change",
    };
    activity(forge, kind, viewer, ctx, tool, a, extra);
    if let Some(a) = &new.assigned_to
        && old.assigned_to.as_ref() != Some(a)
    {
        auto_watch(forge, ctx, tool, new, &title_of(new), a).await?;
    }
    Ok(true)
}

/// One line per changed field ("status: open → closed").
fn change_lines(fields: &[FieldChange]) -> Vec<String> {
    fields
        .iter()
        .map(|f| {
            if f.field == "description" {
                "description edited".to_owned()
            } else {
                format!("{}: {} → {}", f.field, or_none(&f.old), or_none(&f.new))
            }
        })
        .collect()
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "(none)" } else { s }
}

/// The discussion thread reference of a ticket.
pub fn thread_ref(ctx: &ProjectCtx, tool: &ToolInstance, t: &Ticket) -> ThreadRef {
    ThreadRef {
        artifact: t.key(),
        title: format!("ticket #{}", t.ticket_num),
        url: ticket_url(ctx, tool, t.ticket_num),
        also: Vec::new(),
    }
}

/// Comments on a ticket (its thread is created by the first comment that passes the checks).
pub async fn comment(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    num: i64,
    new: NewPost,
) -> Result<Post> {
    let t = get(forge, viewer, ctx, tool, num).await?;
    let (_, post) =
        discussion::post_to(forge, viewer, ctx, tool, &thread_ref(ctx, tool, &t), new).await?;
    if post.status == discussion::Status::Ok {
        event(
            forge,
            "tracker.ticket.comment",
            viewer,
            ctx,
            tool,
            doc! {"ticket": num},
        );
    }
    Ok(post)
}

/// A ticket's comments as the viewer may see them.
pub async fn comments(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    t: &Ticket,
    order: discussion::Order,
    paging: Option<Paging>,
) -> Result<Vec<Post>> {
    match discussion::existing_thread(forge, tool, &t.key()).await? {
        Some(thread) => discussion::posts(forge, viewer, ctx, tool, &thread, order, paging).await,
        None => Ok(Vec::new()),
    }
}

/// Votes on a ticket: 1 up, -1 down, 0 withdraws. One vote per account.
pub async fn vote(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    num: i64,
    vote: i32,
) -> Result<(i64, i64)> {
    let user = viewer.require_user()?;
    let t = get(forge, viewer, ctx, tool, num).await?;
    tickets::vote(forge.db(), t.id, &user.username, vote.signum()).await
}

/// A page of the tickets matching a query, as the viewer may see them, and the total.
pub async fn list(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    q: &str,
    sort: &str,
    paging: Paging,
) -> Result<(Vec<Ticket>, u64)> {
    ctx.authorize_tool(tool, perm::READ)?;
    let config = TrackerConfig::of(tool);
    let parsed = query::parse(q, &config, viewer.username())?;
    let sort = query::sort(
        if sort.is_empty() {
            "ticket_num desc"
        } else {
            sort
        },
        &config,
    )?;
    let filter = doc! {"$and": [visibility_filter(viewer, ctx, tool), parsed.filter()]};
    tickets::find(
        forge.db(),
        tool.id,
        filter,
        sort,
        paging.offset() as u64,
        paging.per_page as i64,
    )
    .await
}

/// How many tickets match a query, as the viewer may see them.
pub async fn count(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    q: &str,
) -> Result<u64> {
    let config = TrackerConfig::of(tool);
    let parsed = query::parse(q, &config, viewer.username())?;
    tickets::count(
        forge.db(),
        tool.id,
        doc! {"$and": [visibility_filter(viewer, ctx, tool), parsed.filter()]},
    )
    .await
}

/// A change to many tickets at once.
#[derive(Debug, Clone, Default)]
pub struct BulkEdit {
    pub status: Option<String>,
    pub milestone: Option<Option<String>>,
    pub assigned_to: Option<Option<String>>,
    pub labels_add: Vec<String>,
    pub labels_remove: Vec<String>,
    pub custom_fields: Vec<(String, String)>,
    pub private: Option<bool>,
}

/// Applies one change to the selected tickets: a history entry on each, one mail per
/// watcher for the lot. Returns how many tickets changed.
pub async fn bulk(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    nums: &[i64],
    edit: BulkEdit,
) -> Result<usize> {
    ctx.authorize_tool(tool, tperm::UPDATE)?;
    if nums.is_empty() {
        return Err(Error::invalid("tickets", "Select some tickets first"));
    }
    if nums.len() > MAX_BULK {
        return Err(Error::invalid(
            "tickets",
            format!("At most {MAX_BULK} tickets at a time"),
        ));
    }
    let config = TrackerConfig::of(tool);
    let found = tickets::by_nums(forge.db(), tool.id, nums).await?;
    let found: Vec<Ticket> = found
        .into_iter()
        .filter(|t| visible(t, viewer, ctx, tool))
        .collect();
    // Validate once against the first ticket, so a bad value fails before anything is written.
    let mut done: Vec<(Ticket, Ticket, Vec<FieldChange>)> = Vec::new();
    for t in &found {
        let mut labels = t.labels.clone();
        labels.retain(|l| !edit.labels_remove.contains(l));
        for l in &edit.labels_add {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
        let patch = TicketPatch {
            status: edit.status.clone(),
            milestone: edit.milestone.clone(),
            assigned_to: edit.assigned_to.clone(),
            labels: (labels != t.labels).then_some(labels),
            custom_fields: edit.custom_fields.clone(),
            private: edit.private,
            ..TicketPatch::default()
        };
        let (mut next, fields) = apply(forge, &config, t, &patch).await?;
        if fields.is_empty() {
            continue;
        }
        next.version = t.version + 1;
        next.modified = DateTime::now();
        done.push((t.clone(), next, fields));
    }
    let mut saved: Vec<(Ticket, Ticket, Vec<FieldChange>)> = Vec::new();
    for (old, next, fields) in done {
        // A ticket someone changed meanwhile is skipped rather than overwritten.
        if tickets::replace_if(forge.db(), &next, old.version).await? {
            saved.push((old, next, fields));
        }
    }
    let count = saved.len();
    if count == 0 {
        return Ok(0);
    }
    for (old, next, fields) in &saved {
        history_and_events(forge, viewer, ctx, tool, old, next, fields, "", true).await?;
    }
    let keys: Vec<String> = saved.iter().map(|(_, n, _)| n.key()).collect();
    crate::search::indexer::queue_artifacts(forge, &ctx.project, tool, keys.clone()).await?;
    // One mail per watcher for the whole edit: the tool's watchers and every ticket's.
    let list: Vec<String> = saved
        .iter()
        .map(|(_, n, _)| format!("#{} {}", n.ticket_num, n.summary))
        .collect();
    let fields: Vec<String> = saved[0].2.iter().map(|f| f.field.clone()).collect();
    let mut change = crate::notify::change(
        viewer,
        ctx,
        tool,
        "",
        &format!("{count} tickets"),
        &format!("{}{}/", ctx.project.url(), tool.mount),
        &format!("changed {}", fields.join(", ")),
        &list.join("\n"),
    );
    change.also = keys;
    // Private tickets among them: only those who see private tickets hear of the lot.
    if saved.iter().any(|(_, n, _)| n.private) {
        change.readers = Some(crate::notify::Readers {
            permission: tperm::UPDATE.to_owned(),
            usernames: Vec::new(),
        });
    }
    crate::notify::queue(forge, change).await?;
    Ok(count)
}

/// Deletes a ticket (it stays in the store, hidden).
pub async fn delete(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    num: i64,
) -> Result<()> {
    ctx.authorize_tool(tool, tperm::DELETE)?;
    let t = get(forge, viewer, ctx, tool, num).await?;
    let mut next = t.clone();
    next.deleted = true;
    next.version += 1;
    next.modified = DateTime::now();
    if !tickets::replace_if(forge.db(), &next, t.version).await? {
        return Err(Error::conflict(
            "edit_conflict",
            "The ticket changed meanwhile; try again",
        ));
    }
    let a = ticket_activity(ctx, tool, &t);
    activity(
        forge,
        "tracker.ticket.delete",
        viewer,
        ctx,
        tool,
        a,
        doc! {"ticket": num},
    );
    crate::links::remove_from(forge.db(), &t.key()).await?;
    crate::search::indexer::queue_artifacts(forge, &ctx.project, tool, vec![t.key()]).await
}

/// Approves a ticket waiting for a moderator.
pub async fn approve(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    num: i64,
) -> Result<Ticket> {
    ctx.authorize_tool(tool, perm::MODERATE)?;
    let t = get(forge, viewer, ctx, tool, num).await?;
    if t.moderation == tickets::LIVE {
        return Ok(t);
    }
    let mut next = t.clone();
    next.moderation = tickets::LIVE.to_owned();
    next.version += 1;
    if !tickets::replace_if(forge.db(), &next, t.version).await? {
        return Err(Error::conflict(
            "edit_conflict",
            "The ticket changed meanwhile; try again",
        ));
    }
    let reporter = Viewer {
        user: crate::users::by_username(forge.db(), &t.reported_by).await?,
        ip: None,
    };
    went_live(forge, &reporter, ctx, tool, &next).await?;
    Ok(next)
}

/// Tickets waiting for a moderator, newest first.
pub async fn pending(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    paging: Paging,
) -> Result<(Vec<Ticket>, u64)> {
    ctx.authorize_tool(tool, perm::MODERATE)?;
    tickets::find(
        forge.db(),
        tool.id,
        doc! {"tool_id": tool.id, "deleted": false, "moderation": tickets::PENDING},
        doc! {"ticket_num": -1},
        paging.offset() as u64,
        paging.per_page as i64,
    )
    .await
}

/// Moves a ticket to another tracker (of any project the mover administers): it gets the
/// next number there, keeps its history, comments and attachments, and the old address
/// redirects.
pub async fn move_ticket(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    num: i64,
    to_ctx: &ProjectCtx,
    to_tool: &ToolInstance,
) -> Result<Ticket> {
    ctx.authorize_tool(tool, tperm::DELETE)?;
    to_ctx.authorize_tool(to_tool, perm::ADMIN)?;
    if to_tool.kind != tool.kind || to_tool.id == tool.id {
        return Err(Error::invalid("tracker", "Choose another tracker"));
    }
    let t = get(forge, viewer, ctx, tool, num).await?;
    let to_config = TrackerConfig::of(to_tool);
    let new_num = tickets::next_number(forge.db(), to_tool.id).await?;
    let mut next = t.clone();
    next.tool_id = to_tool.id;
    next.ticket_num = new_num;
    next.version += 1;
    next.modified = DateTime::now();
    if !to_config.has_status(&next.status) {
        next.status = to_config.initial_status().to_owned();
    }
    if next
        .milestone
        .as_ref()
        .is_some_and(|m| to_config.milestone(m).is_none())
    {
        next.milestone = None;
    }
    next.custom_fields = next
        .custom_fields
        .iter()
        .filter(|(k, _)| to_config.field(k).is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !tickets::replace_if(forge.db(), &next, t.version).await? {
        return Err(Error::conflict(
            "edit_conflict",
            "The ticket changed meanwhile; try again",
        ));
    }
    let db = forge.db();
    db.collection::<Document>(tickets::CHANGES)
        .update_many(
            doc! {"ticket_id": t.id},
            doc! {"$set": {"tool_id": to_tool.id}},
        )
        .await?;
    db.collection::<Document>(discussion::THREADS)
        .update_many(
            doc! {"tool_id": tool.id, "artifact": t.key()},
            doc! {"$set": {"tool_id": to_tool.id, "project_id": to_ctx.project.id, "url": ticket_url(to_ctx, to_tool, new_num), "title": format!("ticket #{new_num}")}},
        )
        .await?;
    if let Some(thread) = discussion::existing_thread(forge, to_tool, &t.key()).await? {
        db.collection::<Document>(discussion::POSTS)
            .update_many(
                doc! {"thread_id": thread.id},
                doc! {"$set": {"tool_id": to_tool.id, "project_id": to_ctx.project.id}},
            )
            .await?;
    }
    db.collection::<Document>(crate::attachments::COLLECTION)
        .update_many(
            doc! {"tool_id": tool.id, "artifact_id": t.id},
            doc! {"$set": {"tool_id": to_tool.id}},
        )
        .await?;
    let to_url = ticket_url(to_ctx, to_tool, new_num);
    tickets::record_move(db, tool.id, num, &to_url).await?;
    let fields = vec![FieldChange {
        field: "moved".into(),
        old: format!("{}{}/{num}", ctx.project.shortname, tool.mount),
        new: format!("{}/{}/{new_num}", to_ctx.project.shortname, to_tool.mount),
    }];
    let a = Activity::new(format!("ticket #{num}: {}", t.summary), &to_url)
        .summary(&format!(
            "moved to {}/{}/{new_num}",
            to_ctx.project.shortname, to_tool.mount
        ))
        .restricted(restriction(&t));
    let extra = doc! {"ticket": num, "to": &to_url};
    activity(forge, "tracker.ticket.move", viewer, ctx, tool, a, extra);
    crate::search::indexer::queue_artifacts(forge, &ctx.project, tool, vec![t.key()]).await?;
    record(
        forge,
        viewer,
        to_ctx,
        to_tool,
        &t,
        &next,
        fields,
        String::new(),
        Vec::new(),
    )
    .await?;
    Ok(next)
}

/// Milestones with their progress: (milestone, closed tickets, all tickets).
pub async fn milestones(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
) -> Result<Vec<(super::config::Milestone, u64, u64)>> {
    ctx.authorize_tool(tool, perm::READ)?;
    let config = TrackerConfig::of(tool);
    let base = visibility_filter(viewer, ctx, tool);
    // One pass over the tracker's tickets: counts per (milestone, closed).
    let counts = tickets::milestone_counts(forge.db(), base, &config.closed_statuses).await?;
    let out = config
        .milestones
        .iter()
        .map(|m| {
            let of = |closed: bool| {
                counts
                    .iter()
                    .find(|(name, c, _)| *name == m.name && *c == closed)
                    .map_or(0, |(_, _, n)| *n)
            };
            (m.clone(), of(true), of(true) + of(false))
        })
        .collect();
    Ok(out)
}

/// Saves a tracker's settings (admins).
pub async fn save_config(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    config: &TrackerConfig,
) -> Result<()> {
    ctx.authorize_tool(tool, perm::ADMIN)?;
    config.validate()?;
    crate::tool::instance::set_option(
        forge.db(),
        tool.id,
        super::config::OPTION,
        config.to_bson()?,
    )
    .await
}

/// Closes the tickets commit messages say they fix (`fixes [#12]`, `closes #12`,
/// `resolves #12`), as the pusher, if they may update tickets. Told twice, the second time
/// finds the tickets closed and does nothing.
pub async fn close_from_commits(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    pusher: Option<&str>,
    commits: &[crate::tool::PushedCommit],
) -> Result<()> {
    let Some(pusher) = pusher else { return Ok(()) };
    let Some(user) = crate::users::by_username(forge.db(), pusher).await? else {
        return Ok(());
    };
    let subject = crate::acl::Subject {
        user: Some(user.id),
        site_admin: user.site_admin,
        role: ctx.project.role_of(user.id),
    };
    let as_pusher = ProjectCtx {
        project: ctx.project.clone(),
        tools: ctx.tools.clone(),
        subject,
    };
    if !as_pusher.can_tool(tool, tperm::UPDATE) {
        return Ok(());
    }
    let viewer = Viewer {
        user: Some(user),
        ip: None,
    };
    let config = TrackerConfig::of(tool);
    let first_tracker = ctx.tools.iter().find(|t| t.kind == tool.kind).map(|t| t.id);
    for c in commits.iter().take(1_000) {
        for (mount, num) in fixes(&c.message) {
            let mine = match &mount {
                Some(m) => *m == tool.mount,
                None => first_tracker == Some(tool.id),
            };
            if !mine {
                continue;
            }
            let Ok(t) = get(forge, &viewer, &as_pusher, tool, num).await else {
                continue;
            };
            if !config.is_open(&t.status) {
                continue;
            }
            let mut next = t.clone();
            next.status = config.closing_status().to_owned();
            next.version += 1;
            next.modified = DateTime::now();
            if !tickets::replace_if(forge.db(), &next, t.version).await? {
                continue;
            }
            let short: String = c.sha.chars().take(10).collect();
            let fields = vec![FieldChange {
                field: "status".into(),
                old: t.status.clone(),
                new: next.status.clone(),
            }];
            let note = format!("Closed by commit [{short}]({})", c.url);
            record(
                forge,
                &viewer,
                &as_pusher,
                tool,
                &t,
                &next,
                fields,
                note,
                Vec::new(),
            )
            .await?;
        }
    }
    Ok(())
}

/// The tickets a commit message says it fixes: `fixes #12`, `closes [#12]`,
/// `resolves [tickets:#12]`, also `fixed`/`closed`/`resolved`/`fix`/`close`/`resolve`.
pub fn fixes(message: &str) -> Vec<(Option<String>, i64)> {
    const VERBS: &[&str] = &[
        "fixes", "fixed", "fix", "closes", "closed", "close", "resolves", "resolved", "resolve",
    ];
    let mut out = Vec::new();
    let words: Vec<&str> = message.split_whitespace().take(10_000).collect();
    for pair in words.windows(2) {
        let verb = pair[0].trim_end_matches(':').to_ascii_lowercase();
        if !VERBS.contains(&verb.as_str()) {
            continue;
        }
        let target = pair[1].trim_end_matches([',', '.', ';', ')']);
        let inner = target
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(target);
        let (mount, num) = match inner.split_once(":#") {
            Some((m, n)) => (Some(m.to_owned()), n),
            None => (None, inner.strip_prefix('#').unwrap_or("")),
        };
        if let Ok(n) = num.parse::<i64>()
            && n > 0
        {
            out.push((mount, n));
        }
    }
    out
}

/// Saves a search: for the tracker (`shared`, needs `save_searches`) or for the viewer.
#[allow(clippy::too_many_arguments)]
pub async fn save_bin(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    name: &str,
    q: &str,
    sort: &str,
    shared: bool,
) -> Result<super::bins::Bin> {
    let user = viewer.require_user()?;
    ctx.authorize_tool(tool, perm::READ)?;
    if shared {
        ctx.authorize_tool(tool, tperm::SAVE_SEARCHES)?;
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(Error::invalid(
            "name",
            "A saved search needs a name of 1 to 80 characters",
        ));
    }
    // Checked now, so a saved search always runs.
    let config = TrackerConfig::of(tool);
    query::parse(q, &config, Some(&user.username)).map_err(|e| Error::invalid("q", e.0))?;
    if !sort.is_empty() {
        query::sort(sort, &config).map_err(|e| Error::invalid("sort", e.0))?;
    }
    let bin = super::bins::Bin {
        id: ObjectId::new(),
        tool_id: tool.id,
        owner: (!shared).then(|| user.username.clone()),
        name: name.to_owned(),
        q: q.to_owned(),
        sort: sort.to_owned(),
        created: DateTime::now(),
    };
    super::bins::insert(forge.db(), &bin).await?;
    Ok(bin)
}

/// The saved searches the viewer sees, each with its ticket count as they may see it.
pub async fn bins_with_counts(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
) -> Result<Vec<(super::bins::Bin, Option<u64>)>> {
    ctx.authorize_tool(tool, perm::READ)?;
    let mut out = Vec::new();
    for b in super::bins::list(forge.db(), tool.id, viewer.username()).await? {
        // A bin whose query no longer parses (a field was removed) shows without a count.
        let n = count(forge, viewer, ctx, tool, &b.q).await.ok();
        out.push((b, n));
    }
    Ok(out)
}

/// Deletes a saved search: one's own, or the tracker's with `save_searches`.
pub async fn delete_bin(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    id: ObjectId,
) -> Result<()> {
    let user = viewer.require_user()?;
    let bin = super::bins::get(forge.db(), tool.id, id)
        .await?
        .ok_or(Error::NotFound("saved search"))?;
    match &bin.owner {
        Some(o) if *o == user.username => {}
        Some(_) => return Err(Error::NotFound("saved search")),
        None => ctx.authorize_tool(tool, tperm::SAVE_SEARCHES)?,
    }
    super::bins::delete(forge.db(), id).await
}

/// The ticket a viewer may attach files to or remove them from: those who may update
/// tickets, and the ticket's reporter.
pub async fn for_attaching(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    num: i64,
) -> Result<Ticket> {
    let t = get(forge, viewer, ctx, tool, num).await?;
    if !may_attach(viewer, ctx, tool, &t) {
        return Err(if viewer.user.is_none() {
            Error::Unauthenticated
        } else {
            Error::Forbidden
        });
    }
    Ok(t)
}

/// Whether the viewer may attach files to (and remove them from) a ticket they see.
pub fn may_attach(viewer: &Viewer, ctx: &ProjectCtx, tool: &ToolInstance, t: &Ticket) -> bool {
    ctx.can_tool(tool, tperm::UPDATE) || is_me(viewer, &t.reported_by)
}

/// Records a file attached to (or removed from) a ticket in its history.
pub async fn attachment_changed(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    t: &Ticket,
    filename: &str,
    added: bool,
) -> Result<()> {
    let (old, new) = if added {
        (String::new(), filename.to_owned())
    } else {
        (filename.to_owned(), String::new())
    };
    let c = Change {
        id: ObjectId::new(),
        ticket_id: t.id,
        tool_id: tool.id,
        author: viewer.username().unwrap_or_default().to_owned(),
        when: DateTime::now(),
        version: t.version,
        changes: vec![FieldChange {
            field: "attachment".into(),
            old,
            new,
        }],
        note: String::new(),
    };
    tickets::record_change(forge.db(), &c).await?;
    event(
        forge,
        "tracker.ticket.attachment",
        viewer,
        ctx,
        tool,
        doc! {"ticket": t.ticket_num, "file": filename, "added": added},
    );
    Ok(())
}

/// The files attached to a ticket the viewer sees.
pub async fn attachments(forge: &Forge, t: &Ticket) -> Result<Vec<Attachment>> {
    forge.attachments().list(forge.db(), t.tool_id, t.id).await
}

async fn file_of(forge: &Forge, t: &Ticket, file: &str) -> Result<Attachment> {
    forge
        .attachments()
        .get(forge.db(), t.tool_id, t.id, file)
        .await?
        .ok_or(Error::NotFound("attachment"))
}

/// One file attached to ticket `num`, with the ticket, if the viewer may see it.
pub async fn attachment(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    num: i64,
    file: &str,
) -> Result<(Ticket, Attachment)> {
    let t = get(forge, viewer, ctx, tool, num).await?;
    let a = file_of(forge, &t, file).await?;
    Ok((t, a))
}

/// Removes a file from ticket `num` (those who may attach), with a line in its history.
pub async fn remove_attachment(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    num: i64,
    file: &str,
) -> Result<(Ticket, Attachment)> {
    let t = for_attaching(forge, viewer, ctx, tool, num).await?;
    let a = file_of(forge, &t, file).await?;
    forge.attachments().delete(forge.db(), &a).await?;
    attachment_changed(forge, viewer, ctx, tool, &t, &a.filename, false).await?;
    Ok((t, a))
}

/// "Linked from": what links to a ticket, leaving out tickets (of any tracker) the viewer
/// may not see. The linking tickets are read in one query.
pub async fn backlinks(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    t: &Ticket,
) -> Result<Vec<crate::links::Link>> {
    let all = crate::links::to(forge.db(), &tickets::link_key(tool, t.ticket_num)).await?;
    let from_tickets: Vec<ObjectId> = all
        .iter()
        .filter_map(|l| l.from_key.strip_prefix("ticket:"))
        .filter_map(|hex| ObjectId::parse_str(hex).ok())
        .collect();
    let found = tickets::by_ids(forge.db(), &from_tickets).await?;
    Ok(all
        .into_iter()
        .filter(|l| {
            let Some(hex) = l.from_key.strip_prefix("ticket:") else {
                return true;
            };
            found.iter().any(|f| {
                f.id.to_hex() == hex
                    && if f.tool_id == tool.id {
                        visible(f, viewer, ctx, tool)
                    } else {
                        !f.deleted && !f.private && f.moderation == tickets::LIVE
                    }
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fixed_tickets() {
        assert_eq!(fixes("Fixes #12"), vec![(None, 12)]);
        assert_eq!(
            fixes("this closes [#3], resolves [bugs:#4]."),
            vec![(None, 3), (Some("bugs".into()), 4)]
        );
        assert_eq!(fixes("see #5; fix: #6"), vec![(None, 6)]);
        assert!(fixes("fixes #abc and prefix #7").is_empty());
        assert!(fixes("fixes #-1 fixes #0").is_empty());
    }

    #[test]
    fn labels_are_trimmed_and_unique() {
        assert_eq!(
            parse_labels(" bug, ui ,bug,,"),
            vec!["bug".to_owned(), "ui".to_owned()]
        );
    }
}
