//! The discussion component through its pages on a real store: comments and replies on wiki
//! pages and commits, edit history, deletion and its permissions, spam defences (honeypot,
//! moderation queue, spam marking), sanitizing, paging, the signed thread reference, and
//! private projects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use axum::http::StatusCode;
use common::{Browser, Res, TestApp, flash, thread_ref};
use forge_tools::acl::{Ace, Principal, perm};
use forge_tools::projects::Neighborhood;
use forge_tools::tool::ToolInstance;
use forge_tools::users::User;
use forge_tools::{Viewer, discussion};

const HOME: &str = "/p/proj/wiki/Home/";
const NEW: &str = "/p/proj/wiki/_discuss/new";

/// Posts a comment (or a reply) with the reference the page gave; the response.
async fn comment(
    app: &TestApp,
    b: &Browser,
    r: &HashMap<&'static str, String>,
    text: &str,
    parent: Option<&str>,
) -> Res {
    let mut fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("text", text));
    fields.push((discussion::HONEYPOT, ""));
    if let Some(p) = parent {
        fields.push(("parent", p));
    }
    app.post_form(NEW, b, &fields).await
}

/// The post id a successful post redirected to.
fn posted_id(res: &Res) -> String {
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let loc = res.location();
    assert!(loc.starts_with(HOME) || loc.contains("/commit/"), "{loc}");
    loc.rsplit_once("#post-").unwrap().1.to_owned()
}

/// Where `needle` is on the page (panics when missing).
fn pos(body: &str, needle: &str) -> usize {
    body.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not on the page: {body}"))
}

async fn tool(app: &TestApp, user: &User, project: &str, mount: &str) -> ToolInstance {
    let viewer = Viewer {
        user: Some(user.clone()),
        ip: None,
    };
    app.forge
        .load_project(&viewer, Neighborhood::Projects, project)
        .await
        .unwrap()
        .tool(mount)
        .unwrap()
        .clone()
}

async fn set_tool_acl(app: &TestApp, tool: &ToolInstance, acl: &[Ace]) {
    app.forge
        .db()
        .collection::<bson::Document>("tools")
        .update_one(
            bson::doc! {"_id": tool.id},
            bson::doc! {"$set": {"acl": bson::serialize_to_bson(acl).unwrap()}},
        )
        .await
        .unwrap();
    // Written behind the forge's back, as another node would: its read model hears of it
    // through the change stream within milliseconds; drop it now rather than wait.
    app.forge.read_model().reset();
}

/// A public project `proj` of `ann`, and two other accounts.
async fn setup(label: &str) -> (TestApp, User, User, User) {
    let app = TestApp::new(label).await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    app.project(&ann, "proj", false).await;
    (app, ann, bob, carol)
}

