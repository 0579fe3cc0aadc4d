//! View models and templates of the tracker's pages (`templates/tracker/`).

use askama::Template;

use crate::page::Page;
use crate::views::{FormState, WatchButton};

/// The tracker's own navigation.
pub struct TrackerNav {
    pub base: String,
    pub label: String,
    /// For the tracker's search box.
    pub project: String,
    pub mount: String,
    pub can_create: bool,
    pub can_admin: bool,
    pub can_moderate: bool,
    pub signed_in: bool,
    /// `?status=open&q=assigned_to:me` and the like.
    pub assigned_url: String,
    pub reported_url: String,
}

/// One custom field's input on a ticket form.
pub struct FieldInput {
    /// The form field's name: the custom field's name (`_priority`).
    pub name: String,
    pub label: String,
    /// `string`, `number`, `boolean`, `select`, `user`, `milestone`, `date`.
    pub kind: &'static str,
    pub required: bool,
    /// Choices of a select or milestone field.
    pub options: Vec<String>,
    pub value: String,
    pub error: Option<String>,
}

impl FieldInput {
    pub fn checked(&self) -> bool {
        matches!(self.value.as_str(), "true" | "on" | "yes" | "1")
    }

    pub fn is_choice(&self) -> bool {
        matches!(self.kind, "select" | "milestone")
    }

    pub fn is_selected(&self, option: &str) -> bool {
        self.value == option
    }
}

/// A filter of the ticket list on a custom field.
pub struct FilterField {
    pub name: String,
    pub label: String,
    pub kind: &'static str,
    pub options: Vec<String>,
    pub value: String,
}

impl FilterField {
    pub fn is_selected(&self, option: &str) -> bool {
        self.value == option
    }
}

/// The values of the list's filter form.
pub struct FilterForm {
    pub status: String,
    /// `(value, label)`.
    pub status_options: Vec<(String, String)>,
    pub label: String,
    pub milestone: String,
    pub milestones: Vec<String>,
    pub assigned_to: String,
    pub reported_by: String,
    pub fields: Vec<FilterField>,
}

impl FilterForm {
    pub fn status_is(&self, v: &str) -> bool {
        self.status == v
    }

    pub fn milestone_is(&self, v: &str) -> bool {
        self.milestone == v
    }
}

pub struct ColumnHead {
    pub key: String,
    pub label: String,
    /// Where clicking the header sorts by this column (none for unsortable columns).
    pub sort_url: Option<String>,
    /// "▲", "▼" or "".
    pub arrow: &'static str,
}

pub struct ColumnChoice {
    pub key: String,
    pub label: String,
    pub checked: bool,
}

pub struct Cell {
    pub text: String,
    pub link: Option<String>,
    pub is_summary: bool,
}

pub struct ListRow {
    pub num: i64,
    pub cells: Vec<Cell>,
    pub private: bool,
    pub pending: bool,
}

pub struct BinRow {
    pub id: String,
    pub name: String,
    pub url: String,
    /// `None` when its query no longer runs.
    pub count: Option<u64>,
    pub shared: bool,
    pub can_delete: bool,
}

/// What the bulk-edit form offers.
pub struct BulkForm {
    pub statuses: Vec<String>,
    pub milestones: Vec<String>,
    /// `(name, label)` of the custom fields.
    pub fields: Vec<(String, String)>,
}

pub struct Pager {
    pub current: usize,
    pub pages: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "tracker/list.html")]
pub struct ListTpl {
    pub page: Page,
    pub nav: TrackerNav,
    pub help: &'static str,
    pub filter: FilterForm,
    pub q: String,
    pub sort: String,
    /// The query the list ran (filters and free text together), for saving.
    pub effective_q: String,
    pub columns: Vec<ColumnHead>,
    pub column_choices: Vec<ColumnChoice>,
    pub rows: Vec<ListRow>,
    /// Why the query could not run.
    pub error: String,
    pub total: u64,
    pub pager: Pager,
    pub bins: Vec<BinRow>,
    pub can_update: bool,
    pub can_save_shared: bool,
    pub bulk: BulkForm,
    /// This list's address, to come back to after a bulk edit.
    pub here: String,
}

#[derive(Template)]
#[template(path = "tracker/new.html")]
pub struct NewTpl {
    pub page: Page,
    pub nav: TrackerNav,
    pub form: FormState,
    pub statuses: Vec<String>,
    pub can_set_status: bool,
    pub milestones: Vec<String>,
    pub fields: Vec<FieldInput>,
    pub honeypot: &'static str,
    pub other_errors: Vec<String>,
    pub anonymous: bool,
}

impl NewTpl {
    pub fn status_is(&self, s: &str) -> bool {
        self.form.value("status") == s
    }

    pub fn milestone_is(&self, m: &str) -> bool {
        self.form.value("milestone") == m
    }
}

