//! Wiki pages: the `wiki_pages` collection (current version of each page), its snapshots
//! (`wiki_snapshots`, see [`crate::versioned`]) and the redirects renamed pages leave behind
//! (`wiki_redirects`).

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldErrors, Result};
use crate::ids::ToolId;
use crate::refs::page_name_ok;
use crate::versioned::{RecordError, Snapshot, Versions};

pub const PAGES: &str = "wiki_pages";
pub const SNAPSHOTS: &str = "wiki_snapshots";
pub const REDIRECTS: &str = "wiki_redirects";
/// Backstop for page text whatever the configuration says (the configured
/// `FORGE_MAX_TEXT_BYTES` is checked by `wiki::save`): the store's documents hold 16 MB.
pub const MAX_TEXT: usize = 8_000_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub tool_id: ToolId,
    pub name: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub labels: Vec<String>,
    pub version: i32,
    pub author: String,
    pub created: DateTime,
    pub updated: DateTime,
    #[serde(default)]
    pub deleted: bool,
}

/// What a snapshot keeps of a page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageData {
    pub name: String,
    pub text: String,
    #[serde(default)]
    pub labels: Vec<String>,
}

/// An edit as submitted.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub text: String,
    pub labels: Vec<String>,
    pub comment: String,
    /// The version the editor started from; 0 for a new page.
    pub base_version: i32,
}

/// A save that lost: someone else saved since the editor's base version. Nothing was written.
#[derive(Debug, Clone)]
pub struct EditConflict {
    pub current: Option<Page>,
    pub yours: String,
    /// A clean three-way merge of both edits, when there is one.
    pub merged: Option<String>,
}

#[derive(Debug)]
pub enum Saved {
    Created(Page),
    Updated(Page),
    Conflict(EditConflict),
}

fn pages(db: &Database) -> Collection<Page> {
    db.collection(PAGES)
}

pub fn versions(db: &Database) -> Versions<PageData> {
    Versions::new(db, SNAPSHOTS)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    pages(db)
        .create_indexes([
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "name": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "updated": -1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "labels": 1})
                .build(),
        ])
        .await?;
    db.collection::<Document>(REDIRECTS)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "name": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await?;
    versions(db).ensure_indexes().await
}

/// Labels from a comma-separated field: trimmed, deduplicated, at most 20 of 1–50 characters.
pub fn parse_labels(input: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for l in input.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        if l.chars().count() > 50 || l.chars().any(char::is_control) {
            return Err(Error::invalid(
                "labels",
                "Each label must be at most 50 characters",
            ));
        }
        if !out.iter().any(|o| o == l) {
            out.push(l.to_owned());
        }
    }
    if out.len() > 20 {
        return Err(Error::invalid("labels", "At most 20 labels"));
    }
    Ok(out)
}

pub fn check_name(name: &str) -> Result<()> {
    if page_name_ok(name) {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            "Page names are 1 to 100 characters, without / \\ [ ] | # ? % or a leading _ or .",
        ))
    }
}

pub async fn get(db: &Database, tool: ToolId, name: &str) -> Result<Option<Page>> {
    Ok(pages(db)
        .find_one(doc! {"tool_id": tool, "name": name})
        .await?)
}

/// The page named `name` as pages show it, through the read model's memo of pages (see
/// [`crate::readmodel::memo`]); writes read the store ([`get`]).
pub async fn current(db: &Database, tool: ToolId, name: &str) -> Result<Option<Page>> {
    crate::readmodel::memo(
        db,
        MEMO_PAGES,
        format!("{}/{name}", tool.0),
        |p: &Option<Page>| p.as_ref().map_or(0, |p| p.text.len() + p.name.len() + 256),
        || get(db, tool, name),
    )
    .await
}

/// The read model's memos of this tool (registered through `Tool::kept`).
pub const MEMO_PAGES: &str = "wiki_pages";
pub const MEMO_REDIRECTS: &str = "wiki_redirects";

pub async fn by_id(db: &Database, id: ObjectId) -> Result<Option<Page>> {
    Ok(pages(db).find_one(doc! {"_id": id}).await?)
}

/// The current name of a page that was renamed away from `name`.
pub async fn redirect_target(db: &Database, tool: ToolId, name: &str) -> Result<Option<String>> {
    let Some(r) = db
        .collection::<Document>(REDIRECTS)
        .find_one(doc! {"tool_id": tool, "name": name})
        .await?
    else {
        return Ok(None);
    };
    let Ok(page_id) = r.get_object_id("page_id") else {
        return Ok(None);
    };
    Ok(by_id(db, page_id)
        .await?
        .filter(|p| !p.deleted)
        .map(|p| p.name))
}

/// Live pages among `names` (and renamed ones, mapped to their current name).
pub async fn existing(
    db: &Database,
    tool: ToolId,
    names: &[String],
) -> Result<Vec<(String, String)>> {
    let found: Vec<Page> = pages(db)
        .find(doc! {"tool_id": tool, "name": {"$in": names}, "deleted": false})
        .projection(doc! {"text": 0})
        .await?
        .try_collect()
        .await?;
    let mut out: Vec<(String, String)> = found
        .into_iter()
        .map(|p| (p.name.clone(), p.name))
        .collect();
    for name in names {
        if !out.iter().any(|(n, _)| n == name)
            && let Some(current) = redirect_target(db, tool, name).await?
        {
            out.push((name.clone(), current));
        }
    }
    Ok(out)
}

