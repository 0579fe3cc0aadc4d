//! The `tools` collection: one document per tool installed in a project.

use std::sync::Arc;

use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::acl::Ace;
use crate::error::{Error, Result};
use crate::ids::{ProjectId, ToolId};
use crate::readmodel::{self, Change, Part, PartStats};

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

/// A project's tools in menu order (through the read model).
pub async fn list(db: &Database, project: ProjectId) -> Result<Vec<ToolInstance>> {
    let found = readmodel::get(
        db,
        |c: &Cached| &c.by_project,
        project,
        || async {
            let tools: Vec<ToolInstance> = collection(db)
                .find(doc! {"project_id": project})
                .sort(doc! {"ordinal": 1, "_id": 1})
                .await?
                .try_collect()
                .await?;
            Ok(Some(Arc::new(tools)))
        },
    )
    .await?;
    Ok(found.map(|t| (*t).clone()).unwrap_or_default())
}

/// Drops the tools the read model keeps (after any change to one).
fn changed(db: &Database) {
    readmodel::with(db, |c: &Cached| c.by_project.invalidate_all());
}

/// What the read model keeps of tools: each project's, in menu order. A change names a tool,
/// not its project, and tools change rarely: any change drops them all.
pub struct Cached {
    by_project: Part<ProjectId, Arc<Vec<ToolInstance>>>,
}

/// The tools' kind of the read model, with `bytes` of memory for it.
pub fn cached(bytes: u64) -> Arc<dyn readmodel::Kept> {
    Arc::new(Cached {
        by_project: Part::new("tools", bytes, |_, tools| {
            tools.iter().fold(128_u32, |n, t| {
                n.saturating_add(
                    512 + 96 * t.acl.len() as u32 + readmodel::len(&t.options.to_string()),
                )
            })
        }),
    })
}

impl readmodel::Kept for Cached {
    fn collection(&self) -> Option<&'static str> {
        Some(COLLECTION)
    }

    fn changed(&self, _: &Change) {
        self.by_project.invalidate_all();
    }

    fn reset(&self) {
        self.by_project.invalidate_all();
    }

    fn stats(&self) -> Vec<PartStats> {
        vec![self.by_project.stats()]
    }
}

/// The tools of several projects in one query (none when all are in the read model), by
/// project, each project's in [`list`] order.
pub async fn of_projects(db: &Database, projects: &[ProjectId]) -> Result<Vec<ToolInstance>> {
    if projects.is_empty() {
        return Ok(Vec::new());
    }
    let found = readmodel::get_many(
        db,
        |c: &Cached| &c.by_project,
        projects,
        |missing| async move {
            let ids: Vec<bson::Bson> = missing.iter().map(|p| (*p).into()).collect();
            let all: Vec<ToolInstance> = collection(db)
                .find(doc! {"project_id": {"$in": ids}})
                .sort(doc! {"project_id": 1, "ordinal": 1, "_id": 1})
                .await?
                .try_collect()
                .await?;
            let mut by_project: std::collections::HashMap<ProjectId, Vec<ToolInstance>> =
                std::collections::HashMap::new();
            for t in all {
                by_project.entry(t.project_id).or_default().push(t);
            }
            // A project without tools is known too (an empty list).
            Ok(missing
                .into_iter()
                .map(|p| {
                    let mine = by_project.remove(&p).unwrap_or_default();
                    (p, Arc::new(mine))
                })
                .collect())
        },
    )
    .await?;
    let mut tools: Vec<ToolInstance> = found.iter().flat_map(|t| t.iter().cloned()).collect();
    // Stable: each project's own order stays.
    tools.sort_by_key(|t| t.project_id);
    Ok(tools)
}

pub async fn insert(db: &Database, tool: &ToolInstance) -> Result<()> {
    let res = collection(db).insert_one(tool).await;
    changed(db);
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

/// Saves label, mount and position.
pub async fn update(db: &Database, tool: &ToolInstance) -> Result<()> {
    let res = collection(db)
        .update_one(
            doc! {"_id": tool.id},
            doc! {"$set": {"label": &tool.label, "mount": &tool.mount, "ordinal": tool.ordinal}},
        )
        .await;
    changed(db);
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
    changed(db);
    Ok(())
}

pub async fn bump_epoch(db: &Database, id: ToolId) -> Result<()> {
    collection(db)
        .update_one(doc! {"_id": id}, doc! {"$inc": {"epoch": 1}})
        .await?;
    changed(db);
    Ok(())
}

pub async fn set_option(db: &Database, id: ToolId, key: &str, value: bson::Bson) -> Result<()> {
    collection(db)
        .update_one(
            doc! {"_id": id},
            doc! {"$set": {format!("options.{key}"): value}},
        )
        .await?;
    changed(db);
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
    changed(db);
    Ok(())
}

/// Removes an access entry from a tool's ACL.
pub async fn remove_ace(db: &Database, id: ToolId, ace: &crate::acl::Ace) -> Result<()> {
    let ace = bson::serialize_to_bson(ace).map_err(|e| Error::Internal(e.to_string()))?;
    collection(db)
        .update_one(doc! {"_id": id}, doc! {"$pull": {"acl": ace}})
        .await?;
    changed(db);
    Ok(())
}
