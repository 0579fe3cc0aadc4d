//! Statistics against the real store: events logged with fixed contexts, aggregated by
//! `run_analytics`, read back through Zarkov's `/q`, the REST series, the statistics page and
//! its CSV files, the small figures on other pages, and the live WebSocket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use bson::{Bson, DateTime};
use chrono::{Datelike, NaiveDate, Utc};
use common::{Browser, TestApp};
use forge_tools::events::{Event, EventContext};
use forge_tools::projects::Neighborhood;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn day(days_ago: u64) -> NaiveDate {
    today() - chrono::Days::new(days_ago)
}

fn ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
}

fn iso(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn context(project: &str, tool: Option<&str>, user: Option<&str>) -> EventContext {
    EventContext {
        neighborhood: Some("p".into()),
        project: Some(project.into()),
        tool: tool.map(str::to_owned),
        user: user.map(str::to_owned),
        ..Default::default()
    }
}

/// `n` events of `kind` in `project`, at noon `days_ago` days back (today: a second ago, so
/// never in the future).
async fn log(app: &TestApp, kind: &str, ctx: EventContext, days_ago: u64, n: usize) {
    let at = if days_ago == 0 {
        DateTime::from_millis(Utc::now().timestamp_millis() - 1000)
    } else {
        DateTime::from_millis(ms(day(days_ago)) + 12 * 3_600_000)
    };
    let events = (0..n)
        .map(|_| Event {
            timestamp: at,
            kind: kind.into(),
            context: ctx.clone(),
            extra: Bson::Null,
        })
        .collect();
    app.forge.events().append(events).await.unwrap();
}

async fn aggregate(app: &TestApp) {
    app.forge.events().flush().await;
    app.forge.run_analytics(false).await.unwrap();
}

/// The part of the statistics page about one series.
fn section<'a>(body: &'a str, series: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"series-{series}\""))
        .unwrap_or_else(|| panic!("no section for {series}"));
    let end = start + body[start..].find("</section>").unwrap();
    &body[start..end]
}