/// Page list without texts (`text` is left empty), by name or by last change.
/// Every live page of a wiki with its text (search indexing), in one query.
pub async fn all_with_text(db: &Database, tool: ToolId) -> Result<Vec<Page>> {
    Ok(pages(db)
        .find(doc! {"tool_id": tool, "deleted": false})
        .await?
        .try_collect()
        .await?)
}

pub async fn list(
    db: &Database,
    tool: ToolId,
    filter: Document,
    by_recent: bool,
    limit: i64,
) -> Result<Vec<Page>> {
    let mut f = doc! {"tool_id": tool};
    f.extend(filter);
    let sort = if by_recent {
        doc! {"updated": -1}
    } else {
        doc! {"name": 1}
    };
    Ok(pages(db)
        .find(f)
        .projection(doc! {"text": 0})
        .sort(sort)
        .limit(limit)
        .await?
        .try_collect()
        .await?)
}

/// Labels in use with their page counts.
pub async fn labels(db: &Database, tool: ToolId) -> Result<Vec<(String, i64)>> {
    let cursor = pages(db)
        .clone_with_type::<Document>()
        .aggregate([
            doc! {"$match": {"tool_id": tool, "deleted": false}},
            doc! {"$unwind": "$labels"},
            doc! {"$group": {"_id": "$labels", "n": {"$sum": 1}}},
            doc! {"$sort": {"_id": 1}},
        ])
        .await?;
    let docs: Vec<Document> = cursor.try_collect().await?;
    Ok(docs
        .iter()
        .filter_map(|d| {
            let label = d.get_str("_id").ok()?.to_owned();
            let n = d
                .get_i32("n")
                .map(i64::from)
                .or_else(|_| d.get_i64("n"))
                .ok()?;
            Some((label, n))
        })
        .collect())
}

/// Saves an edit: creates the page (base 0) or records version base+1. Never overwrites a
/// newer version: a stale base comes back as [`Saved::Conflict`].
pub async fn save(
    db: &Database,
    tool: ToolId,
    name: &str,
    edit: Edit,
    author: &str,
) -> Result<Saved> {
    check_name(name)?;
    let mut errs = FieldErrors::new();
    if edit.text.len() > MAX_TEXT {
        errs.add("text", "The page is too long (8 MB at most)");
    }
    if edit.comment.chars().count() > 500 {
        errs.add("comment", "The comment must be at most 500 characters");
    }
    errs.into_result()?;
    let current = get(db, tool, name).await?;
    match current {
        None if edit.base_version == 0 => create(db, tool, name, edit, author).await,
        None => Ok(Saved::Conflict(EditConflict {
            current: None,
            yours: edit.text,
            merged: None,
        })),
        Some(page) => {
            let data = PageData {
                name: page.name.clone(),
                text: edit.text.clone(),
                labels: edit.labels.clone(),
            };
            update(db, page, data, edit, author).await
        }
    }
}

async fn create(
    db: &Database,
    tool: ToolId,
    name: &str,
    edit: Edit,
    author: &str,
) -> Result<Saved> {
    let now = DateTime::now();
    let page = Page {
        id: ObjectId::new(),
        tool_id: tool,
        name: name.to_owned(),
        text: edit.text.clone(),
        labels: edit.labels.clone(),
        version: 1,
        author: author.to_owned(),
        created: now,
        updated: now,
        deleted: false,
    };
    match pages(db).insert_one(&page).await {
        Ok(_) => {}
        Err(e) if Error::is_duplicate_key(&e) => {
            // Someone created it first.
            let current = get(db, tool, name).await?;
            return Ok(Saved::Conflict(EditConflict {
                current,
                yours: edit.text,
                merged: None,
            }));
        }
        Err(e) => return Err(e.into()),
    }
    let data = PageData {
        name: page.name.clone(),
        text: page.text.clone(),
        labels: page.labels.clone(),
    };
    match versions(db)
        .record(page.id, 1, author, &edit.comment, data)
        .await
    {
        Ok(_) | Err(RecordError::Taken) => {}
        Err(RecordError::Other(e)) => return Err(e),
    }
    // A new name no longer redirects anywhere.
    db.collection::<Document>(REDIRECTS)
        .delete_one(doc! {"tool_id": tool, "name": name})
        .await?;
    Ok(Saved::Created(page))
}

