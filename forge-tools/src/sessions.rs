//! The `sessions` collection: server-side login sessions. The cookie holds a random token; the
//! store keeps only its digest, so a leaked database cannot be replayed as cookies.

use bson::{DateTime, doc};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::UserId;
use crate::readmodel::{self, Change, Part, PartStats};
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

/// A live session as the read model keeps it: whose, and until when.
#[derive(Debug, Clone, Copy)]
pub struct SessionHit {
    pub user: UserId,
    pub expires: DateTime,
}

/// What the read model keeps of sessions: the live ones by token digest.
pub struct Cached {
    by_digest: Part<String, SessionHit>,
}

/// The sessions' kind of the read model, with `bytes` of memory for it.
pub fn cached(bytes: u64) -> std::sync::Arc<dyn readmodel::Kept> {
    std::sync::Arc::new(Cached {
        by_digest: Part::new("sessions", bytes, |_, _| 192),
    })
}

impl readmodel::Kept for Cached {
    fn collection(&self) -> Option<&'static str> {
        Some(COLLECTION)
    }

    fn changed(&self, change: &Change) {
        match &change.id {
            Some(bson::Bson::String(digest)) => self.by_digest.invalidate(digest),
            _ => self.by_digest.invalidate_all(),
        }
    }

    fn reset(&self) {
        self.by_digest.invalidate_all();
    }

    fn stats(&self) -> Vec<PartStats> {
        vec![self.by_digest.stats()]
    }
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

/// The user a live session token belongs to (through the read model).
pub async fn lookup(db: &Database, token: &str) -> Result<Option<UserId>> {
    let digest = secret::digest(token);
    let now = DateTime::now();
    let hit = readmodel::get(
        db,
        |c: &Cached| &c.by_digest,
        digest.clone(),
        || async {
            let found = collection(db)
                .find_one(doc! {"_id": &digest, "expires": {"$gt": now}})
                .await?;
            Ok(found.map(|s| SessionHit {
                user: s.user_id,
                expires: s.expires,
            }))
        },
    )
    .await?;
    Ok(hit.filter(|h| h.expires > now).map(|h| h.user))
}

/// The CSRF token of forms shown in a session: derived from the session's secret cookie
/// token, so it is bound to that session, changes at every log-in, and needs no storage.
pub fn csrf_token(session_token: &str) -> String {
    secret::digest(&format!("csrf\0{session_token}"))
}

pub async fn delete(db: &Database, token: &str) -> Result<()> {
    let digest = secret::digest(token);
    collection(db).delete_one(doc! {"_id": &digest}).await?;
    readmodel::with(db, |c: &Cached| c.by_digest.invalidate(&digest));
    Ok(())
}
