//! The analytics runner against a real store: exact figures from a scripted event sequence
//! across day, month and year boundaries; incremental runs equal to a rebuild and to a model
//! (property test); passes replayed or redone after a crash count once; batches are taken in
//! order and only whole; events logged late with old timestamps count in their own day.
//!
//! Each test uses its own database; the `events` TTL index is not created, so old timestamps
//! stay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bson::{Bson, DateTime, Document, doc};
use forge_tools::analytics::builtin::{
    self, PROJECT_DAY, PROJECT_MONTH, PROJECT_VISITORS_DAY, PROJECT_VISITORS_MONTH,
    SITE_ACTIVE_DAY, SITE_DAY, USER_MONTH,
};
use forge_tools::analytics::run::{self, RunOptions, RunReport, STATE};
use forge_tools::analytics::stored;
use forge_tools::events::{self, Event, EventContext, EventLog, ID_SHIFT};
use mongodb::Database;
use proptest::prelude::*;

/// Every output of the built-in aggregations.
const OUTPUTS: [&str; 7] = [
    PROJECT_DAY,
    PROJECT_MONTH,
    PROJECT_VISITORS_DAY,
    PROJECT_VISITORS_MONTH,
    USER_MONTH,
    SITE_DAY,
    SITE_ACTIVE_DAY,
];
/// The sum outputs (the others are distinct counts).
const SUMS: [&str; 4] = [PROJECT_DAY, PROJECT_MONTH, USER_MONTH, SITE_DAY];
const AGGS: [&str; 3] = ["project", "user", "site"];

type Figures = BTreeMap<&'static str, BTreeMap<String, i64>>;

async fn db(label: &str) -> Database {
    let uri = std::env::var("FORGE_TEST_MONGODB_URI")
        .expect("FORGE_TEST_MONGODB_URI is unset: run scripts/test");
    let name = format!(
        "t_{label}_{}_{}",
        std::process::id(),
        bson::oid::ObjectId::new()
    );
    forge_tools::store::connect(&uri, &name, Duration::from_secs(10))
        .await
        .unwrap()
}

/// Drops the test's database and its event log's.
async fn drop_dbs(db: &Database) {
    events::log_db(db).drop().await.unwrap();
    db.drop().await.unwrap();
}

fn opts() -> RunOptions {
    RunOptions {
        owner: "analytics-test".into(),
        ..RunOptions::default()
    }
}

async fn run_all(db: &Database) -> RunReport {
    let report = run::run(db, &builtin::ALL, &opts()).await.unwrap();
    assert!(!report.busy, "the lease is free in a test database");
    report
}

/// Rebuilds every aggregation; returns the report and the events the progress was told of.
async fn rebuild_all(db: &Database) -> (RunReport, u64) {
    let mut seen = 0_u64;
    let report = run::rebuild(db, &builtin::ALL, &opts(), &mut |n| seen += n)
        .await
        .unwrap();
    (report, seen)
}

async fn dump_all(db: &Database) -> Figures {
    let mut out = Figures::new();
    for o in OUTPUTS {
        out.insert(o, run::dump(db, o).await.unwrap().into_iter().collect());
    }
    out
}

async fn state(db: &Database, agg: &str) -> Document {
    db.collection::<Document>(STATE)
        .find_one(doc! {"_id": format!("agg:{agg}")})
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no state for {agg}"))
}

fn watermark(st: &Document) -> i64 {
    st.get_i64("watermark").unwrap()
}

fn pending(st: &Document) -> Option<i64> {
    match st.get("pending") {
        None | Some(Bson::Null) => None,
        Some(Bson::Int64(p)) => Some(*p),
        Some(other) => panic!("pending is {other:?}"),
    }
}

fn at(rfc3339: &str) -> DateTime {
    DateTime::from_millis(
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis(),
    )
}

/// Builds an event.
#[derive(Clone)]
struct E(Event);

impl E {
    fn new(ts: &str, kind: &str) -> Self {
        Self(Event {
            timestamp: at(ts),
            kind: kind.into(),
            context: EventContext::default(),
            extra: Bson::Null,
        })
    }
    fn project(mut self, p: &str) -> Self {
        self.0.context.neighborhood = Some("p".into());
        self.0.context.project = Some(p.into());
        self
    }
    /// A personal project (`u/<name>`).
    fn personal(mut self, owner: &str) -> Self {
        self.0.context.neighborhood = Some("u".into());
        self.0.context.project = Some(owner.into());
        self
    }
    fn tool(mut self, t: &str) -> Self {
        self.0.context.tool = Some(t.into());
        self
    }
    fn user(mut self, u: &str) -> Self {
        self.0.context.user = Some(u.into());
        self
    }
    fn visitor(mut self, v: &str) -> Self {
        self.0.context.visitor = Some(v.into());
        self
    }
    fn private(mut self) -> Self {
        self.0.context.private = true;
        self
    }
    fn status(mut self, s: &str) -> Self {
        self.0.extra = Bson::Document(doc! {"status": s});
        self
    }
}

fn figures(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    let out: BTreeMap<String, i64> = pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    assert_eq!(out.len(), pairs.len(), "a key is listed twice");
    out
}

// ---------------------------------------------------------------------------------------------
// The model: what the built-in aggregations must count, written out independently.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Model {
    sums: BTreeMap<&'static str, BTreeMap<String, i64>>,
    sets: BTreeMap<&'static str, BTreeMap<String, BTreeSet<String>>>,
}

impl Model {
    fn of(events: &[Event]) -> Self {
        let mut m = Self::default();
        for o in SUMS {
            m.sums.insert(o, BTreeMap::new());
        }
        for o in [
            PROJECT_VISITORS_DAY,
            PROJECT_VISITORS_MONTH,
            SITE_ACTIVE_DAY,
        ] {
            m.sets.insert(o, BTreeMap::new());
        }
        for e in events {
            m.add(e);
        }
        m
    }

    fn inc(&mut self, output: &'static str, key: String) {
        *self.sums.get_mut(output).unwrap().entry(key).or_default() += 1;
    }

