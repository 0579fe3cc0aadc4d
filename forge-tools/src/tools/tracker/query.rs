//! The ticket query language, shared by the ticket list's filter box, saved searches and the
//! REST `?q=` parameter: a query is parsed once ([`parse`]) against the tracker's
//! configuration and the viewer, and becomes a MongoDB filter over `tracker_tickets`
//! ([`Query::filter`]). [`sort`] reads the list's `sort=` parameter.
//!
//! # Syntax
//!
//! Whitespace-separated terms, all of which must hold (AND):
//!
//! - `field:value`. Fields: `status`, `label` (or `labels`), `milestone`, `assigned_to` (or
//!   `assignee`), `reported_by` (or `reporter`), `private` (`true`/`false`), `ticket` (or
//!   `num`: the ticket number), `votes`, `created`, `modified`, and each custom field by its
//!   name with or without the leading `_` (`priority:high` = `_priority:high`). A name
//!   without `_` means the built-in field when there is one.
//! - `status:open` is any open status of the tracker, `status:closed` any closed one,
//!   `status:all` (or `status:*`) no status filter; another value is one status, which must
//!   exist.
//! - `me` (in `assigned_to`, `reported_by` and user custom fields) is the viewer; `none` (in
//!   `assigned_to` and `milestone`) is "not set".
//! - Values may be quoted: `milestone:"1.0 beta"` (a quoted value cannot contain `"`).
//! - A bare word is free text: it must appear (any case) in the summary, the description or
//!   a comment. A bare quoted phrase `"exact words"` must appear as a whole (runs of
//!   whitespace in it match any whitespace).
//! - `-term` negates a term: `-label:wontfix`, `-"exact words"`, `-word`.
//! - Numbers and dates compare: `votes:>3`, `votes:>=3`, `ticket:<100`, `ticket:<=100`,
//!   `created:>2026-01-01`, `_due:<=2026-12-31`; `a..b` is an inclusive range, `a..` and
//!   `..b` are open-ended. This holds for `ticket`, `votes`, `created`, `modified` and number
//!   and date custom fields. Dates are whole days (`YYYY-MM-DD`, UTC): `created:2026-01-01`
//!   is any time that day, `created:>2026-01-01` from the next day on.
//! - Boolean custom fields take `true`/`false`; select custom fields one of their options.
//! - Repeating a field ANDs: `label:a label:b` is tickets with both labels.
//!
//! Bounds, since the text comes from anyone: [`MAX_QUERY_CHARS`] characters, [`MAX_TERMS`]
//! terms, [`MAX_VALUE_CHARS`] characters a value; no control characters. Every mistake is a
//! [`QueryError`] with a message for a person; nothing panics.

use std::cmp::Ordering;
use std::fmt;
use std::iter::Peekable;
use std::str::Chars;

use bson::{Bson, DateTime, Document, doc};

use super::config::{CustomField, FieldType, TrackerConfig, parse_date};

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 1_000;
/// Most terms in one query.
pub const MAX_TERMS: usize = 30;
/// Longest value (or free-text word or phrase), in characters.
pub const MAX_VALUE_CHARS: usize = 200;
/// Longest `sort=` value, in characters.
pub const MAX_SORT_CHARS: usize = 200;

/// The help shown next to the ticket list's filter box.
pub const HELP: &str = "\
Search words are matched in the summary, description and comments; every word must appear.
\"exact words\" matches a whole phrase. Put - before any term to exclude it: -wontfix, -label:ui.
Filter on a field with field:value; all terms must hold.
  status:open, status:closed, status:all, or one status such as status:accepted
  label:ui (label:a label:b means both labels)
  milestone:1.0, milestone:\"1.0 beta\", milestone:none
  assigned_to:me, assigned_to:alice, assigned_to:none, reported_by:me
  private:true, private:false
  ticket:42, ticket:<100, ticket:10..20 (inclusive)
  votes:>3, votes:>=3, votes:<0
  created:>2026-01-01, modified:2026-03-01..2026-03-31 (dates are YYYY-MM-DD)
  custom fields by name, with or without the leading _: priority:high, _due:<=2026-12-31
Quote a value that contains spaces or a colon.";

/// A mistake in a query or sort spec, as a message for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QueryError {}

impl From<QueryError> for crate::error::Error {
    fn from(e: QueryError) -> Self {
        crate::error::Error::BadRequest(e.0)
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError(message.into()))
}

/// A parsed query: one filter document per term.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    terms: Vec<Document>,
}

impl Query {
    /// The MongoDB filter for these terms: `{}` when there are none, else
    /// `{"$and": [term, ...]}`. It does not include `tool_id`, `deleted`, `moderation` or
    /// private-ticket visibility; the caller adds those (inserting its own keys is safe, as the
    /// terms all sit under `$and`).
    pub fn filter(&self) -> Document {
        if self.terms.is_empty() {
            Document::new()
        } else {
            doc! { "$and": self.terms.iter().cloned().map(Bson::Document).collect::<Vec<_>>() }
        }
    }

