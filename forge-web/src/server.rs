//! Start-up: configuration → store (external or embedded) → migrations → task runner →
//! domain → HTTP server; and orderly shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use forge_tasks::{
    Amqp, AmqpOptions, InProcess, Registry, StoreOnly, Tasks, Transport, WorkerOptions,
};
use forge_tools::Forge;
use forge_tools::config::Config;
use forge_tools::store::embedded::EmbeddedStore;
use forge_tools::store::{self, migrations};
use forge_tools::tool::ToolRegistry;
use std::sync::Arc;

/// The store connection a command runs on, and the embedded server if the forge owns one.
pub struct Services {
    pub forge: Forge,
    embedded: Option<EmbeddedStore>,
    /// Task handlers, kept for `forge worker` when a broker carries the tasks.
    registry: Option<Registry>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Embedded(#[from] forge_tools::store::embedded::EmbeddedError),
    #[error("store at {uri}: {source}")]
    Store {
        uri: String,
        source: forge_tools::Error,
    },
    #[error(transparent)]
    Domain(#[from] forge_tools::Error),
    #[error(transparent)]
    Tasks(#[from] forge_tasks::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// What a process is for, which decides where its tasks go and whether it writes the search
/// index (only the process that runs tasks does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `forge serve`: runs tasks itself unless a broker is configured.
    Web,
    /// `forge worker`: runs tasks from the broker.
    Worker,
    /// A short CLI command: its tasks go to the broker, or are stored for `forge serve`.
    Command,
}

impl Services {
    /// Connects to the configured store (starting the embedded one when none is configured)
    /// and opens the domain for the given role.
    pub async fn open(config: Config, role: Role) -> Result<Self, StartError> {
        let (uri, embedded) = match &config.mongodb_uri {
            Some(uri) => (uri.clone(), None),
            None => {
                std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                    StartError::Other(format!(
                        "cannot create data dir {}: {e}",
                        config.data_dir.display()
                    ))
                })?;
                let store = EmbeddedStore::start(&config.data_dir).await?;
                if store.is_owned() {
                    tracing::info!(uri = store.uri(), "embedded store started");
                } else {
                    tracing::info!(
                        uri = store.uri(),
                        "using the embedded store another forge process runs"
                    );
                }
                (store.uri().to_owned(), Some(store))
            }
        };
        let db = store::connect(&uri, &config.db_name, Duration::from_secs(30))
            .await
            .map_err(|source| StartError::Store {
                uri: redact(&uri),
                source,
            })?;
        // The event log's writes go through a client of their own (see `store::connect_log`).
        let log_client = store::connect_log(&uri)
            .await
            .map_err(|source| StartError::Store {
                uri: redact(&uri),
                source,
            })?;
        let cell = forge_tools::jobs::ForgeCell::default();
        let registry = forge_tools::jobs::handlers(cell.clone());
        // With a broker, this process only publishes (`forge worker` runs the tasks); without
        // one, tasks run here.
        let (transport, registry, writes_search): (Arc<dyn Transport>, _, _) =
            match (&config.amqp_url, role) {
                (Some(url), _) => {
                    let amqp = Amqp::connect(amqp_options(url, &config))
                        .await
                        .map_err(|e| StartError::Other(format!("broker {}: {e}", redact(url))))?;
                    (amqp, Some(registry), role == Role::Worker)
                }
                (None, Role::Command) => (Arc::new(StoreOnly), None, false),
                (None, _) => {
                    let runner = InProcess::start(
                        &db,
                        registry,
                        config.task_concurrency,
                        Duration::from_secs(2),
                    )
                    .await?;
                    (runner, None, true)
                }
            };
        let tasks = Tasks::new(&db, transport);
        let amqp_url = config.amqp_url.clone();
        let live_opts = amqp_url.as_deref().map(|url| amqp_options(url, &config));
        let dbs = forge_tools::events::Databases::new(db, &log_client);
        let forge = Forge::open(dbs, config, tasks, ToolRegistry::builtin(), writes_search).await?;
        let _ = cell.set(forge.clone());
        if writes_search {
            // This process runs tasks: it also schedules the daily digests.
            spawn_digest_ticker(forge.clone());
        }
        if role != Role::Command {
            if let Some(opts) = live_opts {
                crate::analytics::relay_through_broker(&forge, opts)
                    .await
                    .map_err(|e| {
                        StartError::Other(format!(
                            "broker {}: {e}",
                            redact(amqp_url.as_deref().unwrap_or_default())
                        ))
                    })?;
            }
            // Every node asks for runs after its own events; the lease keeps them single.
            crate::analytics::spawn_ticker(forge.clone());
        }
        Ok(Self {
            forge,
            embedded,
            registry,
        })
    }

    /// Flushes the event log and stops the embedded store.
    pub async fn close(self) {
        self.forge.events().flush().await;
        if let Some(store) = self.embedded {
            store.stop().await;
        }
    }
}

/// Queues `notify.digest` every hour (queued duplicates merge; the task mails each digest user
/// at most once a day).
fn spawn_digest_ticker(forge: Forge) {
    tokio::spawn(async move {
        // First tick an hour after start, not at start-up.
        let hour = Duration::from_secs(3600);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + hour, hour);
        loop {
            tick.tick().await;
            let opts = forge_tasks::TaskOptions {
                priority: 2,
                dedup_key: Some(forge_tools::notify::TASK_DIGEST.into()),
                ..Default::default()
            };
            if let Err(e) = forge
                .tasks()
                .enqueue_with(
                    forge_tools::notify::TASK_DIGEST,
                    serde_json::json!({}),
                    opts,
                )
                .await
            {
                tracing::warn!(error = %e, "could not queue the digest task");
            }
        }
    });
}

