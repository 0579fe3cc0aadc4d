//! The webhooks' background work. [`announce`] (called by `crate::notify` for each change,
//! and by tools for events of their own) queues `webhooks.fanout` when the project has any
//! webhook; the fan-out stores one delivery per listening webhook and queues
//! `webhooks.deliver` for it; the delivery task re-checks that whoever added the webhook may
//! still read what it is about, signs and sends the body, and logs the attempt.
//!
//! Retries are the task runner's: an attempt that got no answer, or a 408, 429 or 5xx,
//! returns a retryable error and the runner runs the task again after its backoff (doubling,
//! in-process or through the broker's delay queues), [`TRIES`] times in all; the attempts of
//! a delivery are logged under it, one entry each. A redelivery starts a new round (a new
//! task, the same delivery id and body). Idempotent: a delivery's id comes from the
//! announcement and the webhook, so a repeated fan-out adds nothing, and a task of a round
//! already settled does nothing.

use bson::DateTime;
use bson::oid::ObjectId;
use bytes::Bytes;
use forge_tasks::TaskOptions;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::deliver::{self, Failure, Policy};
use super::model::{self, Attempt, Delivery, Header, State, Webhook};
use super::payload::{self, Announcement};
use crate::acl::{self, Subject, perm};
use crate::error::{Error, Result};
use crate::ids::{ProjectId, ToolId};
use crate::tool::{Forge, instance};
use crate::{projects, users};

pub const TASK_FANOUT: &str = "webhooks.fanout";
pub const TASK_DELIVER: &str = "webhooks.deliver";
/// The webhooks' tasks (see [`run`]).
pub const TASKS: &[&str] = &[TASK_FANOUT, TASK_DELIVER];
/// Attempts per round of a delivery: the first and its retries.
pub const TRIES: u32 = 5;

/// Runs one of [`TASKS`].
pub async fn run(forge: &Forge, task: &str, args: &serde_json::Value) -> Result<()> {
    match task {
        TASK_FANOUT => fan_out(forge, args).await,
        TASK_DELIVER => deliver(forge, args).await,
        other => Err(Error::invalid("task", format!("no webhook task {other:?}"))),
    }
}

fn ids(ann: &Announcement) -> Result<(ProjectId, ToolId)> {
    let pid = ProjectId::parse(&ann.project).ok_or_else(|| Error::invalid("project", "bad id"))?;
    let tid = ToolId::parse(&ann.tool).ok_or_else(|| Error::invalid("tool", "bad id"))?;
    Ok((pid, tid))
}

/// Tells the project's webhooks of a change: queues the fan-out when the project has any
/// webhook (one indexed look-up otherwise).
pub async fn announce(forge: &Forge, ann: Announcement) -> Result<()> {
    let (pid, _) = ids(&ann)?;
    if !model::any(forge.db(), pid).await? {
        return Ok(());
    }
    let args = serde_json::to_value(&ann).map_err(|e| Error::Internal(e.to_string()))?;
    forge.tasks().enqueue(TASK_FANOUT, args).await?;
    Ok(())
}

/// Whether any webhook of the project listens to one of `events` of this tool (so a tool
/// can skip building what nobody would be sent).
pub async fn listening(
    forge: &Forge,
    project: ProjectId,
    tool: ToolId,
    events: &[&str],
) -> Result<bool> {
    Ok(!model::listening(forge.db(), project, tool, events)
        .await?
        .is_empty())
}

