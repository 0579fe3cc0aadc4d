//! The ticket list: a filter form composed into the query language with the free-text query,
//! sortable and chosen columns, pages, the saved searches with their counts, and the bulk
//! edit of the selected tickets; saving and deleting searches.

use axum::extract::{Path, State};
use bson::oid::ObjectId;
use forge_tools::Error;
use forge_tools::paging::{MAX_PAGE, Paging};
use forge_tools::tools::tracker::actions::{self, BulkEdit};
use forge_tools::tools::tracker::config::{FieldType, TrackerConfig};
use forge_tools::tools::tracker::tickets::{self, Ticket};
use forge_tools::tools::tracker::{perm as tperm, query};

use super::common::{
    Fields, PER_PAGE, Update, field_text, list_url, milestone_names, nav, parse_num, safe_next,
    statuses,
};
use super::views::{
    BinRow, BulkForm, Cell, ColumnChoice, ColumnHead, FilterField, FilterForm, ListRow, ListTpl,
    Pager,
};
use crate::auth::{CsrfForm, Empty, redirect_with_flash};
use crate::ctx::ToolReq;
use crate::error::PageResult;
use crate::extract::Query;
use crate::page::render;
use crate::state::AppState;
use crate::views::date;

/// The milestone choice of the bulk form that clears the milestone.
const NO_MILESTONE: &str = "-";

/// Built-in columns: key (also the sort column), header, sortable.
const COLUMNS: &[(&str, &str, bool)] = &[
    ("ticket_num", "#", true),
    ("summary", "Summary", true),
    ("status", "Status", true),
    ("assigned_to", "Owner", true),
    ("reported_by", "Creator", true),
    ("milestone", "Milestone", true),
    ("labels", "Labels", true),
    ("created", "Created", true),
    ("modified", "Updated", true),
    ("votes", "Votes", true),
    ("private", "Private", false),
];

const DEFAULT_COLUMNS: &[&str] = &[
    "ticket_num",
    "summary",
    "status",
    "assigned_to",
    "milestone",
    "modified",
];

/// Most columns one list shows.
const MAX_COLUMNS: usize = 40;

/// Custom fields the filter form offers (those with a few known values).
fn filterable(kind: FieldType) -> bool {
    matches!(
        kind,
        FieldType::Select | FieldType::User | FieldType::Milestone | FieldType::Boolean
    )
}

/// The filter form's values.
struct Filters {
    status: String,
    label: String,
    milestone: String,
    assigned_to: String,
    reported_by: String,
    /// `(custom field name, value)` of the filterable custom fields.
    custom: Vec<(String, String)>,
}

impl Filters {
    fn read(config: &TrackerConfig, f: &Fields, q: &str) -> Self {
        let get = |k: &str| f.get(k).trim().to_owned();
        let mut fl = Self {
            status: String::new(),
            label: get("label"),
            milestone: get("milestone"),
            assigned_to: get("assigned_to"),
            reported_by: get("reported_by"),
            custom: config
                .custom_fields
                .iter()
                .filter(|c| filterable(c.kind))
                .map(|c| (c.name.clone(), get(&c.name)))
                .collect(),
        };
        fl.status = if f.has("status") {
            get("status")
        } else if q.is_empty() && !fl.any() {
            // A bare list shows what is left to do.
            "open".into()
        } else {
            "all".into()
        };
        fl
    }

    fn any(&self) -> bool {
        [
            &self.label,
            &self.milestone,
            &self.assigned_to,
            &self.reported_by,
        ]
        .iter()
        .any(|v| !v.is_empty())
            || self.custom.iter().any(|(_, v)| !v.is_empty())
    }

    /// The filters and the free text as one query.
    fn compose(&self, q: &str) -> Result<String, String> {
        let mut terms: Vec<String> = Vec::new();
        match self.status.as_str() {
            "" | "all" => {}
            "open" | "closed" => terms.push(format!("status:{}", self.status)),
            s => terms.push(format!("status:{}", quote(s)?)),
        }
        for (key, v) in [
            ("label", &self.label),
            ("milestone", &self.milestone),
            ("assigned_to", &self.assigned_to),
            ("reported_by", &self.reported_by),
        ] {
            if !v.is_empty() {
                terms.push(format!("{key}:{}", quote(v)?));
            }
        }
        for (name, v) in &self.custom {
            if !v.is_empty() {
                terms.push(format!("{name}:{}", quote(v)?));
            }
        }
        if !q.is_empty() {
            terms.push(q.to_owned());
        }
        Ok(terms.join(" "))
    }