    /// No term narrows the list (an empty query, or only `status:all`).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Parses a query typed by `me` (the viewer's username; `None` when anonymous).
pub fn parse(q: &str, config: &TrackerConfig, me: Option<&str>) -> Result<Query, QueryError> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return fail(format!(
            "the query is too long (at most {MAX_QUERY_CHARS} characters)"
        ));
    }
    if q.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return fail("the query contains a control character");
    }
    let mut terms = Vec::new();
    for token in tokenize(q)? {
        let (negated, term) = match token {
            Token::Text { negated, text } => (negated, Some(free_text(&text))),
            Token::Field {
                negated,
                key,
                value,
            } => {
                let term = field_term(&key, &value, config, me)?;
                if negated && term.is_none() {
                    return fail(format!("-{key}:{value} would match no ticket"));
                }
                (negated, term)
            }
        };
        if let Some(term) = term {
            terms.push(if negated { negate(term) } else { term });
        }
    }
    Ok(Query { terms })
}

// ---- tokens ------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum Token {
    /// A bare word or a quoted phrase.
    Text { negated: bool, text: String },
    Field {
        negated: bool,
        key: String,
        value: String,
    },
}

fn tokenize(q: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut chars = q.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        if tokens.len() == MAX_TERMS {
            return fail(format!("a query has at most {MAX_TERMS} terms"));
        }
        let negated = chars.next_if_eq(&'-').is_some();
        match chars.peek() {
            None => return fail("'-' must be followed by a term, as in -label:wontfix"),
            Some(c) if c.is_whitespace() => {
                return fail("'-' must be followed by a term, as in -label:wontfix");
            }
            Some('"') => {
                chars.next();
                let text = quoted(&mut chars)?;
                if text.is_empty() {
                    return fail("empty quotes: put the words to search for between them");
                }
                tokens.push(Token::Text { negated, text });
            }
            Some(_) => {
                let mut word = String::new();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != ':') {
                    word.push(c);
                }
                check_len(&word)?;
                if chars.next_if_eq(&':').is_none() {
                    tokens.push(Token::Text {
                        negated,
                        text: word,
                    });
                    continue;
                }
                if word.is_empty() {
                    return fail("a field name is missing before ':'");
                }
                let value = if chars.next_if_eq(&'"').is_some() {
                    quoted(&mut chars)?
                } else {
                    let mut value = String::new();
                    while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                        value.push(c);
                    }
                    check_len(&value)?;
                    value
                };
                if value.is_empty() {
                    return fail(format!("no value after '{word}:'"));
                }
                tokens.push(Token::Field {
                    negated,
                    key: word,
                    value,
                });
            }
        }
    }
    Ok(tokens)
}

/// The rest of a quoted string (the opening quote is read), trimmed.
fn quoted(chars: &mut Peekable<Chars<'_>>) -> Result<String, QueryError> {
    let mut text = String::new();
    loop {
        match chars.next() {
            None => return fail("unterminated quote"),
            Some('"') => break,
            Some(c) => text.push(c),
        }
    }
    if chars.peek().is_some_and(|c| !c.is_whitespace()) {
        return fail("put a space after a closing quote");
    }
    let text = text.trim().to_owned();
    check_len(&text)?;
    Ok(text)
}

fn check_len(value: &str) -> Result<(), QueryError> {
    if value.chars().count() > MAX_VALUE_CHARS {
        return fail(format!("a value is at most {MAX_VALUE_CHARS} characters"));
    }
    Ok(())
}

// ---- terms -------------------------------------------------------------------------------

/// The fields named in "unknown field" messages (aliases left out).
const FIELDS: &[&str] = &[
    "status",
    "label",
    "milestone",
    "assigned_to",
    "reported_by",
    "private",
    "ticket",
    "votes",
    "created",
    "modified",
];

const DAY_MS: i64 = 86_400_000;

/// Free text: the word or phrase, in any case, in the summary, description or comments.
fn free_text(text: &str) -> Document {
    let pattern = text
        .split_whitespace()
        .map(regex_escape)
        .collect::<Vec<_>>()
        .join(r"\s+");
    let matches = |field: &str| doc! { field: { "$regex": pattern.as_str(), "$options": "i" } };
    doc! { "$or": [matches("summary"), matches("description"), matches("comments_text")] }
}

/// Escapes every ASCII punctuation character (a backslash before a non-alphanumeric
/// character is always that character in PCRE, MongoDB's regex dialect).
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The complement of one term's filter.
fn negate(term: Document) -> Document {
    let mut entries = term.iter();
    if let (Some((key, value)), None) = (entries.next(), entries.next()) {
        if key == "$or"
            && let Bson::Array(alternatives) = value
        {
            return doc! { "$nor": alternatives.clone() };
        }
        if !key.starts_with('$') {
            match value {
                Bson::Document(cond) => {
                    if cond.len() == 1
                        && let Ok(values) = cond.get_array("$in")
                    {
                        return doc! { key: { "$nin": values.clone() } };
                    }
                }
                other => return doc! { key: { "$ne": other.clone() } },
            }
        }
    }
    doc! { "$nor": [term] }
}