fn amqp_options(url: &str, config: &Config) -> AmqpOptions {
    let mut opts = AmqpOptions::new(url);
    opts.prefix.clone_from(&config.amqp_prefix);
    opts
}

/// `forge worker`: runs tasks from the broker until SIGINT/SIGTERM, then lets in-flight tasks
/// finish (or hands them back to the broker) before exiting.
pub async fn worker(config: Config) -> Result<(), StartError> {
    let Some(url) = config.amqp_url.clone() else {
        return Err(StartError::Other(
            "no broker configured (FORGE_AMQP_URL is unset): tasks run inside `forge serve`".into(),
        ));
    };
    let opts = amqp_options(&url, &config);
    let concurrency = config.task_concurrency.max(1);
    let sweep_after = Duration::from_secs(config.task_sweep_secs.max(1));
    let mut services = Services::open(config, Role::Worker).await?;
    let registry = services.registry.take().unwrap_or_default();
    let worker = WorkerOptions {
        concurrency,
        // Enough messages on hand to keep every handler busy between acks.
        prefetch: u16::try_from((concurrency * 64).clamp(64, 1000)).unwrap_or(1000),
        grace: Duration::from_secs(30),
        // The worker holding the search index writer runs the indexing tasks; the others
        // try to take it over, in case its holder died.
        exclusive: services.forge.search().is_writer(),
        takeover: Some({
            let search = services.forge.search().clone();
            forge_tasks::Takeover(Arc::new(move || {
                search.try_take_writer().unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not try the search index writer");
                    false
                })
            }))
        }),
        sweep_after,
    };
    tracing::info!(prefix = %opts.prefix, concurrency, "forge worker starting");
    let result = forge_tasks::run_worker(
        services.forge.db(),
        registry,
        opts,
        worker,
        shutdown_signal(),
    )
    .await;
    services.close().await;
    Ok(result?)
}

