//! Spam defence for posts: rate limits per account and per IP address (counted in the store,
//! so every node shares them), a honeypot field that people never see and bots fill in, and
//! a rule that holds link-heavy posts from new accounts for a moderator. Each decision is
//! logged as an event (`discussion.spam.*`).

use bson::{DateTime, doc};

use super::model::Status;
use crate::error::{Error, Result};
use crate::project_ctx::ProjectCtx;
use crate::tool::{Forge, ToolInstance};
use crate::viewer::Viewer;

/// The honeypot field's name on post forms (hidden from people by CSS and `aria-hidden`).
pub const HONEYPOT: &str = "website";
/// Posts an account may write per hour (moderators are not limited).
pub const POSTS_PER_USER_HOUR: u32 = 120;
/// Posts per IP address per hour, whoever writes them.
pub const POSTS_PER_IP_HOUR: u32 = 300;
/// Accounts younger than this are "new" for the link rule.
const NEW_ACCOUNT_MS: i64 = 2 * 24 * 3_600_000;
/// Links a new account's post may carry before it waits for a moderator.
pub const NEW_ACCOUNT_LINKS: usize = 2;

fn log(forge: &Forge, viewer: &Viewer, ctx: &ProjectCtx, tool: &ToolInstance, what: &str) {
    crate::tool::record_event(
        forge,
        &format!("discussion.spam.{what}"),
        viewer,
        ctx,
        tool,
        doc! {},
    );
}

/// Refuses a post that trips the honeypot or a rate limit.
pub(super) async fn admit(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    honeypot: Option<&str>,
    moderator: bool,
) -> Result<()> {
    if honeypot.is_some_and(|h| !h.trim().is_empty()) {
        log(forge, viewer, ctx, tool, "honeypot");
        return Err(Error::invalid(
            "text",
            "This post was refused as automated. If you are a person, leave the \"website\" field empty.",
        ));
    }
    if moderator {
        return Ok(());
    }
    if let Some(user) = &viewer.user {
        let hit = crate::ratelimit::hit(forge.db(), "post", user.id, POSTS_PER_USER_HOUR).await;
        if hit.is_err() {
            log(forge, viewer, ctx, tool, "rate_user");
        }
        hit?;
    }
    if let Some(ip) = &viewer.ip {
        let hit = crate::ratelimit::hit_key(forge.db(), "post-ip", ip, POSTS_PER_IP_HOUR).await;
        if hit.is_err() {
            log(forge, viewer, ctx, tool, "rate_ip");
        }
        hit?;
    }
    Ok(())
}

/// The status a post gets: `ok` for those who may post unmoderated, unless a new account
/// posts more links than [`NEW_ACCOUNT_LINKS`]; otherwise `pending`.
pub(super) fn status_for(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    text: &str,
    unmoderated: bool,
) -> Status {
    if !unmoderated {
        return Status::Pending;
    }
    let new_account = viewer.user.as_ref().is_some_and(|u| {
        DateTime::now().timestamp_millis() - u.created.timestamp_millis() < NEW_ACCOUNT_MS
    });
    if new_account
        && !ctx.can_tool(tool, super::perm::MODERATE)
        && count_links(text) > NEW_ACCOUNT_LINKS
    {
        log(forge, viewer, ctx, tool, "links");
        return Status::Pending;
    }
    Status::Ok
}

/// Links in markdown text: URLs written out and `[..](..)` links (an over-count is fine).
pub fn count_links(text: &str) -> usize {
    let lower = text.to_ascii_lowercase();
    lower.matches("http://").count()
        + lower.matches("https://").count()
        + lower.matches("www.").count()
        - lower.matches("://www.").count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_links_once_each() {
        assert_eq!(count_links("no links"), 0);
        assert_eq!(count_links("see https://a.example and http://b.example"), 2);
        assert_eq!(count_links("https://www.example.org"), 1);
        assert_eq!(count_links("www.example.org and [x](https://y.example)"), 2);
    }
}
