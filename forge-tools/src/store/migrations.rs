//! Store migrations: JSON files in the top-level `migrations/` folder, compiled into the binary,
//! applied in name order by `forge migrate` (and at `forge serve` start), recorded in the
//! `migrations` collection. Forward-only; each file's commands must be idempotent, since two
//! processes may race to apply the same one.
//!
//! A file is `{"description": "...", "commands": [<database command>, ...]}`; each command is
//! MongoDB Extended JSON passed to `runCommand`.

use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use include_dir::{Dir, include_dir};
use mongodb::Database;
use serde::Deserialize;

use crate::error::{Error, Result};

static MIGRATIONS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../migrations");

pub const COLLECTION: &str = "migrations";

#[derive(Debug, Clone)]
pub struct Migration {
    pub name: String,
    pub description: String,
    pub commands: Vec<Document>,
}

#[derive(Deserialize)]
struct MigrationFile {
    description: String,
    commands: Vec<serde_json::Value>,
}

/// Every migration shipped with this build, in the order they apply.
pub fn all() -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    for file in MIGRATIONS.files() {
        let path = file.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        out.push(parse(&name, file.contents())?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn parse(name: &str, bytes: &[u8]) -> Result<Migration> {
    let bad = |why: String| Error::Internal(format!("migration {name}: {why}"));
    let file: MigrationFile = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let commands = file
        .commands
        .into_iter()
        .map(|v| match Bson::try_from(v) {
            Ok(Bson::Document(d)) => Ok(d),
            Ok(_) => Err(bad("each command must be an object".into())),
            Err(e) => Err(bad(e.to_string())),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Migration {
        name: name.to_owned(),
        description: file.description,
        commands,
    })
}

/// (name, description, applied-at) for every known migration.
pub async fn status(db: &Database) -> Result<Vec<(String, String, Option<DateTime>)>> {
    let applied: Vec<Document> = db
        .collection::<Document>(COLLECTION)
        .find(doc! {})
        .await?
        .try_collect()
        .await?;
    Ok(all()?
        .into_iter()
        .map(|m| {
            let when = applied
                .iter()
                .find(|d| d.get_str("_id").ok() == Some(m.name.as_str()))
                .and_then(|d| d.get_datetime("applied").ok().copied());
            (m.name, m.description, when)
        })
        .collect())
}

/// Applies the migrations not yet recorded; returns their names.
pub async fn apply_pending(db: &Database) -> Result<Vec<String>> {
    apply(db, all()?).await
}

/// Applies the given migrations (in order) that are not yet recorded.
pub async fn apply(db: &Database, migrations: Vec<Migration>) -> Result<Vec<String>> {
    let coll = db.collection::<Document>(COLLECTION);
    let mut done = Vec::new();
    for m in migrations {
        if coll.find_one(doc! {"_id": &m.name}).await?.is_some() {
            continue;
        }
        for cmd in &m.commands {
            db.run_command(cmd.clone()).await?;
        }
        coll.update_one(
            doc! {"_id": &m.name},
            doc! {"$setOnInsert": {"applied": DateTime::now(), "description": &m.description}},
        )
        .upsert(true)
        .await?;
        tracing::info!(migration = %m.name, "migration applied");
        done.push(m.name);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_migrations_parse_in_order() {
        let all = all().unwrap();
        assert!(!all.is_empty());
        let names: Vec<_> = all.iter().map(|m| m.name.clone()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(all.iter().all(|m| !m.commands.is_empty()));
    }

    #[test]
    fn malformed_file_is_an_error() {
        assert!(parse("x", b"{\"description\": \"d\", \"commands\": [1]}").is_err());
        assert!(parse("x", b"not json").is_err());
    }
}
