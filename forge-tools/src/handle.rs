//! The domain handle's parts: the store, the configuration, the event log, the task queue, the
//! attachments, the search index, the mailer, the live statistics hub and the tool set, behind one cheap-to-clone
//! handle with an accessor each.
//!
//! The handle is generic over its tool set only to keep the modules acyclic: tools receive the
//! handle ([`crate::Forge`] is `Handle<ToolRegistry>`, defined beside the `Tool` trait) while
//! the handle holds the tools, so this module names neither. The actions live in `forge/`.

use std::sync::Arc;

use forge_tasks::Tasks;
use mongodb::Database;

use crate::analytics::live::Hub;
use crate::attachments::AttachmentStore;
use crate::config::Config;
use crate::events::EventLog;
use crate::mail::Mailer;
use crate::readmodel::ReadModel;
use crate::search::SearchIndex;

/// Shared handle to the domain; cheap to clone. Used as [`crate::Forge`].
pub struct Handle<T> {
    inner: Arc<Parts<T>>,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// What a handle is made of (assembled by `Forge::open`).
pub(crate) struct Parts<T> {
    pub db: Database,
    pub config: Config,
    pub events: EventLog,
    pub tasks: Tasks,
    pub tools: T,
    pub attachments: AttachmentStore,
    pub search: SearchIndex,
    pub mailer: Mailer,
    pub live: Hub,
    /// Kept here so it lives as long as the forge (the store modules look it up).
    pub read_model: Arc<ReadModel>,
}

impl<T> Handle<T> {
    pub(crate) fn new(parts: Parts<T>) -> Self {
        Self {
            inner: Arc::new(parts),
        }
    }

    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    /// The read model of this forge's database (see [`crate::readmodel`]).
    pub fn read_model(&self) -> &ReadModel {
        &self.inner.read_model
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn events(&self) -> &EventLog {
        &self.inner.events
    }

    /// Outgoing mail (SMTP, or `.eml` files under the data dir).
    pub fn mailer(&self) -> &Mailer {
        &self.inner.mailer
    }

    /// The search index (written only by the process that runs tasks).
    pub fn search(&self) -> &SearchIndex {
        &self.inner.search
    }

    pub fn tasks(&self) -> &Tasks {
        &self.inner.tasks
    }

    /// The tool kinds of this forge (with whatever per-process state they hold).
    pub fn tools(&self) -> &T {
        &self.inner.tools
    }

    pub fn attachments(&self) -> &AttachmentStore {
        &self.inner.attachments
    }

    /// Live statistics updates of this process (see `crate::analytics::live`).
    pub fn live(&self) -> &Hub {
        &self.inner.live
    }
}
