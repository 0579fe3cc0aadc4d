//! Who may do what with a discussion, as the route extractors and handlers check it: the
//! component's permissions as route markers, the guard of the routes that change one post
//! (its author or a moderator), and the artifact check every thread route makes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use forge_tools::discussion::perm;
use forge_tools::tool::ToolInstance;
use forge_tools::{Error, Forge, ProjectCtx};

use crate::ctx::{Permission, ToolReq, refuse};
use crate::extract::is_api;

/// Writing posts (`post`).
#[derive(Clone, Copy)]
pub struct CanPost;
/// The moderation queue, and changing anyone's posts (`moderate`).
#[derive(Clone, Copy)]
pub struct CanModerate;

impl Permission for CanPost {
    const NAME: &'static str = perm::POST;
}
impl Permission for CanModerate {
    const NAME: &'static str = perm::MODERATE;
}

/// The guard of routes that change one post: a logged-in viewer who may post (their own
/// posts) or moderate (anyone's). Checked from the request head; the domain decides whether
/// this post is theirs.
pub struct PostOrModerate;

impl<S: Send + Sync> FromRequestParts<S> for PostOrModerate {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let api = is_api(parts);
        let Some(t) = parts.extensions.get::<ToolReq>() else {
            let e = Error::Internal("discussion route outside the tool dispatcher".into());
            return Err(refuse(api, e, "/"));
        };
        let refused = if t.viewer().user.is_none() {
            Some(Error::Unauthenticated)
        } else if !(t.can(perm::POST) || t.can(perm::MODERATE)) {
            Some(Error::Forbidden)
        } else {
            None
        };
        match refused {
            Some(e) => Err(refuse(api, e, &t.page.path)),
            None => Ok(Self),
        }
    }
}

/// `NotFound` unless the viewer may read the artifact (its tool says: a private ticket is
/// hidden from most).
pub async fn check_readable(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    artifact: &str,
) -> Result<(), Error> {
    let kind = forge
        .tools()
        .get(&tool.kind)
        .ok_or(Error::NotFound("tool"))?;
    if kind.can_read_artifact(forge, ctx, tool, artifact).await? {
        Ok(())
    } else {
        Err(Error::NotFound("thread"))
    }
}
