//! The crash test of the aggregations, with the real binary: `forge analytics run` is made to
//! abort between writing a pass's outputs and moving its watermark
//! (`FORGE_TEST_AGG_CRASH=after-outputs`); the next run finishes that pass without counting
//! anything twice, so the figures equal those of a copy that never crashed. `forge analytics
//! rebuild` then recomputes the same figures from the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::time::Duration;

use bson::{Bson, DateTime, Document, doc};
use forge_tools::analytics::builtin::{
    PROJECT_DAY, PROJECT_MONTH, PROJECT_VISITORS_DAY, PROJECT_VISITORS_MONTH, SITE_ACTIVE_DAY,
    SITE_DAY, USER_MONTH,
};
use forge_tools::analytics::run::{self, STATE};
use forge_tools::events::{Event, EventContext, EventLog};
use mongodb::Database;

const OUTPUTS: [&str; 7] = [
    PROJECT_DAY,
    PROJECT_MONTH,
    PROJECT_VISITORS_DAY,
    PROJECT_VISITORS_MONTH,
    USER_MONTH,
    SITE_DAY,
    SITE_ACTIVE_DAY,
];
const AGGS: [&str; 3] = ["project", "user", "site"];

type Figures = BTreeMap<&'static str, BTreeMap<String, i64>>;

/// One forge: its database and data dir.
struct Site {
    name: String,
    data: tempfile::TempDir,
    db: Database,
    log: EventLog,
}

impl Site {
    async fn new(label: &str) -> Self {
        let name = common::fresh_db_name(label);
        let db = forge_tools::store::connect(&common::store_uri(), &name, Duration::from_secs(10))
            .await
            .unwrap();
        let log = EventLog::start(&db).await.unwrap();
        Self {
            name,
            data: tempfile::tempdir().unwrap(),
            db,
            log,
        }
    }

