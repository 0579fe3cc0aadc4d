//! Analytics figures against a real store, in a fresh database (run by `bench/analytics.sh`,
//! which starts the store and prints the table):
//!
//! 1. ingestion: 1,000,000 events through `EventLog::record` (the producer waits while the
//!    writer lags more than 150,000 behind, so nothing is dropped), rate until `flush` returns;
//! 2. aggregation: `run_analytics` over those 1,000,000 (all of one day), then over 1,000,000
//!    more spread over 365 days, loaded as JSON lines the way `forge events load` does;
//! 3. `/q` latency: a 365-day series of one public project, as an anonymous viewer, 2,000
//!    sequential requests on one keep-alive connection to the real router on a TCP port;
//! 4. live fan-out: 1,000 WebSockets on `/p/<project>/stats/live`, then events for that
//!    project and an aggregation run: time until every socket got the update;
//! 5. what the store does alone, the bounds of the above: reading 50,000 events by id over an
//!    open range (as a pass does) and a closed one, guarded upserts, `insert_many`.
//!
//! Each figure is printed as `FIGURE<TAB>name<TAB>value<TAB>target<TAB>verdict`; progress
//! goes to standard error. Environment: `BENCH_MONGODB_URI` (required), `BENCH_EVENTS`
//! (default 1,000,000), `BENCH_WS_CLIENTS` (1,000), `BENCH_Q_REQUESTS` (2,000), and
//! `BENCH_HOLD_FILE`: when set, the `/q` URL is written there and the program waits until the
//! file is removed (the script runs `wrk` meanwhile).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bson::{Bson, doc};
use forge_tasks::{InProcess, Tasks};
use forge_tools::config::Config;
use forge_tools::events::EventContext;
use forge_tools::projects::{Neighborhood, NewProject};
use forge_tools::tool::ToolRegistry;
use forge_tools::users::NewUser;
use forge_tools::{Forge, Viewer};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const PROJECTS: usize = 100;
const USERS: u64 = 1_000;
/// Addresses of anonymous visitors.
const ADDRESSES: u64 = 20_000;
/// Events recorded before the producer checks how far the writer lags.
const BURST: u64 = 5_000;
/// How far the writer may lag behind the producer (the queue holds 200,000).
const MAX_LAG: u64 = 150_000;
const DAY_MS: i64 = 86_400_000;
/// The project whose series is read and whose live page is watched.
const WATCHED: usize = 0;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

fn figure(name: &str, value: &str, target: &str, ok: Option<bool>) {
    let verdict = match ok {
        Some(true) => "ok",
        Some(false) => "MISSED",
        None => "-",
    };
    println!("FIGURE\t{name}\t{value}\t{target}\t{verdict}");
}

fn note(msg: &str) {
    eprintln!("[analytics bench] {msg}");
}

/// SplitMix64: enough randomness for a realistic mix, with no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A uniform number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }
}

/// One generated event, before it becomes a recorded or a loaded one.
struct Generated {
    kind: &'static str,
    project: usize,
    tool: Option<&'static str>,
    user: Option<u64>,
    address: u64,
    wiki_page: u64,
}

/// The mix: page views (88%; 30% by users, the rest anonymous), clones (8%; 20% by users)
/// and wiki edits (4%, by users, which are also activity) over 100 projects, the first ones
/// busier (project `i` gets about (√(i+1) − √i)/10 of the traffic: 10% for the first).
struct Mix {
    rng: Rng,
    projects: Vec<String>,
    /// Page views generated per project.
    views: Vec<u64>,
}

const VIEW_TOOLS: [Option<&str>; 5] = [
    None,
    Some("wiki"),
    Some("code"),
    Some("tickets"),
    Some("discussion"),
];

impl Mix {
    fn new(seed: u64, projects: Vec<String>) -> Self {
        let n = projects.len();
        Self {
            rng: Rng(seed),
            projects,
            views: vec![0; n],
        }
    }

