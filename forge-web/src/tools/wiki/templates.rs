//! View models and templates of the wiki pages.

use askama::Template;
use forge_tools::diff::Diff;

use crate::page::Page;
use crate::views::{FormState, WatchButton};

/// The wiki's own navigation (index, labels, recent changes...).
pub struct WikiNav {
    pub base: String,
    /// For the wiki's own search box.
    pub project: String,
    pub mount: String,
    pub home: String,
    pub can_write: bool,
    pub can_admin: bool,
}

pub struct AttachmentRow {
    pub filename: String,
    pub url: String,
    pub size: String,
    pub is_image: bool,
}

pub struct BacklinkRow {
    pub title: String,
    pub url: String,
}

#[derive(Template)]
#[template(path = "wiki/page.html")]
pub struct PageTpl {
    pub page: Page,
    pub nav: WikiNav,
    pub name: String,
    pub url: String,
    pub html: String,
    pub labels: Vec<String>,
    pub version: i32,
    pub latest: i32,
    pub author: String,
    pub updated: String,
    pub deleted: bool,
    pub can_delete: bool,
    pub attachments: Vec<AttachmentRow>,
    pub backlinks: Vec<BacklinkRow>,
    pub max_upload: String,
    /// Watch toggles for this page and the whole wiki (logged-in viewers).
    pub watches: Vec<WatchButton>,
    /// The page's "Discussion" section, rendered HTML (`crate::discussion::section`).
    pub discussion: String,
    /// Views of the whole wiki in the last 30 days (left out when it could not be read).
    pub views: Option<i64>,
    /// The project's statistics page.
    pub stats_url: String,
}

#[derive(Template)]
#[template(path = "wiki/edit.html")]
pub struct EditTpl {
    pub page: Page,
    pub nav: WikiNav,
    pub name: String,
    pub url: String,
    pub is_new: bool,
    pub form: FormState,
    pub preview: Option<String>,
    /// Set after a conflicting save: the version saved meanwhile.
    pub conflict: Option<ConflictView>,
}

pub struct ConflictView {
    pub version: i32,
    pub author: String,
    pub current_text: String,
    pub your_text: String,
    pub merged: bool,
}

pub struct HistoryRow {
    pub version: i32,
    pub author: String,
    pub when: String,
    pub comment: String,
}

#[derive(Template)]
#[template(path = "wiki/history.html")]
pub struct HistoryTpl {
    pub page: Page,
    pub nav: WikiNav,
    pub name: String,
    pub url: String,
    pub rows: Vec<HistoryRow>,
    pub latest: i32,
}

#[derive(Template)]
#[template(path = "wiki/diff.html")]
pub struct DiffTpl {
    pub page: Page,
    pub nav: WikiNav,
    pub name: String,
    pub url: String,
    pub v1: i32,
    pub v2: i32,
    pub diff: std::sync::Arc<Diff>,
    /// Beyond the diff's caps: both versions are offered as downloads instead.
    pub too_large: bool,
}

pub struct ListRow {
    pub name: String,
    pub url: String,
    pub author: String,
    pub updated: String,
    pub labels: Vec<String>,
    pub deleted: bool,
}

#[derive(Template)]
#[template(path = "wiki/list.html")]
pub struct ListTpl {
    pub page: Page,
    pub nav: WikiNav,
    pub heading: String,
    pub rows: Vec<ListRow>,
    pub labels: Vec<(String, i64)>,
}

#[derive(Template)]
#[template(path = "wiki/admin.html")]
pub struct AdminTpl {
    pub page: Page,
    pub nav: WikiNav,
    pub form: FormState,
}
