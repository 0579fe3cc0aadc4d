//! What the forum's pages share: the moderators' route marker, the navigation, topic ids
//! from paths, topic rows, and forms read as name/value pairs.

use bson::oid::ObjectId;
use forge_tools::Error;
use forge_tools::acl::perm;
use forge_tools::tools::forum::model::{Forum, Topic};
use forge_tools::tools::forum::topics;

use super::views::{ForumNav, TopicRow};
use crate::ctx::{Permission, ToolReq};
use crate::views::date;

/// Topics a page of a forum lists.
pub const PER_PAGE: u64 = 25;

/// Moderating topics and people (`moderate`).
#[derive(Clone, Copy)]
pub struct Moderate;

impl Permission for Moderate {
    const NAME: &'static str = perm::MODERATE;
}

pub fn nav<P>(t: &ToolReq<P>) -> ForumNav {
    ForumNav {
        base: t.base.clone(),
        label: t.tool.label.clone(),
        project: t.ctx.project.shortname.clone(),
        mount: t.tool.mount.clone(),
        can_moderate: t.can(perm::MODERATE),
        can_admin: t.can(perm::ADMIN),
    }
}

/// A topic id from a path segment; anything else is no topic.
pub fn topic_id(s: &str) -> Result<ObjectId, Error> {
    ObjectId::parse_str(s.trim()).map_err(|_| Error::NotFound("topic"))
}

/// The feed of the tool (served by the activity feeds, below every tool's mount).
pub fn feed_url<P>(t: &ToolReq<P>) -> String {
    format!("{}feed.atom", t.base)
}

fn author(name: &str) -> String {
    if name.is_empty() {
        "anonymous".into()
    } else {
        name.to_owned()
    }
}

pub fn topic_row<P>(t: &ToolReq<P>, forum: &Forum, k: &Topic) -> TopicRow {
    TopicRow {
        subject: k.subject.clone(),
        url: topics::url(&t.ctx, &t.tool, forum, k.id),
        author: author(&k.author),
        replies: k.replies(),
        views: k.num_views,
        last_author: author(&k.last_author),
        last_when: date(k.last_post_at),
        sticky: k.sticky,
        closed: k.closed,
        announcement: k.announcement,
        forum_name: forum.name.clone(),
    }
}

/// The rows of announcements whose forum the viewer sees (in `forums`).
pub fn announcement_rows<P>(t: &ToolReq<P>, forums: &[Forum], list: &[Topic]) -> Vec<TopicRow> {
    list.iter()
        .filter_map(|k| {
            let f = forums.iter().find(|f| f.id == k.forum_id && !f.deleted)?;
            Some(topic_row(t, f, k))
        })
        .collect()
}

/// A form read as name/value pairs, in order (the admin page's inputs are named per forum).
#[derive(Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), "on" | "true" | "1" | "yes")
    }

    /// Text of a textarea, with the browser's CRLF line ends made LF.
    pub fn text(&self, name: &str) -> String {
        self.get(name).replace("\r\n", "\n")
    }
}
