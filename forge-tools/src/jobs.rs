//! The background tasks the domain defines, registered for whichever runner executes them
//! (in-process, or a worker). Handlers are idempotent: a task may run more than once.

use std::sync::{Arc, OnceLock};

use forge_tasks::{Registry, TaskError};

use crate::error::Error;
use crate::forge::Forge;
use crate::repo::refresh;
use crate::search::indexer as search;

/// The domain handle, filled in once the domain is open (the runner starts first, so a task
/// that arrives earlier is retried).
pub type ForgeCell = Arc<OnceLock<Forge>>;

fn classify(e: Error) -> TaskError {
    match e {
        Error::Invalid(_) | Error::NotFound(_) => TaskError::Fatal(e.to_string()),
        other => TaskError::Retry(other.to_string()),
    }
}

fn started(cell: &ForgeCell) -> Result<&Forge, TaskError> {
    cell.get()
        .ok_or_else(|| TaskError::Retry("the forge is still starting".into()))
}

/// Every task handler of the forge.
pub fn handlers(cell: ForgeCell) -> Registry {
    let mut r = Registry::new();
    let c = cell.clone();
    // The search index has one writer: only the worker holding it runs these.
    r.register_exclusive(search::TASK_INDEX, move |args: serde_json::Value| {
        let cell = c.clone();
        async move {
            let forge = started(&cell)?;
            search::run_index(forge, &args).await.map_err(classify)
        }
    });
    let c = cell.clone();
    r.register_exclusive(search::TASK_PROJECT, move |args: serde_json::Value| {
        let cell = c.clone();
        async move {
            let forge = started(&cell)?;
            search::run_project(forge, &args).await.map_err(classify)
        }
    });
    let c = cell.clone();
    r.register(
        crate::notify::TASK_CHANGE,
        move |args: serde_json::Value| {
            let cell = c.clone();
            async move {
                let forge = started(&cell)?;
                crate::notify::run_change(forge, &args)
                    .await
                    .map_err(classify)
            }
        },
    );
    let c = cell.clone();
    r.register(
        crate::notify::TASK_DIGEST,
        move |args: serde_json::Value| {
            let cell = c.clone();
            async move {
                let forge = started(&cell)?;
                crate::notify::run_digest(forge, &args)
                    .await
                    .map_err(classify)
            }
        },
    );
    r.register(refresh::TASK, move |args: serde_json::Value| {
        let cell = cell.clone();
        async move {
            let forge = cell
                .get()
                .ok_or_else(|| TaskError::Retry("the forge is still starting".into()))?;
            let report = refresh::run(forge, &args).await.map_err(classify)?;
            tracing::info!(
                new_commits = report.new_commits,
                refs = report.refs,
                "repository refreshed"
            );
            Ok(())
        }
    });
    r
}
