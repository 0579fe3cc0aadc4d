//! Test harness: a real store (the server named by `FORGE_TEST_MONGODB_URI`, which
//! `scripts/test` starts), one fresh database per test, and the router driven with `oneshot`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod git;
pub mod process;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use forge_tasks::{InProcess, Tasks};
use forge_tools::acl::Role;
use forge_tools::config::Config;
use forge_tools::projects::{Neighborhood, NewProject, Project};
use forge_tools::tool::ToolRegistry;
use forge_tools::users::{NewUser, User};
use forge_tools::{Forge, ProjectCtx, Viewer, projects, sessions, tokens};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub fn store_uri() -> String {
    std::env::var("FORGE_TEST_MONGODB_URI").expect(
        "FORGE_TEST_MONGODB_URI is unset: run the tests with scripts/test, which starts a store",
    )
}

/// A loopback port free right now, for a server process the test starts.
///
/// Not one the kernel hands out for `:0`: those come from the ephemeral range, which every
/// outgoing connection of the parallel tests (store and broker clients) also draws from, so
/// one could take the port between this check and the server's bind (it did in CI). Ports
/// below that range are only ever taken by a listener that asks for one by number.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Below Linux's default ephemeral range (32768..60999); spread by process id so test
    // binaries running at once start in different places.
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOW + start.wrapping_add(n.wrapping_mul(13)) % SPAN;
        let port = u16::try_from(port).unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN);
}

/// A database name unique to this test run.
pub fn fresh_db_name(label: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let label: String = label
        .chars()
        .filter(char::is_ascii_alphanumeric)
        // Short enough that the event log's database name (`<name>_events`) stays within
        // MongoDB's 63 bytes.
        .take(12)
        .collect();
    format!(
        "t_{label}_{}_{n}_{}",
        std::process::id(),
        bson::oid::ObjectId::new()
    )
}

pub struct TestApp {
    pub forge: Forge,
    pub router: Router,
    /// The data dir (attachments...), removed with the app.
    pub data: tempfile::TempDir,
}

/// Cookies and CSRF token of one browser.
#[derive(Clone, Default)]
pub struct Browser {
    pub session: Option<String>,
    pub csrf: String,
    pub ip: Option<SocketAddr>,
}

impl Browser {
    pub fn anonymous() -> Self {
        Self {
            session: None,
            csrf: forge_tools::secret::random_token(""),
            ip: None,
        }
    }

    pub fn cookie_header(&self) -> String {
        let mut c = format!("forge_csrf={}", self.csrf);
        if let Some(s) = &self.session {
            c.push_str(&format!("; forge_session={s}"));
        }
        c
    }
}

pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Res {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                v.strip_prefix(&format!("{name}="))
                    .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
            })
    }
}

impl TestApp {
    pub async fn new(label: &str) -> Self {
        Self::with_config(label, |_| {}).await
    }

    /// An app whose configuration the test adjusts (store, database and data dir are set).
    pub async fn with_config(label: &str, adjust: impl FnOnce(&mut Config)) -> Self {
        let (config, data) = Self::config(label, adjust);
        let db = forge_tools::store::connect(
            config.mongodb_uri.as_deref().unwrap(),
            &config.db_name,
            Duration::from_secs(10),
        )
        .await
        .expect("store reachable");
        Self::open(config, db, data).await
    }

    /// An app whose store commands are recorded (the driver's command monitoring) while the
    /// returned [`Commands`] is switched on.
    pub async fn with_commands(label: &str) -> (Self, std::sync::Arc<Commands>) {
        let (config, data) = Self::config(label, |_| {});
        let commands = std::sync::Arc::new(Commands::default());
        let mut opts = mongodb::options::ClientOptions::parse(store_uri())
            .await
            .unwrap();
        let seen = commands.clone();
        let name = config.db_name.clone();
        opts.command_event_handler = Some(mongodb::event::EventHandler::callback(
            move |ev: mongodb::event::command::CommandEvent| {
                // What `store::connect` installs: writes empty the read model's memos.
                forge_tools::readmodel::memo::note(&ev);
                if let mongodb::event::command::CommandEvent::Started(s) = ev
                    && s.db == name
                {
                    seen.note(&s.command_name, &s.command);
                }
            },
        ));
        let db = mongodb::Client::with_options(opts)
            .unwrap()
            .database(&config.db_name);
        (Self::open(config, db, data).await, commands)
    }

