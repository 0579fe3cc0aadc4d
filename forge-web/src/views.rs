//! View models and askama templates of the site and project pages (the files live in the
//! top-level `templates/` folder). The layout and error page are in `page`.

use std::collections::HashMap;

use askama::Template;
use forge_tools::acl::Role;
use forge_tools::tool::NavEntry;
use forge_tools::users::User;
use forge_tools::{FieldErrors, projects::Project};

use crate::page::{Page, UserInfo};

/// Submitted values and per-field messages, so a refused form comes back as it was typed.
#[derive(Default)]
pub struct FormState {
    values: HashMap<String, String>,
    errors: FieldErrors,
    /// A message about the form as a whole.
    pub message: Option<String>,
}

impl FormState {
    pub fn new(values: &[(&str, &str)]) -> Self {
        Self {
            values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Self::default()
        }
    }

    pub fn with_errors(mut self, errors: FieldErrors) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_message(mut self, m: impl Into<String>) -> Self {
        self.message = Some(m.into());
        self
    }

    pub fn value(&self, field: &str) -> &str {
        self.values.get(field).map_or("", String::as_str)
    }

    pub fn checked(&self, field: &str) -> bool {
        matches!(self.value(field), "on" | "true" | "1")
    }

    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }

    /// Messages for fields the form has no input for.
    pub fn other_errors(&self, known: &[&str]) -> Vec<String> {
        self.errors
            .0
            .iter()
            .filter(|(f, _)| !known.contains(&f.as_str()))
            .map(|(_, m)| m.clone())
            .collect()
    }
}

pub struct ProjectCard {
    pub name: String,
    pub url: String,
    pub summary: String,
    pub private: bool,
}

impl From<&Project> for ProjectCard {
    fn from(p: &Project) -> Self {
        Self {
            name: p.name.clone(),
            url: p.url(),
            summary: p.summary.clone(),
            private: !p.is_public(),
        }
    }
}

pub struct MemberRow {
    pub username: String,
    pub display_name: String,
    pub role: String,
}

impl From<(User, Role)> for MemberRow {
    fn from((u, r): (User, Role)) -> Self {
        Self {
            username: u.username,
            display_name: u.display_name,
            role: r.as_str().into(),
        }
    }
}

pub struct ToolRow {
    pub kind: String,
    pub kind_title: String,
    pub mount: String,
    pub label: String,
    pub ordinal: i32,
    pub url: String,
}

pub struct KindRow {
    pub kind: String,
    pub title: String,
    pub needs_url: bool,
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

pub struct UserRow {
    pub username: String,
    pub email: String,
    pub site_admin: bool,
    pub created: String,
}

pub struct TaskRow {
    pub id: String,
    pub name: String,
    pub state: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub priority: u8,
    pub created: String,
    /// How long the last attempt ran, when it finished.
    pub took: String,
    pub args: String,
    pub last_error: String,
}

impl From<forge_tasks::TaskRecord> for TaskRow {
    fn from(t: forge_tasks::TaskRecord) -> Self {
        let took = match (t.started, t.finished) {
            (Some(s), Some(f)) => {
                let ms = f.timestamp_millis() - s.timestamp_millis();
                if ms < 1000 {
                    format!("{ms} ms")
                } else {
                    format!("{:.1} s", ms as f64 / 1000.0)
                }
            }
            _ => String::new(),
        };
        Self {
            id: t.id.to_string(),
            name: t.name,
            state: t.state.as_str().into(),
            attempts: t.attempts,
            max_attempts: t.max_attempts,
            priority: t.priority,
            created: date(t.created),
            took,
            args: t.args.chars().take(120).collect(),
            last_error: t.last_error.unwrap_or_default(),
        }
    }
}

/// A watch/unwatch toggle (see `templates/watch.html`).
pub struct WatchButton {
    /// `/p/<project>/_watch`.
    pub action: String,
    pub tool: String,
    pub artifact: String,
    pub watching: bool,
    /// "project", "wiki", "page".
    pub label: String,
    pub next: String,
}

pub struct SubscriptionRow {
    pub id: String,
    pub title: String,
    pub since: String,
}

#[derive(Template)]
#[template(path = "auth/notifications.html")]
pub struct NotificationsTpl {
    pub page: Page,
    pub digest: bool,
    pub subscriptions: Vec<SubscriptionRow>,
}

#[derive(Template)]
#[template(path = "auth/unsubscribe.html")]
pub struct UnsubscribeTpl {
    pub page: Page,
    pub s: String,
    pub sig: String,
    pub title: String,
    pub done: bool,
}

#[derive(Template)]
#[template(path = "site/search.html")]
pub struct SearchTpl {
    pub page: Page,
    pub q: String,
    pub project: String,
    pub kind: String,
    pub tool: String,
    /// Why the query could not run, for the person who typed it.
    pub error: String,
    pub searched: bool,
    pub total: usize,
    pub hits: Vec<forge_tools::search::Hit>,
    /// `(name, count, link)`.
    pub type_facets: Vec<(String, u64, String)>,
    pub project_facets: Vec<(String, u64, String)>,
    pub current: usize,
    pub pages: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "site/tasks.html")]