#[tokio::test]
async fn figures_through_q_rest_page_and_csv() {
    let app = TestApp::new("stats").await;
    let owner = app.user("olive").await;
    app.project(&owner, "stats1", false).await;
    app.project(&owner, "other1", false).await;
    // Clones: 2 two days ago, 3 today; a commit today; 4 views of the wiki today; and some
    // clones of another project that must not show here.
    log(
        &app,
        "repo.clone",
        context("stats1", Some("code"), None),
        2,
        2,
    )
    .await;
    log(
        &app,
        "repo.clone",
        context("stats1", Some("code"), None),
        0,
        3,
    )
    .await;
    log(
        &app,
        "repo.commit",
        context("stats1", Some("code"), Some("olive")),
        0,
        1,
    )
    .await;
    log(
        &app,
        "page.view",
        context("stats1", Some("wiki"), Some("olive")),
        0,
        4,
    )
    .await;
    log(
        &app,
        "repo.clone",
        context("other1", Some("code"), None),
        0,
        5,
    )
    .await;
    aggregate(&app).await;
    let anon = Browser::anonymous();

    // Zarkov's /q: keys ending in a date come as epoch milliseconds, in key order.
    let q = app.get("/q?c=project_day&p=stats1/clones/", &anon).await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.body);
    assert_eq!(
        q.json(),
        json!({"v": [[ms(day(2)), 2], [ms(today()), 3]]}),
        "{}",
        q.body
    );
    // Answers are cached until a run changes the outputs: one more clone shows at once.
    let path = "/q?c=project_day&p=other1/clones/";
    let q = app.get(path, &anon).await;
    assert_eq!(q.json(), json!({"v": [[ms(today()), 5]]}), "{}", q.body);
    log(
        &app,
        "repo.clone",
        context("other1", Some("code"), None),
        0,
        1,
    )
    .await;
    aggregate(&app).await;
    let q = app.get(path, &anon).await;
    assert_eq!(q.json(), json!({"v": [[ms(today()), 6]]}), "{}", q.body);
    // And a cached answer is still checked against who asks: the project made private
    // hides it from the anonymous viewer who read it a moment ago.
    let db = app.forge.db();
    let mut other = forge_tools::projects::get(db, Neighborhood::Projects, "other1")
        .await
        .unwrap()
        .unwrap();
    forge_tools::acl::set_anonymous_read(&mut other.acl, false);
    forge_tools::projects::save(db, &other).await.unwrap();
    let hidden = app.get(path, &anon).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);
    let olive = app.browser(&owner).await;
    let q = app.get(path, &olive).await;
    assert_eq!(q.json(), json!({"v": [[ms(today()), 6]]}), "{}", q.body);

    let first = format!("stats1/clones/{}", iso(day(1)));
    let q = app
        .get(
            &format!("/q?c=project_day&p=stats1/clones/&b={first}"),
            &anon,
        )
        .await;
    assert_eq!(q.json(), json!({"v": [[ms(today()), 3]]}));
    let last = format!("stats1/clones/{}", iso(day(1)));
    let q = app
        .get(
            &format!("/q?c=project_day&p=stats1/clones/&e={last}"),
            &anon,
        )
        .await;
    assert_eq!(q.json(), json!({"v": [[ms(day(2)), 2]]}));
    let q = app.get("/q?c=project_month&p=stats1/", &anon).await;
    let rows = q.json()["v"].as_array().unwrap().clone();
    let clones_this_month: i64 = rows
        .iter()
        .filter(|r| r[0] == json!(ms(today().with_day(1).unwrap())))
        .map(|r| r[1].as_i64().unwrap())
        .sum();
    assert!(clones_this_month >= 3, "{}", q.body);
    for bad in ["/q?p=stats1/", "/q?c=project_day", "/q?c=&p=stats1/", "/q"] {
        let r = app.get(bad, &anon).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.json()["error"]["code"], "bad_request", "{bad}");
    }
    let r = app.get("/q?c=nope&p=stats1/", &anon).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "not_found");

    // REST: a series with its empty days as zeros.
    let from = iso(day(3));
    let to = iso(today());
    let r = app
        .api(
            Method::GET,
            &format!("/rest/p/stats1/stats?series=clones&interval=day&from={from}&to={to}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"series": "clones", "interval": "day", "v": [
            [ms(day(3)), 0], [ms(day(2)), 2], [ms(day(1)), 0], [ms(today()), 3]
        ]})
    );
    // Defaults: the last 30 days, by day.
    let r = app
        .api(
            Method::GET,
            "/rest/p/stats1/stats?series=commits",
            None,
            None,
        )
        .await;
    let v = r.json()["v"].as_array().unwrap().clone();
    assert_eq!(v.len(), 30);
    assert_eq!(v[29], json!([ms(today()), 1]));
    assert_eq!(v[0], json!([ms(day(29)), 0]));
    // By month: the month's first day; the two clone days may straddle a month.
    let r = app
        .api(
            Method::GET,
            &format!("/rest/p/stats1/stats?series=clones&interval=month&from={from}&to={to}"),
            None,
            None,
        )
        .await;
    let mut want = std::collections::BTreeMap::new();
    for (d, n) in [(day(3), 0), (day(2), 2), (today(), 3)] {
        *want.entry(ms(d.with_day(1).unwrap())).or_insert(0) += n;
    }
    let want: Vec<_> = want.into_iter().map(|(t, n)| json!([t, n])).collect();
    assert_eq!(r.json()["v"], json!(want), "{}", r.body);
    assert_eq!(r.json()["interval"], "month");
    let r = app
        .api(
            Method::GET,
            "/rest/p/stats1/stats?series=views:wiki",
            None,
            None,
        )
        .await;
    assert_eq!(r.json()["v"][29], json!([ms(today()), 4]));
    for bad in [
        "/rest/p/stats1/stats",
        "/rest/p/stats1/stats?series=nope",
        "/rest/p/stats1/stats?series=views&interval=week",
        "/rest/p/stats1/stats?series=views&from=yesterday",
        "/rest/p/stats1/stats?series=views&from=2026-02-03&to=2026-02-01",
    ] {
        let r = app.api(Method::GET, bad, None, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "bad_request", "{bad}");
    }
    let r = app
        .api(Method::GET, "/rest/p/nosuch/stats?series=views", None, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let spec = app.api(Method::GET, "/rest/openapi.json", None, None).await;
    let spec = spec.json();
    assert!(spec["paths"]["/rest/p/{project}/stats"]["get"].is_object());
    assert!(spec["paths"]["/q"]["get"].is_object());

    // The page: a table per series, readable without scripts, newest first.
    let page = app.get("/p/stats1/stats/", &anon).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let clones = section(&page.body, "clones");
    assert!(
        clones.contains("<strong data-figure>5</strong>"),
        "{clones}"
    );
    assert!(clones.contains("<caption"), "{clones}");
    assert!(clones.contains("<th scope=\"col\">Day</th>"), "{clones}");
    for (d, n) in [(today(), 3), (day(1), 0), (day(2), 2)] {
        let row = format!(
            "<tr data-t=\"{}\"><th scope=\"row\">{}</th><td>{n}</td></tr>",
            ms(d),
            iso(d)
        );
        assert!(clones.contains(&row), "{row} in {clones}");
    }
    assert!(
        clones.find(&iso(today())).unwrap() < clones.find(&iso(day(2))).unwrap(),
        "newest first"
    );
    assert!(section(&page.body, "commits").contains("<strong data-figure>1</strong>"));
    for s in [
        "views",
        "visitors",
        "commits",
        "pushes",
        "wiki_edits",
        "tickets_opened",
        "tickets_closed",
        "posts",
        "archives",
    ] {
        section(&page.body, s);
    }
    assert!(page.body.contains("data-live=\"/p/stats1/stats/live\""));
    assert!(
        page.body
            .contains("/static/vendor/uplot-1.6.32/uPlot.iife.min.js")
    );
    // The page's own files by their digested names.
    let own: Vec<&str> = page
        .body
        .split(['"', '\''])
        .filter(|u| u.starts_with("/static/") && !u.starts_with("/static/vendor/"))
        .collect();
    for name in ["stats", "forge", "highlight"] {
        assert!(
            own.iter()
                .any(|u| u.starts_with(&format!("/static/{name}."))
                    && u.split('.').nth(1).is_some_and(|d| d.len() == 10)),
            "{name}: {own:?}"
        );
    }
    let own: Vec<String> = own.into_iter().map(str::to_owned).collect();
    let csv_link = format!(
        "/p/stats1/stats/clones.csv?interval=day&#38;from={}&#38;to={}",
        iso(day(29)),
        iso(today())
    );
    assert!(clones.contains(&csv_link), "{clones}");
    assert!(page.body.contains("?range=12m") && page.body.contains("?range=all"));
    // The other ranges go by month.
    let month = ms(today().with_day(1).unwrap());
    for range in ["12m", "all"] {
        let page = app
            .get(&format!("/p/stats1/stats/?range={range}"), &anon)
            .await;
        assert_eq!(page.status, StatusCode::OK);
        let clones = section(&page.body, "clones");
        assert!(clones.contains("<th scope=\"col\">Month</th>"), "{clones}");
        assert!(
            clones.contains(&format!("<tr data-t=\"{month}\">")),
            "{range}: {clones}"
        );
        assert!(
            clones.contains("<strong data-figure>5</strong>"),
            "{clones}"
        );
    }
    let page = app.get("/p/stats1/stats/?range=all", &anon).await;
    assert_eq!(
        section(&page.body, "clones").matches("<tr data-t=").count(),
        1,
        "all time starts at the project's creation"
    );
    assert_eq!(
        app.get("/p/stats1/stats/?range=week", &anon).await.status,
        StatusCode::BAD_REQUEST
    );
    // Linked from the project's navigation and home.
    let home = app.get("/p/stats1/", &anon).await;
    assert!(home.body.contains("href=\"/p/stats1/stats/\""));
    assert_eq!(
        app.get("/p/stats1/stats", &anon).await.location(),
        "/p/stats1/stats/"
    );

    // CSV: one series, and all of them side by side.
    let csv = app
        .get(
            &format!("/p/stats1/stats/clones.csv?interval=day&from={from}&to={to}"),
            &anon,
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    assert!(csv.header("content-disposition").starts_with("attachment"));
    assert_eq!(
        csv.body,
        format!(
            "date,clones\n{},0\n{},2\n{},0\n{},3\n",
            iso(day(3)),
            iso(day(2)),
            iso(day(1)),
            iso(today())
        )
    );
    let all = app
        .get(
            &format!("/p/stats1/stats/all.csv?interval=day&from={to}&to={to}"),
            &anon,
        )
        .await;
    let lines: Vec<&str> = all.body.lines().collect();
    assert_eq!(
        lines[0],
        "date,views,visitors,clones,commits,pushes,wiki_edits,tickets_opened,tickets_closed,posts,archives"
    );
    let today_row: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(today_row[0], iso(today()));
    assert_eq!((today_row[3], today_row[4]), ("3", "1"));
    assert!(today_row[1].parse::<i64>().unwrap() >= 4, "{}", all.body);
    let csv = app
        .get("/p/stats1/stats/views:wiki.csv?interval=month", &anon)
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.starts_with("date,views:wiki\n"), "{}", csv.body);
    assert_eq!(
        app.get("/p/stats1/stats/nope.csv", &anon).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/p/stats1/stats/clones.txt", &anon).await.status,
        StatusCode::NOT_FOUND
    );

    // The vendored chart library and the page's script, served by the forge for a year.
    for (path, ctype) in [
        (
            "/static/vendor/uplot-1.6.32/uPlot.iife.min.js",
            "text/javascript",
        ),
        ("/static/vendor/uplot-1.6.32/uPlot.min.css", "text/css"),
        ("/static/vendor/uplot-1.6.32/LICENSE", "text/plain"),
    ]
    .into_iter()
    .chain(own.iter().map(|u| {
        let ty = if u.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        (u.as_str(), ty)
    })) {
        let r = app.get(path, &anon).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.header("content-type").starts_with(ctype), "{path}");
        assert!(r.header("cache-control").contains("immutable"), "{path}");
    }
    // Plain names still answer, briefly cached (pages cached before a new build ask them);
    // a digest that is not the file's is not found.
    let plain = app.get("/static/forge.css", &anon).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(!plain.header("cache-control").contains("immutable"));
    let stale = app.get("/static/forge.0000000000.css", &anon).await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn small_figures_on_other_pages() {
    let app = TestApp::new("stats-figures").await;
    let root = app.user_with("rooty", true).await;
    let owner = app.user("fig").await;
    app.project(&owner, "figs", false).await;
    log(
        &app,
        "repo.clone",
        context("figs", Some("code"), None),
        1,
        7,
    )
    .await;
    log(
        &app,
        "repo.fetch",
        context("figs", Some("code"), None),
        0,
        1,
    )
    .await;
    log(
        &app,
        "page.view",
        context("figs", Some("wiki"), Some("fig")),
        0,
        6,
    )
    .await;
    log(
        &app,
        "wiki.page.edit",
        context("figs", Some("wiki"), Some("fig")),
        0,
        2,
    )
    .await;
    log(
        &app,
        "repo.commit",
        context("figs", Some("code"), Some("fig")),
        0,
        9,
    )
    .await;
    aggregate(&app).await;
    let anon = Browser::anonymous();

    let repo = app.get("/p/figs/code/", &anon).await;
    assert_eq!(repo.status, StatusCode::OK);
    assert!(
        repo.body
            .contains("<strong>8</strong> clones in the last 30 days"),
        "{}",
        repo.body
    );
    let ob = app.browser(&owner).await;
    let wiki = app.get("/p/figs/wiki/", &ob).await;
    let home = wiki.location().to_owned();
    assert!(!home.is_empty(), "the wiki has a home page");
    let page = app.get(&home, &ob).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("6 wiki views in the last 30 days"),
        "{}",
        page.body
    );

    // A user's profile: what they made in public projects over 12 months.
    let profile = app.get("/u/fig/", &anon).await;
    assert_eq!(profile.status, StatusCode::OK);
    let body = common::decode(&profile.body);
    assert!(body.contains("<strong>9</strong> commits"), "{body}");
    assert!(body.contains("<strong>2</strong> wiki edits"), "{body}");

    // The site's figures for site admins.
    let admin = app.get("/nf/admin/", &app.browser(&root).await).await;
    assert_eq!(admin.status, StatusCode::OK);
    // Two accounts and the two personal projects plus `figs` were created through the domain.
    assert!(
        admin
            .body
            .contains("<strong>2</strong> Sign-ups, last 30 days"),
        "{}",
        admin.body
    );
    assert!(admin.body.contains("Active users today"));

    // No events yet: zeros, not a missing figure.
    let fresh = app.user("fresh").await;
    app.project(&fresh, "empty1", false).await;
    let repo = app.get("/p/empty1/code/", &anon).await;
    assert!(
        repo.body
            .contains("<strong>0</strong> clones in the last 30 days")
    );
}

