//! Task handlers and the [`Registry`] that names them.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::TaskError;

/// A task handler. Must be idempotent.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, args: serde_json::Value) -> Result<(), TaskError>;
}

#[async_trait]
impl<F, Fut> Handler for F
where
    F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), TaskError>> + Send + 'static,
{
    async fn run(&self, args: serde_json::Value) -> Result<(), TaskError> {
        (self)(args).await
    }
}

/// Named handlers.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn Handler>>,
    /// Tasks only one process can run (it holds a resource, e.g. the search index writer).
    exclusive: std::collections::HashSet<String>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, name: &str, handler: impl Handler) -> &mut Self {
        self.handlers.insert(name.to_owned(), Arc::new(handler));
        self
    }

    /// Registers a handler that only the worker holding some single resource may run. Other
    /// workers hand such tasks on to the `<prefix>.tasks.exclusive` queue, which only that worker
    /// consumes (see [`WorkerOptions::exclusive`]). In-process, every task runs locally.
    pub fn register_exclusive(&mut self, name: &str, handler: impl Handler) -> &mut Self {
        self.exclusive.insert(name.to_owned());
        self.register(name, handler)
    }

    pub fn is_exclusive(&self, name: &str) -> bool {
        self.exclusive.contains(name)
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Handler>> {
        self.handlers.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}
