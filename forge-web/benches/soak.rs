//! The soak driver of `bench/soak.sh`: mixed traffic against a running forge (the local
//! cluster's proxy), then a check that nothing acknowledged was lost.
//!
//! Traffic: page views (wiki, tickets, project home, site home), searches, REST reads, wiki
//! edits and ticket filings through the REST API, and a `git push` every few seconds. Each
//! connection keeps one keep-alive HTTP/1.1 connection (reopened after an error) and sends on
//! a fixed schedule; latency is measured from the scheduled start, so a stall counts for every
//! request it delays (no coordinated omission).
//!
//! Modes (first argument):
//! - `peak SECONDS`: as fast as the connections go, then waits for the tasks it queued;
//!   prints `PEAK <requests/s>`: the second half's requests over the time until all its work
//!   was done (the rate it sustains, not a warm start);
//! - `run SECONDS RATE`: at RATE requests/s; prints per-window figures as it goes, then
//!   verifies: every acknowledged wiki edit is the page's text, every acknowledged ticket
//!   reads back, every acknowledged push is the branch's tip, and every task recorded since
//!   the start completes (waits for the queues to drain). Writes `report.json` to `SOAK_OUT`.
//!
//! Environment: `SOAK_BASE` (`http://host:port`), `SOAK_TOKEN` (an access token of a
//! project admin), `SOAK_PROJECT`, `SOAK_CONNECTIONS` (32), `SOAK_OUT` (a folder),
//! `SOAK_GIT_URL` (push URL with credentials) and `SOAK_GIT_WORK` (a clone to push from),
//! `SOAK_MONGODB_URI` and `SOAK_DB` (to read the task records).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// Width of the windows the figures are reported in.
const WINDOW: Duration = Duration::from_secs(10);
/// Longest wait for one answer; longer is a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Seconds between pushes.
const PUSH_EVERY: Duration = Duration::from_secs(5);
/// Wiki pages viewed (made before the run).
const VIEWED_PAGES: usize = 20;

#[derive(Clone)]
struct Env {
    host: String,
    token: String,
    project: String,
}

/// One request's outcome, in the window it was scheduled in.
#[derive(Default)]
struct Window {
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Stats {
    windows: Vec<Window>,
    /// Error kinds with the seconds (from the start) they happened at.
    error_times: BTreeMap<String, Vec<u64>>,
}

impl Stats {
    fn record(&mut self, at: Duration, latency: Duration, error: Option<String>) {
        let w = (at.as_secs_f64() / WINDOW.as_secs_f64()) as usize;
        if self.windows.len() <= w {
            self.windows.resize_with(w + 1, Window::default);
        }
        let window = &mut self.windows[w];
        window
            .latencies_us
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        if let Some(kind) = error {
            *window.errors.entry(kind.clone()).or_default() += 1;
            self.error_times.entry(kind).or_default().push(at.as_secs());
        }
    }
}

/// What was acknowledged, to be found again at the end.
#[derive(Default)]
struct Acked {
    /// Wiki page → (version, text) of its last acknowledged edit.
    pages: HashMap<String, (i64, String)>,
    /// Ticket number → summary.
    tickets: BTreeMap<i64, String>,
    /// The last pushed commit the server acknowledged.
    pushed: Option<String>,
    pushes: u64,
}

struct Conn {
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn send(
        &mut self,
        env: &Env,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Bytes)> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(&env.host).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().context("connected")?;
        sender.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &env.host)
            .header("authorization", format!("Bearer {}", env.token));
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Full::new(Bytes::from(serde_json::to_vec(v)?))
            }
            None => Full::new(Bytes::new()),
        };
        let res = sender.send_request(req.body(body)?).await?;
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

/// The kind of a failed request, for the report.
fn kind_of(e: &anyhow::Error) -> String {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return format!("io: {:?}", io.kind());
    }
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        let what = if h.is_incomplete_message() {
            "connection closed mid-answer"
        } else if h.is_closed() || h.is_canceled() {
            "connection closed"
        } else {
            "protocol"
        };
        return format!("http: {what}");
    }
    format!("other: {e}")
}

