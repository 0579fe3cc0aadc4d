//! What project admins do with webhooks (the admin page and REST call these): list, add
//! (checked: URL, secret, events, tool, how many), remove, read the delivery log, redeliver.
//! Each checks the admin permission on the project itself.

use bson::DateTime;
use bson::oid::ObjectId;

use super::deliver::Target;
use super::model::{self, Delivery, MAX_PER_PROJECT, MAX_SECRET_CHARS, Webhook};
use super::tasks::queue_attempt;
use crate::acl::perm;
use crate::error::{Error, FieldErrors, Result};
use crate::project_ctx::ProjectCtx;
use crate::tool::Forge;
use crate::users;
use crate::viewer::Viewer;

/// Deliveries a log shows at most.
pub const LOG_LIMIT: i64 = 50;
/// Event names a new webhook may be given (repeats included).
const MAX_EVENTS_GIVEN: usize = 32;

/// A webhook as its project's admins see it (never its secret).
#[derive(Debug, Clone)]
pub struct Listed {
    pub hook: Webhook,
    /// The mount point of its tool, when it is limited to one (`None` when that tool is
    /// gone: see `tool_missing`).
    pub mount: Option<String>,
    /// It was limited to a tool that is no longer installed: it hears nothing.
    pub tool_missing: bool,
    /// Who added it (username; empty when the account is gone).
    pub created_by: String,
}

/// What a new webhook is given.
#[derive(Debug, Clone, Default)]
pub struct NewWebhook {
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
    /// Only this tool's events (its mount point); `None` or empty: every tool's.
    pub mount: Option<String>,
}

/// Every event some tool of this forge announces, in tool order.
pub fn known_events(forge: &Forge) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for t in forge.tools().all() {
        for e in t.webhook_events() {
            if !out.contains(e) {
                out.push(e);
            }
        }
    }
    out
}

fn parse_id(id: &str) -> Result<ObjectId> {
    ObjectId::parse_str(id).map_err(|_| Error::NotFound("webhook"))
}

/// The project's webhooks, oldest first.
pub async fn list(forge: &Forge, ctx: &ProjectCtx) -> Result<Vec<Listed>> {
    ctx.authorize(perm::ADMIN)?;
    let hooks = model::of_project(forge.db(), ctx.project.id).await?;
    let creators: Vec<_> = hooks.iter().map(|h| h.created_by).collect();
    let accounts = users::by_ids(forge.db(), &creators).await?;
    Ok(hooks
        .into_iter()
        .map(|hook| {
            let tool = hook
                .tool_id
                .and_then(|t| ctx.tools.iter().find(|i| i.id == t));
            let created_by = accounts
                .iter()
                .find(|u| u.id == hook.created_by)
                .map(|u| u.username.clone())
                .unwrap_or_default();
            Listed {
                mount: tool.map(|t| t.mount.clone()),
                tool_missing: hook.tool_id.is_some() && tool.is_none(),
                created_by,
                hook,
            }
        })
        .collect())
}

/// One of the project's webhooks.
pub async fn get(forge: &Forge, ctx: &ProjectCtx, id: &str) -> Result<Listed> {
    let id = parse_id(id)?;
    list(forge, ctx)
        .await?
        .into_iter()
        .find(|l| l.hook.id == id)
        .ok_or(Error::NotFound("webhook"))
}

