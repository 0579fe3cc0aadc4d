//! The `tools` collection: one document per tool installed in a project.

use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::acl::Ace;
use crate::error::{Error, Result};
use crate::ids::{ProjectId, ToolId};

pub const COLLECTION: &str = "tools";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolInstance {
    #[serde(rename = "_id")]
    pub id: ToolId,
    pub project_id: ProjectId,
    pub kind: String,
    pub mount: String,
    pub label: String,
    pub ordinal: i32,
    #[serde(default)]
    pub options: Document,
    /// Entries checked before the project's ACL.
    #[serde(default)]
    pub acl: Vec<Ace>,
    pub created: DateTime,
    /// Moves whenever the tool's set of artifacts changes (pages created, renamed, deleted);
    /// part of rendered-HTML cache keys.
    #[serde(default)]
    pub epoch: i64,
}

fn collection(db: &Database) -> Collection<ToolInstance> {
    db.collection(COLLECTION)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    collection(db)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"project_id": 1, "mount": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await?;
    Ok(())
}

/// A project's tools in menu order.
pub async fn list(db: &Database, project: ProjectId) -> Result<Vec<ToolInstance>> {
    Ok(collection(db)
        .find(doc! {"project_id": project})
        .sort(doc! {"ordinal": 1, "_id": 1})
        .await?
        .try_collect()
        .await?)
}

/// The tools of several projects in one query, by project, each project's in [`list`] order.
pub async fn of_projects(db: &Database, projects: &[ProjectId]) -> Result<Vec<ToolInstance>> {
    if projects.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<bson::Bson> = projects.iter().map(|p| (*p).into()).collect();
    Ok(collection(db)
        .find(doc! {"project_id": {"$in": ids}})
        .sort(doc! {"project_id": 1, "ordinal": 1, "_id": 1})
        .await?
        .try_collect()
        .await?)
}

pub async fn insert(db: &Database, tool: &ToolInstance) -> Result<()> {
    match collection(db).insert_one(tool).await {
        Ok(_) => Ok(()),
        Err(e) if Error::is_duplicate_key(&e) => Err(Error::invalid(
            "mount",
            format!(
                "Mount point \"{}\" is already used in this project",
                tool.mount
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Saves label, mount and position.
pub async fn update(db: &Database, tool: &ToolInstance) -> Result<()> {
    let res = collection(db)
        .update_one(
            doc! {"_id": tool.id},
            doc! {"$set": {"label": &tool.label, "mount": &tool.mount, "ordinal": tool.ordinal}},
        )
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if Error::is_duplicate_key(&e) => Err(Error::invalid(
            "mount",
            format!(
                "Mount point \"{}\" is already used in this project",
                tool.mount
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(db: &Database, id: ToolId) -> Result<()> {
    collection(db).delete_one(doc! {"_id": id}).await?;
    Ok(())
}

pub async fn bump_epoch(db: &Database, id: ToolId) -> Result<()> {
    collection(db)
        .update_one(doc! {"_id": id}, doc! {"$inc": {"epoch": 1}})
        .await?;
    Ok(())
}

pub async fn set_option(db: &Database, id: ToolId, key: &str, value: bson::Bson) -> Result<()> {
    collection(db)
        .update_one(
            doc! {"_id": id},
            doc! {"$set": {format!("options.{key}"): value}},
        )
        .await?;
    Ok(())
}

pub async fn by_id(db: &Database, id: ToolId) -> Result<Option<ToolInstance>> {
    Ok(collection(db).find_one(doc! {"_id": id}).await?)
}

/// Puts an access entry first in a tool's ACL (so it decides before the tool's defaults),
/// unless the ACL already holds it.
pub async fn prepend_ace(db: &Database, id: ToolId, ace: &crate::acl::Ace) -> Result<()> {
    let ace = bson::serialize_to_bson(ace).map_err(|e| Error::Internal(e.to_string()))?;
    collection(db)
        .update_one(
            doc! {"_id": id, "acl": {"$ne": &ace}},
            doc! {"$push": {"acl": {"$each": [&ace], "$position": 0}}},
        )
        .await?;
    Ok(())
}

/// Removes an access entry from a tool's ACL.
pub async fn remove_ace(db: &Database, id: ToolId, ace: &crate::acl::Ace) -> Result<()> {
    let ace = bson::serialize_to_bson(ace).map_err(|e| Error::Internal(e.to_string()))?;
    collection(db)
        .update_one(doc! {"_id": id}, doc! {"$pull": {"acl": ace}})
        .await?;
    Ok(())
}
