//! Who is asking: the viewer extractor (session cookie or bearer token), CSRF protection for
//! forms (a per-browser token in an HttpOnly, SameSite=Strict cookie that each form echoes),
//! and one-shot flash messages.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request, State};
use axum::http::header::{AUTHORIZATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use forge_tools::Viewer;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, urlencode};
use crate::page::{PageCtx, error_response};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "forge_session";
pub const CSRF_COOKIE: &str = "forge_csrf";
pub const FLASH_COOKIE: &str = "forge_flash";

/// The CSRF token forms must echo: bound to the login session when there is one, else the
/// browser's CSRF cookie. `fresh` when this request brought neither (no form it sends can
/// carry the right token, so its body need not be read).
#[derive(Clone)]
pub struct CsrfToken {
    pub value: String,
    pub fresh: bool,
}

/// A flash message carried over from the previous response.
#[derive(Clone, Default)]
pub struct Flash(pub Option<String>);

/// Builds a cookie with the forge's attributes.
pub fn cookie(
    name: &'static str,
    value: String,
    secure: bool,
    same_site: SameSite,
    max_age: Option<i64>,
) -> HeaderValue {
    let c = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(same_site)
        .secure(secure);
    let mut header = c.build().to_string();
    if let Some(secs) = max_age {
        header.push_str(&format!("; Max-Age={secs}"));
    }
    HeaderValue::from_str(&header).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Middleware: makes sure every browser has a CSRF cookie and consumes flash messages.
pub async fn session_layer(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let existing = jar
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() >= 32);
    let fresh = existing.is_none();
    let cookie_token = existing.unwrap_or_else(|| forge_tools::secret::random_token(""));
    // Logged in: the token comes from the session, so it rotates with every log-in and a
    // token seen before logging in is worthless after.
    let session_token = jar
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty());
    let form_token = CsrfToken {
        value: session_token
            .as_deref()
            .map_or_else(|| cookie_token.clone(), forge_tools::sessions::csrf_token),
        fresh: fresh && session_token.is_none(),
    };
    let csrf = cookie_token;
    let flash = jar
        .get(FLASH_COOKIE)
        .and_then(|c| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("m={}", c.value())).ok()
        })
        .and_then(|mut v| v.pop().map(|(_, m)| m));
    let had_flash = flash.is_some();
    let page_token = crate::csrf::PageToken(form_token.value.clone());
    req.extensions_mut().insert(form_token);
    req.extensions_mut().insert(Flash(flash));
    let mut res = next.run(req).await;
    // For `csrf::mask_tokens`, outside: the token the page was rendered with.
    res.extensions_mut().insert(page_token);
    let secure = state.forge.config().secure_cookies();
    let sets_flash = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.starts_with(FLASH_COOKIE)));
    if fresh {
        res.headers_mut().append(
            SET_COOKIE,
            cookie(CSRF_COOKIE, csrf, secure, SameSite::Strict, None),
        );
    }
    if had_flash && !sets_flash && !res.status().is_redirection() {
        res.headers_mut().append(
            SET_COOKIE,
            cookie(FLASH_COOKIE, String::new(), secure, SameSite::Lax, Some(0)),
        );
    }
    res
}

/// A redirect that shows `message` on the next page.
pub fn redirect_with_flash(state: &AppState, to: &str, message: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    let value = urlencode(message);
    res.headers_mut().append(
        SET_COOKIE,
        cookie(
            FLASH_COOKIE,
            value,
            state.forge.config().secure_cookies(),
            SameSite::Lax,
            Some(60),
        ),
    );
    res
}

/// Marks a request authenticated by a valid access token (cookies were not looked at): the
/// only kind of request that needs no CSRF token.
#[derive(Clone, Copy, Debug)]
pub struct TokenAuth;

/// The viewer of a request. A bearer token that does not resolve is refused (401), so a
/// script with a revoked token fails loudly instead of acting anonymously.
#[derive(Clone)]
pub struct Auth(pub Viewer);

impl FromRequestParts<AppState> for Auth {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(cached) = parts.extensions.get::<Auth>() {
            return Ok(cached.clone());
        }
        let ip = state
            .proxies
            .of(&parts.extensions, &parts.headers)
            .map(|ip| ip.to_string());
        let forge = &state.forge;
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let user = if let Some(token) = bearer {
            match forge.user_for_token(token).await {
                Ok(Some(u)) => Some(u),
                Ok(None) => {
                    return Err(ApiError::response(
                        "invalid_token",
                        "The access token is not valid",
                    ));
                }
                Err(e) => return Err(ApiError(e).into_response()),
            }
        } else {
            let jar = CookieJar::from_headers(&parts.headers);
            match jar.get(SESSION_COOKIE) {
                Some(c) => forge
                    .user_for_session(c.value())
                    .await
                    .map_err(|e| ApiError(e).into_response())?,
                None => None,
            }
        };
        if bearer.is_some() {
            parts.extensions.insert(TokenAuth);
        }
        let auth = Auth(Viewer { user, ip });
        parts.extensions.insert(auth.clone());
        Ok(auth)
    }
}

/// The page context of a request (the type lives in `page`, below everything that renders).
impl FromRequestParts<AppState> for PageCtx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Auth(viewer) = Auth::from_request_parts(parts, state).await?;
        let csrf = parts
            .extensions
            .get::<CsrfToken>()
            .map(|t| t.value.clone())
            .unwrap_or_default();
        let flash = parts.extensions.get::<Flash>().and_then(|f| f.0.clone());
        // Nested routers see their own part of the path; where to come back to after logging
        // in is the whole of it, query included.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |u| &u.0);
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
        let posts_order = CookieJar::from_headers(&parts.headers)
            .get(crate::page::POSTS_ORDER_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|v| v == "flat" || v == "threaded");
        Ok(Self {
            viewer,
            token_auth: parts.extensions.get::<TokenAuth>().is_some(),
            csrf,
            flash,
            path,
            posts_order,
        })
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf_token: String,
}

/// A form with no fields but the CSRF token (delete buttons and the like).
#[derive(Deserialize)]
pub struct Empty {}

/// A url-encoded form whose `csrf_token` field must match the browser's CSRF cookie.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (expected, fresh) = req
            .extensions()
            .get::<CsrfToken>()
            .map(|t| (t.value.clone(), t.fresh))
            .unwrap_or_default();
        let refuse = || {
            tracing::debug!("form refused: CSRF token missing or wrong");
            error_response(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form has expired or was sent from another site. Go back, reload the page and try again.",
            )
        };
        // No cookie and no session: whatever the body says, it cannot match; don't read it.
        if fresh || expected.is_empty() {
            return Err(refuse());
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let given: CsrfField = serde_urlencoded::from_bytes(&body).unwrap_or(CsrfField {
            csrf_token: String::new(),
        });
        if !forge_tools::secret::token_matches(&expected, &given.csrf_token) {
            return Err(refuse());
        }
        serde_urlencoded::from_bytes(&body)
            .map(CsrfForm)
            .map_err(|e| {
                error_response(
                    StatusCode::BAD_REQUEST,
                    "Bad form",
                    &format!("The form could not be read: {e}"),
                )
            })
    }
}