#[tokio::test]
async fn comments_replies_edits_and_deletes_on_a_wiki_page() {
    let (app, _ann, bob, carol) = setup("discusswiki").await;
    let (b, c) = (app.browser(&bob).await, app.browser(&carol).await);

    let anon = app.get(HOME, &Browser::anonymous()).await;
    assert_eq!(anon.status, StatusCode::OK);
    assert!(anon.body.contains("id=\"discussion\""), "{}", anon.body);
    assert!(anon.body.contains("Log in to comment"));
    assert!(!anon.body.contains("_discuss/new"));
    assert!(anon.body.contains("No comments yet."));

    // Reading creates no thread.
    let page = app.get(HOME, &b).await;
    assert!(page.body.contains("_discuss/new"));
    assert!(
        page.body
            .contains(&format!("name=\"{}\"", discussion::HONEYPOT))
    );
    assert!(page.body.contains("tabindex=\"-1\"") && page.body.contains("aria-hidden=\"true\""));
    assert_eq!(app.count(discussion::THREADS, bson::doc! {}).await, 0);
    let r = thread_ref(&page);
    assert!(r["artifact"].starts_with("wiki:"));
    assert_eq!(r["title"], "page Home");
    assert_eq!(r["url"], HOME);

    let first = comment(&app, &b, &r, "The **first** comment", None).await;
    let first_id = posted_id(&first);
    assert_eq!(flash(&first), "Your comment is posted.");
    let second_id = posted_id(&comment(&app, &c, &r, "A second topic", None).await);
    let reply_id = posted_id(&comment(&app, &c, &r, "A reply to the first", Some(&first_id)).await);

    // Threaded: the reply under its parent, before the later top-level post.
    let page = app.get(HOME, &Browser::anonymous()).await;
    assert!(page.body.contains("The <strong>first</strong> comment"));
    let (p1, p2, p3) = (
        pos(&page.body, &format!("id=\"post-{first_id}\"")),
        pos(&page.body, &format!("id=\"post-{reply_id}\"")),
        pos(&page.body, &format!("id=\"post-{second_id}\"")),
    );
    assert!(p1 < p2 && p2 < p3, "threaded order");
    assert!(
        page.body.contains("style=\"margin-left: 2em\""),
        "the reply is indented"
    );
    // Flat: oldest first.
    let flat = app
        .get(&format!("{HOME}?posts=flat"), &Browser::anonymous())
        .await;
    let (f1, f2, f3) = (
        pos(&flat.body, &format!("id=\"post-{first_id}\"")),
        pos(&flat.body, &format!("id=\"post-{second_id}\"")),
        pos(&flat.body, &format!("id=\"post-{reply_id}\"")),
    );
    assert!(f1 < f2 && f2 < f3, "flat order");
    assert!(flat.body.contains("in reply to"));

    // Editing keeps the earlier text, which every reader sees.
    let edit_link = format!("/p/proj/wiki/_discuss/post/{first_id}/edit");
    let form = app
        .get(
            &format!(
                "{edit_link}?{}",
                serde_urlencoded::to_string(r.iter().collect::<Vec<_>>()).unwrap()
            ),
            &b,
        )
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("The **first** comment"));
    let mut fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("text", "The first comment, corrected"));
    let saved = app.post_form(&edit_link, &b, &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let seen = app.get(HOME, &c).await;
    assert!(seen.body.contains("The first comment, corrected"));
    assert!(seen.body.contains("edited"));
    assert!(seen.body.contains("Earlier versions (1)"));
    assert!(seen.body.contains("Replaced by bob"));
    assert!(
        seen.body.contains("The **first** comment"),
        "the earlier text"
    );
    // Carol may not edit bob's post.
    let refused = app.post_form(&edit_link, &c, &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Deleting: not someone else's post (without moderating), but one's own.
    let delete = |id: &str| format!("/p/proj/wiki/_discuss/post/{id}/delete");
    let fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = app.post_form(&delete(&first_id), &c, &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let anon_refused = app
        .post_form(&delete(&first_id), &Browser::anonymous(), &fields)
        .await;
    assert!(anon_refused.status.is_redirection());
    assert!(anon_refused.location().starts_with("/auth/login"));
    let deleted = app.post_form(&delete(&first_id), &b, &fields).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
    let page = app.get(HOME, &Browser::anonymous()).await;
    assert!(!page.body.contains("The first comment, corrected"));
    assert!(page.body.contains("A reply to the first"), "replies stay");
}

#[tokio::test]
async fn honeypot_and_forged_references_are_refused() {
    let (app, _ann, bob, _carol) = setup("discussspam").await;
    let b = app.browser(&bob).await;
    let r = thread_ref(&app.get(HOME, &b).await);

    let mut fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("text", "Buy now"));
    fields.push((discussion::HONEYPOT, "http://spam.example"));
    let res = app.post_form(NEW, &b, &fields).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body.contains("refused as automated"), "{}", res.body);
    assert!(res.body.contains("Buy now"), "the text comes back");
    assert_eq!(app.count(discussion::POSTS, bson::doc! {}).await, 0);
    // The refused first post created no thread either.
    assert_eq!(app.count(discussion::THREADS, bson::doc! {}).await, 0);
    // Nor does a first "reply" to a post of no thread.
    let res = comment(&app, &b, &r, "hello", Some("000000000000000000000000")).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert_eq!(app.count(discussion::THREADS, bson::doc! {}).await, 0);

    // A forged signature, or a genuine one over other fields, names no thread.
    for (key, value) in [
        ("sig", "0".repeat(64)),
        ("url", "https://evil.example/".to_owned()),
        ("title", "page Elsewhere".to_owned()),
        ("artifact", "wiki:000000000000000000000000".to_owned()),
    ] {
        let mut forged = r.clone();
        forged.insert(key, value);
        let res = comment(&app, &b, &forged, "hello", None).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{key}: {}", res.body);
    }
    // No thread, under any name.
    assert_eq!(app.count(discussion::THREADS, bson::doc! {}).await, 0);
    assert_eq!(app.count(discussion::POSTS, bson::doc! {}).await, 0);

    // Without the CSRF token nothing is read.
    let mut fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("text", "hello"));
    let res = app.post_raw(NEW, &b, &fields).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // Empty text comes back with a message.
    let res = comment(&app, &b, &r, "   ", None).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body.contains("Write something first"));
    assert_eq!(app.count(discussion::THREADS, bson::doc! {}).await, 0);
    // The first post that passes creates the thread, under the signed reference.
    posted_id(&comment(&app, &b, &r, "hello", None).await);
    assert_eq!(
        app.count(
            discussion::THREADS,
            bson::doc! {"artifact": &r["artifact"], "title": "page Home", "url": HOME}
        )
        .await,
        1
    );
    assert_eq!(app.count(discussion::THREADS, bson::doc! {}).await, 1);
}

