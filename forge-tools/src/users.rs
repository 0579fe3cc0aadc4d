//! The `users` collection: accounts and password hashing (argon2id).

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldErrors, Result};
use crate::ids::UserId;
use crate::names::{self, Reserved};
use crate::readmodel::{self, Change, Part, PartStats};

pub const COLLECTION: &str = "users";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "_id")]
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub pw_hash: String,
    #[serde(default)]
    pub site_admin: bool,
    #[serde(default)]
    pub disabled: bool,
    pub created: DateTime,
}

/// What sign-up (or `forge user create`) provides.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub password: String,
    pub site_admin: bool,
}

pub fn collection(db: &Database) -> Collection<User> {
    db.collection(COLLECTION)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    let unique = || IndexOptions::builder().unique(true).build();
    collection(db)
        .create_indexes([
            IndexModel::builder()
                .keys(doc! {"username": 1})
                .options(unique())
                .build(),
            IndexModel::builder()
                .keys(doc! {"email": 1})
                .options(unique())
                .build(),
        ])
        .await?;
    Ok(())
}

pub const MIN_PASSWORD: usize = 8;

/// Field checks that need no store, as for sign-up (reserved usernames refused).
pub fn validate(new: &NewUser) -> FieldErrors {
    validate_as(new, Reserved::Refuse)
}

/// [`validate`], with reserved usernames refused (sign-up) or allowed (the operator's CLI).
pub fn validate_as(new: &NewUser, reserved: Reserved) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if let Err(m) = names::check_shortname_with(&new.username, reserved) {
        errs.add("username", format!("Username {m}"));
    }
    let email = new.email.trim();
    let valid_email = email.len() <= 254
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if !valid_email {
        errs.add("email", "Enter a valid email address");
    }
    if let Err(e) = names::check_display_name(&new.display_name, false) {
        errs.add("display_name", e.to_string());
    }
    if new.password.chars().count() < MIN_PASSWORD {
        errs.add(
            "password",
            format!("Password must be at least {MIN_PASSWORD} characters"),
        );
    } else if new.password.len() > 1024 {
        errs.add("password", "Password must be at most 1024 bytes");
    }
    errs
}

/// Everything that would make [`create_as`] refuse the account, store look-ups (taken
/// username or email) included. Writes nothing.
pub async fn check(db: &Database, new: &NewUser, reserved: Reserved) -> Result<FieldErrors> {
    let mut errs = validate_as(new, reserved);
    let coll = collection(db);
    if errs.get("username").is_none()
        && coll
            .find_one(doc! {"username": &new.username})
            .await?
            .is_some()
    {
        errs.add("username", "That username is already taken");
    }
    if errs.get("email").is_none()
        && coll
            .find_one(doc! {"email": normalized_email(&new.email)})
            .await?
            .is_some()
    {
        errs.add("email", "An account with that email already exists");
    }
    Ok(errs)
}

fn normalized_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The name an account is shown by: the display name given (trimmed), else the username.
pub fn display_name_for(new: &NewUser) -> String {
    match new.display_name.trim() {
        "" => new.username.clone(),
        name => name.to_owned(),
    }
}

/// Creates an account as sign-up does (reserved usernames refused).
pub async fn create(db: &Database, new: NewUser) -> Result<User> {
    create_as(db, new, Reserved::Refuse).await
}

