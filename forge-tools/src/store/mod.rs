//! The document store: connecting, health, indexes, migrations and the embedded server.
//! Each collection's documents and indexes live in that collection's own module.

pub mod embedded;
pub mod migrations;

use std::time::Duration;

use bson::doc;
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};

use crate::error::Result;

/// Makes the server drop each document of `collection` once the time in its `field` has
/// passed (a TTL index).
pub async fn ensure_expiry(db: &Database, collection: &str, field: &str) -> Result<()> {
    let index = mongodb::IndexModel::builder()
        .keys(doc! {field: 1})
        .options(
            mongodb::options::IndexOptions::builder()
                .expire_after(Duration::ZERO)
                .build(),
        )
        .build();
    db.collection::<bson::Document>(collection)
        .create_index(index)
        .await?;
    Ok(())
}

async fn options(uri: &str) -> Result<ClientOptions> {
    let mut opts = ClientOptions::parse(uri).await?;
    opts.app_name = Some("forge".into());
    opts.server_selection_timeout = Some(Duration::from_secs(5));
    Ok(opts)
}

/// A client for the event log's writes: the client of [`connect`] reports every command to
/// the read model's memos, and the driver builds a document tree of each command to report
/// it, 10,000 events at a time for the log's inserts; the memos never keep the log, so
/// its writes need not be reported.
pub async fn connect_log(uri: &str) -> Result<Client> {
    Ok(Client::with_options(options(uri).await?)?)
}

/// Connects to `uri` and waits (up to `wait`) until the server answers a ping.
pub async fn connect(uri: &str, db_name: &str, wait: Duration) -> Result<Database> {
    let mut opts = options(uri).await?;
    // This process's writes empty the read model's memos they make stale.
    opts.command_event_handler = Some(crate::readmodel::memo::handler());
    let client = Client::with_options(opts)?;
    let db = client.database(db_name);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match ping(&db).await {
            Ok(()) => return Ok(db),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

pub async fn ping(db: &Database) -> Result<()> {
    db.run_command(doc! {"ping": 1}).await?;
    Ok(())
}