/// The id of the delivery of an announcement to a webhook: a UUID (version 8 layout) made
/// of their hash, the same however often the announcement comes.
pub fn delivery_id(announcement: &str, hook: ObjectId) -> String {
    let mut h = Sha256::new();
    h.update(announcement.as_bytes());
    h.update(b"\0");
    h.update(hook.bytes());
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// `webhooks.fanout`: one delivery per webhook listening to the announced event.
async fn fan_out(forge: &Forge, args: &serde_json::Value) -> Result<()> {
    let ann: Announcement =
        serde_json::from_value(args.clone()).map_err(|e| Error::invalid("args", e.to_string()))?;
    let (pid, tid) = ids(&ann)?;
    let db = forge.db();
    let Some(project) = projects::by_id(db, pid).await?.filter(|p| !p.deleted) else {
        return Ok(());
    };
    let Some(tool) = instance::by_id(db, tid).await? else {
        return Ok(());
    };
    let event = match &ann.event {
        Some(e) => e.clone(),
        None => match forge.tools().get(&tool.kind).and_then(|k| k.change_event()) {
            Some(e) => e.to_owned(),
            None => return Ok(()),
        },
    };
    let hooks = model::listening(db, pid, tid, &[event.as_str()]).await?;
    if hooks.is_empty() {
        return Ok(());
    }
    let body = payload::body(&ann, &event, &project, &tool, &forge.config().base_url())?;
    for hook in hooks {
        let now = DateTime::now();
        let d = Delivery {
            id: delivery_id(&ann.id, hook.id),
            webhook_id: hook.id,
            project_id: pid,
            tool_id: tid,
            event: event.clone(),
            action: ann.action.clone(),
            body: body.clone(),
            readers: ann.readers.clone(),
            state: State::Queued,
            round: 0,
            attempts: Vec::new(),
            created: now,
            updated: now,
        };
        if !model::insert_delivery(db, &d).await? {
            // Announced before: queue it again only if it never got going.
            match model::delivery(db, &d.id).await? {
                Some(old) if old.round == 0 && old.state == State::Queued => {}
                _ => continue,
            }
        }
        queue_attempt(forge, &d.id, 0).await?;
    }
    Ok(())
}

/// Queues the delivery task of a round of a delivery.
pub async fn queue_attempt(forge: &Forge, delivery: &str, round: i32) -> Result<()> {
    let opts = TaskOptions {
        max_attempts: TRIES,
        dedup_key: Some(format!("webhook:{delivery}:{round}")),
        ..TaskOptions::default()
    };
    forge
        .tasks()
        .enqueue_with(
            TASK_DELIVER,
            json!({"delivery": delivery, "round": round}),
            opts,
        )
        .await?;
    Ok(())
}

/// `sha256=<hex HMAC-SHA256 of the body with the secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC takes keys of any length: not reached.
        Err(_) => String::new(),
    }
}

fn request_headers(hook: &Webhook, d: &Delivery) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("X-Forge-Event".into(), d.event.clone()),
        ("X-Forge-Delivery".into(), d.id.clone()),
        ("X-Forge-Hook-Id".into(), hook.id.to_hex()),
        (
            "X-Forge-Signature-256".into(),
            signature(&hook.secret, d.body.as_bytes()),
        ),
    ]
}

/// Why the delivery may not go to whoever added the webhook (they left a private project,
/// lost access to the tool, may not see a restricted artifact, or their account is gone);
/// `None` when it may.
async fn creator_refusal(forge: &Forge, hook: &Webhook, d: &Delivery) -> Result<Option<String>> {
    let db = forge.db();
    let Some(user) = users::by_id(db, hook.created_by).await? else {
        return Ok(Some("the account that added this webhook is gone".into()));
    };
    if user.disabled {
        return Ok(Some(format!(
            "{} (who added this webhook) is disabled",
            user.username
        )));
    }
    let Some(project) = projects::by_id(db, d.project_id)
        .await?
        .filter(|p| !p.deleted)
    else {
        return Ok(Some("the project is gone".into()));
    };
    let Some(tool) = instance::by_id(db, d.tool_id).await? else {
        return Ok(Some("the tool is gone".into()));
    };
    let subject = Subject {
        user: Some(user.id),
        site_admin: user.site_admin,
        role: project.role_of(user.id),
    };
    let chain: [&[acl::Ace]; 2] = [&tool.acl, &project.acl];
    if !acl::allows(&subject, &chain, perm::READ) {
        return Ok(Some(format!(
            "{} (who added this webhook) may no longer read {}",
            user.username, tool.label
        )));
    }
    if let Some(r) = &d.readers
        && !r.usernames.contains(&user.username)
        && !acl::allows(&subject, &chain, &r.permission)
    {
        return Ok(Some(format!(
            "{} (who added this webhook) may not see this",
            user.username
        )));
    }
    Ok(None)
}

