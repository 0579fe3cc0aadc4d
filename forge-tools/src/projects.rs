//! The `projects` collection: projects in the `p` (projects) and `u` (personal) neighborhoods,
//! with their members and ACL.
//!
//! Documents carry `schema_version`. Version 1 stored visibility as a `private` flag; version 2
//! keeps it where access is decided, in the ACL. Older documents are upgraded when read (Ming's
//! lazy migration) and rewritten in bulk by `migrations/0001_project_acl.json`.

use std::sync::Arc;

use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::acl::{self, Ace, Role};
use crate::error::{Error, FieldErrors, Result};
use crate::ids::{ProjectId, UserId};
use crate::names::{self, DisplayNameError, Reserved};
use crate::readmodel::{self, Change, Part, PartStats};

pub const COLLECTION: &str = "projects";
pub const SCHEMA_VERSION: i32 = 2;

/// A top-level URL space for projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Neighborhood {
    #[serde(rename = "p")]
    Projects,
    #[serde(rename = "u")]
    Users,
}

impl Neighborhood {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Projects => "p",
            Self::Users => "u",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: UserId,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    #[serde(rename = "_id")]
    pub id: ProjectId,
    pub neighborhood: Neighborhood,
    pub shortname: String,
    pub name: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub description: String,
    pub acl: Vec<Ace>,
    #[serde(default)]
    pub members: Vec<Member>,
    #[serde(default)]
    pub deleted: bool,
    pub created: DateTime,
    pub schema_version: i32,
}

impl Project {
    pub fn url(&self) -> String {
        format!("/{}/{}/", self.neighborhood.prefix(), self.shortname)
    }

    pub fn is_public(&self) -> bool {
        acl::grants_anonymous_read(&self.acl)
    }

    pub fn role_of(&self, user: UserId) -> Option<Role> {
        self.members
            .iter()
            .find(|m| m.user_id == user)
            .map(|m| m.role)
    }
}

/// Input for a new project.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub neighborhood: Neighborhood,
    pub shortname: String,
    pub name: String,
    pub summary: String,
    pub private: bool,
}

pub fn collection(db: &Database) -> Collection<Project> {
    db.collection(COLLECTION)
}

