//! Cross-references across tools on a real store and real repositories: wiki pages link
//! pushed commits (`[abc1234]`) and still their own pages; commit messages make backlinks to
//! the pages they mention; the refresh after a push tells the project's tools of the commits
//! newly on the default branch (`Tool::on_commits`), and one tool's failure does not stop it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::git::Git;
use common::{Browser, TestApp};
use forge_tools::acl::{Ace, Principal, perm};
use forge_tools::ids::ToolId;
use forge_tools::projects::Neighborhood;
use forge_tools::tool::{Forge, PushedCommit, Tool, ToolInstance, ToolRegistry};
use forge_tools::tools::repo::{self, refresh};
use forge_tools::{ProjectCtx, Viewer};

async fn ctx(app: &TestApp, user: Option<&forge_tools::users::User>, project: &str) -> ProjectCtx {
    let viewer = Viewer {
        user: user.cloned(),
        ip: None,
    };
    app.forge
        .load_project(&viewer, Neighborhood::Projects, project)
        .await
        .unwrap()
}

/// Pushes `refspec` of the work tree straight into the project's repository (a local push),
/// then runs the refresh a push queues, as `pusher`.
async fn push(
    app: &TestApp,
    git: &Git,
    work: &Path,
    tool: &ToolInstance,
    refspec: &str,
    pusher: &str,
) {
    let bare = repo::repo_path(app.forge.config(), tool);
    git.ok(work, &["push", "-q", bare.to_str().unwrap(), refspec])
        .await;
    refresh::run(&app.forge, &refresh::args(tool.id, Some(pusher), None))
        .await
        .unwrap();
}

/// The shortest abbreviation (7 digits or more) of a commit id that reads as one: with a
/// decimal digit, else `[abcdefa]` would be a page name.
fn short(sha: &str, at_least: usize) -> &str {
    (at_least..=sha.len())
        .map(|n| &sha[..n])
        .find(|p| p.chars().any(|c| c.is_ascii_digit()))
        .unwrap()
}

fn edit_fields<'a>(text: &'a str, base: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("text", text),
        ("labels", ""),
        ("comment", ""),
        ("base_version", base),
        ("action", "save"),
    ]
}

#[tokio::test]
async fn wiki_pages_link_pushed_commits_and_their_own_pages() {
    let app = TestApp::new("xrefcommits").await;
    let ann = app.user("ann").await;
    app.project(&ann, "proj", false).await;
    let a = app.browser(&ann).await;
    let code = ctx(&app, Some(&ann), "proj")
        .await
        .tool("code")
        .unwrap()
        .clone();
    let git = Git::new();
    let work = git.work("w").await;
    let first = git.commit(&work, "a.txt", "one\n", "first").await;
    push(&app, &git, &work, &code, "HEAD:main", "ann").await;
    // A commit made but not pushed yet: its id is unknown to the forge.
    let second = git.commit(&work, "a.txt", "two\n", "second").await;

    let text = format!(
        "Full [{first}], short [{}], by mount [code:{}], unknown [1234567deadbeef], \
         not yet pushed [{}]; pages [Home] and [Missing Page].",
        short(&first, 7),
        short(&first, 10),
        short(&second, 9),
    );
    let res = app
        .post_form("/p/proj/wiki/Refs/edit", &a, &edit_fields(&text, "0"))
        .await;
    assert!(res.status.is_redirection(), "{}", res.body);
    let commit_link = format!("href=\"/p/proj/code/commit/{first}\"");
    let page = app.get("/p/proj/wiki/Refs/", &a).await;
    assert_eq!(
        page.body.matches(&commit_link).count(),
        3,
        "full, short and mount-qualified ids link the commit: {}",
        page.body
    );
    assert!(
        page.body.contains("[1234567deadbeef]"),
        "unknown id is text"
    );
    assert!(!page.body.contains("commit/1234567"));
    assert!(page.body.contains(&format!("[{}]", short(&second, 9))));
    // Pages still link (existing) or offer creation (missing, to a writer).
    assert!(page.body.contains("href=\"/p/proj/wiki/Home/\""));
    assert!(
        page.body
            .contains("href=\"/p/proj/wiki/Missing%20Page/edit\"")
    );
    let anon = app.get("/p/proj/wiki/Refs/", &Browser::anonymous()).await;
    assert_eq!(anon.body.matches(&commit_link).count(), 3);
    assert!(!anon.body.contains("Missing%20Page/edit"));
    assert!(anon.body.contains("[Missing Page]"));

    // Pushing the second commit makes the cached rendering link it too.
    push(&app, &git, &work, &code, "HEAD:main", "ann").await;
    let page = app.get("/p/proj/wiki/Refs/", &Browser::anonymous()).await;
    assert!(
        page.body
            .contains(&format!("href=\"/p/proj/code/commit/{second}\"")),
        "{}",
        page.body
    );

    // A repository anonymous visitors may not read: its commits are text to them (and the
    // rendering cached for the owner is not served to them).
    let members_only = vec![
        Ace::allow(Principal::Member, perm::READ),
        Ace::deny(Principal::Anonymous, perm::READ),
    ];
    app.forge
        .db()
        .collection::<bson::Document>("tools")
        .update_one(
            bson::doc! {"_id": code.id},
            bson::doc! {"$set": {"acl": bson::serialize_to_bson(&members_only).unwrap()}},
        )
        .await
        .unwrap();
    // Written behind the forge's back, as another node would: its read model hears of it
    // through the change stream within milliseconds; drop it now rather than wait.
    app.forge.read_model().reset();
    let owner = app.get("/p/proj/wiki/Refs/", &a).await;
    assert_eq!(owner.body.matches(&commit_link).count(), 3);
    let anon = app.get("/p/proj/wiki/Refs/", &Browser::anonymous()).await;
    assert!(!anon.body.contains("/code/commit/"), "{}", anon.body);
    assert!(anon.body.contains(&format!("[{first}]")));
}

