//! Starting a topic (`GET|POST /{forum}/new`): subject and text (markdown, with a preview),
//! a honeypot for robots; a refused form comes back as typed with each message by its
//! field. A topic that waits for a moderator says so to its author.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use forge_tools::discussion::{HONEYPOT, Status};
use forge_tools::tools::forum::forums;
use forge_tools::tools::forum::model::Forum;
use forge_tools::tools::forum::topics::{self, NewTopic};
use forge_tools::{Error, FieldErrors};

use super::common::{Fields, nav};
use super::views::NewTopicTpl;
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::ToolReq;
use crate::discussion::{CanPost, render_preview};
use crate::error::PageResult;
use crate::page::render_status;
use crate::state::AppState;
use crate::views::FormState;

struct Sent<'a> {
    subject: &'a str,
    text: &'a str,
    errors: FieldErrors,
    message: Option<String>,
    preview: Option<String>,
}

fn form_page(
    st: &AppState,
    t: &ToolReq<CanPost>,
    f: &Forum,
    sent: Sent<'_>,
    status: StatusCode,
) -> Response {
    let forum_url = format!("{}{}/", t.base, f.shortname);
    let mut form =
        FormState::new(&[("subject", sent.subject), ("text", sent.text)]).with_errors(sent.errors);
    if let Some(m) = sent.message {
        form = form.with_message(m);
    }
    let tpl = NewTopicTpl {
        page: t.shell(&st.forge, &format!("New topic in {}", f.name)),
        nav: nav(t),
        forum_name: f.name.clone(),
        action: format!("{forum_url}new"),
        forum_url,
        other_errors: form.other_errors(&["subject", "text"]),
        form,
        honeypot: HONEYPOT,
        preview: sent.preview,
        anonymous: t.viewer().user.is_none(),
    };
    render_status(status, &tpl)
}

/// `GET /{forum}/new`.
pub async fn form(
    State(st): State<AppState>,
    t: ToolReq<CanPost>,
    Path(forum): Path<String>,
) -> PageResult {
    let f = forums::get(&st.forge, &t.ctx, &t.tool, &forum)
        .await
        .map_err(|e| t.page_error(e))?;
    if f.deleted {
        return Err(t.page_error(Error::NotFound("forum")));
    }
    let sent = Sent {
        subject: "",
        text: "",
        errors: FieldErrors::new(),
        message: None,
        preview: None,
    };
    Ok(form_page(&st, &t, &f, sent, StatusCode::OK))
}

/// `POST /{forum}/new`: the topic (to its page), the form again with a preview
/// (`preview` button), or the form with the messages.
pub async fn create(
    State(st): State<AppState>,
    t: ToolReq<CanPost>,
    Path(forum): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let forge = &st.forge;
    let f = forums::get(forge, &t.ctx, &t.tool, &forum)
        .await
        .map_err(|e| t.page_error(e))?;
    let fields = Fields(pairs);
    let subject = fields.get("subject").to_owned();
    let text = fields.text("text");
    if !fields.get("preview").is_empty() {
        let (preview, message) = if text.len() as u64 > forge.config().max_text_bytes {
            (None, Some("The text is too long to post.".to_owned()))
        } else {
            let html = render_preview(forge, &t, &text)
                .await
                .map_err(|e| t.page_error(e))?;
            (Some(html), None)
        };
        let sent = Sent {
            subject: &subject,
            text: &text,
            errors: FieldErrors::new(),
            message,
            preview,
        };
        return Ok(form_page(&st, &t, &f, sent, StatusCode::OK));
    }
    let new = NewTopic {
        subject: subject.clone(),
        text: text.clone(),
        honeypot: Some(fields.get(HONEYPOT).to_owned()),
    };
    let refused = |errors: FieldErrors, message: String, status| {
        let sent = Sent {
            subject: &subject,
            text: &text,
            errors,
            message: Some(message),
            preview: None,
        };
        Ok(form_page(&st, &t, &f, sent, status))
    };
    match topics::create(forge, t.viewer(), &t.ctx, &t.tool, &f, new).await {
        Ok((topic, post)) => {
            let url = topics::url(&t.ctx, &t.tool, &f, topic.id);
            if post.status == Status::Ok {
                return Ok(redirect_with_flash(&st, &url, "Your topic is posted."));
            }
            let message = "Your topic waits for a moderator before others see it.";
            // An anonymous author cannot see their waiting topic: back to the forum.
            let to = if topics::visible(t.viewer(), &t.ctx, &t.tool, &topic) {
                url
            } else {
                format!("{}{}/", t.base, f.shortname)
            };
            Ok(redirect_with_flash(&st, &to, message))
        }
        Err(Error::Invalid(errs)) => refused(
            errs,
            "The topic was not posted: see the messages below.".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(Error::RateLimited(m)) => refused(FieldErrors::new(), m, StatusCode::TOO_MANY_REQUESTS),
        Err(e) => Err(t.page_error(e)),
    }
}