fn raw(db: &Database) -> Collection<Document> {
    db.collection(COLLECTION)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    collection(db)
        .create_indexes([
            // Deleted projects keep their document, so their names stay taken.
            IndexModel::builder()
                .keys(doc! {"neighborhood": 1, "shortname": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
            IndexModel::builder()
                .keys(doc! {"members.user_id": 1})
                .build(),
            IndexModel::builder().keys(doc! {"created": -1}).build(),
        ])
        .await?;
    Ok(())
}

/// Brings a stored document of any older schema to the current one.
pub fn upgrade(mut d: Document) -> Document {
    let version = d.get_i32("schema_version").unwrap_or(1);
    if version < 2 {
        let private = d.get_bool("private").unwrap_or(false);
        d.remove("private");
        let acl = bson::serialize_to_bson(&acl::default_project_acl(private))
            .unwrap_or(Bson::Array(vec![]));
        d.insert("acl", acl);
        d.insert("schema_version", 2);
    }
    d
}

fn decode(d: Document) -> Result<Project> {
    bson::deserialize_from_document(upgrade(d))
        .map_err(|e| Error::Internal(format!("bad project document: {e}")))
}

/// Field checks that need no store, as for the project form (reserved short names refused).
pub fn validate(new: &NewProject) -> FieldErrors {
    validate_as(new, Reserved::Refuse)
}

/// [`validate`], with reserved short names refused or allowed (a personal project the
/// operator's CLI creates for a reserved username).
pub fn validate_as(new: &NewProject, reserved: Reserved) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if let Err(m) = names::check_shortname_with(&new.shortname, reserved) {
        errs.add("shortname", format!("Short name {m}"));
    }
    match names::check_display_name(&new.name, true) {
        Ok(_) => {}
        Err(DisplayNameError::Empty) => errs.add("name", "Give the project a name"),
        Err(e) => errs.add("name", e.to_string()),
    }
    if new.summary.chars().count() > 200 {
        errs.add("summary", "Summary must be at most 200 characters");
    }
    errs
}

/// Everything that would make [`create_as`] refuse the project, a taken short name included.
/// Writes nothing.
pub async fn check(db: &Database, new: &NewProject, reserved: Reserved) -> Result<FieldErrors> {
    let mut errs = validate_as(new, reserved);
    if errs.get("shortname").is_none()
        && raw(db)
            .find_one(doc! {"neighborhood": new.neighborhood.prefix(), "shortname": &new.shortname})
            .await?
            .is_some()
    {
        errs.add(
            "shortname",
            format!("\"{}\" is already taken", new.shortname),
        );
    }
    Ok(errs)
}

/// Creates a project with `owner` as its admin (reserved short names refused). Nothing is
/// stored when validation fails.
pub async fn create(db: &Database, new: NewProject, owner: UserId) -> Result<Project> {
    create_as(db, new, owner, Reserved::Refuse).await
}

/// [`create`], with reserved short names refused or allowed.
pub async fn create_as(
    db: &Database,
    new: NewProject,
    owner: UserId,
    reserved: Reserved,
) -> Result<Project> {
    check(db, &new, reserved).await?.into_result()?;
    let project = Project {
        id: ProjectId::new(),
        neighborhood: new.neighborhood,
        shortname: new.shortname,
        name: new.name.trim().to_owned(),
        summary: new.summary.trim().to_owned(),
        description: String::new(),
        acl: acl::default_project_acl(new.private),
        members: vec![Member {
            user_id: owner,
            role: Role::Admin,
        }],
        deleted: false,
        created: DateTime::now(),
        schema_version: SCHEMA_VERSION,
    };
    match collection(db).insert_one(&project).await {
        Ok(_) => Ok(project),
        Err(e) if Error::is_duplicate_key(&e) => Err(Error::invalid(
            "shortname",
            format!("\"{}\" is already taken", project.shortname),
        )),
        Err(e) => Err(e.into()),
    }
}

/// A live (not deleted) project by URL name (through the read model).
pub async fn get(db: &Database, nbhd: Neighborhood, shortname: &str) -> Result<Option<Project>> {
    let key = (nbhd.prefix().to_owned(), shortname.to_owned());
    let found = readmodel::get(
        db,
        |c: &Cached| &c.by_name,
        key,
        || async {
            let found = raw(db)
                .find_one(
                    doc! {"neighborhood": nbhd.prefix(), "shortname": shortname, "deleted": false},
                )
                .await?;
            Ok(found.map(decode).transpose()?.map(Arc::new))
        },
    )
    .await?;
    Ok(found.map(|p| (*p).clone()))
}

/// Drops the projects the read model keeps (after any change to one).
fn changed(db: &Database) {
    readmodel::with(db, |c: &Cached| readmodel::Kept::reset(c));
}

/// What the read model keeps of projects: the live ones by URL name and by id. Projects
/// change rarely (their admins' actions), so any change drops them all.
pub struct Cached {
    by_name: Part<(String, String), Arc<Project>>,
    by_id: Part<ProjectId, Arc<Project>>,
}

fn weigh(p: &Project) -> u32 {
    let text = readmodel::len(&p.name)
        + readmodel::len(&p.shortname)
        + readmodel::len(&p.summary)
        + readmodel::len(&p.description);
    (512 + 2 * text)
        .saturating_add(96 * p.members.len() as u32)
        .saturating_add(96 * p.acl.len() as u32)
}

/// The projects' kind of the read model, with `bytes` of memory for it.
pub fn cached(bytes: u64) -> Arc<dyn readmodel::Kept> {
    Arc::new(Cached {
        by_name: Part::new("projects", bytes / 2, |_, p| weigh(p)),
        by_id: Part::new("project_ids", bytes / 2, |_, p| weigh(p)),
    })
}

impl readmodel::Kept for Cached {
    fn collection(&self) -> Option<&'static str> {
        Some(COLLECTION)
    }

    fn changed(&self, _: &Change) {
        self.reset();
    }

    fn reset(&self) {
        self.by_name.invalidate_all();
        self.by_id.invalidate_all();
    }

    fn stats(&self) -> Vec<PartStats> {
        vec![self.by_name.stats(), self.by_id.stats()]
    }
}

