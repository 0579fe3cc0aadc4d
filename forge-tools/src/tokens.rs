//! The `tokens` collection: personal access tokens for the REST API and git. Only a digest of
//! each token is stored; the token itself is shown once, when created.

use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{TokenId, UserId};
use crate::secret;

pub const COLLECTION: &str = "tokens";
/// Every token starts with this, so secret scanners can recognise a leaked one.
pub const PREFIX: &str = "forge_";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    #[serde(rename = "_id")]
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    pub hash: String,
    pub created: DateTime,
    #[serde(default)]
    pub last_used: Option<DateTime>,
}

fn collection(db: &Database) -> Collection<Token> {
    db.collection(COLLECTION)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    collection(db)
        .create_indexes([
            IndexModel::builder()
                .keys(doc! {"hash": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
            IndexModel::builder().keys(doc! {"user_id": 1}).build(),
        ])
        .await?;
    Ok(())
}

/// Creates a token; returns its record and the secret (shown once).
pub async fn create(db: &Database, user_id: UserId, name: &str) -> Result<(Token, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid(
            "name",
            "Give the token a name of 1 to 100 characters",
        ));
    }
    let secret = secret::random_token(PREFIX);
    let token = Token {
        id: TokenId::new(),
        user_id,
        name: name.to_owned(),
        hash: secret::digest(&secret),
        created: DateTime::now(),
        last_used: None,
    };
    collection(db).insert_one(&token).await?;
    Ok((token, secret))
}

/// The user a token belongs to; records its use.
pub async fn lookup(db: &Database, secret: &str) -> Result<Option<UserId>> {
    if !secret.starts_with(PREFIX) {
        return Ok(None);
    }
    let found = collection(db)
        .find_one_and_update(
            doc! {"hash": secret::digest(secret)},
            doc! {"$set": {"last_used": DateTime::now()}},
        )
        .await?;
    Ok(found.map(|t| t.user_id))
}

pub async fn list(db: &Database, user_id: UserId) -> Result<Vec<Token>> {
    Ok(collection(db)
        .find(doc! {"user_id": user_id})
        .sort(doc! {"_id": -1})
        .await?
        .try_collect()
        .await?)
}

/// Revokes one of the user's tokens; false when there was no such token.
pub async fn revoke(db: &Database, user_id: UserId, id: TokenId) -> Result<bool> {
    let res = collection(db)
        .delete_one(doc! {"_id": id, "user_id": user_id})
        .await?;
    Ok(res.deleted_count == 1)
}