#[tokio::test]
async fn moderated_posts_wait_in_the_queue() {
    let (app, ann, bob, carol) = setup("discussmod").await;
    let wiki = tool(&app, &ann, "proj", "wiki").await;
    // Logged-in people may post, but only after a moderator looks.
    set_tool_acl(
        &app,
        &wiki,
        &[
            Ace::allow(Principal::Member, perm::WRITE),
            Ace::allow(Principal::Authenticated, discussion::perm::POST),
            Ace::allow(Principal::Developer, discussion::perm::MODERATE),
        ],
    )
    .await;
    let (a, b, c) = (
        app.browser(&ann).await,
        app.browser(&bob).await,
        app.browser(&carol).await,
    );
    let r = thread_ref(&app.get(HOME, &b).await);
    let res = comment(&app, &b, &r, "Held for a look", None).await;
    let id = posted_id(&res);
    assert_eq!(flash(&res), "Your post waits for a moderator.");

    for (who, viewer) in [("anonymous", &Browser::anonymous()), ("carol", &c)] {
        let page = app.get(HOME, viewer).await;
        assert!(!page.body.contains("Held for a look"), "{who} sees it");
    }
    let own = app.get(HOME, &b).await;
    assert!(own.body.contains("Held for a look"));
    assert!(own.body.contains("waiting for a moderator"));
    assert!(!own.body.contains("_moderate\""), "no queue link for bob");

    // The queue: moderators only.
    assert_eq!(
        app.get("/p/proj/wiki/_moderate", &b).await.status,
        StatusCode::FORBIDDEN
    );
    let queue = app.get("/p/proj/wiki/_moderate", &a).await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    assert!(queue.body.contains("Held for a look"));
    assert!(queue.body.contains(&format!("value=\"{id}\"")));
    assert!(queue.body.contains("page Home"));
    let page = app.get(HOME, &a).await;
    assert!(page.body.contains("Held for a look"), "moderators see it");
    assert!(page.body.contains("/p/proj/wiki/_moderate"));

    // Bob may not approve his own post.
    let approve = [
        ("status", "pending"),
        ("page", "1"),
        ("post", id.as_str()),
        ("action", "approve"),
    ];
    assert_eq!(
        app.post_form("/p/proj/wiki/_moderate", &b, &approve)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let res = app.post_form("/p/proj/wiki/_moderate", &a, &approve).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(flash(&res), "1 post approved.");
    let page = app.get(HOME, &Browser::anonymous()).await;
    assert!(page.body.contains("Held for a look"), "live after approval");
    let queue = app.get("/p/proj/wiki/_moderate", &a).await;
    assert!(!queue.body.contains("Held for a look"));

    // Marked as spam from the thread: hidden again, and in the spam tab.
    let mut fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.extend([("post", id.as_str()), ("action", "spam")]);
    let res = app.post_form("/p/proj/wiki/_moderate", &a, &fields).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(flash(&res), "1 post marked as spam.");
    let page = app.get(HOME, &Browser::anonymous()).await;
    assert!(!page.body.contains("Held for a look"));
    let own = app.get(HOME, &b).await;
    assert!(own.body.contains("marked as spam"));
    let spam = app.get("/p/proj/wiki/_moderate?status=spam", &a).await;
    assert!(spam.body.contains("Held for a look"));
}

/// Whether any tag on the page carries an event handler (outside tags, `<` is escaped).
fn has_handler(html: &str) -> bool {
    html.split('<').skip(1).any(|seg| {
        let tag = seg.split('>').next().unwrap_or("").to_lowercase();
        tag.contains(" onerror") || tag.contains(" onload")
    })
}

#[tokio::test]
async fn posts_render_inert() {
    let (app, _ann, bob, _carol) = setup("discussxss").await;
    let b = app.browser(&bob).await;
    let r = thread_ref(&app.get(HOME, &b).await);
    for payload in [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
    ] {
        posted_id(&comment(&app, &b, &r, payload, None).await);
    }
    let page = app.get(HOME, &Browser::anonymous()).await;
    let start = pos(&page.body, "id=\"discussion\"");
    let section = &page.body[start..];
    assert!(!section.to_lowercase().contains("<script"), "{section}");
    assert!(!has_handler(section), "{section}");
    assert!(!section.contains("href=\"javascript:"), "{section}");
    assert!(section.contains("<img src=\"x\""), "the image stays, inert");
}

#[tokio::test]
async fn long_threads_are_paged() {
    let (app, ann, _bob, _carol) = setup("discusspages").await;
    let a = app.browser(&ann).await;
    let r = thread_ref(&app.get(HOME, &a).await);
    for i in 0..51 {
        posted_id(&comment(&app, &a, &r, &format!("Comment number {i:02}."), None).await);
    }
    let page = app.get(HOME, &Browser::anonymous()).await;
    assert_eq!(page.body.matches("<article class=\"post").count(), 50);
    assert!(page.body.contains("page 1 of 2"));
    assert!(page.body.contains("Comment number 00."));
    assert!(!page.body.contains("Comment number 50."));
    assert!(page.body.contains("posts_page=2"));
    let second = app
        .get(&format!("{HOME}?posts_page=2"), &Browser::anonymous())
        .await;
    assert_eq!(second.body.matches("<article class=\"post").count(), 1);
    assert!(second.body.contains("Comment number 50."));
    // Out of range or unreadable: the nearest page, never an error.
    for q in ["?posts_page=99", "?posts_page=x"] {
        let res = app.get(&format!("{HOME}{q}"), &Browser::anonymous()).await;
        assert_eq!(res.status, StatusCode::OK);
    }
}

/// Runs git without user configuration; panics on failure.
fn git(cwd: &Path, home: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Tester",
            "-c",
            "user.email=tester@example.org",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn comments_on_a_commit_page() {
    let (app, ann, bob, _carol) = setup("discusscommit").await;
    let code = tool(&app, &ann, "proj", "code").await;
    let bare = forge_tools::tools::repo::repo_path(app.forge.config(), &code);
    let home = tempfile::tempdir().unwrap();
    let work = home.path().join("work");
    let sha = tokio::task::spawn_blocking(move || {
        git(home.path(), home.path(), &["init", "-q", "work"]);
        std::fs::write(work.join("a.txt"), "a\n").unwrap();
        git(&work, home.path(), &["add", "-A"]);
        git(&work, home.path(), &["commit", "-q", "-m", "first"]);
        git(
            &work,
            home.path(),
            &["push", "-q", bare.to_str().unwrap(), "HEAD:main"],
        );
        git(&work, home.path(), &["rev-parse", "HEAD"])
            .trim()
            .to_owned()
    })
    .await
    .unwrap();

    let b = app.browser(&bob).await;
    let url = format!("/p/proj/code/commit/{sha}");
    let page = app.get(&url, &b).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"discussion\""));
    let r = thread_ref(&page);
    assert_eq!(r["artifact"], format!("commit:{}:{sha}", code.id));
    assert_eq!(r["title"], format!("commit {}", &sha[..10]));
    assert_eq!(r["url"], url);
    let mut fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("text", "Nice *commit*"));
    let res = app
        .post_form("/p/proj/code/_discuss/new", &b, &fields)
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert!(res.location().starts_with(&format!("{url}#post-")));
    let page = app.get(&url, &Browser::anonymous()).await;
    assert!(page.body.contains("Nice <em>commit</em>"), "{}", page.body);

    // A wiki's reference is not the repository's: signed for another tool.
    let wiki_ref = thread_ref(&app.get(HOME, &b).await);
    let mut fields: Vec<(&str, &str)> = wiki_ref.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("text", "misplaced"));
    let res = app
        .post_form("/p/proj/code/_discuss/new", &b, &fields)
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_private_projects_discussion_is_hidden_from_outsiders() {
    let app = TestApp::new("discussprivate").await;
    let ann = app.user("ann").await;
    let eve = app.user("eve").await;
    app.project(&ann, "secret", true).await;
    let (a, e) = (app.browser(&ann).await, app.browser(&eve).await);
    let home = "/p/secret/wiki/Home/";
    let r = thread_ref(&app.get(home, &a).await);
    let mut fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("text", "Members only"));
    let res = app
        .post_form("/p/secret/wiki/_discuss/new", &a, &fields)
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let id = res.location().rsplit_once("#post-").unwrap().1.to_owned();

    for b in [&e, &Browser::anonymous()] {
        assert_eq!(app.get(home, b).await.status, StatusCode::NOT_FOUND);
        let res = app
            .post_form("/p/secret/wiki/_discuss/new", b, &fields)
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        assert_eq!(
            app.get("/p/secret/wiki/_moderate", b).await.status,
            StatusCode::NOT_FOUND
        );
        let edit = format!(
            "/p/secret/wiki/_discuss/post/{id}/edit?{}",
            serde_urlencoded::to_string(r.iter().collect::<Vec<_>>()).unwrap()
        );
        assert_eq!(app.get(&edit, b).await.status, StatusCode::NOT_FOUND);
        let delete = format!("/p/secret/wiki/_discuss/post/{id}/delete");
        let res = app.post_form(&delete, b, &fields[..4]).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.count(discussion::POSTS, bson::doc! {}).await, 1);
    let page = app.get(home, &a).await;
    assert!(page.body.contains("Members only"));
}