pub async fn by_id(db: &Database, id: ProjectId) -> Result<Option<Project>> {
    raw(db)
        .find_one(doc! {"_id": id})
        .await?
        .map(decode)
        .transpose()
}

/// Live projects among these ids (in no particular order; through the read model).
pub async fn by_ids(db: &Database, ids: &[ProjectId]) -> Result<Vec<Project>> {
    let found = readmodel::get_many(
        db,
        |c: &Cached| &c.by_id,
        ids,
        |missing| async move {
            let missing: Vec<Bson> = missing.into_iter().map(Into::into).collect();
            let docs: Vec<Document> = raw(db)
                .find(doc! {"_id": {"$in": missing}, "deleted": false})
                .await?
                .try_collect()
                .await?;
            docs.into_iter()
                .map(|d| decode(d).map(|p| (p.id, Arc::new(p))))
                .collect()
        },
    )
    .await?;
    Ok(found.into_iter().map(|p| (*p).clone()).collect())
}

/// Live projects of a neighborhood among these short names (in no particular order; through
/// the read model).
pub async fn by_names(db: &Database, nbhd: Neighborhood, names: &[&str]) -> Result<Vec<Project>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<(String, String)> = names
        .iter()
        .map(|n| (nbhd.prefix().to_owned(), (*n).to_owned()))
        .collect();
    let found = readmodel::get_many(db, |c: &Cached| &c.by_name, &keys, |missing| async move {
        let names: Vec<String> = missing.into_iter().map(|(_, n)| n).collect();
        let docs: Vec<Document> = raw(db)
            .find(doc! {"neighborhood": nbhd.prefix(), "shortname": {"$in": names}, "deleted": false})
            .await?
            .try_collect()
            .await?;
        docs.into_iter()
            .map(|d| {
                decode(d).map(|p| ((nbhd.prefix().to_owned(), p.shortname.clone()), Arc::new(p)))
            })
            .collect()
    })
    .await?;
    Ok(found.into_iter().map(|p| (*p).clone()).collect())
}

/// Projects in `p` the viewer may read, newest first.
pub async fn list_visible(
    db: &Database,
    viewer: Option<UserId>,
    site_admin: bool,
    limit: i64,
) -> Result<Vec<Project>> {
    let mut filter = doc! {"neighborhood": "p", "deleted": false};
    if !site_admin {
        let mut visible = vec![Bson::Document(doc! {
            "acl": {"$elemMatch": {"role": "*anonymous", "permission": "read", "access": "allow"}}
        })];
        if let Some(uid) = viewer {
            visible.push(Bson::Document(doc! {"members.user_id": uid}));
        }
        filter.insert("$or", visible);
    }
    let docs: Vec<Document> = raw(db)
        .find(filter)
        .sort(doc! {"created": -1})
        .limit(limit)
        .await?
        .try_collect()
        .await?;
    docs.into_iter().map(decode).collect()
}

/// Every live project, oldest first (search rebuilds walk them all).
pub async fn all_live(db: &Database) -> Result<Vec<Project>> {
    let docs: Vec<Document> = raw(db)
        .find(doc! {"deleted": false})
        .sort(doc! {"created": 1})
        .await?
        .try_collect()
        .await?;
    docs.into_iter().map(decode).collect()
}

/// Live projects the user is a member of.
pub async fn of_member(db: &Database, user: UserId) -> Result<Vec<Project>> {
    let docs: Vec<Document> = raw(db)
        .find(doc! {"members.user_id": user, "deleted": false})
        .sort(doc! {"created": -1})
        .await?
        .try_collect()
        .await?;
    docs.into_iter().map(decode).collect()
}