struct Shared {
    env: Env,
    stats: Mutex<Stats>,
    acked: Mutex<Acked>,
    start: Instant,
    stop_at: Instant,
}

/// One connection's traffic: `interval` between scheduled sends (zero: as fast as it goes).
async fn client(shared: Arc<Shared>, id: usize, interval: Duration) {
    let env = shared.env.clone();
    let mut conn = Conn { sender: None };
    let mut rng = fastrand::Rng::with_seed(id as u64 + 1);
    // Pages of this mode's own: the peak measurement before a run edits pages too, and a
    // run starts without their versions.
    let page = format!(
        "Soak-{}-{id}",
        if interval.is_zero() { "peak" } else { "run" }
    );
    let mut next = Instant::now() + interval.mul_f64(rng.f64());
    let mut edits = 0u64;
    loop {
        if !interval.is_zero() {
            tokio::time::sleep_until(next.into()).await;
        }
        let scheduled = if interval.is_zero() {
            Instant::now()
        } else {
            next
        };
        if scheduled >= shared.stop_at {
            return;
        }
        next += interval;
        // Nine reads to one write, as a forge's traffic goes (most visitors read).
        let roll = rng.u32(0..100);
        let project = &env.project;
        let result = match roll {
            0..30 => {
                let p = rng.usize(0..VIEWED_PAGES);
                get_ok(&mut conn, &env, &format!("/p/{project}/wiki/View-{p}/")).await
            }
            30..45 => {
                let n = {
                    let acked = shared.acked.lock().unwrap();
                    let len = acked.tickets.len();
                    (len > 0)
                        .then(|| acked.tickets.keys().nth(rng.usize(0..len)).copied())
                        .flatten()
                        .unwrap_or(1)
                };
                get_ok(&mut conn, &env, &format!("/p/{project}/tickets/{n}/")).await
            }
            45..55 => get_ok(&mut conn, &env, &format!("/p/{project}/")).await,
            55..60 => get_ok(&mut conn, &env, "/").await,
            60..75 => {
                let word = ["soak", "ticket", "view", "edit", "filed"][rng.usize(0..5)];
                get_ok(
                    &mut conn,
                    &env,
                    &format!("/rest/search?q={word}&project={project}"),
                )
                .await
            }
            75..90 => {
                get_ok(
                    &mut conn,
                    &env,
                    &format!("/rest/p/{project}/tickets/?limit=20"),
                )
                .await
            }
            90..96 => {
                edits += 1;
                edit(&shared, &mut conn, &page, edits).await
            }
            _ => file_ticket(&shared, &mut conn, id, &mut rng).await,
        };
        let done = Instant::now();
        let timed = done.saturating_duration_since(scheduled);
        shared.stats.lock().unwrap().record(
            scheduled.saturating_duration_since(shared.start),
            timed,
            result.err(),
        );
    }
}

/// A failed answer's kind: its status and what says why (the API's `error`, the load
/// shedder's or the proxy's words), so the report can tell overload from an outage.
fn status_kind(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(2048)]);
    let why = if let Ok(v) = serde_json::from_str::<Value>(&text) {
        v["error"].as_str().unwrap_or("").to_owned()
    } else if text.contains("No server is available") {
        "proxy: no node available".to_owned()
    } else if text.contains("The server is busy") {
        "busy (load shedding)".to_owned()
    } else if let Some(t) = text
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split('<').next())
    {
        t.trim().to_owned()
    } else {
        text.lines().next().unwrap_or("").chars().take(60).collect()
    };
    if why.is_empty() {
        format!("status {status}")
    } else {
        format!("status {status}: {why}")
    }
}

/// One request with [`REQUEST_TIMEOUT`]; a timeout or a broken connection drops the
/// connection (the next request opens another) and is reported by its kind.
async fn send_timed(
    conn: &mut Conn,
    env: &Env,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Bytes), String> {
    match tokio::time::timeout(REQUEST_TIMEOUT, conn.send(env, method, path, body)).await {
        Err(_) => {
            conn.sender = None;
            Err("timeout".into())
        }
        Ok(Err(e)) => {
            conn.sender = None;
            Err(kind_of(&e))
        }
        Ok(Ok(answer)) => Ok(answer),
    }
}

