//! Notifications: people watch a project, a tool or one artifact (a page, a ticket...); a change
//! queues `notify.change`, whose handler mails every watcher who may still read the thing,
//! except its author. Each user picks immediate mail or a daily digest (`notify.digest`).
//! Every mail carries a signed unsubscribe link that works without logging in (and with one
//! POST from the mail client, RFC 8058), a `Message-ID`, the root id of its artifact's
//! conversation (`In-Reply-To`/`References`: one thread per ticket or page in mail clients), a
//! `List-Id` per tool (`<mount>.<project>.<mail domain>`) and a `Reply-To` whose signed token
//! (`crate::mail_token`) lets the recipient answer by mail (`crate::mail_in`).
//!
//! Idempotence: each change has an id; a `(change, user)` marker is written before mailing,
//! so a retried task never mails anyone twice (at worst a crash between the two loses one).

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;
use hmac::{Hmac, Mac};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::acl::{self, Subject, perm};
use crate::error::{Error, Result};
use crate::ids::{ProjectId, ToolId, UserId};
use crate::mail::Mail;
use crate::markdown::escape;
use crate::project_ctx::ProjectCtx;
use crate::projects;
use crate::tool::{Forge, ToolInstance, instance};
use crate::users;
use crate::viewer::Viewer;

pub const TASK_CHANGE: &str = "notify.change";
pub const TASK_DIGEST: &str = "notify.digest";

pub const SUBSCRIPTIONS: &str = "subscriptions";
const PREFS: &str = "notify_prefs";
const SENT: &str = "notify_sent";
const PENDING: &str = "notify_pending";

/// What a subscription watches: a project (no tool), a tool (no artifact) or one artifact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subscription {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: UserId,
    pub project_id: ProjectId,
    #[serde(default)]
    pub tool_id: Option<ToolId>,
    /// Artifact key, as the tool names it (its search document id).
    #[serde(default)]
    pub artifact: Option<String>,
    /// What it is, for lists and mails ("page Home in Docs").
    pub title: String,
    pub created: DateTime,
}

/// How a user wants mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Immediate,
    Digest,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Prefs {
    #[serde(rename = "_id")]
    user_id: UserId,
    mode: Mode,
    #[serde(default)]
    last_digest: Option<DateTime>,
}

/// The thing being watched, as the caller names it.
#[derive(Debug, Clone)]
pub enum Target<'a> {
    Project,
    Tool(&'a ToolInstance),
    Artifact {
        tool: &'a ToolInstance,
        key: String,
        title: String,
    },
}

/// A change worth telling watchers about (`notify.change` arguments).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub id: String,
    pub project: String,
    pub tool: String,
    pub artifact: String,
    /// "page Home", as the tool words it.
    pub title: String,
    /// Path under the base URL.
    pub url: String,
    /// "edited", "created", "renamed to X"...
    pub action: String,
    pub author: String,
    #[serde(default)]
    pub comment: String,
    /// More artifacts the change is about (a bulk edit): their watchers get this one mail.
    #[serde(default)]
    pub also: Vec<String>,
    /// Narrower readers (a private ticket): only those holding this permission on the tool,
    /// or named here, are told.
    #[serde(default)]
    pub readers: Option<Readers>,
}

/// Who may hear of a restricted change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Readers {
    pub permission: String,
    pub usernames: Vec<String>,
}

