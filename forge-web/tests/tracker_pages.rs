//! The tracker's pages, as a person with a browser uses them, on the real store: filing a
//! ticket through the form (a refused form keeps every value), the list with its filters,
//! query, sorting, columns, pages and saved searches, bulk edit, editing with a stale form
//! (merged when it can be, a conflict that loses nothing when not), the settings page adding
//! a custom field and a milestone that tickets then use, private tickets, anonymous tickets
//! and their moderation, votes, moves and deletes, and hostile strings that never come back
//! unescaped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::http::{Method, StatusCode};
use common::{Browser, Res, TestApp, viewer};
use forge_tools::acl::Role;
use forge_tools::tools::tracker::actions::{self, NewTicket};
use forge_tools::tools::tracker::config::TrackerConfig;
use forge_tools::users::User;
use serde_json::json;

/// Files a ticket through the domain (for setting the scene quickly).
async fn seed(app: &TestApp, u: &User, project: &str, summary: &str, labels: &[&str]) -> i64 {
    let ctx = app.ctx_of(u, project).await;
    let tool = ctx.tool("tickets").unwrap().clone();
    let new = NewTicket {
        summary: summary.into(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        ..NewTicket::default()
    };
    actions::create(&app.forge, &viewer(u), &ctx, &tool, new)
        .await
        .unwrap()
        .ticket_num
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity.strip_prefix('#').and_then(|n| {
                let code = match n.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => n.parse().ok(),
                };
                code.and_then(char::from_u32)
            }),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let start = tag.find(&pat)? + pat.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// What a browser sends from the form posting to `action`, as the page filled it in
/// (hidden and text inputs, checked boxes, textareas, the selected option of each select).
fn form_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let at = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posting to {action}"));
    let end = html[at..].find("</form>").unwrap() + at;
    let mut rest = &html[at..end];
    let mut out = Vec::new();
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let tag_end = rest.find('>').unwrap();
        let tag = &rest[..=tag_end];
        if tag.starts_with("<input") {
            let kind = attr(tag, "type").unwrap_or_else(|| "text".into());
            if let Some(name) = attr(tag, "name") {
                match kind.as_str() {
                    "checkbox" | "radio" => {
                        if tag.contains(" checked") {
                            out.push((name, attr(tag, "value").unwrap_or_else(|| "on".into())));
                        }
                    }
                    "submit" | "button" | "file" => {}
                    _ => out.push((name, attr(tag, "value").unwrap_or_default())),
                }
            }
        } else if tag.starts_with("<textarea") {
            let name = attr(tag, "name").unwrap();
            let close = rest.find("</textarea>").unwrap();
            let content = &rest[tag_end + 1..close];
            // The parser drops one newline right after the opening tag.
            let content = content.strip_prefix('\n').unwrap_or(content);
            out.push((name, unescape(content)));
            rest = &rest[close..];
            continue;
        } else if tag.starts_with("<select") {
            let name = attr(tag, "name").unwrap();
            let close = rest.find("</select>").unwrap();
            let body = &rest[tag_end + 1..close];
            let mut first = None;
            let mut chosen = None;
            for opt in body.split("<option").skip(1) {
                let head_end = opt.find('>').unwrap();
                let head = &opt[..head_end];
                let text_end = opt.find("</option>").unwrap_or(opt.len());
                let value =
                    attr(head, "value").unwrap_or_else(|| unescape(&opt[head_end + 1..text_end]));
                if first.is_none() {
                    first = Some(value.clone());
                }
                if head.contains(" selected") {
                    chosen = Some(value);
                }
            }
            if let Some(v) = chosen.or(first) {
                out.push((name, v));
            }
            rest = &rest[close..];
            continue;
        }
        rest = &rest[1..];
    }
    out
}

fn set(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    match fields.iter_mut().find(|(k, _)| k == name) {
        Some(f) => f.1 = value.to_owned(),
        None => fields.push((name.to_owned(), value.to_owned())),
    }
}

fn value<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

async fn submit(app: &TestApp, b: &Browser, action: &str, fields: &[(String, String)]) -> Res {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    app.post_raw(action, b, &pairs).await
}

/// The flash message a response sets for the next page.
fn flash(res: &Res) -> String {
    let raw = res.set_cookie("forge_flash").unwrap_or_default();
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("m={raw}"))
        .ok()
        .and_then(|mut v| v.pop())
        .map(|(_, m)| m)
        .unwrap_or_default()
}

/// The ticket numbers a list page shows, in order.
fn listed(html: &str) -> Vec<i64> {
    html.split("<tr id=\"ticket-")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

async fn ok_page(app: &TestApp, path: &str, b: &Browser) -> String {
    let res = app.get(path, b).await;
    assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.body);
    res.body
}