    fn next(&mut self) -> Generated {
        let u = self.rng.unit();
        let project = ((u * u) * self.projects.len() as f64) as usize;
        let roll = self.rng.below(100);
        let (kind, tool, user_share) = match roll {
            0..88 => (
                "page.view",
                VIEW_TOOLS[self.rng.below(VIEW_TOOLS.len() as u64) as usize],
                30,
            ),
            88..96 => ("repo.clone", Some("code"), 20),
            _ => ("wiki.page.edit", Some("wiki"), 100),
        };
        if kind == "page.view" {
            self.views[project] += 1;
        }
        let user = (self.rng.below(100) < user_share).then(|| self.rng.below(USERS));
        Generated {
            kind,
            project,
            tool,
            user,
            address: self.rng.below(ADDRESSES),
            wiki_page: self.rng.below(50),
        }
    }

    fn extra(&self, g: &Generated) -> Bson {
        if g.kind != "wiki.page.edit" {
            return Bson::Null;
        }
        let p = &self.projects[g.project];
        Bson::Document(doc! {
            "title": format!("wiki page Page{} of {p}", g.wiki_page),
            "url": format!("/p/{p}/wiki/Page{}/", g.wiki_page),
            "summary": "Fixed the build instructions and added a section on releases.",
        })
    }

    /// A live event: the address goes in and the log turns it into the day's visitor.
    fn recorded(&mut self) -> (&'static str, EventContext, Bson) {
        let g = self.next();
        let ctx = EventContext {
            neighborhood: Some("p".into()),
            project: Some(self.projects[g.project].clone()),
            tool: g.tool.map(str::to_owned),
            user: g.user.map(|u| format!("user{u:04}")),
            visitor: None,
            private: false,
            ip: g.user.is_none().then(|| address(g.address)),
        };
        let extra = self.extra(&g);
        (g.kind, ctx, extra)
    }

    /// A past event as a JSON line of `forge events load`, at `timestamp` (epoch ms), with
    /// the visitor digest an anonymous one would have had that day.
    fn json_line(&mut self, timestamp: i64, out: &mut Vec<u8>) -> anyhow::Result<()> {
        let g = self.next();
        let day = timestamp / DAY_MS;
        let mut context = serde_json::json!({
            "neighborhood": "p",
            "project": self.projects[g.project],
        });
        if let Some(t) = g.tool {
            context["tool"] = t.into();
        }
        match g.user {
            Some(u) => context["user"] = format!("user{u:04}").into(),
            None => {
                let mut r = Rng(g.address.wrapping_mul(1_000_003) ^ day as u64);
                context["visitor"] = format!("{:016x}", r.next()).into();
            }
        }
        let mut line = serde_json::json!({
            "type": g.kind,
            "timestamp": timestamp,
            "context": context,
        });
        let extra = self.extra(&g);
        if extra != Bson::Null {
            line["extra"] = extra.into_relaxed_extjson();
        }
        serde_json::to_writer(&mut *out, &line)?;
        out.push(b'\n');
        Ok(())
    }
}

