//! Per-account limits on creating things (projects, pages), counted in the store so every
//! web node shares one count: one counter document per account, action and hour, bumped
//! atomically and dropped by a TTL index when its hour is long over.

use bson::{DateTime, Document, doc};
use mongodb::Database;
use mongodb::options::ReturnDocument;

use crate::error::{Error, Result};
use crate::ids::UserId;

pub const COLLECTION: &str = "rate_limits";
const HOUR_MS: i64 = 3_600_000;

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    crate::store::ensure_expiry(db, COLLECTION, "expires").await
}

/// Counts one `action` by `user` in the current hour; `RateLimited` once more than
/// `per_hour` were counted. `per_hour` 0 means no limit.
pub async fn hit(db: &Database, action: &str, user: UserId, per_hour: u32) -> Result<()> {
    hit_key(db, action, &user.to_string(), per_hour).await
}

/// Counts one `action` by whoever `key` names (an account, an IP address) in the current
/// hour; `RateLimited` once more than `per_hour` were counted.
pub async fn hit_key(db: &Database, action: &str, key: &str, per_hour: u32) -> Result<()> {
    if per_hour == 0 {
        return Ok(());
    }
    let hour = DateTime::now().timestamp_millis() / HOUR_MS;
    let id = format!("{action}:{key}:{hour}");
    let counted = db
        .collection::<Document>(COLLECTION)
        .find_one_and_update(
            doc! {"_id": &id},
            doc! {
                "$inc": {"count": 1_i64},
                "$setOnInsert": {"expires": DateTime::from_millis((hour + 2) * HOUR_MS)},
            },
        )
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await?
        .and_then(|d| d.get_i64("count").ok())
        .unwrap_or(1);
    if counted > i64::from(per_hour) {
        return Err(Error::RateLimited(format!(
            "you have reached the limit of {per_hour} an hour for this; try again later"
        )));
    }
    Ok(())
}