#[tokio::test]
async fn filing_through_the_form_keeps_values_and_lands_on_the_ticket() {
    let app = TestApp::new("trpages-new").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "web", false).await;
    let b = app.browser(&bob).await;

    let html = ok_page(&app, "/p/web/tickets/new", &b).await;
    // The honeypot is there for robots only.
    let hp = forge_tools::discussion::HONEYPOT;
    let at = html
        .find(&format!("name=\"{hp}\""))
        .expect("honeypot input");
    let input_start = html[..at].rfind('<').unwrap();
    let input = &html[input_start..at + html[at..].find('>').unwrap()];
    assert!(input.contains("tabindex=\"-1\"") && input.contains("autocomplete=\"off\""));
    let wrapper = &html[..input_start];
    let div = &wrapper[wrapper.rfind("<div").unwrap()..];
    assert!(
        div.contains("aria-hidden=\"true\"") && div.contains("left:-10000px"),
        "{div}"
    );
    // A plain reporter does not choose the status.
    assert!(!html.contains("name=\"status\""));

    // No summary: the form again, with everything typed and the message by the field.
    let mut fields = form_fields(&html, "/p/web/tickets/new");
    set(&mut fields, "description", "Steps:\n1. open the **page**");
    set(&mut fields, "labels", "ui, needs-info");
    set(&mut fields, "assigned_to", "nobody-such");
    let res = submit(&app, &b, "/p/web/tickets/new", &fields).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.body.contains("A ticket needs a summary"),
        "{}",
        res.body
    );
    assert!(res.body.contains("No user"));
    let back = form_fields(&res.body, "/p/web/tickets/new");
    assert_eq!(value(&back, "description"), "Steps:\n1. open the **page**");
    assert_eq!(value(&back, "labels"), "ui, needs-info");
    assert_eq!(value(&back, "assigned_to"), "nobody-such");

    // Fixed: filed, and the browser goes to the ticket.
    let mut fields = back;
    set(&mut fields, "summary", "The page does not open");
    set(&mut fields, "assigned_to", "");
    let res = submit(&app, &b, "/p/web/tickets/new", &fields).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), "/p/web/tickets/1/");
    assert_eq!(flash(&res), "Filed ticket #1.");
    let page = ok_page(&app, "/p/web/tickets/1/", &b).await;
    assert!(page.contains("The page does not open"));
    assert!(
        page.contains("<strong>page</strong>"),
        "description rendered"
    );
    assert!(page.contains(">needs-info</a>"));
    // Comments: the discussion section under the ticket.
    assert!(page.contains("id=\"discussion\""));
    let mut comment = form_fields(&page, "/p/web/tickets/_discuss/new");
    set(&mut comment, "text", "Seen it too, **twice**");
    let res = submit(&app, &b, "/p/web/tickets/_discuss/new", &comment).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert!(
        res.location().starts_with("/p/web/tickets/1/#"),
        "{}",
        res.location()
    );
    let page = ok_page(&app, "/p/web/tickets/1/", &b).await;
    assert!(
        page.contains("Seen it too, <strong>twice</strong>"),
        "{page}"
    );
    // Without the slash, to the ticket's address; garbage is no ticket.
    let r = app.get("/p/web/tickets/1", &b).await;
    assert_eq!(r.location(), "/p/web/tickets/1/");
    assert_eq!(
        app.get("/p/web/tickets/abc/", &b).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/p/web/tickets/99/", &b).await.status,
        StatusCode::NOT_FOUND
    );

    // A robot filling every field is refused.
    let mut robot = form_fields(&html, "/p/web/tickets/new");
    set(&mut robot, "summary", "cheap pills");
    set(&mut robot, hp, "http://spam.example");
    let res = submit(&app, &b, "/p/web/tickets/new", &robot).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get("/p/web/tickets/2/", &b).await.status,
        StatusCode::NOT_FOUND
    );

    // Anonymous visitors are sent to log in while the tracker does not take their tickets.
    let anon = Browser::anonymous();
    let r = app.get("/p/web/tickets/new", &anon).await;
    assert!(
        r.status.is_redirection() && r.location().starts_with("/auth/login"),
        "{}",
        r.status
    );
    let list = ok_page(&app, "/p/web/tickets/", &anon).await;
    assert!(
        !list.contains("/p/web/tickets/new\""),
        "no New ticket for them"
    );
}