#[tokio::test]
async fn commit_messages_make_backlinks_to_wiki_pages() {
    let app = TestApp::new("xrefbacklinks").await;
    let ann = app.user("ann").await;
    app.project(&ann, "proj", false).await;
    let a = app.browser(&ann).await;
    app.post_form(
        "/p/proj/wiki/Guide/edit",
        &a,
        &edit_fields("The guide.", "0"),
    )
    .await;
    let code = ctx(&app, Some(&ann), "proj")
        .await
        .tool("code")
        .unwrap()
        .clone();
    let git = Git::new();
    let work = git.work("w").await;
    let plain = git
        .commit(&work, "a.txt", "one\n", "Explain things, see [Home]")
        .await;
    let qualified = git
        .commit(&work, "a.txt", "two\n", "Also [wiki:Guide] and [Home]")
        .await;
    let unrelated = git.commit(&work, "a.txt", "three\n", "No references").await;
    push(&app, &git, &work, &code, "HEAD:main", "ann").await;

    let home = app.get("/p/proj/wiki/Home/", &Browser::anonymous()).await;
    for sha in [&plain, &qualified] {
        assert!(
            home.body
                .contains(&format!("href=\"/p/proj/code/commit/{sha}\"")),
            "commit {sha} is listed as linking here: {}",
            home.body
        );
    }
    assert!(home.body.contains("Explain things, see [Home]"));
    assert!(!home.body.contains(&unrelated));
    let guide = app.get("/p/proj/wiki/Guide/", &Browser::anonymous()).await;
    assert!(
        guide
            .body
            .contains(&format!("href=\"/p/proj/code/commit/{qualified}\""))
    );
    assert!(!guide.body.contains(&plain));

    // A second refresh of the same state changes nothing (idempotent).
    refresh::run(&app.forge, &refresh::args(code.id, Some("ann"), None))
        .await
        .unwrap();
    let links = app
        .count(
            forge_tools::links::COLLECTION,
            bson::doc! {"from_key": {"$regex": "^commit:"}},
        )
        .await;
    assert_eq!(links, 3, "Home twice and Guide once");
}

/// What a probe tool was told: (project, pusher, commit ids, messages, urls).
type Told = Arc<
    Mutex<
        Vec<(
            String,
            Option<String>,
            Vec<String>,
            Vec<String>,
            Vec<String>,
        )>,
    >,
>;

/// A tool kind that records what `on_commits` tells it (or fails, for `failing`).
struct Probe {
    kind: &'static str,
    failing: bool,
    told: Told,
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Tool for Probe {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn title(&self) -> &'static str {
        "Probe"
    }
    fn default_label(&self) -> &'static str {
        "Probe"
    }
    fn default_mount(&self) -> &'static str {
        self.kind
    }
    // `#[async_trait]` spelled out (this crate does not depend on it).
    fn on_commits<'l0, 'l1, 'l2, 'l3, 'l4, 'l5, 'at>(
        &'l0 self,
        _forge: &'l1 Forge,
        ctx: &'l2 ProjectCtx,
        _tool: &'l3 ToolInstance,
        pusher: Option<&'l4 str>,
        commits: &'l5 [PushedCommit],
    ) -> Fut<'at, forge_tools::Result<()>>
    where
        'l0: 'at,
        'l1: 'at,
        'l2: 'at,
        'l3: 'at,
        'l4: 'at,
        'l5: 'at,
        Self: 'at,
    {
        Box::pin(async move {
            if self.failing {
                return Err(forge_tools::Error::Internal("probe failure".into()));
            }
            self.told.lock().unwrap().push((
                ctx.project.shortname.clone(),
                pusher.map(str::to_owned),
                commits.iter().map(|c| c.sha.clone()).collect(),
                commits.iter().map(|c| c.message.clone()).collect(),
                commits.iter().map(|c| c.url.clone()).collect(),
            ));
            Ok(())
        })
    }
}

