//! Filing a ticket: the form (description from the tracker's template, an input per custom
//! field, a honeypot for robots) and the answer to it: the ticket, or the form again with
//! every value kept and each message by its field.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use forge_tools::discussion::HONEYPOT;
use forge_tools::tools::tracker::actions::{self, NewTicket};
use forge_tools::tools::tracker::config::{FieldType, TrackerConfig};
use forge_tools::tools::tracker::perm as tperm;
use forge_tools::tools::tracker::tickets;
use forge_tools::{Error, FieldErrors};

use super::common::{
    Fields, field_inputs, known_fields, may_file, milestone_names, nav, other_errors, sent_field,
    statuses,
};
use super::views::NewTpl;
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::ToolReq;
use crate::error::{PageError, PageResult};
use crate::page::render_status;
use crate::state::AppState;
use crate::views::FormState;

/// The built-in inputs of the form.
const NEW_FIELDS: &[&str] = &[
    "summary",
    "description",
    "labels",
    "assigned_to",
    "milestone",
    "status",
    "private",
];

/// Refuses those who may not file tickets here (anonymous visitors are sent to log in).
fn check(t: &ToolReq, config: &TrackerConfig) -> Result<(), PageError> {
    if may_file(t, config) {
        Ok(())
    } else if t.viewer().user.is_none() {
        Err(t.page_error(Error::Unauthenticated))
    } else {
        Err(t.page_error(Error::Forbidden))
    }
}

fn form_page(
    st: &AppState,
    t: &ToolReq,
    config: &TrackerConfig,
    values: &Fields,
    errors: FieldErrors,
    message: Option<String>,
    status: StatusCode,
) -> Response {
    let fields = field_inputs(
        config,
        |name| {
            let kind = config.field(name).map(|f| f.kind);
            match kind {
                Some(k) => sent_field(k, values, name),
                None => String::new(),
            }
        },
        &errors,
    );
    let other = other_errors(&errors, &known_fields(config, NEW_FIELDS));
    let mut form = FormState::new(&[
        ("summary", values.get("summary")),
        ("description", &values.text("description")),
        ("labels", values.get("labels")),
        ("assigned_to", values.get("assigned_to")),
        ("milestone", values.get("milestone")),
        ("status", values.get("status")),
        ("private", if values.checked("private") { "on" } else { "" }),
    ])
    .with_errors(errors);
    if let Some(m) = message {
        form = form.with_message(m);
    }
    let tpl = NewTpl {
        page: t.shell(&st.forge, "New ticket"),
        nav: nav(t, config),
        form,
        statuses: statuses(config),
        can_set_status: t.can(tperm::UPDATE),
        milestones: milestone_names(config),
        fields,
        honeypot: HONEYPOT,
        other_errors: other,
        anonymous: t.viewer().user.is_none(),
    };
    render_status(status, &tpl)
}

/// `GET /new`.
pub async fn form(State(st): State<AppState>, t: ToolReq) -> PageResult {
    let config = TrackerConfig::of(&t.tool);
    check(&t, &config)?;
    let mut values = vec![
        ("description".to_owned(), config.template.clone()),
        ("status".to_owned(), config.initial_status().to_owned()),
    ];
    for f in &config.custom_fields {
        let default = match f.kind {
            FieldType::Boolean => match f.default.trim() {
                "true" | "on" | "yes" | "1" => "true".to_owned(),
                _ => String::new(),
            },
            _ => f.default.clone(),
        };
        values.push((f.name.clone(), default));
    }
    Ok(form_page(
        &st,
        &t,
        &config,
        &Fields(values),
        FieldErrors::new(),
        None,
        StatusCode::OK,
    ))
}

fn optional(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// `POST /new`.
pub async fn create(
    State(st): State<AppState>,
    t: ToolReq,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let config = TrackerConfig::of(&t.tool);
    check(&t, &config)?;
    let f = Fields(pairs);
    let new = NewTicket {
        summary: f.get("summary").to_owned(),
        description: f.text("description"),
        status: if t.can(tperm::UPDATE) {
            optional(f.get("status"))
        } else {
            None
        },
        labels: actions::parse_labels(f.get("labels")),
        assigned_to: optional(f.get("assigned_to")),
        milestone: optional(f.get("milestone")),
        private: f.checked("private"),
        custom_fields: config
            .custom_fields
            .iter()
            .map(|c| (c.name.clone(), sent_field(c.kind, &f, &c.name)))
            .collect(),
        honeypot: Some(f.get(HONEYPOT).to_owned()),
    };
    match actions::create(&st.forge, t.viewer(), &t.ctx, &t.tool, new).await {
        Ok(k) => {
            let url = actions::ticket_url(&t.ctx, &t.tool, k.ticket_num);
            if k.moderation == tickets::PENDING {
                let message = format!(
                    "Ticket #{} was filed and waits for a moderator before others see it.",
                    k.ticket_num
                );
                // An anonymous reporter cannot see their waiting ticket: back to the list.
                let to = if actions::visible(&k, t.viewer(), &t.ctx, &t.tool) {
                    url
                } else {
                    t.base.clone()
                };
                Ok(redirect_with_flash(&st, &to, &message))
            } else {
                Ok(redirect_with_flash(
                    &st,
                    &url,
                    &format!("Filed ticket #{}.", k.ticket_num),
                ))
            }
        }
        Err(Error::Invalid(errs)) => Ok(form_page(
            &st,
            &t,
            &config,
            &f,
            errs,
            Some("The ticket was not filed: see the messages below.".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )),
        // Over the hourly limit: the form comes back as typed.
        Err(Error::RateLimited(m)) => Ok(form_page(
            &st,
            &t,
            &config,
            &f,
            FieldErrors::new(),
            Some(m),
            StatusCode::TOO_MANY_REQUESTS,
        )),
        Err(e) => Err(t.page_error(e)),
    }
}