    fn member(&mut self, output: &'static str, key: String, who: &str) {
        self.sets
            .get_mut(output)
            .unwrap()
            .entry(key)
            .or_default()
            .insert(who.to_owned());
    }

    fn add(&mut self, e: &Event) {
        let t = chrono::DateTime::from_timestamp_millis(e.timestamp.timestamp_millis()).unwrap();
        let day = t.format("%Y-%m-%d").to_string();
        let month = t.format("%Y-%m-01").to_string();
        let c = &e.context;
        // A post is live unless its `status` is a string other than "ok".
        let live = match &e.extra {
            Bson::Document(d) => !matches!(d.get("status"), Some(Bson::String(s)) if s != "ok"),
            _ => true,
        };
        let series = match e.kind.as_str() {
            "page.view" => Some("views"),
            "repo.clone" | "repo.fetch" => Some("clones"),
            "repo.archive" => Some("archives"),
            "repo.push" => Some("pushes"),
            "repo.commit" => Some("commits"),
            "wiki.page.create" | "wiki.page.edit" => Some("wiki_edits"),
            "tracker.ticket.open" => Some("tickets_opened"),
            "tracker.ticket.close" => Some("tickets_closed"),
            "discussion.post" if live => Some("posts"),
            "discussion.moderate.approve" => Some("posts"),
            _ => None,
        };
        let project = c.project.as_ref().map(|p| match c.neighborhood.as_deref() {
            Some("u") => format!("u/{p}"),
            _ => p.clone(),
        });
        if let (Some(p), Some(s)) = (&project, series) {
            self.inc(PROJECT_DAY, format!("{p}/{s}/{day}"));
            self.inc(PROJECT_MONTH, format!("{p}/{s}/{month}"));
            if let ("clones", Some(tool)) = (s, &c.tool) {
                self.inc(PROJECT_DAY, format!("{p}/clones:{tool}/{day}"));
                self.inc(PROJECT_MONTH, format!("{p}/clones:{tool}/{month}"));
            }
            if s == "views" {
                if let Some(tool) = &c.tool {
                    self.inc(PROJECT_DAY, format!("{p}/views:{tool}/{day}"));
                    self.inc(PROJECT_MONTH, format!("{p}/views:{tool}/{month}"));
                }
                if let Some(who) = c.user.as_ref().or(c.visitor.as_ref()) {
                    self.member(PROJECT_VISITORS_DAY, format!("{p}/visitors/{day}"), who);
                    self.member(PROJECT_VISITORS_MONTH, format!("{p}/visitors/{month}"), who);
                }
            }
        }
        if let (Some(u), false) = (&c.user, c.private) {
            let s = match e.kind.as_str() {
                "repo.commit" => Some("commits"),
                "wiki.page.create" | "wiki.page.edit" => Some("edits"),
                "tracker.ticket.open" => Some("tickets"),
                "discussion.post" if live => Some("posts"),
                _ => None,
            };
            if let Some(s) = s {
                self.inc(USER_MONTH, format!("{u}/{s}/{month}"));
            }
        }
        let site = match e.kind.as_str() {
            "user.signup" => Some("signups"),
            "user.login" => Some("logins"),
            "project.create" => Some("projects_created"),
            _ => None,
        };
        if let Some(s) = site {
            self.inc(SITE_DAY, format!("site/{s}/{day}"));
        }
        if let Some(u) = &c.user {
            self.member(SITE_ACTIVE_DAY, format!("site/active_users/{day}"), u);
        }
    }

    /// Distinct counts exactly.
    fn distinct(&self, output: &'static str) -> BTreeMap<String, i64> {
        self.sets[output]
            .iter()
            .map(|(k, s)| (k.clone(), s.len() as i64))
            .collect()
    }
}