fn address(i: u64) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn thousands(n: f64) -> String {
    let n = n.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

async fn open_forge(uri: &str, data: &std::path::Path) -> anyhow::Result<Forge> {
    let db_name = format!(
        "bench_analytics_{}_{}",
        std::process::id(),
        bson::oid::ObjectId::new()
    );
    let config = Config {
        mongodb_uri: Some(uri.to_owned()),
        db_name,
        data_dir: data.to_owned(),
        ..Config::default()
    };
    let db = forge_tools::store::connect(uri, &config.db_name, Duration::from_secs(30)).await?;
    let cell = forge_tools::jobs::ForgeCell::default();
    let registry = forge_tools::jobs::handlers(cell.clone());
    let transport = InProcess::start(&db, registry, 2, Duration::from_secs(2)).await?;
    let tasks = Tasks::new(&db, transport);
    // As `forge serve` does: the event log writes through a client of its own.
    let log_client = forge_tools::store::connect_log(uri).await?;
    let dbs = forge_tools::events::Databases::new(db, &log_client);
    let forge = Forge::open(dbs, config, tasks, ToolRegistry::builtin(), true).await?;
    let _ = cell.set(forge.clone());
    Ok(forge)
}

/// Writes one event alone, which creates the store-wide batch sequence. In a new database the
/// writer's first batches are numbered at once (up to 4 in flight), each upserting the
/// sequence document: the store answers all but one of those racing upserts with no document
/// (the counter still moves), the writer drops those batches ("event sequence missing") and
/// their numbers stay holes, which every aggregation run then waits 60 s for.
async fn seed_sequence(forge: &Forge) -> anyhow::Result<()> {
    let event = forge_tools::events::Event {
        timestamp: bson::DateTime::now(),
        kind: "bench.start".into(),
        context: EventContext::default(),
        extra: Bson::Null,
    };
    forge.events().append(vec![event]).await?;
    Ok(())
}

/// The 100 public projects (made by a site admin, who is not rate limited).
async fn make_projects(forge: &Forge) -> anyhow::Result<Vec<String>> {
    let admin = forge
        .sign_up(
            &Viewer::default(),
            NewUser {
                username: "benchadmin".into(),
                email: "benchadmin@example.org".into(),
                display_name: String::new(),
                password: "bench-password-1".into(),
                site_admin: true,
            },
        )
        .await?;
    let viewer = Viewer {
        user: Some(admin),
        ip: None,
    };
    let mut names = Vec::with_capacity(PROJECTS);
    for i in 0..PROJECTS {
        let shortname = format!("proj{i:03}");
        forge
            .create_project(
                &viewer,
                NewProject {
                    neighborhood: Neighborhood::Projects,
                    shortname: shortname.clone(),
                    name: format!("Project {i}"),
                    summary: "A project of the analytics benchmark".into(),
                    private: false,
                },
            )
            .await?;
        names.push(shortname);
    }
    Ok(names)
}

/// Figure 1: `EventLog::record` until `flush` returns.
async fn ingest(forge: &Forge, mix: &mut Mix, n: u64) -> anyhow::Result<()> {
    let log = forge.events();
    let st = log.stats();
    let done = || {
        st.written.load(Ordering::Relaxed)
            + st.dropped.load(Ordering::Relaxed)
            + st.failed.load(Ordering::Relaxed)
    };
    let (written0, dropped0, failed0) = (
        st.written.load(Ordering::Relaxed),
        st.dropped.load(Ordering::Relaxed),
        st.failed.load(Ordering::Relaxed),
    );
    let base = done();
    note(&format!("ingestion: recording {n} events"));
    let started = Instant::now();
    let mut sent = 0_u64;
    let mut waited = Duration::ZERO;
    while sent < n {
        for _ in 0..BURST.min(n - sent) {
            let (kind, ctx, extra) = mix.recorded();
            log.record(kind, ctx, extra);
            sent += 1;
        }
        let w = Instant::now();
        while sent - (done() - base) > MAX_LAG {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        waited += w.elapsed();
    }
    let recorded = started.elapsed();
    log.flush().await;
    let elapsed = started.elapsed();
    let written = st.written.load(Ordering::Relaxed) - written0;
    let dropped = st.dropped.load(Ordering::Relaxed) - dropped0;
    let failed = st.failed.load(Ordering::Relaxed) - failed0;
    let rate = written as f64 / secs(elapsed);
    note(&format!(
        "ingestion: {written} written in {:.2} s (recording took {:.2} s, {:.2} s of it waiting \
         for the writer); dropped {dropped}, failed {failed}",
        secs(elapsed),
        secs(recorded),
        secs(waited)
    ));
    figure(
        &format!(
            "ingestion: EventLog::record, {} events (events/s)",
            thousands(n as f64)
        ),
        &format!(
            "{} /s ({written} in {:.1} s)",
            thousands(rate),
            secs(elapsed)
        ),
        ">= 50,000 /s",
        Some(rate >= 50_000.0 && written == n),
    );
    figure(
        "ingestion: dropped / failed",
        &format!("{dropped} / {failed}"),
        "0 / 0",
        Some(dropped == 0 && failed == 0),
    );
    Ok(())
}

/// Figure 2: one `run_analytics` over what is not aggregated yet.
async fn aggregate(forge: &Forge, label: &str, expected: u64) -> anyhow::Result<()> {
    note(&format!("aggregation ({label}): running"));
    let started = Instant::now();
    let report = forge.run_analytics(false).await?;
    let elapsed = started.elapsed();
    let rate = report.events as f64 / secs(elapsed);
    note(&format!(
        "aggregation ({label}): {} events in {} passes, {:.2} s",
        report.events,
        report.passes,
        secs(elapsed)
    ));
    figure(
        &format!("aggregation: run_analytics, {label} (events/s)"),
        &format!(
            "{} /s ({} in {:.1} s)",
            thousands(rate),
            report.events,
            secs(elapsed)
        ),
        ">= 100,000 /s",
        Some(rate >= 100_000.0 && report.events == expected),
    );
    Ok(())
}

/// The optional figure: 1,000,000 past events as JSON lines through the code of `forge
/// events load` (in process: parse, check, `EventLog::append` by 10,000).
async fn load_history(forge: &Forge, mix: &mut Mix, n: u64) -> anyhow::Result<()> {
    let now = bson::DateTime::now().timestamp_millis();
    let first = (now / DAY_MS - 364) * DAY_MS;
    let mut lines = Vec::with_capacity(n as usize * 200);
    for _ in 0..n {
        let t = first + mix.rng.below((now - first) as u64) as i64;
        mix.json_line(t, &mut lines)?;
    }
    note(&format!(
        "events load: {n} JSON lines ({} MB) over 365 days",
        lines.len() / 1_000_000
    ));
    let started = Instant::now();
    let loaded = forge_web::analytics::load(forge, &lines[..], &indicatif::ProgressBar::hidden())
        .await
        .map_err(anyhow::Error::msg)?;
    let elapsed = started.elapsed();
    if loaded.refused_count > 0 {
        bail!("events load refused lines: {:?}", loaded.refused);
    }
    let rate = loaded.written as f64 / secs(elapsed);
    figure(
        "forge events load: JSON lines, 365 days (events/s)",
        &format!(
            "{} /s ({} in {:.1} s)",
            thousands(rate),
            loaded.written,
            secs(elapsed)
        ),
        "(no target)",
        None,
    );
    Ok(())
}

/// A minimal HTTP/1.1 client on one keep-alive connection.
struct Http {
    conn: BufReader<TcpStream>,
    line: String,
}

impl Http {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Self {
            conn: BufReader::new(s),
            line: String::new(),
        })
    }

    /// Sends a request and reads the whole response: `(status, body)`.
    async fn get(&mut self, request: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        self.conn.get_mut().write_all(request).await?;
        self.line.clear();
        self.conn.read_line(&mut self.line).await?;
        let status: u16 = self
            .line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {:?}", self.line))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            self.line.clear();
            if self.conn.read_line(&mut self.line).await? == 0 {
                bail!("connection closed in the headers");
            }
            let h = self.line.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let v = v.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.eq_ignore_ascii_case("chunked");
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                self.line.clear();
                self.conn.read_line(&mut self.line).await?;
                let size = usize::from_str_radix(self.line.trim(), 16)
                    .with_context(|| format!("bad chunk size {:?}", self.line))?;
                let at = body.len();
                body.resize(at + size, 0);
                self.conn.read_exact(&mut body[at..]).await?;
                self.line.clear();
                self.conn.read_line(&mut self.line).await?;
                if size == 0 {
                    break;
                }
            }
        } else {
            let n = length.context("response without a length")?;
            body.resize(n, 0);
            self.conn.read_exact(&mut body).await?;
        }
        Ok((status, body))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Figure 3: `/q` latency. Returns the path asked, `None` when `/q` does not answer 200.
