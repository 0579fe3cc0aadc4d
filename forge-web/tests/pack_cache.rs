//! The pack cache of clones, through the real hook: the app runs `git upload-pack` with
//! `uploadpack.packObjectsHook` naming the `forge` binary built for these tests. A full clone
//! is packed once and then sent from the cache; fetches and shallow clones are packed each
//! time; every clone is whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::TestApp;
use common::git::{Git, with_credentials};
use forge_tools::tools::repo::{self, pack_cache};
use forge_tools::users::User;

/// The app with the hook, served on a loopback port; returns its base URL.
async fn serve_with_hook(app: &TestApp) -> String {
    let hook = pack_cache::hook_config(Path::new(env!("CARGO_BIN_EXE_forge")));
    let router = forge_web::app::build_with(app.forge.clone(), Some(hook)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
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

/// The cache folder of `project`'s repository (`code`). Not "the repository under the data
/// folder": the owner's personal project has one too, and which one a directory listing
/// names first depends on their ids.
async fn cache_dir(app: &TestApp, owner: &User, project: &str) -> PathBuf {
    let ctx = app.ctx_of(owner, project).await;
    let tool = ctx.tool("code").expect("the code tool");
    repo::repo_path(app.forge.config(), tool).join(pack_cache::DIR)
}

fn packs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pack"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn full_clones_are_packed_once_and_fetches_every_time() {
    let app = TestApp::new("packcache").await;
    let ann = app.user("ann").await;
    let token = app.token(&ann).await;
    app.project(&ann, "proj", true).await;
    let base = serve_with_hook(&app).await;
    let url = with_credentials(&base, "ann", &token, "/git/p/proj/code.git");

    let git = Git::new();
    let work = git.work("work").await;
    for i in 0..5 {
        let body = format!("fn f{i}() {{}}\n").repeat(200);
        git.commit(
            &work,
            &format!("src/f{i}.rs"),
            &body,
            &format!("commit {i}"),
        )
        .await;
    }
    git.ok(&work, &["push", "-q", &url, "main"]).await;
    app.tasks_done("repo.refresh").await;
    let cache = cache_dir(&app, &ann, "proj").await;

    // The first clone is packed and kept.
    git.ok(git.home(), &["clone", "-q", "--bare", &url, "one.git"])
        .await;
    let kept = packs(&cache);
    assert_eq!(kept.len(), 1, "{kept:?}");
    // The second is sent from the cache: the entry is used (its time moves on), no other.
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&kept[0])
        .unwrap()
        .set_modified(old)
        .unwrap();
    git.ok(git.home(), &["clone", "-q", "--bare", &url, "two.git"])
        .await;
    assert_eq!(packs(&cache), kept);
    let used = std::fs::metadata(&kept[0]).unwrap().modified().unwrap();
    assert!(
        used > old + Duration::from_secs(3000),
        "the cached pack was not used"
    );
    for clone in ["one.git", "two.git"] {
        let dir = git.dir(clone);
        git.ok(&dir, &["fsck", "--no-progress", "--strict"]).await;
        let log = git.ok(&dir, &["log", "--format=%s", "main"]).await;
        assert_eq!(log.lines().count(), 5, "{clone}: {log}");
    }

    // A fetch (the client has objects) and a shallow clone are packed, not kept.
    git.commit(&work, "src/more.rs", "more\n", "commit 5").await;
    git.ok(&work, &["push", "-q", &url, "main"]).await;
    let one = git.dir("one.git");
    git.ok(&one, &["fetch", "-q", &url, "main:main"]).await;
    let log = git.ok(&one, &["log", "--format=%s", "-1", "main"]).await;
    assert_eq!(log.trim(), "commit 5");
    git.ok(
        git.home(),
        &["clone", "-q", "--depth", "1", &url, "shallow"],
    )
    .await;
    assert_eq!(packs(&cache).len(), 1);
    // A clone of the new state is another entry.
    git.ok(git.home(), &["clone", "-q", "--bare", &url, "three.git"])
        .await;
    assert_eq!(packs(&cache).len(), 2);
    let log = git
        .ok(&git.dir("three.git"), &["log", "--format=%s", "-1", "main"])
        .await;
    assert_eq!(log.trim(), "commit 5");
}