fn subs(db: &Database) -> Collection<Subscription> {
    db.collection(SUBSCRIPTIONS)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    subs(db)
        .create_indexes([
            IndexModel::builder()
                .keys(doc! {"user_id": 1, "project_id": 1, "tool_id": 1, "artifact": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
            IndexModel::builder()
                .keys(doc! {"project_id": 1, "tool_id": 1, "artifact": 1})
                .build(),
        ])
        .await?;
    db.collection::<bson::Document>(SENT)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"change": 1, "user_id": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await?;
    db.collection::<bson::Document>(PENDING)
        .create_index(IndexModel::builder().keys(doc! {"user_id": 1}).build())
        .await?;
    crate::mail_token::ensure_indexes(db).await
}

fn target_filter(user: UserId, ctx: &ProjectCtx, target: &Target<'_>) -> bson::Document {
    let (tool, artifact) = match target {
        Target::Project => (None, None),
        Target::Tool(t) => (Some(t.id), None),
        Target::Artifact { tool, key, .. } => (Some(tool.id), Some(key.clone())),
    };
    doc! {"user_id": user, "project_id": ctx.project.id, "tool_id": tool, "artifact": artifact}
}

/// Starts watching (idempotent). The viewer must be logged in and able to read the target.
pub async fn watch(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    target: Target<'_>,
) -> Result<()> {
    let user = viewer.require_user()?;
    let title = match &target {
        Target::Project => {
            ctx.authorize(perm::READ)?;
            format!("project {}", ctx.project.name)
        }
        Target::Tool(t) => {
            ctx.authorize_tool(t, perm::READ)?;
            format!("{} in {}", t.label, ctx.project.name)
        }
        Target::Artifact { tool, title, .. } => {
            ctx.authorize_tool(tool, perm::READ)?;
            format!("{title} in {}", ctx.project.name)
        }
    };
    subs(forge.db())
        .clone_with_type::<bson::Document>()
        .update_one(
            target_filter(user.id, ctx, &target),
            doc! {"$setOnInsert": {"_id": ObjectId::new(), "created": DateTime::now()}, "$set": {"title": title}},
        )
        .upsert(true)
        .await?;
    Ok(())
}

pub async fn unwatch(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    target: Target<'_>,
) -> Result<()> {
    let user = viewer.require_user()?;
    subs(forge.db())
        .delete_one(target_filter(user.id, ctx, &target))
        .await?;
    Ok(())
}

pub async fn is_watching(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    target: Target<'_>,
) -> Result<bool> {
    let Some(uid) = viewer.user_id() else {
        return Ok(false);
    };
    let db = forge.db();
    let filter = target_filter(uid, ctx, &target);
    crate::readmodel::memo(
        db,
        MEMO,
        filter.to_string(),
        |_: &bool| 0,
        || async { Ok(subs(db).find_one(filter.clone()).await?.is_some()) },
    )
    .await
}

/// The read model's memo of who watches what.
pub const MEMO: &str = "subscriptions";

/// Starts or stops watching what a form names: the project (no mount), one of its tools
/// (mount), or one artifact of a tool (mount and key; the tool vouches for the key and names
/// it). Returns what was (un)watched, for the person.
pub async fn set_watching(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    mount: &str,
    artifact: &str,
    on: bool,
) -> Result<String> {
    let tool = match mount {
        "" => None,
        m => Some(ctx.tool(m).ok_or(Error::NotFound("tool"))?.clone()),
    };
    let target = match (&tool, artifact) {
        (None, _) => Target::Project,
        (Some(t), "") => Target::Tool(t),
        (Some(t), key) => {
            let kind = forge.tools().get(&t.kind).ok_or(Error::NotFound("tool"))?;
            if !kind.can_read_artifact(forge, ctx, t, key).await? {
                return Err(Error::NotFound("page"));
            }
            let doc = kind
                .search_document(forge, &ctx.project, t, key)
                .await?
                .ok_or(Error::NotFound("page"))?;
            Target::Artifact {
                tool: t,
                key: key.to_owned(),
                title: doc.title,
            }
        }
    };
    let what = match &target {
        Target::Project => format!("project {}", ctx.project.name),
        Target::Tool(t) => t.label.clone(),
        Target::Artifact { title, .. } => title.clone(),
    };
    if on {
        watch(forge, viewer, ctx, target).await?;
    } else {
        unwatch(forge, viewer, ctx, target).await?;
    }
    Ok(what)
}

/// A user's subscriptions, newest first.
pub async fn subscriptions_of(db: &Database, user: UserId) -> Result<Vec<Subscription>> {
    Ok(subs(db)
        .find(doc! {"user_id": user})
        .sort(doc! {"created": -1})
        .await?
        .try_collect()
        .await?)
}

/// Removes one of the user's own subscriptions (settings page).
pub async fn remove_subscription(db: &Database, user: UserId, id: ObjectId) -> Result<bool> {
    Ok(subs(db)
        .delete_one(doc! {"_id": id, "user_id": user})
        .await?
        .deleted_count
        == 1)
}

pub async fn mode_of(db: &Database, user: UserId) -> Result<Mode> {
    Ok(db
        .collection::<Prefs>(PREFS)
        .find_one(doc! {"_id": user})
        .await?
        .map(|p| p.mode)
        .unwrap_or_default())
}

pub async fn set_mode(db: &Database, user: UserId, mode: Mode) -> Result<()> {
    db.collection::<Prefs>(PREFS)
        .update_one(
            doc! {"_id": user},
            doc! {"$set": {"mode": bson::serialize_to_bson(&mode).map_err(|e| Error::Internal(e.to_string()))?}},
        )
        .upsert(true)
        .await?;
    Ok(())
}

/// `s` of an unsubscribe link: a subscription's id, or [`ALL`] and a user's id (a digest's
/// link, which stops everything the user watches).
fn sign(secret: &[u8], s: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(format!("unsubscribe:{s}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Prefix of the `s` that names all of a user's subscriptions.
const ALL: &str = "all-";

/// The unsubscribe link of a subscription (path and query, under the base URL).
fn unsubscribe_path(secret: &[u8], sub: ObjectId) -> String {
    let s = sub.to_hex();
    format!("/auth/unsubscribe?s={s}&sig={}", sign(secret, &s))
}

/// The unsubscribe link of everything a user watches (digests are about all of it).
fn unsubscribe_all_path(secret: &[u8], user: UserId) -> String {
    let s = format!("{ALL}{user}");
    format!("/auth/unsubscribe?s={s}&sig={}", sign(secret, &s))
}

/// What a valid signed link names.
enum Named {
    One(ObjectId),
    All(UserId),
}

async fn verify_link(db: &Database, s: &str, sig: &str) -> Result<Named> {
    let named = match s.strip_prefix(ALL) {
        Some(u) => UserId::parse(u).map(Named::All),
        None => ObjectId::parse_str(s).ok().map(Named::One),
    }
    .ok_or(Error::NotFound("subscription"))?;
    let secret = crate::secret::site_secret(db).await?;
    let expected = sign(&secret, s);
    if expected.is_empty()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            sig.as_bytes(),
        ))
    {
        return Err(Error::NotFound("subscription"));
    }
    Ok(named)
}

/// What a link names, as a person reads it ("page Home in Docs"); `None` when it is stopped
/// already.
async fn title_of(db: &Database, named: &Named) -> Result<Option<String>> {
    Ok(match named {
        Named::One(id) => subs(db).find_one(doc! {"_id": id}).await?.map(|s| s.title),
        Named::All(user) => (subs(db).count_documents(doc! {"user_id": user}).await? > 0)
            .then(|| "everything you watch".to_owned()),
    })
}

/// What [`unsubscribe`] would stop (see `title_of`). `NotFound` for a link this site did not
/// sign.
pub async fn verify_unsubscribe(db: &Database, s: &str, sig: &str) -> Result<Option<String>> {
    title_of(db, &verify_link(db, s, sig).await?).await
}

/// Stops what a signed link names (the signature is the proof: no login); what it was.
pub async fn unsubscribe(db: &Database, s: &str, sig: &str) -> Result<Option<String>> {
    let named = verify_link(db, s, sig).await?;
    let found = title_of(db, &named).await?;
    match named {
        Named::One(id) => {
            subs(db).delete_one(doc! {"_id": id}).await?;
        }
        Named::All(user) => {
            subs(db).delete_many(doc! {"user_id": user}).await?;
            db.collection::<bson::Document>(PENDING)
                .delete_many(doc! {"user_id": user})
                .await?;
        }
    }
    Ok(found)
}

/// Where a mail address of the forge may carry a name: letters, digits and `-` (anything else
/// becomes `-`).
fn address_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The id every mail about one artifact refers to (`In-Reply-To`, `References`), so mail
/// clients show them as one conversation: `<{artifact}.{tool id}@{domain}>`; a change to no
/// single artifact (a bulk edit) threads under its tool.
pub fn thread_root_id(domain: &str, tool: ToolId, artifact: &str) -> String {
    if artifact.is_empty() {
        format!("<{tool}@{domain}>")
    } else {
        format!("<{}.{tool}@{domain}>", address_part(artifact))
    }
}

/// A tool's `List-Id`: `{mount}.{project}.{domain}`.
pub fn list_id(domain: &str, project: &str, mount: &str) -> String {
    format!("{}.{}.{domain}", address_part(mount), address_part(project))
}

/// Queues mail about a change to an artifact of a tool.
#[allow(clippy::too_many_arguments)]
pub async fn queue_change(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    artifact: &str,
    title: &str,
    url: &str,
    action: &str,
    comment: &str,
) -> Result<()> {
    queue(
        forge,
        change(viewer, ctx, tool, artifact, title, url, action, comment),
    )
    .await
}

/// A change to tell watchers about (see [`queue`]); `also` and `readers` start empty.
#[allow(clippy::too_many_arguments)]
pub fn change(
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    artifact: &str,
    title: &str,
    url: &str,
    action: &str,
    comment: &str,
) -> Change {
    Change {
        id: ObjectId::new().to_hex(),
        project: ctx.project.id.to_string(),
        tool: tool.id.to_string(),
        artifact: artifact.to_owned(),
        title: title.to_owned(),
        url: url.to_owned(),
        action: action.to_owned(),
        author: viewer
            .user
            .as_ref()
            .map(|u| u.username.clone())
            .unwrap_or_default(),
        comment: comment.to_owned(),
        also: Vec::new(),
        readers: None,
    }
}

/// Queues mail about a change: one mail (or digest line) per watcher. The project's
/// webhooks hear of it too (as the tool's change event, see `crate::webhooks`).
pub async fn queue(forge: &Forge, change: Change) -> Result<()> {
    crate::webhooks::announce(forge, announcement(&change)).await?;
    forge
        .tasks()
        .enqueue(
            TASK_CHANGE,
            serde_json::to_value(&change).map_err(|e| Error::Internal(e.to_string()))?,
        )
        .await?;
    Ok(())
}

/// A change as webhooks hear of it: its event is the tool's change event.
fn announcement(c: &Change) -> crate::webhooks::Announcement {
    crate::webhooks::Announcement {
        id: c.id.clone(),
        project: c.project.clone(),
        tool: c.tool.clone(),
        event: None,
        action: c.action.clone(),
        actor: c.author.clone(),
        artifact: (!c.artifact.is_empty() || !c.url.is_empty()).then(|| {
            crate::webhooks::Artifact {
                key: c.artifact.clone(),
                title: c.title.clone(),
                url: c.url.clone(),
            }
        }),
        comment: c.comment.clone(),
        readers: c.readers.as_ref().map(|r| crate::webhooks::Readers {
            permission: r.permission.clone(),
            usernames: r.usernames.clone(),
        }),
        // A bulk edit: the artifacts it changed.
        data: if c.also.is_empty() {
            Default::default()
        } else {
            std::iter::once(("also".to_owned(), serde_json::json!(c.also))).collect()
        },
    }
}

/// `notify.change`: one mail (or digest entry) per watcher, most specific subscription first.
pub async fn run_change(forge: &Forge, args: &serde_json::Value) -> Result<()> {
    let change: Change =
        serde_json::from_value(args.clone()).map_err(|e| Error::invalid("args", e.to_string()))?;
    let pid =
        ProjectId::parse(&change.project).ok_or_else(|| Error::invalid("project", "bad id"))?;
    let tid = ToolId::parse(&change.tool).ok_or_else(|| Error::invalid("tool", "bad id"))?;
    let db = forge.db();
    let Some(project) = projects::by_id(db, pid).await?.filter(|p| !p.deleted) else {
        return Ok(());
    };
    let Some(tool) = instance::by_id(db, tid).await? else {
        return Ok(());
    };
    let candidates: Vec<Subscription> = subs(db)
        .find(doc! {"project_id": pid, "$or": [
            {"tool_id": null, "artifact": null},
            {"tool_id": tid, "artifact": null},
            {"tool_id": tid, "artifact": &change.artifact},
            {"tool_id": tid, "artifact": {"$in": &change.also}},
        ]})
        .await?
        .try_collect()
        .await?;
    // Most specific first, so the unsubscribe link stops exactly what the mail was about.
    let mut by_user: std::collections::HashMap<UserId, Subscription> = Default::default();
    for s in candidates {
        let rank =
            |s: &Subscription| usize::from(s.tool_id.is_some()) + usize::from(s.artifact.is_some());
        match by_user.get(&s.user_id) {
            Some(old) if rank(old) >= rank(&s) => {}
            _ => {
                by_user.insert(s.user_id, s);
            }
        }
    }
    let mailer = forge.mailer();
    let base = forge.config().base_url();
    let domain = forge.config().mail_domain();
    let sent = db.collection::<bson::Document>(SENT);
    let secret = crate::secret::site_secret(db).await?;
    let now = DateTime::now().timestamp_millis() / 1_000;
    for (uid, sub) in by_user {
        let Some(user) = users::by_id(db, uid).await? else {
            continue;
        };
        if user.username == change.author || user.disabled {
            continue;
        }
        // Still allowed to read it? (Members leave, projects go private.)
        let subject = Subject {
            user: Some(uid),
            site_admin: user.site_admin,
            role: project.role_of(uid),
        };
        if !acl::allows(&subject, &[&tool.acl, &project.acl], perm::READ) {
            continue;
        }
        if let Some(r) = &change.readers
            && !r.usernames.contains(&user.username)
            && !acl::allows(&subject, &[&tool.acl, &project.acl], &r.permission)
        {
            continue;
        }
        match sent
            .insert_one(doc! {"change": &change.id, "user_id": uid, "at": DateTime::now()})
            .await
        {
            Ok(_) => {}
            Err(e) if Error::is_duplicate_key(&e) => continue,
            Err(e) => return Err(e.into()),
        }
        let unsubscribe = format!("{base}{}", unsubscribe_path(&secret, sub.id));
        let line = format!(
            "{} {} {} in {}",
            display_author(&change.author),
            change.action,
            change.title,
            project.name
        );
        if mode_of(db, uid).await? == Mode::Digest {
            db.collection::<bson::Document>(PENDING)
                .insert_one(doc! {
                    "user_id": uid, "line": &line, "url": format!("{base}{}", change.url),
                    "at": DateTime::now(),
                })
                .await?;
            continue;
        }
        let mut mail = render_change(&user.email, &line, &change, &base, &sub.title, &unsubscribe);
        mail.one_click = true;
        mail.message_id = Some(format!("<{}.{uid}@{domain}>", address_part(&change.id)));
        mail.thread_root = Some(thread_root_id(&domain, tid, &change.artifact));
        mail.list_id = Some((
            project.name.clone(),
            list_id(&domain, &project.shortname, &tool.mount),
        ));
        // A reply by mail is posted as this recipient, on this artifact.
        mail.reply_to = crate::mail_token::issue(db, &secret, uid, tid, &change.artifact, now)
            .await?
            .map(|t| crate::mail_token::reply_address(&t, &domain));
        mailer.send(&mail).await?;
    }
    Ok(())
}

fn display_author(a: &str) -> &str {
    if a.is_empty() { "Someone" } else { a }
}

fn render_change(
    to: &str,
    line: &str,
    c: &Change,
    base: &str,
    watched: &str,
    unsubscribe: &str,
) -> Mail {
    let link = format!("{base}{}", c.url);
    let comment = if c.comment.is_empty() {
        String::new()
    } else {
        format!("\n\"{}\"\n", c.comment)
    };
    let mut mail = Mail::new(
        to.to_owned(),
        format!("[Forge] {line}"),
        format!(
            "{line}.\n{comment}\nSee it: {link}\n\n--\nYou get this because you watch {watched}.\nStop: {unsubscribe}\n"
        ),
        format!(
            "<p>{}.</p>{}<p><a href=\"{}\">See it</a></p><hr><p style=\"color:#666\">You get this because you watch {}. <a href=\"{}\">Unsubscribe</a></p>",
            escape(line),
            if c.comment.is_empty() {
                String::new()
            } else {
                format!("<blockquote>{}</blockquote>", escape(&c.comment))
            },
            escape(&link),
            escape(watched),
            escape(unsubscribe)
        ),
    );
    mail.unsubscribe = Some(unsubscribe.to_owned());
    mail
}

/// `notify.digest`: one mail per digest user with pending lines, at most once a day.
pub async fn run_digest(forge: &Forge, _args: &serde_json::Value) -> Result<()> {
    let db = forge.db();
    let pending = db.collection::<bson::Document>(PENDING);
    let users_with: Vec<bson::Bson> = pending.distinct("user_id", doc! {}).await?;
    let day_ago = DateTime::from_millis(DateTime::now().timestamp_millis() - 86_400_000);
    let mailer = forge.mailer();
    let base = forge.config().base_url();
    let domain = forge.config().mail_domain();
    let secret = crate::secret::site_secret(db).await?;
    for u in users_with {
        let Ok(uid) = bson::deserialize_from_bson::<UserId>(u) else {
            continue;
        };
        let prefs = db
            .collection::<Prefs>(PREFS)
            .find_one(doc! {"_id": uid})
            .await?;
        if prefs
            .as_ref()
            .and_then(|p| p.last_digest)
            .is_some_and(|t| t > day_ago)
        {
            continue;
        }
        let Some(user) = users::by_id(db, uid).await? else {
            continue;
        };
        let items: Vec<bson::Document> = pending
            .find(doc! {"user_id": uid})
            .sort(doc! {"at": 1})
            .await?
            .try_collect()
            .await?;
        if items.is_empty() {
            continue;
        }
        let lines: Vec<(String, String)> = items
            .iter()
            .map(|d| {
                (
                    d.get_str("line").unwrap_or_default().to_owned(),
                    d.get_str("url").unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let mut mail = Mail::new(
            user.email.clone(),
            format!("[Forge] {} changes in what you watch", lines.len()),
            lines
                .iter()
                .map(|(l, u)| format!("- {l}: {u}\n"))
                .collect::<String>()
                + &format!("\n--\nManage what you watch: {base}/auth/notifications\n"),
            format!(
                "<ul>{}</ul><hr><p><a href=\"{}/auth/notifications\">Manage what you watch</a></p>",
                lines
                    .iter()
                    .map(|(l, u)| format!("<li><a href=\"{}\">{}</a></li>", escape(u), escape(l)))
                    .collect::<String>(),
                escape(&base)
            ),
        );
        // The digest is about everything watched: its one-click link stops all of it.
        mail.unsubscribe = Some(format!("{base}{}", unsubscribe_all_path(&secret, uid)));
        mail.one_click = true;
        mail.message_id = Some(format!(
            "<digest.{uid}.{}@{domain}>",
            DateTime::now().timestamp_millis()
        ));
        mail.list_id = Some(("Forge digest".to_owned(), format!("digest.{domain}")));
        mailer.send(&mail).await?;
        let ids: Vec<bson::Bson> = items.iter().filter_map(|d| d.get("_id").cloned()).collect();
        pending.delete_many(doc! {"_id": {"$in": ids}}).await?;
        db.collection::<Prefs>(PREFS)
            .update_one(
                doc! {"_id": uid},
                doc! {"$set": {"last_digest": DateTime::now()}, "$setOnInsert": {"mode": "digest"}},
            )
            .upsert(true)
            .await?;
    }
    Ok(())
}
