//! Saved searches ("bins", Allura's word): a name, a query and a sort, kept per tracker
//! (shared, by those with `save_searches`) or per account (personal).

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::ToolId;

pub const BINS: &str = "tracker_bins";
/// Bins per tracker (and per person in it). Every list view counts the tickets of each bin it
/// shows, so this bounds the work one view (even an anonymous one) asks of the store.
pub const MAX_BINS: u64 = 25;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub tool_id: ToolId,
    /// `None`: the tracker's; otherwise the username whose bin it is.
    #[serde(default)]
    pub owner: Option<String>,
    pub name: String,
    pub q: String,
    #[serde(default)]
    pub sort: String,
    pub created: DateTime,
}

fn bins(db: &Database) -> Collection<Bin> {
    db.collection(BINS)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    bins(db)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "owner": 1, "name": 1})
                .build(),
        )
        .await?;
    Ok(())
}

/// The tracker's bins and the viewer's own, shared first.
pub async fn list(db: &Database, tool: ToolId, me: Option<&str>) -> Result<Vec<Bin>> {
    let mut or = vec![doc! {"owner": null}];
    if let Some(me) = me {
        or.push(doc! {"owner": me});
    }
    Ok(bins(db)
        .find(doc! {"tool_id": tool, "$or": or})
        .sort(doc! {"owner": 1, "name": 1})
        .limit(2 * MAX_BINS as i64)
        .await?
        .try_collect()
        .await?)
}

pub async fn get(db: &Database, tool: ToolId, id: ObjectId) -> Result<Option<Bin>> {
    Ok(bins(db).find_one(doc! {"_id": id, "tool_id": tool}).await?)
}

pub async fn insert(db: &Database, bin: &Bin) -> Result<()> {
    let n = bins(db)
        .count_documents(doc! {"tool_id": bin.tool_id, "owner": &bin.owner})
        .await?;
    if n >= MAX_BINS {
        return Err(Error::invalid(
            "name",
            format!("At most {MAX_BINS} saved searches"),
        ));
    }
    if bins(db)
        .find_one(doc! {"tool_id": bin.tool_id, "owner": &bin.owner, "name": &bin.name})
        .await?
        .is_some()
    {
        return Err(Error::invalid("name", "A saved search of that name exists"));
    }
    bins(db).insert_one(bin).await?;
    Ok(())
}

pub async fn delete(db: &Database, id: ObjectId) -> Result<()> {
    bins(db).delete_one(doc! {"_id": id}).await?;
    Ok(())
}

pub async fn delete_tool(db: &Database, tool: ToolId) -> Result<()> {
    bins(db).delete_many(doc! {"tool_id": tool}).await?;
    Ok(())
}
