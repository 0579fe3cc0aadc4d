//! The domain's actions, as the web layer and the command line call them: each checks the
//! viewer's rights, changes the store, records an event and queues follow-up work (the search
//! index). Split by what they act on: accounts, projects, members, installed tools. The handle
//! itself is [`crate::handle::Handle`]; this module opens it.

mod accounts;
mod installs;
mod members;
mod projects;
mod stats;

use bson::Bson;
use forge_tasks::Tasks;

use crate::attachments::{self, AttachmentStore};
use crate::config::Config;
use crate::error::Result;
use crate::events::{self, EventLog};
use crate::handle::{Handle, Parts};
use crate::mail::Mailer;
use crate::projects::Project;
use crate::search::SearchIndex;
use crate::tool::{Forge, ToolRegistry, instance};
use crate::viewer::Viewer;
use crate::{links, notify, ratelimit, sessions, tokens, users};
pub use installs::ToolUpdate;
pub use projects::ProjectUpdate;
pub use stats::{Interval, Series};

impl Forge {
    /// Opens the domain over a connected store: creates indexes (the platform's and each
    /// tool's), starts the event writer, and lets each tool do its start-up work. `dbs` is
    /// the forge's database, or [`crate::events::Databases`] to write the event log through
    /// a client of its own ([`crate::store::connect_log`]).
    pub async fn open(
        dbs: impl Into<crate::events::Databases>,
        config: Config,
        tasks: Tasks,
        tools: ToolRegistry,
        search_writer: bool,
    ) -> Result<Self> {
        let dbs = dbs.into();
        let db = dbs.main().clone();
        users::ensure_indexes(&db).await?;
        sessions::ensure_indexes(&db).await?;
        tokens::ensure_indexes(&db).await?;
        crate::projects::ensure_indexes(&db).await?;
        instance::ensure_indexes(&db).await?;
        events::ensure_indexes(&db, config.events_retention_days).await?;
        crate::activity::stream::ensure_indexes(&db).await?;
        Tasks::ensure_indexes(&db).await?;
        links::ensure_indexes(&db).await?;
        crate::discussion::ensure_indexes(&db).await?;
        attachments::ensure_indexes(&db).await?;
        ratelimit::ensure_indexes(&db).await?;
        notify::ensure_indexes(&db).await?;
        crate::webhooks::ensure_indexes(&db).await?;
        for tool in tools.all() {
            tool.ensure_indexes(&db).await?;
        }
        let events = EventLog::start_on(&dbs).await?;
        // The read model's kinds, with their shares of `FORGE_CACHE_MB`.
        // About half to what every request reads, the rest to the platform's memos and a
        // quarter shared by the tools' own.
        let bytes = config.cache_mb.max(1) * 1024 * 1024;
        let memo = crate::readmodel::memo::kind;
        let mut kinds = vec![
            sessions::cached(bytes / 8),
            tokens::cached(bytes / 20),
            users::cached(bytes / 10),
            crate::projects::cached(bytes * 3 / 20),
            instance::cached(bytes / 10),
            memo(crate::links::MEMO, crate::links::COLLECTION, bytes / 16),
            memo(attachments::MEMO, attachments::COLLECTION, bytes / 16),
            memo(
                crate::discussion::MEMO_THREADS,
                crate::discussion::THREADS,
                bytes / 32,
            ),
            memo(
                crate::discussion::MEMO_POSTS,
                crate::discussion::POSTS,
                bytes / 16,
            ),
            memo(
                crate::discussion::MEMO_POST_COUNTS,
                crate::discussion::POSTS,
                bytes / 64,
            ),
            memo(notify::MEMO, notify::SUBSCRIPTIONS, bytes / 32),
            memo(
                crate::activity::stream::MEMO,
                crate::activity::ACTIVITY,
                bytes / 32,
            ),
            memo(
                crate::activity::follows::MEMO,
                crate::activity::follows::COLLECTION,
                bytes / 64,
            ),
            memo(stats::MEMO_FIGURES, stats::FIGURES_COLLECTION, bytes / 32),
        ];
        let tool_count = tools.all().count().max(1) as u64;
        for tool in tools.all() {
            kinds.extend(tool.kept(bytes / 4 / tool_count));
        }
        let read_model = crate::readmodel::watch::start(&db, kinds);
        let attachments = AttachmentStore::new(&config.data_dir, config.max_attachment_bytes);
        let mailer = Mailer::from_config(&config)?;
        let search = SearchIndex::open(&config.data_dir.join("search"), search_writer)?;
        let forge = Handle::new(Parts {
            db,
            config,
            events,
            tasks,
            tools,
            attachments,
            search,
            mailer,
            live: crate::analytics::live::Hub::new(),
            read_model,
        });
        for tool in forge.tools().all() {
            tool.start(&forge).await?;
        }
        Ok(forge)
    }

    fn event(
        &self,
        kind: &str,
        viewer: &Viewer,
        project: Option<&Project>,
        tool: Option<&str>,
        extra: Bson,
    ) {
        self.events()
            .record(kind, viewer.event_context(project, tool), extra);
    }
}
