//! Watching and mail settings: the watch/unwatch form every watchable page posts, the signed
//! unsubscribe link from mails (no login needed; a mail client's one-click POST, RFC 8058,
//! works too), and `/auth/notifications`.

use axum::body::Bytes;
use axum::extract::State;
use forge_tools::Error;
use forge_tools::notify::{self, Mode};
use serde::Deserialize;

use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::{ProjectReq, SignedIn};
use crate::error::PageResult;
use crate::extract::Query;
use crate::page::{Page, PageCtx, render};
use crate::routes::accounts::safe_next;
use crate::state::AppState;
use crate::views::{NotificationsTpl, SubscriptionRow, UnsubscribeTpl};

#[derive(Debug, Deserialize)]
pub struct WatchForm {
    /// Tool mount; empty for the whole project.
    #[serde(default)]
    tool: String,
    /// Artifact key within the tool (e.g. `wiki:<page id>`); empty for the whole tool.
    #[serde(default)]
    artifact: String,
    /// `watch` or `unwatch`.
    action: String,
    #[serde(default)]
    next: String,
}

/// `POST /p/<project>/_watch`.
pub async fn watch(
    State(st): State<AppState>,
    _: SignedIn,
    p: ProjectReq,
    CsrfForm(form): CsrfForm<WatchForm>,
) -> PageResult {
    let on = match form.action.as_str() {
        "watch" => true,
        "unwatch" => false,
        _ => return Err(Error::invalid("action", "use watch or unwatch").into()),
    };
    let (tool, artifact) = (&form.tool, &form.artifact);
    let what = notify::set_watching(&st.forge, p.viewer(), &p.ctx, tool, artifact, on).await?;
    let message = if on {
        format!("You are watching {what}: changes by others will be mailed to you.")
    } else {
        format!("You no longer watch {what}.")
    };
    let next = if form.next.is_empty() {
        p.url()
    } else {
        safe_next(&form.next)
    };
    Ok(redirect_with_flash(&st, &next, &message))
}

#[derive(Debug, Deserialize)]
pub struct UnsubscribeQuery {
    #[serde(default)]
    s: String,
    #[serde(default)]
    sig: String,
}

/// `GET /auth/unsubscribe?s=&sig=`: asks before stopping (mail scanners follow links).
pub async fn unsubscribe_page(
    State(st): State<AppState>,
    page: PageCtx,
    Query(q): Query<UnsubscribeQuery>,
) -> PageResult {
    let title = notify::verify_unsubscribe(st.forge.db(), &q.s, &q.sig).await?;
    Ok(render(&UnsubscribeTpl {
        page: Page::new(&page, "Unsubscribe"),
        s: q.s,
        sig: q.sig,
        done: title.is_none(),
        title: title.unwrap_or_default(),
    }))
}

/// `POST /auth/unsubscribe`: the page's form (`s` and `sig` in the body), or a mail client's
/// one-click POST to the link itself (`s` and `sig` in the query, `List-Unsubscribe=One-Click`
/// in the body, RFC 8058). No login and no CSRF token: the signature is the proof, and all a
/// forged request could do is what the signed link already allows. The body is small (the
/// anonymous body limit) and read only for these fields.
pub async fn unsubscribe(
    State(st): State<AppState>,
    page: PageCtx,
    Query(q): Query<UnsubscribeQuery>,
    body: Bytes,
) -> PageResult {
    let form: UnsubscribeQuery = serde_urlencoded::from_bytes(&body).unwrap_or(UnsubscribeQuery {
        s: String::new(),
        sig: String::new(),
    });
    let (s, sig) = if form.s.is_empty() {
        (q.s, q.sig)
    } else {
        (form.s, form.sig)
    };
    let title = notify::unsubscribe(st.forge.db(), &s, &sig).await?;
    Ok(render(&UnsubscribeTpl {
        page: Page::new(&page, "Unsubscribed"),
        s: String::new(),
        sig: String::new(),
        title: title.unwrap_or_default(),
        done: true,
    }))
}

/// `/auth/notifications`: how mail arrives, and everything watched.
pub async fn settings_page(
    State(st): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> PageResult {
    let db = st.forge.db();
    let mode = notify::mode_of(db, user.id).await?;
    let subs = notify::subscriptions_of(db, user.id)
        .await?
        .into_iter()
        .map(|s| SubscriptionRow {
            id: s.id.to_hex(),
            title: s.title,
            since: crate::views::date(s.created),
        })
        .collect();
    Ok(render(&NotificationsTpl {
        page: Page::new(&page, "Notifications"),
        digest: mode == Mode::Digest,
        subscriptions: subs,
    }))
}

#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    /// `immediate` or `digest`; absent when removing a subscription.
    #[serde(default)]
    mode: String,
    /// A subscription to remove.
    #[serde(default)]
    remove: String,
}

pub async fn save_settings(
    State(st): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    CsrfForm(form): CsrfForm<SettingsForm>,
) -> PageResult {
    let db = st.forge.db();
    let message = if !form.remove.is_empty() {
        let id = bson::oid::ObjectId::parse_str(&form.remove)
            .map_err(|_| Error::NotFound("subscription"))?;
        if !notify::remove_subscription(db, user.id, id).await? {
            return Err(Error::NotFound("subscription").into());
        }
        "Stopped watching it."
    } else {
        let mode = match form.mode.as_str() {
            "immediate" => Mode::Immediate,
            "digest" => Mode::Digest,
            _ => return Err(Error::invalid("mode", "choose immediate or digest").into()),
        };
        notify::set_mode(db, user.id, mode).await?;
        "Mail settings saved."
    };
    Ok(redirect_with_flash(&st, "/auth/notifications", message))
}
