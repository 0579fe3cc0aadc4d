//! A tracker's settings, kept in its tool instance's options (so they arrive with the project,
//! no extra read): the open and closed status names, custom fields, milestones, the text a new
//! ticket's description starts with, and whether anonymous visitors may file tickets.

use bson::{Bson, DateTime};
use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldErrors, Result};
use crate::tool::ToolInstance;

pub const DEFAULT_OPEN: &[&str] = &["open", "unread", "accepted", "pending"];
pub const DEFAULT_CLOSED: &[&str] = &["closed", "wont-fix"];
/// Bounds on what an admin may configure (each list is shown on every ticket form).
pub const MAX_STATUSES: usize = 30;
pub const MAX_FIELDS: usize = 50;
pub const MAX_OPTIONS: usize = 200;
pub const MAX_MILESTONES: usize = 500;

/// The type of a custom field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Number,
    Boolean,
    Select,
    User,
    Milestone,
    Date,
}

impl FieldType {
    pub const ALL: [FieldType; 7] = [
        FieldType::String,
        FieldType::Number,
        FieldType::Boolean,
        FieldType::Select,
        FieldType::User,
        FieldType::Milestone,
        FieldType::Date,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Select => "select",
            FieldType::User => "user",
            FieldType::Milestone => "milestone",
            FieldType::Date => "date",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One custom field. `name` is the stored key (Allura's `_name` form: a leading underscore,
/// then lowercase letters, digits and `_`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomField {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    /// The value a new ticket gets, as typed in the form ("" for none).
    #[serde(default)]
    pub default: String,
    /// Choices of a `select` field.
    #[serde(default)]
    pub options: Vec<String>,
    /// Shown as a column of the ticket list.
    #[serde(default)]
    pub show_in_list: bool,
}

/// A milestone: tickets point at it by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Due date, `YYYY-MM-DD`, or empty.
    #[serde(default)]
    pub due: String,
    #[serde(default)]
    pub closed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackerConfig {
    pub open_statuses: Vec<String>,
    pub closed_statuses: Vec<String>,
    #[serde(default)]
    pub custom_fields: Vec<CustomField>,
    #[serde(default)]
    pub milestones: Vec<Milestone>,
    /// The text a new ticket's description starts with.
    #[serde(default)]
    pub template: String,
    /// Anonymous visitors may file tickets (which then wait for a moderator).
    #[serde(default)]
    pub anonymous_tickets: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            open_statuses: DEFAULT_OPEN.iter().map(|s| (*s).to_owned()).collect(),
            closed_statuses: DEFAULT_CLOSED.iter().map(|s| (*s).to_owned()).collect(),
            custom_fields: Vec::new(),
            milestones: Vec::new(),
            template: String::new(),
            anonymous_tickets: false,
        }
    }
}

/// The option key the configuration is stored under.
pub const OPTION: &str = "config";

impl TrackerConfig {
    /// The configuration of a tracker instance (the defaults when none was saved).
    pub fn of(tool: &ToolInstance) -> Self {
        tool.options
            .get_document(OPTION)
            .ok()
            .and_then(|d| bson::deserialize_from_document(d.clone()).ok())
            .unwrap_or_default()
    }

    pub fn to_bson(&self) -> Result<Bson> {
        bson::serialize_to_bson(self).map_err(|e| Error::Internal(e.to_string()))
    }

    pub fn is_open(&self, status: &str) -> bool {
        self.open_statuses.iter().any(|s| s == status)
    }

    pub fn is_closed(&self, status: &str) -> bool {
        self.closed_statuses.iter().any(|s| s == status)
    }

    pub fn statuses(&self) -> impl Iterator<Item = &String> {
        self.open_statuses.iter().chain(self.closed_statuses.iter())
    }

    pub fn has_status(&self, status: &str) -> bool {
        self.statuses().any(|s| s == status)
    }

    /// The status a new ticket gets: the first open one.
    pub fn initial_status(&self) -> &str {
        self.open_statuses.first().map_or("open", String::as_str)
    }

    /// The status a ticket closed by a commit gets: the first closed one.
    pub fn closing_status(&self) -> &str {
        self.closed_statuses
            .first()
            .map_or("closed", String::as_str)
    }

    pub fn field(&self, name: &str) -> Option<&CustomField> {
        let name = name.strip_prefix('_').unwrap_or(name);
        self.custom_fields
            .iter()
            .find(|f| f.name.strip_prefix('_').unwrap_or(&f.name) == name)
    }

    pub fn milestone(&self, name: &str) -> Option<&Milestone> {
        self.milestones.iter().find(|m| m.name == name)
    }