/// Reads messages until one satisfies `want` (within 5 s); returns every update seen.
async fn updates_until(
    ws: &mut common::WsClient,
    want: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no matching update within 5 s; saw {seen:?}"))
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            let done = want(&v);
            seen.push(v);
            if done {
                return seen;
            }
        }
    }
}

/// Whatever arrives within `wait`.
async fn drain(ws: &mut common::WsClient, wait: Duration) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = msg {
            seen.push(serde_json::from_str(&t).unwrap());
        }
    }
    seen
}

#[tokio::test]
async fn the_live_socket_carries_its_projects_updates_only() {
    let app = TestApp::new("stats-live").await;
    let owner = app.user("livia").await;
    app.project(&owner, "live1", false).await;
    app.project(&owner, "live2", false).await;
    let addr = app.serve().await;
    let anon = Browser::anonymous();
    let mut one = common::ws_connect(addr, "/p/live1/stats/live", &anon)
        .await
        .unwrap();
    let mut two = common::ws_connect(addr, "/p/live2/stats/live", &anon)
        .await
        .unwrap();
    // A personal project's socket hears of its own figures under `u/<name>`.
    let mut mine = common::ws_connect(addr, "/u/livia/stats/live", &anon)
        .await
        .unwrap();

    log(
        &app,
        "repo.clone",
        context("live2", Some("code"), None),
        0,
        2,
    )
    .await;
    log(
        &app,
        "repo.clone",
        context("live1", Some("code"), None),
        0,
        1,
    )
    .await;
    let personal = EventContext {
        neighborhood: Some("u".into()),
        project: Some("livia".into()),
        tool: Some("code".into()),
        ..Default::default()
    };
    log(&app, "repo.push", personal, 0, 1).await;
    aggregate(&app).await;

    let clones_today = |v: &serde_json::Value| {
        v["series"] == "clones" && v["interval"] == "day" && v["t"] == json!(ms(today()))
    };
    let mut seen = updates_until(&mut one, clones_today).await;
    let got = seen.last().unwrap().clone();
    assert_eq!(got["project"], "live1");
    assert_eq!(got["v"], 1);
    seen.extend(drain(&mut one, Duration::from_millis(300)).await);
    assert!(
        seen.iter().all(|u| u["project"] == "live1"),
        "only its project's updates: {seen:?}"
    );
    let seen = updates_until(&mut two, clones_today).await;
    assert_eq!(seen.last().unwrap()["v"], 2);
    assert!(seen.iter().all(|u| u["project"] == "live2"), "{seen:?}");
    let seen = updates_until(&mut mine, |v| v["series"] == "pushes").await;
    assert!(seen.iter().all(|u| u["project"] == "u/livia"), "{seen:?}");

    // New events, a new run: the new value arrives.
    log(
        &app,
        "repo.clone",
        context("live1", Some("code"), None),
        0,
        2,
    )
    .await;
    aggregate(&app).await;
    let seen = updates_until(&mut one, |v| clones_today(v) && v["v"] == 3).await;
    assert!(seen.iter().all(|u| u["project"] == "live1"));

    // Pings are answered; anything else closes the socket.
    one.send(Message::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), one.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match msg {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"hi");
                break;
            }
            // Updates still on their way.
            Message::Text(_) => {}
            other => panic!("expected a pong, got {other:?}"),
        }
    }
    one.send(Message::Text("hello".into())).await.unwrap();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), one.next())
            .await
            .unwrap();
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1008);
                break;
            }
            Some(Ok(Message::Text(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    // Not a WebSocket request: refused, not a page.
    let plain = app.get("/p/live1/stats/live", &anon).await;
    assert!(plain.status.is_client_error(), "{}", plain.status);
    // Another site's page may not open one with a visitor's cookies.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/p/live1/stats/live")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
        }
        other => panic!(
            "cross-site socket opened: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}

#[tokio::test]
async fn user_and_site_figures_through_q() {
    let app = TestApp::new("stats-q").await;
    let root = app.user_with("rootq", true).await;
    let ursula = app.user("ursula").await;
    let victor = app.user("victor").await;
    app.project(&ursula, "uproj", false).await;
    log(
        &app,
        "repo.commit",
        context("uproj", Some("code"), Some("ursula")),
        0,
        2,
    )
    .await;
    aggregate(&app).await;
    let month = ms(today().with_day(1).unwrap());
    let path = "/q?c=user_month&p=ursula/commits/";
    let own = app.get(path, &app.browser(&ursula).await).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.json(), json!({"v": [[month, 2]]}));
    assert_eq!(
        app.get(path, &app.browser(&victor).await).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(path, &Browser::anonymous()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let admin = app.browser(&root).await;
    assert_eq!(app.get(path, &admin).await.status, StatusCode::OK);
    // Site figures: the sign-ups of today, as a site admin.
    let site = app.get("/q?c=site_day&p=site/signups/", &admin).await;
    assert_eq!(site.status, StatusCode::OK);
    assert_eq!(site.json()["v"][0][1], 3, "{}", site.body);
    // A bearer token works as well as the session.
    let token = app.token(&root).await;
    let r = app
        .api(Method::GET, "/q?c=site_day&p=site/", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