pub struct SiteTasksTpl {
    pub page: Page,
    pub counts: Vec<(String, i64)>,
    /// Messages waiting on the broker, by queue (empty when tasks run in-process).
    pub depth: Vec<(String, u64)>,
    pub names: Vec<String>,
    pub state: String,
    pub name: String,
    pub tasks: Vec<TaskRow>,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomeTpl {
    pub page: Page,
    pub projects: Vec<ProjectCard>,
}

#[derive(Template)]
#[template(path = "project/directory.html")]
pub struct DirectoryTpl {
    pub page: Page,
    pub projects: Vec<ProjectCard>,
}

#[derive(Template)]
#[template(path = "project/add.html")]
pub struct AddProjectTpl {
    pub page: Page,
    pub form: FormState,
}

#[derive(Template)]
#[template(path = "project/home.html")]
pub struct ProjectHomeTpl {
    pub page: Page,
    pub summary: String,
    pub description_html: String,
    pub members: Vec<MemberRow>,
    pub tools: Vec<NavEntry>,
    /// Set on a personal project: the user's profile.
    pub profile: Option<UserInfo>,
    pub their_projects: Vec<ProjectCard>,
    /// "Watch project" for a logged-in viewer.
    pub watches: Vec<WatchButton>,
    /// "Follow" (the project, or on a personal project its user) for a logged-in viewer.
    pub follow: Option<FollowButton>,
    /// Recent activity the viewer may see (the project's, or on a personal project its
    /// user's).
    pub activity: Vec<ActivityRow>,
    /// On a personal project: what its user did in public projects over the last 12 months,
    /// `(label, value)`; empty when it could not be read.
    pub user_figures: Vec<(&'static str, i64)>,
    /// The project's statistics page.
    pub stats_url: String,
}

/// A follow/unfollow form.
pub struct FollowButton {
    pub action: String,
    pub following: bool,
    /// "project" or the username.
    pub label: String,
    pub next: String,
}

/// One activity as lists show it ("alice edited page Home in Project X, 2026-01-02 10:00").
pub struct ActivityRow {
    pub who: String,
    pub verb: &'static str,
    pub title: String,
    pub url: String,
    pub summary: String,
    pub project: String,
    pub project_url: String,
    pub when: String,
}

impl From<&forge_tools::activity::stream::Entry> for ActivityRow {
    fn from(e: &forge_tools::activity::stream::Entry) -> Self {
        Self {
            who: e.user.clone().unwrap_or_else(|| "someone".into()),
            verb: e.verb(),
            title: e.activity.title.clone(),
            url: e.activity.url.clone(),
            summary: e.activity.summary.clone().unwrap_or_default(),
            project: e.project_name.clone(),
            project_url: e.project_url.clone(),
            when: date(e.timestamp),
        }
    }
}

#[derive(Template)]
#[template(path = "activity/dashboard.html")]
pub struct DashboardTpl {
    pub page: Page,
    pub activity: Vec<ActivityRow>,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub projects: Vec<ProjectCard>,
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
pub struct SettingsTpl {
    pub page: Page,
    pub form: FormState,
    pub can_delete: bool,
}

#[derive(Template)]
#[template(path = "admin/members.html")]
pub struct MembersTpl {
    pub page: Page,
    pub members: Vec<MemberRow>,
    pub form: FormState,
}

#[derive(Template)]
#[template(path = "admin/tools.html")]
pub struct ToolsTpl {
    pub page: Page,
    pub tools: Vec<ToolRow>,
    pub kinds: Vec<KindRow>,
    pub form: FormState,
}

#[derive(Template)]
#[template(path = "auth/signup.html")]
pub struct SignupTpl {
    pub page: Page,
    pub form: FormState,
}

#[derive(Template)]
#[template(path = "auth/login.html")]
pub struct LoginTpl {
    pub page: Page,
    pub form: FormState,
    pub next: String,
}

#[derive(Template)]
#[template(path = "auth/tokens.html")]
pub struct TokensTpl {
    pub page: Page,
    pub tokens: Vec<TokenRow>,
    pub new_token: Option<String>,
    pub form: FormState,
}

#[derive(Template)]
#[template(path = "site/admin.html")]
pub struct SiteAdminTpl {
    pub page: Page,
    pub users: Vec<UserRow>,
    pub projects: Vec<ProjectCard>,
    pub task_counts: Vec<(String, i64)>,
    pub tasks: Vec<TaskRow>,
    /// Site figures of the last 30 days: `(label, value)`; empty when they could not be read.
    pub site_figures: Vec<(&'static str, i64)>,
}

/// Short date for tables.
pub fn date(d: bson::DateTime) -> String {
    chrono::DateTime::from_timestamp_millis(d.timestamp_millis())
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// A range link of the statistics page.
pub struct RangeLink {
    pub label: &'static str,
    pub url: String,
    pub current: bool,
}

/// One day or month of a statistics table.
pub struct StatsRow {
    /// Epoch milliseconds of its start (UTC): the live updates' `t`.
    pub t: i64,
    pub label: String,
    pub v: i64,
}

/// One series of the statistics page: its chart's heading figure and table.
pub struct StatsSeries {
    pub name: String,
    pub label: String,
    /// The total over the range (the peak, for visitors).
    pub figure: i64,
    /// What the figure is ("in the last 30 days").
    pub figure_text: String,
    /// The figure is the highest value rather than the sum.
    pub peak: bool,
    pub caption: String,
    pub csv: String,
    /// Newest first.
    pub rows: Vec<StatsRow>,
}

#[derive(Template)]
#[template(path = "project/stats.html")]
pub struct StatsTpl {
    pub page: Page,
    /// `Day` or `Month`: the tables' first column.
    pub step: &'static str,
    /// `day` or `month`: which live updates apply.
    pub interval: &'static str,
    pub ranges: Vec<RangeLink>,
    pub series: Vec<StatsSeries>,
    pub csv_all: String,
    pub live_url: String,
    /// The project's key in live updates (`<shortname>` or `u/<username>`).
    pub project_key: String,
    pub script: String,
    pub uplot_js: &'static str,
    pub uplot_css: &'static str,
    pub uplot_license: &'static str,
}

/// A small figure on a page (clones on a repository, views on a wiki...): one that fails to
/// load is logged and left out rather than failing the page.
pub async fn figure<T>(
    what: &str,
    load: impl std::future::Future<Output = forge_tools::Result<T>>,
) -> Option<T> {
    match load.await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, figure = what, "statistics figure left out");
            None
        }
    }
}

/// Figures `(series, value)` as a page shows them: with their labels, in the labels' order
/// (series without a label are left out).
pub fn labelled(
    found: &[(String, i64)],
    labels: &[(&str, &'static str)],
) -> Vec<(&'static str, i64)> {
    labels
        .iter()
        .filter_map(|(series, label)| {
            found
                .iter()
                .find(|(s, _)| s == series)
                .map(|(_, v)| (*label, *v))
        })
        .collect()
}
