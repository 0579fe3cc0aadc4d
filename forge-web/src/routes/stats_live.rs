//! `GET /p/<project>/stats/live`: a WebSocket carrying the project's live statistics (each
//! [`LiveUpdate`] of that project, as JSON) to its open statistics page.
//!
//! Access is the page's, checked before upgrading (404 for who may not read the project) and
//! again now and then while the socket is open. No socket may slow another or the runs: each
//! has its own task reading the live hub's broadcast; one that falls behind it (`Lagged`) or
//! whose send takes longer than [`SEND_TIMEOUT`] is dropped (the page reconnects and reloads
//! its figures). Sockets are bounded ([`MAX_SOCKETS`], 503 beyond); clients may only ping.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use forge_tools::analytics::{self, live::LiveUpdate};
use forge_tools::projects::Neighborhood;
use forge_tools::{Error, Forge, Viewer};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ctx::ProjectReq;
use crate::error::PageError;
use crate::state::AppState;

/// Live sockets one web node keeps open at most.
pub const MAX_SOCKETS: usize = 10_000;
/// Longest a send to one client may take before that client is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an idle socket is pinged and its viewer's access checked again.
const RECHECK_EVERY: Duration = Duration::from_secs(30);
/// Largest message a client may send (pings, pongs, closes).
const MAX_INCOMING: usize = 1024;

/// The bound on open live sockets: a permit per socket, given back when it closes.
#[derive(Clone)]
pub struct LiveSockets(Arc<Semaphore>);

impl LiveSockets {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max)))
    }

    /// A place for one more socket, if there is one.
    pub fn try_open(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }

    /// Places left.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// This process's live sockets.
pub static SOCKETS: LazyLock<LiveSockets> = LazyLock::new(|| LiveSockets::new(MAX_SOCKETS));

/// Whether a browser's `Origin` (when it sends one) is this site: the `Host` it asked, or the
/// configured base URL. Another site's page may not open a socket with our visitor's cookies.
fn same_origin(headers: &HeaderMap, base_url: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest.trim_end_matches('/'));
    (!host.is_empty() && origin_host.eq_ignore_ascii_case(host))
        || origin.eq_ignore_ascii_case(base_url.trim_end_matches('/'))
}

/// Who the socket is for, to check their access again while it is open.
struct Reader {
    forge: Forge,
    viewer: Viewer,
    nbhd: Neighborhood,
    name: String,
}

impl Reader {
    /// False once the viewer may no longer read the project; a store hiccup is not a no.
    async fn still_reads(&self) -> bool {
        match self
            .forge
            .load_project(&self.viewer, self.nbhd, &self.name)
            .await
        {
            Ok(_) => true,
            Err(Error::NotFound(_) | Error::Forbidden | Error::Unauthenticated) => false,
            Err(e) => {
                tracing::warn!(error = %e, "live statistics: access not rechecked");
                true
            }
        }
    }
}

pub async fn live(
    State(st): State<AppState>,
    p: ProjectReq,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !same_origin(&headers, &st.forge.config().base_url()) {
        return PageError::from(Error::Forbidden).into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(permit) = SOCKETS.try_open() else {
        return PageError::from(Error::Busy(
            "Too many live statistics pages are open; try again in a moment.".into(),
        ))
        .into_response();
    };
    let project = &p.ctx.project;
    let key = analytics::project_key(Some(project.neighborhood.prefix()), &project.shortname);
    // Subscribed before the upgrade, so nothing published meanwhile is missed.
    let rx = st.forge.live().subscribe();
    let reader = Reader {
        forge: st.forge.clone(),
        viewer: p.page.viewer.clone(),
        nbhd: project.neighborhood,
        name: project.shortname.clone(),
    };
    ws.max_message_size(MAX_INCOMING)
        .max_frame_size(MAX_INCOMING)
        .on_upgrade(move |socket| pump(socket, rx, key, reader, permit))
}

/// Sends a message, or gives up after [`SEND_TIMEOUT`].
async fn send(socket: &mut WebSocket, msg: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(msg)).await,
        Ok(Ok(()))
    )
}

/// Forwards the project's updates until the client leaves, falls behind, sends something
/// other than a ping, or loses access.
async fn pump(
    mut socket: WebSocket,
    mut rx: Receiver<Arc<LiveUpdate>>,
    key: String,
    reader: Reader,
    _permit: OwnedSemaphorePermit,
) {
    let mut recheck =
        tokio::time::interval_at(tokio::time::Instant::now() + RECHECK_EVERY, RECHECK_EVERY);
    let close: Option<(u16, &str)> = loop {
        tokio::select! {
            got = rx.recv() => match got {
                Ok(u) if u.project == key => {
                    let Ok(text) = serde_json::to_string(&*u) else { continue };
                    if !send(&mut socket, Message::Text(text.into())).await {
                        break None;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "live statistics: a slow client dropped");
                    break Some((close_code::AGAIN, "fell behind; reconnect"));
                }
                Err(RecvError::Closed) => break Some((close_code::AWAY, "shutting down")),
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    break Some((close_code::POLICY, "this socket only sends"));
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
            },
            _ = recheck.tick() => {
                if !reader.still_reads().await {
                    break Some((close_code::POLICY, "no access"));
                }
                if !send(&mut socket, Message::Ping(Default::default())).await {
                    break None;
                }
            }
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        send(&mut socket, Message::Close(Some(frame))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_are_bounded() {
        let s = LiveSockets::new(2);
        let a = s.try_open();
        let b = s.try_open();
        assert!(a.is_some() && b.is_some());
        assert!(s.try_open().is_none());
        drop(a);
        assert!(s.try_open().is_some());
    }

    #[test]
    fn other_sites_may_not_open_sockets() {
        let h = |origin: Option<&str>| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, "forge.example:8080".parse().unwrap());
            if let Some(o) = origin {
                m.insert(header::ORIGIN, o.parse().unwrap());
            }
            m
        };
        let base = "https://forge.example.org";
        assert!(same_origin(&h(None), base));
        assert!(same_origin(&h(Some("http://forge.example:8080")), base));
        assert!(same_origin(&h(Some("https://forge.example.org")), base));
        assert!(!same_origin(&h(Some("https://evil.example")), base));
        assert!(!same_origin(&h(Some("null")), base));
    }
}