    fn config(label: &str, adjust: impl FnOnce(&mut Config)) -> (Config, tempfile::TempDir) {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config {
            mongodb_uri: Some(store_uri()),
            db_name: fresh_db_name(label),
            data_dir: data.path().to_owned(),
            ..Config::default()
        };
        adjust(&mut config);
        (config, data)
    }

    async fn open(config: Config, db: mongodb::Database, data: tempfile::TempDir) -> Self {
        let cell = forge_tools::jobs::ForgeCell::default();
        let registry = forge_tools::jobs::handlers(cell.clone());
        let transport = InProcess::start(&db, registry, 2, Duration::from_millis(10))
            .await
            .unwrap();
        let tasks = Tasks::new(&db, transport);
        let forge = Forge::open(db, config, tasks, ToolRegistry::builtin(), true)
            .await
            .unwrap();
        let _ = cell.set(forge.clone());
        let router = forge_web::app::build(forge.clone()).unwrap();
        Self {
            forge,
            router,
            data,
        }
    }

    pub async fn send(&self, req: Request<Body>, ip: Option<SocketAddr>) -> Res {
        let ip = ip.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 40000)));
        let res = self
            .router
            .clone()
            .layer(MockConnectInfo(ip))
            .oneshot(req)
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Res {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes: bytes.to_vec(),
        }
    }

    /// The app served on a loopback port (for clients that need a real connection: git,
    /// WebSockets); returns `127.0.0.1:<port>`.
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = self.router.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        addr
    }

    /// [`TestApp::serve`] as a base URL, `http://127.0.0.1:<port>`.
    pub async fn base_url(&self) -> String {
        format!("http://{}", self.serve().await)
    }

    pub async fn get(&self, path: &str, b: &Browser) -> Res {
        let req = Request::get(path)
            .header(header::COOKIE, b.cookie_header())
            .body(Body::empty())
            .unwrap();
        self.send(req, b.ip).await
    }

    /// Posts a form with the browser's CSRF token added.
    pub async fn post_form(&self, path: &str, b: &Browser, fields: &[(&str, &str)]) -> Res {
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", &b.csrf)];
        all.extend_from_slice(fields);
        self.post_raw(path, b, &all).await
    }

    /// Posts exactly these fields (no CSRF token added).
    pub async fn post_raw(&self, path: &str, b: &Browser, fields: &[(&str, &str)]) -> Res {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let req = Request::post(path)
            .header(header::COOKIE, b.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(req, b.ip).await
    }

    /// Posts a multipart form (fields, then one file) with the browser's cookies.
    pub async fn post_multipart(
        &self,
        path: &str,
        b: &Browser,
        fields: &[(&str, &str)],
        file: (&str, &[u8]),
        bearer: Option<&str>,
    ) -> Res {
        let boundary = "forgeboundary7d1f";
        let mut body: Vec<u8> = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n", file.0).as_bytes(),
        );
        body.extend_from_slice(file.1);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut req = Request::post(path)
            .header(header::COOKIE, b.cookie_header())
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            );
        if let Some(t) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.send(req.body(Body::from(body)).unwrap(), b.ip).await
    }

    /// A REST call, with a bearer token when given.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Res {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.send(req, None).await
    }

    /// An account created through the domain (not the sign-up form, which is rate limited).
    pub async fn user(&self, username: &str) -> User {
        self.user_with(username, false).await
    }

    pub async fn user_with(&self, username: &str, site_admin: bool) -> User {
        let new = NewUser {
            username: username.into(),
            email: format!("{username}@example.org"),
            display_name: String::new(),
            password: format!("{username}-password"),
            site_admin,
        };
        self.forge.sign_up(&Viewer::default(), new).await.unwrap()
    }

    /// A logged-in browser for the user.
    pub async fn browser(&self, user: &User) -> Browser {
        let token = sessions::create(self.forge.db(), user.id).await.unwrap();
        Browser {
            csrf: sessions::csrf_token(&token),
            session: Some(token),
            ..Browser::anonymous()
        }
    }

    pub async fn token(&self, user: &User) -> String {
        tokens::create(self.forge.db(), user.id, "test")
            .await
            .unwrap()
            .1
    }

    /// A project in `p` owned by `owner`.
    pub async fn project(&self, owner: &User, shortname: &str, private: bool) -> Project {
        let viewer = Viewer {
            user: Some(owner.clone()),
            ip: None,
        };
        let new = NewProject {
            neighborhood: Neighborhood::Projects,
            shortname: shortname.into(),
            name: format!("Project {shortname}"),
            summary: "A test project".into(),
            private,
        };
        self.forge.create_project(&viewer, new).await.unwrap()
    }

    pub async fn add_member(&self, project: &Project, user: &User, role: Role) {
        projects::set_member(self.forge.db(), project.id, user.id, role)
            .await
            .unwrap();
    }

    /// Events of the event log (in its own database) that match `filter`.
    pub async fn count_events(&self, filter: bson::Document) -> u64 {
        self.events().count_documents(filter).await.unwrap()
    }

    /// The event log (see `forge_tools::events::log_db`).
    pub fn events(&self) -> mongodb::Collection<bson::Document> {
        forge_tools::events::collection(self.forge.db())
    }

    /// Documents of `collection` (in the database it lives in) that match `filter`.
    pub async fn count(&self, collection: &str, filter: bson::Document) -> u64 {
        self.db_of(collection)
            .collection::<bson::Document>(collection)
            .count_documents(filter)
            .await
            .unwrap()
    }

    /// A project in `p` as `u` sees it (for calling the domain directly).
    pub async fn ctx_of(&self, u: &User, project: &str) -> ProjectCtx {
        self.forge
            .load_project(&viewer(u), Neighborhood::Projects, project)
            .await
            .unwrap()
    }

    /// Waits until every task named `name` has finished; fails if one failed.
    pub async fn tasks_done(&self, name: &str) {
        for _ in 0..400 {
            let open = self
                .count(
                    "tasks",
                    bson::doc! {"name": name, "state": {"$nin": ["complete", "failed"]}},
                )
                .await;
            if open == 0 {
                let failed = self
                    .count("tasks", bson::doc! {"name": name, "state": "failed"})
                    .await;
                assert_eq!(failed, 0, "a {name} task failed");
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{name} tasks did not finish");
    }

    /// Records every operation on this test's database from now on (the store's profiler);
    /// the time to read them from with [`Self::profiled`].
    pub async fn profile(&self) -> bson::DateTime {
        for db in [
            self.forge.db().clone(),
            forge_tools::events::log_db(self.forge.db()),
        ] {
            db.run_command(bson::doc! {"profile": 2}).await.unwrap();
        }
        bson::DateTime::now()
    }

    /// The database `collection` is in: the event log's own, or the forge's.
    fn db_of(&self, collection: &str) -> mongodb::Database {
        if collection == forge_tools::events::COLLECTION {
            forge_tools::events::log_db(self.forge.db())
        } else {
            self.forge.db().clone()
        }
    }

    /// The operations (`op`: `query`, `insert`, `update`, `remove`...) recorded on
    /// `collection` since `since`.
    pub async fn profiled(
        &self,
        collection: &str,
        op: &str,
        since: bson::DateTime,
    ) -> Vec<bson::Document> {
        use futures::TryStreamExt;
        let db = self.db_of(collection);
        let ns = format!("{}.{collection}", db.name());
        db.collection::<bson::Document>("system.profile")
            .find(bson::doc! {"ns": ns, "op": op, "ts": {"$gte": since}})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    }

    /// The filters of the updates recorded on `collection` since `since` (see
    /// [`Self::profile`]).
    pub async fn updates(&self, collection: &str, since: bson::DateTime) -> Vec<bson::Document> {
        self.profiled(collection, "update", since)
            .await
            .into_iter()
            .filter_map(|d| {
                d.get_document("command")
                    .ok()?
                    .get_document("q")
                    .ok()
                    .cloned()
            })
            .collect()
    }

    /// Whether the store answers `filter` on `collection` through an index (no collection
    /// scan in its plan).
    pub async fn indexed(&self, collection: &str, filter: bson::Document) -> bool {
        let plan = self
            .db_of(collection)
            .run_command(bson::doc! {
                "explain": {"find": collection, "filter": filter},
                "verbosity": "queryPlanner",
            })
            .await
            .unwrap();
        let plan = plan
            .get_document("queryPlanner")
            .and_then(|p| p.get_document("winningPlan"))
            .map(|p| p.to_string())
            .unwrap_or_default();
        plan.contains("IXSCAN") && !plan.contains("COLLSCAN")
    }

    /// The mails written so far (no SMTP configured: `.eml` files under the data dir), sorted.
    pub fn mails(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.data.path().join("mail"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .map(|e| std::fs::read_to_string(e.path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}

/// A viewer that is `u` (for calling the domain directly).
pub fn viewer(u: &User) -> Viewer {
    Viewer {
        user: Some(u.clone()),
        ip: None,
    }
}

/// A page's text with the HTML entities the templates write turned back.
pub fn decode(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The value of the first hidden field `name` on the page.
pub fn field(body: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = body
        .find(&key)
        .unwrap_or_else(|| panic!("no field {name}: {body}"))
        + key.len();
    let end = at + body[at..].find('"').unwrap();
    decode(&body[at..end])
}

/// The signed thread reference a page's discussion forms carry.
pub fn thread_ref(page: &Res) -> std::collections::HashMap<&'static str, String> {
    ["artifact", "title", "url", "sig"]
        .into_iter()
        .map(|k| (k, field(&page.body, k)))
        .collect()
}

/// The flash message a response set.
pub fn flash(res: &Res) -> String {
    let raw = res.set_cookie("forge_flash").unwrap_or_default();
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("m={raw}"))
        .unwrap()
        .pop()
        .map(|(_, m)| m)
        .unwrap_or_default()
}

tokio::task_local! {
    /// Set while a future whose store commands are recorded runs (see [`Commands::of`]).
    static RECORDED: ();
}

/// Store commands a test records (see [`TestApp::with_commands`]): `(command, collection)`.
/// Only the commands a given future issues are recorded: the driver runs an operation in the
/// task that awaits it, so a task-local marks them, and background work of the same
/// process (task runner, event writer, change stream) is not counted.
#[derive(Default)]
pub struct Commands {
    seen: std::sync::Mutex<Vec<(String, String)>>,
}

impl Commands {
    fn note(&self, name: &str, command: &bson::Document) {
        if RECORDED.try_with(|_| ()).is_err() {
            return;
        }
        let coll = command
            .get_str(name)
            .or_else(|_| command.get_str("collection"))
            .unwrap_or_default()
            .to_owned();
        self.seen.lock().unwrap().push((name.to_owned(), coll));
    }

    /// Runs `f`; what it returned and the store commands it issued.
    pub async fn of<F: std::future::Future>(&self, f: F) -> (F::Output, Vec<(String, String)>) {
        self.seen.lock().unwrap().clear();
        let out = RECORDED.scope((), f).await;
        (out, std::mem::take(&mut *self.seen.lock().unwrap()))
    }
}

/// A WebSocket client connection of the tests.
pub type WsClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `path` on a served app (see [`TestApp::serve`]) as the browser `b`
/// (its session cookie); the refusal's status when the server does not upgrade.
pub async fn ws_connect(addr: SocketAddr, path: &str, b: &Browser) -> Result<WsClient, StatusCode> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(s) = &b.session {
        req.headers_mut().insert(
            header::COOKIE,
            format!("forge_session={s}").parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, res)) => {
            assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
            Ok(ws)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status()),
        Err(e) => panic!("WebSocket to {path}: {e}"),
    }
}
