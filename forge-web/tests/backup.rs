//! `forge backup` and `forge restore`, the real binary against the real store: a forge with
//! a project, wiki pages with history, tickets with comments, forum posts, a pushed
//! repository and attachments is backed up while it runs (and while tickets keep being
//! filed), restored into a fresh data dir and database, and compared through the REST API
//! and `git clone`. Restores into a non-empty target and from a damaged backup are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{Method, StatusCode};
use common::git::{Git, with_credentials};
use common::{Browser, TestApp};
use serde_json::{Value, json};

/// The `forge` command on the given database and data dir (nothing else of the caller's
/// `FORGE_*` environment).
fn forge(db_name: &str, data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("FORGE_")) {
        cmd.env_remove(k);
    }
    cmd.args(args)
        .env("FORGE_MONGODB_URI", common::store_uri())
        .env("FORGE_DB_NAME", db_name)
        .env("FORGE_DATA_DIR", data_dir)
        .stdin(std::process::Stdio::null());
    cmd
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A refused command: non-zero exit, one line on standard error that contains `reason`.
fn assert_refused(out: &Output, reason: &str) {
    let (stdout, stderr) = text(out);
    assert!(!out.status.success(), "succeeded: {stdout}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of reason, got: {stderr}");
    assert!(
        lines[0].starts_with("forge: ") && lines[0].contains(reason),
        "{reason:?} not in {:?}",
        lines[0]
    );
}

async fn api(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let res = app.api(method, path, Some(token), body).await;
    assert!(
        res.status.is_success(),
        "{path}: {} {}",
        res.status,
        res.body
    );
    res.json()
}

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let res = app.api(Method::GET, path, Some(token), None).await;
    let v = serde_json::from_str(&res.body).unwrap_or(Value::Null);
    (res.status, v)
}

async fn download(app: &TestApp, path: &str, token: &str) -> Vec<u8> {
    let res = app.api(Method::GET, path, Some(token), None).await;
    assert_eq!(res.status, StatusCode::OK, "{path}");
    res.bytes
}

