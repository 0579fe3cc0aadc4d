//! The tracker's milestones with their progress, its settings (statuses, custom fields,
//! milestones, ticket template, anonymous tickets) for admins, and the queue of tickets
//! waiting for a moderator.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use forge_tools::Error;
use forge_tools::paging::{MAX_PAGE, Paging};
use forge_tools::tools::tracker::actions;
use forge_tools::tools::tracker::config::{
    CustomField, FieldType, MAX_FIELDS, MAX_MILESTONES, Milestone, TrackerConfig,
};

use super::common::{
    COMMENTS_QUEUE_PATH, Fields, Moderate, PENDING_PATH, PER_PAGE, list_url, nav, parse_num,
};
use super::views::{
    AdminTpl, FieldRow, MilestoneFormRow, MilestoneRow, MilestonesTpl, Pager, PendingRow,
    PendingTpl,
};
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::{Admin, ToolReq};
use crate::error::PageResult;
use crate::extract::Query;
use crate::page::{render, render_status};
use crate::state::AppState;
use crate::views::{FormState, date};

/// Blank rows the settings form offers for new custom fields and milestones.
const BLANK_ROWS: usize = 3;
/// Rows of either table read from a form, at most.
const MAX_ROWS: usize = 2 * MAX_MILESTONES;

/// `GET /_milestones`.
pub async fn milestones(State(st): State<AppState>, t: ToolReq) -> PageResult {
    let config = TrackerConfig::of(&t.tool);
    let list = actions::milestones(&st.forge, t.viewer(), &t.ctx, &t.tool).await?;
    let rows = list
        .into_iter()
        .map(|(m, closed, total)| MilestoneRow {
            url: list_url(&t.base, &[("status", "all"), ("milestone", &m.name)]),
            open_url: list_url(&t.base, &[("status", "open"), ("milestone", &m.name)]),
            percent: (closed * 100).checked_div(total).unwrap_or(0),
            closed_tickets: closed,
            total,
            name: m.name,
            description: m.description,
            due: m.due,
            closed: m.closed,
        })
        .collect();
    Ok(render(&MilestonesTpl {
        page: t.shell(&st.forge, "Milestones"),
        nav: nav(&t, &config),
        rows,
    }))
}

/// The settings form as typed (or as saved).
struct Settings {
    open: String,
    closed: String,
    fields: Vec<FieldRow>,
    milestones: Vec<MilestoneFormRow>,
    template: String,
    anonymous: bool,
}

impl Settings {
    fn of(config: &TrackerConfig) -> Self {
        Self {
            open: config.open_statuses.join(" "),
            closed: config.closed_statuses.join(" "),
            fields: config
                .custom_fields
                .iter()
                .enumerate()
                .map(|(i, f)| FieldRow {
                    index: i,
                    name: f.name.clone(),
                    label: f.label.clone(),
                    kind: f.kind.as_str().to_owned(),
                    options: f.options.join(", "),
                    required: f.required,
                    default: f.default.clone(),
                    show_in_list: f.show_in_list,
                })
                .collect(),
            milestones: config
                .milestones
                .iter()
                .enumerate()
                .map(|(i, m)| MilestoneFormRow {
                    index: i,
                    name: m.name.clone(),
                    description: m.description.clone(),
                    due: m.due.clone(),
                    closed: m.closed,
                })
                .collect(),
            template: config.template.clone(),
            anonymous: config.anonymous_tickets,
        }
    }

