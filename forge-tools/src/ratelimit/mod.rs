//! Rate limits counted in the store, so every web node shares one allowance (two nodes
//! behind a proxy must not double it). Three shapes:
//! - [`hit`]/[`hit_key`]: creations per account or address per clock hour (projects, pages,
//!   tickets, posts);
//! - [`window`]: failures in a sliding window (log-in);
//! - [`bucket`]: a token bucket, a burst then one every period (sign-ups).
//!
//! [`accounts`] holds the policies for signing up and logging in.
//!
//! Every counter is one small document bumped atomically and removed by a TTL index once it
//! can no longer matter.

pub mod accounts;
pub mod window;

use std::time::Duration;

use bson::{DateTime, Document, doc};
use mongodb::Database;
use mongodb::options::ReturnDocument;

use crate::error::{Error, Result};
use crate::ids::UserId;

pub const COLLECTION: &str = "rate_limits";
const HOUR_MS: i64 = 3_600_000;
/// Keys (addresses, account names as typed) are cut to this many characters: longer ones
/// are not names anybody has, and an `_id` must stay small.
const MAX_KEY_CHARS: usize = 128;

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    crate::store::ensure_expiry(db, COLLECTION, "expires").await
}

fn counters(db: &Database) -> mongodb::Collection<Document> {
    db.collection(COLLECTION)
}

fn short(key: &str) -> &str {
    key.char_indices()
        .nth(MAX_KEY_CHARS)
        .map_or(key, |(at, _)| &key[..at])
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
    let id = format!("{action}:{}:{hour}", short(key));
    let counted = counters(db)
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

/// Takes one token from the bucket of `action` for `key`: `burst` tokens at once, refilled
/// one every `period`. `false` (nothing taken) when it is empty.
///
/// The bucket is one number, the time it will be full again (GCRA's "theoretical arrival
/// time"), moved forward by `period` per token in one atomic update, so concurrent callers
/// on any node never take more than the bucket holds.
pub async fn bucket(
    db: &Database,
    action: &str,
    key: &str,
    burst: u32,
    period: Duration,
) -> Result<bool> {
    let now = DateTime::now().timestamp_millis();
    let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX / 4);
    let limit = now.saturating_add(period_ms.saturating_mul(i64::from(burst)));
    let full_at = doc! {"$max": [{"$ifNull": ["$full_at", now]}, now]};
    let next = doc! {"$add": [full_at, period_ms]};
    let fits = doc! {"$lte": [next.clone(), limit]};
    let id = format!("{action}:{}", short(key));
    let after = counters(db)
        .find_one_and_update(
            doc! {"_id": &id},
            vec![doc! {"$set": {
                "full_at": {"$cond": [fits.clone(), next, {"$ifNull": ["$full_at", now]}]},
                "took": {"$cond": [fits, true, false]},
                // Past this the bucket is full again, the same as no document.
                "expires": DateTime::from_millis(limit.saturating_add(period_ms)),
            }}],
        )
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await?;
    Ok(after.is_some_and(|d| d.get_bool("took").unwrap_or(false)))
}
