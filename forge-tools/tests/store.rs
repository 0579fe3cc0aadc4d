//! Store-level behaviour on a real server: migrations, lazy upgrades, unique constraints,
//! membership updates and the event log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bson::{DateTime, Document, doc};
use forge_tools::acl::{Ace, Principal, Role, perm};
use forge_tools::discussion;
use forge_tools::events::{EventContext, EventLog};
use forge_tools::ids::{ToolId, UserId};
use forge_tools::instances;
use forge_tools::projects::{self, Neighborhood, NewProject};
use forge_tools::store::migrations;
use mongodb::Database;

async fn db(label: &str) -> Database {
    let uri = std::env::var("FORGE_TEST_MONGODB_URI")
        .expect("FORGE_TEST_MONGODB_URI is unset: run scripts/test");
    let name = format!(
        "t_{label}_{}_{}",
        std::process::id(),
        bson::oid::ObjectId::new()
    );
    let db = forge_tools::store::connect(&uri, &name, Duration::from_secs(10))
        .await
        .unwrap();
    projects::ensure_indexes(&db).await.unwrap();
    forge_tools::users::ensure_indexes(&db).await.unwrap();
    db
}

fn v1_project(name: &str, private: bool) -> Document {
    doc! {
        "_id": bson::oid::ObjectId::new(), "neighborhood": "p", "shortname": name, "name": name,
        "summary": "", "private": private, "members": [], "deleted": false, "created": DateTime::now(),
    }
}