/// Replaces the editable fields (and upgrades the document to the current schema).
pub async fn save(db: &Database, p: &Project) -> Result<()> {
    collection(db)
        .update_one(
            doc! {"_id": p.id},
            doc! {
                "$set": {
                    "name": &p.name,
                    "summary": &p.summary,
                    "description": &p.description,
                    "acl": bson::serialize_to_bson(&p.acl).map_err(|e| Error::Internal(e.to_string()))?,
                    "schema_version": SCHEMA_VERSION,
                },
                "$unset": {"private": ""},
            },
        )
        .await?;
    changed(db);
    Ok(())
}

/// Adds a member or changes their role.
pub async fn set_member(db: &Database, project: ProjectId, user: UserId, role: Role) -> Result<()> {
    let coll = collection(db);
    let moved = coll
        .update_one(
            doc! {"_id": project, "members.user_id": user},
            doc! {"$set": {"members.$.role": role.as_str()}},
        )
        .await?;
    if moved.matched_count == 0 {
        coll.update_one(
            doc! {"_id": project, "members.user_id": {"$ne": user}},
            doc! {"$push": {"members": {"user_id": user, "role": role.as_str()}}},
        )
        .await?;
    }
    changed(db);
    Ok(())
}

pub async fn remove_member(db: &Database, project: ProjectId, user: UserId) -> Result<()> {
    collection(db)
        .update_one(
            doc! {"_id": project},
            doc! {"$pull": {"members": {"user_id": user}}},
        )
        .await?;
    changed(db);
    Ok(())
}

/// Soft delete: the document stays so the name remains reserved.
pub async fn soft_delete(db: &Database, project: ProjectId) -> Result<()> {
    collection(db)
        .update_one(
            doc! {"_id": project},
            doc! {"$set": {"deleted": true, "deleted_at": DateTime::now()}},
        )
        .await?;
    changed(db);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_one_documents_upgrade_to_acl() {
        let v1 = doc! {
            "_id": bson::oid::ObjectId::new(), "neighborhood": "p", "shortname": "old",
            "name": "Old", "private": true, "members": [], "deleted": false, "created": DateTime::now(),
        };
        let p = decode(v1).unwrap();
        assert_eq!(p.schema_version, 2);
        assert!(!p.is_public());
        assert!(!p.acl.is_empty());
        let v1_public = doc! {
            "_id": bson::oid::ObjectId::new(), "neighborhood": "p", "shortname": "old2",
            "name": "Old", "private": false, "created": DateTime::now(),
        };
        assert!(decode(v1_public).unwrap().is_public());
    }

    fn named(name: &str) -> NewProject {
        NewProject {
            neighborhood: Neighborhood::Projects,
            shortname: "rocket".into(),
            name: name.into(),
            summary: String::new(),
            private: false,
        }
    }

    #[test]
    fn names_are_one_trimmed_line_of_bounded_length() {
        assert!(validate(&named("  Rocket Engine ")).is_empty());
        assert_eq!(
            validate(&named(" ")).get("name"),
            Some("Give the project a name")
        );
        let limit = names::MAX_DISPLAY_NAME;
        assert!(validate(&named(&"x".repeat(limit))).is_empty());
        for bad in [
            "x".repeat(limit + 1),
            "Rocket\r\nEngine".into(),
            "Rocket\nEngine".into(),
            "Rocket\tEngine".into(),
            "Rocket\u{1b}[2J".into(),
        ] {
            assert!(validate(&named(&bad)).get("name").is_some(), "{bad:?}");
        }
    }

    #[test]
    fn reserved_short_names_only_when_allowed() {
        let mut new = named("Admin");
        new.shortname = "admin".into();
        assert!(validate(&new).get("shortname").is_some());
        assert!(validate_as(&new, Reserved::Allow).is_empty());
    }
}
