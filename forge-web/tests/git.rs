//! Git over smart HTTP with the real git client against a served forge on the real store:
//! clone, push (password and token), permissions, protocol v2, shallow and partial clones,
//! refs and the push refresh, and injection attempts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::TestApp;
use forge_tools::acl::Role;

/// The app served on a loopback port, for the git client.
async fn serve(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

struct Git {
    home: tempfile::TempDir,
}

impl Git {
    fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// Runs git without prompts or user config; returns (success, stdout+stderr).
    async fn run(&self, cwd: &Path, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new("git");
        cmd.args([
            "-c",
            "user.name=Tester",
            "-c",
            "user.email=tester@example.org",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(cwd)
        .env("HOME", self.home.path())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_ASKPASS");
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    async fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let (ok, text) = self.run(cwd, args).await;
        assert!(ok, "git {args:?} failed: {text}");
        text
    }

    async fn commit(&self, cwd: &Path, file: &str, content: &str, message: &str) {
        if let Some(parent) = Path::new(file).parent() {
            std::fs::create_dir_all(cwd.join(parent)).unwrap();
        }
        std::fs::write(cwd.join(file), content).unwrap();
        self.ok(cwd, &["add", "-A"]).await;
        self.ok(cwd, &["commit", "-q", "-m", message]).await;
    }
}

fn with_credentials(base: &str, user: &str, secret: &str, path: &str) -> String {
    format!("{}//{user}:{secret}@{}{path}", &base[..5], &base[7..])
}

async fn wait_refreshed(
    app: &TestApp,
    tool: forge_tools::ids::ToolId,
    refs: usize,
) -> forge_tools::repo::refresh::RefCache {
    for _ in 0..200 {
        if let Some(c) = forge_tools::repo::refresh::cached_refs(app.forge.db(), tool)
            .await
            .unwrap()
            && c.refs.len() >= refs
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("refresh did not record {refs} refs");
}

async fn tool_id(
    app: &TestApp,
    user: &forge_tools::users::User,
    project: &str,
) -> forge_tools::ids::ToolId {
    let viewer = forge_tools::Viewer {
        user: Some(user.clone()),
        ip: None,
    };
    let ctx = app
        .forge
        .load_project(
            &viewer,
            forge_tools::projects::Neighborhood::Projects,
            project,
        )
        .await
        .unwrap();
    ctx.tool("code").unwrap().id
}

#[tokio::test]
async fn clone_push_with_password_and_token_then_clone_again() {
    let app = TestApp::new("gitpush").await;
    let ann = app.user("ann").await;
    app.project(&ann, "proj", false).await;
    let base = serve(&app).await;
    let git = Git::new();
    let url = format!("{base}/git/p/proj/code.git");

    let (ok, out) = git.run(git.home.path(), &["clone", &url, "work"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("empty repository"));
    let work = git.dir("work");
    git.commit(&work, "README.md", "# Proj\n", "first commit")
        .await;
    let with_password = with_credentials(&base, "ann", "ann-password", "/git/p/proj/code.git");
    git.ok(&work, &["push", "-q", &with_password, "HEAD:main"])
        .await;
    git.commit(
        &work,
        "src/lib.rs",
        "pub fn x() {}\n",
        "second commit, fixes [#12] as [wiki:Home] says",
    )
    .await;
    let token = app.token(&ann).await;
    let with_token = with_credentials(&base, "ann", &token, "/git/p/proj/code");
    git.ok(&work, &["push", "-q", &with_token, "HEAD:main"])
        .await;

    git.ok(git.home.path(), &["clone", "-q", &url, "again"])
        .await;
    let a = git.ok(&work, &["log", "--format=%H %s"]).await;
    let b = git.ok(&git.dir("again"), &["log", "--format=%H %s"]).await;
    assert_eq!(a, b, "identical history");
    assert_eq!(a.lines().count(), 2);

    let tid = tool_id(&app, &ann, "proj").await;
    let cache = wait_refreshed(&app, tid, 1).await;
    for _ in 0..100 {
        if forge_tools::repo::refresh::count_commits(app.forge.db(), tid)
            .await
            .unwrap()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        forge_tools::repo::refresh::count_commits(app.forge.db(), tid)
            .await
            .unwrap(),
        2
    );
    assert_eq!(cache.refs[0].name, "main");
    // The commit message's references were recorded: the wiki page lists the commit (the
    // second push's refresh may still be running).
    let mut listed = false;
    for _ in 0..100 {
        let home = app
            .get("/p/proj/wiki/Home/", &common::Browser::anonymous())
            .await;
        if home.body.contains("/p/proj/code/commit/") {
            listed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(listed, "backlink from the commit");
    // The push housekeeping repacked the repository with a bitmap (fast full clones).
    let pack_dir = app
        .data
        .path()
        .join("repos")
        .join(format!("{tid}.git"))
        .join("objects/pack");
    let has_bitmap = std::fs::read_dir(&pack_dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".bitmap"));
    assert!(has_bitmap, "no bitmap in {}", pack_dir.display());
    let project = forge_tools::projects::get(
        app.forge.db(),
        forge_tools::projects::Neighborhood::Projects,
        "proj",
    )
    .await
    .unwrap()
    .unwrap();
    let ticket_key = format!("ticket:{}:*:12", project.id);
    assert_eq!(
        app.count("links", bson::doc! {"to_key": ticket_key}).await,
        1
    );
    app.forge.events().flush().await;
    assert!(
        app.count(
            "events",
            bson::doc! {"type": "repo.push", "context.user": "ann"}
        )
        .await
            >= 1
    );
    assert!(app.count("events", bson::doc! {"type": "repo.clone"}).await >= 1);
}

#[tokio::test]
async fn push_and_clone_permissions() {
    let app = TestApp::new("gitperms").await;
    let ann = app.user("ann").await;
    let mem = app.user("mem").await;
    let public = app.project(&ann, "open", false).await;
    app.project(&ann, "closed", true).await;
    app.add_member(&public, &mem, Role::Member).await;
    let base = serve(&app).await;
    let git = Git::new();
    git.ok(git.home.path(), &["init", "-q", "local"]).await;
    let local = git.dir("local");
    git.commit(&local, "a.txt", "a", "a").await;

    // Anonymous push: 401 with a challenge (git reports the authentication failure).
    let (ok, out) = git
        .run(
            &local,
            &["push", &format!("{base}/git/p/open/code.git"), "HEAD:main"],
        )
        .await;
    assert!(!ok);
    assert!(
        out.contains("could not read Username") || out.contains("Authentication failed"),
        "{out}"
    );
    let res = app
        .api(
            Method::GET,
            "/git/p/open/code.git/info/refs?service=git-receive-pack",
            None,
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.header("www-authenticate").starts_with("Basic"));
    // A member without write: 403.
    let (ok, out) = git
        .run(
            &local,
            &[
                "push",
                &with_credentials(&base, "mem", "mem-password", "/git/p/open/code.git"),
                "HEAD:main",
            ],
        )
        .await;
    assert!(!ok);
    assert!(out.contains("403"), "{out}");
    // Wrong password: 401.
    let (ok, out) = git
        .run(
            &local,
            &[
                "push",
                &with_credentials(&base, "ann", "nope", "/git/p/open/code.git"),
                "HEAD:main",
            ],
        )
        .await;
    assert!(!ok && out.contains("Authentication failed"), "{out}");

    // Private: anonymous clone refused, token clone allowed; outsiders see nothing.
    let (ok, out) = git
        .run(
            git.home.path(),
            &["clone", &format!("{base}/git/p/closed/code.git"), "x"],
        )
        .await;
    assert!(!ok, "{out}");
    let res = app
        .api(
            Method::GET,
            "/git/p/closed/code.git/info/refs?service=git-upload-pack",
            None,
            None,
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::UNAUTHORIZED,
        "anonymous callers are asked to log in, not told whether it exists"
    );
    let outsider = app.user("outsider").await;
    let otok = app.token(&outsider).await;
    let res = app
        .api(
            Method::GET,
            "/git/p/closed/code.git/info/refs?service=git-upload-pack",
            Some(&otok),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let token = app.token(&ann).await;
    git.ok(
        &local,
        &[
            "push",
            "-q",
            &with_credentials(&base, "ann", &token, "/git/p/closed/code.git"),
            "HEAD:main",
        ],
    )
    .await;
    git.ok(
        git.home.path(),
        &[
            "clone",
            "-q",
            &with_credentials(&base, "ann", &token, "/git/p/closed/code.git"),
            "privclone",
        ],
    )
    .await;
    assert!(git.dir("privclone").join("a.txt").is_file());
}

#[tokio::test]
async fn protocol_v2_shallow_and_partial() {
    let app = TestApp::new("gitv2").await;
    let ann = app.user("ann").await;
    app.project(&ann, "proj", false).await;
    let base = serve(&app).await;
    let git = Git::new();
    git.ok(git.home.path(), &["init", "-q", "src"]).await;
    let src = git.dir("src");
    for i in 0..5 {
        git.commit(
            &src,
            &format!("f{i}.txt"),
            &"x".repeat(2000 + i),
            &format!("commit {i}"),
        )
        .await;
    }
    let token = app.token(&ann).await;
    git.ok(
        &src,
        &[
            "push",
            "-q",
            &with_credentials(&base, "ann", &token, "/git/p/proj/code.git"),
            "HEAD:main",
        ],
    )
    .await;
    let url = format!("{base}/git/p/proj/code.git");

    git.ok(git.home.path(), &["init", "-q", "v2"]).await;
    let v2 = git.dir("v2");
    let out = git
        .ok(&v2, &["-c", "protocol.version=2", "fetch", &url, "main"])
        .await;
    let _ = out;
    let head = git.ok(&v2, &["rev-parse", "FETCH_HEAD"]).await;
    let want = git.ok(&src, &["rev-parse", "HEAD"]).await;
    assert_eq!(head, want);

    git.ok(
        git.home.path(),
        &["clone", "-q", "--depth", "1", &url, "shallow"],
    )
    .await;
    assert_eq!(
        git.ok(&git.dir("shallow"), &["rev-list", "--count", "HEAD"])
            .await
            .trim(),
        "1"
    );
    git.ok(
        git.home.path(),
        &[
            "clone",
            "-q",
            "--filter=blob:none",
            "--no-checkout",
            &url,
            "partial",
        ],
    )
    .await;
    let missing = git
        .ok(
            &git.dir("partial"),
            &["rev-list", "--objects", "--missing=print", "HEAD"],
        )
        .await;
    assert!(
        missing.lines().any(|l| l.starts_with('?')),
        "blobs were left out: {missing}"
    );
}

#[tokio::test]
async fn branches_tags_and_refresh() {
    let app = TestApp::new("gitrefs").await;
    let ann = app.user("ann").await;
    app.project(&ann, "proj", false).await;
    let base = serve(&app).await;
    let git = Git::new();
    git.ok(git.home.path(), &["init", "-q", "src"]).await;
    let src = git.dir("src");
    git.commit(&src, "a.txt", "a", "on main").await;
    git.ok(&src, &["tag", "v1.0"]).await;
    git.ok(&src, &["checkout", "-q", "-b", "feature/x"]).await;
    git.commit(&src, "b.txt", "b", "on feature").await;
    git.ok(&src, &["checkout", "-q", "-b", "dev"]).await;
    git.commit(&src, "c.txt", "c", "on dev").await;
    git.ok(&src, &["tag", "-a", "v2.0", "-m", "release 2"])
        .await;
    let token = app.token(&ann).await;
    let push = with_credentials(&base, "ann", &token, "/git/p/proj/code.git");
    git.ok(
        &src,
        &["push", "-q", &push, "main", "feature/x", "dev", "--tags"],
    )
    .await;

    let tid = tool_id(&app, &ann, "proj").await;
    let cache = wait_refreshed(&app, tid, 5).await;
    let names: Vec<String> = cache
        .refs
        .iter()
        .map(|r| format!("{}:{}", r.kind, r.name))
        .collect();
    assert_eq!(
        names,
        [
            "branch:dev",
            "branch:feature/x",
            "branch:main",
            "tag:v1.0",
            "tag:v2.0"
        ]
    );
    for _ in 0..100 {
        if forge_tools::repo::refresh::count_commits(app.forge.db(), tid)
            .await
            .unwrap()
            == 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recorded = forge_tools::repo::refresh::recorded_commits(app.forge.db(), tid, 10)
        .await
        .unwrap();
    let mut summaries: Vec<_> = recorded.iter().map(|c| c.summary.clone()).collect();
    summaries.sort();
    assert_eq!(summaries, ["on dev", "on feature", "on main"]);
    // A second refresh of the same state records nothing new (idempotent).
    let again = forge_tools::repo::refresh::run(
        &app.forge,
        &forge_tools::repo::refresh::args(tid, None, None),
    )
    .await
    .unwrap();
    assert_eq!(again.new_commits, 0);

    // Pushed commits become searchable, linking to the commit page.
    let mut found = serde_json::Value::Null;
    for _ in 0..100 {
        found = app
            .api(
                Method::GET,
                "/rest/search?q=feature&type=commit",
                None,
                None,
            )
            .await
            .json();
        if found["total"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found["total"], 1, "{found}");
    let hit = &found["hits"][0];
    assert_eq!(hit["mount"], "code");
    assert!(
        hit["url"]
            .as_str()
            .unwrap()
            .starts_with("/p/proj/code/commit/"),
        "{hit}"
    );

    // The REST API lists them.
    let branches = app
        .api(Method::GET, "/rest/p/proj/code/branches", None, None)
        .await;
    assert_eq!(branches.status, StatusCode::OK, "{}", branches.body);
    let names: Vec<_> = branches.json()["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.contains(&"feature/x".to_owned())
            && names.contains(&"main".to_owned())
            && names.contains(&"dev".to_owned())
    );
    let tags = app
        .api(Method::GET, "/rest/p/proj/code/tags", None, None)
        .await
        .json();
    assert_eq!(tags["tags"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn injection_attempts_are_refused() {
    let app = TestApp::new("gitinject").await;
    let ann = app.user("ann").await;
    app.project(&ann, "proj", false).await;
    for path in [
        "/git/p/proj/--upload-pack=touch%20pwned/info/refs?service=git-upload-pack",
        "/git/p/proj/..%2F..%2Fetc/info/refs?service=git-upload-pack",
        "/git/p/../code.git/info/refs?service=git-upload-pack",
        "/git/x/proj/code.git/info/refs?service=git-upload-pack",
    ] {
        let res = app
            .api(Method::GET, path, Some(&app.token(&ann).await), None)
            .await;
        assert!(
            matches!(res.status, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST),
            "{path}: {}",
            res.status
        );
    }
    for service in ["--upload-pack=x", "git-upload-pack%20--help", "upload-pack"] {
        let res = app
            .api(
                Method::GET,
                &format!("/git/p/proj/code.git/info/refs?service={service}"),
                None,
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{service}");
    }
    let res = app
        .api(Method::POST, "/git/p/proj/code.git/--exec=x", None, None)
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    // Browsing refuses ref and path tricks without running git with them.
    for path in [
        "/rest/p/proj/code/tree/--upload-pack=x",
        "/rest/p/proj/code/tree/refs%2F..%2F..%2Fx",
        "/rest/p/proj/code/tree/-x",
        "/rest/p/proj/code/commits/HEAD@%7B1%7D",
        "/rest/p/proj/code/file/main/..%2F..%2Fetc%2Fpasswd",
    ] {
        let res = app.api(Method::GET, path, None, None).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert!(!Path::new("pwned").exists());
}

#[tokio::test]
async fn browser_pages_and_archives() {
    let app = TestApp::new("gitbrowse").await;
    let ann = app.user("ann").await;
    app.project(&ann, "proj", false).await;
    let base = serve(&app).await;
    let anon = common::Browser::anonymous();
    let empty = app.get("/p/proj/code/", &anon).await;
    assert!(
        empty.body.contains("This repository is empty")
            && empty.body.contains("/git/p/proj/code.git"),
        "{}",
        empty.body
    );

    let git = Git::new();
    git.ok(git.home.path(), &["init", "-q", "src"]).await;
    let src = git.dir("src");
    git.commit(
        &src,
        "README.md",
        "# Hello\n\nThe **readme**.\n",
        "add readme",
    )
    .await;
    git.commit(
        &src,
        "src/main.rs",
        "fn main() {\n    println!(\"hi\");\n}\n",
        "add main",
    )
    .await;
    for i in 0..55 {
        git.commit(
            &src,
            "notes.txt",
            &format!("note {i}\n"),
            &format!("note {i}"),
        )
        .await;
    }
    let token = app.token(&ann).await;
    git.ok(
        &src,
        &[
            "push",
            "-q",
            &with_credentials(&base, "ann", &token, "/git/p/proj/code.git"),
            "HEAD:main",
        ],
    )
    .await;

    let summary = app.get("/p/proj/code/", &anon).await;
    assert!(
        summary.body.contains("The <strong>readme</strong>"),
        "README rendered"
    );
    assert!(summary.body.contains("href=\"/p/proj/code/tree/main/src\""));
    let tree = app.get("/p/proj/code/tree/main/src", &anon).await;
    assert_eq!(tree.status, StatusCode::OK);
    assert!(
        tree.body
            .contains("href=\"/p/proj/code/blob/main/src/main.rs\"")
    );
    assert!(
        tree.body.contains(">add main</a>"),
        "each entry shows its last commit"
    );
    assert!(
        summary.body.contains(">note 54</a>") && summary.body.contains(">add readme</a>"),
        "root entries too"
    );
    let blob = app.get("/p/proj/code/blob/main/src/main.rs", &anon).await;
    assert!(blob.body.contains("class=\"hl-"), "highlighted");
    assert!(blob.body.contains("id=\"L3\" href=\"#L3\""), "line anchors");
    let raw = app.get("/p/proj/code/raw/main/src/main.rs", &anon).await;
    assert_eq!(raw.body, "fn main() {\n    println!(\"hi\");\n}\n");
    assert_eq!(raw.header("x-content-type-options"), "nosniff");
    assert_eq!(
        app.get("/p/proj/code/tree/main/src/main.rs", &anon)
            .await
            .location(),
        "/p/proj/code/blob/main/src/main.rs"
    );

    let log1 = app.get("/p/proj/code/commits/main", &anon).await;
    assert_eq!(log1.body.matches("<tr>").count(), 50, "50 per page");
    assert!(log1.body.contains("note 54") && log1.body.contains("?page=2"));
    let log2 = app.get("/p/proj/code/commits/main?page=2", &anon).await;
    assert_eq!(log2.body.matches("<tr>").count(), 7);
    // Together the two pages list every commit once.
    for summary in ["add readme", "add main", "note 0", "note 54"] {
        let n = log1.body.matches(&format!(">{summary}</a>")).count()
            + log2.body.matches(&format!(">{summary}</a>")).count();
        assert_eq!(n, 1, "{summary}");
    }
    let path_log = app
        .get("/p/proj/code/commits/main/src/main.rs", &anon)
        .await;
    assert_eq!(
        path_log.body.matches("<tr>").count(),
        1,
        "only commits touching the path"
    );

    let head = git
        .ok(&src, &["rev-parse", "HEAD~55"])
        .await
        .trim()
        .to_owned();
    let commit = app.get(&format!("/p/proj/code/commit/{head}"), &anon).await;
    assert!(
        commit.body.contains("add main") && commit.body.contains("+    println!(&#34;hi&#34;);"),
        "{}",
        commit.body
    );
    let json = app
        .api(
            Method::GET,
            &format!("/rest/p/proj/code/commit/{head}"),
            None,
            None,
        )
        .await
        .json();
    assert_eq!(json["stats"]["additions"], 3);
    assert_eq!(json["files"][0]["path"], "src/main.rs");
    let file = app
        .api(
            Method::GET,
            "/rest/p/proj/code/file/main/README.md",
            None,
            None,
        )
        .await
        .json();
    assert_eq!(file["content"], "# Hello\n\nThe **readme**.\n");
    let tree = app
        .api(Method::GET, "/rest/p/proj/code/tree/main", None, None)
        .await
        .json();
    assert_eq!(tree["entries"].as_array().unwrap().len(), 3);
    let commits = app
        .api(
            Method::GET,
            "/rest/p/proj/code/commits/main?page=2",
            None,
            None,
        )
        .await
        .json();
    assert_eq!(commits["commits"].as_array().unwrap().len(), 7);
    let blame = app.get("/p/proj/code/blame/main/src/main.rs", &anon).await;
    assert_eq!(blame.status, StatusCode::OK);
    assert!(blame.body.contains("add main"));

    // Archives are valid: the system tools read them back.
    for (name, check) in [
        ("main.tar.gz", vec!["tar", "tzf"]),
        ("main.zip", vec!["unzip", "-l"]),
    ] {
        let res = app
            .get(&format!("/p/proj/code/archive/{name}"), &anon)
            .await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(res.header("content-disposition").starts_with("attachment"));
        let file = git.dir(name);
        std::fs::write(&file, &res.bytes).unwrap();
        if check[0] == "unzip" && Command::new("unzip").arg("-v").output().is_err() {
            // No unzip here: check the zip signature instead.
            assert_eq!(&res.bytes[..4], b"PK\x03\x04");
            continue;
        }
        let out = Command::new(check[0])
            .args(&check[1..])
            .arg(&file)
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}");
        assert!(
            listing.contains("proj-main/src/main.rs"),
            "{name}: {listing}"
        );
    }
    assert_eq!(
        app.get("/p/proj/code/archive/nope.tar.gz", &anon)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/p/proj/code/archive/main.exe", &anon).await.status,
        StatusCode::NOT_FOUND
    );
    app.forge.events().flush().await;
    assert_eq!(
        app.count("events", bson::doc! {"type": "repo.archive"})
            .await,
        2
    );
}