    /// Checks a configuration an admin submitted; the messages name the field at fault.
    pub fn validate(&self) -> Result<()> {
        let mut errors = FieldErrors::new();
        let status_ok = |s: &String| {
            !s.is_empty()
                && s.len() <= 40
                && s.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if self.open_statuses.is_empty() || self.closed_statuses.is_empty() {
            errors.add(
                "statuses",
                "A tracker needs at least one open and one closed status",
            );
        }
        if self.open_statuses.len() + self.closed_statuses.len() > MAX_STATUSES {
            errors.add(
                "statuses",
                format!("At most {MAX_STATUSES} statuses in all"),
            );
        }
        if let Some(bad) = self.statuses().find(|s| !status_ok(s)) {
            errors.add(
                "statuses",
                format!(
                    "Status \"{}\": use letters, digits, '-', '_' or '.' (at most 40)",
                    crate::markdown::escape(bad)
                ),
            );
        }
        let mut seen: Vec<&String> = Vec::new();
        for s in self.statuses() {
            if seen.contains(&s) {
                errors.add("statuses", format!("Status \"{s}\" is listed twice"));
                break;
            }
            seen.push(s);
        }
        if self.custom_fields.len() > MAX_FIELDS {
            errors.add(
                "custom_fields",
                format!("At most {MAX_FIELDS} custom fields"),
            );
        }
        let mut names: Vec<&str> = Vec::new();
        for f in &self.custom_fields {
            if !field_name_ok(&f.name) {
                errors.add(
                    "custom_fields",
                    format!(
                        "Field name \"{}\": start with '_', then lowercase letters, digits or '_' (at most 40)",
                        crate::markdown::escape(&f.name)
                    ),
                );
            }
            if names.contains(&f.name.as_str()) {
                errors.add(
                    "custom_fields",
                    format!("Field \"{}\" is defined twice", f.name),
                );
            }
            names.push(&f.name);
            if f.label.trim().is_empty() || f.label.chars().count() > 80 {
                errors.add(
                    "custom_fields",
                    format!("Field \"{}\" needs a label of 1 to 80 characters", f.name),
                );
            }
            if f.kind == FieldType::Select && f.options.is_empty() {
                errors.add(
                    "custom_fields",
                    format!("Select field \"{}\" needs at least one option", f.name),
                );
            }
            if f.options.len() > MAX_OPTIONS || f.options.iter().any(|o| o.len() > 100) {
                errors.add(
                    "custom_fields",
                    format!(
                        "Field \"{}\": at most {MAX_OPTIONS} options of 100 characters",
                        f.name
                    ),
                );
            }
            if !f.default.is_empty()
                && let Err(e) = self.parse_value(f, &f.default)
            {
                errors.add("custom_fields", format!("Default of \"{}\": {e}", f.name));
            }
        }
        if self.milestones.len() > MAX_MILESTONES {
            errors.add("milestones", format!("At most {MAX_MILESTONES} milestones"));
        }
        let mut ms: Vec<&str> = Vec::new();
        for m in &self.milestones {
            if m.name.trim().is_empty() || m.name.chars().count() > 80 || m.name.trim() != m.name {
                errors.add(
                    "milestones",
                    "A milestone needs a name of 1 to 80 characters",
                );
            }
            if ms.contains(&m.name.as_str()) {
                errors.add(
                    "milestones",
                    format!("Milestone \"{}\" is defined twice", m.name),
                );
            }
            ms.push(&m.name);
            if !m.due.is_empty() && parse_date(&m.due).is_none() {
                errors.add(
                    "milestones",
                    format!("Milestone \"{}\": the due date must be YYYY-MM-DD", m.name),
                );
            }
            if m.description.len() > 10_000 {
                errors.add(
                    "milestones",
                    "A milestone description is 10,000 characters at most",
                );
            }
        }
        if self.template.len() > 64 * 1024 {
            errors.add("template", "The ticket template is 64 KiB at most");
        }
        errors.into_result()
    }

    /// A custom field's value from its text form; `Bson::Null` for an empty optional value.
    /// The message says what is wrong, for the form.
    pub fn parse_value(&self, field: &CustomField, text: &str) -> Result<Bson, String> {
        let text = text.trim();
        if text.is_empty() {
            return if field.required {
                Err(format!("{} is required", field.label))
            } else {
                Ok(Bson::Null)
            };
        }
        if text.len() > 1_000 {
            return Err(format!("{} is 1,000 characters at most", field.label));
        }
        match field.kind {
            FieldType::String | FieldType::User => Ok(Bson::String(text.to_owned())),
            FieldType::Number => text
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Bson::Double)
                .ok_or_else(|| format!("{} must be a number", field.label)),
            FieldType::Boolean => match text {
                "true" | "on" | "yes" | "1" => Ok(Bson::Boolean(true)),
                "false" | "off" | "no" | "0" => Ok(Bson::Boolean(false)),
                _ => Err(format!("{} must be true or false", field.label)),
            },
            FieldType::Select => field
                .options
                .iter()
                .find(|o| o.as_str() == text)
                .map(|o| Bson::String(o.clone()))
                .ok_or_else(|| {
                    format!(
                        "{} must be one of: {}",
                        field.label,
                        field.options.join(", ")
                    )
                }),
            FieldType::Milestone => self
                .milestone(text)
                .map(|m| Bson::String(m.name.clone()))
                .ok_or_else(|| format!("{}: no milestone \"{text}\"", field.label)),
            FieldType::Date => parse_date(text)
                .map(|_| Bson::String(text.to_owned()))
                .ok_or_else(|| format!("{} must be a date (YYYY-MM-DD)", field.label)),
        }
    }
}

/// Custom field names: `_` then 1 to 39 of lowercase letters, digits and `_`.
pub fn field_name_ok(name: &str) -> bool {
    name.len() <= 40
        && name.strip_prefix('_').is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// `YYYY-MM-DD` as the start of that day (UTC).
pub fn parse_date(s: &str) -> Option<DateTime> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let t = d.and_hms_opt(0, 0, 0)?.and_utc();
    Some(DateTime::from_millis(t.timestamp_millis()))
}

/// A value as text (for forms, lists and the change history).
pub fn value_text(v: &Bson) -> String {
    match v {
        Bson::Null => String::new(),
        Bson::String(s) => s.clone(),
        Bson::Boolean(b) => b.to_string(),
        Bson::Double(d) if d.fract() == 0.0 && d.abs() < 1e15 => format!("{}", *d as i64),
        Bson::Double(d) => d.to_string(),
        Bson::Int32(i) => i.to_string(),
        Bson::Int64(i) => i.to_string(),
        other => other.to_string(),
    }
}
