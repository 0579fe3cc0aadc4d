//! Follows (Allura's "follow"): a user follows a project or another user, and their dashboard
//! shows that activity. The `follows` collection holds `{user_id, project_id | followed_id,
//! created}`, one document per pair (a unique index).

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::acl::perm;
use crate::error::{Error, Result};
use crate::ids::{ProjectId, UserId};
use crate::project_ctx::ProjectCtx;
use crate::projects::{Neighborhood, Project};
use crate::viewer::Viewer;

pub const COLLECTION: &str = "follows";
/// Most things one account may follow (bounds the dashboard's query).
pub const MAX_FOLLOWS: u64 = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Follow {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followed_id: Option<UserId>,
    pub created: DateTime,
}

/// What is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Project(ProjectId),
    User(UserId),
}

fn coll(db: &Database) -> Collection<Follow> {
    db.collection(COLLECTION)
}

fn filter(user: UserId, target: Target) -> bson::Document {
    match target {
        Target::Project(p) => doc! {"user_id": user, "project_id": p},
        Target::User(u) => doc! {"user_id": user, "followed_id": u},
    }
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    // A missing field indexes as null, so one index keeps both kinds of pair unique.
    coll(db)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"user_id": 1, "project_id": 1, "followed_id": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await?;
    Ok(())
}

/// Follows `target` (following twice is once). Refused past [`MAX_FOLLOWS`].
pub async fn follow(db: &Database, user: UserId, target: Target) -> Result<()> {
    if is_following(db, user, target).await? {
        return Ok(());
    }
    if coll(db).count_documents(doc! {"user_id": user}).await? >= MAX_FOLLOWS {
        return Err(Error::conflict(
            "too_many_follows",
            format!("You follow {MAX_FOLLOWS} projects and people already; unfollow some first"),
        ));
    }
    let (project_id, followed_id) = match target {
        Target::Project(p) => (Some(p), None),
        Target::User(u) => (None, Some(u)),
    };
    let f = Follow {
        id: ObjectId::new(),
        user_id: user,
        project_id,
        followed_id,
        created: DateTime::now(),
    };
    match coll(db).insert_one(&f).await {
        Ok(_) => Ok(()),
        // A concurrent follow of the same thing won the race: that is the same outcome.
        Err(e) if Error::is_duplicate_key(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn unfollow(db: &Database, user: UserId, target: Target) -> Result<()> {
    coll(db).delete_one(filter(user, target)).await?;
    Ok(())
}

/// The read model's memo of who follows what.
pub const MEMO: &str = "follows";

pub async fn is_following(db: &Database, user: UserId, target: Target) -> Result<bool> {
    let f = filter(user, target);
    crate::readmodel::memo(
        db,
        MEMO,
        f.to_string(),
        |_: &bool| 0,
        || async { Ok(coll(db).find_one(f.clone()).await?.is_some()) },
    )
    .await
}

/// What the user follows, newest first (at most [`MAX_FOLLOWS`]).
pub async fn of_user(db: &Database, user: UserId) -> Result<Vec<Follow>> {
    Ok(coll(db)
        .find(doc! {"user_id": user})
        .sort(doc! {"created": -1})
        .limit(MAX_FOLLOWS as i64)
        .await?
        .try_collect()
        .await?)
}

/// What following a project's page means: the project, or on a personal project (`/u/`) its
/// user. `None` when that user is gone.
pub async fn target_of(db: &Database, project: &Project) -> Result<Option<Target>> {
    Ok(match project.neighborhood {
        Neighborhood::Projects => Some(Target::Project(project.id)),
        Neighborhood::Users => crate::users::by_username(db, &project.shortname)
            .await?
            .map(|u| Target::User(u.id)),
    })
}

/// Whether the viewer follows what the project's page stands for (see [`target_of`]).
pub async fn follows_page(db: &Database, viewer: &Viewer, project: &Project) -> Result<bool> {
    let (Some(me), Some(target)) = (viewer.user_id(), target_of(db, project).await?) else {
        return Ok(false);
    };
    is_following(db, me, target).await
}

/// Follows (or stops following) what a project's page stands for, as the viewer: logged in,
/// and able to read the project; nobody follows themselves.
pub async fn set_following(
    db: &Database,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    on: bool,
) -> Result<()> {
    let me = viewer.require_user()?;
    ctx.authorize(perm::READ)?;
    let target = target_of(db, &ctx.project)
        .await?
        .ok_or(Error::NotFound("user"))?;
    if target == Target::User(me.id) {
        return Err(Error::invalid("action", "You cannot follow yourself"));
    }
    if on {
        follow(db, me.id, target).await
    } else {
        unfollow(db, me.id, target).await
    }
}
