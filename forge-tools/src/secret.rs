//! Random secrets (session ids, access tokens, CSRF tokens) and their stored digests, and the
//! site's own signing key.
//! Secrets carry 256 bits of entropy, so a plain SHA-256 digest is safe to store and look up.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bson::doc;
use mongodb::Database;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Where the site's signing key lives: one document of the `settings` collection.
const SETTINGS: &str = "settings";
const SIGNING_KEY: &str = "signing_key";

/// A fresh random token, URL-safe, with an optional recognisable prefix.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Hex SHA-256 of a token: what the store keeps.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Keys already read, by database name: the key never changes once created, so each process
/// reads it once per database (tests open many; a deployment one).
static SITE_SECRETS: LazyLock<moka::sync::Cache<String, Arc<[u8]>>> =
    LazyLock::new(|| moka::sync::Cache::new(64));

/// The site's signing key (`settings.signing_key`), the HMAC key of every link and form the
/// site signs (unsubscribe links, discussion thread references). Created on first use and
/// shared by every node through the store: of two nodes racing to create it, the first insert
/// wins for both. Cached per process once read; replacing the stored key takes a restart.
pub async fn site_secret(db: &Database) -> Result<Arc<[u8]>> {
    if let Some(key) = SITE_SECRETS.get(db.name()) {
        return Ok(key);
    }
    let coll = db.collection::<bson::Document>(SETTINGS);
    let id = doc! {"_id": SIGNING_KEY};
    let stored = match coll.find_one(id.clone()).await? {
        Some(d) => d,
        None => {
            coll.update_one(
                id.clone(),
                doc! {"$setOnInsert": {"value": random_token("")}},
            )
            .upsert(true)
            .await?;
            coll.find_one(id)
                .await?
                .ok_or_else(|| Error::Internal("signing key missing".into()))?
        }
    };
    let value = stored.get_str("value").unwrap_or_default();
    if value.is_empty() {
        return Err(Error::Internal("the stored signing key is empty".into()));
    }
    let key: Arc<[u8]> = Arc::from(value.as_bytes());
    SITE_SECRETS.insert(db.name().to_owned(), key.clone());
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_digests_stable() {
        let a = random_token("forge_");
        let b = random_token("forge_");
        assert_ne!(a, b);
        assert!(a.starts_with("forge_") && a.len() > 40);
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), digest(&b));
    }
}