async fn query_latency(
    forge: &Forge,
    addr: SocketAddr,
    project: &str,
    requests: u64,
    expected_views: u64,
) -> anyhow::Result<Option<String>> {
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Days::new(364);
    let path = format!(
        "/q?c=project_day&p={project}/views/&b={project}/views/{from}&e={project}/views/{today}"
    );
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n");
    let mut http = Http::connect(addr).await?;
    let (status, body) = http.get(request.as_bytes()).await?;
    if status != 200 {
        let why = String::from_utf8_lossy(&body[..body.len().min(120)]).replace('\n', " ");
        figure(
            "/q 365-day series, anonymous (p50)",
            &format!("not run: GET /q answered {status} ({why})"),
            "< 2 ms",
            Some(false),
        );
        return Ok(None);
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let rows = v["v"].as_array().map(Vec::as_slice).unwrap_or_default();
    let total: i64 = rows.iter().filter_map(|r| r[1].as_i64()).sum();
    note(&format!(
        "/q: {} rows, {} bytes, views summed {total} (generated {expected_views})",
        rows.len(),
        body.len()
    ));
    figure(
        "/q check: rows / views counted vs generated",
        &format!("{} / {total} vs {expected_views}", rows.len()),
        "365 / equal",
        Some(rows.len() == 365 && total == expected_views as i64),
    );
    for _ in 0..200 {
        http.get(request.as_bytes()).await?;
    }
    let mut lat = Vec::with_capacity(requests as usize);
    let started = Instant::now();
    for _ in 0..requests {
        let t = Instant::now();
        let (status, _) = http.get(request.as_bytes()).await?;
        lat.push(t.elapsed());
        if status != 200 {
            bail!("GET {path}: {status}");
        }
    }
    let elapsed = started.elapsed();
    lat.sort();
    let (p50, p99) = (percentile(&lat, 0.50), percentile(&lat, 0.99));
    figure(
        &format!("/q 365-day series, anonymous, {requests} sequential (p50)"),
        &format!("{:.2} ms", ms(p50)),
        "< 2 ms",
        Some(p50 < Duration::from_millis(2)),
    );
    figure(
        "/q (p99 / max / req/s on one connection)",
        &format!(
            "{:.2} ms / {:.2} ms / {}",
            ms(p99),
            ms(lat[lat.len() - 1]),
            thousands(requests as f64 / secs(elapsed))
        ),
        "-",
        None,
    );
    // Where the time goes: the same request for one day (the cost of any request), the
    // store's range read alone, and the project's access check alone.
    let today_key = format!("{project}/views/{today}");
    let one_day = format!(
        "GET /q?c=project_day&p={project}/views/&b={today_key}&e={today_key} HTTP/1.1\r\n\
         Host: 127.0.0.1\r\nAccept: */*\r\n\r\n"
    );
    let mut lat = Vec::with_capacity(500);
    for _ in 0..500 {
        let t = Instant::now();
        http.get(one_day.as_bytes()).await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    let one_day_p50 = percentile(&lat, 0.5);
    let output = forge_tools::analytics::builtin::output("project_day").context("project_day")?;
    let (prefix, b, e) = (
        format!("{project}/views/"),
        format!("{project}/views/{from}"),
        today_key,
    );
    let mut lat = Vec::with_capacity(500);
    for _ in 0..500 {
        let t = Instant::now();
        forge_tools::analytics::query::range(forge.db(), output, &prefix, Some(&b), Some(&e))
            .await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    let range_p50 = percentile(&lat, 0.5);
    let mut lat = Vec::with_capacity(500);
    for _ in 0..500 {
        let t = Instant::now();
        forge
            .load_project(&Viewer::default(), Neighborhood::Projects, project)
            .await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    let access_p50 = percentile(&lat, 0.5);
    figure(
        "/q p50 split: 1-day /q; store range read of 365; load_project",
        &format!(
            "{:.2} ms; {:.2} ms; {:.2} ms",
            ms(one_day_p50),
            ms(range_p50),
            ms(access_p50)
        ),
        "-",
        None,
    );
    Ok(Some(path))
}

/// Figure 4: live fan-out to `clients` WebSockets.
async fn fan_out(
    forge: &Forge,
    addr: SocketAddr,
    project: &str,
    clients: usize,
) -> anyhow::Result<()> {
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("ws://{addr}/p/{project}/stats/live");
    note(&format!("live: connecting {clients} WebSockets to {url}"));
    let armed = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, String)>();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ended = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let connect_started = Instant::now();
    let mut before = 0_usize;
    let mut connected = 0_usize;
    let mut first_error = None;
    for chunk in (0..clients).collect::<Vec<_>>().chunks(100) {
        let attempts = futures::future::join_all(
            chunk
                .iter()
                .map(|_| tokio_tungstenite::connect_async(url.as_str())),
        )
        .await;
        for a in attempts {
            let mut ws = match a {
                Ok((ws, _)) => ws,
                Err(e) => {
                    first_error.get_or_insert_with(|| e.to_string());
                    continue;
                }
            };
            connected += 1;
            let (armed, tx, ended_by_server) = (armed.clone(), tx.clone(), ended.clone());
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let mut reported = false;
                loop {
                    let msg = tokio::select! {
                        m = ws.next() => m,
                        _ = stop.changed() => break,
                    };
                    match msg {
                        Some(Ok(Message::Text(t))) => {
                            if armed.load(Ordering::Acquire) && !reported {
                                reported = true;
                                let _ = tx.send((Instant::now(), t.to_string()));
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            ended_by_server
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push(format!("closed by the server: {frame:?}"));
                            break;
                        }
                        Some(Err(e)) => {
                            ended_by_server
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push(format!("error: {e}"));
                            break;
                        }
                        None => {
                            ended_by_server
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push("ended".into());
                            break;
                        }
                        Some(Ok(_)) => {}
                    }
                }
                let _ = ws.close(None).await;
            });
        }
        if first_error.is_some() && connected == before {
            break;
        }
        before = connected;
    }
    drop(tx);
    if connected < clients {
        let why = first_error.unwrap_or_default();
        figure(
            &format!("live: {clients} WebSockets, time until all got the update"),
            &format!("not run: {connected} of {clients} connected ({why})"),
            "<= 1 s",
            Some(false),
        );
        let _ = stop_tx.send(true);
        return Ok(());
    }
    note(&format!(
        "live: {connected} connected in {:.2} s",
        secs(connect_started.elapsed())
    ));
    // Whatever a page is sent on connecting is read before the clock starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    armed.store(true, Ordering::Release);
    let t0 = Instant::now();
    let ctx = || EventContext {
        neighborhood: Some("p".into()),
        project: Some(project.to_owned()),
        tool: Some("code".into()),
        ..Default::default()
    };
    for i in 0..20 {
        forge.events().record(
            if i == 0 { "repo.clone" } else { "page.view" },
            EventContext {
                ip: Some(address(i)),
                ..ctx()
            },
            Bson::Null,
        );
    }
    forge.events().flush().await;
    let flushed = t0.elapsed();
    let report = forge.run_analytics(false).await?;
    let ran = t0.elapsed();
    let mut arrivals = Vec::with_capacity(clients);
    let mut sample = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while arrivals.len() < clients {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((at, text))) => {
                if sample.is_empty() {
                    sample = text;
                }
                arrivals.push(at.duration_since(t0));
            }
            _ => break,
        }
    }
    let closed: Vec<String> = ended
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let _ = stop_tx.send(true);
    if let Some(first) = closed.first() {
        note(&format!(
            "live: {} sockets ended before the end of the measure; the first: {first}",
            closed.len()
        ));
    }
    arrivals.sort();
    note(&format!(
        "live: flush at {:.1} ms, run_analytics ({} events, {} passes, {} live values) done at \
         {:.1} ms; first message: {}",
        ms(flushed),
        report.events,
        report.passes,
        report.touched.len(),
        ms(ran),
        sample.chars().take(300).collect::<String>()
    ));
    let got = arrivals.len();
    let last = arrivals.last().copied().unwrap_or_default();
    figure(
        &format!("live: {clients} WebSockets, events logged -> last socket got the update"),
        &if got == clients {
            format!("{:.1} ms", ms(last))
        } else {
            format!("{got} of {clients} within 10 s")
        },
        "<= 1 s",
        Some(got == clients && last <= Duration::from_secs(1)),
    );
    if got > 0 {
        figure(
            "live: first / p50 / last socket; of which flush + run_analytics",
            &format!(
                "{:.1} / {:.1} / {:.1} ms; {:.1} ms",
                ms(arrivals[0]),
                ms(percentile(&arrivals, 0.5)),
                ms(last),
                ms(ran)
            ),
            "-",
            None,
        );
    }
    Ok(())
}

