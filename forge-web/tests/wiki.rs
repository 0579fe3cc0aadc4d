//! The wiki through pages and REST on a real store: versions, history, diff, revert,
//! conflicts, concurrency, rename, references, sanitizing, attachments and permissions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::http::{Method, StatusCode};
use common::{Browser, TestApp};
use forge_tools::acl::Role;
use forge_tools::projects::Neighborhood;
use forge_tools::tools::wiki::{self, Edit, Saved};
use forge_tools::{ProjectCtx, Viewer};
use serde_json::json;

async fn ctx(app: &TestApp, user: &forge_tools::users::User, project: &str) -> ProjectCtx {
    let viewer = Viewer {
        user: Some(user.clone()),
        ip: None,
    };
    app.forge
        .load_project(&viewer, Neighborhood::Projects, project)
        .await
        .unwrap()
}

fn edit_fields<'a>(text: &'a str, base: &'a str, comment: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("text", text),
        ("labels", ""),
        ("comment", comment),
        ("base_version", base),
        ("action", "save"),
    ]
}

#[tokio::test]
async fn versions_history_diff_and_revert() {
    let app = TestApp::new("wikiversions").await;
    let ann = app.user("ann").await;
    let ben = app.user("ben").await;
    let p = app.project(&ann, "docs", false).await;
    app.add_member(&p, &ben, Role::Developer).await;
    let a = app.browser(&ann).await;
    let b = app.browser(&ben).await;

    // A missing page sends writers to its edit form.
    let res = app.get("/p/docs/wiki/Guide/", &a).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/p/docs/wiki/Guide/edit");

    let v1 = "# Guide\n\nInstall with cargo.\n";
    let v2 = "# Guide\n\nInstall with cargo build.\n";
    let v3 = "# Guide\n\nInstall with cargo build --release.\n\nThen run it.\n";
    assert_eq!(
        app.post_form(
            "/p/docs/wiki/Guide/edit",
            &a,
            &edit_fields(v1, "0", "first")
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.post_form(
            "/p/docs/wiki/Guide/edit",
            &b,
            &edit_fields(v2, "1", "second")
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.post_form(
            "/p/docs/wiki/Guide/edit",
            &a,
            &edit_fields(v3, "2", "third")
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );

    let history = app.get("/p/docs/wiki/Guide/history", &a).await;
    assert_eq!(history.status, StatusCode::OK);
    let rows = history.body.matches("?version=").count();
    assert_eq!(rows, 3, "three versions listed");
    assert!(history.body.contains("<td>ann</td>") && history.body.contains("<td>ben</td>"));
    assert!(history.body.contains("second"));

    let old = app
        .get("/p/docs/wiki/Guide/?version=1", &Browser::anonymous())
        .await;
    assert_eq!(old.status, StatusCode::OK);
    assert!(
        old.body.contains("Install with cargo.")
            && old.body.contains("You are looking at version 1")
    );

    let diff = app
        .get("/p/docs/wiki/Guide/diff?v1=1&v2=3", &Browser::anonymous())
        .await;
    assert_eq!(diff.status, StatusCode::OK);
    assert!(diff.body.contains("<tr class=\"del\">") && diff.body.contains("<tr class=\"add\">"));
    assert!(diff.body.contains("Then run it."));
    // Inside a changed line, the changed words are marked.
    let small = app
        .get("/p/docs/wiki/Guide/diff?v1=1&v2=2", &Browser::anonymous())
        .await;
    assert!(
        small.body.contains("<mark>cargo build.</mark>"),
        "{}",
        small.body
    );

    let res = app
        .post_form("/p/docs/wiki/Guide/revert", &a, &[("version", "1")])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let token = app.token(&ann).await;
    let page = app
        .api(Method::GET, "/rest/p/docs/wiki/Guide", Some(&token), None)
        .await
        .json();
    assert_eq!(page["version"], 4);
    assert_eq!(page["text"], v1);
    let hist = app
        .api(
            Method::GET,
            "/rest/p/docs/wiki/Guide/history",
            Some(&token),
            None,
        )
        .await
        .json();
    let versions: Vec<i64> = hist["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [4, 3, 2, 1]);
    assert_eq!(hist["versions"][0]["comment"], "Reverted to version 1");
    let v2_json = app
        .api(Method::GET, "/rest/p/docs/wiki/Guide?version=2", None, None)
        .await
        .json();
    assert_eq!(v2_json["text"], v2);
    assert_eq!(v2_json["author"], "ben");

    app.forge.events().flush().await;
    assert_eq!(
        app.count_events(bson::doc! {"type": "wiki.page.create", "extra.page": "Guide"})
            .await,
        1
    );
    assert_eq!(
        app.count_events(bson::doc! {"type": "wiki.page.edit", "extra.page": "Guide"})
            .await,
        3
    );
    assert!(
        app.count_events(
            bson::doc! {"type": "page.view", "context.tool": "wiki", "extra.page": "Guide"}
        )
        .await
            >= 1
    );
}

#[tokio::test]
async fn two_saves_from_one_base_conflict_and_lose_nothing() {
    let app = TestApp::new("wikiconflict").await;
    let ann = app.user("ann").await;
    app.project(&ann, "docs", false).await;
    let a = app.browser(&ann).await;
    app.post_form(
        "/p/docs/wiki/Notes/edit",
        &a,
        &edit_fields("line one\nline two\nline three\n", "0", ""),
    )
    .await;

    let first = app
        .post_form(
            "/p/docs/wiki/Notes/edit",
            &a,
            &edit_fields("LINE ONE\nline two\nline three\n", "1", ""),
        )
        .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let second = app
        .post_form(
            "/p/docs/wiki/Notes/edit",
            &a,
            &edit_fields("line one\nline two\nLINE THREE\n", "1", ""),
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert!(second.body.contains("Someone else saved this page"));
    // Both edits touch different lines: the form offers the clean merge, based on version 2.
    assert!(second.body.contains("merged cleanly"), "{}", second.body);
    assert!(second.body.contains("LINE ONE\nline two\nLINE THREE"));
    assert!(second.body.contains("name=\"base_version\" value=\"2\""));
    let token = app.token(&ann).await;
    let page = app
        .api(Method::GET, "/rest/p/docs/wiki/Notes", Some(&token), None)
        .await
        .json();
    assert_eq!(
        page["text"], "LINE ONE\nline two\nline three\n",
        "the first save survives"
    );
    assert_eq!(page["version"], 2);

    // The REST API answers 409 with both texts.
    let res = app
        .api(
            Method::PUT,
            "/rest/p/docs/wiki/Notes",
            Some(&token),
            Some(json!({"text": "mine", "base_version": 1})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    let body = res.json();
    assert_eq!(body["error"]["code"], "edit_conflict");
    assert_eq!(body["error"]["current_version"], 2);
    assert_eq!(
        body["error"]["current_text"],
        "LINE ONE\nline two\nline three\n"
    );
    assert_eq!(body["error"]["your_text"], "mine");
    let ok = app
        .api(
            Method::PUT,
            "/rest/p/docs/wiki/Notes",
            Some(&token),
            Some(json!({"text": "mine", "base_version": 2, "labels": ["a", "b"]})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.json()["version"], 3);
    // Creating a page that exists is a conflict too.
    let dup = app
        .api(
            Method::PUT,
            "/rest/p/docs/wiki/Notes",
            Some(&token),
            Some(json!({"text": "x", "base_version": 0})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn twenty_concurrent_writers_get_gapless_versions() {
    let app = TestApp::new("wikiconcurrent").await;
    let ann = app.user("ann").await;
    app.project(&ann, "docs", false).await;
    let c = ctx(&app, &ann, "docs").await;
    let tool = c.tool("wiki").unwrap().clone();
    let viewer = Viewer {
        user: Some(ann.clone()),
        ip: None,
    };
    let first = Edit {
        text: "start".into(),
        base_version: 0,
        ..Edit::default()
    };
    assert!(matches!(
        wiki::save(&app.forge, &viewer, &c, &tool, "Busy", first)
            .await
            .unwrap(),
        Saved::Created(_)
    ));

    let mut tasks = Vec::new();
    for i in 0..20 {
        let (forge, c, tool, viewer) = (app.forge.clone(), c.clone(), tool.clone(), viewer.clone());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            loop {
                // Each attempt starts from the version the writer last saw.
                let base = wiki::pages::get(forge.db(), tool.id, "Busy")
                    .await
                    .unwrap()
                    .unwrap()
                    .version;
                let edit = Edit {
                    text: format!("writer {i}"),
                    base_version: base,
                    ..Edit::default()
                };
                match wiki::save(&forge, &viewer, &c, &tool, "Busy", edit)
                    .await
                    .unwrap()
                {
                    Saved::Updated(p) => return (p.version, conflicts),
                    Saved::Conflict(conflict) => {
                        assert_eq!(
                            conflict.yours,
                            format!("writer {i}"),
                            "the losing text comes back"
                        );
                        conflicts += 1;
                    }
                    Saved::Created(_) => panic!("page existed"),
                }
            }
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        won.push(t.await.unwrap().0);
    }
    won.sort_unstable();
    assert_eq!(
        won,
        (2..=21).collect::<Vec<i32>>(),
        "each writer got its own version"
    );
    let page = wiki::pages::get(app.forge.db(), tool.id, "Busy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.version, 21);
    let history = wiki::pages::versions(app.forge.db())
        .history(page.id)
        .await
        .unwrap();
    let versions: Vec<i32> = history.iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=21).rev().collect::<Vec<i32>>(), "gapless");
    for i in 0..20 {
        let hits = {
            let mut n = 0;
            for v in 2..=21 {
                let snap = wiki::pages::versions(app.forge.db())
                    .get(page.id, v)
                    .await
                    .unwrap()
                    .unwrap();
                if snap.data.text == format!("writer {i}") {
                    n += 1;
                }
            }
            n
        };
        assert_eq!(hits, 1, "writer {i}'s text is in exactly one version");
    }
}

#[tokio::test]
async fn rename_redirects_and_references_follow() {
    let app = TestApp::new("wikirename").await;
    let ann = app.user("ann").await;
    app.project(&ann, "docs", false).await;
    let a = app.browser(&ann).await;
    app.post_form(
        "/p/docs/wiki/Old%20Name/edit",
        &a,
        &edit_fields("the page", "0", ""),
    )
    .await;
    app.post_form(
        "/p/docs/wiki/Linker/edit",
        &a,
        &edit_fields(
            "See [Old Name] and [[Old Name|that page]] and [wiki:Old Name].",
            "0",
            "",
        ),
    )
    .await;
    let before = app.get("/p/docs/wiki/Old%20Name/", &a).await;
    assert!(
        before.body.contains("href=\"/p/docs/wiki/Linker/\""),
        "backlink shown: {}",
        before.body
    );

    let res = app
        .post_form(
            "/p/docs/wiki/Old%20Name/rename",
            &a,
            &[("name", "New Name")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/p/docs/wiki/New%20Name/");
    let old = app
        .get("/p/docs/wiki/Old%20Name/", &Browser::anonymous())
        .await;
    assert_eq!(old.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(old.location(), "/p/docs/wiki/New%20Name/");
    let linker = app.get("/p/docs/wiki/Linker/", &Browser::anonymous()).await;
    assert_eq!(
        linker
            .body
            .matches("href=\"/p/docs/wiki/New%20Name/\"")
            .count(),
        3,
        "{}",
        linker.body
    );
    assert!(!linker.body.contains("Create page"));
    let renamed = app.get("/p/docs/wiki/New%20Name/", &a).await;
    assert!(
        renamed.body.contains("href=\"/p/docs/wiki/Linker/\""),
        "backlinks follow the rename"
    );
    let hist = app
        .api(
            Method::GET,
            "/rest/p/docs/wiki/New%20Name/history",
            None,
            None,
        )
        .await
        .json();
    assert_eq!(hist["versions"][0]["comment"], "Renamed from Old Name");
    // Renaming onto an existing page is refused.
    let clash = app
        .post_form("/p/docs/wiki/New%20Name/rename", &a, &[("name", "Linker")])
        .await;
    assert_eq!(clash.status, StatusCode::SEE_OTHER);
    assert_eq!(clash.location(), "/p/docs/wiki/New%20Name/");
    assert!(
        clash
            .set_cookie("forge_flash")
            .unwrap()
            .contains("already+exists")
    );
    let linker = app
        .api(Method::GET, "/rest/p/docs/wiki/Linker", None, None)
        .await
        .json();
    assert_eq!(linker["version"], 1, "the other page is untouched");
    assert!(
        wiki::pages::get(
            app.forge.db(),
            ctx(&app, &ann, "docs").await.tool("wiki").unwrap().id,
            "New Name"
        )
        .await
        .unwrap()
        .is_some()
    );
}

#[tokio::test]
async fn missing_pages_are_create_links_only_for_writers() {
    let app = TestApp::new("wikimissing").await;
    let ann = app.user("ann").await;
    app.project(&ann, "docs", false).await;
    let a = app.browser(&ann).await;
    app.post_form(
        "/p/docs/wiki/Home/edit",
        &a,
        &edit_fields(
            "Go to [Nowhere], [#12], [abc1234] and [other:wiki:Page].",
            "1",
            "",
        ),
    )
    .await;
    let mine = app.get("/p/docs/wiki/Home/", &a).await;
    assert!(mine.body.contains("href=\"/p/docs/wiki/Nowhere/edit\""));
    let anon = app.get("/p/docs/wiki/Home/", &Browser::anonymous()).await;
    assert!(!anon.body.contains("Nowhere/edit"));
    assert!(anon.body.contains("[Nowhere]"));
    assert!(
        anon.body.contains("[#12]") && anon.body.contains("[abc1234]"),
        "reserved syntax stays text until those tools exist"
    );
    assert!(anon.body.contains("href=\"/p/other/wiki/Page/\""));
}

/// Tags and attributes found in sanitized HTML (which html5ever serialized, so every `<`
/// outside a tag is escaped).
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let bytes: Vec<char> = html.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != '<' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let mut quote: Option<char> = None;
        while j < bytes.len() {
            match (quote, bytes[j]) {
                (None, '"' | '\'') => quote = Some(bytes[j]),
                (Some(q), c) if c == q => quote = None,
                (None, '>') => break,
                _ => {}
            }
            j += 1;
        }
        let inner: String = bytes[i + 1..j.min(bytes.len())].iter().collect();
        i = j + 1;
        if inner.starts_with('/') || inner.starts_with('!') {
            continue;
        }
        let name: String = inner
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect::<String>()
            .to_lowercase();
        let mut attrs = Vec::new();
        let rest = &inner[name.len()..];
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == '/') {
                chars.next();
            }
            let key: String =
                std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace() && *c != '=')).collect();
            if key.is_empty() {
                break;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'=') {
                chars.next();
                if let Some(q) = chars.next_if(|c| *c == '"' || *c == '\'') {
                    value = std::iter::from_fn(|| chars.next_if(|c| *c != q)).collect();
                    chars.next();
                } else {
                    value = std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect();
                }
            }
            attrs.push((key.to_lowercase(), value));
        }
        out.push((name, attrs));
    }
    out
}

fn decode_entities(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x3a;", ":")
        .replace("&colon;", ":")
}

const ALLOWED_TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "details",
    "div",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "input",
    "ins",
    "kbd",
    "li",
    "mark",
    "nav",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
    "dl",
    "dt",
    "dd",
    "q",
    "small",
    "strike",
    "tt",
    "u",
    "var",
    "cite",
    "caption",
    "col",
    "colgroup",
    "tfoot",
    "samp",
    "figure",
    "figcaption",
    "bdi",
    "bdo",
    "center",
    "data",
    "dfn",
    "font",
    "hgroup",
    "map",
    "area",
    "rp",
    "rt",
    "rtc",
    "ruby",
    "time",
    "wbr",
    "acronym",
    "address",
    "article",
    "aside",
    "big",
    "footer",
    "header",
];

const XSS: &[&str] = &[
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<img src=\"javascript:alert(1)\">",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><script>alert(1)</script></mtext></math>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<object data=\"data:text/html,<script>alert(1)</script>\"></object>",
    "<embed src=\"javascript:alert(1)\">",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
    "<a href=\"&#106;avascript:alert(1)\">x</a>",
    "<a href=\"java&#x09;script:alert(1)\">x</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
    "<a href=\"vbscript:msgbox(1)\">x</a>",
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    "[click](data:text/html,<script>alert(1)</script>)",
    "![img](javascript:alert(1))",
    "![x](x \"onerror=alert(1)\")",
    "[a](<javascript:alert(1)>)",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<p onclick=\"alert(1)\">click</p>",
    "<body onload=alert(1)>",
    "<form action=\"javascript:alert(1)\"><button>x</button></form>",
    "<button formaction=\"javascript:alert(1)\">x</button>",
    "<input onfocus=alert(1) autofocus>",
    "<details open ontoggle=alert(1)>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<base href=\"javascript:alert(1)//\">",
    "<link rel=stylesheet href=\"javascript:alert(1)\">",
    "<style>@import 'javascript:alert(1)';</style>",
    "<<script>script>alert(1)<</script>/script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<a href=\"#\" onmouseover=\"alert(1)\">hover</a>",
    "```html\n<script>alert(1)</script>\n```",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    "<template><script>alert(1)</script></template>",
    "[[javascript:alert(1)]]",
    "<a href=\"  javascript:alert(1)\">sp</a>",
];

#[tokio::test]
async fn xss_corpus_renders_without_executable_content() {
    assert!(XSS.len() >= 30);
    let app = TestApp::new("wikixss").await;
    let ann = app.user("ann").await;
    app.project(&ann, "docs", false).await;
    let token = app.token(&ann).await;
    for (i, payload) in XSS.iter().enumerate() {
        let name = format!("X{i}");
        let res = app
            .api(
                Method::PUT,
                &format!("/rest/p/docs/wiki/{name}"),
                Some(&token),
                Some(json!({"text": payload, "base_version": 0})),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{payload}");
        let page = app
            .get(&format!("/p/docs/wiki/{name}/"), &Browser::anonymous())
            .await;
        let start = page.body.find("<div class=\"markdown\">").unwrap();
        let end = start + page.body[start..].find("</article>").unwrap();
        let html = &page.body[start..end];
        for (tag, attrs) in tags(html) {
            assert!(
                ALLOWED_TAGS.contains(&tag.as_str()),
                "payload {payload:?} produced <{tag}>: {html}"
            );
            for (key, value) in attrs {
                assert!(
                    !key.starts_with("on"),
                    "payload {payload:?} kept handler {key}: {html}"
                );
                assert!(
                    !matches!(key.as_str(), "style" | "srcdoc" | "formaction" | "action"),
                    "{payload:?} kept {key}"
                );
                if matches!(key.as_str(), "href" | "src" | "cite" | "data") {
                    let v: String = decode_entities(&value)
                        .chars()
                        .filter(|c| !c.is_whitespace() && !c.is_control())
                        .collect::<String>()
                        .to_lowercase();
                    for bad in ["javascript:", "vbscript:", "data:"] {
                        assert!(
                            !v.starts_with(bad),
                            "payload {payload:?} kept {key}={value}: {html}"
                        );
                    }
                }
            }
        }
        // The JSON rendering is sanitized the same way.
        let json = app
            .api(
                Method::GET,
                &format!("/rest/p/docs/wiki/{name}"),
                None,
                None,
            )
            .await
            .json();
        assert!(
            !json["html"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("<script"),
            "{payload}"
        );
    }
}

#[tokio::test]
async fn attachments_upload_download_and_safety() {
    let app = TestApp::with_config("wikiattach", |c| c.max_attachment_bytes = 4096).await;
    let ann = app.user("ann").await;
    app.project(&ann, "docs", false).await;
    let a = app.browser(&ann).await;
    let png: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let res = app
        .post_multipart(
            "/p/docs/wiki/Home/attachments",
            &a,
            &[("csrf_token", &a.csrf)],
            ("diagram.png", &png),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let dl = app
        .get(
            "/p/docs/wiki/Home/attachments/diagram.png",
            &Browser::anonymous(),
        )
        .await;
    assert_eq!(dl.status, StatusCode::OK);
    assert_eq!(dl.bytes, png, "bytes round-trip");
    assert_eq!(dl.header("content-type"), "image/png");
    assert_eq!(dl.header("x-content-type-options"), "nosniff");
    assert!(dl.header("content-disposition").starts_with("inline"));
    let page = app.get("/p/docs/wiki/Home/", &a).await;
    assert!(
        page.body
            .contains("<img src=\"/p/docs/wiki/Home/attachments/diagram.png\""),
        "images shown inline"
    );

    // Anything a browser could run is a download.
    for (name, body) in [
        ("x.html", &b"<script>alert(1)</script>"[..]),
        ("x.svg", &b"<svg onload=alert(1)/>"[..]),
        ("x.js", &b"alert(1)"[..]),
    ] {
        let res = app
            .post_multipart(
                "/p/docs/wiki/Home/attachments",
                &a,
                &[("csrf_token", &a.csrf)],
                (name, body),
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        let dl = app
            .get(
                &format!("/p/docs/wiki/Home/attachments/{name}"),
                &Browser::anonymous(),
            )
            .await;
        assert!(
            dl.header("content-disposition").starts_with("attachment"),
            "{name}"
        );
        assert_eq!(dl.header("x-content-type-options"), "nosniff");
        assert!(dl.header("content-security-policy").contains("sandbox"));
    }

    // Too big: refused with a message, nothing stored.
    let big = vec![7u8; 5000];
    let res = app
        .post_multipart(
            "/p/docs/wiki/Home/attachments",
            &a,
            &[("csrf_token", &a.csrf)],
            ("big.bin", &big),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.body.contains("larger than the limit of 4 kB"),
        "{}",
        res.body
    );
    assert_eq!(
        app.count("attachments", bson::doc! {"filename": "big.bin"})
            .await,
        0
    );

    // Path-like names are reduced to a plain file name; the file stays under the data dir.
    let res = app
        .post_multipart(
            "/p/docs/wiki/Home/attachments",
            &a,
            &[("csrf_token", &a.csrf)],
            ("../../x", b"hello"),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let rec = app
        .forge
        .db()
        .collection::<bson::Document>("attachments")
        .find_one(bson::doc! {"filename": "x"})
        .await
        .unwrap()
        .unwrap();
    let sha = rec.get_str("sha256").unwrap();
    assert!(
        app.data
            .path()
            .join("attachments")
            .join(&sha[..2])
            .join(sha)
            .is_file()
    );
    assert!(!app.data.path().parent().unwrap().join("x").exists());

    // Without the CSRF field the upload is refused.
    let res = app
        .post_multipart(
            "/p/docs/wiki/Home/attachments",
            &a,
            &[],
            ("y.txt", b"y"),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    // REST: upload with a token, list, download.
    let token = app.token(&ann).await;
    let res = app
        .post_multipart(
            "/rest/p/docs/wiki/Home/attachments",
            &Browser::anonymous(),
            &[],
            ("notes.txt", b"plain notes"),
            Some(&token),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let list = app
        .api(
            Method::GET,
            "/rest/p/docs/wiki/Home/attachments",
            None,
            None,
        )
        .await
        .json();
    let names: Vec<_> = list["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["filename"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"notes.txt".to_owned()) && names.contains(&"diagram.png".to_owned()));
    let dl = app
        .api(
            Method::GET,
            "/rest/p/docs/wiki/Home/attachments/notes.txt",
            None,
            None,
        )
        .await;
    assert_eq!(dl.body, "plain notes");
    // REST uploads by cookie need the CSRF header.
    let res = app
        .post_multipart(
            "/rest/p/docs/wiki/Home/attachments",
            &a,
            &[],
            ("z.txt", b"z"),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    // Delete by an editor.
    let res = app
        .post_form("/p/docs/wiki/Home/attachments/notes.txt/delete", &a, &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/p/docs/wiki/Home/attachments/notes.txt", &a)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn wiki_permissions() {
    let app = TestApp::new("wikiperms").await;
    let owner = app.user("owner").await;
    let outsider = app.user("outsider").await;
    let member = app.user("member").await;
    let pub_p = app.project(&owner, "open", false).await;
    let priv_p = app.project(&owner, "closed", true).await;
    app.add_member(&pub_p, &member, Role::Member).await;
    app.add_member(&priv_p, &member, Role::Member).await;
    let o = app.browser(&owner).await;
    app.post_multipart(
        "/p/closed/wiki/Home/attachments",
        &o,
        &[("csrf_token", &o.csrf)],
        ("secret.txt", b"secret"),
        None,
    )
    .await;

    // Anonymous visitors read public pages but cannot edit them.
    let anon = Browser::anonymous();
    assert_eq!(
        app.get("/p/open/wiki/Home/", &anon).await.status,
        StatusCode::OK
    );
    let edit = app.get("/p/open/wiki/Home/edit", &anon).await;
    assert_eq!(edit.status, StatusCode::SEE_OTHER);
    assert!(edit.location().starts_with("/auth/login"));
    assert_eq!(
        app.post_form(
            "/p/open/wiki/Home/edit",
            &anon,
            &edit_fields("vandal", "1", "")
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    let put = app
        .api(
            Method::PUT,
            "/rest/p/open/wiki/Home",
            None,
            Some(json!({"text": "vandal", "base_version": 1})),
        )
        .await;
    assert_eq!(put.status, StatusCode::UNAUTHORIZED);
    // A logged-in outsider may read but not write.
    let ob = app.browser(&outsider).await;
    assert_eq!(
        app.post_form(
            "/p/open/wiki/Home/edit",
            &ob,
            &edit_fields("vandal", "1", "")
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let otok = app.token(&outsider).await;
    assert_eq!(
        app.api(
            Method::PUT,
            "/rest/p/open/wiki/Home",
            Some(&otok),
            Some(json!({"text": "v", "base_version": 1}))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.api(Method::GET, "/rest/p/open/wiki/Home", None, None)
            .await
            .json()["version"],
        1,
        "nothing changed"
    );
    // Members edit; only developers and admins delete.
    let mb = app.browser(&member).await;
    assert_eq!(
        app.post_form(
            "/p/open/wiki/Home/edit",
            &mb,
            &edit_fields("member text", "1", "")
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.post_form("/p/open/wiki/Home/delete", &mb, &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_form("/p/open/wiki/Home/delete", &o, &[])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.get("/p/open/wiki/Home/", &anon).await.status,
        StatusCode::NOT_FOUND,
        "deleted pages are hidden"
    );
    assert_eq!(
        app.get("/p/open/wiki/Home/", &o).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.post_form("/p/open/wiki/Home/undelete", &o, &[])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.get("/p/open/wiki/Home/", &anon).await.status,
        StatusCode::OK
    );

    // A private project's wiki is invisible to outsiders: pages, REST and attachments.
    for path in [
        "/p/closed/wiki/",
        "/p/closed/wiki/Home/",
        "/p/closed/wiki/Home/history",
        "/p/closed/wiki/Home/attachments/secret.txt",
        "/p/closed/wiki/_index",
    ] {
        assert_eq!(
            app.get(path, &anon).await.status,
            StatusCode::NOT_FOUND,
            "anonymous {path}"
        );
        assert_eq!(
            app.get(path, &ob).await.status,
            StatusCode::NOT_FOUND,
            "outsider {path}"
        );
    }
    for path in [
        "/rest/p/closed/wiki/",
        "/rest/p/closed/wiki/Home",
        "/rest/p/closed/wiki/Home/attachments/secret.txt",
    ] {
        assert_eq!(
            app.api(Method::GET, path, None, None).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_eq!(
            app.api(Method::GET, path, Some(&otok), None).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let mtok = app.token(&member).await;
    assert_eq!(
        app.api(
            Method::GET,
            "/rest/p/closed/wiki/Home/attachments/secret.txt",
            Some(&mtok),
            None
        )
        .await
        .body,
        "secret"
    );
}

#[tokio::test]
async fn index_labels_recent_home_and_rest_listing() {
    let app = TestApp::new("wikiindex").await;
    let ann = app.user("ann").await;
    app.project(&ann, "docs", false).await;
    let token = app.token(&ann).await;
    for (name, labels) in [
        ("Alpha", vec!["guide"]),
        ("Beta", vec!["guide", "api"]),
        ("Gamma", vec![]),
    ] {
        let res = app
            .api(
                Method::PUT,
                &format!("/rest/p/docs/wiki/{name}"),
                Some(&token),
                Some(json!({"text": format!("{name} text"), "labels": labels, "base_version": 0})),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
    }
    let anon = Browser::anonymous();
    let index = app.get("/p/docs/wiki/_index", &anon).await;
    for n in ["Alpha", "Beta", "Gamma", "Home"] {
        assert!(index.body.contains(&format!(">{n}</a>")), "{n} in index");
    }
    let labels = app.get("/p/docs/wiki/_labels", &anon).await;
    assert!(labels.body.contains("guide (2)") && labels.body.contains("api (1)"));
    let guide = app.get("/p/docs/wiki/_labels?label=guide", &anon).await;
    assert!(
        guide.body.contains(">Alpha</a>")
            && guide.body.contains(">Beta</a>")
            && !guide.body.contains(">Gamma</a>")
    );
    let recent = app.get("/p/docs/wiki/_recent", &anon).await;
    let (g, a) = (
        recent.body.find(">Gamma</a>").unwrap(),
        recent.body.find(">Alpha</a>").unwrap(),
    );
    assert!(g < a, "most recent first");
    let list = app
        .api(Method::GET, "/rest/p/docs/wiki/", None, None)
        .await
        .json();
    assert_eq!(list["pages"].as_array().unwrap().len(), 4);

    // The home page is configurable.
    let a = app.browser(&ann).await;
    assert_eq!(
        app.post_form("/p/docs/wiki/_admin", &a, &[("home", "Alpha")])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.get("/p/docs/wiki/", &anon).await.location(),
        "/p/docs/wiki/Alpha/"
    );
    assert_eq!(
        app.get("/p/docs/wiki/_admin", &anon).await.status,
        StatusCode::SEE_OTHER
    );
    // Deletion through REST.
    assert_eq!(
        app.api(
            Method::DELETE,
            "/rest/p/docs/wiki/Gamma",
            Some(&token),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.api(Method::GET, "/rest/p/docs/wiki/Gamma", None, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Bad page names get a clear refusal.
    let bad = app
        .api(
            Method::PUT,
            "/rest/p/docs/wiki/_secret",
            Some(&token),
            Some(json!({"text": "x", "base_version": 0})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.json()["error"]["fields"]["name"]
            .as_str()
            .unwrap()
            .contains("Page names")
    );
}
