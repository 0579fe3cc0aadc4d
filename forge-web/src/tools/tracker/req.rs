//! What the tracker's pages and REST calls share about a request: the permission markers of
//! its routes and ticket numbers and file names from paths.

use forge_tools::Error;
use forge_tools::acl::perm;
use forge_tools::tools::tracker::perm as tperm;

use crate::ctx::Permission;

/// Changing tickets' fields.
#[derive(Clone, Copy)]
pub struct Update;
/// Deleting and moving tickets.
#[derive(Clone, Copy)]
pub struct Delete;
/// Approving tickets that wait for a moderator.
#[derive(Clone, Copy)]
pub struct Moderate;

impl Permission for Update {
    const NAME: &'static str = tperm::UPDATE;
}
impl Permission for Delete {
    const NAME: &'static str = tperm::DELETE;
}
impl Permission for Moderate {
    const NAME: &'static str = perm::MODERATE;
}

/// A ticket number from a path segment; anything else is no ticket.
pub fn num_of(s: &str) -> Result<i64, Error> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(Error::NotFound("ticket"))
}

/// `/<num>/attachments/<file>`.
#[derive(serde::Deserialize)]
pub struct FilePath {
    pub num: String,
    pub file: String,
}