/// Adds a webhook, owned by the viewer (its deliveries go while they may read what they
/// are about). `Invalid` with a message per field for what is wrong.
pub async fn create(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    new: NewWebhook,
) -> Result<Listed> {
    ctx.authorize(perm::ADMIN)?;
    let user = viewer.require_user()?;
    let mut errs = FieldErrors::new();
    let url = new.url.trim().to_owned();
    if url.is_empty() {
        errs.add("url", "Give the URL deliveries are posted to");
    } else if let Err(m) = Target::parse(&url) {
        errs.add("url", m);
    }
    if new.secret.is_empty() {
        errs.add("secret", "Give a secret: it signs every delivery");
    } else if new.secret.chars().count() > MAX_SECRET_CHARS {
        errs.add(
            "secret",
            format!("A secret has at most {MAX_SECRET_CHARS} characters"),
        );
    }
    let mount = new
        .mount
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let tool = match mount {
        None => None,
        Some(m) => match ctx.tool(m) {
            Some(t) => Some(t),
            None => {
                errs.add("mount", format!("No tool is mounted at \"{m}\""));
                None
            }
        },
    };
    // What may be chosen: the events of the tool chosen, else those of every tool.
    let offered: Vec<&'static str> = match tool {
        Some(t) => forge
            .tools()
            .get(&t.kind)
            .map(|k| k.webhook_events().to_vec())
            .unwrap_or_default(),
        None => known_events(forge),
    };
    let mut events: Vec<String> = Vec::new();
    if new.events.len() > MAX_EVENTS_GIVEN {
        errs.add("events", "Too many events given");
    }
    for e in new.events.iter().take(MAX_EVENTS_GIVEN) {
        let e = e.trim().to_ascii_lowercase();
        if e.is_empty() || events.contains(&e) {
            continue;
        }
        events.push(e);
    }
    if events.is_empty() {
        errs.add("events", "Choose at least one event");
    } else if let Some(bad) = events.iter().find(|e| !offered.contains(&e.as_str())) {
        let what = match tool {
            Some(t) if offered.is_empty() => format!("{} announces no events", t.label),
            Some(t) => format!(
                "{} announces only {}; \"{bad}\" is not one of them",
                t.label,
                offered.join(", ")
            ),
            None => format!(
                "\"{bad}\" is not an event; choose from {}",
                offered.join(", ")
            ),
        };
        errs.add("events", what);
    }
    // In the order they are offered.
    events.sort_by_key(|e| offered.iter().position(|o| o == e));
    errs.into_result()?;
    if model::count(forge.db(), ctx.project.id).await? >= MAX_PER_PROJECT {
        return Err(Error::invalid(
            "webhooks",
            format!("A project has at most {MAX_PER_PROJECT} webhooks; remove one first"),
        ));
    }
    let hook = Webhook {
        id: ObjectId::new(),
        project_id: ctx.project.id,
        url,
        secret: new.secret,
        events,
        tool_id: tool.map(|t| t.id),
        created_by: user.id,
        created: DateTime::now(),
    };
    model::insert(forge.db(), &hook).await?;
    forge.events().record(
        "project.webhook.add",
        viewer.event_context(Some(&ctx.project), tool.map(|t| t.mount.as_str())),
        bson::Bson::Document(bson::doc! {"webhook": hook.id.to_hex(), "events": &hook.events}),
    );
    Ok(Listed {
        mount: tool.map(|t| t.mount.clone()),
        tool_missing: false,
        created_by: user.username.clone(),
        hook,
    })
}

/// Removes a webhook and its delivery log.
pub async fn delete(forge: &Forge, viewer: &Viewer, ctx: &ProjectCtx, id: &str) -> Result<()> {
    ctx.authorize(perm::ADMIN)?;
    let id = parse_id(id)?;
    if !model::remove(forge.db(), ctx.project.id, id).await? {
        return Err(Error::NotFound("webhook"));
    }
    forge.events().record(
        "project.webhook.remove",
        viewer.event_context(Some(&ctx.project), None),
        bson::Bson::Document(bson::doc! {"webhook": id.to_hex()}),
    );
    Ok(())
}

/// A webhook's latest deliveries (at most [`LOG_LIMIT`]), newest first.
pub async fn deliveries(forge: &Forge, ctx: &ProjectCtx, id: &str) -> Result<Vec<Delivery>> {
    let hook = get(forge, ctx, id).await?;
    model::deliveries_of(forge.db(), hook.hook.id, LOG_LIMIT).await
}

/// Sends a logged delivery again (a new round of attempts, the same id and body).
pub async fn redeliver(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    id: &str,
    delivery: &str,
) -> Result<Delivery> {
    let hook = get(forge, ctx, id).await?;
    let d = model::delivery(forge.db(), delivery)
        .await?
        .filter(|d| d.webhook_id == hook.hook.id)
        .ok_or(Error::NotFound("delivery"))?;
    let round = model::start_round(forge.db(), &d.id).await?;
    queue_attempt(forge, &d.id, round).await?;
    forge.events().record(
        "project.webhook.redeliver",
        viewer.event_context(Some(&ctx.project), None),
        bson::Bson::Document(bson::doc! {"webhook": hook.hook.id.to_hex(), "delivery": &d.id}),
    );
    model::delivery(forge.db(), &d.id)
        .await?
        .ok_or(Error::NotFound("delivery"))
}
