//! Versioned artifacts (Allura's VersionedArtifact/Snapshot): every save of an artifact stores a
//! full snapshot `{artifact_id, version, author, timestamp, comment, data}` in the tool's
//! snapshot collection, while the artifact document keeps the current version for fast reads.
//!
//! A unique index on `(artifact_id, version)` is the serialization point: of two saves from the
//! same base, only one can record version `base + 1`; the other learns it lost (a conflict) and
//! nothing is overwritten. Version numbers are therefore unique and gapless.

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot<T> {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub artifact_id: ObjectId,
    pub version: i32,
    pub author: String,
    pub timestamp: DateTime,
    #[serde(default)]
    pub comment: String,
    pub data: T,
}

/// A version's metadata, without its content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: i32,
    pub author: String,
    pub timestamp: DateTime,
    #[serde(default)]
    pub comment: String,
}

/// The snapshot collection of one artifact kind.
pub struct Versions<T: Send + Sync> {
    coll: Collection<Snapshot<T>>,
}

impl<T: Send + Sync> Clone for Versions<T> {
    fn clone(&self) -> Self {
        Self {
            coll: self.coll.clone(),
        }
    }
}

/// Why recording a version failed.
#[derive(Debug)]
pub enum RecordError {
    /// Another save already recorded this version.
    Taken,
    Other(Error),
}

impl<T: Serialize + DeserializeOwned + Send + Sync + Unpin + Clone> Versions<T> {
    pub fn new(db: &Database, collection: &str) -> Self {
        Self {
            coll: db.collection(collection),
        }
    }

    pub async fn ensure_indexes(&self) -> Result<()> {
        self.coll
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"artifact_id": 1, "version": -1})
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            )
            .await?;
        Ok(())
    }

    /// Records `version` of the artifact; `Taken` when another save got there first.
    pub async fn record(
        &self,
        artifact_id: ObjectId,
        version: i32,
        author: &str,
        comment: &str,
        data: T,
    ) -> Result<Snapshot<T>, RecordError> {
        let snap = Snapshot {
            id: ObjectId::new(),
            artifact_id,
            version,
            author: author.to_owned(),
            timestamp: DateTime::now(),
            comment: comment.to_owned(),
            data,
        };
        match self.coll.insert_one(&snap).await {
            Ok(_) => Ok(snap),
            Err(e) if Error::is_duplicate_key(&e) => Err(RecordError::Taken),
            Err(e) => Err(RecordError::Other(e.into())),
        }
    }

    pub async fn get(&self, artifact_id: ObjectId, version: i32) -> Result<Option<Snapshot<T>>> {
        Ok(self
            .coll
            .find_one(doc! {"artifact_id": artifact_id, "version": version})
            .await?)
    }

    /// Every version, newest first, without content.
    pub async fn history(&self, artifact_id: ObjectId) -> Result<Vec<VersionInfo>> {
        let cursor = self
            .coll
            .clone_with_type::<VersionInfo>()
            .find(doc! {"artifact_id": artifact_id})
            .projection(doc! {"version": 1, "author": 1, "timestamp": 1, "comment": 1, "_id": 0})
            .sort(doc! {"version": -1})
            .await?;
        Ok(cursor.try_collect().await?)
    }

    pub async fn delete_all(&self, artifact_id: ObjectId) -> Result<()> {
        self.coll
            .delete_many(doc! {"artifact_id": artifact_id})
            .await?;
        Ok(())
    }
}
