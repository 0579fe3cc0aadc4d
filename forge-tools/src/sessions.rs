//! The `sessions` collection: server-side login sessions. The cookie holds a random token; the
//! store keeps only its digest, so a leaked database cannot be replayed as cookies.

use bson::{DateTime, doc};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::UserId;
use crate::secret;

pub const COLLECTION: &str = "sessions";
pub const LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Digest of the cookie token.
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: UserId,
    pub created: DateTime,
    pub expires: DateTime,
}

fn collection(db: &Database) -> Collection<Session> {
    db.collection(COLLECTION)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    // The server drops expired sessions by itself; lookups also check `expires`.
    crate::store::ensure_expiry(db, COLLECTION, "expires").await?;
    collection(db)
        .create_index(IndexModel::builder().keys(doc! {"user_id": 1}).build())
        .await?;
    Ok(())
}

/// Starts a session; returns the token for the cookie.
pub async fn create(db: &Database, user_id: UserId) -> Result<String> {
    let token = secret::random_token("");
    let now = DateTime::now();
    let session = Session {
        id: secret::digest(&token),
        user_id,
        created: now,
        expires: DateTime::from_millis(now.timestamp_millis() + LIFETIME.as_millis() as i64),
    };
    collection(db).insert_one(&session).await?;
    Ok(token)
}

/// The user a live session token belongs to.
pub async fn lookup(db: &Database, token: &str) -> Result<Option<UserId>> {
    let found = collection(db)
        .find_one(doc! {"_id": secret::digest(token), "expires": {"$gt": DateTime::now()}})
        .await?;
    Ok(found.map(|s| s.user_id))
}

/// The CSRF token of forms shown in a session: derived from the session's secret cookie
/// token, so it is bound to that session, changes at every log-in, and needs no storage.
pub fn csrf_token(session_token: &str) -> String {
    secret::digest(&format!("csrf\0{session_token}"))
}

pub async fn delete(db: &Database, token: &str) -> Result<()> {
    collection(db)
        .delete_one(doc! {"_id": secret::digest(token)})
        .await?;
    Ok(())
}