    /// The filters as list parameters (status always, so the list stays as chosen).
    fn params(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("status".to_owned(), self.status.clone()),
            ("label".to_owned(), self.label.clone()),
            ("milestone".to_owned(), self.milestone.clone()),
            ("assigned_to".to_owned(), self.assigned_to.clone()),
            ("reported_by".to_owned(), self.reported_by.clone()),
        ];
        out.extend(self.custom.iter().cloned());
        if self.status.is_empty() {
            out[0].1 = "all".into();
        }
        out
    }
}

fn quote(v: &str) -> Result<String, String> {
    if v.contains('"') {
        return Err("A filter value cannot contain a double quote (\").".into());
    }
    Ok(format!("\"{v}\""))
}

fn url_of(base: &str, params: &[(String, String)]) -> String {
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    list_url(base, &pairs)
}

/// The sort column (normalized) and whether it is descending.
fn current_sort(sort: &str) -> (String, bool) {
    let mut words = sort.split_whitespace();
    let Some(first) = words.next() else {
        return ("ticket_num".into(), true);
    };
    let (column, dashed) = match first.strip_prefix('-') {
        Some(c) => (c, true),
        None => (first, false),
    };
    let desc = dashed || words.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
    let column = match column.to_lowercase().as_str() {
        "ticket" | "num" => "ticket_num".to_owned(),
        "label" => "labels".to_owned(),
        "assignee" => "assigned_to".to_owned(),
        "reporter" => "reported_by".to_owned(),
        other => other.to_owned(),
    };
    (column, desc)
}

/// Every column this tracker's list can show: key, header, sortable.
fn all_columns(config: &TrackerConfig) -> Vec<(String, String, bool)> {
    COLUMNS
        .iter()
        .map(|(k, l, s)| ((*k).to_owned(), (*l).to_owned(), *s))
        .chain(
            config
                .custom_fields
                .iter()
                .map(|f| (f.name.clone(), f.label.clone(), true)),
        )
        .collect()
}

