//! View models and askama templates of the forum's pages (`templates/forum/`). Everything a
//! person typed is escaped by askama; only rendered markdown (sanitized) and the discussion
//! section (built from it) are shown with `|safe`.

use askama::Template;

use crate::page::Page;
use crate::views::{FormState, WatchButton};

/// The forum tool's navigation, above each of its pages.
pub struct ForumNav {
    /// The tool's URL, with a trailing slash.
    pub base: String,
    pub label: String,
    pub project: String,
    pub mount: String,
    pub can_moderate: bool,
    pub can_admin: bool,
}

/// The last post of a forum, as the index shows it.
pub struct LastPostView {
    pub author: String,
    pub when: String,
    pub subject: String,
    pub url: String,
}

/// One forum on the index.
pub struct ForumRow {
    pub shortname: String,
    pub name: String,
    pub description: String,
    pub url: String,
    pub topics: i64,
    pub posts: i64,
    pub last: Option<LastPostView>,
    pub hidden: bool,
    pub deleted: bool,
    /// The new-topic form, for those who may post.
    pub new_url: Option<String>,
}

/// One topic in a list.
pub struct TopicRow {
    pub subject: String,
    pub url: String,
    pub author: String,
    pub replies: i64,
    pub views: i64,
    pub last_author: String,
    pub last_when: String,
    pub sticky: bool,
    pub closed: bool,
    pub announcement: bool,
    /// The forum it is in (announcements are listed on every forum).
    pub forum_name: String,
}

#[derive(Template)]
#[template(path = "forum/index.html")]
pub struct IndexTpl {
    pub page: Page,
    pub nav: ForumNav,
    pub announcements: Vec<TopicRow>,
    pub forums: Vec<ForumRow>,
    pub feed_url: String,
}

#[derive(Template)]
#[template(path = "forum/forum.html")]
pub struct ForumTpl {
    pub page: Page,
    pub nav: ForumNav,
    pub name: String,
    pub description: String,
    pub hidden: bool,
    pub announcements: Vec<TopicRow>,
    pub topics: Vec<TopicRow>,
    pub total: u64,
    pub current: usize,
    pub pages: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub posting_address: String,
    pub new_url: Option<String>,
    pub watch: Option<WatchButton>,
    pub feed_url: String,
}

#[derive(Template)]
#[template(path = "forum/new.html")]
pub struct NewTopicTpl {
    pub page: Page,
    pub nav: ForumNav,
    pub forum_name: String,
    pub forum_url: String,
    pub action: String,
    pub form: FormState,
    pub honeypot: &'static str,
    /// The text rendered, when the writer asked for a preview.
    pub preview: Option<String>,
    pub anonymous: bool,
    pub other_errors: Vec<String>,
}

/// A forum a topic may be moved to.
pub struct ForumChoice {
    pub shortname: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "forum/topic.html")]
pub struct TopicTpl {
    pub page: Page,
    pub nav: ForumNav,
    pub subject: String,
    pub forum_name: String,
    pub forum_url: String,
    pub author: String,
    pub created: String,
    pub sticky: bool,
    pub closed: bool,
    pub announcement: bool,
    /// Not live yet: only its author and moderators see it.
    pub pending: bool,
    pub is_author: bool,
    pub can_moderate: bool,
    /// Where the moderators' forms go (`.../moderate`).
    pub moderate_url: String,
    pub move_to: Vec<ForumChoice>,
    pub watches: Vec<WatchButton>,
    /// The discussion section, rendered HTML.
    pub discussion: String,
}

/// A forum's row on the admin page, its edit form as saved or as sent.
pub struct AdminForumRow {
    pub shortname: String,
    pub url: String,
    pub position: i32,
    pub form: FormState,
    pub hidden: bool,
    pub refuse_unknown: bool,
    pub deleted: bool,
    pub topics: i64,
}

#[derive(Template)]
#[template(path = "forum/admin.html")]
pub struct AdminTpl {
    pub page: Page,
    pub nav: ForumNav,
    pub add: FormState,
    pub forums: Vec<AdminForumRow>,
    pub anonymous_posting: bool,
    pub blocked: Vec<String>,
    pub can_moderate: bool,
}
