//! File attachments, shared by every tool: uploads are streamed to disk under the data dir
//! with a size limit, stored by content hash (identical files are kept once), and described
//! by a record per (tool, artifact, file name). Serving decides inline vs download by type.

use std::path::{Path, PathBuf};

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::{Stream, StreamExt, TryStreamExt};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::ids::ToolId;

pub const COLLECTION: &str = "attachments";
/// The read model's memo of each artifact's files.
pub const MEMO: &str = "attachments";
/// Records one [`AttachmentStore::list_many`] returns at most.
pub const MAX_LISTED: i64 = 5_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub tool_id: ToolId,
    /// The artifact within the tool (a page id, a ticket id...).
    pub artifact_id: ObjectId,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub author: String,
    pub created: DateTime,
}

impl Attachment {
    /// Whether a browser may show it in place: only raster images and plain text. Anything a
    /// browser could execute or interpret (HTML, SVG, JS, XML, PDF...) is served as a download.
    pub fn inline(&self) -> bool {
        matches!(
            self.content_type.as_str(),
            "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/avif" | "text/plain"
        )
    }

    pub fn is_image(&self) -> bool {
        self.inline() && self.content_type.starts_with("image/")
    }
}

/// Where attachment files live and how big they may be.
#[derive(Debug, Clone)]
pub struct AttachmentStore {
    dir: PathBuf,
    pub max_bytes: u64,
}

fn collection(db: &Database) -> Collection<Attachment> {
    db.collection(COLLECTION)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    collection(db)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "artifact_id": 1, "filename": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await?;
    Ok(())
}

/// A safe file name from whatever a client sent: the last path component, no control or
/// reserved characters, no leading dots, at most 200 characters.
pub fn sanitize_filename(name: &str) -> Result<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*' | '%' | '#') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let cleaned: String = cleaned.chars().take(200).collect();
    if cleaned.is_empty() {
        return Err(Error::invalid("file", "The file needs a name"));
    }
    Ok(cleaned)
}

impl AttachmentStore {
    pub fn new(data_dir: &Path, max_bytes: u64) -> Self {
        Self {
            dir: data_dir.join("attachments"),
            max_bytes,
        }
    }

