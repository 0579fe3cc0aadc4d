//! Git smart HTTP (protocol v0/v1 and v2): `GET .../info/refs?service=`, `POST
//! .../git-upload-pack` and `POST .../git-receive-pack` under
//! `/git/<nbhd>/<project>/<mount>[.git]/`, served by running the system `git upload-pack` /
//! `git receive-pack --stateless-rpc` on the repository's own path (derived from ids; nothing
//! from the request becomes an argument). Bodies stream both ways (gzip request bodies are
//! decoded on the fly), so memory does not grow with repository size.
//!
//! Bounds: the command section at the start of each RPC body (ref updates, wants) is read and
//! checked by `forge_tools::tools::repo::pktline` before git runs (400 for bad input); every git
//! process holds one of the forge's git slots (`FORGE_MAX_GIT_PROCESSES`; when none frees up
//! within a second, 503 with `Retry-After`) until it exits; a client that goes away before the
//! end of the response has its git killed; pushes are capped at `FORGE_MAX_PUSH_BYTES` after
//! decompression.
//!
//! Auth: HTTP Basic with the username and the password or a personal access token (or a
//! bearer token); anonymous read on public projects; write permission to push. Unauthenticated
//! requests that need more get a `WWW-Authenticate` challenge so credential helpers work.
//!
//! Events: each clone or fetch logs one `repo.clone` or `repo.fetch`, from the upload-pack
//! request whose response carries the pack (see `FetchLog`); ref advertisements and
//! negotiation rounds log nothing. A push logs `repo.push` and its `repo.commit`s from the
//! refresh it queues (`forge_tools::tools::repo::refresh`).

use std::process::Stdio;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use forge_tools::acl::perm;
use forge_tools::projects::Neighborhood;
use forge_tools::ratelimit::accounts::{self, Gate};
use forge_tools::tools::repo::{self, pktline, refresh};
use forge_tools::{Error, Forge, ProjectCtx, Viewer};
use futures::TryStreamExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::state::AppState;

/// The longest a single git request may run.
const TIME_LIMIT: Duration = Duration::from_secs(3600);
/// The largest fetch negotiation after decompression (pushes: `max_push_bytes`).
const MAX_FETCH_BODY: u64 = 256 << 20;
/// How much of git's error output is kept for the log.
const MAX_STDERR: u64 = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "git-upload-pack" => Some(Self::UploadPack),
            "git-receive-pack" => Some(Self::ReceivePack),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::UploadPack => "git-upload-pack",
            Self::ReceivePack => "git-receive-pack",
        }
    }
    fn subcommand(self) -> &'static str {
        match self {
            Self::UploadPack => "upload-pack",
            Self::ReceivePack => "receive-pack",
        }
    }
    fn permission(self) -> &'static str {
        match self {
            Self::UploadPack => perm::READ,
            Self::ReceivePack => perm::WRITE,
        }
    }
}

fn plain(status: StatusCode, msg: &str) -> Response {
    let mut res = (status, format!("{msg}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"forge\", charset=\"UTF-8\""),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// Who the credentials name: `Ok(None)` for no credentials, `Err` for wrong ones.
async fn credentials(
    st: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
) -> Result<Viewer, Response> {
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(Viewer { user: None, ip });
    };
    let forge = &st.forge;
    let denied = || {
        plain(
            StatusCode::UNAUTHORIZED,
            "Authentication failed: wrong username, password or token",
        )
    };
    let user = if let Some(token) = auth.strip_prefix("Bearer ") {
        forge
            .user_for_token(token.trim())
            .await
            .map_err(|_| denied())?
    } else if let Some(b64) = auth.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| denied())?;
        let decoded = String::from_utf8(decoded).map_err(|_| denied())?;
        let (name, secret) = decoded.split_once(':').ok_or_else(denied)?;
        if secret.starts_with(forge_tools::tokens::PREFIX) {
            forge
                .user_for_token(secret)
                .await
                .map_err(|_| denied())?
                .filter(|u| u.username == name)
        } else {
            let addr = ip.as_deref().unwrap_or("");
            let db = forge.db();
            let unavailable = |e: Error| {
                tracing::error!(error = %e, "checking git credentials failed");
                plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The forge cannot check credentials right now",
                )
            };
            match accounts::gate(db, addr, name).await.map_err(unavailable)? {
                Gate::Closed => {
                    return Err(plain(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many failed attempts; wait a few minutes and try again",
                    ));
                }
                Gate::Slow(pause) => tokio::time::sleep(pause).await,
                Gate::Open => {}
            }
            let found = forge
                .authenticate(name, secret)
                .await
                .map_err(|_| denied())?;
            if found.is_some() {
                accounts::succeeded(db, addr, name)
                    .await
                    .map_err(unavailable)?;
            } else {
                accounts::failed(db, addr, name)
                    .await
                    .map_err(unavailable)?;
            }
            found
        }
    } else {
        None
    };
    match user {
        Some(u) => Ok(Viewer { user: Some(u), ip }),
        None => Err(denied()),
    }
}

