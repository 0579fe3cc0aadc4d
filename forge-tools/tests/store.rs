//! Store-level behaviour on a real server: migrations, lazy upgrades, unique constraints,
//! membership updates and the event log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bson::{DateTime, Document, doc};
use forge_tools::acl::Role;
use forge_tools::events::{EventContext, EventLog};
use forge_tools::ids::UserId;
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
    forge_tools::events::ensure_indexes(&db).await.unwrap();
    let log = EventLog::start(&db);
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
    let coll = db.collection::<Document>("events");
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
