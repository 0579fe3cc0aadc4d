//! Import and export in Allura's tracker JSON format (`tickets`, `tracker_config`,
//! `milestones`, `custom_fields`, `saved_bins`, `open_status_names`, `closed_status_names`;
//! each ticket with `ticket_num`, `summary`, `description`, `status`, `labels`,
//! `assigned_to`, `reported_by`, `created_date`, `mod_date`, `private`, `custom_fields`,
//! `votes_up`/`votes_down`, `discussion_thread.posts` and `attachments`).
//!
//! Attachments travel by name and address only (as in Allura's export, where they are
//! links); an import keeps them as a list of the original files. An import is all or
//! nothing: the whole file is checked first (numbers unique, fields valid, none taken in the
//! tracker), then written; a failure while writing removes what was written.

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use super::actions;
use super::bins::{self, Bin};
use super::config::{CustomField, FieldType, Milestone, TrackerConfig, value_text};
use super::tickets::{self, Ticket};
use crate::acl::perm;
use crate::discussion::{self, Post, Status};
use crate::error::{Error, FieldErrors, Result};
use crate::project_ctx::ProjectCtx;
use crate::tool::{Forge, ToolInstance};
use crate::viewer::Viewer;

/// Tickets one import may hold.
pub const MAX_IMPORT_TICKETS: usize = 50_000;
/// Comments one imported ticket may bring.
pub const MAX_IMPORT_POSTS: usize = 10_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Export {
    #[serde(default)]
    pub tracker_config: ExportConfig,
    #[serde(default)]
    pub open_status_names: String,
    #[serde(default)]
    pub closed_status_names: String,
    #[serde(default)]
    pub milestones: Vec<ExportMilestone>,
    #[serde(default)]
    pub custom_fields: Vec<ExportField>,
    #[serde(default)]
    pub saved_bins: Vec<ExportBin>,
    #[serde(default)]
    pub tickets: Vec<ExportTicket>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportConfig {
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportMilestone {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub due_date: String,
    #[serde(default)]
    pub complete: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportField {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub options: String,
    #[serde(default)]
    pub show_in_search: bool,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub milestones: Vec<ExportMilestone>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportBin {
    pub summary: String,
    pub terms: String,
    #[serde(default)]
    pub sort: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportTicket {
    pub ticket_num: i64,
    pub summary: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub assigned_to: Option<String>,
    #[serde(default)]
    pub reported_by: Option<String>,
    #[serde(default)]
    pub created_date: Option<String>,
    #[serde(default)]
    pub mod_date: Option<String>,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub votes_up: i64,
    #[serde(default)]
    pub votes_down: i64,
    #[serde(default)]
    pub discussion_thread: ExportThread,
    #[serde(default)]
    pub attachments: Vec<ExportAttachment>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportThread {
    #[serde(default)]
    pub posts: Vec<ExportPost>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportPost {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub attachments: Vec<ExportAttachment>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportAttachment {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub bytes: i64,
}

fn iso(d: DateTime) -> String {
    d.try_to_rfc3339_string().unwrap_or_default()
}

fn parse_iso(s: &Option<String>) -> Option<DateTime> {
    let s = s.as_deref()?;
    DateTime::parse_rfc3339_str(s).ok().or_else(|| {
        // Allura writes naive UTC times ("2012-01-02 03:04:05.678000").
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .ok()
            .map(|n| DateTime::from_millis(n.and_utc().timestamp_millis()))
    })
}

fn json_of(v: &Bson) -> serde_json::Value {
    match v {
        Bson::Null => serde_json::Value::Null,
        Bson::Boolean(b) => serde_json::Value::Bool(*b),
        Bson::Double(d) => serde_json::Number::from_f64(*d)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        other => serde_json::Value::String(value_text(other)),
    }
}

/// The tracker in Allura's format (admins): every ticket the admin sees, with comments.
pub async fn export(forge: &Forge, ctx: &ProjectCtx, tool: &ToolInstance) -> Result<Export> {
    ctx.authorize_tool(tool, perm::ADMIN)?;
    let config = TrackerConfig::of(tool);
    let milestones: Vec<ExportMilestone> = config
        .milestones
        .iter()
        .map(|m| ExportMilestone {
            name: m.name.clone(),
            description: m.description.clone(),
            due_date: m.due.clone(),
            complete: m.closed,
        })
        .collect();
    let mut fields: Vec<ExportField> = config
        .custom_fields
        .iter()
        .map(|f| ExportField {
            name: f.name.clone(),
            label: f.label.clone(),
            kind: f.kind.as_str().to_owned(),
            options: f.options.join(" "),
            show_in_search: f.show_in_list,
            required: f.required,
            default: f.default.clone(),
            milestones: Vec::new(),
        })
        .collect();
    if !milestones.is_empty() && !fields.iter().any(|f| f.name == "_milestone") {
        fields.push(ExportField {
            name: "_milestone".into(),
            label: "Milestone".into(),
            kind: "milestone".into(),
            milestones: milestones.clone(),
            ..ExportField::default()
        });
    }
    let mut out_tickets = Vec::new();
    let all = tickets::all(forge.db(), tool.id).await?;
    // Comments and files of every ticket read in a few queries, not two per ticket.
    let mut posts_of = discussion::live_posts_by_artifact(forge, tool).await?;
    let mut files_of: std::collections::HashMap<ObjectId, Vec<crate::attachments::Attachment>> =
        Default::default();
    for chunk in all.chunks(100) {
        let ids: Vec<ObjectId> = chunk.iter().map(|t| t.id).collect();
        for a in forge
            .attachments()
            .list_many(forge.db(), tool.id, &ids)
            .await?
        {
            files_of.entry(a.artifact_id).or_default().push(a);
        }
    }
    for t in all {
        let mut custom: serde_json::Map<String, serde_json::Value> = t
            .custom_fields
            .iter()
            .map(|(k, v)| (k.clone(), json_of(v)))
            .collect();
        if let Some(m) = &t.milestone {
            custom.insert("_milestone".into(), serde_json::Value::String(m.clone()));
        }
        let posts = posts_of.remove(&t.key()).unwrap_or_default();
        let mut attachments: Vec<ExportAttachment> = files_of
            .remove(&t.id)
            .unwrap_or_default()
            .into_iter()
            .map(|a| ExportAttachment {
                url: format!(
                    "{}{}/{}/attachments/{}",
                    ctx.project.url(),
                    tool.mount,
                    t.ticket_num,
                    a.filename
                ),
                filename: a.filename,
                bytes: a.size,
            })
            .collect();
        attachments.extend(t.imported_attachments.iter().map(|f| ExportAttachment {
            url: f.url.clone(),
            filename: f.filename.clone(),
            bytes: f.bytes,
        }));
        out_tickets.push(ExportTicket {
            ticket_num: t.ticket_num,
            summary: t.summary.clone(),
            description: t.description.clone(),
            status: t.status.clone(),
            labels: t.labels.clone(),
            assigned_to: t.assigned_to.clone(),
            reported_by: Some(t.reported_by.clone()).filter(|r| !r.is_empty()),
            created_date: Some(iso(t.created)),
            mod_date: Some(iso(t.modified)),
            private: t.private,
            custom_fields: custom,
            votes_up: t.votes_up,
            votes_down: t.votes_down,
            discussion_thread: ExportThread {
                posts: posts
                    .into_iter()
                    .filter(|p| p.status == Status::Ok)
                    .map(|p| ExportPost {
                        text: p.text,
                        author: p.author,
                        timestamp: Some(iso(p.created)),
                        slug: p.path,
                        attachments: Vec::new(),
                    })
                    .collect(),
            },
            attachments,
        });
    }
    let saved_bins = bins::list(forge.db(), tool.id, None)
        .await?
        .into_iter()
        .map(|b| ExportBin {
            summary: b.name,
            terms: b.q,
            sort: b.sort,
        })
        .collect();
    let mut options = serde_json::Map::new();
    options.insert("mount_point".into(), tool.mount.clone().into());
    options.insert("mount_label".into(), tool.label.clone().into());
    options.insert("TicketMonitoringType".into(), serde_json::Value::Null);
    options.insert("EnableVoting".into(), true.into());
    options.insert(
        "AllowAnonymousTickets".into(),
        config.anonymous_tickets.into(),
    );
    options.insert(
        "ticket_form_template".into(),
        config.template.clone().into(),
    );
    Ok(Export {
        tracker_config: ExportConfig { options },
        open_status_names: config.open_statuses.join(" "),
        closed_status_names: config.closed_statuses.join(" "),
        milestones,
        custom_fields: fields,
        saved_bins,
        tickets: out_tickets,
    })
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Imported {
    pub tickets: usize,
    pub comments: usize,
    pub saved_bins: usize,
}

/// The configuration an import brings: statuses, custom fields and milestones from the file
/// added to the tracker's.
fn merged_config(mut config: TrackerConfig, e: &Export) -> TrackerConfig {
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    for s in words(&e.open_status_names) {
        if !config.has_status(&s) {
            config.open_statuses.push(s);
        }
    }
    for s in words(&e.closed_status_names) {
        if !config.has_status(&s) {
            config.closed_statuses.push(s);
        }
    }
    let mut ms: Vec<&ExportMilestone> = e.milestones.iter().collect();
    for f in &e.custom_fields {
        ms.extend(f.milestones.iter());
    }
    for m in ms {
        if config.milestone(&m.name).is_none() {
            config.milestones.push(Milestone {
                name: m.name.clone(),
                description: m.description.clone(),
                due: m.due_date.clone(),
                closed: m.complete,
            });
        }
    }
    for f in &e.custom_fields {
        if f.name == "_milestone" || config.field(&f.name).is_some() {
            continue;
        }
        let kind = FieldType::parse(&f.kind).unwrap_or(FieldType::String);
        config.custom_fields.push(CustomField {
            name: f.name.clone(),
            label: if f.label.is_empty() {
                f.name.trim_start_matches('_').to_owned()
            } else {
                f.label.clone()
            },
            kind,
            required: false,
            default: String::new(),
            options: f.options.split_whitespace().map(str::to_owned).collect(),
            show_in_list: f.show_in_search,
        });
    }
    if let Some(t) = e
        .tracker_config
        .options
        .get("ticket_form_template")
        .and_then(|v| v.as_str())
        && config.template.is_empty()
    {
        config.template = t.to_owned();
    }
    if let Some(a) = e
        .tracker_config
        .options
        .get("AllowAnonymousTickets")
        .and_then(|v| v.as_bool())
    {
        config.anonymous_tickets = a;
    }
    config
}

/// Imports an export (admins). Numbers stay as in the file; a number taken in the file or
/// the tracker is refused with the numbers named, and nothing is written.
pub async fn import(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    e: Export,
) -> Result<Imported> {
    ctx.authorize_tool(tool, perm::ADMIN)?;
    if e.tickets.len() > MAX_IMPORT_TICKETS {
        return Err(Error::TooLarge(format!(
            "at most {MAX_IMPORT_TICKETS} tickets per import"
        )));
    }
    let config = merged_config(TrackerConfig::of(tool), &e);
    config.validate()?;
    let mut errors = FieldErrors::new();
    let mut seen = std::collections::HashSet::new();
    let mut dup = Vec::new();
    for t in &e.tickets {
        if t.ticket_num < 1 {
            errors.add(
                "tickets",
                format!("Ticket number {} is not a positive number", t.ticket_num),
            );
        }
        if !seen.insert(t.ticket_num) {
            dup.push(t.ticket_num);
        }
    }
    if !dup.is_empty() {
        return Err(Error::conflict(
            "duplicate_ticket",
            format!("The file has ticket numbers more than once: {}", list(&dup)),
        ));
    }
    let nums: Vec<i64> = e.tickets.iter().map(|t| t.ticket_num).collect();
    let mut taken: Vec<i64> = Vec::new();
    for chunk in nums.chunks(1_000) {
        taken.extend(
            tickets::by_nums(forge.db(), tool.id, chunk)
                .await?
                .into_iter()
                .map(|t| t.ticket_num),
        );
    }
    if !taken.is_empty() {
        taken.sort_unstable();
        return Err(Error::conflict(
            "duplicate_ticket",
            format!(
                "These ticket numbers exist in this tracker already: {}",
                list(&taken)
            ),
        ));
    }
    let now = DateTime::now();
    let max_text = usize::try_from(forge.config().max_text_bytes).unwrap_or(usize::MAX);
    let mut docs: Vec<Ticket> = Vec::with_capacity(e.tickets.len());
    let mut posts: Vec<(ObjectId, i64, Vec<ExportPost>)> = Vec::new();
    for t in &e.tickets {
        let n = t.ticket_num;
        // The same bounds as tickets and comments filed here.
        if t.description.len() > max_text
            || t.discussion_thread.posts.len() > MAX_IMPORT_POSTS
            || t.discussion_thread
                .posts
                .iter()
                .any(|p| p.text.len() > max_text)
        {
            errors.add(
                "tickets",
                format!(
                    "Ticket {n}: a text is longer than {max_text} bytes, or it has more than {MAX_IMPORT_POSTS} comments"
                ),
            );
        }
        let mut label_errors = FieldErrors::new();
        actions::check_labels(&t.labels, &mut label_errors);
        for (_, m) in label_errors.0 {
            errors.add("tickets", format!("Ticket {n}: {m}"));
        }
        if t.summary.trim().is_empty() || t.summary.chars().count() > actions::MAX_SUMMARY {
            errors.add(
                "tickets",
                format!(
                    "Ticket {n}: the summary must be 1 to {} characters",
                    actions::MAX_SUMMARY
                ),
            );
        }
        let status = if t.status.is_empty() {
            config.initial_status().to_owned()
        } else {
            t.status.clone()
        };
        if !config.has_status(&status) {
            errors.add(
                "tickets",
                format!(
                    "Ticket {n}: unknown status \"{}\"",
                    crate::markdown::escape(&status)
                ),
            );
        }
        let mut custom = Document::new();
        let mut milestone = None;
        for (k, v) in &t.custom_fields {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            if k == "_milestone" {
                milestone = Some(text).filter(|m| !m.is_empty());
                continue;
            }
            match config.field(k) {
                Some(f) => match config.parse_value(
                    &CustomField {
                        required: false,
                        ..f.clone()
                    },
                    &text,
                ) {
                    Ok(v) => {
                        custom.insert(f.name.clone(), v);
                    }
                    Err(m) => errors.add("tickets", format!("Ticket {n}: {m}")),
                },
                None => errors.add(
                    "tickets",
                    format!(
                        "Ticket {n}: no custom field \"{}\"",
                        crate::markdown::escape(k)
                    ),
                ),
            }
        }
        let id = ObjectId::new();
        docs.push(Ticket {
            id,
            tool_id: tool.id,
            ticket_num: n,
            summary: t.summary.trim().to_owned(),
            description: t.description.clone(),
            status,
            labels: t.labels.clone(),
            assigned_to: t
                .assigned_to
                .clone()
                .filter(|a| !a.is_empty() && a != "nobody"),
            reported_by: t
                .reported_by
                .clone()
                .filter(|r| r != "*anonymous")
                .unwrap_or_default(),
            milestone,
            private: t.private,
            votes_up: t.votes_up.max(0),
            votes_down: t.votes_down.max(0),
            votes: t.votes_up.max(0) - t.votes_down.max(0),
            custom_fields: custom,
            created: parse_iso(&t.created_date).unwrap_or(now),
            modified: parse_iso(&t.mod_date).unwrap_or(now),
            version: 1,
            moderation: tickets::LIVE.to_owned(),
            deleted: false,
            comments_text: String::new(),
            imported_attachments: t
                .attachments
                .iter()
                .take(100)
                .map(|a| tickets::ImportedFile {
                    filename: if a.filename.is_empty() {
                        a.url.rsplit('/').next().unwrap_or_default().to_owned()
                    } else {
                        a.filename.clone()
                    },
                    url: a.url.clone(),
                    bytes: a.bytes,
                })
                .collect(),
        });
        posts.push((id, n, t.discussion_thread.posts.clone()));
    }
    errors.into_result()?;
    // Written: configuration first (tickets may name its statuses), then the tickets.
    actions::save_config(forge, ctx, tool, &config).await?;
    let written = write(forge, ctx, tool, &docs, &posts, &e).await;
    match written {
        Ok(imported) => {
            if let Some(max) = nums.iter().max() {
                tickets::counter_at_least(forge.db(), tool.id, *max).await?;
            }
            let keys = docs.iter().map(Ticket::key).collect();
            crate::search::indexer::queue_artifacts(forge, &ctx.project, tool, keys).await?;
            forge.events().record(
                "tracker.import",
                viewer.event_context(Some(&ctx.project), Some(&tool.mount)),
                Bson::Document(doc! {"tickets": imported.tickets as i64}),
            );
            Ok(imported)
        }
        Err(err) => {
            // Nothing half-imported: what was written goes.
            let ids: Vec<ObjectId> = docs.iter().map(|t| t.id).collect();
            let db = forge.db();
            let _ = db
                .collection::<Document>(tickets::TICKETS)
                .delete_many(doc! {"_id": {"$in": &ids}})
                .await;
            let keys: Vec<String> = docs.iter().map(Ticket::key).collect();
            let _ = db
                .collection::<Document>(discussion::POSTS)
                .delete_many(doc! {"tool_id": tool.id, "import_of": {"$in": &keys}})
                .await;
            let _ = db
                .collection::<Document>(discussion::THREADS)
                .delete_many(doc! {"tool_id": tool.id, "artifact": {"$in": &keys}})
                .await;
            Err(err)
        }
    }
}

async fn write(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    docs: &[Ticket],
    posts: &[(ObjectId, i64, Vec<ExportPost>)],
    e: &Export,
) -> Result<Imported> {
    let db = forge.db();
    for chunk in docs.chunks(1_000) {
        match db
            .collection::<Ticket>(tickets::TICKETS)
            .insert_many(chunk)
            .await
        {
            Ok(_) => {}
            Err(err) if Error::is_duplicate_key(&err) => {
                return Err(Error::conflict(
                    "duplicate_ticket",
                    "A ticket number was taken while importing; nothing was imported",
                ));
            }
            Err(err) => return Err(err.into()),
        }
    }
    // Imported tickets keep their old numbers, below those counted once and kept
    // (`tickets::MEMO_PAST_COUNTS`, which inserts leave alone): touching them is a change
    // every node's read model hears, and drops those counts.
    let ids: Vec<ObjectId> = docs.iter().map(|t| t.id).collect();
    for chunk in ids.chunks(1_000) {
        db.collection::<Document>(tickets::TICKETS)
            .update_many(
                doc! {"_id": {"$in": chunk}},
                doc! {"$currentDate": {"imported": true}},
            )
            .await?;
    }
    let mut comments = 0;
    for (id, num, list) in posts.iter().filter(|(_, _, l)| !l.is_empty()) {
        let Some(t) = docs.iter().find(|t| t.id == *id) else {
            continue;
        };
        let thread =
            discussion::thread(forge, ctx, tool, &actions::thread_ref(ctx, tool, t)).await?;
        let mut batch: Vec<Document> = Vec::new();
        for p in list {
            let pid = ObjectId::new();
            let created = parse_iso(&p.timestamp).unwrap_or_else(DateTime::now);
            let post = Post {
                id: pid,
                thread_id: thread.id,
                project_id: ctx.project.id,
                tool_id: tool.id,
                parent: None,
                path: Post::segment(created, pid),
                depth: 0,
                author: p.author.clone(),
                text: p.text.clone(),
                status: Status::Ok,
                created,
                edited: None,
                edits: Vec::new(),
                deleted: false,
            };
            let mut d = bson::serialize_to_document(&post)
                .map_err(|err| Error::Internal(err.to_string()))?;
            d.insert("import_of", t.key());
            batch.push(d);
        }
        let n = batch.len();
        db.collection::<Document>(discussion::POSTS)
            .insert_many(batch)
            .await?;
        db.collection::<Document>(discussion::THREADS)
            .update_one(
                doc! {"_id": thread.id},
                doc! {"$inc": {"num_posts": n as i64}},
            )
            .await?;
        comments += n;
        let _ = num;
    }
    let mut saved_bins = 0;
    for b in &e.saved_bins {
        let bin = Bin {
            id: ObjectId::new(),
            tool_id: tool.id,
            owner: None,
            name: b.summary.clone(),
            q: b.terms.clone(),
            sort: b.sort.clone(),
            created: DateTime::now(),
        };
        // A bin of the same name is kept as it is.
        if bins::insert(db, &bin).await.is_ok() {
            saved_bins += 1;
        }
    }
    Ok(Imported {
        tickets: docs.len(),
        comments,
        saved_bins,
    })
}

fn list(nums: &[i64]) -> String {
    let mut s: Vec<String> = nums.iter().take(20).map(|n| n.to_string()).collect();
    if nums.len() > 20 {
        s.push(format!("and {} more", nums.len() - 20));
    }
    s.join(", ")
}