/// Loads the repository tool and checks the service's permission.
async fn authorize(
    forge: &Forge,
    viewer: &Viewer,
    nbhd: &str,
    project: &str,
    repo_name: &str,
    service: Service,
) -> Result<(ProjectCtx, forge_tools::tool::ToolInstance), Response> {
    let nbhd = match nbhd {
        "p" => Neighborhood::Projects,
        "u" => Neighborhood::Users,
        _ => return Err(plain(StatusCode::NOT_FOUND, "Repository not found")),
    };
    let mount = repo_name.strip_suffix(".git").unwrap_or(repo_name);
    let refuse = |e: Error, anonymous: bool| match e {
        // Anonymous callers are asked for credentials instead of learning what exists.
        Error::NotFound(_) | Error::Unauthenticated if anonymous => {
            plain(StatusCode::UNAUTHORIZED, "Authentication required")
        }
        Error::NotFound(_) => plain(StatusCode::NOT_FOUND, "Repository not found"),
        Error::Forbidden => plain(StatusCode::FORBIDDEN, "You may not push to this repository"),
        Error::Unauthenticated => plain(StatusCode::UNAUTHORIZED, "Authentication required"),
        other => {
            tracing::error!(error = %other, "git request failed");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "The forge cannot serve this repository right now",
            )
        }
    };
    let anonymous = viewer.user.is_none();
    let ctx = forge
        .load_project(viewer, nbhd, project)
        .await
        .map_err(|e| refuse(e, anonymous))?;
    let tool = ctx
        .tool(mount)
        .filter(|t| t.kind == repo::KIND)
        .cloned()
        .ok_or_else(|| refuse(Error::NotFound("repository"), anonymous))?;
    ctx.authorize_tool(&tool, service.permission())
        .map_err(|e| refuse(e, anonymous))?;
    Ok((ctx, tool))
}

/// `Git-Protocol` is passed to git only in its documented form (`version=2`, `key=value`
/// pairs separated by `:`).
fn git_protocol(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("git-protocol")?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 256
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '=' | ':' | '.' | '-' | '_'));
    ok.then(|| v.to_owned())
}

fn client_ip(st: &AppState, req: &Request) -> Option<String> {
    st.proxies
        .of(req.extensions(), req.headers())
        .map(|ip| ip.to_string())
}