#[test]
fn post_json_shape() {
    let p = discussion::Post {
        id: bson::oid::ObjectId::new(),
        thread_id: bson::oid::ObjectId::new(),
        project_id: forge_tools::ids::ProjectId::new(),
        tool_id: forge_tools::ids::ToolId::new(),
        parent: None,
        path: String::new(),
        depth: 0,
        author: "bob".into(),
        text: "hi".into(),
        status: discussion::Status::Pending,
        created: bson::DateTime::from_millis(0),
        edited: None,
        edits: Vec::new(),
        deleted: false,
    };
    let j = serde_json::to_value(forge_web::discussion::post_json(&p)).unwrap();
    assert_eq!(j["id"], p.id.to_hex());
    assert_eq!(j["parent"], serde_json::Value::Null);
    assert_eq!(j["author"], "bob");
    assert_eq!(j["status"], "pending");
    assert_eq!(j["created"], "1970-01-01T00:00:00Z");
    assert_eq!(j["edited"], serde_json::Value::Null);
}

/// The files URL of a post on the wiki's Home page.
fn files_url(project: &str, id: &str) -> String {
    format!("/p/{project}/wiki/_discuss/post/{id}/attachments")
}

/// Uploads a file to a post with the browser's CSRF token first.
async fn attach(app: &TestApp, b: &Browser, url: &str, name: &str, bytes: &[u8]) -> Res {
    app.post_multipart(url, b, &[("csrf_token", &b.csrf)], (name, bytes), None)
        .await
}