/// Whether an answer with this status is worth another attempt.
fn retry_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// `webhooks.deliver`: one attempt of one round of a delivery.
async fn deliver(forge: &Forge, args: &serde_json::Value) -> Result<()> {
    let id = args
        .get("delivery")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::invalid("delivery", "missing"))?;
    let round = args
        .get("round")
        .and_then(serde_json::Value::as_i64)
        .and_then(|r| i32::try_from(r).ok())
        .ok_or_else(|| Error::invalid("round", "missing"))?;
    let db = forge.db();
    let Some(d) = model::delivery(db, id).await? else {
        return Ok(());
    };
    // A later round took over, or this one is settled: nothing to do.
    if d.round != round || d.state.is_final() {
        return Ok(());
    }
    let Some(hook) = model::by_id(db, d.webhook_id).await? else {
        return Ok(());
    };
    let tries = d.attempts.iter().filter(|a| a.round == round).count() as u32 + 1;
    let headers = request_headers(&hook, &d);
    let logged = headers
        .iter()
        .map(|(name, value)| Header {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    let mut attempt = Attempt {
        round,
        at: DateTime::now(),
        url: hook.url.clone(),
        request_headers: logged,
        status: None,
        response: String::new(),
        duration_ms: 0,
        error: None,
        outcome: State::Refused,
    };
    if let Some(why) = creator_refusal(forge, &hook, &d).await? {
        attempt.error = Some(format!("not sent: {why}"));
        model::record_attempt(db, id, round, &attempt).await?;
        return Ok(());
    }
    let policy = Policy::new(forge.config().webhook_allow_private);
    let started = std::time::Instant::now();
    let result = deliver::post(&hook.url, &headers, Bytes::from(d.body.clone()), &policy).await;
    attempt.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let last_try = tries >= TRIES;
    let (outcome, retry) = match &result {
        Ok(res) if (200..300).contains(&res.status) => (State::Delivered, false),
        Ok(res) if retry_status(res.status) && !last_try => (State::Retrying, true),
        Ok(_) => (State::Failed, false),
        Err(Failure::Refused(_)) => (State::Refused, false),
        Err(f) if f.is_transient() && !last_try => (State::Retrying, true),
        Err(_) => (State::Failed, false),
    };
    attempt.outcome = outcome;
    match &result {
        Ok(res) => {
            attempt.url = res.url.clone();
            attempt.status = Some(i32::from(res.status));
            let kept = &res.body[..res.body.len().min(model::RESPONSE_KEPT_BYTES)];
            attempt.response = String::from_utf8_lossy(kept).into_owned();
            if !(200..300).contains(&res.status) {
                attempt.error = Some(format!("the receiver answered {}", res.status));
            }
        }
        Err(f) => attempt.error = Some(f.to_string()),
    }
    model::record_attempt(db, id, round, &attempt).await?;
    if retry {
        let why = attempt.error.unwrap_or_default();
        return Err(Error::Busy(format!(
            "webhook delivery {id} (attempt {tries} of {TRIES}): {why}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_stable_uuids() {
        let hook = ObjectId::new();
        let a = delivery_id("change-1", hook);
        assert_eq!(a, delivery_id("change-1", hook));
        assert_ne!(a, delivery_id("change-2", hook));
        assert_ne!(a, delivery_id("change-1", ObjectId::new()));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_eq!(&a[14..15], "8");
    }

    #[test]
    fn signatures_are_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn which_answers_are_retried() {
        assert!(retry_status(500) && retry_status(503) && retry_status(429) && retry_status(408));
        assert!(!retry_status(404) && !retry_status(400) && !retry_status(410));
    }
}
