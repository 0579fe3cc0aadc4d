//! The publishing side ([`Amqp`]): web nodes enqueue through it.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio::sync::Mutex;

use super::broker::{AmqpOptions, Message, broker, open, publish_confirmed};
use crate::error::Error;
use crate::record::TaskRecord;
use crate::runner::Transport;

/// The publishing side: web nodes enqueue through this.
pub struct Amqp {
    opts: AmqpOptions,
    link: Mutex<Option<(Connection, Channel)>>,
}

impl Amqp {
    /// Connects and declares the queues; fails when the broker cannot be reached now, so a
    /// misconfigured node says so at start rather than at the first enqueue.
    pub async fn connect(opts: AmqpOptions) -> Result<Arc<Self>, Error> {
        let link = open(&opts).await.map_err(broker)?;
        Ok(Arc::new(Self {
            opts,
            link: Mutex::new(Some(link)),
        }))
    }

    pub fn options(&self) -> &AmqpOptions {
        &self.opts
    }

    /// The current channel, reconnecting when the last one is gone.
    async fn channel(&self) -> Result<Channel, lapin::Error> {
        let mut link = self.link.lock().await;
        if let Some((conn, ch)) = link.as_ref()
            && conn.status().connected()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        *link = None;
        let fresh = open(&self.opts).await?;
        let ch = fresh.1.clone();
        *link = Some(fresh);
        Ok(ch)
    }

    async fn drop_link(&self) {
        *self.link.lock().await = None;
    }

    /// Publishes with confirms, reconnecting with backoff while the broker is away (up to
    /// `publish_patience`). A message may be published twice if a confirm is lost with the
    /// connection; the worker's idempotence covers that.
    async fn publish_to(&self, queue: &str, msgs: &[Message]) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + self.opts.publish_patience;
        let mut wait = Duration::from_millis(100);
        loop {
            let attempt = async {
                let ch = self.channel().await?;
                publish_confirmed(&ch, queue, msgs).await
            };
            match attempt.await {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() + wait < deadline => {
                    tracing::warn!(error = %e, ?wait, "broker unavailable; publishing again shortly");
                    self.drop_link().await;
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    self.drop_link().await;
                    return Err(broker(e));
                }
            }
        }
    }

    /// Deletes this configuration's queues (tests clean up after themselves with this).
    pub async fn delete_queues(&self, max_attempts: u32) -> Result<(), Error> {
        let ch = self.channel().await.map_err(broker)?;
        for name in self.opts.queue_names(max_attempts) {
            ch.queue_delete(name.as_str().into(), Default::default())
                .await
                .map_err(broker)?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Transport for Amqp {
    async fn publish(&self, tasks: &[TaskRecord]) -> Result<(), Error> {
        let msgs: Vec<Message> = tasks.iter().map(Message::of).collect();
        self.publish_to(&self.opts.main_queue(), &msgs).await
    }

    async fn queue_depth(&self) -> Result<Vec<(String, u64)>, Error> {
        let ch = self.channel().await.map_err(broker)?;
        let mut out = Vec::new();
        for name in [
            self.opts.main_queue(),
            self.opts.exclusive_queue(),
            self.opts.dead_queue(),
        ] {
            // A passive declare reads the depth without creating or changing anything.
            let q = ch
                .queue_declare(
                    name.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(broker)?;
            out.push((name, u64::from(q.message_count())));
        }
        Ok(out)
    }
}
