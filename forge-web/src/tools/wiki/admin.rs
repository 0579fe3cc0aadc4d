//! The wiki's settings page (its home page), for the tool's admins.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use forge_tools::Error;
use forge_tools::tools::wiki;
use serde::Deserialize;

use super::common::nav;
use super::templates::AdminTpl;
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::{Admin, ToolReq};
use crate::error::PageResult;
use crate::page::render_status;
use crate::state::AppState;
use crate::views::FormState;

fn settings(st: &AppState, t: &ToolReq<Admin>, form: FormState, status: StatusCode) -> Response {
    let tpl = AdminTpl {
        page: t.shell(&st.forge, "Wiki settings"),
        nav: nav(t),
        form,
    };
    render_status(status, &tpl)
}

pub async fn admin_page(State(st): State<AppState>, t: ToolReq<Admin>) -> Response {
    let form = FormState::new(&[("home", &wiki::home_page(&t.tool))]);
    settings(&st, &t, form, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct AdminForm {
    #[serde(default)]
    home: String,
}

pub async fn save_admin(
    State(st): State<AppState>,
    t: ToolReq<Admin>,
    CsrfForm(f): CsrfForm<AdminForm>,
) -> PageResult {
    match wiki::set_home(&st.forge, t.viewer(), &t.ctx, &t.tool, &f.home).await {
        Ok(()) => Ok(redirect_with_flash(
            &st,
            &format!("{}_admin", t.base),
            "Wiki settings saved.",
        )),
        Err(Error::Invalid(errs)) => {
            let form = FormState::new(&[("home", &f.home)]).with_errors(errs);
            Ok(settings(&st, &t, form, StatusCode::UNPROCESSABLE_ENTITY))
        }
        Err(e) => Err(t.page_error(e)),
    }
}