async fn get_ok(conn: &mut Conn, env: &Env, path: &str) -> Result<(), String> {
    match send_timed(conn, env, "GET", path, None).await? {
        (200, _) => Ok(()),
        (s, body) => Err(status_kind(s, &body)),
    }
}

async fn send_json(
    conn: &mut Conn,
    env: &Env,
    method: &str,
    path: &str,
    body: &Value,
) -> Result<(u16, Value, Bytes), String> {
    let (s, bytes) = send_timed(conn, env, method, path, Some(body)).await?;
    Ok((
        s,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        bytes,
    ))
}

/// The next edit of this connection's own page (edits of one page never race, so a 409 can
/// only follow an edit whose answer was lost).
async fn edit(shared: &Shared, conn: &mut Conn, page: &str, n: u64) -> Result<(), String> {
    let env = &shared.env;
    let path = format!("/rest/p/{}/wiki/{page}", env.project);
    let base = shared
        .acked
        .lock()
        .unwrap()
        .pages
        .get(page)
        .map(|(v, _)| *v);
    let text = format!("soak edit {n} of {page}");
    let mut body = json!({"text": text});
    if let Some(v) = base {
        body["base_version"] = json!(v);
    }
    let (status, answer, raw) = send_json(conn, env, "PUT", &path, &body).await?;
    if status == 409 {
        // The previous edit landed but its answer was lost: carry on from the stored version.
        let (s, current, _) = send_json(conn, env, "GET", &path, &Value::Null).await?;
        if s == 200
            && let (Some(v), Some(t)) = (current["version"].as_i64(), current["text"].as_str())
        {
            shared
                .acked
                .lock()
                .unwrap()
                .pages
                .insert(page.to_owned(), (v, t.to_owned()));
        }
        return Err("status 409 (an edit whose answer was lost)".into());
    }
    if !(200..300).contains(&status) {
        return Err(status_kind(status, &raw));
    }
    let version = answer["version"]
        .as_i64()
        .ok_or("edit answer without version")?;
    shared
        .acked
        .lock()
        .unwrap()
        .pages
        .insert(page.to_owned(), (version, text));
    Ok(())
}

async fn file_ticket(
    shared: &Shared,
    conn: &mut Conn,
    id: usize,
    rng: &mut fastrand::Rng,
) -> Result<(), String> {
    let env = &shared.env;
    let summary = format!("soak filed {id} {}", rng.u64(..));
    let path = format!("/rest/p/{}/tickets/", env.project);
    let (status, answer, raw) =
        send_json(conn, env, "POST", &path, &json!({"summary": summary})).await?;
    if status != 201 {
        return Err(status_kind(status, &raw));
    }
    let num = answer["ticket_num"]
        .as_i64()
        .ok_or("ticket answer without ticket_num")?;
    shared.acked.lock().unwrap().tickets.insert(num, summary);
    Ok(())
}

