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

/// What a masked token starts with (never the start of a token: those are base64url or hex).
const MASKED: &str = "m.";

/// `token` masked with a fresh random pad: `m.` then base64url of the pad followed by the
/// token XOR the pad. Each call gives a different string for the same token, so a page that
/// carries it can be compressed without its size telling an attacker anything about the
/// token (BREACH); [`token_matches`] takes either form.
pub fn mask(token: &str) -> String {
    let raw = token.as_bytes();
    let mut out = vec![0u8; raw.len() * 2];
    let (pad, xored) = out.split_at_mut(raw.len());
    OsRng.fill_bytes(pad);
    for ((x, p), t) in xored.iter_mut().zip(pad.iter()).zip(raw) {
        *x = p ^ t;
    }
    format!("{MASKED}{}", URL_SAFE_NO_PAD.encode(out))
}

/// Whether `given` is `expected` (in constant time), plain or masked by [`mask`]. An empty
/// `expected` matches nothing.
pub fn token_matches(expected: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    if expected.is_empty() {
        return false;
    }
    let Some(masked) = given.strip_prefix(MASKED) else {
        return bool::from(given.as_bytes().ct_eq(expected.as_bytes()));
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(masked) else {
        return false;
    };
    if bytes.len() != expected.len() * 2 {
        return false;
    }
    let (pad, xored) = bytes.split_at(expected.len());
    let unmasked: Vec<u8> = pad.iter().zip(xored).map(|(p, x)| p ^ x).collect();
    bool::from(unmasked.ct_eq(expected.as_bytes()))
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
    fn masked_tokens_differ_each_time_and_match_only_their_token() {
        let token = random_token("");
        let (a, b) = (mask(&token), mask(&token));
        assert_ne!(a, b);
        assert!(!a.contains(&token));
        assert!(token_matches(&token, &a) && token_matches(&token, &b));
        assert!(token_matches(&token, &token));
        let other = random_token("");
        assert!(!token_matches(&other, &a));
        assert!(!token_matches("", &a) && !token_matches("", ""));
        assert!(!token_matches(&token, "m.not base64"));
        assert!(!token_matches(&token, &a[..a.len() - 2]));
        // A mask of a prefix of the token is not the token.
        assert!(!token_matches(&token, &mask(&token[..10])));
    }

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