fn command(
    st: &AppState,
    service: Service,
    path: &std::path::Path,
    protocol: Option<&str>,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("git");
    if let (Service::UploadPack, Some(hook)) = (service, &st.pack_hook) {
        // Git takes this setting only from the command line or the system and user files.
        cmd.arg("-c").arg(&**hook);
    }
    cmd.arg(service.subcommand()).arg("--stateless-rpc");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", path)
        .env("GIT_CONFIG_NOSYSTEM", "1");
    if let Some(p) = protocol {
        cmd.env("GIT_PROTOCOL", p);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[derive(Deserialize)]
pub struct ServiceQuery {
    service: Option<String>,
}

pub async fn info_refs(
    State(st): State<AppState>,
    Path((nbhd, project, repo_name)): Path<(String, String, String)>,
    Query(q): Query<ServiceQuery>,
    req: Request,
) -> Response {
    let Some(service) = q.service.as_deref().and_then(Service::parse) else {
        return plain(
            StatusCode::FORBIDDEN,
            "Only the smart HTTP protocol is supported; upgrade git",
        );
    };
    let viewer = match credentials(&st, req.headers(), client_ip(&st, &req)).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let (_, tool) = match authorize(&st.forge, &viewer, &nbhd, &project, &repo_name, service).await
    {
        Ok(x) => x,
        Err(res) => return res,
    };
    let protocol = git_protocol(req.headers());
    let path = repo::repo_path(st.forge.config(), &tool);
    let _slot = match forge_tools::tools::repo::slots(&st.forge).acquire().await {
        Ok(slot) => slot,
        Err(e) => return refused(&e),
    };
    let mut cmd = command(&st, service, &path, protocol.as_deref());
    cmd.arg("--advertise-refs").arg(&path);
    let out = match tokio::time::timeout(Duration::from_secs(60), cmd.output()).await {
        Ok(Ok(o)) if o.status.success() => o,
        other => {
            tracing::error!(?other, "git --advertise-refs failed");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The repository could not be read",
            );
        }
    };
    // The advertisement is not a clone or a fetch (`ls-remote` and up-to-date fetches stop
    // here): those are logged by the request that gets a pack (see `rpc`).
    let mut body = Vec::with_capacity(out.stdout.len() + 64);
    let v2 = protocol
        .as_deref()
        .is_some_and(|p| p.split(':').any(|kv| kv == "version=2"));
    if !v2 {
        let line = format!("# service={}\n", service.name());
        body.extend_from_slice(format!("{:04x}{line}0000", line.len() + 4).as_bytes());
    }
    body.extend_from_slice(&out.stdout);
    let mut res = Response::new(Body::from(body));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!("application/x-{}-advertisement", service.name()))
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// A request refused before git ran, as plain text for the git client.
fn refused(e: &Error) -> Response {
    match e {
        Error::Busy(m) => plain(StatusCode::SERVICE_UNAVAILABLE, m),
        Error::BadRequest(m) => plain(StatusCode::BAD_REQUEST, m),
        other => {
            tracing::error!(error = %other, "git request failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The forge cannot serve this repository right now",
            )
        }
    }
}

/// How a clone or a fetch is logged: once per upload-pack request whose response carries a
/// pack (the last round of a stateless negotiation; `ls-refs` and rounds without a pack are
/// not logged), as `repo.fetch` when the request had `have` lines (the client has history)
/// and `repo.clone` otherwise. `haves` is set by the request's feed before git can read the
/// line, so it is known when the pack starts.
struct FetchLog {
    events: forge_tools::events::EventLog,
    context: forge_tools::events::EventContext,
    pack: pktline::Watch,
    haves: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FetchLog {
    /// Looks at the next piece of the response; false once there is nothing more to learn.
    fn see(&mut self, data: &[u8]) -> bool {
        if self.pack.feed(data) {
            let kind = if self.haves.load(std::sync::atomic::Ordering::Acquire) {
                "repo.fetch"
            } else {
                "repo.clone"
            };
            self.events
                .record(kind, self.context.clone(), bson::Bson::Null);
        }
        self.pack.watching()
    }
}

/// git's stdout as the response body. Dropped before its end (the client went away), it
/// cancels `cancel`, which kills git; at the end it lets git finish (a push's refs are updated
/// before its report, and the refresh must still be queued).
struct Output {
    stdout: tokio_util::io::ReaderStream<tokio::process::ChildStdout>,
    cancel: Option<tokio_util::sync::DropGuard>,
    /// Upload-pack: watches for the pack, to log the clone or fetch.
    log: Option<FetchLog>,
}

impl futures::Stream for Output {
    type Item = std::io::Result<bytes::Bytes>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = std::pin::Pin::new(&mut this.stdout).poll_next(cx);
        match &next {
            std::task::Poll::Ready(Some(Ok(data))) => {
                if let Some(log) = &mut this.log
                    && !log.see(data)
                {
                    this.log = None;
                }
            }
            std::task::Poll::Ready(None) => {
                if let Some(guard) = this.cancel.take() {
                    guard.disarm();
                }
            }
            _ => {}
        }
        next
    }
}

/// Copies `from` to `to` like `tokio::io::copy`, showing each piece to `look` before writing
/// it; returns the bytes copied.
async fn copy_watching<R, W>(
    from: &mut R,
    to: &mut W,
    mut look: impl FnMut(&[u8]),
) -> std::io::Result<u64>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        look(&buf[..n]);
        to.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

/// Reads everything git writes to stderr (so it never blocks on a full pipe), keeping the
/// start for the log.
async fn drain_stderr(stderr: tokio::process::ChildStderr) -> String {
    use tokio::io::AsyncReadExt;
    let mut kept = Vec::new();
    let mut stderr = stderr;
    let _ = (&mut stderr).take(MAX_STDERR).read_to_end(&mut kept).await;
    let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
    String::from_utf8_lossy(&kept).into_owned()
}

pub async fn rpc(
    State(st): State<AppState>,
    Path((nbhd, project, repo_name, service)): Path<(String, String, String, String)>,
    req: Request,
) -> Response {
    let Some(service) = Service::parse(&service) else {
        return plain(StatusCode::NOT_FOUND, "Not found");
    };
    let viewer = match credentials(&st, req.headers(), client_ip(&st, &req)).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let (ctx, tool) =
        match authorize(&st.forge, &viewer, &nbhd, &project, &repo_name, service).await {
            Ok(x) => x,
            Err(res) => return res,
        };
    let protocol = git_protocol(req.headers());
    let v2 = protocol
        .as_deref()
        .is_some_and(|p| p.split(':').any(|kv| kv == "version=2"));
    let kind = match service {
        Service::ReceivePack => pktline::Request::ReceivePack,
        Service::UploadPack if v2 => pktline::Request::UploadPackV2,
        Service::UploadPack => pktline::Request::UploadPack,
    };
    let gzip = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let limit = match service {
        Service::ReceivePack => st.forge.config().max_push_bytes,
        Service::UploadPack => MAX_FETCH_BODY,
    };
    // The request body, decoded when gzipped.
    let body = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(body);
    let mut reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if gzip {
        Box::new(async_compression::tokio::bufread::GzipDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    // The command section is read and checked before git runs; only it is buffered.
    let (head, summary) = match pktline::read_section(&mut reader, kind).await {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!(error = %e, service = service.name(), "git request refused");
            return plain(StatusCode::BAD_REQUEST, &format!("Bad git request: {e}"));
        }
    };
    let slot = match forge_tools::tools::repo::slots(&st.forge).acquire().await {
        Ok(slot) => slot,
        Err(e) => return refused(&e),
    };
    let path = repo::repo_path(st.forge.config(), &tool);
    let mut cmd = command(&st, service, &path, protocol.as_deref());
    cmd.arg(&path);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot run git");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "git is not available on the server",
            );
        }
    };
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "git pipes unavailable");
    };
    // Upload-pack: the request's `have` lines tell a fetch from a clone (see `FetchLog`).
    let haves = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut have_watch =
        (service == Service::UploadPack).then(|| pktline::Watch::new(pktline::Sought::Have));
    let saw_have = haves.clone();
    // git's stdin: the section read above, then the rest of the body, counted against the
    // limit (one byte over it is read to tell a body at the limit from one over it).
    let feed = async move {
        use tokio::io::AsyncReadExt;
        let whole = std::io::Cursor::new(head).chain(reader);
        let mut limited = whole.take(limit.saturating_add(1));
        let copied = copy_watching(&mut limited, &mut stdin, |piece| {
            if let Some(w) = &mut have_watch {
                if w.feed(piece) {
                    saw_have.store(true, std::sync::atomic::Ordering::Release);
                }
                if !w.watching() {
                    have_watch = None;
                }
            }
        })
        .await;
        let _ = stdin.shutdown().await;
        match copied {
            Ok(n) if n > limit => Err(std::io::Error::other(format!(
                "request body over {limit} bytes"
            ))),
            other => other,
        }
    };
    let forge = st.forge.clone();
    let pusher = viewer.username().map(str::to_owned);
    let ip = viewer.ip.clone();
    let tool_id = tool.id;
    // A push is logged (`repo.push`, `repo.commit`) by the refresh it queues.
    let log = (service == Service::UploadPack).then(|| FetchLog {
        events: forge.events().clone(),
        context: viewer.event_context(Some(&ctx.project), Some(&tool.mount)),
        pack: pktline::Watch::new(pktline::Sought::Pack),
        haves,
    });
    let cancel = tokio_util::sync::CancellationToken::new();
    let cancelled = cancel.clone();
    // Waits for git in the background, holding its slot: logs its errors, enforces the time
    // limit, kills it when the client goes away, and after a successful push queues the
    // refresh.
    tokio::spawn(async move {
        let _slot = slot;
        let run = async {
            let (fed, err_text) = tokio::join!(feed, drain_stderr(stderr));
            let status = child.wait().await;
            (fed, err_text, status)
        };
        let outcome = tokio::select! {
            done = tokio::time::timeout(TIME_LIMIT, run) => done.ok(),
            () = cancelled.cancelled() => {
                tracing::debug!(service = service.name(), "git client went away");
                let _ = child.kill().await;
                return;
            }
        };
        match outcome {
            Some((Ok(_), _, Ok(s))) if s.success() => {
                if service == Service::ReceivePack && !summary.updates.is_empty() {
                    // This node reads the new refs at once (others when the refresh records
                    // them).
                    if let Some(m) = forge_tools::readmodel::ReadModel::of(forge.db()) {
                        forge_tools::tools::repo::views::forget_refs(&m, tool_id);
                    }
                    let args = refresh::args(tool_id, pusher.as_deref(), ip.as_deref());
                    let opts = forge_tasks::TaskOptions {
                        dedup_key: Some(format!("{}:{tool_id}", refresh::TASK)),
                        priority: 7,
                        ..Default::default()
                    };
                    if let Err(e) = forge.tasks().enqueue_with(refresh::TASK, args, opts).await {
                        tracing::error!(error = %e, "could not queue the repository refresh");
                    }
                }
            }
            Some((fed, err_text, status)) => {
                tracing::warn!(?fed, ?status, stderr = %err_text.trim(), service = service.name(), "git request did not complete");
                let _ = child.kill().await;
            }
            None => {
                tracing::warn!(service = service.name(), "git request ran out of time");
                let _ = child.kill().await;
            }
        }
    });
    // Large reads: a clone streams the whole pack, and 4 KiB chunks cost more than they save.
    let output = Output {
        stdout: tokio_util::io::ReaderStream::with_capacity(stdout, 64 * 1024),
        cancel: Some(cancel.drop_guard()),
        log,
    };
    let mut res = Response::new(Body::from_stream(output));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!("application/x-{}-result", service.name()))
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}
