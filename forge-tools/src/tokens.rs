//! The `tokens` collection: personal access tokens for the REST API and git. Only a digest of
//! each token is stored; the token itself is shown once, when created.

use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{TokenId, UserId};
use crate::readmodel::{self, Change, ChangeKind, Part, PartStats};
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

/// A live access token as the read model keeps it: its id and whose.
#[derive(Debug, Clone, Copy)]
pub struct TokenHit {
    pub id: TokenId,
    pub user: UserId,
}

/// What the read model keeps of tokens: the live ones by digest, and which were used lately.
pub struct Cached {
    by_hash: Part<String, TokenHit>,
    /// Tokens whose last use was written in the last minute (by this node).
    used: moka::sync::Cache<TokenId, ()>,
}

impl Cached {
    /// Whether this use should be written (the first in a minute).
    fn note_use(&self, id: TokenId) -> bool {
        let fresh = !self.used.contains_key(&id);
        if fresh {
            self.used.insert(id, ());
        }
        fresh
    }
}

/// The tokens' kind of the read model, with `bytes` of memory for it.
pub fn cached(bytes: u64) -> std::sync::Arc<dyn readmodel::Kept> {
    std::sync::Arc::new(Cached {
        by_hash: Part::new("tokens", bytes, |_, _| 192),
        used: moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(std::time::Duration::from_secs(60))
            .build(),
    })
}

impl readmodel::Kept for Cached {
    fn collection(&self) -> Option<&'static str> {
        Some(COLLECTION)
    }

    fn changed(&self, change: &Change) {
        // A use of a token only moves its `last_used`: nothing kept changed. Anything else
        // (a revocation) drops them all: they are kept by digest, the change names the id.
        let only_use =
            change.kind == ChangeKind::Update && change.fields.iter().all(|f| f == "last_used");
        if !only_use {
            self.by_hash.invalidate_all();
        }
    }

    fn reset(&self) {
        self.by_hash.invalidate_all();
    }

    fn stats(&self) -> Vec<PartStats> {
        vec![self.by_hash.stats()]
    }
}

/// The user a token belongs to; records its use.
pub async fn lookup(db: &Database, secret: &str) -> Result<Option<UserId>> {
    if !secret.starts_with(PREFIX) {
        return Ok(None);
    }
    let hash = secret::digest(secret);
    let hit = readmodel::get(
        db,
        |c: &Cached| &c.by_hash,
        hash.clone(),
        || async {
            let found = collection(db).find_one(doc! {"hash": &hash}).await?;
            Ok(found.map(|t| TokenHit {
                id: t.id,
                user: t.user_id,
            }))
        },
    )
    .await?;
    let Some(hit) = hit else { return Ok(None) };
    // The last use is written once a minute at most per token and node: a use stays a read.
    let mut write = true;
    readmodel::with(db, |c: &Cached| write = c.note_use(hit.id));
    if write {
        collection(db)
            .update_one(
                doc! {"_id": hit.id},
                doc! {"$set": {"last_used": DateTime::now()}},
            )
            .await?;
    }
    Ok(Some(hit.user))
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
    readmodel::with(db, |c: &Cached| c.by_hash.invalidate_all());
    Ok(res.deleted_count == 1)
}