/// Creates an account. Taken usernames or emails are reported per field; nothing is stored
/// when any field is invalid.
pub async fn create_as(db: &Database, new: NewUser, reserved: Reserved) -> Result<User> {
    check(db, &new, reserved).await?.into_result()?;
    let user = User {
        id: UserId::new(),
        display_name: display_name_for(&new),
        email: normalized_email(&new.email),
        username: new.username,
        pw_hash: hash_password(new.password).await?,
        site_admin: new.site_admin,
        disabled: false,
        created: DateTime::now(),
    };
    match collection(db).insert_one(&user).await {
        Ok(_) => Ok(user),
        // Lost a race with another sign-up of the same name.
        Err(e) if Error::is_duplicate_key(&e) => {
            Err(Error::invalid("username", "That username is already taken"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes an account document; only to undo a sign-up that could not be completed.
pub async fn remove(db: &Database, id: UserId) -> Result<()> {
    collection(db).delete_one(doc! {"_id": id}).await?;
    readmodel::with(db, |c: &Cached| c.by_id.invalidate(&id));
    Ok(())
}

pub async fn by_username(db: &Database, username: &str) -> Result<Option<User>> {
    Ok(collection(db).find_one(doc! {"username": username}).await?)
}

/// What the read model keeps of users: accounts by id.
pub struct Cached {
    by_id: Part<UserId, Arc<User>>,
}

/// The users' kind of the read model, with `bytes` of memory for it.
pub fn cached(bytes: u64) -> Arc<dyn readmodel::Kept> {
    Arc::new(Cached {
        by_id: Part::new("users", bytes, |_, u| {
            512 + 2
                * (readmodel::len(&u.username)
                    + readmodel::len(&u.display_name)
                    + readmodel::len(&u.email))
        }),
    })
}

impl readmodel::Kept for Cached {
    fn collection(&self) -> Option<&'static str> {
        Some(COLLECTION)
    }

    fn changed(&self, change: &Change) {
        match &change.id {
            Some(bson::Bson::ObjectId(oid)) => self.by_id.invalidate(&UserId(*oid)),
            _ => self.by_id.invalidate_all(),
        }
    }

    fn reset(&self) {
        self.by_id.invalidate_all();
    }

    fn stats(&self) -> Vec<PartStats> {
        vec![self.by_id.stats()]
    }
}

/// A user by id (through the read model).
pub async fn by_id(db: &Database, id: UserId) -> Result<Option<User>> {
    let found = readmodel::get(
        db,
        |c: &Cached| &c.by_id,
        id,
        || async {
            Ok(collection(db)
                .find_one(doc! {"_id": id})
                .await?
                .map(Arc::new))
        },
    )
    .await?;
    Ok(found.map(|u| (*u).clone()))
}

/// Users by id, in no particular order (through the read model: one query for those not in
/// memory, none when all are).
pub async fn by_ids(db: &Database, ids: &[UserId]) -> Result<Vec<User>> {
    let found = readmodel::get_many(
        db,
        |c: &Cached| &c.by_id,
        ids,
        |missing| async move {
            let missing: Vec<bson::Bson> = missing.into_iter().map(Into::into).collect();
            let users: Vec<User> = collection(db)
                .find(doc! {"_id": {"$in": missing}})
                .await?
                .try_collect()
                .await?;
            Ok(users.into_iter().map(|u| (u.id, Arc::new(u))).collect())
        },
    )
    .await?;
    Ok(found.into_iter().map(|u| (*u).clone()).collect())
}

pub async fn list(db: &Database, limit: i64) -> Result<Vec<User>> {
    Ok(collection(db)
        .find(doc! {})
        .sort(doc! {"_id": -1})
        .limit(limit)
        .await?
        .try_collect()
        .await?)
}

/// Hashes with argon2id off the async threads (it is deliberately slow).
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Checks a password against the stored hash (constant-time inside argon2).
pub async fn verify_password(user: &User, password: String) -> bool {
    let hash = user.pw_hash.clone();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages_per_field() {
        let errs = validate(&NewUser {
            username: "Bad Name".into(),
            email: "nope".into(),
            display_name: String::new(),
            password: "short".into(),
            site_admin: false,
        });
        assert!(errs.get("username").is_some());
        assert!(errs.get("email").is_some());
        assert!(errs.get("password").unwrap().contains("at least 8"));
        let ok = validate(&NewUser {
            username: "alice".into(),
            email: "alice@example.org".into(),
            display_name: "Alice".into(),
            password: "correct horse".into(),
            site_admin: false,
        });
        assert!(ok.is_empty(), "{ok}");
    }

    fn named(username: &str, display_name: &str) -> NewUser {
        NewUser {
            username: username.into(),
            email: format!("{username}@example.org"),
            display_name: display_name.into(),
            password: "correct horse".into(),
            site_admin: false,
        }
    }

    #[test]
    fn reserved_usernames_only_from_the_operator() {
        let admin = named("admin", "");
        assert!(
            validate(&admin)
                .get("username")
                .unwrap()
                .contains("reserved")
        );
        assert!(validate_as(&admin, Reserved::Allow).is_empty());
        assert!(
            validate_as(&named("Admin", ""), Reserved::Allow)
                .get("username")
                .is_some(),
            "still a well-formed name"
        );
    }

    #[test]
    fn display_names_share_the_project_name_rules() {
        let limit = names::MAX_DISPLAY_NAME;
        assert!(validate(&named("alice", &"a".repeat(limit))).is_empty());
        for bad in [
            "a".repeat(limit + 1),
            "Alice\nSmith".into(),
            "Alice\tS".into(),
        ] {
            let errs = validate(&named("alice", &bad));
            assert!(errs.get("display_name").is_some(), "{bad:?}");
        }
        assert_eq!(display_name_for(&named("alice", "  ")), "alice");
        assert_eq!(display_name_for(&named("alice", " Alice S ")), "Alice S");
    }

    #[tokio::test]
    async fn password_hash_is_argon2id_and_verifies() {
        let hash = hash_password("s3cret-pass".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let user = User {
            id: UserId::new(),
            username: "u".into(),
            email: "u@x.y".into(),
            display_name: "u".into(),
            pw_hash: hash,
            site_admin: false,
            disabled: false,
            created: DateTime::now(),
        };
        assert!(verify_password(&user, "s3cret-pass".into()).await);
        assert!(!verify_password(&user, "wrong".into()).await);
    }
}