/// The sum outputs equal the model's, the distinct counts are within one of the exact counts
/// on the same keys (small sets: HyperLogLog counts them linearly).
fn assert_matches_model(got: &Figures, model: &Model) {
    for o in SUMS {
        assert_eq!(got[o], model.sums[o], "{o}");
    }
    for o in [
        PROJECT_VISITORS_DAY,
        PROJECT_VISITORS_MONTH,
        SITE_ACTIVE_DAY,
    ] {
        let exact = model.distinct(o);
        assert_eq!(
            got[o].keys().collect::<Vec<_>>(),
            exact.keys().collect::<Vec<_>>(),
            "{o}: keys"
        );
        for (k, n) in &exact {
            let est = got[o][k];
            assert!(
                (est - n).abs() <= 1,
                "{o} {k}: estimated {est}, exactly {n}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// a. Exact figures from a scripted sequence
// ---------------------------------------------------------------------------------------------

fn scripted() -> Vec<Event> {
    [
        // Views on both sides of new year, with and without a tool, users and visitors.
        E::new("2026-12-31T23:59:59Z", "page.view")
            .project("alpha")
            .tool("code")
            .user("alice"),
        E::new("2027-01-01T00:00:00Z", "page.view")
            .project("alpha")
            .tool("code")
            .visitor("v1"),
        // The same visitor again that day: one more view, no more visitors.
        E::new("2027-01-01T00:00:00Z", "page.view")
            .project("alpha")
            .visitor("v1"),
        E::new("2026-12-31T12:00:00Z", "page.view")
            .project("alpha")
            .tool("wiki")
            .visitor("v2"),
        // A view of nobody in particular: counted, no visitor.
        E::new("2026-12-30T12:00:00Z", "page.view").project("alpha"),
        // A view outside any project: counted nowhere.
        E::new("2026-12-30T12:00:00Z", "page.view").visitor("v3"),
        // Clones and fetches by the millisecond around midnight.
        E::new("2026-12-31T23:59:59.999Z", "repo.clone")
            .project("alpha")
            .user("alice"),
        E::new("2027-01-01T00:00:00.001Z", "repo.fetch").project("alpha"),
        E::new("2026-03-01T00:00:00Z", "repo.archive").project("alpha"),
        // Commits and pushes around the end of February.
        E::new("2026-02-28T23:59:59Z", "repo.commit")
            .project("alpha")
            .user("alice"),
        E::new("2026-03-01T00:00:00Z", "repo.commit")
            .project("alpha")
            .user("alice"),
        E::new("2026-03-01T00:00:00Z", "repo.push")
            .project("alpha")
            .user("alice"),
        E::new("2026-02-28T10:00:00Z", "wiki.page.create")
            .project("alpha")
            .user("bob"),
        E::new("2026-03-01T10:00:00Z", "wiki.page.edit")
            .project("alpha")
            .user("bob"),
        E::new("2026-12-31T10:00:00Z", "tracker.ticket.open")
            .project("alpha")
            .user("carol"),
        E::new("2027-01-01T10:00:00Z", "tracker.ticket.close")
            .project("alpha")
            .user("carol"),
        // Posts: live, held, without a status (live), approved later.
        E::new("2027-01-01T11:00:00Z", "discussion.post")
            .project("alpha")
            .user("carol")
            .status("ok"),
        E::new("2027-01-01T11:00:00Z", "discussion.post")
            .project("alpha")
            .user("dave")
            .status("pending"),
        E::new("2027-01-01T12:00:00Z", "discussion.post")
            .project("alpha")
            .user("carol"),
        E::new("2027-01-02T09:00:00Z", "discussion.moderate.approve")
            .project("alpha")
            .user("mod"),
        // A personal project.
        E::new("2026-12-31T08:00:00Z", "repo.commit")
            .personal("bob")
            .user("bob"),
        // A private project: in its project figures, not in its users' months.
        E::new("2026-12-31T09:00:00Z", "repo.commit")
            .project("secret")
            .user("alice")
            .private(),
        E::new("2027-01-01T09:00:00Z", "tracker.ticket.open")
            .project("secret")
            .user("alice")
            .private(),
        E::new("2027-01-01T09:30:00Z", "discussion.post")
            .project("secret")
            .user("carol")
            .status("ok")
            .private(),
        // Site events.
        E::new("2026-12-31T23:59:59Z", "user.signup").user("erin"),
        E::new("2027-01-01T00:00:00Z", "user.login").user("erin"),
        E::new("2027-01-01T00:00:01Z", "user.login").user("alice"),
        E::new("2026-02-28T23:00:00Z", "project.create")
            .project("alpha")
            .user("alice"),
        // A type no aggregation counts, but its user was active.
        E::new("2027-01-01T13:00:00Z", "repo.browse")
            .project("alpha")
            .user("frank"),
    ]
    .into_iter()
    .map(|e| e.0)
    .collect()
}

fn scripted_expected() -> Figures {
    let mut f = Figures::new();
    f.insert(
        PROJECT_DAY,
        figures(&[
            ("alpha/views/2026-12-30", 1),
            ("alpha/views/2026-12-31", 2),
            ("alpha/views:code/2026-12-31", 1),
            ("alpha/views:wiki/2026-12-31", 1),
            ("alpha/views/2027-01-01", 2),
            ("alpha/views:code/2027-01-01", 1),
            ("alpha/clones/2026-12-31", 1),
            ("alpha/clones/2027-01-01", 1),
            ("alpha/archives/2026-03-01", 1),
            ("alpha/commits/2026-02-28", 1),
            ("alpha/commits/2026-03-01", 1),
            ("alpha/pushes/2026-03-01", 1),
            ("alpha/wiki_edits/2026-02-28", 1),
            ("alpha/wiki_edits/2026-03-01", 1),
            ("alpha/tickets_opened/2026-12-31", 1),
            ("alpha/tickets_closed/2027-01-01", 1),
            ("alpha/posts/2027-01-01", 2),
            ("alpha/posts/2027-01-02", 1),
            ("u/bob/commits/2026-12-31", 1),
            ("secret/commits/2026-12-31", 1),
            ("secret/tickets_opened/2027-01-01", 1),
            ("secret/posts/2027-01-01", 1),
        ]),
    );
    f.insert(
        PROJECT_MONTH,
        figures(&[
            ("alpha/views/2026-12-01", 3),
            ("alpha/views:code/2026-12-01", 1),
            ("alpha/views:wiki/2026-12-01", 1),
            ("alpha/views/2027-01-01", 2),
            ("alpha/views:code/2027-01-01", 1),
            ("alpha/clones/2026-12-01", 1),
            ("alpha/clones/2027-01-01", 1),
            ("alpha/archives/2026-03-01", 1),
            ("alpha/commits/2026-02-01", 1),
            ("alpha/commits/2026-03-01", 1),
            ("alpha/pushes/2026-03-01", 1),
            ("alpha/wiki_edits/2026-02-01", 1),
            ("alpha/wiki_edits/2026-03-01", 1),
            ("alpha/tickets_opened/2026-12-01", 1),
            ("alpha/tickets_closed/2027-01-01", 1),
            ("alpha/posts/2027-01-01", 3),
            ("u/bob/commits/2026-12-01", 1),
            ("secret/commits/2026-12-01", 1),
            ("secret/tickets_opened/2027-01-01", 1),
            ("secret/posts/2027-01-01", 1),
        ]),
    );
    f.insert(
        PROJECT_VISITORS_DAY,
        figures(&[
            ("alpha/visitors/2026-12-31", 2),
            ("alpha/visitors/2027-01-01", 1),
        ]),
    );
    f.insert(
        PROJECT_VISITORS_MONTH,
        figures(&[
            ("alpha/visitors/2026-12-01", 2),
            ("alpha/visitors/2027-01-01", 1),
        ]),
    );
    f.insert(
        USER_MONTH,
        figures(&[
            ("alice/commits/2026-02-01", 1),
            ("alice/commits/2026-03-01", 1),
            ("bob/edits/2026-02-01", 1),
            ("bob/edits/2026-03-01", 1),
            ("bob/commits/2026-12-01", 1),
            ("carol/tickets/2026-12-01", 1),
            ("carol/posts/2027-01-01", 2),
        ]),
    );
    f.insert(
        SITE_DAY,
        figures(&[
            ("site/signups/2026-12-31", 1),
            ("site/logins/2027-01-01", 2),
            ("site/projects_created/2026-02-28", 1),
        ]),
    );
    f.insert(
        SITE_ACTIVE_DAY,
        figures(&[
            // alice (view, clone, private commit), carol, bob, erin.
            ("site/active_users/2026-12-31", 4),
            // carol, dave, alice, erin, frank.
            ("site/active_users/2027-01-01", 5),
            ("site/active_users/2027-01-02", 1),
            ("site/active_users/2026-02-28", 2),
            ("site/active_users/2026-03-01", 2),
        ]),
    );
    f
}

#[tokio::test]
async fn scripted_events_count_exactly_across_day_month_and_year_boundaries() {
    let db = db("agg_script").await;
    let log = EventLog::start(&db).await.unwrap();
    let events = scripted();
    let expected = scripted_expected();
    // The model agrees with the figures worked out by hand (it is used by the other tests).
    let model = Model::of(&events);
    for o in SUMS {
        assert_eq!(model.sums[o], expected[o], "model of {o}");
    }
    for o in [
        PROJECT_VISITORS_DAY,
        PROJECT_VISITORS_MONTH,
        SITE_ACTIVE_DAY,
    ] {
        assert_eq!(model.distinct(o), expected[o], "model of {o}");
    }

    // In three batches, out of time order, with a run after the first.
    let (first, rest) = events.split_at(10);
    let (second, third) = rest.split_at(9);
    log.append(third.to_vec()).await.unwrap();
    let r = run_all(&db).await;
    assert_eq!(r.events, third.len() as u64);
    log.append(first.to_vec()).await.unwrap();
    log.append(second.to_vec()).await.unwrap();
    let r = run_all(&db).await;
    assert_eq!(r.events, (first.len() + second.len()) as u64);

    let got = dump_all(&db).await;
    assert_eq!(got, expected);
    for agg in AGGS {
        let st = state(&db, agg).await;
        // Batches are numbered by log position: the last one ends at the last event.
        assert_eq!(watermark(&st), events.len() as i64, "{agg}: {st}");
        assert_eq!(pending(&st), None, "{agg}: {st}");
        assert_eq!(st.get_i64("events").unwrap(), events.len() as i64, "{st}");
    }

    // Nothing new: nothing read, nothing changed.
    let r = run_all(&db).await;
    assert_eq!((r.events, r.passes), (0, 0));
    assert_eq!(dump_all(&db).await, expected);

    // A rebuild finds the same.
    let (r, seen) = rebuild_all(&db).await;
    assert_eq!(r.events, events.len() as u64);
    assert_eq!(seen, events.len() as u64);
    assert_eq!(dump_all(&db).await, expected);
    drop_dbs(&db).await;
}

// ---------------------------------------------------------------------------------------------
// b. Incremental runs equal a rebuild and the model
// ---------------------------------------------------------------------------------------------

const KINDS: [&str; 16] = [
    "page.view",
    "repo.clone",
    "repo.fetch",
    "repo.archive",
    "repo.commit",
    "repo.push",
    "wiki.page.create",
    "wiki.page.edit",
    "tracker.ticket.open",
    "tracker.ticket.close",
    "discussion.post",
    "discussion.moderate.approve",
    "user.signup",
    "user.login",
    "project.create",
    "repo.browse",
];
const PROJECTS: [&str; 3] = ["alpha", "beta", "gamma"];
/// Days from 2025-01-01 that are next to a month or year boundary.
const EDGE_DAYS: [i64; 10] = [0, 58, 59, 364, 365, 423, 424, 729, 730, 1095];
/// 2025-01-01T00:00:00Z.
const WINDOW_START_MS: i64 = 1_735_689_600_000;

#[derive(Debug, Clone)]
struct Spec {
    kind: usize,
    project: Option<(usize, bool)>,
    tool: Option<&'static str>,
    user: Option<usize>,
    visitor: Option<usize>,
    private: bool,
    status: Option<&'static str>,
    day: i64,
    ms_of_day: i64,
}

impl Spec {
    fn event(&self) -> Event {
        let mut c = EventContext::default();
        if let Some((p, personal)) = self.project {
            c.neighborhood = Some(if personal { "u" } else { "p" }.into());
            c.project = Some(PROJECTS[p].into());
        }
        c.tool = self.tool.map(str::to_owned);
        c.user = self.user.map(|u| format!("user{u}"));
        c.visitor = self.visitor.map(|v| format!("visitor{v}"));
        c.private = self.private;
        Event {
            timestamp: DateTime::from_millis(
                WINDOW_START_MS + self.day * 86_400_000 + self.ms_of_day,
            ),
            kind: KINDS[self.kind].into(),
            context: c,
            extra: match self.status {
                Some(s) => Bson::Document(doc! {"status": s, "post": 1}),
                None => Bson::Null,
            },
        }
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..KINDS.len(),
        proptest::option::weighted(0.9, (0..PROJECTS.len(), proptest::bool::weighted(0.2))),
        proptest::option::of(prop::sample::select(vec!["code", "wiki", "tickets"])),
        proptest::option::weighted(0.7, 0usize..6),
        proptest::option::of(0usize..4),
        proptest::bool::weighted(0.2),
        proptest::option::of(prop::sample::select(vec!["ok", "pending", "spam"])),
        prop_oneof![0i64..1096, prop::sample::select(EDGE_DAYS.to_vec())],
        prop_oneof![
            Just(0i64),
            Just(86_399_999i64),
            (0i64..86_400).prop_map(|s| s * 1000),
        ],
    )
        .prop_map(
            |(kind, project, tool, user, visitor, private, status, day, ms_of_day)| Spec {
                kind,
                project,
                tool,
                user,
                visitor,
                private,
                status,
                day,
                ms_of_day,
            },
        )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn incremental_runs_equal_a_rebuild_and_the_model(
        specs in prop::collection::vec(spec(), 0..160),
        chunks in prop::collection::vec((1usize..40, any::<bool>()), 1..12),
    ) {
        let events: Vec<Event> = specs.iter().map(Spec::event).collect();
        runtime().block_on(async {
            let db = db("agg_prop").await;
            let log = EventLog::start(&db).await.unwrap();
            // Appended in chunks (one batch each), with a run after some of them.
            let mut rest = &events[..];
            let mut chunk = chunks.iter().cycle();
            let mut counted = 0_u64;
            while !rest.is_empty() {
                let &(size, run_now) = chunk.next().unwrap();
                let (now, later) = rest.split_at(size.min(rest.len()));
                log.append(now.to_vec()).await.unwrap();
                rest = later;
                if run_now {
                    counted += run_all(&db).await.events;
                }
            }
            counted += run_all(&db).await.events;
            assert_eq!(counted, events.len() as u64);
            let incremental = dump_all(&db).await;
            assert_matches_model(&incremental, &Model::of(&events));

            let before: Vec<i64> = {
                let mut w = Vec::new();
                for agg in AGGS {
                    w.push(watermark(&state(&db, agg).await));
                }
                w
            };
            let (report, seen) = rebuild_all(&db).await;
            assert_eq!(report.events, events.len() as u64);
            assert_eq!(seen, events.len() as u64);
            let rebuilt = dump_all(&db).await;
            assert_eq!(rebuilt, incremental);
            for (agg, w) in AGGS.iter().zip(before) {
                let st = state(&db, agg).await;
                assert_eq!((watermark(&st), pending(&st)), (w, None), "{agg}: {st}");
                assert_eq!(st.get_i64("events").unwrap(), events.len() as i64, "{st}");
            }
            // And a run after the rebuild has nothing left to count.
            assert_eq!(run_all(&db).await.events, 0);
            assert_eq!(dump_all(&db).await, incremental);
            drop_dbs(&db).await;
        });
    }
}

/// A key range of a daily output starting or ending inside a month reads the months it
/// touches and gives exactly the keys in the range, in key order.
#[tokio::test]
async fn runs_of_one_process_at_once_count_everything_once() {
    // A worker may start a periodic run while its previous one is still going: they share
    // the process's lease, so the second must hand over to the first, not race it.
    let db = db("agg_same_owner").await;
    let log = EventLog::start(&db).await.unwrap();
    let events = scripted();
    let mut expected = scripted_expected();
    for _ in 0..40 {
        log.append(events.clone()).await.unwrap();
    }
    let o = opts();
    let runs = futures::future::join_all((0..4).map(|_| run::run(&db, &builtin::ALL, &o))).await;
    let mut busy = 0;
    for r in runs {
        let r = r.expect("a concurrent run of the same owner fails");
        busy += usize::from(r.busy);
    }
    assert!(
        busy >= 1,
        "four runs at once, none told another was running"
    );
    // Whatever the hand-over left (a round asked for and not yet taken) is taken now.
    run_all(&db).await;
    for o in SUMS {
        for v in expected.get_mut(o).unwrap().values_mut() {
            *v *= 40;
        }
    }
    let got = dump_all(&db).await;
    for o in SUMS {
        assert_eq!(got[o], expected[o], "{o}");
    }
    for agg in AGGS {
        let st = state(&db, agg).await;
        assert_eq!(
            st.get_i64("events").unwrap(),
            40 * events.len() as i64,
            "{st}"
        );
    }
}

#[tokio::test]
async fn key_ranges_inside_months_give_exactly_their_keys() {
    let db = db("agg_range").await;
    let log = EventLog::start(&db).await.unwrap();
    log.append(scripted()).await.unwrap();
    run_all(&db).await;
    let day = builtin::output(PROJECT_DAY).unwrap();
    let all = &scripted_expected()[PROJECT_DAY];
    for (prefix, first, last) in [
        (
            "alpha/",
            Some("alpha/views/2026-12-31"),
            Some("alpha/views/2027-01-01"),
        ),
        ("alpha/views/", Some("alpha/views/2026-12-31"), None),
        ("alpha/views/", None, Some("alpha/views/2026-12-31")),
        (
            "alpha/",
            Some("alpha/clones/2026-12-31x"),
            Some("alpha/views:code/2027"),
        ),
        ("alpha/", None, None),
        (
            "alph",
            Some("alpha/views/2026-12"),
            Some("alpha/views/2026-12-30"),
        ),
    ] {
        let got = forge_tools::analytics::query::range(&db, day, prefix, first, last)
            .await
            .unwrap();
        let want: Vec<(String, i64)> = all
            .iter()
            .filter(|(k, _)| {
                k.starts_with(prefix)
                    && first.is_none_or(|f| k.as_str() >= f)
                    && last.is_none_or(|l| k.as_str() <= l)
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        assert!(!want.is_empty(), "a range with keys in it");
        assert_eq!(got, want, "{prefix} {first:?} {last:?}");
    }
    drop_dbs(&db).await;
}

/// Outputs written in the layout before dated outputs kept a month (or a year) per document:
/// migration 0003 drops them and resets the states, so the next run recounts them from the
/// log, exactly, in the new layout.
#[tokio::test]
async fn the_old_one_key_per_document_layout_is_recounted_after_its_migration() {
    let db = db("agg_migrate").await;
    forge_tools::store::migrations::apply_pending(&db)
        .await
        .unwrap();
    let log = EventLog::start(&db).await.unwrap();
    log.append(scripted()).await.unwrap();
    run_all(&db).await;
    let expected = scripted_expected();
    // As an older forge left them: one document per day key.
    let old_day = db.collection::<Document>("agg_project_day");
    old_day.drop().await.unwrap();
    let w = watermark(&state(&db, "project").await);
    for (key, v) in &expected[PROJECT_DAY] {
        old_day
            .insert_one(doc! {"_id": key, "b": w, "v": v})
            .await
            .unwrap();
    }
    db.collection::<Document>("migrations")
        .delete_one(doc! {"_id": "0003_analytics_dated_outputs_bucketed"})
        .await
        .unwrap();
    let applied = forge_tools::store::migrations::apply_pending(&db)
        .await
        .unwrap();
    assert_eq!(
        applied,
        vec!["0003_analytics_dated_outputs_bucketed".to_owned()]
    );
    assert_eq!(old_day.count_documents(doc! {}).await.unwrap(), 0);
    let states = db.collection::<Document>(STATE);
    assert_eq!(
        states
            .count_documents(doc! {"_id": {"$regex": "^agg:"}})
            .await
            .unwrap(),
        0
    );

    let r = run_all(&db).await;
    assert_eq!(
        r.events,
        scripted().len() as u64,
        "every aggregation recounted, in one pass"
    );
    assert_eq!(dump_all(&db).await, expected);
    // One document per month now: December and January of the scripted days.
    let view_docs = |coll: &'static str| {
        let c = db.collection::<Document>(coll);
        async move {
            let ids: Vec<String> = c
                .distinct("_id", doc! {"_id": {"$regex": "^alpha/views/"}})
                .await
                .unwrap()
                .into_iter()
                .filter_map(|b| b.as_str().map(str::to_owned))
                .collect();
            ids
        }
    };
    assert_eq!(
        view_docs("agg_project_day").await,
        ["alpha/views/2026-12", "alpha/views/2027-01"]
    );
    // And one per year for months.
    assert_eq!(
        view_docs("agg_project_month").await,
        ["alpha/views/2026", "alpha/views/2027"]
    );
    drop_dbs(&db).await;
}

// ---------------------------------------------------------------------------------------------
// c. Exactly once under replays
// ---------------------------------------------------------------------------------------------

/// Sets an aggregation's state as a crash between writing outputs and moving the watermark
/// leaves it.
async fn as_if_crashed(db: &Database, agg: &str, watermark: i64, pending: i64) {
    let r = db
        .collection::<Document>(STATE)
        .update_one(
            doc! {"_id": format!("agg:{agg}")},
            doc! {"$set": {"watermark": watermark, "pending": pending}},
        )
        .await
        .unwrap();
    assert_eq!(r.matched_count, 1);
}

#[tokio::test]
async fn replayed_and_redone_passes_count_once() {
    let db = db("agg_replay").await;
    let log = EventLog::start(&db).await.unwrap();
    let events = scripted();
    let (a, b) = events.split_at(12);
    log.append(a.to_vec()).await.unwrap();
    run_all(&db).await;
    let w_a = watermark(&state(&db, "project").await);
    log.append(b.to_vec()).await.unwrap();
    run_all(&db).await;
    let w_b = watermark(&state(&db, "project").await);
    assert!(w_b > w_a, "{w_a} {w_b}");
    let expected = scripted_expected();
    assert_eq!(dump_all(&db).await, expected);

    // Run again with nothing reset: nothing read, nothing changed.
    let r = run_all(&db).await;
    assert_eq!(r.events, 0);
    assert_eq!(dump_all(&db).await, expected);

    // Every aggregation stopped after writing its outputs, before moving its watermark.
    for agg in AGGS {
        as_if_crashed(&db, agg, w_a, w_b).await;
    }
    let r = run_all(&db).await;
    assert_eq!(r.passes, 3, "one redone pass per aggregation");
    assert_eq!(dump_all(&db).await, expected, "a redone pass counted twice");
    for agg in AGGS {
        let st = state(&db, agg).await;
        assert_eq!((watermark(&st), pending(&st)), (w_b, None), "{agg}: {st}");
    }

    // Only the first aggregation got that far; the others had not started (their outputs
    // are written, as a finished run left them, so they must stay where they are).
    as_if_crashed(&db, "project", w_a, w_b).await;
    run_all(&db).await;
    assert_eq!(dump_all(&db).await, expected);

    // A crash in the middle of the outputs: some documents of the pass are written, others
    // not yet. Undo the pass in every other document of each sum output (its contribution and
    // its pass mark), then redo the pass.
    let contribution = Model::of(b);
    for o in SUMS {
        let output = forge_tools::analytics::builtin::output(o).unwrap();
        let coll = db.collection::<Document>(&output.collection());
        // The pass's keys by the document holding them (a daily output keeps a month of
        // days per document): every other document is undone as a whole.
        let mut docs: BTreeMap<String, Document> = BTreeMap::new();
        for (key, n) in &contribution.sums[o] {
            let place = stored::place(output, key).unwrap();
            let path = match place.day {
                Some(day) => format!("v.{day}"),
                None => "v".into(),
            };
            docs.entry(place.id).or_default().insert(path, -*n);
        }
        for (i, (id, undo)) in docs.into_iter().enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let r = coll
                .update_one(
                    doc! {"_id": &id, "b": w_b},
                    doc! {"$inc": undo, "$set": {"b": w_a}},
                )
                .await
                .unwrap();
            assert_eq!(r.matched_count, 1, "{o} {id}");
        }
    }
    assert_ne!(dump_all(&db).await, expected);
    for agg in AGGS {
        as_if_crashed(&db, agg, w_a, w_b).await;
    }
    run_all(&db).await;
    assert_eq!(
        dump_all(&db).await,
        expected,
        "a partly written pass redone"
    );

    // A replay of the same pass by hand (the guard on each document) changes nothing either.
    for agg in AGGS {
        as_if_crashed(&db, agg, w_a, w_b).await;
    }
    run_all(&db).await;
    run_all(&db).await;
    assert_eq!(dump_all(&db).await, expected);
    drop_dbs(&db).await;
}

// ---------------------------------------------------------------------------------------------
// d. Batches in order, whole
// ---------------------------------------------------------------------------------------------

/// An event as the log stores it, with a hand-made id and batch size.
fn stored(batch: i64, index: i64, n: i32, e: &Event) -> Document {
    let mut d = bson::serialize_to_document(e).unwrap();
    d.insert("_id", (batch << ID_SHIFT) | index);
    d.insert("n", n);
    d.insert("w", DateTime::now());
    d
}

/// Inserts hand-made events, moving the event counter past their batches as the writer does
/// when it numbers them (a run reads no further than the counter).
async fn insert(db: &Database, docs: Vec<Document>) {
    let last = docs
        .iter()
        .filter_map(|d| d.get_i64("_id").ok())
        .map(events::batch_of)
        .max()
        .unwrap_or(0);
    events::collection::<Document>(db)
        .insert_many(docs)
        .await
        .unwrap();
    events::log_db(db)
        .collection::<Document>(events::SEQUENCE)
        .update_one(doc! {"_id": "events"}, doc! {"$max": {"seq": last}})
        .upsert(true)
        .await
        .unwrap();
}

async fn commits(db: &Database) -> Option<i64> {
    run::dump(db, PROJECT_DAY)
        .await
        .unwrap()
        .get("alpha/commits/2026-12-31")
        .copied()
}

#[tokio::test]
async fn batches_are_counted_in_order_and_only_whole() {
    let db = db("agg_order").await;
    let commit = E::new("2026-12-31T12:00:00Z", "repo.commit")
        .project("alpha")
        .user("alice")
        .0;
    // Batch 1 (two events) and batch 3; batch 2 is still being written.
    insert(
        &db,
        vec![
            stored(1, 0, 2, &commit),
            stored(1, 1, 2, &commit),
            stored(3, 0, 1, &commit),
        ],
    )
    .await;
    let r = run_all(&db).await;
    assert_eq!(r.events, 2);
    assert_eq!(commits(&db).await, Some(2));
    assert_eq!(watermark(&state(&db, "project").await), 1);
    // Still missing: still waited for.
    let r = run_all(&db).await;
    assert_eq!(r.events, 0);
    assert_eq!(commits(&db).await, Some(2));

    // Batch 2 arrives: 2 and 3 are counted, each once.
    insert(&db, vec![stored(2, 0, 1, &commit)]).await;
    let r = run_all(&db).await;
    assert_eq!(r.events, 2);
    assert_eq!(commits(&db).await, Some(4));
    for agg in AGGS {
        assert_eq!(watermark(&state(&db, agg).await), 3, "{agg}");
    }
    assert_eq!(
        run::dump(&db, USER_MONTH).await.unwrap()["alice/commits/2026-12-01"],
        4
    );

    // Batch 4 of three events with two written so far, and a whole batch 5 after it.
    insert(
        &db,
        vec![
            stored(4, 0, 3, &commit),
            stored(4, 2, 3, &commit),
            stored(5, 0, 1, &commit),
        ],
    )
    .await;
    let r = run_all(&db).await;
    assert_eq!(r.events, 0);
    assert_eq!(commits(&db).await, Some(4));
    assert_eq!(watermark(&state(&db, "project").await), 3);

    insert(&db, vec![stored(4, 1, 3, &commit)]).await;
    let r = run_all(&db).await;
    assert_eq!(r.events, 4);
    assert_eq!(commits(&db).await, Some(8));
    for agg in AGGS {
        let st = state(&db, agg).await;
        assert_eq!((watermark(&st), pending(&st)), (5, None), "{agg}: {st}");
    }
    assert_eq!(run_all(&db).await.events, 0);
    assert_eq!(commits(&db).await, Some(8));
    assert_eq!(
        run::dump(&db, USER_MONTH).await.unwrap()["alice/commits/2026-12-01"],
        8
    );
    let (_, seen) = rebuild_all(&db).await;
    assert_eq!(seen, 8);
    assert_eq!(commits(&db).await, Some(8));
    drop_dbs(&db).await;
}

// ---------------------------------------------------------------------------------------------
// e. Late timestamps
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_event_logged_late_counts_once_in_its_own_day() {
    let db = db("agg_late").await;
    let log = EventLog::start(&db).await.unwrap();
    let now = E::new("2027-01-05T10:00:00Z", "repo.push")
        .project("alpha")
        .user("alice")
        .0;
    log.append(vec![now.clone(), now]).await.unwrap();
    run_all(&db).await;
    let late = E::new("2026-12-31T23:59:59Z", "repo.push")
        .project("alpha")
        .user("alice")
        .0;
    log.append(vec![late]).await.unwrap();
    run_all(&db).await;
    run_all(&db).await;
    let day = run::dump(&db, PROJECT_DAY).await.unwrap();
    let month = run::dump(&db, PROJECT_MONTH).await.unwrap();
    let expected_day = figures(&[
        ("alpha/pushes/2027-01-05", 2),
        ("alpha/pushes/2026-12-31", 1),
    ]);
    let expected_month = figures(&[
        ("alpha/pushes/2027-01-01", 2),
        ("alpha/pushes/2026-12-01", 1),
    ]);
    assert_eq!(day.into_iter().collect::<BTreeMap<_, _>>(), expected_day);
    assert_eq!(
        month.into_iter().collect::<BTreeMap<_, _>>(),
        expected_month
    );
    assert_eq!(
        run::dump(&db, SITE_ACTIVE_DAY)
            .await
            .unwrap()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        figures(&[
            ("site/active_users/2027-01-05", 1),
            ("site/active_users/2026-12-31", 1)
        ])
    );
    rebuild_all(&db).await;
    assert_eq!(
        run::dump(&db, PROJECT_DAY)
            .await
            .unwrap()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        expected_day
    );
    drop_dbs(&db).await;
}

// ---------------------------------------------------------------------------------------------
// Rebuilding one aggregation; rebuilding an empty log
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_others_catch_up_with_an_aggregation_rebuilt_alone() {
    let db = db("agg_one").await;
    let log = EventLog::start(&db).await.unwrap();
    let events = scripted();
    let (a, b) = events.split_at(15);
    log.append(a.to_vec()).await.unwrap();
    run_all(&db).await;
    log.append(b.to_vec()).await.unwrap();
    // Only `project` is rebuilt: it reads the whole log and is ahead of the others.
    let mut seen = 0;
    run::rebuild(&db, &builtin::ALL[..1], &opts(), &mut |n| seen += n)
        .await
        .unwrap();
    assert_eq!(seen, events.len() as u64);
    let (whole, first) = (events.len() as i64, a.len() as i64);
    assert_eq!(watermark(&state(&db, "project").await), whole);
    assert_eq!(watermark(&state(&db, "user").await), first);
    let expected = scripted_expected();
    assert_eq!(
        run::dump(&db, PROJECT_DAY)
            .await
            .unwrap()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        expected[PROJECT_DAY]
    );
    // The next run brings the others up to it without counting anything twice.
    let r = run_all(&db).await;
    assert_eq!(r.events, b.len() as u64);
    assert_eq!(dump_all(&db).await, expected);
    for agg in AGGS {
        let st = state(&db, agg).await;
        assert_eq!((watermark(&st), pending(&st)), (whole, None), "{agg}: {st}");
    }
    drop_dbs(&db).await;
}

#[tokio::test]
async fn rebuilding_an_empty_log_empties_the_outputs() {
    let db = db("agg_empty").await;
    let (r, seen) = rebuild_all(&db).await;
    assert_eq!((r.events, seen), (0, 0));
    assert!(dump_all(&db).await.values().all(BTreeMap::is_empty));
    // Events removed from the log (expired) and a rebuild: the outputs go with them.
    let log = EventLog::start(&db).await.unwrap();
    log.append(scripted()).await.unwrap();
    run_all(&db).await;
    assert_eq!(dump_all(&db).await, scripted_expected());
    events::collection::<Document>(&db)
        .delete_many(doc! {})
        .await
        .unwrap();
    rebuild_all(&db).await;
    assert!(dump_all(&db).await.values().all(BTreeMap::is_empty));
    for agg in AGGS {
        let st = state(&db, agg).await;
        assert_eq!(pending(&st), None, "{agg}: {st}");
    }
    drop_dbs(&db).await;
}

#[tokio::test]
async fn a_rebuild_counts_what_is_left_after_the_oldest_batches_expired() {
    let db = db("agg_expired").await;
    let commit = E::new("2026-12-31T12:00:00Z", "repo.commit")
        .project("alpha")
        .user("alice")
        .0;
    insert(&db, (1..=7).map(|b| stored(b, 0, 1, &commit)).collect()).await;
    run_all(&db).await;
    assert_eq!(commits(&db).await, Some(7));
    // Batches 1 to 4 pass the retention period and the TTL index removes them.
    events::collection::<Document>(&db)
        .delete_many(doc! {"_id": {"$lt": 5_i64 << ID_SHIFT}})
        .await
        .unwrap();
    // A rebuild recomputes the figures from what the log holds: batches 5 to 7.
    let (r, seen) = rebuild_all(&db).await;
    assert_eq!((r.events, seen), (3, 3), "rebuilt from the events left");
    assert_eq!(commits(&db).await, Some(3));
    for agg in AGGS {
        let st = state(&db, agg).await;
        assert_eq!((watermark(&st), pending(&st)), (7, None), "{agg}: {st}");
    }
    drop_dbs(&db).await;
}

#[tokio::test]
async fn batches_numbered_by_log_position_follow_each_other_and_holes_are_skipped() {
    let db = db("agg_positions").await;
    let commit = E::new("2026-12-31T12:00:00Z", "repo.commit")
        .project("alpha")
        .user("alice")
        .0;
    let batch = |end: i64, n: i32| -> Vec<Document> {
        (0..i64::from(n))
            .map(|i| stored(end, i, n, &commit))
            .collect()
    };
    // Positions 1-2, 3-5 and 7-9: the batch of position 6 is still on its way.
    insert(&db, [batch(2, 2), batch(5, 3), batch(9, 3)].concat()).await;
    assert_eq!(run_all(&db).await.events, 5);
    assert_eq!(watermark(&state(&db, "project").await), 5);
    insert(&db, batch(6, 1)).await;
    assert_eq!(run_all(&db).await.events, 4);
    assert_eq!(commits(&db).await, Some(9));
    assert_eq!(watermark(&state(&db, "project").await), 9);

    // Numbers taken by writers that died, more than one read covers, then a batch written
    // long ago: the run reads past the empty ranges and counts it.
    insert(&db, batch(200_000, 2)).await;
    wait_out_stall(&db, 200_000).await;
    assert_eq!(run_all(&db).await.events, 2);
    assert_eq!(commits(&db).await, Some(11));
    for agg in AGGS {
        let st = state(&db, agg).await;
        assert_eq!(
            (watermark(&st), pending(&st)),
            (200_000, None),
            "{agg}: {st}"
        );
    }
    // A rebuild takes the same batches.
    let (_, seen) = rebuild_all(&db).await;
    assert_eq!(seen, 11);
    assert_eq!(commits(&db).await, Some(11));
    drop_dbs(&db).await;
}

/// Makes batch `batch` and those after it look written longer than `run::STALE` ago, as if
/// a hole before them (or a part of them) had been waited for that long.
async fn wait_out_stall(db: &Database, batch: i64) {
    let r = events::collection::<Document>(db)
        .update_many(
            doc! {"_id": {"$gte": batch << ID_SHIFT}},
            doc! {"$set": {"w": DateTime::from_millis(0)}},
        )
        .await
        .unwrap();
    assert!(r.matched_count > 0, "no batch {batch} or later");
}

#[tokio::test]
async fn a_batch_that_never_arrives_in_full_is_passed_after_a_while() {
    let db = db("agg_stale").await;
    let commit = E::new("2026-12-31T12:00:00Z", "repo.commit")
        .project("alpha")
        .user("alice")
        .0;
    insert(
        &db,
        vec![stored(1, 0, 1, &commit), stored(3, 0, 1, &commit)],
    )
    .await;
    assert_eq!(run_all(&db).await.events, 1);
    wait_out_stall(&db, 2).await;
    // Batch 2's writer died: counted without it.
    assert_eq!(run_all(&db).await.events, 1);
    assert_eq!(commits(&db).await, Some(2));
    assert_eq!(watermark(&state(&db, "project").await), 3);

    // Batch 4 stays in part: after a while, what there is of it is counted, once.
    insert(
        &db,
        vec![
            stored(4, 0, 3, &commit),
            stored(4, 1, 3, &commit),
            stored(5, 0, 1, &commit),
        ],
    )
    .await;
    assert_eq!(run_all(&db).await.events, 0);
    wait_out_stall(&db, 4).await;
    assert_eq!(run_all(&db).await.events, 3);
    assert_eq!(run_all(&db).await.events, 0);
    assert_eq!(commits(&db).await, Some(5));
    for agg in AGGS {
        let st = state(&db, agg).await;
        assert_eq!((watermark(&st), pending(&st)), (5, None), "{agg}: {st}");
    }
    drop_dbs(&db).await;
}