/// One `field:value` term; `None` when it does not narrow anything (`status:all`).
fn field_term(
    key: &str,
    value: &str,
    config: &TrackerConfig,
    me: Option<&str>,
) -> Result<Option<Document>, QueryError> {
    let name = key.to_lowercase();
    let term = match name.as_str() {
        "status" => return status_term(value, config),
        "label" | "labels" => doc! { "labels": value },
        "milestone" => doc! { "milestone": none_or(value) },
        "assigned_to" | "assignee" => doc! { "assigned_to": none_or(&user(value, me)?) },
        "reported_by" | "reporter" => doc! { "reported_by": user(value, me)? },
        "private" => doc! { "private": boolean("private", value)? },
        "ticket" | "num" | "ticket_num" => compare("ticket_num", value, |v| {
            integer("ticket", v.strip_prefix('#').unwrap_or(v))
        })?,
        "votes" => compare("votes", value, |v| integer("votes", v))?,
        "created" | "modified" => day_compare(&name, value)?,
        _ => match config.field(&name) {
            Some(field) => custom_term(field, value, me)?,
            None => {
                let mut fields: Vec<&str> = FIELDS.to_vec();
                fields.extend(config.custom_fields.iter().map(|f| f.name.as_str()));
                return fail(format!(
                    "unknown field '{key}' (fields: {})",
                    fields.join(", ")
                ));
            }
        },
    };
    Ok(Some(term))
}

fn status_term(value: &str, config: &TrackerConfig) -> Result<Option<Document>, QueryError> {
    let statuses = |list: &[String]| {
        list.iter()
            .map(|s| Bson::String(s.clone()))
            .collect::<Vec<_>>()
    };
    Ok(Some(match value {
        "all" | "*" => return Ok(None),
        "open" => doc! { "status": { "$in": statuses(&config.open_statuses) } },
        "closed" => doc! { "status": { "$in": statuses(&config.closed_statuses) } },
        one if config.has_status(one) => doc! { "status": one },
        other => {
            let known: Vec<&str> = ["open", "closed", "all"]
                .into_iter()
                .chain(config.statuses().map(String::as_str))
                .collect();
            return fail(format!(
                "unknown status '{other}' (statuses: {})",
                known.join(", ")
            ));
        }
    }))
}

/// `none` is "not set" (null or missing), anything else itself.
fn none_or(value: &str) -> Bson {
    if value == "none" {
        Bson::Null
    } else {
        Bson::String(value.to_owned())
    }
}

/// `me` is the viewer.
fn user(value: &str, me: Option<&str>) -> Result<String, QueryError> {
    if value == "me" {
        match me {
            Some(me) => Ok(me.to_owned()),
            None => fail("log in to use 'me'"),
        }
    } else {
        Ok(value.to_owned())
    }
}

fn boolean(label: &str, value: &str) -> Result<bool, QueryError> {
    match value.to_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => fail(format!("{label} is true or false, not '{value}'")),
    }
}

fn integer(label: &str, value: &str) -> Result<Bson, QueryError> {
    value
        .parse::<i64>()
        .map(Bson::Int64)
        .or_else(|_| fail(format!("{label} needs a whole number, not '{value}'")))
}

fn number(label: &str, value: &str) -> Result<Bson, QueryError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(Bson::Double)
        .map_or_else(
            || fail(format!("{label} needs a number, not '{value}'")),
            Ok,
        )
}

/// A date as stored in custom fields: `YYYY-MM-DD`, zero-padded whatever was typed.
fn date_text(label: &str, value: &str) -> Result<Bson, QueryError> {
    match chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(d) if parse_date(value).is_some() => Ok(Bson::String(d.format("%Y-%m-%d").to_string())),
        _ => fail(format!("{label} needs a date (YYYY-MM-DD), not '{value}'")),
    }
}

fn custom_term(field: &CustomField, value: &str, me: Option<&str>) -> Result<Document, QueryError> {
    let key = format!("custom_fields.{}", field.name);
    let label = field.name.as_str();
    Ok(match field.kind {
        FieldType::String | FieldType::Milestone => doc! { key: value },
        FieldType::User => doc! { key: user(value, me)? },
        FieldType::Boolean => doc! { key: boolean(label, value)? },
        FieldType::Number => compare(&key, value, |v| number(label, v))?,
        FieldType::Date => compare(&key, value, |v| date_text(label, v))?,
        FieldType::Select => {
            let option = field
                .options
                .iter()
                .find(|o| o.as_str() == value)
                .or_else(|| {
                    field
                        .options
                        .iter()
                        .find(|o| o.to_lowercase() == value.to_lowercase())
                });
            match option {
                Some(o) => doc! { key: o.as_str() },
                None => {
                    return fail(format!(
                        "'{value}' is not an option of {label} (options: {})",
                        field.options.join(", ")
                    ));
                }
            }
        }
    })
}

