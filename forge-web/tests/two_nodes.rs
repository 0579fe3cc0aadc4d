//! Two `forge serve` processes on one store: what one node (or anything else writing to the
//! store) changes is what the other serves within a second, though each keeps sessions,
//! tokens, users, projects and tools in memory (`forge_tools::readmodel`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use forge_tools::users::NewUser;
use forge_tools::{tokens, users};

/// The bound the read model promises for a change made elsewhere to be seen.
const BOUND: Duration = Duration::from_secs(1);

/// A `forge serve` on `port`, stopped when dropped.
struct Node {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Node {
    fn start(db_name: &str) -> Self {
        let port = common::free_port();
        let data = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("FORGE_")) {
            cmd.env_remove(k);
        }
        let child = cmd
            .arg("serve")
            .env("FORGE_MONGODB_URI", common::store_uri())
            .env("FORGE_DB_NAME", db_name)
            .env("FORGE_DATA_DIR", data.path())
            .env("FORGE_BIND", format!("127.0.0.1:{port}"))
            .env("FORGE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let node = Self {
            child,
            port,
            _data: data,
        };
        let start = Instant::now();
        while node.call("GET", "/healthz", None, None).0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "node did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        node
    }

    /// One HTTP/1.1 request: status and body.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        json: Option<&str>,
    ) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, String::new());
        };
        let body = json.unwrap_or("");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if json.is_some() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        if s.write_all(req.as_bytes()).is_err() {
            return (0, String::new());
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let status = out
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
        (status, body)
    }

    /// How long until `path` answers `want` (asserted within [`BOUND`]).
    fn until(&self, what: &str, path: &str, token: &str, want: u16) -> Duration {
        let start = Instant::now();
        loop {
            let (status, _) = self.call("GET", path, Some(token), None);
            if status == want {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < BOUND,
                "{what}: {path} still answers {status} after {:?}",
                start.elapsed()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn account(db: &mongodb::Database, name: &str) -> (users::User, String) {
    let user = users::create(
        db,
        NewUser {
            username: name.into(),
            email: format!("{name}@example.com"),
            display_name: name.into(),
            password: "correct horse battery".into(),
            site_admin: false,
        },
    )
    .await
    .unwrap();
    let (_, secret) = tokens::create(db, user.id, "two nodes").await.unwrap();
    (user, secret)
}

#[tokio::test(flavor = "multi_thread")]
async fn what_one_node_changes_the_other_serves_within_a_second() {
    let db_name = common::fresh_db_name("two_nodes");
    let db = mongodb::Client::with_uri_str(common::store_uri())
        .await
        .unwrap()
        .database(&db_name);
    let (a, b) = tokio::task::spawn_blocking({
        let db_name = db_name.clone();
        move || (Node::start(&db_name), Node::start(&db_name))
    })
    .await
    .unwrap();
    let (_, ann) = account(&db, "ann").await;
    let (_, bob) = account(&db, "bob").await;

    let (ann2, bob2) = (ann.clone(), bob.clone());
    let report = tokio::task::spawn_blocking(move || {
        let (ann, bob) = (ann2, bob2);
        let mut report = Vec::new();
        // A private project of ann's, made on node A, with bob as a member.
        let (s, body) = a.call(
            "POST",
            "/rest/p",
            Some(&ann),
            Some(r#"{"shortname": "priv", "name": "Private", "private": true}"#),
        );
        assert_eq!(s, 201, "{body}");
        let (s, body) = a.call(
            "POST",
            "/rest/p/priv/admin/members",
            Some(&ann),
            Some(r#"{"username": "bob", "role": "developer"}"#),
        );
        assert!(s == 200 || s == 201, "{s} {body}");
        // Node B serves bob (and caches his token, his account, the project and its tools).
        for _ in 0..3 {
            assert_eq!(b.call("GET", "/rest/p/priv", Some(&bob), None).0, 200);
        }
        // ... from memory: what follows is about a kept copy, not a fresh read.
        let (s, metrics) = b.call("GET", "/metrics", None, None);
        assert_eq!(s, 200);
        for part in ["tokens", "users", "projects", "tools"] {
            let line = format!("forge_cache_hits_total{{cache=\"{part}\"}} ");
            let hits: u64 = metrics
                .lines()
                .find_map(|l| l.strip_prefix(&line))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            assert!(hits >= 2, "{part}: {hits} hits\n{metrics}");
        }

        // 1. An edit on A is read on B.
        let (s, body) = a.call(
            "PUT",
            "/rest/p/priv/wiki/Shared",
            Some(&ann),
            Some(r#"{"text": "first words"}"#),
        );
        assert!(s == 200 || s == 201, "{s} {body}");
        let start = Instant::now();
        loop {
            let (s, body) = b.call("GET", "/rest/p/priv/wiki/Shared", Some(&bob), None);
            if s == 200 && body.contains("first words") {
                break;
            }
            assert!(start.elapsed() < BOUND, "the edit is not on B: {s} {body}");
            std::thread::sleep(Duration::from_millis(5));
        }
        report.push(("edit on A read on B", start.elapsed()));

        // 2. A member removed on A can no longer read the private project on B.
        let (s, body) = a.call("DELETE", "/rest/p/priv/admin/members/bob", Some(&ann), None);
        assert!(s == 200 || s == 204, "{s} {body}");
        assert_eq!(
            a.call("GET", "/rest/p/priv", Some(&bob), None).0,
            404,
            "on A at once"
        );
        report.push((
            "member removed on A, refused on B",
            b.until("member removed", "/rest/p/priv", &bob, 404),
        ));
        (a, b, report)
    })
    .await
    .unwrap();
    let (a, b, mut report) = report;

    // 3. A token revoked (here behind both nodes' backs, as a third node would) stops
    //    working on both.
    assert_eq!(a.call("GET", "/rest/p/priv", Some(&ann), None).0, 200);
    assert_eq!(b.call("GET", "/rest/p/priv", Some(&ann), None).0, 200);
    let owner = users::by_username(&db, "ann").await.unwrap().unwrap();
    let listed = tokens::list(&db, owner.id).await.unwrap();
    assert!(tokens::revoke(&db, owner.id, listed[0].id).await.unwrap());
    let report = tokio::task::spawn_blocking(move || {
        report.push((
            "token revoked, refused on A",
            a.until("revoked token", "/rest/p/priv", &ann, 401),
        ));
        report.push((
            "token revoked, refused on B",
            b.until("revoked token", "/rest/p/priv", &ann, 401),
        ));
        report
    })
    .await
    .unwrap();
    for (what, took) in report {
        eprintln!("{what}: {took:?} (bound {BOUND:?})");
    }
    forge_tools::events::log_db(&db).drop().await.unwrap();
    db.drop().await.unwrap();
}
