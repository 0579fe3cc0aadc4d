//! The background tasks of the forge, registered for whichever runner executes them
//! (in-process, or a worker): the platform's (search indexing, notification mail, webhook
//! deliveries, analytics)
//! and every task a tool defines ([`crate::tool::Tool::tasks`]). Handlers are idempotent: a
//! task may run more than once.

use std::sync::{Arc, OnceLock};

use forge_tasks::{Registry, TaskError};

use crate::error::Error;
use crate::notify;
use crate::search::indexer as search;
use crate::tool::{Forge, ToolRegistry};

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

/// Every task handler of the forge with the tools shipped ([`ToolRegistry::builtin`]).
pub fn handlers(cell: ForgeCell) -> Registry {
    handlers_for(cell, &ToolRegistry::builtin())
}

/// Every task handler of the forge, with the tasks of these tools (the domain opened into
/// `cell` should have the same kinds; a tool task runs on the tool of its kind there).
pub fn handlers_for(cell: ForgeCell, tools: &ToolRegistry) -> Registry {
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
    r.register(notify::TASK_CHANGE, move |args: serde_json::Value| {
        let cell = c.clone();
        async move {
            let forge = started(&cell)?;
            notify::run_change(forge, &args).await.map_err(classify)
        }
    });
    let c = cell.clone();
    r.register(notify::TASK_DIGEST, move |args: serde_json::Value| {
        let cell = c.clone();
        async move {
            let forge = started(&cell)?;
            notify::run_digest(forge, &args).await.map_err(classify)
        }
    });
    for &name in crate::webhooks::TASKS {
        let c = cell.clone();
        r.register(name, move |args: serde_json::Value| {
            let cell = c.clone();
            async move {
                let forge = started(&cell)?;
                crate::webhooks::run(forge, name, &args)
                    .await
                    .map_err(classify)
            }
        });
    }
    let c = cell.clone();
    r.register(
        crate::analytics::TASK_RUN,
        move |_args: serde_json::Value| {
            let cell = c.clone();
            async move {
                let forge = started(&cell)?;
                forge
                    .run_analytics(false)
                    .await
                    .map(|_| ())
                    .map_err(classify)
            }
        },
    );
    for tool in tools.all() {
        let kind = tool.kind();
        for task in tool.tasks() {
            let name = task.name;
            let c = cell.clone();
            let handler = move |args: serde_json::Value| {
                let cell = c.clone();
                async move {
                    let forge = started(&cell)?;
                    let tool = forge.tools().get(kind).ok_or_else(|| {
                        TaskError::Fatal(format!("no {kind} tool to run task {name:?}"))
                    })?;
                    tool.run_task(forge, name, &args).await.map_err(classify)
                }
            };
            if task.exclusive {
                r.register_exclusive(name, handler);
            } else {
                r.register(name, handler);
            }
        }
    }
    r
}