/// Pushes a new commit every [`PUSH_EVERY`] until the end; records the acknowledged ones.
async fn pusher(shared: Arc<Shared>, url: String, work: PathBuf) {
    let mut n = 0u64;
    while Instant::now() < shared.stop_at {
        n += 1;
        let file = work.join("soak.txt");
        let _ = std::fs::write(&file, format!("push {n}\n"));
        let dir = work.clone();
        let step = move |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(["-c", "user.name=Soak", "-c", "user.email=soak@example.org"])
                .args(args)
                .current_dir(&dir)
                .env("GIT_TERMINAL_PROMPT", "0")
                .output();
            out.ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let work_url = url.clone();
        let commit = tokio::task::spawn_blocking(move || {
            step(&["add", "-A"])?;
            step(&["commit", "-q", "-m", &format!("soak push {n}")])?;
            let sha = step(&["rev-parse", "HEAD"])?;
            Some((
                sha,
                step(&["push", "-q", &work_url, "HEAD:refs/heads/soak"]).is_some(),
            ))
        })
        .await
        .ok()
        .flatten();
        let at = shared.start.elapsed();
        match commit {
            Some((sha, true)) => {
                let mut acked = shared.acked.lock().unwrap();
                acked.pushed = Some(sha);
                acked.pushes += 1;
            }
            Some((_, false)) => {
                shared.stats.lock().unwrap().record(
                    at,
                    Duration::ZERO,
                    Some("git push refused or failed".into()),
                );
            }
            None => eprintln!("soak: could not commit locally"),
        }
        tokio::time::sleep(PUSH_EVERY).await;
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

async fn traffic(shared: Arc<Shared>, connections: usize, rate: f64) -> anyhow::Result<()> {
    let interval = if rate > 0.0 {
        Duration::from_secs_f64(connections as f64 / rate)
    } else {
        Duration::ZERO
    };
    let clients: Vec<_> = (0..connections)
        .map(|i| tokio::spawn(client(shared.clone(), i, interval)))
        .collect();
    // Figures per window as the run goes, for whoever watches.
    let watcher = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut shown = 0;
            while Instant::now() < shared.stop_at {
                tokio::time::sleep(WINDOW).await;
                let stats = shared.stats.lock().unwrap();
                // The window before the last is complete.
                while shown + 1 < stats.windows.len() {
                    let w = &stats.windows[shown];
                    let mut l = w.latencies_us.clone();
                    l.sort_unstable();
                    eprintln!(
                        "soak: t={:>4}s {:>6} req ({:>7.0}/s) p50 {:>7.2} ms p99 {:>8.2} ms errors {:?}",
                        shown as u64 * WINDOW.as_secs(),
                        l.len(),
                        l.len() as f64 / WINDOW.as_secs_f64(),
                        percentile(&l, 0.5),
                        percentile(&l, 0.99),
                        w.errors
                    );
                    shown += 1;
                }
            }
        })
    };
    for c in clients {
        c.await?;
    }
    watcher.abort();
    Ok(())
}

async fn prepare(env: &Env) -> anyhow::Result<()> {
    let mut conn = Conn { sender: None };
    for p in 0..VIEWED_PAGES {
        let path = format!("/rest/p/{}/wiki/View-{p}", env.project);
        let body =
            json!({"text": format!("A page to view, number {p}, with [[links]] and *markdown*.")});
        let (s, _) = conn.send(env, "PUT", &path, Some(&body)).await?;
        if !(s == 201 || s == 200 || s == 409) {
            bail!("making {path}: status {s}");
        }
    }
    let (s, _) = conn
        .send(
            env,
            "POST",
            &format!("/rest/p/{}/tickets/", env.project),
            Some(&json!({"summary": "the first soak ticket"})),
        )
        .await?;
    if s != 201 {
        bail!("filing the first ticket: status {s}");
    }
    Ok(())
}

/// Reads back everything acknowledged; returns (checked, lost, details of the lost).
async fn verify_writes(shared: &Shared) -> anyhow::Result<(u64, u64, Vec<String>)> {
    let env = &shared.env;
    let mut conn = Conn { sender: None };
    let (pages, tickets) = {
        let a = shared.acked.lock().unwrap();
        (a.pages.clone(), a.tickets.clone())
    };
    let (mut checked, mut lost, mut details) = (0, 0, Vec::new());
    for (page, (version, text)) in &pages {
        let path = format!("/rest/p/{}/wiki/{page}", env.project);
        let (s, body) = conn.send(env, "GET", &path, None).await?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        checked += 1;
        // A later unacknowledged edit may have landed: the acknowledged one must then be in
        // the history at its version.
        let ok = s == 200
            && (v["text"].as_str() == Some(text) || v["version"].as_i64() > Some(*version));
        if !ok {
            lost += 1;
            details.push(format!(
                "{page}: acknowledged v{version} {text:?}, read {s} {v}"
            ));
        }
    }
    for (num, summary) in &tickets {
        let path = format!("/rest/p/{}/tickets/{num}", env.project);
        let (s, body) = conn.send(env, "GET", &path, None).await?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        checked += 1;
        if s != 200 || v["summary"].as_str() != Some(summary) {
            lost += 1;
            details.push(format!("ticket {num}: acknowledged {summary:?}, read {s}"));
        }
    }
    Ok((checked, lost, details))
}