/// The edit form of a ticket (for those who may update tickets).
pub struct EditView {
    pub form: FormState,
    /// Hidden inputs: what the form started from, so only what the editor changed is sent.
    pub orig: Vec<(String, String)>,
    pub statuses: Vec<String>,
    pub milestones: Vec<String>,
    pub fields: Vec<FieldInput>,
    pub other_errors: Vec<String>,
}

impl EditView {
    pub fn status_is(&self, s: &str) -> bool {
        self.form.value("status") == s
    }

    pub fn milestone_is(&self, m: &str) -> bool {
        self.form.value("milestone") == m
    }
}

pub struct FieldChangeRow {
    pub field: String,
    pub old: String,
    pub new: String,
    /// A change whose values are not shown (the description).
    pub edited_only: bool,
}

pub struct HistoryEntry {
    pub anchor: String,
    pub author: String,
    pub when: String,
    pub changes: Vec<FieldChangeRow>,
    pub note_html: String,
}

pub struct LinkRow {
    pub title: String,
    pub url: String,
}

pub struct FileRow {
    pub filename: String,
    pub url: String,
    pub size: String,
    pub is_image: bool,
}

pub struct ImportedRow {
    pub filename: String,
    /// Only `http(s)` addresses are linked.
    pub url: Option<String>,
    pub size: String,
}

#[derive(Template)]
#[template(path = "tracker/ticket.html")]
pub struct TicketTpl {
    pub page: Page,
    pub nav: TrackerNav,
    pub url: String,
    pub num: i64,
    pub summary: String,
    pub status: String,
    pub closed: bool,
    /// `(label, list URL)`.
    pub labels: Vec<(String, String)>,
    pub assigned_to: String,
    pub reported_by: String,
    /// `(name, list URL)`.
    pub milestone: Option<(String, String)>,
    pub private: bool,
    pub pending: bool,
    pub created: String,
    pub modified: String,
    pub version: i64,
    pub votes_up: i64,
    pub votes_down: i64,
    pub my_vote: i32,
    pub can_vote: bool,
    /// `(label, value)` of the custom fields.
    pub fields: Vec<(String, String)>,
    pub description_html: String,
    pub backlinks: Vec<LinkRow>,
    pub attachments: Vec<ImportedRow>,
    /// Files attached here.
    pub files: Vec<FileRow>,
    pub can_attach: bool,
    pub max_upload: String,
    pub history: Vec<HistoryEntry>,
    /// The comments: the discussion section's HTML.
    pub discussion_html: String,
    pub edit: Option<EditView>,
    /// Set after a refused save: what went wrong, above the form.
    pub conflict: Option<String>,
    pub watches: Vec<WatchButton>,
    pub can_delete: bool,
    pub can_moderate: bool,
    /// The queue of tickets waiting for a moderator.
    pub moderate_url: String,
}

pub struct MilestoneRow {
    pub name: String,
    pub description: String,
    pub due: String,
    pub closed: bool,
    pub closed_tickets: u64,
    pub total: u64,
    pub percent: u64,
    pub url: String,
    pub open_url: String,
}

#[derive(Template)]
#[template(path = "tracker/milestones.html")]
pub struct MilestonesTpl {
    pub page: Page,
    pub nav: TrackerNav,
    pub rows: Vec<MilestoneRow>,
}

/// One custom field row of the settings form, as typed.
pub struct FieldRow {
    pub index: usize,
    pub name: String,
    pub label: String,
    pub kind: String,
    pub options: String,
    pub required: bool,
    pub default: String,
    pub show_in_list: bool,
}

impl FieldRow {
    pub fn kind_is(&self, k: &str) -> bool {
        self.kind == k
    }
}

/// One milestone row of the settings form, as typed.
pub struct MilestoneFormRow {
    pub index: usize,
    pub name: String,
    pub description: String,
    pub due: String,
    pub closed: bool,
}

#[derive(Template)]
#[template(path = "tracker/admin.html")]
pub struct AdminTpl {
    pub page: Page,
    pub nav: TrackerNav,
    pub form: FormState,
    pub fields: Vec<FieldRow>,
    pub milestones: Vec<MilestoneFormRow>,
    pub types: Vec<&'static str>,
    pub anonymous: bool,
    /// Every message, by section (a section may have several).
    pub errors: forge_tools::FieldErrors,
}

impl AdminTpl {
    pub fn errors_for(&self, section: &str) -> Vec<String> {
        self.errors
            .0
            .iter()
            .filter(|(f, _)| f == section)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

pub struct PendingRow {
    pub num: i64,
    pub url: String,
    pub summary: String,
    pub reported_by: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "tracker/pending.html")]
pub struct PendingTpl {
    pub page: Page,
    pub nav: TrackerNav,
    pub rows: Vec<PendingRow>,
    pub total: u64,
    pub pager: Pager,
    /// This page's address, to come back to after approving.
    pub here: String,
    /// The discussion's queue of comments waiting for a moderator.
    pub comments_queue: String,
}
