//! The discussion component every tool shares: threads of posts attached to any artifact (a
//! ticket, a wiki page, a commit, a forum topic). Posts reply to each other (threaded by a
//! sortable `path`, so a whole thread is one sorted query), render through the sanitizing
//! markdown renderer, keep their edit history, and carry a moderation status (`ok`,
//! `pending`, `spam`): posts by someone without the tool's `unmoderated_post` permission wait
//! in the tool's moderation queue, visible only to their author and moderators.
//!
//! Spam defence lives here too (`spam`): per-user and per-IP rate limits, a honeypot form
//! field, and a link-count rule for new accounts; each decision is logged as an event.
//!
//! A tool names its threads by artifact key (the same key its search documents use, so a new
//! post re-indexes the artifact), and grants the permissions in [`perm`]. A page that lets
//! people post names the thread in its form with a [`ThreadRef`] signed by the site
//! ([`sign_ref`], checked with [`verify_ref`]), and the first post creates the thread
//! ([`post_to`], which creates it only once the post has passed every check).
//!
//! Posts carry files (`attachments`): the shared attachment store keyed by the post's tool
//! and id, changed by whoever may change the post, seen by whoever may see it.

mod actions;
mod attachments;
mod model;
mod sign;
mod spam;

pub use actions::{
    MEMO_POST_COUNTS, MEMO_POSTS, MEMO_THREADS, Moderation, NewPost, Order, ThreadRef,
    count_visible, delete_post, edit_post, existing_thread, get_post, joined_texts,
    live_posts_by_artifact, may_change, moderate, position, post, post_to, posts, queue, retarget,
    set_closed, texts, thread,
};
pub use attachments::{
    attached, attachment, attachments_of, for_attaching, for_attaching_own, post_in_thread,
    remove_attachment,
};
pub use model::{POSTS, Post, PostEdit, Status, THREADS, Thread, delete_tool, ensure_indexes};
pub use sign::{sign_ref, verify_ref};
pub use spam::HONEYPOT;

/// The access entries a tool using discussions starts with (Allura's): anyone logged in may
/// post, and their posts go live at once; moderators are the project's developers.
pub fn default_acl() -> Vec<crate::acl::Ace> {
    use crate::acl::{Ace, Principal};
    vec![
        Ace::allow(Principal::Authenticated, perm::POST),
        Ace::allow(Principal::Authenticated, perm::UNMODERATED_POST),
        Ace::allow(Principal::Developer, perm::MODERATE),
    ]
}

/// Permissions of the component, granted by each tool that uses it.
pub mod perm {
    /// Write a post (a comment, a reply).
    pub const POST: &str = "post";
    /// Posts go live at once instead of waiting for a moderator.
    pub const UNMODERATED_POST: &str = "unmoderated_post";
    /// Approve, mark as spam, edit and delete anyone's posts.
    pub const MODERATE: &str = crate::acl::perm::MODERATE;
}