/// A comparison written in a value: `3`, `>3`, `>=3`, `<3`, `<=3`, `1..3`, `1..`, `..3`.
enum Cmp<'a> {
    Eq(&'a str),
    Gt(&'a str),
    Ge(&'a str),
    Lt(&'a str),
    Le(&'a str),
    Range(Option<&'a str>, Option<&'a str>),
}

fn comparison(value: &str) -> Result<Cmp<'_>, QueryError> {
    let cmp = if let Some(v) = value.strip_prefix(">=") {
        Cmp::Ge(v)
    } else if let Some(v) = value.strip_prefix("<=") {
        Cmp::Le(v)
    } else if let Some(v) = value.strip_prefix('>') {
        Cmp::Gt(v)
    } else if let Some(v) = value.strip_prefix('<') {
        Cmp::Lt(v)
    } else if let Some((lo, hi)) = value.split_once("..") {
        if lo.is_empty() && hi.is_empty() {
            return fail("a range needs a bound: 10..20, 10.. or ..20");
        }
        Cmp::Range(bound(lo), bound(hi))
    } else {
        Cmp::Eq(value)
    };
    match cmp {
        Cmp::Ge("") | Cmp::Le("") | Cmp::Gt("") | Cmp::Lt("") => {
            fail(format!("'{value}' needs a value after the comparison"))
        }
        cmp => Ok(cmp),
    }
}

fn bound(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn order(a: &Bson, b: &Bson) -> Option<Ordering> {
    match (a, b) {
        (Bson::Int64(a), Bson::Int64(b)) => Some(a.cmp(b)),
        (Bson::Double(a), Bson::Double(b)) => a.partial_cmp(b),
        (Bson::String(a), Bson::String(b)) => Some(a.cmp(b)),
        (Bson::DateTime(a), Bson::DateTime(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// `{key: v}` or `{key: {$op: v, ...}}` for a comparison; `parse` reads one bound.
fn compare(
    key: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<Bson, QueryError>,
) -> Result<Document, QueryError> {
    let cond = match comparison(value)? {
        Cmp::Eq(v) => return Ok(doc! { key: parse(v)? }),
        Cmp::Gt(v) => doc! { "$gt": parse(v)? },
        Cmp::Ge(v) => doc! { "$gte": parse(v)? },
        Cmp::Lt(v) => doc! { "$lt": parse(v)? },
        Cmp::Le(v) => doc! { "$lte": parse(v)? },
        Cmp::Range(lo, hi) => {
            let lo = lo.map(&parse).transpose()?;
            let hi = hi.map(&parse).transpose()?;
            if let (Some(a), Some(b)) = (&lo, &hi)
                && order(a, b) == Some(Ordering::Greater)
            {
                return fail(format!(
                    "the range '{value}' is empty (put the lower bound first)"
                ));
            }
            let mut cond = Document::new();
            if let Some(lo) = lo {
                cond.insert("$gte", lo);
            }
            if let Some(hi) = hi {
                cond.insert("$lte", hi);
            }
            cond
        }
    };
    Ok(doc! { key: cond })
}

/// A comparison on a stored date-time, by whole days (UTC).
fn day_compare(key: &str, value: &str) -> Result<Document, QueryError> {
    let day = |v: &str| {
        parse_date(v).map(|d| d.timestamp_millis()).map_or_else(
            || fail(format!("{key} needs a date (YYYY-MM-DD), not '{v}'")),
            Ok,
        )
    };
    let at = DateTime::from_millis;
    let next = |ms: i64| DateTime::from_millis(ms.saturating_add(DAY_MS));
    let cond = match comparison(value)? {
        Cmp::Eq(v) => {
            let d = day(v)?;
            doc! { "$gte": at(d), "$lt": next(d) }
        }
        Cmp::Gt(v) => doc! { "$gte": next(day(v)?) },
        Cmp::Ge(v) => doc! { "$gte": at(day(v)?) },
        Cmp::Lt(v) => doc! { "$lt": at(day(v)?) },
        Cmp::Le(v) => doc! { "$lt": next(day(v)?) },
        Cmp::Range(lo, hi) => {
            let lo = lo.map(day).transpose()?;
            let hi = hi.map(day).transpose()?;
            if let (Some(a), Some(b)) = (lo, hi)
                && a > b
            {
                return fail(format!(
                    "the range '{value}' is empty (put the earlier date first)"
                ));
            }
            let mut cond = Document::new();
            if let Some(lo) = lo {
                cond.insert("$gte", at(lo));
            }
            if let Some(hi) = hi {
                cond.insert("$lt", next(hi));
            }
            cond
        }
    };
    Ok(doc! { key: cond })
}

// ---- sort --------------------------------------------------------------------------------

/// The built-in sortable columns (stored field names).
const SORTABLE: &[&str] = &[
    "ticket_num",
    "summary",
    "status",
    "milestone",
    "assigned_to",
    "reported_by",
    "created",
    "modified",
    "votes",
    "labels",
];

/// The sort document for a `sort=` value: a column and an optional `asc`/`desc`
/// (`ticket_num desc`, `summary`, `_priority asc`), or `-column` for descending. Ties are
/// broken by `ticket_num` ascending (unless it is the column). An empty spec sorts by ticket
/// number. Custom fields sort on `custom_fields.<name>`.
pub fn sort(spec: &str, config: &TrackerConfig) -> Result<Document, QueryError> {
    if spec.chars().count() > MAX_SORT_CHARS {
        return fail(format!(
            "the sort is too long (at most {MAX_SORT_CHARS} characters)"
        ));
    }
    let mut words = spec.split_whitespace();
    let Some(first) = words.next() else {
        return Ok(doc! { "ticket_num": 1 });
    };
    let (column, dashed) = match first.strip_prefix('-') {
        Some(column) => (column, true),
        None => (first, false),
    };
    let mut direction = if dashed { -1 } else { 1 };
    if let Some(word) = words.next() {
        if dashed {
            return fail("sort with either '-column' or 'column asc|desc', not both");
        }
        direction = match word.to_lowercase().as_str() {
            "asc" => 1,
            "desc" => -1,
            _ => return fail(format!("sort direction '{word}': use asc or desc")),
        };
    }
    if words.next().is_some() {
        return fail("sort takes one column and an optional direction, e.g. 'modified desc'");
    }
    let column = sort_column(column, config)?;
    let mut sort = Document::new();
    sort.insert(column.as_str(), direction);
    if column != "ticket_num" {
        sort.insert("ticket_num", 1);
    }
    Ok(sort)
}

fn sort_column(column: &str, config: &TrackerConfig) -> Result<String, QueryError> {
    let name = column.to_lowercase();
    let builtin = match name.as_str() {
        "ticket_num" | "ticket" | "num" => Some("ticket_num"),
        "label" | "labels" => Some("labels"),
        "assignee" | "assigned_to" => Some("assigned_to"),
        "reporter" | "reported_by" => Some("reported_by"),
        other => SORTABLE.iter().copied().find(|s| *s == other),
    };
    if let Some(builtin) = builtin {
        return Ok(builtin.to_owned());
    }
    if let Some(field) = config.field(&name) {
        return Ok(format!("custom_fields.{}", field.name));
    }
    let mut sortable: Vec<&str> = SORTABLE.to_vec();
    sortable.extend(config.custom_fields.iter().map(|f| f.name.as_str()));
    fail(format!(
        "cannot sort by '{column}' (sortable: {})",
        sortable.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field(name: &str, kind: FieldType, options: &[&str]) -> CustomField {
        CustomField {
            name: name.to_owned(),
            label: name.trim_start_matches('_').to_owned(),
            kind,
            required: false,
            default: String::new(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            show_in_list: false,
        }
    }

    fn config() -> TrackerConfig {
        TrackerConfig {
            custom_fields: vec![
                field("_priority", FieldType::Select, &["low", "high"]),
                field("_points", FieldType::Number, &[]),
                field("_due", FieldType::Date, &[]),
                field("_urgent", FieldType::Boolean, &[]),
                field("_owner", FieldType::User, &[]),
                field("_os", FieldType::String, &[]),
                field("_status", FieldType::String, &[]),
            ],
            ..TrackerConfig::default()
        }
    }

    /// The filter of a one-term query: the term itself.
    fn one(q: &str) -> Document {
        let query = parse(q, &config(), Some("alice")).unwrap();
        let filter = query.filter();
        let terms = filter.get_array("$and").unwrap();
        assert_eq!(terms.len(), 1, "{q}: {filter}");
        terms[0].as_document().unwrap().clone()
    }

    fn error(q: &str) -> String {
        parse(q, &config(), Some("alice")).unwrap_err().0
    }

    fn day(s: &str) -> DateTime {
        parse_date(s).unwrap()
    }

    fn text(pattern: &str) -> Vec<Document> {
        ["summary", "description", "comments_text"]
            .into_iter()
            .map(|f| doc! { f: { "$regex": pattern, "$options": "i" } })
            .collect()
    }

    #[test]
    fn empty_queries() {
        for q in [
            "",
            "   ",
            "status:all",
            "status:*",
            " status:all  status:* ",
        ] {
            let query = parse(q, &config(), None).unwrap();
            assert!(query.is_empty(), "{q}");
            assert_eq!(query.filter(), Document::new());
        }
        assert!(!parse("word", &config(), None).unwrap().is_empty());
    }

    #[test]
    fn terms_are_anded() {
        let filter = parse("label:a label:b status:closed", &config(), None)
            .unwrap()
            .filter();
        assert_eq!(
            filter,
            doc! { "$and": [
                { "labels": "a" },
                { "labels": "b" },
                { "status": { "$in": ["closed", "wont-fix"] } },
            ] }
        );
    }

    #[test]
    fn status() {
        assert_eq!(
            one("status:open"),
            doc! { "status": { "$in": ["open", "unread", "accepted", "pending"] } }
        );
        assert_eq!(
            one("status:closed"),
            doc! { "status": { "$in": ["closed", "wont-fix"] } }
        );
        assert_eq!(one("status:accepted"), doc! { "status": "accepted" });
        assert_eq!(one("Status:wont-fix"), doc! { "status": "wont-fix" });
        let e = error("status:bogus");
        assert!(e.starts_with("unknown status 'bogus'"), "{e}");
        assert!(e.contains("accepted") && e.contains("wont-fix"), "{e}");
        assert_eq!(error("-status:all"), "-status:all would match no ticket");
    }

    #[test]
    fn labels_and_milestones() {
        assert_eq!(one("label:ui"), doc! { "labels": "ui" });
        assert_eq!(one("labels:ui"), doc! { "labels": "ui" });
        assert_eq!(one("milestone:1.0"), doc! { "milestone": "1.0" });
        assert_eq!(
            one("milestone:\"1.0 beta\""),
            doc! { "milestone": "1.0 beta" }
        );
        assert_eq!(one("milestone:none"), doc! { "milestone": Bson::Null });
    }

    #[test]
    fn people() {
        assert_eq!(one("assigned_to:me"), doc! { "assigned_to": "alice" });
        assert_eq!(one("assignee:bob"), doc! { "assigned_to": "bob" });
        assert_eq!(one("assigned_to:none"), doc! { "assigned_to": Bson::Null });
        assert_eq!(one("reported_by:me"), doc! { "reported_by": "alice" });
        assert_eq!(one("reporter:bob"), doc! { "reported_by": "bob" });
        assert_eq!(one("_owner:me"), doc! { "custom_fields._owner": "alice" });
        for q in ["assigned_to:me", "reported_by:me", "owner:me"] {
            assert_eq!(
                parse(q, &config(), None).unwrap_err(),
                QueryError("log in to use 'me'".into())
            );
        }
        // Without 'me' an anonymous viewer may still filter on people.
        assert!(parse("assigned_to:bob", &config(), None).is_ok());
    }

    #[test]
    fn private() {
        assert_eq!(one("private:true"), doc! { "private": true });
        assert_eq!(one("private:false"), doc! { "private": false });
        assert_eq!(
            error("private:maybe"),
            "private is true or false, not 'maybe'"
        );
    }

    #[test]
    fn ticket_numbers_and_votes() {
        assert_eq!(one("ticket:42"), doc! { "ticket_num": 42_i64 });
        assert_eq!(one("num:#42"), doc! { "ticket_num": 42_i64 });
        assert_eq!(
            one("ticket:<100"),
            doc! { "ticket_num": { "$lt": 100_i64 } }
        );
        assert_eq!(
            one("ticket:<=100"),
            doc! { "ticket_num": { "$lte": 100_i64 } }
        );
        assert_eq!(
            one("ticket:10..20"),
            doc! { "ticket_num": { "$gte": 10_i64, "$lte": 20_i64 } }
        );
        assert_eq!(
            one("ticket:10.."),
            doc! { "ticket_num": { "$gte": 10_i64 } }
        );
        assert_eq!(
            one("ticket:..20"),
            doc! { "ticket_num": { "$lte": 20_i64 } }
        );
        assert_eq!(one("votes:>3"), doc! { "votes": { "$gt": 3_i64 } });
        assert_eq!(one("votes:>=3"), doc! { "votes": { "$gte": 3_i64 } });
        assert_eq!(one("votes:-2"), doc! { "votes": -2_i64 });
        assert_eq!(
            one("votes:-5..-1"),
            doc! { "votes": { "$gte": -5_i64, "$lte": -1_i64 } }
        );
        assert_eq!(
            error("ticket:abc"),
            "ticket needs a whole number, not 'abc'"
        );
        assert_eq!(error("votes:>x"), "votes needs a whole number, not 'x'");
        assert_eq!(error("votes:>"), "'>' needs a value after the comparison");
        assert_eq!(
            error("ticket:.."),
            "a range needs a bound: 10..20, 10.. or ..20"
        );
        assert_eq!(
            error("ticket:20..10"),
            "the range '20..10' is empty (put the lower bound first)"
        );
        assert_eq!(
            error("ticket:99999999999999999999"),
            "ticket needs a whole number, not '99999999999999999999'"
        );
    }

    #[test]
    fn created_and_modified_by_day() {
        let (d1, d2) = (day("2026-01-01"), day("2026-01-02"));
        let next = |d: DateTime| DateTime::from_millis(d.timestamp_millis() + DAY_MS);
        assert_eq!(
            one("created:2026-01-01"),
            doc! { "created": { "$gte": d1, "$lt": d2 } }
        );
        assert_eq!(
            one("created:>2026-01-01"),
            doc! { "created": { "$gte": d2 } }
        );
        assert_eq!(
            one("created:>=2026-01-01"),
            doc! { "created": { "$gte": d1 } }
        );
        assert_eq!(
            one("modified:<2026-01-02"),
            doc! { "modified": { "$lt": d2 } }
        );
        assert_eq!(
            one("modified:<=2026-01-01"),
            doc! { "modified": { "$lt": d2 } }
        );
        assert_eq!(
            one("modified:2026-01-01..2026-03-31"),
            doc! { "modified": { "$gte": d1, "$lt": next(day("2026-03-31")) } }
        );
        assert_eq!(
            error("created:>yesterday"),
            "created needs a date (YYYY-MM-DD), not 'yesterday'"
        );
        assert_eq!(
            error("created:2026-02-01..2026-01-01"),
            "the range '2026-02-01..2026-01-01' is empty (put the earlier date first)"
        );
    }

    #[test]
    fn custom_fields() {
        assert_eq!(
            one("priority:high"),
            doc! { "custom_fields._priority": "high" }
        );
        assert_eq!(
            one("_priority:high"),
            doc! { "custom_fields._priority": "high" }
        );
        assert_eq!(
            one("priority:HIGH"),
            doc! { "custom_fields._priority": "high" }
        );
        assert_eq!(
            error("priority:urgent"),
            "'urgent' is not an option of _priority (options: low, high)"
        );
        assert_eq!(one("points:3"), doc! { "custom_fields._points": 3.0 });
        assert_eq!(
            one("_points:>=1.5"),
            doc! { "custom_fields._points": { "$gte": 1.5 } }
        );
        assert_eq!(
            one("points:1..2.5"),
            doc! { "custom_fields._points": { "$gte": 1.0, "$lte": 2.5 } }
        );
        assert_eq!(error("points:many"), "_points needs a number, not 'many'");
        assert_eq!(error("points:NaN"), "_points needs a number, not 'NaN'");
        assert_eq!(
            one("_due:<=2026-12-31"),
            doc! { "custom_fields._due": { "$lte": "2026-12-31" } }
        );
        assert_eq!(
            one("due:2026-1-5"),
            doc! { "custom_fields._due": "2026-01-05" }
        );
        assert_eq!(
            one("due:2026-01-01..2026-06-30"),
            doc! { "custom_fields._due": { "$gte": "2026-01-01", "$lte": "2026-06-30" } }
        );
        assert_eq!(
            error("due:soon"),
            "_due needs a date (YYYY-MM-DD), not 'soon'"
        );
        assert_eq!(one("urgent:true"), doc! { "custom_fields._urgent": true });
        assert_eq!(
            one("_urgent:false"),
            doc! { "custom_fields._urgent": false }
        );
        assert_eq!(error("urgent:1"), "_urgent is true or false, not '1'");
        assert_eq!(one("os:\"Mac OS\""), doc! { "custom_fields._os": "Mac OS" });
        // Strings do not compare: the value is taken as it is.
        assert_eq!(one("os:>3"), doc! { "custom_fields._os": ">3" });
        // A built-in name wins over a custom field of the same name; `_` picks the custom one.
        assert_eq!(one("status:pending"), doc! { "status": "pending" });
        assert_eq!(one("_status:x"), doc! { "custom_fields._status": "x" });
    }

    #[test]
    fn unknown_field() {
        assert_eq!(
            error("stauts:open"),
            "unknown field 'stauts' (fields: status, label, milestone, assigned_to, \
             reported_by, private, ticket, votes, created, modified, _priority, _points, \
             _due, _urgent, _owner, _os, _status)"
        );
        assert!(error("_label:x").starts_with("unknown field '_label'"));
        assert!(error("http://example.com").starts_with("unknown field 'http'"));
    }

    #[test]
    fn free_text() {
        assert_eq!(one("crash"), doc! { "$or": text("crash") });
        assert_eq!(
            one("\"exact  words\""),
            doc! { "$or": text(r"exact\s+words") }
        );
        assert_eq!(one("a.b*(c)"), doc! { "$or": text(r"a\.b\*\(c\)") });
        assert_eq!(one("\"C++ [x]\""), doc! { "$or": text(r"C\+\+\s+\[x\]") });
        assert_eq!(one("héllo"), doc! { "$or": text("héllo") });
        // Every bare word is its own term.
        let filter = parse("two words", &config(), None).unwrap().filter();
        assert_eq!(
            filter,
            doc! { "$and": [{ "$or": text("two") }, { "$or": text("words") }] }
        );
        // A quote inside a word is just a character.
        assert_eq!(one("it\"s"), doc! { "$or": text("it\\\"s") });
    }

    #[test]
    fn negation() {
        assert_eq!(
            one("-label:wontfix"),
            doc! { "labels": { "$ne": "wontfix" } }
        );
        assert_eq!(
            one("-milestone:none"),
            doc! { "milestone": { "$ne": Bson::Null } }
        );
        assert_eq!(
            one("-status:closed"),
            doc! { "status": { "$nin": ["closed", "wont-fix"] } }
        );
        assert_eq!(one("-word"), doc! { "$nor": text("word") });
        assert_eq!(
            one("-\"exact words\""),
            doc! { "$nor": text(r"exact\s+words") }
        );
        assert_eq!(
            one("-votes:>3"),
            doc! { "$nor": [{ "votes": { "$gt": 3_i64 } }] }
        );
        assert_eq!(
            one("-created:2026-01-01"),
            doc! { "$nor": [{ "created": { "$gte": day("2026-01-01"), "$lt": day("2026-01-02") } }] }
        );
        // Only the first '-' negates.
        assert_eq!(one("--x"), doc! { "$nor": text(r"\-x") });
        assert_eq!(one("well-known"), doc! { "$or": text(r"well\-known") });
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(error("\"open"), "unterminated quote");
        assert_eq!(error("milestone:\"1.0 beta"), "unterminated quote");
        assert_eq!(error("label:"), "no value after 'label:'");
        assert_eq!(error("label: ui"), "no value after 'label:'");
        assert_eq!(error("label:\"\""), "no value after 'label:'");
        assert_eq!(error("label:\"  \""), "no value after 'label:'");
        assert_eq!(
            error("\"\""),
            "empty quotes: put the words to search for between them"
        );
        assert_eq!(error(":ui"), "a field name is missing before ':'");
        assert_eq!(
            error("-"),
            "'-' must be followed by a term, as in -label:wontfix"
        );
        assert_eq!(
            error("a - b"),
            "'-' must be followed by a term, as in -label:wontfix"
        );
        assert_eq!(error("\"a\"b"), "put a space after a closing quote");
        assert_eq!(error("label:\"a\"b"), "put a space after a closing quote");
        assert_eq!(error("a\u{0}b"), "the query contains a control character");
    }

    #[test]
    fn bounds() {
        let long = "x".repeat(MAX_QUERY_CHARS + 1);
        assert_eq!(
            error(&long),
            "the query is too long (at most 1000 characters)"
        );
        // Counted in characters, not bytes.
        let wide = "é ".repeat(MAX_TERMS / 2);
        assert!(parse(&wide, &config(), None).is_ok());
        let terms = vec!["w"; MAX_TERMS].join(" ");
        assert_eq!(
            parse(&terms, &config(), None)
                .unwrap()
                .filter()
                .get_array("$and")
                .unwrap()
                .len(),
            MAX_TERMS
        );
        assert_eq!(error(&format!("{terms} w")), "a query has at most 30 terms");
        let value = "v".repeat(MAX_VALUE_CHARS);
        assert!(parse(&format!("label:{value}"), &config(), None).is_ok());
        let too_long = "v".repeat(MAX_VALUE_CHARS + 1);
        for q in [
            format!("label:{too_long}"),
            format!("label:\"{too_long}\""),
            format!("\"{too_long}\""),
            too_long.clone(),
        ] {
            assert_eq!(error(&q), "a value is at most 200 characters", "{q}");
        }
    }

    #[test]
    fn into_forge_error() {
        let e: crate::error::Error = QueryError("bad".into()).into();
        assert!(matches!(e, crate::error::Error::BadRequest(ref m) if m == "bad"));
        assert_eq!(QueryError("bad".into()).to_string(), "bad");
    }

    #[test]
    fn sort_specs() {
        let c = config();
        assert_eq!(
            sort("ticket_num desc", &c).unwrap(),
            doc! { "ticket_num": -1 }
        );
        assert_eq!(sort("-ticket_num", &c).unwrap(), doc! { "ticket_num": -1 });
        assert_eq!(sort("ticket", &c).unwrap(), doc! { "ticket_num": 1 });
        assert_eq!(sort("", &c).unwrap(), doc! { "ticket_num": 1 });
        assert_eq!(
            sort("summary", &c).unwrap(),
            doc! { "summary": 1, "ticket_num": 1 }
        );
        assert_eq!(
            sort("modified desc", &c).unwrap(),
            doc! { "modified": -1, "ticket_num": 1 }
        );
        assert_eq!(
            sort("-modified", &c).unwrap(),
            doc! { "modified": -1, "ticket_num": 1 }
        );
        assert_eq!(
            sort("votes ASC", &c).unwrap(),
            doc! { "votes": 1, "ticket_num": 1 }
        );
        assert_eq!(
            sort("label", &c).unwrap(),
            doc! { "labels": 1, "ticket_num": 1 }
        );
        assert_eq!(
            sort("_priority asc", &c).unwrap(),
            doc! { "custom_fields._priority": 1, "ticket_num": 1 }
        );
        assert_eq!(
            sort("-due", &c).unwrap(),
            doc! { "custom_fields._due": -1, "ticket_num": 1 }
        );
        assert_eq!(
            sort("status", &c).unwrap(),
            doc! { "status": 1, "ticket_num": 1 }
        );
        assert_eq!(
            sort("_status", &c).unwrap(),
            doc! { "custom_fields._status": 1, "ticket_num": 1 }
        );
        assert_eq!(
            sort("bogus", &c).unwrap_err().0,
            "cannot sort by 'bogus' (sortable: ticket_num, summary, status, milestone, \
             assigned_to, reported_by, created, modified, votes, labels, _priority, _points, \
             _due, _urgent, _owner, _os, _status)"
        );
        assert_eq!(
            sort("summary sideways", &c).unwrap_err().0,
            "sort direction 'sideways': use asc or desc"
        );
        assert!(sort("-summary desc", &c).is_err());
        assert!(sort("summary desc extra", &c).is_err());
        assert!(sort("-", &c).is_err());
        assert!(sort(&"s".repeat(MAX_SORT_CHARS + 1), &c).is_err());
    }

    #[test]
    fn help_is_plain_text() {
        assert!(!HELP.contains('`') && !HELP.contains("**") && !HELP.contains('#'));
        assert!(HELP.contains("status:open") && HELP.contains("-label"));
    }

    /// Query-like text: mostly syntax characters, so the parser's paths are all exercised.
    fn query_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("\"".to_owned()),
            Just(":".to_owned()),
            Just("-".to_owned()),
            Just(" ".to_owned()),
            Just("..".to_owned()),
            Just(">=".to_owned()),
            Just("<".to_owned()),
            Just("status".to_owned()),
            Just("label".to_owned()),
            Just("ticket".to_owned()),
            Just("created".to_owned()),
            Just("priority".to_owned()),
            Just("_due".to_owned()),
            Just("points".to_owned()),
            Just("me".to_owned()),
            Just("2026-01-01".to_owned()),
            "[0-9]{1,3}",
            any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..400).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn parse_never_panics(q in ".{0,2000}") {
            let c = config();
            for me in [None, Some("alice")] {
                if let Ok(query) = parse(&q, &c, me) {
                    prop_assert!(query.filter().to_vec().is_ok());
                }
            }
            let _ = sort(&q, &c);
        }

        #[test]
        fn parse_never_panics_on_query_like_text(q in query_text()) {
            let c = config();
            match parse(&q, &c, Some("alice")) {
                Ok(query) => {
                    let filter = query.filter();
                    prop_assert!(filter.to_vec().is_ok());
                    prop_assert_eq!(query.is_empty(), filter.is_empty());
                }
                Err(e) => prop_assert!(!e.0.is_empty()),
            }
            let _ = sort(&q, &c);
        }
    }
}
