//! What the tracker's pages share: the navigation, ticket numbers from paths, forms read as
//! name/value pairs (ticket forms carry one input per custom field), list addresses, and the
//! inputs of custom fields.

use bson::Bson;
use forge_tools::Error;
use forge_tools::FieldErrors;
use forge_tools::acl::perm;
use forge_tools::tools::tracker::config::{FieldType, TrackerConfig, value_text};
use forge_tools::tools::tracker::perm as tperm;

use super::views::{FieldInput, TrackerNav};
use crate::ctx::ToolReq;
use crate::error::urlencode;

pub use super::super::req::{Delete, Moderate, Update, num_of};

/// Where the queue of tickets waiting for a moderator lives, below the tracker (the
/// discussion's queue of comments is `_moderate`).
pub const PENDING_PATH: &str = "_pending";
/// The discussion's queue of comments, below the tracker.
pub const COMMENTS_QUEUE_PATH: &str = "_moderate";

/// Tickets a page of the list shows.
pub const PER_PAGE: u64 = 25;

/// Whether the viewer may file tickets here: with `create`, or anonymously where the tracker
/// allows it.
pub fn may_file<P>(t: &ToolReq<P>, config: &TrackerConfig) -> bool {
    t.can(tperm::CREATE) || (t.viewer().user.is_none() && config.anonymous_tickets)
}

pub fn nav<P>(t: &ToolReq<P>, config: &TrackerConfig) -> TrackerNav {
    let me = |field: &str| {
        list_url(
            &t.base,
            &[("status", "open"), ("q", &format!("{field}:me"))],
        )
    };
    TrackerNav {
        base: t.base.clone(),
        label: t.tool.label.clone(),
        project: t.ctx.project.shortname.clone(),
        mount: t.tool.mount.clone(),
        can_create: may_file(t, config),
        can_admin: t.can(perm::ADMIN),
        can_moderate: t.can(perm::MODERATE),
        signed_in: t.viewer().user.is_some(),
        assigned_url: me("assigned_to"),
        reported_url: me("reported_by"),
    }
}

/// The list's address with these parameters (empty ones left out).
pub fn list_url(base: &str, params: &[(&str, &str)]) -> String {
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .copied()
        .collect();
    if pairs.is_empty() {
        return base.to_owned();
    }
    let q = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{base}?{q}")
}

/// The list filtered on one field's value, any status.
pub fn filtered_url(base: &str, field: &str, value: &str) -> String {
    format!("{base}?status=all&{field}={}", urlencode(value))
}

/// Where to come back to after a form: a page of this tracker, else its list.
pub fn safe_next(base: &str, next: &str) -> String {
    if next.starts_with(base)
        && next.bytes().all(|b| b.is_ascii_graphic())
        && !next.contains("//")
        && !next.contains('\\')
    {
        next.to_owned()
    } else {
        base.to_owned()
    }
}

/// A form or query string read as name/value pairs, in order (repeated names kept).
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

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), "on" | "true" | "1" | "yes")
    }

    /// Text of a textarea, with the browser's CRLF line ends made LF.
    pub fn text(&self, name: &str) -> String {
        self.get(name).replace("\r\n", "\n")
    }
}

/// A number from a form or query string; garbage is a 400.
pub fn parse_num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, Error> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::BadRequest(format!("{name} must be a number")))
}

/// The text a custom field's value shows as (a boolean field is never empty).
pub fn field_text(kind: FieldType, v: Option<&Bson>) -> String {
    let text = v.map(value_text).unwrap_or_default();
    if kind == FieldType::Boolean && text.is_empty() {
        "false".into()
    } else {
        text
    }
}

/// A custom field's value as a ticket form sent it: a boolean is its checkbox.
pub fn sent_field(kind: FieldType, form: &Fields, name: &str) -> String {
    if kind == FieldType::Boolean {
        if form.checked(name) { "true" } else { "false" }.to_owned()
    } else {
        form.get(name).trim().to_owned()
    }
}

/// The inputs of every custom field, holding `value_of(field name)`.
pub fn field_inputs(
    config: &TrackerConfig,
    value_of: impl Fn(&str) -> String,
    errors: &FieldErrors,
) -> Vec<FieldInput> {
    config
        .custom_fields
        .iter()
        .map(|f| FieldInput {
            name: f.name.clone(),
            label: f.label.clone(),
            kind: f.kind.as_str(),
            required: f.required,
            options: match f.kind {
                FieldType::Select => f.options.clone(),
                FieldType::Milestone => milestone_names(config),
                _ => Vec::new(),
            },
            value: value_of(&f.name),
            error: errors.get(&f.name).map(str::to_owned),
        })
        .collect()
}

pub fn milestone_names(config: &TrackerConfig) -> Vec<String> {
    config.milestones.iter().map(|m| m.name.clone()).collect()
}

pub fn statuses(config: &TrackerConfig) -> Vec<String> {
    config.statuses().cloned().collect()
}

/// The names of a ticket form's inputs, for errors about anything else.
pub fn known_fields(config: &TrackerConfig, builtin: &[&str]) -> Vec<String> {
    builtin
        .iter()
        .map(|s| (*s).to_owned())
        .chain(config.custom_fields.iter().map(|f| f.name.clone()))
        .collect()
}

/// Messages of `errors` for fields not in `known`.
pub fn other_errors(errors: &FieldErrors, known: &[String]) -> Vec<String> {
    errors
        .0
        .iter()
        .filter(|(f, _)| !known.contains(f))
        .map(|(_, m)| m.clone())
        .collect()
}
