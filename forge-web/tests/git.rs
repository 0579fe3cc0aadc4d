//! Git over smart HTTP with the real git client against a served forge on the real store:
//! clone, push (password and token), permissions, protocol v2, shallow and partial clones,
//! refs and the push refresh, and injection attempts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::TestApp;
use common::git::{Git, with_credentials};
use forge_tools::acl::Role;

async fn wait_refreshed(
    app: &TestApp,
    tool: forge_tools::ids::ToolId,
    refs: usize,
) -> forge_tools::tools::repo::refresh::RefCache {
    for _ in 0..200 {
        if let Some(c) = forge_tools::tools::repo::refresh::cached_refs(app.forge.db(), tool)
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
    // Tickets 1..12, so the second commit's `fixes [#12]` names one.
    let ann_token = app.token(&ann).await;
    for i in 1..=12 {
        let res = app
            .api(
                Method::POST,
                "/rest/p/proj/tickets/",
                Some(&ann_token),
                Some(serde_json::json!({"summary": format!("ticket {i}")})),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }
    let base = app.base_url().await;
    let git = Git::new();
    let url = format!("{base}/git/p/proj/code.git");

    let (ok, out) = git.run(git.home(), &["clone", &url, "work"]).await;
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

    git.ok(git.home(), &["clone", "-q", &url, "again"]).await;
    let a = git.ok(&work, &["log", "--format=%H %s"]).await;
    let b = git.ok(&git.dir("again"), &["log", "--format=%H %s"]).await;
    assert_eq!(a, b, "identical history");
    assert_eq!(a.lines().count(), 2);

    let tid = tool_id(&app, &ann, "proj").await;
    let cache = wait_refreshed(&app, tid, 1).await;
    for _ in 0..100 {
        if forge_tools::tools::repo::refresh::count_commits(app.forge.db(), tid)
            .await
            .unwrap()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        forge_tools::tools::repo::refresh::count_commits(app.forge.db(), tid)
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
    let tracker = app
        .forge
        .load_project(
            &forge_tools::Viewer::default(),
            forge_tools::projects::Neighborhood::Projects,
            "proj",
        )
        .await
        .unwrap()
        .tool("tickets")
        .unwrap()
        .id;
    let _ = project;
    let ticket_key = format!("ticket:{tracker}:12");
    assert_eq!(
        app.count("links", bson::doc! {"to_key": ticket_key}).await,
        1
    );
    // The commit on the default branch said it fixes #12, and Ann may update tickets: closed,
    // with the commit in the ticket's history.
    let ticket = app
        .api(Method::GET, "/rest/p/proj/tickets/12", None, None)
        .await
        .json();
    assert_eq!(ticket["status"], "closed", "{ticket}");
    assert_eq!(
        app.count(
            "tracker_changes",
            bson::doc! {"note": {"$regex": "^Closed by commit \\["}}
        )
        .await,
        1
    );
    let other = app
        .api(Method::GET, "/rest/p/proj/tickets/11", None, None)
        .await
        .json();
    assert_eq!(other["status"], "open");
    app.forge.events().flush().await;
    assert!(
        app.count_events(bson::doc! {"type": "repo.push", "context.user": "ann"})
            .await
            >= 1
    );
    assert!(app.count_events(bson::doc! {"type": "repo.clone"}).await >= 1);
}

#[tokio::test]
async fn push_and_clone_permissions() {
    let app = TestApp::new("gitperms").await;
    let ann = app.user("ann").await;
    let mem = app.user("mem").await;
    let public = app.project(&ann, "open", false).await;
    app.project(&ann, "closed", true).await;
    app.add_member(&public, &mem, Role::Member).await;
    let base = app.base_url().await;
    let git = Git::new();
    git.ok(git.home(), &["init", "-q", "local"]).await;
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
            git.home(),
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
        git.home(),
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
    let base = app.base_url().await;
    let git = Git::new();
    git.ok(git.home(), &["init", "-q", "src"]).await;
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

    git.ok(git.home(), &["init", "-q", "v2"]).await;
    let v2 = git.dir("v2");
    let out = git
        .ok(&v2, &["-c", "protocol.version=2", "fetch", &url, "main"])
        .await;
    let _ = out;
    let head = git.ok(&v2, &["rev-parse", "FETCH_HEAD"]).await;
    let want = git.ok(&src, &["rev-parse", "HEAD"]).await;
    assert_eq!(head, want);

    git.ok(
        git.home(),
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
        git.home(),
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
    let base = app.base_url().await;
    let git = Git::new();
    git.ok(git.home(), &["init", "-q", "src"]).await;
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
        if forge_tools::tools::repo::refresh::count_commits(app.forge.db(), tid)
            .await
            .unwrap()
            == 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recorded = forge_tools::tools::repo::refresh::recorded_commits(app.forge.db(), tid, 10)
        .await
        .unwrap();
    let mut summaries: Vec<_> = recorded.iter().map(|c| c.summary.clone()).collect();
    summaries.sort();
    assert_eq!(summaries, ["on dev", "on feature", "on main"]);
    // A second refresh of the same state records nothing new (idempotent).
    let again = forge_tools::tools::repo::refresh::run(
        &app.forge,
        &forge_tools::tools::repo::refresh::args(tid, None, None),
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
    let base = app.base_url().await;
    let anon = common::Browser::anonymous();
    let empty = app.get("/p/proj/code/", &anon).await;
    assert!(
        empty.body.contains("This repository is empty")
            && empty.body.contains("/git/p/proj/code.git"),
        "{}",
        empty.body
    );

    let git = Git::new();
    git.ok(git.home(), &["init", "-q", "src"]).await;
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

    // The kept refs and views: a push shows at once on the node that took it, without
    // waiting for its refresh.
    git.commit(&src, "notes.txt", "late note\n", "late note")
        .await;
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
    let after = app.get("/p/proj/code/commits/main", &anon).await;
    assert!(
        after.body.contains(">late note</a>"),
        "the pushed commit is listed"
    );
    let tree = app.get("/p/proj/code/tree/main", &anon).await;
    assert!(
        tree.body.contains("late note"),
        "the tree's last commit is the new one"
    );

    let head = git
        .ok(&src, &["rev-parse", "HEAD~56"])
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
    // 58 commits (the late note included): 8 on the second page.
    assert_eq!(commits["commits"].as_array().unwrap().len(), 8);
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
        app.count_events(bson::doc! {"type": "repo.archive"}).await,
        2
    );
}

/// A request through the router whose response is returned unread (its body still open).
async fn open_response(
    app: &TestApp,
    req: axum::http::Request<axum::body::Body>,
) -> axum::response::Response {
    use tower::ServiceExt;
    app.router
        .clone()
        .layer(axum::extract::connect_info::MockConnectInfo(
            SocketAddr::from(([127, 0, 0, 1], 40000)),
        ))
        .oneshot(req)
        .await
        .unwrap()
}

/// Waits until every git slot is free again.
async fn slots_free(app: &TestApp, total: usize) {
    for _ in 0..100 {
        if forge_tools::tools::repo::slots(&app.forge).available() == total {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "git slots still taken: {} of {total} free",
        forge_tools::tools::repo::slots(&app.forge).available()
    );
}

/// A project `proj` of `ann` with one pushed commit; returns the app's URL, the token and
/// the commit id.
async fn pushed(app: &TestApp, git: &Git) -> (String, String, String) {
    let ann = app.user("ann").await;
    app.project(&ann, "proj", false).await;
    let base = app.base_url().await;
    git.ok(git.home(), &["init", "-q", "src"]).await;
    let src = git.dir("src");
    git.commit(&src, "a.txt", "a\n", "first").await;
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
    let head = git.ok(&src, &["rev-parse", "HEAD"]).await.trim().to_owned();
    (base, token, head)
}

#[tokio::test]
async fn git_processes_are_bounded_and_freed_when_clients_leave() {
    let app = TestApp::with_config("gitslots", |c| c.max_git_processes = 1).await;
    let git = Git::new();
    let (_, _, head) = pushed(&app, &git).await;
    slots_free(&app, 1).await;
    let anon = common::Browser::anonymous();
    let archive = || {
        axum::http::Request::get("/p/proj/code/archive/main.tar.gz")
            .body(axum::body::Body::empty())
            .unwrap()
    };

    // A download held open keeps its slot: the next git request waits briefly, then 503.
    let held = open_response(&app, archive()).await;
    assert_eq!(held.status(), StatusCode::OK);
    assert_eq!(forge_tools::tools::repo::slots(&app.forge).available(), 0);
    let started = std::time::Instant::now();
    let second = app.get("/p/proj/code/archive/main.zip", &anon).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!second.header("retry-after").is_empty());
    assert!(
        second.body.contains("Too many git operations"),
        "{}",
        second.body
    );
    let refs = app
        .api(
            Method::GET,
            "/git/p/proj/code.git/info/refs?service=git-upload-pack",
            None,
            None,
        )
        .await;
    assert_eq!(refs.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!refs.header("retry-after").is_empty());
    assert!(
        refs.body.starts_with("Too many git operations"),
        "{}",
        refs.body
    );
    // The client goes away: the process is killed and the slot is free at once.
    drop(held);
    assert_eq!(forge_tools::tools::repo::slots(&app.forge).available(), 1);
    let again = app.get("/p/proj/code/archive/main.tar.gz", &anon).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(&again.bytes[..2], b"\x1f\x8b", "a gzip stream");

    // A fetch whose client stops sending and leaves: git (waiting for more input) is killed
    // when the response is dropped, not left for the hour-long time limit.
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let mut want = forge_tools::tools::repo::pktline::encode(format!("want {head}\n").as_bytes());
    want.extend_from_slice(forge_tools::tools::repo::pktline::FLUSH);
    futures::SinkExt::send(&mut tx, Ok(bytes::Bytes::from(want)))
        .await
        .unwrap();
    let req = axum::http::Request::post("/git/p/proj/code.git/git-upload-pack")
        .header("content-type", "application/x-git-upload-pack-request")
        .body(axum::body::Body::from_stream(rx))
        .unwrap();
    let res = open_response(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        forge_tools::tools::repo::slots(&app.forge).available(),
        0,
        "git is waiting"
    );
    drop(res);
    slots_free(&app, 1).await;
    drop(tx);
}

async fn gzip(data: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    async_compression::tokio::bufread::GzipEncoder::new(data)
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

#[tokio::test]
async fn bad_git_requests_are_refused_before_git_runs() {
    use forge_tools::tools::repo::pktline::{self, RefUpdate};
    let app = TestApp::new("gitbadreq").await;
    let git = Git::new();
    let (base, token, head) = pushed(&app, &git).await;
    let zero = "0".repeat(40);
    let update = |name: &str| RefUpdate {
        old: zero.clone(),
        new: head.clone(),
        name: name.to_owned(),
    };
    let post = |service: &str, body: Vec<u8>, gzip: bool, v2: bool| {
        let mut req = axum::http::Request::post(format!("/git/p/proj/code.git/{service}"))
            .header("authorization", format!("Bearer {token}"));
        if gzip {
            req = req.header("content-encoding", "gzip");
        }
        if v2 {
            req = req.header("git-protocol", "version=2");
        }
        req.body(axum::body::Body::from(body)).unwrap()
    };
    let many: Vec<RefUpdate> = (0..=pktline::MAX_REF_UPDATES)
        .map(|i| update(&format!("refs/heads/b{i}")))
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "git-receive-pack",
            b"zzzz".to_vec(),
            "malformed pkt-line length",
        ),
        (
            "git-receive-pack",
            pktline::encode_push(&[update("refs/heads/a..b")], &["report-status"]),
            "invalid ref name",
        ),
        (
            "git-receive-pack",
            pktline::encode_push(&[update("-refs/heads/x")], &["report-status"]),
            "invalid ref name",
        ),
        (
            "git-receive-pack",
            pktline::encode_push(&many, &[]),
            "too many ref updates",
        ),
        (
            "git-receive-pack",
            pktline::encode(format!("{zero} {head} refs/heads/x\n").as_bytes()),
            "ends inside its command section",
        ),
        (
            "git-upload-pack",
            [
                pktline::encode(b"want not-an-id\n"),
                pktline::FLUSH.to_vec(),
            ]
            .concat(),
            "malformed request line",
        ),
    ];
    for (service, body, message) in cases {
        let res = app.send(post(service, body, false, false), None).await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{message}: {}",
            res.body
        );
        assert!(res.body.contains(message), "{message}: {}", res.body);
    }
    // The same refusal after gzip decoding.
    let bad = pktline::encode_push(&[update("refs/heads/a b")], &[]);
    let res = app
        .send(
            post("git-receive-pack", gzip(&bad).await, true, false),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert!(res.body.contains("invalid ref name"));
    // v2 requests are read as v2.
    let ls = [
        pktline::encode(b"command=ls-refs\n"),
        pktline::DELIM.to_vec(),
        pktline::encode(b"ref-prefix refs/heads/\n"),
        pktline::FLUSH.to_vec(),
    ]
    .concat();
    let res = app
        .send(post("git-upload-pack", ls.clone(), false, true), None)
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.contains("refs/heads/main"), "{}", res.body);
    let res = app
        .send(post("git-upload-pack", ls, false, false), None)
        .await;
    assert_eq!(
        res.status,
        StatusCode::BAD_REQUEST,
        "v2 body without the v2 header"
    );
    // Nothing was pushed by the refused requests.
    let out = git
        .ok(
            git.home(),
            &["ls-remote", &format!("{base}/git/p/proj/code.git")],
        )
        .await;
    assert_eq!(
        out.lines().filter(|l| l.contains("refs/heads/")).count(),
        1,
        "{out}"
    );
}

#[tokio::test]
async fn repository_pages_are_capped() {
    use forge_tools::tools::repo::browse;
    let app = TestApp::new("gitcaps").await;
    let git = Git::new();
    let (base, token, _) = pushed(&app, &git).await;
    let src = git.dir("src");
    let write = |name: &str, content: String| {
        let file = src.join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    };
    // Over the highlighting caps (lines), but shown.
    write("big.rs", "fn a() {}\n".repeat(30_000));
    // Too many lines to show at all.
    write("many.txt", "x\n".repeat(60_000));
    // Over the diff size of one file version.
    write("a-large.txt", "line of a large file\n".repeat(60_000));
    // Long diffs: each is cut, and together they use up the commit's diff budget.
    for k in 0..12 {
        write(
            &format!("b-long{k:02}.txt"),
            format!("{}\n", "y".repeat(59)).repeat(2_100),
        );
    }
    // Over what a raw download reads into memory: streamed from git.
    write(
        "z-huge.log",
        "0123456789abcde\n".repeat(browse::MAX_RAW_LOADED / 16 + 1_000),
    );
    for i in 0..(browse::MAX_DIFF_FILES + 5) {
        write(&format!("gen/f{i:03}.txt"), format!("{i}\n"));
    }
    git.ok(&src, &["add", "-A"]).await;
    git.ok(&src, &["commit", "-q", "-m", "a large commit"])
        .await;
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
    let head = git.ok(&src, &["rev-parse", "HEAD"]).await.trim().to_owned();
    let anon = common::Browser::anonymous();

    let big = app.get("/p/proj/code/blob/main/big.rs", &anon).await;
    assert_eq!(big.status, StatusCode::OK);
    assert!(!big.body.contains("class=\"hl-"), "not highlighted");
    assert!(big.body.contains("Shown without highlighting"));
    assert!(big.body.contains("href=\"/p/proj/code/raw/main/big.rs\""));
    assert!(big.body.contains("fn a() {}"));
    let many = app.get("/p/proj/code/blob/main/many.txt", &anon).await;
    assert!(many.body.contains("too many to show"), "{}", many.body);
    assert!(many.body.len() < 100_000, "the lines are not in the page");
    let small = app.get("/p/proj/code/blob/main/a.txt", &anon).await;
    assert!(!small.body.contains("Shown without highlighting"));
    let huge = app.get("/p/proj/code/blob/main/z-huge.log", &anon).await;
    assert!(
        huge.body.contains("too large to show here"),
        "{}",
        huge.body
    );
    let raw = app.get("/p/proj/code/raw/main/z-huge.log", &anon).await;
    assert_eq!(raw.status, StatusCode::OK);
    let size = (browse::MAX_RAW_LOADED / 16 + 1_000) * 16;
    assert_eq!(raw.bytes.len(), size);
    assert_eq!(raw.header("content-length"), size.to_string());
    assert!(raw.bytes.starts_with(b"0123456789abcde\n"));
    assert!(raw.header("content-disposition").starts_with("attachment"));
    let file = app
        .api(
            Method::GET,
            "/rest/p/proj/code/file/main/z-huge.log",
            None,
            None,
        )
        .await
        .json();
    assert_eq!(
        (file["truncated"].as_bool(), file["size"].as_u64()),
        (Some(true), Some(size as u64))
    );

    // Blame is only run for files within its caps.
    let blame = app.get("/p/proj/code/blame/main/big.rs", &anon).await;
    assert_eq!(blame.status, StatusCode::OK);
    assert!(blame.body.contains("too large to blame"), "{}", blame.body);
    let blame = app.get("/p/proj/code/blame/main/a.txt", &anon).await;
    assert!(blame.body.contains(">first</a>") || blame.body.contains("title=\"first\""));

    let commit = app.get(&format!("/p/proj/code/commit/{head}"), &anon).await;
    assert_eq!(commit.status, StatusCode::OK);
    assert!(
        commit.body.contains(&format!(
            "only the first {} files are listed",
            browse::MAX_DIFF_FILES
        )),
        "files capped"
    );
    assert!(commit.body.contains("This diff is too large to show here."));
    assert!(commit.body.contains(&format!(
        "href=\"/p/proj/code/blob/{head}/a-large.txt\">After</a>"
    )));
    assert!(commit.body.contains("This diff is long; the rest is cut."));
    assert!(commit.body.len() < 4_000_000, "{} bytes", commit.body.len());
    let json = app
        .api(
            Method::GET,
            &format!("/rest/p/proj/code/commit/{head}"),
            None,
            None,
        )
        .await
        .json();
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), browse::MAX_DIFF_FILES);
    assert_eq!(
        json["stats"]["files"],
        browse::MAX_DIFF_FILES + 5 + 12 + 4,
        "{}",
        json["stats"]
    );
    assert_eq!(json["stats"]["partial"], true);
    assert_eq!(files[0]["path"], "a-large.txt");
    assert_eq!(files[0]["too_large"], true);
    assert_eq!(files[1]["truncated"], true);
    assert!(files[1]["patch"].as_str().unwrap().lines().count() <= browse::MAX_FILE_DIFF_LINES);
    let shown: usize = files
        .iter()
        .map(|f| f["patch"].as_str().unwrap().len())
        .sum();
    assert!(
        shown <= browse::MAX_DIFF_BYTES + browse::MAX_FILE_DIFF,
        "{shown}"
    );
    assert_eq!(
        files[12]["too_large"], true,
        "the budget is spent by the earlier files"
    );

    // Page numbers are checked: 400 with a clear message, never an overflow.
    for page in ["0", "1001", "99999999999999999999", "abc", "-1", ""] {
        let res = app
            .get(&format!("/p/proj/code/commits/main?page={page}"), &anon)
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "page={page}");
        assert!(
            res.body.contains("page must be"),
            "page={page}: {}",
            res.body
        );
        let res = app
            .api(
                Method::GET,
                &format!("/rest/p/proj/code/commits/main?page={page}"),
                None,
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "REST page={page}");
        assert_eq!(res.json()["error"]["code"], "bad_request");
    }
    for limit in ["0", "101", "x"] {
        let res = app
            .api(
                Method::GET,
                &format!("/rest/p/proj/code/commits/main?limit={limit}"),
                None,
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "limit={limit}");
    }
    let res = app
        .api(
            Method::GET,
            "/rest/p/proj/code/commits/main?page=1&limit=1",
            None,
            None,
        )
        .await
        .json();
    assert_eq!(res["commits"].as_array().unwrap().len(), 1);
    assert_eq!(res["more"], true);
    assert_eq!(
        app.get("/p/proj/code/commits/main?page=1000", &anon)
            .await
            .status,
        StatusCode::OK
    );
}