#[tokio::test]
async fn files_on_posts() {
    let (app, ann, bob, carol) = setup("discussfiles").await;
    let (a, b, c) = (
        app.browser(&ann).await,
        app.browser(&bob).await,
        app.browser(&carol).await,
    );
    let page = app.get(HOME, &b).await;
    let r = thread_ref(&page);
    let id = posted_id(&comment(&app, &b, &r, "See the notes", None).await);
    let carols = posted_id(&comment(&app, &c, &r, "Carol's own", None).await);
    let url = files_url("proj", &id);

    // The author's post offers the upload form; others' posts do not.
    let own = app.get(HOME, &b).await;
    assert!(
        own.body.contains(&format!("action=\"{url}\"")),
        "{}",
        own.body
    );
    assert!(
        !own.body
            .contains(&format!("action=\"{}\"", files_url("proj", &carols)))
    );

    // The author attaches a file: back to the post, listed on the page, downloadable.
    let res = attach(&app, &b, &url, "notes.txt", b"the notes, byte for byte\n").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), format!("{HOME}#post-{id}"));
    assert_eq!(flash(&res), "Attached notes.txt.");
    let file = format!("{url}/notes.txt");
    let anon = app.get(HOME, &Browser::anonymous()).await;
    let at = pos(&anon.body, &format!("id=\"post-{id}\""));
    let link = pos(&anon.body, &format!("href=\"{file}\""));
    assert!(at < link, "listed under the post");
    assert!(anon.body.contains("notes.txt</a>"));
    assert!(anon.body.contains("25 bytes"), "its size");
    assert!(
        !anon.body.contains(&format!("{file}/delete")),
        "no remove button"
    );
    let got = app.get(&file, &Browser::anonymous()).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.bytes, b"the notes, byte for byte\n");
    assert!(got.header("content-type").starts_with("text/plain"));

    // An image shows as a thumbnail.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    let res = attach(&app, &b, &url, "shot.png", png).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let page = app.get(HOME, &Browser::anonymous()).await;
    assert!(
        page.body.contains(&format!(
            "<img src=\"{url}/shot.png\" alt=\"shot.png\" class=\"thumb\">"
        )),
        "{}",
        page.body
    );
    assert!(!page.body.contains("alt=\"notes.txt\""), "only images");

    // HTML is never shown inline.
    let res = attach(&app, &b, &url, "evil.html", b"<script>alert(1)</script>").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let got = app.get(&format!("{url}/evil.html"), &a).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(
        got.header("content-disposition").starts_with("attachment"),
        "{:?}",
        got.headers
    );
    assert_eq!(got.header("x-content-type-options"), "nosniff");
    assert!(got.header("content-security-policy").contains("sandbox"));

    // Another logged-in non-moderator may neither attach nor remove.
    let res = attach(&app, &c, &url, "mine.txt", b"not yours").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    let res = app.post_form(&format!("{file}/delete"), &c, &[]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    let seen = app.get(HOME, &c).await;
    assert!(!seen.body.contains(&format!("{file}/delete")));
    // Nor anyone logged out, nor without the CSRF token, nor under another tool.
    let res = attach(&app, &Browser::anonymous(), &url, "x.txt", b"x").await;
    assert!(res.location().starts_with("/auth/login"), "{}", res.status);
    let res = app
        .post_multipart(&url, &b, &[], ("x.txt", b"x"), None)
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let elsewhere = format!("/p/proj/code/_discuss/post/{id}/attachments");
    assert_eq!(
        attach(&app, &b, &elsewhere, "x.txt", b"x").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("{elsewhere}/notes.txt"), &b).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.count(
            "attachments",
            bson::doc! {"filename": {"$in": ["mine.txt", "x.txt"]}}
        )
        .await,
        0
    );

    // A moderator (the project's admin) sees the remove buttons and removes a file.
    let page = app.get(HOME, &a).await;
    assert!(page.body.contains(&format!("action=\"{file}/delete\"")));
    let res = app.post_form(&format!("{file}/delete"), &a, &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), format!("{HOME}#post-{id}"));
    assert_eq!(flash(&res), "Removed notes.txt.");
    assert_eq!(app.get(&file, &b).await.status, StatusCode::NOT_FOUND);
    let page = app.get(HOME, &b).await;
    assert!(!page.body.contains("notes.txt"));
    assert!(page.body.contains("shot.png"));
    // The author removes one too.
    let res = app
        .post_form(&format!("{url}/evil.html/delete"), &b, &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);

    // A deleted post's files are gone with it, for everyone.
    let fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = app
        .post_form(
            &format!("/p/proj/wiki/_discuss/post/{id}/delete"),
            &b,
            &fields,
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    for viewer in [&a, &b, &Browser::anonymous()] {
        let got = app.get(&format!("{url}/shot.png"), viewer).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND);
    }
    let page = app.get(HOME, &a).await;
    assert!(!page.body.contains("shot.png"));
    assert_eq!(
        attach(&app, &b, &url, "late.txt", b"too late").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_held_posts_files_are_seen_by_its_author_and_moderators() {
    let (app, ann, bob, carol) = setup("discussheldfiles").await;
    let wiki = tool(&app, &ann, "proj", "wiki").await;
    set_tool_acl(
        &app,
        &wiki,
        &[
            Ace::allow(Principal::Member, perm::WRITE),
            Ace::allow(Principal::Authenticated, discussion::perm::POST),
            Ace::allow(Principal::Developer, discussion::perm::MODERATE),
        ],
    )
    .await;
    let (a, b, c) = (
        app.browser(&ann).await,
        app.browser(&bob).await,
        app.browser(&carol).await,
    );
    let r = thread_ref(&app.get(HOME, &b).await);
    let id = posted_id(&comment(&app, &b, &r, "Held, with a file", None).await);
    let url = files_url("proj", &id);
    let res = attach(&app, &b, &url, "held.txt", b"held").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let file = format!("{url}/held.txt");
    assert_eq!(app.get(&file, &b).await.status, StatusCode::OK);
    assert_eq!(app.get(&file, &a).await.status, StatusCode::OK);
    for viewer in [&c, &Browser::anonymous()] {
        assert_eq!(app.get(&file, viewer).await.status, StatusCode::NOT_FOUND);
        assert!(!app.get(HOME, viewer).await.body.contains("held.txt"));
    }
}

#[tokio::test]
async fn a_private_projects_post_files_are_hidden_from_outsiders() {
    let app = TestApp::new("discussprivatefiles").await;
    let ann = app.user("ann").await;
    let eve = app.user("eve").await;
    app.project(&ann, "secret", true).await;
    let (a, e) = (app.browser(&ann).await, app.browser(&eve).await);
    let home = "/p/secret/wiki/Home/";
    let r = thread_ref(&app.get(home, &a).await);
    let mut fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("text", "Members only, with a file"));
    let res = app
        .post_form("/p/secret/wiki/_discuss/new", &a, &fields)
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let id = res.location().rsplit_once("#post-").unwrap().1.to_owned();
    let url = files_url("secret", &id);
    let res = attach(&app, &a, &url, "plan.txt", b"the plan").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let file = format!("{url}/plan.txt");
    assert_eq!(app.get(&file, &a).await.bytes, b"the plan");

    for b in [&e, &Browser::anonymous()] {
        assert_eq!(app.get(&file, b).await.status, StatusCode::NOT_FOUND);
        let res = attach(&app, b, &url, "x.txt", b"x").await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
        let res = app.post_form(&format!("{file}/delete"), b, &[]).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    }
    assert_eq!(app.get(&file, &a).await.status, StatusCode::OK);
}