#[tokio::test]
async fn list_filters_queries_sorts_pages_and_saves_searches() {
    let app = TestApp::new("trpages-list").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "web", false).await;
    let a = app.browser(&alice).await;
    let b = app.browser(&bob).await;
    assert_eq!(seed(&app, &alice, "web", "Banana crash", &["bug"]).await, 1);
    seed(&app, &alice, "web", "Apple layout", &["ui"]).await;
    seed(&app, &alice, "web", "Cherry zebra glitch", &["ui", "bug"]).await;

    let html = ok_page(&app, "/p/web/tickets/", &b).await;
    assert_eq!(listed(&html), vec![3, 2, 1], "newest first by default");
    assert!(html.contains("/p/web/tickets/new"), "New ticket");
    assert!(
        html.contains("Query syntax") && html.contains("status:open"),
        "help"
    );
    assert!(
        !html.contains("id=\"bulk-edit\""),
        "no bulk edit without update"
    );
    assert!(html.contains("q=assigned_to%3Ame"), "My tickets");

    // Close #1 through its page (alice may update).
    let page = ok_page(&app, "/p/web/tickets/1/", &a).await;
    let mut edit = form_fields(&page, "/p/web/tickets/1/edit");
    set(&mut edit, "status", "closed");
    let r = submit(&app, &a, "/p/web/tickets/1/edit", &edit).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    let open = ok_page(&app, "/p/web/tickets/", &b).await;
    assert_eq!(
        listed(&open),
        vec![3, 2],
        "the bare list shows open tickets"
    );
    let closed = ok_page(&app, "/p/web/tickets/?status=closed", &b).await;
    assert_eq!(listed(&closed), vec![1]);
    let bugs = ok_page(&app, "/p/web/tickets/?status=all&label=bug", &b).await;
    assert_eq!(listed(&bugs), vec![3, 1]);
    let open_bugs = ok_page(&app, "/p/web/tickets/?status=open&label=bug", &b).await;
    assert_eq!(listed(&open_bugs), vec![3]);
    let text = ok_page(&app, "/p/web/tickets/?q=zebra", &b).await;
    assert_eq!(listed(&text), vec![3], "free text, any status");
    let query = ok_page(&app, "/p/web/tickets/?status=all&q=-label%3Aui", &b).await;
    assert_eq!(listed(&query), vec![1]);

    // A query that does not parse: its message above an empty list, not an error page.
    let bad = app.get("/p/web/tickets/?q=status%3Anonsense", &b).await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.body.contains("id=\"query-error\""), "{}", bad.body);
    assert!(listed(&bad.body).is_empty());
    let bad_sort = app.get("/p/web/tickets/?sort=nonsense", &b).await;
    assert!(bad_sort.body.contains("cannot sort by"));
    let quote = app.get("/p/web/tickets/?label=a%22b", &b).await;
    assert!(quote.body.contains("double quote"));
    // Garbage paging is a 400.
    assert_eq!(
        app.get("/p/web/tickets/?page=abc", &b).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/p/web/tickets/?page=0", &b).await.status,
        StatusCode::BAD_REQUEST
    );

    // Sorting by a column, both ways, from the header links.
    let by_summary = ok_page(&app, "/p/web/tickets/?status=all&sort=summary+asc", &b).await;
    assert_eq!(listed(&by_summary), vec![2, 1, 3]);
    assert!(
        by_summary.contains("sort=summary+desc"),
        "the header flips the order"
    );
    let desc = ok_page(&app, "/p/web/tickets/?status=all&sort=summary+desc", &b).await;
    assert_eq!(listed(&desc), vec![3, 1, 2]);

    // Chosen columns.
    let cols = ok_page(
        &app,
        "/p/web/tickets/?status=all&cols=ticket_num,summary,votes",
        &b,
    )
    .await;
    assert!(cols.contains(">Votes</a>") && !cols.contains(">Owner</a>"));
    assert_eq!(listed(&cols), vec![3, 2, 1]);
    let default = ok_page(&app, "/p/web/tickets/?status=all", &b).await;
    assert!(default.contains(">Owner</a>") && !default.contains(">Votes</a>"));

    // Pages of 25.
    for i in 0..25 {
        seed(&app, &alice, "web", &format!("filler {i}"), &[]).await;
    }
    let p1 = ok_page(&app, "/p/web/tickets/?status=all&sort=ticket_num+asc", &b).await;
    assert_eq!(listed(&p1).len(), 25);
    assert!(p1.contains("page 1 of 2"));
    let p2 = ok_page(
        &app,
        "/p/web/tickets/?status=all&sort=ticket_num+asc&page=2",
        &b,
    )
    .await;
    assert_eq!(listed(&p2), vec![26, 27, 28]);

    // Saving the current search: bob's own, alice's shared; both listed with counts.
    let list = ok_page(&app, "/p/web/tickets/?status=open&label=bug", &b).await;
    let mut save = form_fields(&list, "/p/web/tickets/_bins");
    assert_eq!(value(&save, "q"), "status:open label:\"bug\"");
    set(&mut save, "name", "Open bugs");
    let r = submit(&app, &b, "/p/web/tickets/_bins", &save).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(flash(&r).contains("Open bugs"));
    let shared_form = ok_page(&app, "/p/web/tickets/?status=all&q=zebra", &a).await;
    let mut shared = form_fields(&shared_form, "/p/web/tickets/_bins");
    set(&mut shared, "name", "Zebras");
    set(&mut shared, "shared", "on");
    assert_eq!(
        submit(&app, &a, "/p/web/tickets/_bins", &shared)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    // Bob may not share a search.
    let mut sneaky = save.clone();
    set(&mut sneaky, "name", "Everyone's");
    set(&mut sneaky, "shared", "on");
    let r = submit(&app, &b, "/p/web/tickets/_bins", &sneaky).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mine = ok_page(&app, "/p/web/tickets/", &b).await;
    let side = &mine[mine.find("Saved searches").unwrap()..];
    assert!(
        side.contains(">Open bugs</a> <span class=\"muted\">1</span>"),
        "{side}"
    );
    assert!(
        side.contains(">Zebras</a> <span class=\"muted\">1</span>"),
        "{side}"
    );
    let hers = ok_page(&app, "/p/web/tickets/", &a).await;
    assert!(!hers.contains(">Open bugs</a>"), "bob's search is his");
    // Following a saved search shows its tickets.
    let href = side[..side.find(">Open bugs</a>").unwrap()]
        .rsplit("href=\"")
        .next()
        .unwrap()
        .trim_end_matches('"');
    let followed = ok_page(&app, &unescape(href), &b).await;
    assert_eq!(listed(&followed), vec![3]);
    // And deleting it.
    let id_start = side.find("/p/web/tickets/_bins/").unwrap() + "/p/web/tickets/_bins/".len();
    let id = &side[id_start..id_start + 24];
    let r = app
        .post_form(&format!("/p/web/tickets/_bins/{id}/delete"), &b, &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        !ok_page(&app, "/p/web/tickets/", &b)
            .await
            .contains(">Open bugs</a>")
    );
}