    /// `forge <args>` on this site, with `env` added.
    fn forge(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("FORGE_")) {
            cmd.env_remove(k);
        }
        cmd.args(args)
            .env("FORGE_MONGODB_URI", common::store_uri())
            .env("FORGE_DB_NAME", &self.name)
            .env("FORGE_DATA_DIR", self.data.path())
            .env("FORGE_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// `forge analytics run`, which must succeed; its standard output.
    fn run(&self) -> String {
        ok(&self.forge(&["analytics", "run"], &[]))
    }

    async fn figures(&self) -> Figures {
        let mut out = Figures::new();
        for o in OUTPUTS {
            out.insert(
                o,
                run::dump(&self.db, o).await.unwrap().into_iter().collect(),
            );
        }
        out
    }

    async fn state(&self, agg: &str) -> (i64, Option<i64>) {
        let st = self
            .db
            .collection::<Document>(STATE)
            .find_one(doc! {"_id": format!("agg:{agg}")})
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no state for {agg}"));
        let pending = match st.get("pending") {
            None | Some(Bson::Null) => None,
            Some(Bson::Int64(p)) => Some(*p),
            Some(other) => panic!("pending is {other:?}"),
        };
        (st.get_i64("watermark").unwrap(), pending)
    }

    async fn states(&self) -> Vec<(i64, Option<i64>)> {
        let mut out = Vec::new();
        for agg in AGGS {
            out.push(self.state(agg).await);
        }
        out
    }
}

fn ok(out: &Output) -> String {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{}: {stdout}\n{stderr}", out.status);
    stdout.into_owned()
}

const DAYS: [&str; 4] = ["2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02"];

/// The events of chunk `c`: views, commits, posts (live and held), logins and tickets over
/// new year, by a few users, in a public, a private and a personal project.
fn chunk(c: usize) -> Vec<Event> {
    let kinds = [
        "page.view",
        "repo.commit",
        "discussion.post",
        "user.login",
        "tracker.ticket.open",
    ];
    (0..40)
        .map(|i| {
            let time = if i % 2 == 0 { "23:59:59" } else { "00:00:00" };
            let ts = format!("{}T{time}Z", DAYS[(c + i) % DAYS.len()]);
            let user = format!("u{}", (i + c) % 4);
            let (neighborhood, project) = match i % 6 {
                0 => ("u", user.clone()),
                _ => ("p", if i % 6 == 1 { "hidden" } else { "alpha" }.to_owned()),
            };
            let kind = kinds[i % kinds.len()];
            Event {
                timestamp: DateTime::from_millis(
                    chrono::DateTime::parse_from_rfc3339(&ts)
                        .unwrap()
                        .timestamp_millis(),
                ),
                kind: kind.into(),
                context: EventContext {
                    neighborhood: Some(neighborhood.into()),
                    project: Some(project.clone()),
                    tool: (kind == "page.view").then(|| "code".into()),
                    user: (i % 3 != 0).then(|| user.clone()),
                    visitor: (i % 3 == 0).then(|| format!("v{}", i % 5)),
                    private: project == "hidden",
                    ..Default::default()
                },
                extra: match (kind, i % 4) {
                    ("discussion.post", 0) => Bson::Document(doc! {"status": "pending"}),
                    ("discussion.post", _) => Bson::Document(doc! {"status": "ok"}),
                    _ => Bson::Null,
                },
            }
        })
        .collect()
}

/// What the sum outputs must hold for `events`, by series: `(output, series) → total`.
fn totals(f: &Figures) -> BTreeMap<(&'static str, String), i64> {
    let mut out = BTreeMap::new();
    for (o, keys) in f {
        for (k, v) in keys {
            // The series without its project or user and date.
            let mut parts: Vec<&str> = k.split('/').collect();
            parts.pop();
            let series = parts.last().copied().unwrap_or_default().to_owned();
            *out.entry((*o, series)).or_insert(0) += v;
        }
    }
    out
}

#[tokio::test]
async fn a_run_killed_between_outputs_and_watermark_is_finished_exactly_once() {
    // The same log in two sites: one crashes, the other does not.
    let crashed = Site::new("aggcrash").await;
    let fresh = Site::new("aggfresh").await;
    let all: Vec<Event> = (1..=4).flat_map(chunk).collect();
    for site in [&crashed, &fresh] {
        site.log.append(chunk(1)).await.unwrap();
        site.log.append(chunk(2)).await.unwrap();
        let out = site.run();
        assert!(out.contains("aggregated 80 events"), "{out}");
        site.log.append(chunk(3)).await.unwrap();
        site.log.append(chunk(4)).await.unwrap();
    }
    let before = crashed.figures().await;

    // The run dies after the first aggregation wrote its outputs.
    let out = crashed.forge(
        &["analytics", "run"],
        &[("FORGE_TEST_AGG_CRASH", "after-outputs")],
    );
    assert!(
        !out.status.success() && out.status.signal() == Some(SIGABRT),
        "the run must abort: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("aggregated"));
    // As a crash leaves it: `project` has its pass pending and its outputs written, the
    // others have not started.
    assert_eq!(
        crashed.states().await,
        // Batches are numbered by log position: 40 events each.
        vec![(80, Some(160)), (80, None), (80, None)]
    );
    let mid = crashed.figures().await;
    assert_ne!(
        mid[PROJECT_DAY], before[PROJECT_DAY],
        "outputs were written"
    );
    assert_eq!(mid[USER_MONTH], before[USER_MONTH]);
    assert_eq!(mid[SITE_DAY], before[SITE_DAY]);

    // The dead process still holds the lease, but it was a process of this machine that is
    // gone: the next run takes the lease over at once and finishes the pass.
    let lease = crashed
        .db
        .collection::<Document>(STATE)
        .find_one(doc! {"_id": "lease"})
        .await
        .unwrap()
        .unwrap();
    assert!(
        lease.get_datetime("until").unwrap().timestamp_millis()
            > DateTime::now().timestamp_millis(),
        "the crashed run's lease has not run out: {lease}"
    );
    let out = crashed.run();
    assert!(out.contains("aggregated"), "{out}");
    let out = fresh.run();
    assert!(out.contains("aggregated 80 events"), "{out}");

    let expected = fresh.figures().await;
    assert_eq!(crashed.figures().await, expected);
    assert_eq!(crashed.states().await, vec![(160, None); 3]);
    assert_eq!(fresh.states().await, vec![(160, None); 3]);
    // And the figures are those of the log, whole: every view, commit and ticket once.
    let t = totals(&expected);
    let count = |kind: &str, private_too: bool| {
        all.iter()
            .filter(|e| e.kind == kind && (private_too || !e.context.private))
            .count() as i64
    };
    assert_eq!(t[&(PROJECT_DAY, "views".into())], count("page.view", true));
    assert_eq!(
        t[&(PROJECT_MONTH, "views".into())],
        count("page.view", true)
    );
    assert_eq!(
        t[&(PROJECT_DAY, "views:code".into())],
        count("page.view", true)
    );
    assert_eq!(
        t[&(PROJECT_DAY, "commits".into())],
        count("repo.commit", true)
    );
    assert_eq!(
        t[&(PROJECT_DAY, "tickets_opened".into())],
        count("tracker.ticket.open", true)
    );
    assert_eq!(t[&(SITE_DAY, "logins".into())], count("user.login", true));
    let user_commits = all
        .iter()
        .filter(|e| e.kind == "repo.commit" && !e.context.private && e.context.user.is_some())
        .count() as i64;
    assert_eq!(t[&(USER_MONTH, "commits".into())], user_commits);
    let live_posts = all
        .iter()
        .filter(|e| {
            e.kind == "discussion.post"
                && e.extra.as_document().and_then(|d| d.get_str("status").ok()) == Some("ok")
        })
        .count() as i64;
    assert_eq!(t[&(PROJECT_DAY, "posts".into())], live_posts);

    // Another run has nothing to do.
    let out = crashed.run();
    assert!(out.contains("aggregated 0 events"), "{out}");
    assert_eq!(crashed.figures().await, expected);

    // A rebuild from the log finds the same figures.
    let out = ok(&crashed.forge(&["analytics", "rebuild"], &[]));
    assert!(out.contains("rebuilt from"), "{out}");
    assert_eq!(crashed.figures().await, expected);
    assert_eq!(crashed.states().await, vec![(160, None); 3]);
    let out = ok(&crashed.forge(&["analytics", "rebuild", "--agg", "user"], &[]));
    assert!(out.contains("rebuilt from 160 events"), "{out}");
    assert_eq!(crashed.figures().await, expected);

    for db in [&crashed.db, &fresh.db] {
        forge_tools::events::log_db(db).drop().await.unwrap();
        db.drop().await.unwrap();
    }
}

/// The signal `std::process::abort` raises (6 on every Unix this runs on).
const SIGABRT: i32 = 6;

/// `forge analytics rebuild` on a terminal shows its progress over the events of the log.
#[tokio::test]
async fn rebuild_shows_its_progress_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("no `script` to give the command a terminal: skipped");
        return;
    }
    let site = Site::new("aggprogress").await;
    for c in 1..=4 {
        site.log.append(chunk(c)).await.unwrap();
    }
    let line = format!("{} analytics rebuild", env!("CARGO_BIN_EXE_forge"));
    let mut cmd = Command::new("script");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("FORGE_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .args(["-qec", &line, "/dev/null"])
        .env("FORGE_MONGODB_URI", common::store_uri())
        .env("FORGE_DB_NAME", &site.name)
        .env("FORGE_DATA_DIR", site.data.path())
        .env("FORGE_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // The bar counts the events of every aggregation: 160 events, three aggregations.
    assert!(text.contains("/480 events"), "no progress shown: {text:?}");
    assert!(text.contains("rebuilt from"), "{text:?}");
    assert_eq!(site.states().await, vec![(160, None); 3]);
    site.db.drop().await.unwrap();
}
