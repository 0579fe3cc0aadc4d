//! Sign-up, log-in, log-out and personal access tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{CookieJar, SameSite};
use forge_tools::ratelimit::accounts::{self as limits, Gate};
use forge_tools::users::NewUser;
use forge_tools::{Error, tokens};
use serde::Deserialize;

use crate::auth::{CsrfForm, Empty, SESSION_COOKIE, cookie, redirect_with_flash};
use crate::ctx::SignedIn;
use crate::error::{PageError, PageResult};
use crate::extract::Query;
use crate::page::{Page, PageCtx, render, render_status};
use crate::state::AppState;
use crate::views::{FormState, LoginTpl, SignupTpl, TokenRow, TokensTpl, date};

#[derive(Deserialize, Default)]
pub struct SignupForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn signup_page(page: PageCtx) -> Response {
    render(&SignupTpl {
        page: Page::new(&page, "Sign up"),
        form: FormState::default(),
    })
}

pub async fn signup(
    State(st): State<AppState>,
    page: PageCtx,
    CsrfForm(f): CsrfForm<SignupForm>,
) -> PageResult {
    let form = FormState::new(&[
        ("username", &f.username),
        ("display_name", &f.display_name),
        ("email", &f.email),
    ]);
    let ip = page.viewer.ip.clone().unwrap_or_default();
    if !limits::signup(st.forge.db(), &ip).await? {
        let tpl = SignupTpl {
            page: Page::new(&page, "Sign up"),
            form: form
                .with_message("Too many sign-ups from your address; wait a minute and try again."),
        };
        return Ok(render_status(StatusCode::TOO_MANY_REQUESTS, &tpl));
    }
    let new = NewUser {
        username: f.username.trim().to_owned(),
        email: f.email,
        display_name: f.display_name,
        password: f.password,
        site_admin: false,
    };
    match st.forge.sign_up(&page.viewer, new).await {
        Ok(user) => {
            let token = st.forge.log_in(&page.viewer, &user).await?;
            let mut res = redirect_with_flash(
                &st,
                &format!("/u/{}/", user.username),
                "Welcome to Forge! Your account is ready.",
            );
            res.headers_mut()
                .append(SET_COOKIE, session_cookie(&st, token));
            Ok(res)
        }
        Err(Error::Invalid(errs)) => {
            let tpl = SignupTpl {
                page: Page::new(&page, "Sign up"),
                form: form.with_errors(errs),
            };
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl))
        }
        Err(e) => Err(e.into()),
    }
}