#[tokio::test]
async fn migrations_apply_once_are_recorded_and_rerun_is_a_noop() {
    let db = db("migrate").await;
    let raw = db.collection::<Document>("projects");
    raw.insert_many([
        v1_project("old-private", true),
        v1_project("old-public", false),
    ])
    .await
    .unwrap();

    let status = migrations::status(&db).await.unwrap();
    assert!(status.iter().all(|(_, _, applied)| applied.is_none()));
    let first = migrations::apply_pending(&db).await.unwrap();
    assert_eq!(
        first,
        migrations::all()
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
    );
    let status = migrations::status(&db).await.unwrap();
    assert!(status.iter().all(|(_, _, applied)| applied.is_some()));
    assert_eq!(
        db.collection::<Document>("migrations")
            .count_documents(doc! {})
            .await
            .unwrap(),
        first.len() as u64
    );

    // The bulk upgrade rewrote the stored documents.
    let private = raw
        .find_one(doc! {"shortname": "old-private"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(private.get_i32("schema_version").unwrap(), 2);
    assert!(private.get("private").is_none());
    let p = projects::get(&db, Neighborhood::Projects, "old-private")
        .await
        .unwrap()
        .unwrap();
    assert!(!p.is_public());
    assert!(
        projects::get(&db, Neighborhood::Projects, "old-public")
            .await
            .unwrap()
            .unwrap()
            .is_public()
    );

    // Running again applies nothing and changes nothing.
    let before: Vec<Document> = {
        use futures::TryStreamExt;
        raw.find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    assert!(migrations::apply_pending(&db).await.unwrap().is_empty());
    // Each migration is idempotent even if a crash lost its record.
    db.collection::<Document>("migrations")
        .delete_many(doc! {})
        .await
        .unwrap();
    migrations::apply_pending(&db).await.unwrap();
    let after: Vec<Document> = {
        use futures::TryStreamExt;
        raw.find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    assert_eq!(before, after);
}

/// A tool document as installs wrote it before tools had discussions.
fn old_tool(kind: &str, mount: &str, acl: Option<Vec<Ace>>) -> Document {
    let mut d = doc! {
        "_id": bson::oid::ObjectId::new(), "project_id": bson::oid::ObjectId::new(),
        "kind": kind, "mount": mount, "label": mount, "ordinal": 0, "options": {},
        "created": DateTime::now(), "epoch": 0_i64,
    };
    if let Some(acl) = acl {
        d.insert("acl", bson::serialize_to_bson(&acl).unwrap());
    }
    d
}

async fn all_docs(coll: &mongodb::Collection<Document>) -> Vec<Document> {
    use futures::TryStreamExt;
    coll.find(doc! {})
        .sort(doc! {"mount": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn wiki_and_git_tools_get_the_discussion_entries_once() {
    let db = db("toolacl").await;
    let raw = db.collection::<Document>(instances::COLLECTION);
    let wiki_old = vec![
        Ace::allow(Principal::Member, perm::WRITE),
        Ace::allow(Principal::Developer, "delete"),
    ];
    // Partly there already: only what is missing is added.
    let wiki_partial = vec![
        Ace::allow(Principal::Member, perm::WRITE),
        Ace::allow(Principal::Authenticated, discussion::perm::UNMODERATED_POST),
        Ace::allow(Principal::Developer, perm::MODERATE),
    ];
    // Posting was decided on purpose: left alone.
    let wiki_decided = vec![
        Ace::allow(Principal::Member, perm::WRITE),
        Ace::deny(Principal::Authenticated, discussion::perm::POST),
    ];
    let tracker_old = vec![Ace::allow(Principal::Authenticated, "create")];
    let docs = [
        old_tool("wiki", "a-wiki", Some(wiki_old.clone())),
        old_tool("git", "b-git", Some(Vec::new())),
        old_tool("git", "c-git-no-acl", None),
        old_tool("wiki", "d-wiki-partial", Some(wiki_partial.clone())),
        old_tool("wiki", "e-wiki-decided", Some(wiki_decided.clone())),
        old_tool("tracker", "f-tracker", Some(tracker_old.clone())),
        old_tool("link", "g-link", Some(Vec::new())),
    ];
    let ids: Vec<ToolId> = docs
        .iter()
        .map(|d| ToolId(d.get_object_id("_id").unwrap()))
        .collect();
    raw.insert_many(docs).await.unwrap();
    let untouched_before = all_docs(&raw).await;

    migrations::apply_pending(&db).await.unwrap();

    let acl = |i: usize| {
        let db = db.clone();
        let id = ids[i];
        async move { instances::by_id(&db, id).await.unwrap().unwrap().acl }
    };
    let defaults = discussion::default_acl();
    // The old wiki: its own entries first, then the discussion's, each once.
    let mut want = wiki_old.clone();
    want.extend(defaults.clone());
    assert_eq!(acl(0).await, want);
    assert_eq!(acl(1).await, defaults);
    assert_eq!(acl(2).await, defaults);
    // Stored as an install writes them, field order included (so a later `$addToSet` of
    // the same entry finds it).
    let stored = raw
        .find_one(doc! {"mount": "b-git"})
        .await
        .unwrap()
        .unwrap();
    let fields = |acl: &bson::Bson| -> Vec<Vec<(String, bson::Bson)>> {
        acl.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let e = e.as_document().unwrap();
                e.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            })
            .collect()
    };
    assert_eq!(
        fields(stored.get("acl").unwrap()),
        fields(&bson::serialize_to_bson(&defaults).unwrap())
    );
    let mut want = wiki_partial.clone();
    want.push(Ace::allow(Principal::Authenticated, discussion::perm::POST));
    assert_eq!(acl(3).await, want);
    assert!(defaults.iter().all(|a| want.contains(a)));
    // What mentions `post` already, and the other kinds, are left as they were.
    assert_eq!(acl(4).await, wiki_decided);
    assert_eq!(acl(5).await, tracker_old);
    assert_eq!(acl(6).await, Vec::<Ace>::new());
    let after = all_docs(&raw).await;
    assert_eq!(after.len(), untouched_before.len());
    for (before, after) in untouched_before.iter().zip(&after) {
        if ["e-wiki-decided", "f-tracker", "g-link"].contains(&before.get_str("mount").unwrap()) {
            assert_eq!(before, after);
        }
    }

    // Running again changes nothing: the record stops it, and so would the commands
    // themselves if a crash lost the record.
    let migrated = all_docs(&raw).await;
    assert!(migrations::apply_pending(&db).await.unwrap().is_empty());
    assert_eq!(all_docs(&raw).await, migrated);
    db.collection::<Document>(migrations::COLLECTION)
        .delete_many(doc! {})
        .await
        .unwrap();
    assert!(!migrations::apply_pending(&db).await.unwrap().is_empty());
    assert_eq!(all_docs(&raw).await, migrated);
}

#[tokio::test]
async fn old_documents_are_upgraded_when_read() {
    let db = db("lazy").await;
    db.collection::<Document>("projects")
        .insert_one(v1_project("legacy", true))
        .await
        .unwrap();
    let p = projects::get(&db, Neighborhood::Projects, "legacy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.schema_version, projects::SCHEMA_VERSION);
    assert!(!p.is_public());
    // Saving writes the current schema back.
    projects::save(&db, &p).await.unwrap();
    let stored = db
        .collection::<Document>("projects")
        .find_one(doc! {"shortname": "legacy"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.get_i32("schema_version").unwrap(), 2);
    assert!(stored.get("private").is_none());
    assert!(stored.get_array("acl").unwrap().len() >= 4);
}

#[tokio::test]
async fn short_names_are_unique_per_neighborhood() {
    let db = db("unique").await;
    let owner = UserId::new();
    let new = |nbhd, name: &str| NewProject {
        neighborhood: nbhd,
        shortname: name.into(),
        name: "N".into(),
        summary: String::new(),
        private: false,
    };
    projects::create(&db, new(Neighborhood::Projects, "same"), owner)
        .await
        .unwrap();
    let dup = projects::create(&db, new(Neighborhood::Projects, "same"), owner)
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("already taken"), "{dup}");
    // The same name in the user neighborhood is a different project.
    projects::create(&db, new(Neighborhood::Users, "same"), owner)
        .await
        .unwrap();
    // The index itself refuses a duplicate that skips the check.
    let raw = db.collection::<Document>("projects");
    let mut d = v1_project("same", false);
    d.insert("schema_version", 2);
    let err = raw.insert_one(d).await.unwrap_err();
    assert!(forge_tools::Error::is_duplicate_key(&err));
}

#[tokio::test]
async fn members_are_added_and_updated_in_place() {
    let db = db("members").await;
    let owner = UserId::new();
    let p = projects::create(
        &db,
        NewProject {
            neighborhood: Neighborhood::Projects,
            shortname: "team".into(),
            name: "T".into(),
            summary: String::new(),
            private: false,
        },
        owner,
    )
    .await
    .unwrap();
    let u = UserId::new();
    projects::set_member(&db, p.id, u, Role::Member)
        .await
        .unwrap();
    projects::set_member(&db, p.id, u, Role::Developer)
        .await
        .unwrap();
    projects::set_member(&db, p.id, u, Role::Developer)
        .await
        .unwrap();
    let p = projects::by_id(&db, p.id).await.unwrap().unwrap();
    assert_eq!(p.members.len(), 2);
    assert_eq!(p.role_of(u), Some(Role::Developer));
    projects::remove_member(&db, p.id, u).await.unwrap();
    let p = projects::by_id(&db, p.id).await.unwrap().unwrap();
    assert_eq!(p.role_of(u), None);
    assert_eq!(p.role_of(owner), Some(Role::Admin));
}

#[tokio::test]
async fn events_are_written_in_batches_off_the_request_path() {
    let db = db("events").await;
    forge_tools::events::ensure_indexes(&db, 400).await.unwrap();
    let log = EventLog::start(&db).await.unwrap();
    for i in 0..2500 {
        let ctx = EventContext {
            project: Some("p1".into()),
            user: Some(format!("u{}", i % 7)),
            ip: Some("127.0.0.1".into()),
            ..Default::default()
        };
        log.record("page.view", ctx, bson::Bson::Int32(i));
    }
    log.flush().await;
    let coll = forge_tools::events::collection::<Document>(&db);
    assert_eq!(
        coll.count_documents(doc! {"type": "page.view"})
            .await
            .unwrap(),
        2500
    );
    let one = coll.find_one(doc! {"extra": 42}).await.unwrap().unwrap();
    assert_eq!(
        one.get_document("context")
            .unwrap()
            .get_str("project")
            .unwrap(),
        "p1"
    );
    assert!(one.get_datetime("timestamp").is_ok());
}

#[tokio::test]
async fn events_are_numbered_by_batch_and_never_keep_addresses() {
    let db = db("events_ids").await;
    forge_tools::events::ensure_indexes(&db, 400).await.unwrap();
    let log = EventLog::start(&db).await.unwrap();
    for i in 0..3 {
        let ctx = EventContext {
            project: Some("p1".into()),
            ip: Some(format!("10.0.0.{i}")),
            ..Default::default()
        };
        log.record("page.view", ctx, bson::Bson::Int32(i));
    }
    log.flush().await;
    let docs: Vec<Document> = {
        use futures::TryStreamExt;
        forge_tools::events::collection::<Document>(&db)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    assert_eq!(docs.len(), 3);
    let mut visitors = std::collections::HashSet::new();
    for d in &docs {
        let id = d.get_i64("_id").unwrap();
        let n = d.get_i32("n").unwrap();
        // All in one batch of three, or split: the batch size matches what was written.
        assert!(id >> forge_tools::events::ID_SHIFT >= 1);
        assert!((id & ((1 << forge_tools::events::ID_SHIFT) - 1)) < i64::from(n));
        let ctx = d.get_document("context").unwrap();
        assert!(ctx.get("ip").is_none(), "{d}");
        assert!(!d.to_string().contains("10.0.0."), "{d}");
        visitors.insert(ctx.get_str("visitor").unwrap().to_owned());
    }
    assert_eq!(visitors.len(), 3, "one visitor per address");
    assert_eq!(
        log.stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        log.stats()
            .written
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

#[tokio::test]
async fn raw_events_expire_after_the_retention_period() {
    let db = db("events_ttl").await;
    let ttl = |days: i64| {
        let db = db.clone();
        async move {
            use futures::TryStreamExt;
            let idx: Vec<mongodb::IndexModel> = forge_tools::events::collection::<Document>(&db)
                .list_indexes()
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let ts = idx
                .iter()
                .find(|i| i.keys == doc! {"timestamp": 1})
                .expect("timestamp index");
            assert_eq!(
                ts.options.as_ref().and_then(|o| o.expire_after),
                Some(Duration::from_secs(days as u64 * 86_400))
            );
        }
    };
    // An earlier version's plain index (in the forge's database, where earlier versions kept
    // the log) becomes the TTL index, in the log's database.
    db.collection::<Document>("events")
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"timestamp": 1})
                .build(),
        )
        .await
        .unwrap();
    forge_tools::events::ensure_indexes(&db, 30).await.unwrap();
    ttl(30).await;
    forge_tools::events::ensure_indexes(&db, 400).await.unwrap();
    ttl(400).await;
}

#[tokio::test]
async fn the_first_batches_of_a_new_log_race_for_the_sequence_and_all_land() {
    let db = db("events_race").await;
    let log = EventLog::start(&db).await.unwrap();
    let batch = |i: i32| {
        let log = log.clone();
        async move {
            let e = forge_tools::events::Event {
                timestamp: DateTime::now(),
                kind: "x".into(),
                context: EventContext::default(),
                extra: bson::Bson::Int32(i),
            };
            log.append(vec![e.clone(), e]).await.unwrap()
        }
    };
    let written = futures::future::join_all((0..8).map(batch)).await;
    assert_eq!(written, vec![2; 8]);
    assert_eq!(
        forge_tools::events::collection::<Document>(&db)
            .count_documents(doc! {})
            .await
            .unwrap(),
        16
    );
}

/// The log as an earlier version left it: events and the counter in the forge's database.
async fn earlier_log(db: &Database, batches: std::ops::RangeInclusive<i64>) {
    let shift = forge_tools::events::ID_SHIFT;
    let docs: Vec<Document> = batches
        .clone()
        .flat_map(|b| {
            (0..2).map(move |i| {
                doc! {"_id": (b << shift) | i, "n": 2, "w": DateTime::now(),
                "timestamp": DateTime::now(), "type": "page.view",
                "context": {"project": "p1"}, "extra": null}
            })
        })
        .collect();
    db.collection::<Document>("events")
        .insert_many(docs)
        .await
        .unwrap();
    db.collection::<Document>("event_sequence")
        .update_one(
            doc! {"_id": "events"},
            doc! {"$max": {"seq": *batches.end()}},
        )
        .upsert(true)
        .await
        .unwrap();
}

/// Whether the forge's database has an `events` collection (earlier versions' place).
async fn keeps_events(db: &Database) -> bool {
    db.list_collection_names()
        .await
        .unwrap()
        .iter()
        .any(|n| n == "events")
}

#[tokio::test]
async fn an_earlier_versions_log_moves_to_its_own_database() {
    use futures::TryStreamExt;
    let db = db("events_move").await;
    let log_db = forge_tools::events::log_db(&db);
    assert_eq!(log_db.name(), format!("{}_events", db.name()));
    earlier_log(&db, 1..=5).await;
    forge_tools::events::ensure_indexes(&db, 400).await.unwrap();
    let names = db.list_collection_names().await.unwrap();
    assert!(
        !names.iter().any(|n| n == "events" || n == "event_sequence"),
        "{names:?}"
    );
    let coll = forge_tools::events::collection::<Document>(&db);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 10);
    assert_eq!(forge_tools::events::head(&log_db).await.unwrap(), 5);

    // Another node of the earlier version went on writing to the old place: the next start
    // copies what it wrote, keeps what is there already, and the counter takes the larger.
    earlier_log(&db, 5..=9).await;
    forge_tools::events::ensure_indexes(&db, 400).await.unwrap();
    assert!(!keeps_events(&db).await);
    let ids: Vec<i64> = coll
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .await
        .unwrap()
        .try_collect::<Vec<Document>>()
        .await
        .unwrap()
        .iter()
        .map(|d| d.get_i64("_id").unwrap())
        .collect();
    let shift = forge_tools::events::ID_SHIFT;
    let expected: Vec<i64> = (1..=9_i64)
        .flat_map(|b| [b << shift, (b << shift) | 1])
        .collect();
    assert_eq!(ids, expected, "batches 1 to 9, two events each");
    assert_eq!(forge_tools::events::head(&log_db).await.unwrap(), 9);
    let indexes = coll.list_index_names().await.unwrap();
    assert!(indexes.iter().any(|n| n == "timestamp_1"), "{indexes:?}");

    // New events are numbered after the moved ones.
    let log = EventLog::start(&db).await.unwrap();
    log.record("page.view", EventContext::default(), bson::Bson::Null);
    log.flush().await;
    let newest = coll
        .find_one(doc! {})
        .sort(doc! {"_id": -1})
        .await
        .unwrap()
        .unwrap();
    assert!(forge_tools::events::batch_of(newest.get_i64("_id").unwrap()) > 9);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 19);
    // The forge's own database never saw it.
    assert!(!keeps_events(&db).await);
    log_db.drop().await.unwrap();
    db.drop().await.unwrap();
}