async fn verify_push(shared: &Shared, url: &str) -> (u64, u64, Option<String>) {
    let (pushed, pushes) = {
        let a = shared.acked.lock().unwrap();
        (a.pushed.clone(), a.pushes)
    };
    let Some(sha) = pushed else {
        return (0, 0, None);
    };
    let url = url.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("git")
            .args(["ls-remote", &url, "refs/heads/soak"])
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
    })
    .await;
    let tip = out
        .ok()
        .and_then(Result::ok)
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    if tip.starts_with(&sha) {
        (pushes, 0, None)
    } else {
        (
            pushes,
            1,
            Some(format!("branch soak at {tip:?}, acknowledged {sha}")),
        )
    }
}

/// Waits for the tasks recorded since `since` to finish; returns counts by state.
async fn tasks_outcome(since: bson::DateTime) -> anyhow::Result<BTreeMap<String, u64>> {
    let uri = std::env::var("SOAK_MONGODB_URI").context("SOAK_MONGODB_URI")?;
    let db = mongodb::Client::with_uri_str(&uri)
        .await?
        .database(&std::env::var("SOAK_DB").context("SOAK_DB")?);
    let tasks = db.collection::<bson::Document>("tasks");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut by_state = BTreeMap::new();
        let mut cursor = tasks
            .aggregate([
                bson::doc! {"$match": {"created": {"$gte": since}}},
                bson::doc! {"$group": {"_id": "$state", "n": {"$sum": 1}}},
            ])
            .await?;
        use futures::TryStreamExt;
        while let Some(d) = cursor.try_next().await? {
            let n = d
                .get_i32("n")
                .map(i64::from)
                .or_else(|_| d.get_i64("n"))
                .unwrap_or(0);
            by_state.insert(
                d.get_str("_id").unwrap_or("?").to_owned(),
                u64::try_from(n).unwrap_or(0),
            );
        }
        let pending = ["queued", "running"]
            .iter()
            .map(|s| by_state.get(*s).copied().unwrap_or(0))
            .sum::<u64>();
        if pending == 0 || Instant::now() > deadline {
            if pending > 0 {
                eprintln!("soak: tasks still pending after 300 s");
            }
            // The failed ones, with why.
            let mut failed = tasks
                .find(bson::doc! {"created": {"$gte": since}, "state": "failed"})
                .limit(20)
                .await?;
            while let Some(d) = failed.try_next().await? {
                eprintln!(
                    "soak: failed task {} {}",
                    d.get_str("name").unwrap_or("?"),
                    d.get_str("last_error").unwrap_or("")
                );
            }
            return Ok(by_state);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` adds `--bench`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is required"));
    let base = var("SOAK_BASE")?;
    let env = Env {
        host: base
            .strip_prefix("http://")
            .context("SOAK_BASE must be http://host:port")?
            .trim_end_matches('/')
            .to_owned(),
        token: var("SOAK_TOKEN")?,
        project: var("SOAK_PROJECT")?,
    };
    let connections: usize = std::env::var("SOAK_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let (mode, seconds, rate) = match args.as_slice() {
        [m, s] if m == "peak" => ("peak", s.parse::<u64>()?, 0.0),
        [m, s, r] if m == "run" => ("run", s.parse::<u64>()?, r.parse::<f64>()?),
        _ => bail!("usage: soak peak SECONDS | soak run SECONDS RATE"),
    };
    prepare(&env).await?;
    let start = Instant::now();
    let since = bson::DateTime::now();
    let shared = Arc::new(Shared {
        env: env.clone(),
        stats: Mutex::default(),
        acked: Mutex::default(),
        start,
        stop_at: start + Duration::from_secs(seconds),
    });
    let git = match (
        std::env::var("SOAK_GIT_URL"),
        std::env::var("SOAK_GIT_WORK"),
    ) {
        (Ok(url), Ok(work)) if mode == "run" => Some((url, PathBuf::from(work))),
        _ => None,
    };
    let push = git
        .clone()
        .map(|(url, work)| tokio::spawn(pusher(shared.clone(), url, work)));
    traffic(shared.clone(), connections, rate).await?;
    if let Some(p) = push {
        p.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (total, errors) = {
        let s = shared.stats.lock().unwrap();
        let total: usize = s.windows.iter().map(|w| w.latencies_us.len()).sum();
        let errors: u64 = s.windows.iter().flat_map(|w| w.errors.values()).sum();
        (total, errors)
    };
    if mode == "peak" {
        // The rate the cluster sustains, not its first burst: the first seconds are served
        // from warm caches before writes start dropping them, and the tasks the traffic
        // queues (indexing, notifications, figures) take their share only as they pile up.
        // So: the rate of the second half of the run, over the time until the tasks it
        // queued were done too.
        let tasks = tasks_outcome(since).await?;
        let drain = start.elapsed().as_secs_f64() - elapsed;
        let s = shared.stats.lock().unwrap();
        let half = s.windows.len() / 2;
        let late: usize = s.windows[half..].iter().map(|w| w.latencies_us.len()).sum();
        let late_secs = elapsed - half as f64 * WINDOW.as_secs_f64();
        let sustained = late as f64 / (late_secs + drain);
        eprintln!(
            "soak: peak {:.0} req/s over {elapsed:.1} s, {sustained:.0} req/s in its second half with the {drain:.1} s its tasks ({tasks:?}) took after it",
            total as f64 / elapsed
        );
        println!("PEAK\t{sustained:.0}\t{errors}");
        return Ok(());
    }

    eprintln!("soak: traffic over; verifying");
    let (checked, lost, details) = verify_writes(&shared).await?;
    for d in &details {
        eprintln!("soak: LOST {d}");
    }
    let (pushes, pushes_lost, push_detail) = match &git {
        Some((url, _)) => verify_push(&shared, url).await,
        None => (0, 0, None),
    };
    if let Some(d) = &push_detail {
        eprintln!("soak: LOST push: {d}");
    }
    let tasks = tasks_outcome(since).await?;

    let s = shared.stats.lock().unwrap();
    let windows: Vec<Value> = s
        .windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut l = w.latencies_us.clone();
            l.sort_unstable();
            json!({
                "t": i as u64 * WINDOW.as_secs(),
                "requests": l.len(),
                "p50_ms": percentile(&l, 0.5),
                "p99_ms": percentile(&l, 0.99),
                "errors": w.errors,
            })
        })
        .collect();
    let mut all: Vec<u32> = s
        .windows
        .iter()
        .flat_map(|w| w.latencies_us.iter().copied())
        .collect();
    all.sort_unstable();
    let error_times: BTreeMap<&String, Value> = s
        .error_times
        .iter()
        .map(|(k, ts)| {
            let v = json!({"count": ts.len(), "first_s": ts.first(), "last_s": ts.last()});
            (k, v)
        })
        .collect();
    let report = json!({
        "seconds": seconds,
        "rate_target": rate,
        "connections": connections,
        "requests": total,
        "rate": total as f64 / elapsed,
        "errors": errors,
        "errors_by_kind": error_times,
        "p50_ms": percentile(&all, 0.5),
        "p99_ms": percentile(&all, 0.99),
        "windows": windows,
        "writes_checked": checked,
        "writes_lost": lost,
        "lost": details,
        "pushes": pushes,
        "pushes_lost": pushes_lost,
        "tasks": tasks,
    });
    let out = PathBuf::from(std::env::var("SOAK_OUT").unwrap_or_else(|_| ".".into()));
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