    /// The folder the files live in: `<data dir>/attachments/<first two hex digits>/<sha256>`
    /// (a file, once there, never changes: its name is its content's checksum).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_of(&self, a: &Attachment) -> PathBuf {
        self.dir.join(&a.sha256[..2]).join(&a.sha256)
    }

    /// Streams an upload to disk (refusing it past the size limit), then records it. A file of
    /// the same name on the same artifact is replaced.
    pub async fn save<S, E>(
        &self,
        db: &Database,
        tool_id: ToolId,
        artifact_id: ObjectId,
        filename: &str,
        author: &str,
        mut body: S,
    ) -> Result<Attachment>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let filename = sanitize_filename(filename)?;
        let tmp_dir = self.dir.join("tmp");
        tokio::fs::create_dir_all(&tmp_dir).await.map_err(io)?;
        let tmp = tmp_dir.join(ObjectId::new().to_hex());
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let result: Result<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    Error::invalid("file", format!("The upload was interrupted: {e}"))
                })?;
                size += chunk.len() as u64;
                if size > self.max_bytes {
                    return Err(Error::invalid(
                        "file",
                        format!(
                            "The file is larger than the limit of {}",
                            human_size(self.max_bytes)
                        ),
                    ));
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.flush().await.map_err(io)?;
            Ok(())
        }
        .await;
        drop(file);
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        if size == 0 {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(Error::invalid("file", "The file is empty"));
        }
        let sha256 = hex::encode(hasher.finalize());
        let a = Attachment {
            id: ObjectId::new(),
            tool_id,
            artifact_id,
            content_type: mime_guess::from_path(&filename)
                .first_or_octet_stream()
                .essence_str()
                .to_owned(),
            filename,
            size: size as i64,
            sha256,
            author: author.to_owned(),
            created: DateTime::now(),
        };
        let dest = self.path_of(&a);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        tokio::fs::rename(&tmp, &dest).await.map_err(io)?;
        collection(db)
            .delete_one(
                doc! {"tool_id": tool_id, "artifact_id": artifact_id, "filename": &a.filename},
            )
            .await?;
        collection(db).insert_one(&a).await?;
        Ok(a)
    }

    pub async fn list(
        &self,
        db: &Database,
        tool_id: ToolId,
        artifact_id: ObjectId,
    ) -> Result<Vec<Attachment>> {
        crate::readmodel::memo(
            db,
            MEMO,
            format!("{}/{artifact_id}", tool_id.0),
            |files: &Vec<Attachment>| files.iter().map(|a| a.filename.len() + 256).sum(),
            || async {
                Ok(collection(db)
                    .find(doc! {"tool_id": tool_id, "artifact_id": artifact_id})
                    .sort(doc! {"filename": 1})
                    .await?
                    .try_collect()
                    .await?)
            },
        )
        .await
    }

    /// The files of several artifacts of a tool in one query, by artifact then file name (at
    /// most [`MAX_LISTED`]).
    pub async fn list_many(
        &self,
        db: &Database,
        tool_id: ToolId,
        artifact_ids: &[ObjectId],
    ) -> Result<Vec<Attachment>> {
        if artifact_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut key = format!("m/{}", tool_id.0);
        for id in artifact_ids {
            key.push('/');
            key.push_str(&id.to_hex());
        }
        crate::readmodel::memo(
            db,
            MEMO,
            key,
            |files: &Vec<Attachment>| files.iter().map(|a| a.filename.len() + 256).sum(),
            || self.list_many_stored(db, tool_id, artifact_ids),
        )
        .await
    }

    async fn list_many_stored(
        &self,
        db: &Database,
        tool_id: ToolId,
        artifact_ids: &[ObjectId],
    ) -> Result<Vec<Attachment>> {
        Ok(collection(db)
            .find(doc! {"tool_id": tool_id, "artifact_id": {"$in": artifact_ids}})
            .sort(doc! {"artifact_id": 1, "filename": 1})
            .limit(MAX_LISTED)
            .await?
            .try_collect()
            .await?)
    }

    pub async fn get(
        &self,
        db: &Database,
        tool_id: ToolId,
        artifact_id: ObjectId,
        filename: &str,
    ) -> Result<Option<Attachment>> {
        Ok(collection(db)
            .find_one(doc! {"tool_id": tool_id, "artifact_id": artifact_id, "filename": filename})
            .await?)
    }

    /// Removes the record; the file goes when no record refers to its content any more.
    pub async fn delete(&self, db: &Database, a: &Attachment) -> Result<()> {
        collection(db).delete_one(doc! {"_id": a.id}).await?;
        if collection(db)
            .count_documents(doc! {"sha256": &a.sha256})
            .await?
            == 0
        {
            let _ = tokio::fs::remove_file(self.path_of(a)).await;
        }
        Ok(())
    }

    /// Moves the files of one artifact to another (files stored before their artifact had
    /// its id).
    pub async fn reassign(
        &self,
        db: &Database,
        tool_id: ToolId,
        from: ObjectId,
        to: ObjectId,
    ) -> Result<()> {
        collection(db)
            .update_many(
                doc! {"tool_id": tool_id, "artifact_id": from},
                doc! {"$set": {"artifact_id": to}},
            )
            .await?;
        Ok(())
    }

    pub async fn delete_tool(&self, db: &Database, tool_id: ToolId) -> Result<()> {
        let all: Vec<Attachment> = collection(db)
            .find(doc! {"tool_id": tool_id})
            .await?
            .try_collect()
            .await?;
        for a in all {
            self.delete(db, &a).await?;
        }
        Ok(())
    }
}

fn io(e: std::io::Error) -> Error {
    Error::Internal(format!("attachment storage: {e}"))
}

/// "10 MB"-style size for messages.
pub fn human_size(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.0} MB", bytes as f64 / 1_000_000.0)
    } else if bytes >= 1_000 {
        format!("{:.0} kB", bytes as f64 / 1_000.0)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(sanitize_filename("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(sanitize_filename("C:\\x\\evil.html").unwrap(), "evil.html");
        assert_eq!(sanitize_filename("..hidden").unwrap(), "hidden");
        assert_eq!(sanitize_filename("a<b>c.txt").unwrap(), "a_b_c.txt");
        assert!(sanitize_filename("../").is_err());
        assert!(sanitize_filename("\u{0}").is_err());
    }
}
