//! The aggregations the forge ships: per project per day and month, per user per month, and
//! site-wide per day. The series names are those of `GET /rest/p/<project>/stats`, plus
//! `views:<mount>` and `clones:<mount>` per tool.

use super::{AggDef, Bucket, Emitter, LoggedEvent, Output, Reduce, Scope};

/// Project series, from the events that feed them.
pub const PROJECT_SERIES: &[&str] = &[
    "views",
    "visitors",
    "clones",
    "archives",
    "pushes",
    "commits",
    "wiki_edits",
    "tickets_opened",
    "tickets_closed",
    "posts",
];

pub const PROJECT_DAY: &str = "project_day";
pub const PROJECT_MONTH: &str = "project_month";
pub const PROJECT_VISITORS_DAY: &str = "project_visitors_day";
pub const PROJECT_VISITORS_MONTH: &str = "project_visitors_month";
pub const USER_MONTH: &str = "user_month";
pub const SITE_DAY: &str = "site_day";
pub const SITE_ACTIVE_DAY: &str = "site_active_day";

static PROJECT_OUTPUTS: [Output; 4] = [
    Output {
        name: PROJECT_DAY,
        reduce: Reduce::Sum,
        scope: Scope::Project,
        bucket: Bucket::Month,
    },
    Output {
        name: PROJECT_MONTH,
        reduce: Reduce::Sum,
        scope: Scope::Project,
        bucket: Bucket::Year,
    },
    Output {
        name: PROJECT_VISITORS_DAY,
        reduce: Reduce::Distinct,
        scope: Scope::Project,
        bucket: Bucket::Month,
    },
    Output {
        name: PROJECT_VISITORS_MONTH,
        reduce: Reduce::Distinct,
        scope: Scope::Project,
        bucket: Bucket::Year,
    },
];

static USER_OUTPUTS: [Output; 1] = [Output {
    name: USER_MONTH,
    reduce: Reduce::Sum,
    scope: Scope::User,
    bucket: Bucket::Year,
}];

static SITE_OUTPUTS: [Output; 2] = [
    Output {
        name: SITE_DAY,
        reduce: Reduce::Sum,
        scope: Scope::Site,
        bucket: Bucket::Month,
    },
    Output {
        name: SITE_ACTIVE_DAY,
        reduce: Reduce::Distinct,
        scope: Scope::Site,
        bucket: Bucket::Month,
    },
];

/// Every built-in aggregation.
pub static ALL: [AggDef; 3] = [
    AggDef {
        name: "project",
        outputs: &PROJECT_OUTPUTS,
        xmap: project,
    },
    AggDef {
        name: "user",
        outputs: &USER_OUTPUTS,
        xmap: user,
    },
    AggDef {
        name: "site",
        outputs: &SITE_OUTPUTS,
        xmap: site,
    },
];

/// The project series an event counts in (besides views, which also count per tool).
fn project_series(e: &LoggedEvent) -> Option<&'static str> {
    Some(match e.kind.as_str() {
        "page.view" => "views",
        "repo.clone" | "repo.fetch" => "clones",
        "repo.archive" => "archives",
        "repo.push" => "pushes",
        "repo.commit" => "commits",
        "wiki.page.create" | "wiki.page.edit" => "wiki_edits",
        "tracker.ticket.open" => "tickets_opened",
        "tracker.ticket.close" => "tickets_closed",
        "discussion.post" if post_is_live(e) => "posts",
        // A held post counts once a moderator lets it in.
        "discussion.moderate.approve" => "posts",
        _ => return None,
    })
}

/// A post published at once (not held for moderation).
fn post_is_live(e: &LoggedEvent) -> bool {
    e.extra
        .as_document()
        .and_then(|d| d.get_str("status").ok())
        .is_none_or(|s| s == "ok")
}

fn project(e: &LoggedEvent, out: &mut Emitter) {
    let Some(p) = e.project_key() else {
        return;
    };
    let Some(series) = project_series(e) else {
        return;
    };
    let (day, month) = (e.day(), e.month());
    out.emit(0, format!("{p}/{series}/{day}"), 1);
    out.emit(1, format!("{p}/{series}/{month}"), 1);
    // Clones per repository too.
    if let ("clones", Some(mount)) = (series, e.context.tool.as_deref()) {
        out.emit(0, format!("{p}/clones:{mount}/{day}"), 1);
        out.emit(1, format!("{p}/clones:{mount}/{month}"), 1);
    }
    if series == "views" {
        if let Some(mount) = e.context.tool.as_deref() {
            out.emit(0, format!("{p}/views:{mount}/{day}"), 1);
            out.emit(1, format!("{p}/views:{mount}/{month}"), 1);
        }
        if let Some(who) = e.who() {
            out.member(2, format!("{p}/visitors/{day}"), who);
            out.member(3, format!("{p}/visitors/{month}"), who);
        }
    }
}

/// A user's month: what they made (views are not counted). Events of private projects are
/// left out: a profile must not tell what someone does where its viewer cannot look.
fn user(e: &LoggedEvent, out: &mut Emitter) {
    if e.context.private {
        return;
    }
    let Some(u) = e.context.user.as_deref() else {
        return;
    };
    let series = match e.kind.as_str() {
        "repo.commit" => "commits",
        "wiki.page.create" | "wiki.page.edit" => "edits",
        "tracker.ticket.open" => "tickets",
        "discussion.post" if post_is_live(e) => "posts",
        _ => return,
    };
    out.emit(0, format!("{u}/{series}/{}", e.month()), 1);
}

fn site(e: &LoggedEvent, out: &mut Emitter) {
    let day = e.day();
    let series = match e.kind.as_str() {
        "user.signup" => Some("signups"),
        "user.login" => Some("logins"),
        "project.create" => Some("projects_created"),
        _ => None,
    };
    if let Some(s) = series {
        out.emit(0, format!("site/{s}/{day}"), 1);
    }
    if let Some(u) = e.context.user.as_deref() {
        out.member(1, format!("site/active_users/{day}"), u);
    }
}

/// The output and key prefix of a project series at an interval (`day` or `month`).
pub fn project_output(series: &str, month: bool) -> Option<&'static str> {
    let per_tool = |prefix: &str| {
        series
            .strip_prefix(prefix)
            .is_some_and(|m| !m.is_empty() && !m.contains('/'))
    };
    let known = PROJECT_SERIES.contains(&series) || per_tool("views:") || per_tool("clones:");
    if !known {
        return None;
    }
    Some(match (series == "visitors", month) {
        (true, false) => PROJECT_VISITORS_DAY,
        (true, true) => PROJECT_VISITORS_MONTH,
        (false, false) => PROJECT_DAY,
        (false, true) => PROJECT_MONTH,
    })
}

/// Finds an output of the built-in aggregations by name.
pub fn output(name: &str) -> Option<&'static Output> {
    ALL.iter()
        .flat_map(|a| a.outputs.iter())
        .find(|o| o.name == name)
}
