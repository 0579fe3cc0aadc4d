//! Counts in a sliding window shared by every node: one document per key and fixed window,
//! and a count that weighs the previous window by how much of it still overlaps the sliding
//! one, so failures spread across a window boundary are not forgotten at the boundary.

use std::time::Duration;

use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::Database;

use super::{counters, short};
use crate::error::Result;

/// A sliding window of `length`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    length_ms: i64,
}

impl Window {
    pub fn new(length: Duration) -> Self {
        Self {
            length_ms: i64::try_from(length.as_millis())
                .unwrap_or(i64::MAX / 4)
                .max(1),
        }
    }

    fn id(action: &str, key: &str, index: i64) -> String {
        format!("{action}:{}:{index}", short(key))
    }

    /// The counts of each `(action, key)`, in order, over the window ending now.
    pub async fn counts(&self, db: &Database, keys: &[(&str, &str)]) -> Result<Vec<u64>> {
        let now = DateTime::now().timestamp_millis();
        let index = now / self.length_ms;
        // How much of the previous fixed window the sliding one still covers.
        let overlap = 1.0 - (now % self.length_ms) as f64 / self.length_ms as f64;
        let mut ids = Vec::with_capacity(keys.len() * 2);
        for (action, key) in keys {
            ids.push(Self::id(action, key, index));
            ids.push(Self::id(action, key, index - 1));
        }
        let found: Vec<Document> = counters(db)
            .find(doc! {"_id": {"$in": &ids}})
            .await?
            .try_collect()
            .await?;
        let count = |id: &str| {
            found
                .iter()
                .find(|d| d.get_str("_id").is_ok_and(|x| x == id))
                .and_then(|d| d.get_i64("count").ok())
                .unwrap_or(0)
        };
        Ok(ids
            .chunks(2)
            .map(|pair| {
                let weighted = count(&pair[0]) as f64 + count(&pair[1]) as f64 * overlap;
                weighted.max(0.0) as u64
            })
            .collect())
    }

    /// Counts one `action` by `key` now.
    pub async fn add(&self, db: &Database, action: &str, key: &str) -> Result<()> {
        let index = DateTime::now().timestamp_millis() / self.length_ms;
        counters(db)
            .update_one(
                doc! {"_id": Self::id(action, key, index)},
                doc! {
                    "$inc": {"count": 1_i64},
                    // Needed for one more window after its own (the overlap above).
                    "$setOnInsert": {
                        "expires": DateTime::from_millis((index + 2) * self.length_ms),
                    },
                },
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    /// Forgets what was counted of `action` by `key`.
    pub async fn clear(&self, db: &Database, action: &str, key: &str) -> Result<()> {
        let index = DateTime::now().timestamp_millis() / self.length_ms;
        counters(db)
            .delete_many(doc! {"_id": {"$in": [
                Self::id(action, key, index),
                Self::id(action, key, index - 1),
            ]}})
            .await?;
        Ok(())
    }
}