/// The columns asked for (`cols`, repeated or comma-separated), known ones only; `None` for
/// the default.
fn chosen_columns(config: &TrackerConfig, f: &Fields) -> Option<Vec<String>> {
    let known = all_columns(config);
    let mut out: Vec<String> = Vec::new();
    for c in f.all("cols").iter().flat_map(|v| v.split(',')) {
        let c = c.trim();
        if known.iter().any(|(k, _, _)| k == c) && !out.iter().any(|o| o == c) {
            out.push(c.to_owned());
        }
        if out.len() == MAX_COLUMNS {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

fn default_columns(config: &TrackerConfig) -> Vec<String> {
    DEFAULT_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(
            config
                .custom_fields
                .iter()
                .filter(|f| f.show_in_list)
                .map(|f| f.name.clone()),
        )
        .collect()
}

fn cell(config: &TrackerConfig, k: &Ticket, key: &str, url: &str) -> Cell {
    let text = |s: String| Cell {
        text: s,
        link: None,
        is_summary: false,
    };
    match key {
        "ticket_num" => Cell {
            text: format!("#{}", k.ticket_num),
            link: Some(url.to_owned()),
            is_summary: false,
        },
        "summary" => Cell {
            text: k.summary.clone(),
            link: Some(url.to_owned()),
            is_summary: true,
        },
        "status" => text(k.status.clone()),
        "assigned_to" => text(k.assigned_to.clone().unwrap_or_default()),
        "reported_by" => text(if k.reported_by.is_empty() {
            "(anonymous)".into()
        } else {
            k.reported_by.clone()
        }),
        "milestone" => text(k.milestone.clone().unwrap_or_default()),
        "labels" => text(k.labels.join(", ")),
        "created" => text(date(k.created)),
        "modified" => text(date(k.modified)),
        "votes" => text(k.votes.to_string()),
        "private" => text(if k.private {
            "yes".into()
        } else {
            String::new()
        }),
        name => text(
            config
                .field(name)
                .map(|f| field_text(f.kind, k.custom_fields.get(&f.name)))
                .unwrap_or_default(),
        ),
    }
}

/// `GET /`: the ticket list.
pub async fn list(
    State(st): State<AppState>,
    t: ToolReq,
    Query(pairs): Query<Vec<(String, String)>>,
) -> PageResult {
    let forge = &st.forge;
    let f = Fields(pairs);
    let config = TrackerConfig::of(&t.tool);
    let page_no: Option<u64> = match f.get("page").trim() {
        "" => None,
        p => Some(parse_num("page", p)?),
    };
    let paging = Paging::new(page_no, Some(PER_PAGE), PER_PAGE, MAX_PAGE)?;
    let q = f.get("q").trim().to_owned();
    let sort = f.get("sort").trim().to_owned();
    let filters = Filters::read(&config, &f, &q);
    let composed = filters.compose(&q);
    let effective_q = composed.clone().unwrap_or_else(|_| q.clone());
    let (found, total, error) = match composed {
        Err(m) => (Vec::new(), 0, m),
        Ok(query) => {
            match actions::list(forge, t.viewer(), &t.ctx, &t.tool, &query, &sort, paging).await {
                Ok((found, total)) => (found, total, String::new()),
                // A query or sort that does not parse: the message above an empty list.
                Err(Error::BadRequest(m)) => (Vec::new(), 0, m),
                Err(e) => return Err(t.page_error(e)),
            }
        }
    };

    let chosen = chosen_columns(&config, &f);
    let cols_param = chosen.as_ref().map(|c| c.join(",")).unwrap_or_default();
    let columns = chosen.unwrap_or_else(|| default_columns(&config));
    let mut state = filters.params();
    state.push(("q".into(), q.clone()));
    state.push(("sort".into(), sort.clone()));
    state.push(("cols".into(), cols_param));
    let with = |key: &str, value: String| -> String {
        let mut p: Vec<(String, String)> =
            state.iter().filter(|(k, _)| k != key).cloned().collect();
        p.push((key.to_owned(), value));
        url_of(&t.base, &p)
    };
    let (sort_col, sort_desc) = current_sort(&sort);
    let known = all_columns(&config);
    let heads = columns
        .iter()
        .filter_map(|c| known.iter().find(|(k, _, _)| k == c))
        .map(|(key, label, sortable)| {
            let current = *key == sort_col;
            let next = if current && !sort_desc {
                format!("{key} desc")
            } else {
                format!("{key} asc")
            };
            ColumnHead {
                key: key.clone(),
                label: label.clone(),
                sort_url: sortable.then(|| with("sort", next)),
                arrow: match (current, sort_desc) {
                    (false, _) => "",
                    (true, false) => "▲",
                    (true, true) => "▼",
                },
            }
        })
        .collect();
    let column_choices = known
        .iter()
        .map(|(k, l, _)| ColumnChoice {
            key: k.clone(),
            label: l.clone(),
            checked: columns.contains(k),
        })
        .collect();
    let rows = found
        .iter()
        .map(|k| {
            let url = actions::ticket_url(&t.ctx, &t.tool, k.ticket_num);
            ListRow {
                num: k.ticket_num,
                cells: columns.iter().map(|c| cell(&config, k, c, &url)).collect(),
                private: k.private,
                pending: k.moderation == tickets::PENDING,
            }
        })
        .collect();
    let per = PER_PAGE as usize;
    let pages = (total as usize).div_ceil(per).clamp(1, MAX_PAGE as usize);
    let pager = Pager {
        current: paging.page,
        pages,
        prev: (paging.page > 1).then(|| with("page", (paging.page - 1).to_string())),
        next: (paging.page < pages).then(|| with("page", (paging.page + 1).to_string())),
    };

    let me = t.viewer().username().map(str::to_owned);
    let can_save_shared = t.can(tperm::SAVE_SEARCHES);
    let bins = actions::bins_with_counts(forge, t.viewer(), &t.ctx, &t.tool)
        .await?
        .into_iter()
        .map(|(b, count)| {
            let shared = b.owner.is_none();
            BinRow {
                id: b.id.to_hex(),
                url: list_url(
                    &t.base,
                    &[("status", "all"), ("q", &b.q), ("sort", &b.sort)],
                ),
                count,
                can_delete: if shared {
                    can_save_shared
                } else {
                    b.owner.is_some() && b.owner == me
                },
                shared,
                name: b.name,
            }
        })
        .collect();

    let filter = FilterForm {
        status: filters.status.clone(),
        status_options: [("open", "Open"), ("closed", "Closed"), ("all", "All")]
            .iter()
            .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
            .chain(
                config
                    .statuses()
                    .filter(|s| !matches!(s.as_str(), "open" | "closed" | "all"))
                    .map(|s| (s.clone(), format!("only {s}"))),
            )
            .collect(),
        label: filters.label.clone(),
        milestone: filters.milestone.clone(),
        milestones: milestone_names(&config),
        assigned_to: filters.assigned_to.clone(),
        reported_by: filters.reported_by.clone(),
        fields: config
            .custom_fields
            .iter()
            .filter(|c| filterable(c.kind))
            .map(|c| FilterField {
                name: c.name.clone(),
                label: c.label.clone(),
                kind: c.kind.as_str(),
                options: match c.kind {
                    FieldType::Select => c.options.clone(),
                    FieldType::Milestone => milestone_names(&config),
                    FieldType::Boolean => vec!["true".into(), "false".into()],
                    _ => Vec::new(),
                },
                value: filters
                    .custom
                    .iter()
                    .find(|(n, _)| *n == c.name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            })
            .collect(),
    };
    let tpl = ListTpl {
        page: t.shell(forge, &t.tool.label),
        nav: nav(&t, &config),
        help: query::HELP,
        filter,
        q,
        sort,
        effective_q,
        columns: heads,
        column_choices,
        rows,
        error,
        total,
        pager,
        bins,
        can_update: t.can(tperm::UPDATE),
        can_save_shared,
        bulk: BulkForm {
            statuses: statuses(&config),
            milestones: milestone_names(&config),
            fields: config
                .custom_fields
                .iter()
                .map(|c| (c.name.clone(), c.label.clone()))
                .collect(),
        },
        here: t.page.path.clone(),
    };
    Ok(render(&tpl))
}

fn nonempty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The messages of a refused form, for a flash.
fn messages(errs: &forge_tools::FieldErrors) -> String {
    errs.0
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `POST /_bulk`: one change to the selected tickets.
pub async fn bulk(
    State(st): State<AppState>,
    t: ToolReq<Update>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(pairs);
    let next = safe_next(&t.base, f.get("next"));
    let mut nums: Vec<i64> = Vec::new();
    for n in f.all("ticket") {
        nums.push(parse_num("ticket", n)?);
    }
    let custom_fields = match f.get("field").trim() {
        "" => Vec::new(),
        name => vec![(name.to_owned(), f.get("field_value").trim().to_owned())],
    };
    let edit = BulkEdit {
        status: nonempty(f.get("status")),
        milestone: match f.get("milestone").trim() {
            "" => None,
            NO_MILESTONE => Some(None),
            m => Some(Some(m.to_owned())),
        },
        assigned_to: if f.checked("unassign") {
            Some(None)
        } else {
            nonempty(f.get("assigned_to")).map(Some)
        },
        labels_add: actions::parse_labels(f.get("labels_add")),
        labels_remove: actions::parse_labels(f.get("labels_remove")),
        custom_fields,
        private: match f.get("private") {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
    };
    match actions::bulk(&st.forge, t.viewer(), &t.ctx, &t.tool, &nums, edit).await {
        Ok(0) => Ok(redirect_with_flash(&st, &next, "No ticket changed.")),
        Ok(1) => Ok(redirect_with_flash(&st, &next, "Changed 1 ticket.")),
        Ok(n) => Ok(redirect_with_flash(
            &st,
            &next,
            &format!("Changed {n} tickets."),
        )),
        Err(Error::Invalid(errs)) => Ok(redirect_with_flash(
            &st,
            &next,
            &format!("Nothing changed: {}", messages(&errs)),
        )),
        Err(e) => Err(t.page_error(e)),
    }
}

/// `POST /_bins`: saves the list's query and sort (for the viewer, or shared).
pub async fn save_bin(
    State(st): State<AppState>,
    t: ToolReq,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(pairs);
    let next = safe_next(&t.base, f.get("next"));
    let saved = actions::save_bin(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        f.get("name"),
        f.get("q").trim(),
        f.get("sort").trim(),
        f.checked("shared"),
    )
    .await;
    match saved {
        Ok(b) => Ok(redirect_with_flash(
            &st,
            &list_url(
                &t.base,
                &[("status", "all"), ("q", &b.q), ("sort", &b.sort)],
            ),
            &format!("Saved the search “{}”.", b.name),
        )),
        Err(Error::Invalid(errs)) => Ok(redirect_with_flash(
            &st,
            &next,
            &format!("The search was not saved: {}", messages(&errs)),
        )),
        Err(e) => Err(t.page_error(e)),
    }
}

/// `POST /_bins/{id}/delete`.
pub async fn delete_bin(
    State(st): State<AppState>,
    t: ToolReq,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let id = ObjectId::parse_str(&id).map_err(|_| Error::NotFound("saved search"))?;
    actions::delete_bin(&st.forge, t.viewer(), &t.ctx, &t.tool, id)
        .await
        .map_err(|e| t.page_error(e))?;
    Ok(redirect_with_flash(
        &st,
        &t.base,
        "Deleted the saved search.",
    ))
}