fn session_cookie(st: &AppState, token: String) -> axum::http::HeaderValue {
    let max_age = forge_tools::sessions::LIFETIME.as_secs() as i64;
    cookie(
        SESSION_COOKIE,
        token,
        st.forge.config().secure_cookies(),
        SameSite::Lax,
        Some(max_age),
    )
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only same-site paths are followed after log-in (no open redirect). Browsers drop tabs and
/// line breaks from URLs and read `\` as `/`, so the check is made on what a browser would
/// follow: anything with control characters or non-ASCII, or that a browser would read as
/// `//host`, goes home instead.
pub(crate) fn safe_next(next: &str) -> String {
    let visible = next.bytes().all(|b| b.is_ascii_graphic());
    let as_browser_reads = next.replace('\\', "/");
    if visible && as_browser_reads.starts_with('/') && !as_browser_reads.starts_with("//") {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_site() {
        for ok in [
            "/",
            "/p/x/wiki/Home/",
            "/search?q=a%20b",
            "/p/x/wiki/%C3%A9/",
        ] {
            assert_eq!(safe_next(ok), ok);
        }
        for bad in [
            "//evil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/\r\n/evil.com",
            "/\\evil.com",
            "\\/evil.com",
            "/\\/evil.com",
            "https://evil.com",
            "evil.com",
            " /evil",
            "/é",
            "",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }
}

pub async fn login_page(page: PageCtx, Query(q): Query<NextQuery>) -> Response {
    render(&LoginTpl {
        page: Page::new(&page, "Log in"),
        form: FormState::default(),
        next: safe_next(&q.next),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(st): State<AppState>,
    page: PageCtx,
    CsrfForm(f): CsrfForm<LoginForm>,
) -> PageResult {
    let username = f.username.trim().to_owned();
    let next = safe_next(&f.next);
    let ip = page.viewer.ip.clone().unwrap_or_default();
    let refuse = |status: StatusCode, message: String| {
        let tpl = LoginTpl {
            page: Page::new(&page, "Log in"),
            form: FormState::new(&[("username", &username)]).with_message(message),
            next: next.clone(),
        };
        render_status(status, &tpl)
    };
    match limits::gate(st.forge.db(), &ip, &username).await? {
        Gate::Closed => {
            return Ok(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts from your address; wait a few minutes and try again."
                    .into(),
            ));
        }
        Gate::Slow(pause) => tokio::time::sleep(pause).await,
        Gate::Open => {}
    }
    match st.forge.authenticate(&username, &f.password).await? {
        Some(user) => {
            limits::succeeded(st.forge.db(), &ip, &username).await?;
            let token = st.forge.log_in(&page.viewer, &user).await?;
            let mut res =
                redirect_with_flash(&st, &next, &format!("Logged in as {}.", user.username));
            res.headers_mut()
                .append(SET_COOKIE, session_cookie(&st, token));
            Ok(res)
        }
        None => {
            limits::failed(st.forge.db(), &ip, &username).await?;
            Ok(refuse(
                StatusCode::UNAUTHORIZED,
                "Wrong username or password.".into(),
            ))
        }
    }
}

pub async fn logout(
    State(st): State<AppState>,
    page: PageCtx,
    jar: CookieJar,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    if let Some(c) = jar.get(SESSION_COOKIE) {
        st.forge.log_out(&page.viewer, c.value()).await?;
    }
    let mut res = redirect_with_flash(&st, "/", "You are logged out.");
    res.headers_mut().append(
        SET_COOKIE,
        cookie(
            SESSION_COOKIE,
            String::new(),
            st.forge.config().secure_cookies(),
            SameSite::Lax,
            Some(0),
        ),
    );
    Ok(res)
}

async fn tokens_view(
    st: &AppState,
    SignedIn { page, user }: &SignedIn,
    new_token: Option<String>,
    form: FormState,
    status: StatusCode,
) -> PageResult {
    let rows = tokens::list(st.forge.db(), user.id)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id.to_string(),
            name: t.name,
            created: date(t.created),
            last_used: t.last_used.map(date).unwrap_or_else(|| "never".into()),
        })
        .collect();
    Ok(render_status(
        status,
        &TokensTpl {
            page: Page::new(page, "Access tokens"),
            tokens: rows,
            new_token,
            form,
        },
    ))
}

pub async fn tokens_page(State(st): State<AppState>, me: SignedIn) -> PageResult {
    tokens_view(&st, &me, None, FormState::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
}

pub async fn create_token(
    State(st): State<AppState>,
    me: SignedIn,
    CsrfForm(f): CsrfForm<TokenForm>,
) -> PageResult {
    match tokens::create(st.forge.db(), me.user.id, &f.name).await {
        Ok((_, secret)) => {
            let form = FormState::default();
            tokens_view(&st, &me, Some(secret), form, StatusCode::CREATED).await
        }
        Err(Error::Invalid(errs)) => {
            let form = FormState::new(&[("name", &f.name)]).with_errors(errs);
            tokens_view(&st, &me, None, form, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_token(
    State(st): State<AppState>,
    page: PageCtx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    // After logging in, back to the token list (not to this form's action).
    let user = page
        .viewer
        .require_user()
        .map_err(|e| PageError::from(e).with_next("/auth/tokens"))?;
    let id = forge_tools::ids::TokenId::parse(&id).ok_or(Error::NotFound("token"))?;
    if !tokens::revoke(st.forge.db(), user.id, id).await? {
        return Err(Error::NotFound("token").into());
    }
    Ok(redirect_with_flash(&st, "/auth/tokens", "Token revoked."))
}

/// `/auth/` itself has nothing to show.
pub async fn auth_index() -> impl IntoResponse {
    Redirect::to("/auth/login")
}