#[tokio::test]
async fn bulk_edit_changes_the_selected_tickets() {
    let app = TestApp::new("trpages-bulk").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "web", false).await;
    let a = app.browser(&alice).await;
    let b = app.browser(&bob).await;
    for s in ["one", "two", "three"] {
        seed(&app, &alice, "web", s, &["old"]).await;
    }
    let html = ok_page(&app, "/p/web/tickets/", &a).await;
    assert!(html.contains("form=\"bulk-edit\""), "a checkbox per row");
    let mut fields = form_fields(&html, "/p/web/tickets/_bulk");
    fields.push(("ticket".into(), "1".into()));
    fields.push(("ticket".into(), "3".into()));
    set(&mut fields, "status", "closed");
    set(&mut fields, "labels_add", "triaged");
    set(&mut fields, "labels_remove", "old");
    let r = submit(&app, &a, "/p/web/tickets/_bulk", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/p/web/tickets/");
    assert_eq!(flash(&r), "Changed 2 tickets.");
    let token = app.token(&alice).await;
    for (n, status, labels) in [
        (1, "closed", json!(["triaged"])),
        (2, "open", json!(["old"])),
        (3, "closed", json!(["triaged"])),
    ] {
        let t = app
            .api(
                Method::GET,
                &format!("/rest/p/web/tickets/{n}"),
                Some(&token),
                None,
            )
            .await
            .json();
        assert_eq!(t["status"], status, "#{n}");
        assert_eq!(t["labels"], labels, "#{n}");
    }
    // Each changed ticket's history says so.
    let page = ok_page(&app, "/p/web/tickets/3/", &a).await;
    assert!(page.contains("status: open → closed"), "{page}");

    // Garbage numbers are a 400; a bad value changes nothing; others may not bulk edit.
    let mut junk = fields.clone();
    junk.push(("ticket".into(), "x".into()));
    assert_eq!(
        submit(&app, &a, "/p/web/tickets/_bulk", &junk).await.status,
        StatusCode::BAD_REQUEST
    );
    let mut bad = form_fields(&html, "/p/web/tickets/_bulk");
    bad.push(("ticket".into(), "2".into()));
    set(&mut bad, "status", "no-such-status");
    let r = submit(&app, &a, "/p/web/tickets/_bulk", &bad).await;
    assert!(flash(&r).starts_with("Nothing changed"), "{}", flash(&r));
    let bob_form: Vec<(String, String)> = vec![
        ("csrf_token".into(), b.csrf.clone()),
        ("ticket".into(), "2".into()),
        ("status".into(), "closed".into()),
    ];
    assert_eq!(
        submit(&app, &b, "/p/web/tickets/_bulk", &bob_form)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_stale_edit_merges_other_fields_and_a_clash_loses_nothing() {
    let app = TestApp::new("trpages-edit").await;
    let alice = app.user("alice").await;
    let dev = app.user("dev").await;
    let project = app.project(&alice, "web", false).await;
    app.add_member(&project, &dev, Role::Developer).await;
    let a = app.browser(&alice).await;
    let d = app.browser(&dev).await;
    seed(&app, &alice, "web", "Original summary", &["x"]).await;

    // Both open the edit form of version 1.
    let alice_page = ok_page(&app, "/p/web/tickets/1/", &a).await;
    let dev_page = ok_page(&app, "/p/web/tickets/1/", &d).await;
    let mut alice_form = form_fields(&alice_page, "/p/web/tickets/1/edit");
    let mut dev_form = form_fields(&dev_page, "/p/web/tickets/1/edit");
    assert_eq!(value(&alice_form, "base_version"), "1");

    // Dev changes the summary first.
    set(&mut dev_form, "summary", "Dev's summary");
    let r = submit(&app, &d, "/p/web/tickets/1/edit", &dev_form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    // Alice, from her stale form, changes only the status: merged, dev's summary kept.
    let mut status_only = alice_form.clone();
    set(&mut status_only, "status", "accepted");
    let r = submit(&app, &a, "/p/web/tickets/1/edit", &status_only).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = ok_page(&app, "/p/web/tickets/1/", &a).await;
    assert!(
        page.contains("Dev&#39;s summary") || page.contains("Dev&#x27;s summary"),
        "{page}"
    );
    assert!(page.contains(">accepted</span>"));

    // From the same stale form she rewrites the summary and the description: a conflict,
    // and the form comes back with what she typed.
    set(&mut alice_form, "summary", "Alice's summary");
    set(
        &mut alice_form,
        "description",
        "Alice wrote\nthis long text",
    );
    set(&mut alice_form, "labels", "x, mine");
    let r = submit(&app, &a, "/p/web/tickets/1/edit", &alice_form).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body
            .contains("Not saved: summary changed since version 1"),
        "{}",
        r.body
    );
    let back = form_fields(&r.body, "/p/web/tickets/1/edit");
    assert_eq!(value(&back, "summary"), "Alice's summary");
    assert_eq!(value(&back, "description"), "Alice wrote\nthis long text");
    assert_eq!(value(&back, "labels"), "x, mine");
    assert_eq!(
        value(&back, "base_version"),
        "3",
        "now starts from the saved ticket"
    );
    let token = app.token(&alice).await;
    let t = app
        .api(Method::GET, "/rest/p/web/tickets/1", Some(&token), None)
        .await
        .json();
    assert_eq!(t["summary"], "Dev's summary", "nothing was written");
    assert_eq!(t["description"], "");

    // Saving the form as it came back applies her values.
    let r = submit(&app, &a, "/p/web/tickets/1/edit", &back).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let t = app
        .api(Method::GET, "/rest/p/web/tickets/1", Some(&token), None)
        .await
        .json();
    assert_eq!(t["summary"], "Alice's summary");
    assert_eq!(t["description"], "Alice wrote\nthis long text");
    assert_eq!(t["labels"], json!(["x", "mine"]));
    assert_eq!(
        t["status"], "accepted",
        "status untouched by her second save"
    );

    // A refused value: the page again with the message by the field, nothing lost.
    let page = ok_page(&app, "/p/web/tickets/1/", &a).await;
    let mut form = form_fields(&page, "/p/web/tickets/1/edit");
    set(&mut form, "summary", "");
    set(&mut form, "description", "kept on refusal");
    let r = submit(&app, &a, "/p/web/tickets/1/edit", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("A ticket needs a summary"));
    assert_eq!(
        value(
            &form_fields(&r.body, "/p/web/tickets/1/edit"),
            "description"
        ),
        "kept on refusal"
    );
    // An unchanged form changes nothing; a bad base_version is a 400.
    let page = ok_page(&app, "/p/web/tickets/1/", &a).await;
    let same = form_fields(&page, "/p/web/tickets/1/edit");
    let r = submit(&app, &a, "/p/web/tickets/1/edit", &same).await;
    assert_eq!(flash(&r), "Nothing changed.");
    let mut junk = same.clone();
    set(&mut junk, "base_version", "x");
    assert_eq!(
        submit(&app, &a, "/p/web/tickets/1/edit", &junk)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // History: each change, in order.
    let page = ok_page(&app, "/p/web/tickets/1/", &a).await;
    let s1 = page.find("summary: Original summary → Dev").unwrap();
    let s2 = page.find("status: open → accepted").unwrap();
    let s3 = page.find("description edited").unwrap();
    assert!(s1 < s2 && s2 < s3);
    assert!(page.contains("id=\"change-2\""));
    // Those without update see no edit form and may not post one.
    let bob = app.user("bob").await;
    let b = app.browser(&bob).await;
    let page = ok_page(&app, "/p/web/tickets/1/", &b).await;
    assert!(!page.contains("/p/web/tickets/1/edit"));
    let mut theirs = same.clone();
    set(&mut theirs, "csrf_token", &b.csrf);
    set(&mut theirs, "summary", "vandal");
    assert_eq!(
        submit(&app, &b, "/p/web/tickets/1/edit", &theirs)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn settings_add_a_custom_field_and_a_milestone_that_tickets_use() {
    let app = TestApp::new("trpages-admin").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "web", false).await;
    let a = app.browser(&alice).await;
    let b = app.browser(&bob).await;
    assert_eq!(
        app.get("/p/web/tickets/_admin", &b).await.status,
        StatusCode::FORBIDDEN
    );

    let html = ok_page(&app, "/p/web/tickets/_admin", &a).await;
    let mut form = form_fields(&html, "/p/web/tickets/_admin");
    assert_eq!(
        value(&form, "open_statuses"),
        "open unread accepted pending"
    );
    // A select field without options is refused; everything typed comes back.
    set(&mut form, "cf_0_label", "Priority");
    set(&mut form, "cf_0_type", "select");
    set(&mut form, "cf_0_show", "on");
    set(&mut form, "cf_1_label", "Found in");
    set(&mut form, "cf_1_type", "string");
    set(&mut form, "ms_0_name", "1.0");
    set(&mut form, "ms_0_due", "2027-01-31");
    set(&mut form, "ms_0_description", "First release");
    set(&mut form, "template", "What happened?");
    let r = submit(&app, &a, "/p/web/tickets/_admin", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("needs at least one option"), "{}", r.body);
    let mut back = form_fields(&r.body, "/p/web/tickets/_admin");
    assert_eq!(value(&back, "cf_0_label"), "Priority");
    assert_eq!(value(&back, "cf_0_name"), "", "as typed");
    assert_eq!(value(&back, "cf_1_label"), "Found in");
    assert_eq!(value(&back, "ms_0_name"), "1.0");
    assert_eq!(value(&back, "ms_0_due"), "2027-01-31");
    assert_eq!(value(&back, "template"), "What happened?");

    set(&mut back, "cf_0_options", "low, normal, high");
    set(&mut back, "cf_0_default", "normal");
    let r = submit(&app, &a, "/p/web/tickets/_admin", &back).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let ctx = app.ctx_of(&alice, "web").await;
    let config = TrackerConfig::of(ctx.tool("tickets").unwrap());
    assert_eq!(config.custom_fields.len(), 2);
    assert_eq!(config.custom_fields[0].name, "_priority");
    assert_eq!(config.custom_fields[1].name, "_found_in");
    assert_eq!(config.milestones[0].name, "1.0");
    assert_eq!(config.template, "What happened?");
    let saved = ok_page(&app, "/p/web/tickets/_admin", &a).await;
    assert_eq!(
        value(
            &form_fields(&saved, "/p/web/tickets/_admin"),
            "cf_0_options"
        ),
        "low, normal, high"
    );

    // Bob files a ticket with them: the form offers the field's options and the milestone.
    let new = ok_page(&app, "/p/web/tickets/new", &b).await;
    let mut fields = form_fields(&new, "/p/web/tickets/new");
    assert_eq!(
        value(&fields, "description"),
        "What happened?",
        "the template"
    );
    assert_eq!(value(&fields, "_priority"), "normal", "the default");
    assert!(new.contains("<option value=\"high\""));
    set(&mut fields, "summary", "Uses the new fields");
    set(&mut fields, "_priority", "bogus");
    set(&mut fields, "milestone", "1.0");
    let r = submit(&app, &b, "/p/web/tickets/new", &fields).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Priority must be one of"));
    set(&mut fields, "_priority", "high");
    set(&mut fields, "_found_in", "2.3.1");
    let r = submit(&app, &b, "/p/web/tickets/new", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = ok_page(&app, "/p/web/tickets/1/", &b).await;
    assert!(
        page.contains("<th>Priority</th><td colspan=\"3\">high</td>"),
        "{page}"
    );
    assert!(page.contains("<th>Found in</th><td colspan=\"3\">2.3.1</td>"));
    assert!(page.contains(">1.0</a>"));

    // The list shows the field (shown in list), filters on it and on the milestone.
    let list = ok_page(&app, "/p/web/tickets/", &b).await;
    assert!(list.contains(">Priority</a>"));
    assert_eq!(
        listed(&ok_page(&app, "/p/web/tickets/?status=all&_priority=high", &b).await),
        vec![1]
    );
    assert!(
        listed(&ok_page(&app, "/p/web/tickets/?status=all&_priority=low", &b).await).is_empty()
    );
    assert_eq!(
        listed(&ok_page(&app, "/p/web/tickets/?status=all&milestone=1.0", &b).await),
        vec![1]
    );

    // Milestones: progress and due date, linking to the list.
    let ms = ok_page(&app, "/p/web/tickets/_milestones", &b).await;
    assert!(
        ms.contains("2027-01-31") && ms.contains("0 / 1 closed"),
        "{ms}"
    );
    assert!(ms.contains("milestone=1.0"));
    let t = app.token(&alice).await;
    let r = app
        .api(
            Method::PATCH,
            "/rest/p/web/tickets/1",
            Some(&t),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let ms = ok_page(&app, "/p/web/tickets/_milestones", &b).await;
    assert!(ms.contains("1 / 1 closed (100%)"), "{ms}");

    // Removing the field.
    let html = ok_page(&app, "/p/web/tickets/_admin", &a).await;
    let mut form = form_fields(&html, "/p/web/tickets/_admin");
    set(&mut form, "cf_1_remove", "on");
    assert_eq!(
        submit(&app, &a, "/p/web/tickets/_admin", &form)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let ctx = app.ctx_of(&alice, "web").await;
    assert_eq!(
        TrackerConfig::of(ctx.tool("tickets").unwrap())
            .custom_fields
            .len(),
        1
    );
}

#[tokio::test]
async fn private_tickets_stay_out_of_outsiders_pages() {
    let app = TestApp::new("trpages-private").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    app.project(&alice, "web", false).await;
    let b = app.browser(&bob).await;
    let c = app.browser(&carol).await;
    seed(&app, &alice, "web", "Public thing", &[]).await;
    let html = ok_page(&app, "/p/web/tickets/new", &b).await;
    let mut fields = form_fields(&html, "/p/web/tickets/new");
    set(&mut fields, "summary", "Secret vault problem");
    set(&mut fields, "private", "on");
    let r = submit(&app, &b, "/p/web/tickets/new", &fields).await;
    assert_eq!(r.location(), "/p/web/tickets/2/");
    let mine = ok_page(&app, "/p/web/tickets/", &b).await;
    assert_eq!(listed(&mine), vec![2, 1]);
    assert!(mine.contains("Secret vault problem</a> <span class=\"badge\">private</span>"));
    assert!(
        ok_page(&app, "/p/web/tickets/2/", &b)
            .await
            .contains("Secret vault problem")
    );
    for who in [&c, &Browser::anonymous()] {
        let list = ok_page(&app, "/p/web/tickets/?status=all", who).await;
        assert_eq!(listed(&list), vec![1]);
        assert!(!list.contains("vault"));
        assert!(list.contains("1 ticket<"), "counts leave it out");
        assert_eq!(
            app.get("/p/web/tickets/2/", who).await.status,
            StatusCode::NOT_FOUND
        );
    }
    // The project owner sees it.
    let a = app.browser(&alice).await;
    assert!(
        ok_page(&app, "/p/web/tickets/2/", &a)
            .await
            .contains("Secret vault problem")
    );
}

#[tokio::test]
async fn anonymous_tickets_wait_votes_moves_and_deletes() {
    let app = TestApp::new("trpages-moderate").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "web", false).await;
    app.project(&alice, "other", false).await;
    let a = app.browser(&alice).await;
    let b = app.browser(&bob).await;
    let ctx = app.ctx_of(&alice, "web").await;
    let tool = ctx.tool("tickets").unwrap().clone();
    let mut config = TrackerConfig::of(&tool);
    config.anonymous_tickets = true;
    actions::save_config(&app.forge, &ctx, &tool, &config)
        .await
        .unwrap();

    // An anonymous report: back to the list, told it waits.
    let anon = Browser::anonymous();
    let html = ok_page(&app, "/p/web/tickets/new", &anon).await;
    assert!(html.contains("waits for a moderator"));
    let mut fields = form_fields(&html, "/p/web/tickets/new");
    set(&mut fields, "summary", "Anonymous report");
    let r = submit(&app, &anon, "/p/web/tickets/new", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/p/web/tickets/");
    assert!(flash(&r).contains("waits for a moderator"));
    assert!(listed(&ok_page(&app, "/p/web/tickets/", &b).await).is_empty());
    assert_eq!(
        app.get("/p/web/tickets/1/", &b).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/p/web/tickets/_pending", &b).await.status,
        StatusCode::FORBIDDEN
    );

    // The moderator's queue, and approving from it.
    let queue = ok_page(&app, "/p/web/tickets/_pending", &a).await;
    assert!(queue.contains("Anonymous report"));
    assert!(
        queue.contains("href=\"/p/web/tickets/_moderate\""),
        "links the comments' queue"
    );
    ok_page(&app, "/p/web/tickets/_moderate", &a).await;
    let list = ok_page(&app, "/p/web/tickets/", &a).await;
    assert!(
        list.contains("waiting for a moderator"),
        "marked in the list"
    );
    let approve = form_fields(&queue, "/p/web/tickets/1/approve");
    let r = submit(&app, &a, "/p/web/tickets/1/approve", &approve).await;
    assert_eq!(r.location(), "/p/web/tickets/_pending");
    assert_eq!(listed(&ok_page(&app, "/p/web/tickets/", &b).await), vec![1]);

    // Votes.
    let page = ok_page(&app, "/p/web/tickets/1/", &b).await;
    assert!(page.contains("+0 / −0"));
    let r = app
        .post_form("/p/web/tickets/1/vote", &b, &[("value", "1")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        ok_page(&app, "/p/web/tickets/1/", &b)
            .await
            .contains("+1 / −0")
    );
    let r = app
        .post_form("/p/web/tickets/1/vote", &b, &[("value", "-1")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        ok_page(&app, "/p/web/tickets/1/", &b)
            .await
            .contains("+0 / −1")
    );
    assert_eq!(
        app.post_form("/p/web/tickets/1/vote", &b, &[("value", "lots")])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let r = app
        .post_form("/p/web/tickets/1/vote", &anon, &[("value", "1")])
        .await;
    assert!(r.location().starts_with("/auth/login"), "{}", r.status);

    // Watching: the button of the ticket.
    assert!(page.contains("name=\"artifact\" value=\"ticket:"));

    // Moving to the other project's tracker: the old address follows it.
    assert!(!page.contains("/p/web/tickets/1/move"), "bob may not move");
    let page = ok_page(&app, "/p/web/tickets/1/", &a).await;
    let mut mv = form_fields(&page, "/p/web/tickets/1/move");
    set(&mut mv, "project", "nosuch");
    let r = submit(&app, &a, "/p/web/tickets/1/move", &mv).await;
    assert!(flash(&r).contains("no project"));
    set(&mut mv, "project", "other");
    let r = submit(&app, &a, "/p/web/tickets/1/move", &mv).await;
    assert_eq!(r.location(), "/p/other/tickets/1/", "{}", flash(&r));
    let old = app.get("/p/web/tickets/1/", &b).await;
    assert!(old.status.is_redirection());
    assert_eq!(old.location(), "/p/other/tickets/1/");
    assert!(
        ok_page(&app, "/p/other/tickets/1/", &b)
            .await
            .contains("Anonymous report")
    );

    // Deleting.
    seed(&app, &alice, "web", "Short-lived", &[]).await;
    let page = ok_page(&app, "/p/web/tickets/2/", &a).await;
    let del = form_fields(&page, "/p/web/tickets/2/delete");
    assert_eq!(
        submit(
            &app,
            &b,
            "/p/web/tickets/2/delete",
            &[("csrf_token".to_owned(), b.csrf.clone())]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let r = submit(&app, &a, "/p/web/tickets/2/delete", &del).await;
    assert_eq!(r.location(), "/p/web/tickets/");
    assert_eq!(
        app.get("/p/web/tickets/2/", &a).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn hostile_strings_never_come_back_unescaped() {
    const SCRIPT: &str = "<script>alert(1)</script>";
    const IMG: &str = "\"><img src=x onerror=alert(1)>";
    let app = TestApp::new("trpages-xss").await;
    let alice = app.user("alice").await;
    app.project(&alice, "web", false).await;
    let a = app.browser(&alice).await;

    // A milestone and a custom field named with them.
    let html = ok_page(&app, "/p/web/tickets/_admin", &a).await;
    let mut form = form_fields(&html, "/p/web/tickets/_admin");
    set(&mut form, "cf_0_label", &format!("Field {IMG}"));
    set(&mut form, "cf_0_name", "_field");
    set(&mut form, "cf_0_type", "string");
    set(&mut form, "cf_0_show", "on");
    set(&mut form, "cf_1_label", &format!("Choice {SCRIPT}"));
    set(&mut form, "cf_1_name", "_choice");
    set(&mut form, "cf_1_type", "select");
    set(&mut form, "cf_1_options", &format!("{SCRIPT}, {IMG}"));
    set(&mut form, "ms_0_name", IMG);
    set(&mut form, "ms_0_description", SCRIPT);
    set(&mut form, "template", SCRIPT);
    let r = submit(&app, &a, "/p/web/tickets/_admin", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // A refused settings form echoes them too.
    let mut bad = form.clone();
    set(&mut bad, "open_statuses", SCRIPT);
    set(&mut bad, "cf_2_label", IMG);
    set(&mut bad, "cf_2_type", IMG);
    let refused = submit(&app, &a, "/p/web/tickets/_admin", &bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);

    let new = ok_page(&app, "/p/web/tickets/new", &a).await;
    let mut fields = form_fields(&new, "/p/web/tickets/new");
    set(&mut fields, "summary", &format!("{SCRIPT} {IMG}"));
    set(
        &mut fields,
        "description",
        &format!("{SCRIPT}\n\n{IMG}\n\n[x](javascript:alert(1))"),
    );
    set(&mut fields, "labels", &format!("{SCRIPT}, {IMG}"));
    set(&mut fields, "_field", &format!("{SCRIPT}{IMG}"));
    set(&mut fields, "_choice", IMG);
    set(&mut fields, "milestone", IMG);
    let r = submit(&app, &a, "/p/web/tickets/new", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // Refused forms echo them as well.
    let mut refused_new = fields.clone();
    set(&mut refused_new, "assigned_to", IMG);
    let refused_ticket = submit(&app, &a, "/p/web/tickets/new", &refused_new).await;
    assert_eq!(refused_ticket.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A saved search named with them.
    let list = ok_page(&app, "/p/web/tickets/", &a).await;
    let mut save = form_fields(&list, "/p/web/tickets/_bins");
    set(&mut save, "name", IMG);
    submit(&app, &a, "/p/web/tickets/_bins", &save).await;
    // A conflicting edit echoes the typed values.
    let page = ok_page(&app, "/p/web/tickets/1/", &a).await;
    let token = app.token(&alice).await;
    let r = app
        .api(
            Method::PATCH,
            "/rest/p/web/tickets/1",
            Some(&token),
            Some(json!({"summary": format!("meanwhile {SCRIPT}")})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut edit = form_fields(&page, "/p/web/tickets/1/edit");
    set(&mut edit, "summary", &format!("again {IMG}"));
    let conflict = submit(&app, &a, "/p/web/tickets/1/edit", &edit).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.body);
    // A comment with them.
    let page = ok_page(&app, "/p/web/tickets/1/", &a).await;
    let mut comment = form_fields(&page, "/p/web/tickets/_discuss/new");
    set(&mut comment, "text", &format!("{SCRIPT} {IMG}"));
    let r = submit(&app, &a, "/p/web/tickets/_discuss/new", &comment).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // History of a change with them.
    let mut change = form_fields(&page, "/p/web/tickets/1/edit");
    set(&mut change, "labels", &format!("{IMG}, plain"));
    set(&mut change, "_field", SCRIPT);
    submit(&app, &a, "/p/web/tickets/1/edit", &change).await;

    let q = |s: &str| serde_urlencoded::to_string([("q", s)]).unwrap();
    let mut bodies = vec![
        ("settings refused".to_owned(), refused.body),
        ("new refused".to_owned(), refused_ticket.body),
        ("conflict".to_owned(), conflict.body),
    ];
    for path in [
        "/p/web/tickets/".to_owned(),
        "/p/web/tickets/?status=all&cols=ticket_num,summary,labels,milestone,_field,_choice"
            .to_owned(),
        format!("/p/web/tickets/?{}", q(&format!("status:{IMG}"))),
        format!("/p/web/tickets/?{}", q(&format!("{SCRIPT} {IMG}"))),
        format!(
            "/p/web/tickets/?status=all&label={}",
            serde_urlencoded::to_string([("", IMG)]).unwrap()[1..].to_owned()
        ),
        "/p/web/tickets/1/".to_owned(),
        "/p/web/tickets/new".to_owned(),
        "/p/web/tickets/_milestones".to_owned(),
        "/p/web/tickets/_admin".to_owned(),
        "/p/web/tickets/_pending".to_owned(),
    ] {
        bodies.push((path.clone(), ok_page(&app, &path, &a).await));
    }
    for (what, body) in &bodies {
        for bad in [SCRIPT, "<img src=x onerror", "href=\"javascript"] {
            assert!(!body.contains(bad), "{what} contains {bad}");
        }
    }
    // The values are there, escaped.
    let ticket = &bodies
        .iter()
        .find(|(p, _)| p == "/p/web/tickets/1/")
        .unwrap()
        .1;
    let shown = unescape(ticket);
    assert!(shown.contains(&format!("meanwhile {SCRIPT}")), "{ticket}");
    assert!(shown.contains(IMG));
}