/// Refs of the repository at `url`, as `git ls-remote` lists them.
async fn refs(git: &Git, url: &str) -> String {
    let out = git.ok(git.home(), &["ls-remote", url]).await;
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

struct Source {
    app: Arc<TestApp>,
    token: String,
    base_url: String,
    topic: String,
    wiki_file: Vec<u8>,
    ticket_file: Vec<u8>,
    git: Git,
}

/// A forge with a project and something in each of its tools.
async fn populated() -> Source {
    let app = Arc::new(TestApp::new("backupsrc").await);
    // As `forge serve` does at start.
    forge_tools::store::migrations::apply_pending(app.forge.db())
        .await
        .unwrap();
    let ann = app.user("ann").await;
    app.project(&ann, "proj", false).await;
    let token = app.token(&ann).await;

    // A wiki page with three versions, and another page.
    let mut base = 0;
    for (i, body) in ["first words", "second words", "third words, platypus"]
        .iter()
        .enumerate()
    {
        let v = api(
            &app,
            Method::PUT,
            "/rest/p/proj/wiki/Guide",
            &token,
            Some(json!({"text": format!("# Guide\n\n{body}\n"), "comment": format!("edit {i}"), "base_version": base})),
        )
        .await;
        base = v["version"].as_i64().unwrap();
    }
    assert_eq!(base, 3);
    api(
        &app,
        Method::PUT,
        "/rest/p/proj/wiki/Other",
        &token,
        Some(json!({"text": "Another page."})),
    )
    .await;

    // Tickets with comments.
    for i in 1..=3 {
        api(
            &app,
            Method::POST,
            "/rest/p/proj/tickets/",
            &token,
            Some(json!({"summary": format!("ticket {i}"), "description": format!("what {i} is about")})),
        )
        .await;
    }
    for c in ["a comment", "another comment"] {
        api(
            &app,
            Method::POST,
            "/rest/p/proj/tickets/1/comments",
            &token,
            Some(json!({"text": c})),
        )
        .await;
    }

    // A forum topic with a reply.
    let topic = api(
        &app,
        Method::POST,
        "/rest/p/proj/discussion/general/",
        &token,
        Some(json!({"subject": "Hello", "text": "The first post."})),
    )
    .await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api(
        &app,
        Method::POST,
        &format!("/rest/p/proj/discussion/general/thread/{topic}/"),
        &token,
        Some(json!({"text": "A reply."})),
    )
    .await;

    // Attachments on the page and on a ticket.
    let wiki_file: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let ticket_file = b"plain notes\n".repeat(50);
    for (path, name, bytes) in [
        (
            "/rest/p/proj/wiki/Guide/attachments",
            "diagram.png",
            &wiki_file,
        ),
        (
            "/rest/p/proj/tickets/1/attachments",
            "notes.txt",
            &ticket_file,
        ),
    ] {
        let res = app
            .post_multipart(
                path,
                &Browser::anonymous(),
                &[],
                (name, bytes),
                Some(&token),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }

    // A repository with two commits, a branch and a tag.
    let base_url = app.base_url().await;
    let git = Git::new();
    let home = git.home();
    let work = home.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git.ok(&work, &["init", "-q"]).await;
    git.commit(&work, "README.md", "# Proj\n", "first commit")
        .await;
    git.commit(&work, "lib.rs", "pub fn x() {}\n", "second commit")
        .await;
    git.ok(&work, &["tag", "v1"]).await;
    git.ok(&work, &["branch", "feature"]).await;
    let push = with_credentials(&base_url, "ann", &token, "/git/p/proj/code.git");
    git.ok(&work, &["push", "-q", &push, "main", "feature", "v1"])
        .await;
    app.tasks_done("repo.refresh").await;

    Source {
        app,
        token,
        base_url,
        topic,
        wiki_file,
        ticket_file,
        git,
    }
}

#[tokio::test]
async fn backup_while_running_then_restore_and_compare() {
    let src = populated().await;
    let app = src.app.clone();
    let token = src.token.clone();
    let src_db = app.forge.db().name().to_owned();
    let src_data = app.data.path().to_owned();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("backup");

    // Tickets keep being filed while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (app, token, stop) = (app.clone(), token.clone(), stop.clone());
        tokio::spawn(async move {
            let mut filed = 0;
            while !stop.load(Ordering::Relaxed) {
                let res = app
                    .api(
                        Method::POST,
                        "/rest/p/proj/tickets/",
                        Some(&token),
                        Some(json!({"summary": format!("filed during the backup {filed}")})),
                    )
                    .await;
                assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
                filed += 1;
            }
            filed
        })
    };
    // And commits keep being pushed to a branch (the first one before the backup starts).
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let pusher = {
        let git = src.git.clone();
        let url = with_credentials(&src.base_url, "ann", &token, "/git/p/proj/code.git");
        let stop = stop.clone();
        tokio::spawn(async move {
            let work = git.dir("work");
            git.ok(&work, &["checkout", "-q", "-b", "busy"]).await;
            let mut first = Some(first_tx);
            let mut pushed = 0;
            while !stop.load(Ordering::Relaxed) {
                let n = format!("{pushed}\n");
                git.commit(&work, "busy.txt", &n, &format!("busy {pushed}"))
                    .await;
                git.ok(&work, &["push", "-q", &url, "busy"]).await;
                pushed += 1;
                if let Some(tx) = first.take() {
                    tx.send(()).unwrap();
                }
            }
            pushed
        })
    };
    first_rx.await.unwrap();
    let backup = run(forge(
        &src_db,
        &src_data,
        &["backup", "--out", out.to_str().unwrap()],
    ))
    .await;
    stop.store(true, Ordering::Relaxed);
    let filed = writer.await.unwrap();
    let pushed = pusher.await.unwrap();
    let (stdout, stderr) = text(&backup);
    assert!(backup.status.success(), "backup failed: {stderr}");
    assert!(stdout.contains("backed up"), "{stdout}");
    assert!(filed > 0, "tickets were filed during the backup");
    assert!(pushed > 0);

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let names: Vec<&str> = manifest["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "migrations",
        "users",
        "wiki_pages",
        "wiki_snapshots",
        "tracker_tickets",
        "tracker_counters",
        "discussion_posts",
        "attachments",
    ] {
        assert!(names.contains(&wanted), "{wanted} not in {names:?}");
    }
    assert!(!names.contains(&"_backup_marks"));
    // The event log and its counter, from the log's own database, in a folder of their own.
    let log_names: Vec<&str> = manifest["event_log"]["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(log_names.contains(&"events"), "{log_names:?}");
    assert!(log_names.contains(&"event_sequence"), "{log_names:?}");
    assert!(!names.contains(&"events"), "{names:?}");
    assert!(out.join("events/events.bson").is_file());
    assert_eq!(
        manifest["event_log"]["database"],
        format!("{src_db}_events")
    );
    assert_eq!(manifest["consistency"]["method"], "change-stream");
    // The tickets filed during the copy came through the change stream.
    assert!(
        manifest["consistency"]["changes_applied"].as_u64().unwrap() > 0,
        "{}",
        manifest["consistency"]
    );
    // The project's repository, and ann's personal project's (empty) one.
    let mut repo_refs: Vec<u64> = manifest["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["refs"].as_u64().unwrap())
        .collect();
    repo_refs.sort_unstable();
    assert_eq!(repo_refs, [0, 4], "main, feature, v1, busy");
    assert_eq!(manifest["attachments"]["files"], 2);
    assert!(
        manifest["store"]["migrations"].as_array().unwrap().len() >= 3,
        "{}",
        manifest["store"]
    );
    // mongodump's layout.
    assert!(out.join("store/wiki_pages.bson").is_file());
    assert!(out.join("store/wiki_pages.metadata.json").is_file());

    // Restore into a fresh data dir and database.
    let dst_db = common::fresh_db_name("backupdst");
    let dst_data = work.path().join("restored");
    let restore = run(forge(
        &dst_db,
        &dst_data,
        &["restore", "--from", out.to_str().unwrap()],
    ))
    .await;
    let (stdout, stderr) = text(&restore);
    assert!(restore.status.success(), "restore failed: {stderr}");
    assert!(stdout.contains("restored"), "{stdout}");

    let dst = TestApp::with_config("backupdst", |c| {
        c.db_name = dst_db.clone();
        c.data_dir = dst_data.clone();
    })
    .await;

    // Wiki pages with their history, version by version.
    for page in ["Guide", "Other"] {
        let path = format!("/rest/p/proj/wiki/{page}/history");
        let (a, b) = (
            get(&app, &path, &token).await,
            get(&dst, &path, &token).await,
        );
        assert_eq!(a.0, StatusCode::OK);
        assert_eq!(a, b, "history of {page}");
        for v in a.1["versions"].as_array().unwrap() {
            let path = format!("/rest/p/proj/wiki/{page}?version={}", v["version"]);
            assert_eq!(
                get(&app, &path, &token).await,
                get(&dst, &path, &token).await
            );
        }
    }
    assert_eq!(
        get(&app, "/rest/p/proj/wiki/Guide/history", &token).await.1["versions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Tickets: those of the moment the backup was made, identical, numbers from 1 on
    // without a hole (one writer files them in order), comments included.
    let mut restored_tickets = 0;
    let mut missing_since = None;
    for n in 1..=(3 + filed) {
        let path = format!("/rest/p/proj/tickets/{n}");
        let (sa, a) = get(&app, &path, &token).await;
        let (sb, b) = get(&dst, &path, &token).await;
        assert_eq!(sa, StatusCode::OK);
        if sb == StatusCode::NOT_FOUND {
            missing_since.get_or_insert(n);
            continue;
        }
        assert_eq!(sb, StatusCode::OK);
        assert!(
            missing_since.is_none(),
            "ticket {n} restored after a missing one"
        );
        assert_eq!(a, b, "ticket {n}");
        let comments = format!("{path}/comments");
        assert_eq!(
            get(&app, &comments, &token).await,
            get(&dst, &comments, &token).await
        );
        restored_tickets += 1;
    }
    assert!(restored_tickets >= 3, "{restored_tickets}");
    let (_, comments) = get(&dst, "/rest/p/proj/tickets/1/comments", &token).await;
    assert_eq!(comments["comments"].as_array().unwrap().len(), 2);
    // The counter came with the tickets: the next ticket gets a fresh number.
    let next = api(
        &dst,
        Method::POST,
        "/rest/p/proj/tickets/",
        &token,
        Some(json!({"summary": "after the restore"})),
    )
    .await;
    assert!(
        next["ticket_num"].as_i64().unwrap() > restored_tickets,
        "{next}"
    );

    // The event log: every event of the backup, as the source has it; the counter came with
    // it, so what the restored forge logs since comes after them.
    let ids = |app: &TestApp, filter: bson::Document| {
        let coll = app.events();
        async move {
            use futures::TryStreamExt;
            coll.find(filter)
                .sort(bson::doc! {"_id": 1})
                .await
                .unwrap()
                .try_collect::<Vec<bson::Document>>()
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.get_i64("_id").unwrap())
                .collect::<Vec<i64>>()
        }
    };
    let logged = manifest["event_log"]["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "events")
        .unwrap()["count"]
        .as_u64()
        .unwrap();
    let restored_ids = ids(&dst, bson::doc! {}).await;
    assert!(logged > 0);
    let last = restored_ids[logged as usize - 1];
    // Every restored event is the source's (a batch still being written when the log was
    // copied may be missing: the aggregations count it when it is whole).
    let source: std::collections::HashSet<i64> = ids(&app, bson::doc! {"_id": {"$lte": last}})
        .await
        .into_iter()
        .collect();
    assert!(
        restored_ids[..logged as usize]
            .iter()
            .all(|id| source.contains(id)),
        "the restored log holds events the source never logged"
    );
    // The ticket filed after the restore was logged after them.
    dst.forge.events().flush().await;
    let since = ids(&dst, bson::doc! {"_id": {"$gt": last}}).await.len();
    assert!(since > 0, "the restored forge logged nothing");
    assert_eq!(
        ids(&dst, bson::doc! {}).await.len(),
        logged as usize + since
    );

    // Forum posts.
    let topic = format!("/rest/p/proj/discussion/general/thread/{}/", src.topic);
    let (a, b) = (
        get(&app, &topic, &token).await,
        get(&dst, &topic, &token).await,
    );
    assert_eq!(b.0, StatusCode::OK);
    assert_eq!(a.1["posts"], b.1["posts"]);
    assert_eq!(b.1["posts"].as_array().unwrap().len(), 2);
    assert_eq!(a.1["thread"]["subject"], b.1["thread"]["subject"]);

    // Attachment bytes.
    for (path, bytes) in [
        (
            "/rest/p/proj/wiki/Guide/attachments/diagram.png",
            &src.wiki_file,
        ),
        (
            "/rest/p/proj/tickets/1/attachments/notes.txt",
            &src.ticket_file,
        ),
    ] {
        assert_eq!(&download(&dst, path, &token).await, bytes, "{path}");
    }

    // The repository: same refs and commits, and it takes pushes.
    let git = &src.git;
    let home = git.home();
    let (src_url, dst_url) = (
        format!("{}/git/p/proj/code.git", app.base_url().await),
        format!("{}/git/p/proj/code.git", dst.base_url().await),
    );
    let (src_refs, dst_refs) = (refs(git, &src_url).await, refs(git, &dst_url).await);
    let settled = |r: &str| {
        r.lines()
            .filter(|l| !l.ends_with("refs/heads/busy"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(settled(&src_refs), settled(&dst_refs));
    assert!(src_refs.contains("refs/tags/v1") && src_refs.contains("refs/heads/feature"));
    // The branch pushed to during the backup: restored at a tip of its history then.
    let busy = |r: &str| {
        r.lines()
            .find(|l| l.ends_with("refs/heads/busy"))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .unwrap()
    };
    let (src_busy, dst_busy) = (busy(&src_refs), busy(&dst_refs));
    git.ok(home, &["clone", "-q", "--mirror", &src_url, "source.git"])
        .await;
    git.ok(
        &home.join("source.git"),
        &["merge-base", "--is-ancestor", &dst_busy, &src_busy],
    )
    .await;
    // Every restored repository is whole.
    for repo in std::fs::read_dir(dst_data.join("repos")).unwrap() {
        let repo = repo.unwrap().path();
        git.ok(
            home,
            &["--git-dir", repo.to_str().unwrap(), "fsck", "--no-progress"],
        )
        .await;
    }
    git.ok(home, &["clone", "-q", &dst_url, "restored"]).await;
    let clone = home.join("restored");
    let log = git.ok(&clone, &["log", "--format=%s"]).await;
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["second commit", "first commit"]
    );
    git.commit(&clone, "after.txt", "after\n", "after the restore")
        .await;
    let push = with_credentials(
        &dst_url.replace("/git/p/proj/code.git", ""),
        "ann",
        &token,
        "/git/p/proj/code.git",
    );
    git.ok(&clone, &["push", "-q", &push, "main"]).await;
    dst.tasks_done("repo.refresh").await;

    // The search index was rebuilt.
    let (status, found) = get(&dst, "/rest/search?q=platypus", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(found["total"].as_u64().unwrap() >= 1, "{found}");

    // Into a target that is not empty: refused, one line each.
    let again = run(forge(
        &dst_db,
        &dst_data,
        &["restore", "--from", out.to_str().unwrap()],
    ))
    .await;
    assert_refused(&again, "is not empty");
    let empty_dir = work.path().join("empty");
    let into_full_db = run(forge(
        &dst_db,
        &empty_dir,
        &["restore", "--from", out.to_str().unwrap()],
    ))
    .await;
    assert_refused(&into_full_db, "has documents");
    // A backup into a directory that is not empty is refused too.
    let over = run(forge(
        &src_db,
        &src_data,
        &["backup", "--out", out.to_str().unwrap()],
    ))
    .await;
    assert_refused(&over, "is not empty");
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Restores `backup` into a fresh database and data dir; (the command's output, the
/// database name, the data dir).
async fn restore_fresh(backup: &Path, work: &Path, label: &str) -> (Output, String, PathBuf) {
    let db = common::fresh_db_name(label);
    let data = work.join(format!("{label}-data"));
    let out = run(forge(
        &db,
        &data,
        &["restore", "--from", backup.to_str().unwrap()],
    ))
    .await;
    (out, db, data)
}

/// Nothing was written: no collection in the database, nothing in the data dir.
async fn untouched(db_name: &str, data: &Path) {
    let db = forge_tools::store::connect(
        &common::store_uri(),
        db_name,
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(db.list_collection_names().await.unwrap().is_empty());
    let log = forge_tools::events::log_db(&db);
    assert!(log.list_collection_names().await.unwrap().is_empty());
    let empty = std::fs::read_dir(data).map_or(true, |mut d| d.next().is_none());
    assert!(empty, "the data dir was written to");
}

#[tokio::test]
async fn damaged_or_unfinished_backups_are_refused_before_anything_is_written() {
    let src = populated().await;
    let app = &src.app;
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("backup");
    let backup = run(forge(
        app.forge.db().name(),
        app.data.path(),
        &["backup", "--out", out.to_str().unwrap()],
    ))
    .await;
    assert!(backup.status.success(), "{}", text(&backup).1);

    // One byte of a collection changed.
    let tampered = work.path().join("tampered");
    copy_tree(&out, &tampered);
    let file = tampered.join("store/wiki_snapshots.bson");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&file, bytes).unwrap();
    let (res, db, data) = restore_fresh(&tampered, work.path(), "tampered").await;
    assert_refused(
        &res,
        "store/wiki_snapshots.bson does not match the manifest",
    );
    untouched(&db, &data).await;

    // An attachment file changed.
    let tampered = work.path().join("tampered2");
    copy_tree(&out, &tampered);
    let attachments = tampered.join("attachments");
    let dir = std::fs::read_dir(&attachments)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&file, b"something else").unwrap();
    let (res, db, data) = restore_fresh(&tampered, work.path(), "tampered2").await;
    assert_refused(&res, "does not match its checksum");
    untouched(&db, &data).await;

    // A repository's bundle removed.
    let tampered = work.path().join("tampered3");
    copy_tree(&out, &tampered);
    let repos = tampered.join("repos");
    let bundle = std::fs::read_dir(&repos)
        .unwrap()
        .map(|e| e.unwrap().path().join("repo.bundle"))
        .find(|b| b.is_file())
        .unwrap();
    std::fs::remove_file(bundle).unwrap();
    let (res, db, data) = restore_fresh(&tampered, work.path(), "tampered3").await;
    assert_refused(&res, "does not match the manifest");
    untouched(&db, &data).await;

    // No manifest: an unfinished backup.
    let unfinished = work.path().join("unfinished");
    copy_tree(&out, &unfinished);
    std::fs::remove_file(unfinished.join("manifest.json")).unwrap();
    let (res, db, data) = restore_fresh(&unfinished, work.path(), "unfinished").await;
    assert_refused(&res, "not a finished backup");
    untouched(&db, &data).await;

    // The backup itself is intact.
    let (res, _, _) = restore_fresh(&out, work.path(), "intact").await;
    assert!(res.status.success(), "{}", text(&res).1);
}