/// Records version base+1 (the snapshot's unique index decides races), then moves the page
/// document forward.
async fn update(
    db: &Database,
    page: Page,
    data: PageData,
    edit: Edit,
    author: &str,
) -> Result<Saved> {
    let next = edit.base_version + 1;
    if edit.base_version != page.version {
        return conflict(db, page, edit).await;
    }
    match versions(db)
        .record(page.id, next, author, &edit.comment, data.clone())
        .await
    {
        Ok(snap) => {
            advance(db, &page, &snap).await?;
            // The page as this save left it; re-reading could return a later writer's version.
            Ok(Saved::Updated(Page {
                version: snap.version,
                name: snap.data.name,
                text: snap.data.text,
                labels: snap.data.labels,
                author: snap.author,
                updated: snap.timestamp,
                ..page
            }))
        }
        Err(RecordError::Taken) => {
            // Lost the race. If the winner crashed before moving the page forward, finish
            // its work so the page is never stuck behind its history.
            if let Some(snap) = versions(db).get(page.id, next).await? {
                advance(db, &page, &snap).await?;
            }
            let fresh = by_id(db, page.id).await?.ok_or(Error::NotFound("page"))?;
            conflict(db, fresh, edit).await
        }
        Err(RecordError::Other(e)) => Err(e),
    }
}

/// Moves the page document to a recorded snapshot (only from the version just before it).
async fn advance(db: &Database, page: &Page, snap: &Snapshot<PageData>) -> Result<()> {
    pages(db)
        .update_one(
            doc! {"_id": page.id, "version": snap.version - 1},
            doc! {"$set": {
                "version": snap.version,
                "name": &snap.data.name,
                "text": &snap.data.text,
                "labels": &snap.data.labels,
                "author": &snap.author,
                "updated": snap.timestamp,
            }},
        )
        .await?;
    Ok(())
}

async fn conflict(db: &Database, current: Page, edit: Edit) -> Result<Saved> {
    let base = if edit.base_version > 0 {
        versions(db).get(current.id, edit.base_version).await?
    } else {
        None
    };
    let merged = match base {
        Some(base) => {
            let (ours, theirs) = (edit.text.clone(), current.text.clone());
            crate::heavy::run(move || crate::diff::merge(&base.data.text, &ours, &theirs).ok())
                .await?
        }
        None => None,
    };
    Ok(Saved::Conflict(EditConflict {
        current: Some(current),
        yours: edit.text,
        merged,
    }))
}

/// Renames a page as a new version; the old name redirects to it.
pub async fn rename(db: &Database, page: &Page, new_name: &str, author: &str) -> Result<Saved> {
    check_name(new_name)?;
    if new_name == page.name {
        return Err(Error::invalid("name", "That is already the page's name"));
    }
    if get(db, page.tool_id, new_name).await?.is_some() {
        return Err(Error::invalid(
            "name",
            format!("A page named \"{new_name}\" already exists"),
        ));
    }
    let data = PageData {
        name: new_name.to_owned(),
        text: page.text.clone(),
        labels: page.labels.clone(),
    };
    let edit = Edit {
        text: page.text.clone(),
        labels: page.labels.clone(),
        comment: format!("Renamed from {}", page.name),
        base_version: page.version,
    };
    let saved = match update(db, page.clone(), data, edit, author).await {
        Ok(s) => s,
        Err(Error::Store(e)) if Error::is_duplicate_key(&e) => {
            return Err(Error::invalid(
                "name",
                format!("A page named \"{new_name}\" already exists"),
            ));
        }
        Err(e) => return Err(e),
    };
    if let Saved::Updated(_) = saved {
        let redirects = db.collection::<Document>(REDIRECTS);
        redirects
            .delete_one(doc! {"tool_id": page.tool_id, "name": new_name})
            .await?;
        redirects
            .update_one(
                doc! {"tool_id": page.tool_id, "name": &page.name},
                doc! {"$set": {"page_id": page.id, "created": DateTime::now()}},
            )
            .upsert(true)
            .await?;
    }
    Ok(saved)
}

pub async fn set_deleted(db: &Database, page: &Page, deleted: bool) -> Result<()> {
    pages(db)
        .update_one(doc! {"_id": page.id}, doc! {"$set": {"deleted": deleted}})
        .await?;
    Ok(())
}

/// Removes every page, version and redirect of a wiki (uninstall).
pub async fn delete_tool(db: &Database, tool: ToolId) -> Result<()> {
    let ids: Vec<Page> = pages(db)
        .find(doc! {"tool_id": tool})
        .await?
        .try_collect()
        .await?;
    for p in &ids {
        versions(db).delete_all(p.id).await?;
    }
    pages(db).delete_many(doc! {"tool_id": tool}).await?;
    db.collection::<Document>(REDIRECTS)
        .delete_many(doc! {"tool_id": tool})
        .await?;
    Ok(())
}

/// Names this page had before renames (the redirects pointing at it).
pub async fn former_names(db: &Database, page: &Page) -> Result<Vec<String>> {
    crate::readmodel::memo(
        db,
        MEMO_REDIRECTS,
        page.id.to_hex(),
        |names: &Vec<String>| names.iter().map(|n| n.len() + 24).sum(),
        || former_names_stored(db, page.id),
    )
    .await
}

async fn former_names_stored(db: &Database, page: ObjectId) -> Result<Vec<String>> {
    let docs: Vec<Document> = db
        .collection::<Document>(REDIRECTS)
        .find(doc! {"page_id": page})
        .await?
        .try_collect()
        .await?;
    Ok(docs
        .iter()
        .filter_map(|d| d.get_str("name").ok().map(str::to_owned))
        .collect())
}