    /// The rows of a submitted form, by index; blank and removed rows left out.
    fn read(f: &Fields) -> Self {
        let mut fields: BTreeMap<usize, FieldRow> = BTreeMap::new();
        let mut milestones: BTreeMap<usize, MilestoneFormRow> = BTreeMap::new();
        let mut removed_fields: Vec<usize> = Vec::new();
        let mut removed_milestones: Vec<usize> = Vec::new();
        for (key, value) in &f.0 {
            let Some((table, rest)) = key.split_once('_') else {
                continue;
            };
            let Some((index, column)) = rest.split_once('_') else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            if index >= MAX_ROWS {
                continue;
            }
            match table {
                "cf" => {
                    let row = fields.entry(index).or_insert_with(|| FieldRow {
                        index,
                        name: String::new(),
                        label: String::new(),
                        kind: "string".into(),
                        options: String::new(),
                        required: false,
                        default: String::new(),
                        show_in_list: false,
                    });
                    match column {
                        "name" => row.name = value.trim().to_owned(),
                        "label" => row.label = value.trim().to_owned(),
                        "type" => row.kind = value.trim().to_owned(),
                        "options" => row.options = value.trim().to_owned(),
                        "required" => row.required = true,
                        "default" => row.default = value.trim().to_owned(),
                        "show" => row.show_in_list = true,
                        "remove" => removed_fields.push(index),
                        _ => {}
                    }
                }
                "ms" => {
                    let row = milestones.entry(index).or_insert_with(|| MilestoneFormRow {
                        index,
                        name: String::new(),
                        description: String::new(),
                        due: String::new(),
                        closed: false,
                    });
                    match column {
                        "name" => row.name = value.trim().to_owned(),
                        "description" => row.description = value.replace("\r\n", "\n"),
                        "due" => row.due = value.trim().to_owned(),
                        "closed" => row.closed = true,
                        "remove" => removed_milestones.push(index),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let fields = fields
            .into_values()
            .filter(|r| !removed_fields.contains(&r.index))
            .filter(|r| !(r.name.is_empty() && r.label.is_empty()))
            .enumerate()
            .map(|(i, r)| FieldRow { index: i, ..r })
            .collect();
        let milestones = milestones
            .into_values()
            .filter(|r| !removed_milestones.contains(&r.index))
            .filter(|r| !(r.name.is_empty() && r.description.trim().is_empty() && r.due.is_empty()))
            .enumerate()
            .map(|(i, r)| MilestoneFormRow { index: i, ..r })
            .collect();
        Self {
            open: f.get("open_statuses").trim().to_owned(),
            closed: f.get("closed_statuses").trim().to_owned(),
            fields,
            milestones,
            template: f.text("template"),
            anonymous: f.checked("anonymous_tickets"),
        }
    }

    /// The configuration the form describes, or what is wrong with it by section.
    fn config(&self) -> Result<TrackerConfig, Error> {
        let mut errors = forge_tools::FieldErrors::new();
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let mut custom_fields = Vec::new();
        if self.fields.len() > MAX_FIELDS {
            errors.add(
                "custom_fields",
                format!("At most {MAX_FIELDS} custom fields"),
            );
        }
        for r in self.fields.iter().take(MAX_FIELDS + 1) {
            let Some(kind) = FieldType::parse(&r.kind) else {
                errors.add(
                    "custom_fields",
                    format!("Field \"{}\": choose a type from the list", r.label),
                );
                continue;
            };
            let name = if r.name.is_empty() {
                name_from_label(&r.label)
            } else if r.name.starts_with('_') {
                r.name.clone()
            } else {
                format!("_{}", r.name)
            };
            custom_fields.push(CustomField {
                name,
                label: r.label.clone(),
                kind,
                required: r.required,
                default: r.default.clone(),
                options: r
                    .options
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect(),
                show_in_list: r.show_in_list,
            });
        }
        let config = TrackerConfig {
            open_statuses: words(&self.open),
            closed_statuses: words(&self.closed),
            custom_fields,
            milestones: self
                .milestones
                .iter()
                .map(|m| Milestone {
                    name: m.name.clone(),
                    description: m.description.clone(),
                    due: m.due.clone(),
                    closed: m.closed,
                })
                .collect(),
            template: self.template.clone(),
            anonymous_tickets: self.anonymous,
        };
        if let Err(Error::Invalid(more)) = config.validate() {
            errors.0.extend(more.0);
        }
        errors.into_result().map(|()| config)
    }
}

/// A field name from its label: `Found in` → `_found_in`.
fn name_from_label(label: &str) -> String {
    let mut out = String::from("_");
    for c in label.trim().to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_end_matches('_');
    let mut name: String = if trimmed.is_empty() {
        "_field".into()
    } else {
        trimmed.to_owned()
    };
    name.truncate(40);
    name
}

fn settings_page(
    st: &AppState,
    t: &ToolReq<Admin>,
    s: Settings,
    errors: forge_tools::FieldErrors,
    status: StatusCode,
) -> Response {
    let config = TrackerConfig::of(&t.tool);
    let mut fields = s.fields;
    let mut milestones = s.milestones;
    for _ in 0..BLANK_ROWS {
        fields.push(FieldRow {
            index: fields.len(),
            name: String::new(),
            label: String::new(),
            kind: "string".into(),
            options: String::new(),
            required: false,
            default: String::new(),
            show_in_list: false,
        });
        milestones.push(MilestoneFormRow {
            index: milestones.len(),
            name: String::new(),
            description: String::new(),
            due: String::new(),
            closed: false,
        });
    }
    let form = FormState::new(&[
        ("open_statuses", &s.open),
        ("closed_statuses", &s.closed),
        ("template", &s.template),
    ])
    .with_errors(errors.clone());
    let tpl = AdminTpl {
        page: t.shell(&st.forge, "Tracker settings"),
        nav: nav(t, &config),
        form,
        fields,
        milestones,
        types: FieldType::ALL.iter().map(|k| k.as_str()).collect(),
        anonymous: s.anonymous,
        errors,
    };
    render_status(status, &tpl)
}

/// `GET /_admin`.
pub async fn settings(State(st): State<AppState>, t: ToolReq<Admin>) -> Response {
    let config = TrackerConfig::of(&t.tool);
    settings_page(
        &st,
        &t,
        Settings::of(&config),
        forge_tools::FieldErrors::new(),
        StatusCode::OK,
    )
}

/// `POST /_admin`.
pub async fn save_settings(
    State(st): State<AppState>,
    t: ToolReq<Admin>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let s = Settings::read(&Fields(pairs));
    let saved = match s.config() {
        Ok(config) => actions::save_config(&st.forge, &t.ctx, &t.tool, &config).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(()) => Ok(redirect_with_flash(
            &st,
            &format!("{}_admin", t.base),
            "Tracker settings saved.",
        )),
        Err(Error::Invalid(errs)) => Ok(settings_page(
            &st,
            &t,
            s,
            errs,
            StatusCode::UNPROCESSABLE_ENTITY,
        )),
        Err(e) => Err(t.page_error(e)),
    }
}

/// `GET /_pending`: tickets waiting for a moderator.
pub async fn pending(
    State(st): State<AppState>,
    t: ToolReq<Moderate>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(pairs);
    let config = TrackerConfig::of(&t.tool);
    let page_no: Option<u64> = match f.get("page").trim() {
        "" => None,
        p => Some(parse_num("page", p)?),
    };
    let paging = Paging::new(page_no, Some(PER_PAGE), PER_PAGE, MAX_PAGE)?;
    let (list, total) = actions::pending(&st.forge, &t.ctx, &t.tool, paging).await?;
    let rows = list
        .into_iter()
        .map(|k| PendingRow {
            url: actions::ticket_url(&t.ctx, &t.tool, k.ticket_num),
            num: k.ticket_num,
            summary: k.summary,
            reported_by: if k.reported_by.is_empty() {
                "(anonymous)".into()
            } else {
                k.reported_by
            },
            created: date(k.created),
        })
        .collect();
    let here = format!("{}{}", t.base, PENDING_PATH);
    let pages = (total as usize)
        .div_ceil(PER_PAGE as usize)
        .clamp(1, MAX_PAGE as usize);
    let page_url = |n: usize| format!("{here}?page={n}");
    let pager = Pager {
        current: paging.page,
        pages,
        prev: (paging.page > 1).then(|| page_url(paging.page - 1)),
        next: (paging.page < pages).then(|| page_url(paging.page + 1)),
    };
    Ok(render(&PendingTpl {
        page: t.shell(&st.forge, "Tickets waiting for a moderator"),
        nav: nav(&t, &config),
        rows,
        total,
        pager,
        here: t.page.path.clone(),
        comments_queue: format!("{}{}", t.base, COMMENTS_QUEUE_PATH),
    }))
}