/// What the store does alone on this machine, beside the figures it bounds: reading events
/// by id (as an aggregation pass does), the guarded upserts a pass writes, and inserting
/// batches of events (as the writer does, one at a time here).
async fn store_bounds(forge: &Forge) -> anyhow::Result<()> {
    use futures::TryStreamExt;
    let db = forge.db();
    // The log's database on the client the log uses (no command monitoring).
    let log_db = forge.events().log_db();
    let events = log_db.collection::<bson::Document>(forge_tools::events::COLLECTION);
    // A pass reads `_id >= watermark`, sorted, at most 50,000: the same read over the first
    // events of the log (all 2,000,000 after them), then over exactly their range.
    let read = |filter: bson::Document| {
        let events = events.clone();
        async move {
            let started = Instant::now();
            let docs: Vec<bson::Document> = events
                .find(filter)
                .sort(doc! {"_id": 1})
                .limit(50_000)
                .batch_size(10_000)
                .await?
                .try_collect()
                .await?;
            anyhow::Ok((started.elapsed(), docs))
        }
    };
    let (open_time, docs) = read(doc! {"_id": {"$gte": 0_i64}}).await?;
    let read_n = docs.len();
    let (first, last) = (
        docs.first()
            .and_then(|d| d.get_i64("_id").ok())
            .unwrap_or(0),
        docs.last().and_then(|d| d.get_i64("_id").ok()).unwrap_or(0),
    );
    drop(docs);
    let (closed_time, _) = read(doc! {"_id": {"$gte": first, "$lte": last}}).await?;

    let upserts = |round: i64| -> Vec<bson::Document> {
        (0..10_000)
            .map(|i| {
                doc! {
                    "q": {"_id": format!("proj{:03}/views/{i:05}", i % 100), "b": {"$lt": round}},
                    "u": {"$inc": {"v": 1_i64}, "$set": {"b": round}},
                    "upsert": true,
                }
            })
            .collect()
    };
    let registers = |round: i64| -> Vec<bson::Document> {
        (0..10_000_i64)
            .map(|i| {
                let regs: bson::Document = (0..10_i64)
                    .map(|r| (format!("h.{}", (i * 31 + r * 1_637) % 16_384), Bson::Int32(3)))
                    .collect();
                doc! {
                    "q": {"_id": format!("proj{:03}/visitors/{i:05}", i % 100), "b": {"$lt": round}},
                    "u": {"$max": regs, "$set": {"b": round}},
                    "upsert": true,
                }
            })
            .collect()
    };
    let t = Instant::now();
    db.run_command(doc! {"update": "bench_scratch_hll", "updates": registers(1), "ordered": false})
        .await?;
    let hll_rate = 10_000.0 / secs(t.elapsed());
    let mut rates = Vec::new();
    for round in [1_i64, 2] {
        let updates = upserts(round);
        let t = Instant::now();
        db.run_command(doc! {"update": "bench_scratch_agg", "updates": updates, "ordered": false})
            .await?;
        rates.push(10_000.0 / secs(t.elapsed()));
    }

    // Beside the log, in its database, as the writer inserts.
    let scratch = log_db.collection::<bson::Document>("bench_scratch_events");
    let sample: Vec<bson::Document> = events
        .find(doc! {})
        .limit(10_000)
        .await?
        .try_collect()
        .await?;
    let t = Instant::now();
    for b in 1..=10_i64 {
        let batch: Vec<bson::Document> = sample
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut d = d.clone();
                d.insert("_id", (b << 20) | i as i64);
                d
            })
            .collect();
        scratch.insert_many(batch).ordered(false).await?;
    }
    let inserted = 10 * sample.len();
    let insert_rate = inserted as f64 / secs(t.elapsed());
    figure(
        "store alone: 50,000 events by _id, open range (as a pass) / closed range",
        &format!(
            "{} /s / {} /s ({read_n} docs)",
            thousands(read_n as f64 / secs(open_time)),
            thousands(read_n as f64 / secs(closed_time))
        ),
        "-",
        None,
    );
    figure(
        "store alone: guarded upserts, 10,000 per command (new / existing keys / 10 HLL registers)",
        &format!(
            "{} /s / {} /s / {} /s",
            thousands(rates[0]),
            thousands(rates[1]),
            thousands(hll_rate)
        ),
        "-",
        None,
    );
    figure(
        "store alone: insert_many of 10,000 events, one at a time",
        &format!("{} docs/s ({inserted})", thousands(insert_rate)),
        "-",
        None,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FORGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    forge_web::listen::raise_fd_limit();
    let uri = std::env::var("BENCH_MONGODB_URI")
        .context("BENCH_MONGODB_URI is unset: run bench/analytics.sh, which starts a store")?;
    let n = env_num("BENCH_EVENTS", 1_000_000);
    let clients = env_num("BENCH_WS_CLIENTS", 1_000) as usize;
    let requests = env_num("BENCH_Q_REQUESTS", 2_000);
    let data = tempfile::tempdir()?;
    let forge = open_forge(&uri, data.path()).await?;
    note(&format!("database {}", forge.db().name()));

    // The batch sequence is made by the first batch written, alone: batches numbered at
    // once in a new database can be lost (see `seed_sequence`).
    seed_sequence(&forge).await?;
    note("setup: 100 public projects");
    let projects = make_projects(&forge).await?;
    forge.events().flush().await;
    let failed = forge.events().stats().failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} events of the setup were not written");
    }
    forge.run_analytics(false).await?;
    let mut mix = Mix::new(0x5EED_2026, projects.clone());

    ingest(&forge, &mut mix, n).await?;
    let label = thousands(n as f64);
    aggregate(&forge, &format!("{label} events of one day"), n).await?;
    load_history(&forge, &mut mix, n).await?;
    aggregate(&forge, &format!("{label} events over 365 days"), n).await?;

    let app = forge_web::app::build(forge.clone())?;
    let listener = forge_web::listen::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let addr = listener.local_addr()?;
    let limits = forge_web::listen::ConnLimits::from_config(forge.config());
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(forge_web::listen::serve(listener, app, limits, async {
        let _ = shutdown_rx.await;
    }));
    note(&format!("serving on http://{addr}"));

    let watched = &projects[WATCHED];
    let path = query_latency(&forge, addr, watched, requests, mix.views[WATCHED]).await?;
    if let (Some(path), Ok(hold)) = (path, std::env::var("BENCH_HOLD_FILE")) {
        std::fs::write(&hold, format!("http://{addr}{path}\n"))?;
        let until = Instant::now() + Duration::from_secs(300);
        while std::path::Path::new(&hold).exists() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fan_out(&forge, addr, watched, clients).await?;

    store_bounds(&forge).await?;

    let _ = shutdown_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let _ = forge_tools::events::log_db(forge.db()).drop().await;
    let _ = forge.db().drop().await;
    Ok(())
}