/// A test app whose registry also has the probe tools (`probe`, and `failing` whose hook
/// fails); returns what `probe` was told.
async fn app_with_probes(label: &str) -> (TestApp, Told) {
    let told: Told = Arc::default();
    let data = tempfile::tempdir().unwrap();
    let config = forge_tools::config::Config {
        mongodb_uri: Some(common::store_uri()),
        db_name: common::fresh_db_name(label),
        data_dir: data.path().to_owned(),
        ..Default::default()
    };
    let db = forge_tools::store::connect(
        config.mongodb_uri.as_deref().unwrap(),
        &config.db_name,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let cell = forge_tools::jobs::ForgeCell::default();
    let transport = forge_tasks::InProcess::start(
        &db,
        forge_tools::jobs::handlers(cell.clone()),
        2,
        Duration::from_millis(10),
    )
    .await
    .unwrap();
    let tasks = forge_tasks::Tasks::new(&db, transport);
    let mut registry = ToolRegistry::builtin();
    registry.register(Probe {
        kind: "failing",
        failing: true,
        told: Told::default(),
    });
    registry.register(Probe {
        kind: "probe",
        failing: false,
        told: told.clone(),
    });
    let forge = Forge::open(db, config, tasks, registry, true)
        .await
        .unwrap();
    let _ = cell.set(forge.clone());
    let router = forge_web::app::build(forge.clone()).unwrap();
    (
        TestApp {
            forge,
            router,
            data,
        },
        told,
    )
}

#[tokio::test]
async fn tools_are_told_of_commits_new_on_the_default_branch() {
    let (app, told) = app_with_probes("xrefoncommits").await;
    let ann = app.user("ann").await;
    app.project(&ann, "proj", false).await;
    let viewer = Viewer {
        user: Some(ann.clone()),
        ip: None,
    };
    // The failing tool comes first: the probe is told all the same.
    for kind in ["failing", "probe"] {
        let c = ctx(&app, Some(&ann), "proj").await;
        app.forge
            .install_tool(&viewer, &c, kind, kind, kind, &serde_json::json!({}))
            .await
            .unwrap();
    }
    let code = ctx(&app, Some(&ann), "proj")
        .await
        .tool("code")
        .unwrap()
        .clone();
    let git = Git::new();
    let work = git.work("w").await;
    let first = git.commit(&work, "a.txt", "one\n", "first").await;
    let second = git.commit(&work, "a.txt", "two\n", "fixes [#1]").await;
    push(&app, &git, &work, &code, "HEAD:main", "ann").await;
    {
        let told = told.lock().unwrap();
        assert_eq!(told.len(), 1, "{told:?}");
        let (project, pusher, shas, messages, urls) = &told[0];
        assert_eq!(project, "proj");
        assert_eq!(pusher.as_deref(), Some("ann"));
        assert_eq!(shas, &[first.clone(), second.clone()], "oldest first");
        assert_eq!(messages[1].trim(), "fixes [#1]");
        assert_eq!(urls[0], format!("/p/proj/code/commit/{first}"));
    }

    // Nothing new: nothing told.
    refresh::run(&app.forge, &refresh::args(code.id, Some("ann"), None))
        .await
        .unwrap();
    assert_eq!(told.lock().unwrap().len(), 1);

    // A commit on another branch is recorded but not told...
    git.ok(&work, &["checkout", "-q", "-b", "feature"]).await;
    let third = git.commit(&work, "b.txt", "b\n", "fixes [#2]").await;
    push(&app, &git, &work, &code, "feature", "bob").await;
    assert_eq!(told.lock().unwrap().len(), 1);
    assert_eq!(
        refresh::count_commits(app.forge.db(), code.id)
            .await
            .unwrap(),
        3
    );
    // ...until it is merged into the default branch.
    git.ok(&work, &["checkout", "-q", "main"]).await;
    git.ok(&work, &["merge", "-q", "--ff-only", "feature"])
        .await;
    push(&app, &git, &work, &code, "main", "cy").await;
    {
        let told = told.lock().unwrap();
        assert_eq!(told.len(), 2, "{told:?}");
        assert_eq!(told[1].1.as_deref(), Some("cy"));
        assert_eq!(told[1].2, [third]);
    }

    let tid: ToolId = code.id;
    let cache = refresh::cached_refs(app.forge.db(), tid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cache.refs.len(), 2, "main and feature");
}
