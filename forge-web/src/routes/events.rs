//! `POST /rest/events`: events from other services and backfills (site admins), as Zarkov's
//! clients logged them over ZeroMQ.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Events written.
    accepted: usize,
    /// Events refused, by their index in the array, with the reason.
    refused: Vec<Refused>,
}

#[derive(Serialize, ToSchema)]
pub struct Refused {
    index: usize,
    message: String,
}

#[utoipa::path(post, path = "/rest/events", tag = "analytics",
    request_body(content = Vec<serde_json::Value>, description = "events `{type, timestamp?, context?, extra?}`; `timestamp` RFC 3339 or epoch ms"),
    responses(
        (status = 202, description = "the well-formed events were logged", body = Accepted),
        (status = 401, description = "not logged in"),
        (status = 403, description = "not a site admin"),
        (status = 413, description = "more than 10,000 events"),
    ))]
pub async fn post_events(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    ApiJson(events): ApiJson<Vec<serde_json::Value>>,
) -> ApiResult {
    let (accepted, refused) = st.forge.log_events(&viewer, &events).await?;
    let refused = refused
        .into_iter()
        .map(|(index, message)| Refused { index, message })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted, refused })).into_response())
}

#[derive(OpenApi)]
#[openapi(paths(post_events), components(schemas(Accepted, Refused)))]
pub struct EventsDoc;
