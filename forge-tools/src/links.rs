//! Recorded references between artifacts, so each artifact can show what links to it
//! ("linked from"). A tool replaces an artifact's outgoing links when it is saved.

use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::error::Result;

pub const COLLECTION: &str = "links";

/// One reference from an artifact to a target key (e.g. `wiki:<tool id>:<page name>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Link {
    pub from_key: String,
    pub from_title: String,
    pub from_url: String,
    pub to_key: String,
    pub created: DateTime,
}

fn collection(db: &Database) -> Collection<Link> {
    db.collection(COLLECTION)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    collection(db)
        .create_indexes([
            IndexModel::builder().keys(doc! {"to_key": 1}).build(),
            IndexModel::builder().keys(doc! {"from_key": 1}).build(),
        ])
        .await?;
    Ok(())
}

/// Replaces the outgoing links of `from_key`.
pub async fn replace(
    db: &Database,
    from_key: &str,
    from_title: &str,
    from_url: &str,
    to_keys: &[String],
) -> Result<()> {
    let coll = collection(db);
    coll.delete_many(doc! {"from_key": from_key}).await?;
    if to_keys.is_empty() {
        return Ok(());
    }
    let now = DateTime::now();
    let docs: Vec<Link> = to_keys
        .iter()
        .map(|to| Link {
            from_key: from_key.to_owned(),
            from_title: from_title.to_owned(),
            from_url: from_url.to_owned(),
            to_key: to.clone(),
            created: now,
        })
        .collect();
    coll.insert_many(docs).await?;
    Ok(())
}

/// What links to `to_key`.
/// The read model's memo of links to a key.
pub const MEMO: &str = "links";

/// The links to `to_key` (the first 200 by title), through the read model's memo.
pub async fn to(db: &Database, to_key: &str) -> Result<Vec<Link>> {
    crate::readmodel::memo(
        db,
        MEMO,
        to_key.to_owned(),
        |links: &Vec<Link>| {
            links
                .iter()
                .map(|l| {
                    l.from_key.len() + l.from_title.len() + l.from_url.len() + l.to_key.len() + 64
                })
                .sum()
        },
        || to_stored(db, to_key),
    )
    .await
}

async fn to_stored(db: &Database, to_key: &str) -> Result<Vec<Link>> {
    Ok(collection(db)
        .find(doc! {"to_key": to_key})
        .sort(doc! {"from_title": 1})
        .limit(200)
        .await?
        .try_collect()
        .await?)
}

pub async fn remove_from(db: &Database, from_key: &str) -> Result<()> {
    collection(db)
        .delete_many(doc! {"from_key": from_key})
        .await?;
    Ok(())
}