/// `forge reindex`: the whole index rebuilt aside and swapped in, or one project re-indexed by
/// the task runner. Shows a progress bar on a terminal; returns a one-line summary.
pub async fn reindex(config: Config, project: Option<&str>) -> Result<String, StartError> {
    use forge_tools::search::indexer;
    use indicatif::{ProgressBar, ProgressStyle};
    let services = Services::open(config, Role::Command).await?;
    let forge = services.forge.clone();
    let result = match project {
        None => {
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} projects ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            let started = std::time::Instant::now();
            let docs = indexer::rebuild(&forge, |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await;
            bar.finish_and_clear();
            docs.map(|n| {
                format!(
                    "search index rebuilt: {n} documents in {:.1} s",
                    started.elapsed().as_secs_f64()
                )
            })
            .map_err(StartError::from)
        }
        Some(name) => reindex_project(&forge, name).await,
    };
    services.close().await;
    result
}

async fn reindex_project(forge: &Forge, name: &str) -> Result<String, StartError> {
    use forge_tools::projects::{self, Neighborhood};
    let (nbhd, short) = match name.split_once('/') {
        Some(("u", user)) => (Neighborhood::Users, user),
        Some(("p", p)) => (Neighborhood::Projects, p),
        _ => (Neighborhood::Projects, name),
    };
    let project = projects::get(forge.db(), nbhd, short)
        .await?
        .ok_or_else(|| StartError::Other(format!("no project named {name:?}")))?;
    let task = forge_tools::search::indexer::queue_project(forge, project.id).await?;
    let spinner = indicatif::ProgressBar::new_spinner()
        .with_message(format!("re-indexing {name} (waiting for the task runner)"));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let tasks = forge.tasks();
    let rec = tasks.wait(task, Duration::from_secs(300)).await?;
    spinner.finish_and_clear();
    match rec {
        Some(r) if r.state == forge_tasks::TaskState::Complete => {
            Ok(format!("{name}: re-indexed"))
        }
        Some(r) if r.state == forge_tasks::TaskState::Failed => Err(StartError::Other(format!(
            "re-indexing {name} failed: {}",
            r.last_error.unwrap_or_default()
        ))),
        _ => Err(StartError::Other(
            "no task runner picked the re-index up within 5 minutes: is `forge serve` (or `forge worker`) running?".into(),
        )),
    }
}

/// Hides a password in a connection string for messages.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &uri[..s], &uri[at + 1..]),
        _ => uri.to_owned(),
    }
}

/// `forge serve`: applies pending migrations, then serves HTTP until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let bind = config.bind;
    let services = Services::open(config, Role::Web).await?;
    let applied = migrations::apply_pending(services.forge.db()).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied at start");
    }
    // This process is the `forge` binary: git can run its pack cache hook.
    let pack_hook = std::env::current_exe()
        .ok()
        .map(|exe| forge_tools::tools::repo::pack_cache::hook_config(&exe));
    let health = Arc::new(crate::store_health::Health::default());
    let app = crate::app::build_served(services.forge.clone(), pack_hook, Arc::clone(&health))
        .map_err(|e| StartError::Other(e.to_string()))?;
    let drain = Duration::from_secs(services.forge.config().shutdown_drain_secs);
    crate::listen::raise_fd_limit();
    let listener = crate::listen::bind(bind).map_err(|e| StartError::Bind(bind, e))?;
    tracing::info!(%bind, base_url = %services.forge.config().base_url(), "forge listening");
    let limits = crate::listen::ConnLimits::from_config(services.forge.config());
    let stopping = async move {
        shutdown_signal().await;
        if !drain.is_zero() {
            // A proxy that sends a request on a kept-alive connection as the node closes it
            // gets no answer, and cannot tell whether a POST was done: first let its health
            // checks take the node out, serving whatever still comes meanwhile.
            health.drain();
            tracing::info!(
                secs = drain.as_secs(),
                "draining: /healthz fails, serving on"
            );
            // A second signal stops it at once.
            tokio::select! {
                () = tokio::time::sleep(drain) => {},
                () = shutdown_signal() => {},
            }
        }
    };
    crate::listen::serve(listener, app, limits, stopping).await;
    services.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_credentials() {
        assert_eq!(
            super::redact("mongodb://u:pw@h:1/db"),
            "mongodb://***@h:1/db"
        );
        assert_eq!(super::redact("mongodb://h:1/"), "mongodb://h:1/");
    }
}
