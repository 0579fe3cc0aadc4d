//! Broadcast notifications between processes ([`Fanout`]): every process that started a fanout
//! of a given name receives every message any of them publishes under that name, itself
//! included. Meant for "something changed" kicks (live statistics, "new events, aggregate"),
//! not for work: nothing is persistent or confirmed, and while the broker is away messages are
//! dropped, not queued.
//!
//! Topology: a non-durable fanout exchange `<prefix>.fanout.<name>`; each process binds an
//! exclusive, auto-delete, server-named queue of its own to it, capped at [`QUEUE_CAP`]
//! messages (the oldest are dropped first), so a slow receiver costs the broker bounded memory.
//!
//! Deliveries are acknowledged as soon as they are read, before `on_message` runs (so a message
//! is never redelivered), in batches, with a prefetch of [`PREFETCH`]: that bounds what the
//! client buffers too. (A `no_ack` consumer would not do: RabbitMQ ignores the prefetch of
//! no-ack consumers and pushes the whole queue into the client's unbounded buffer.)

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::broker::{AmqpOptions, broker};
use crate::error::Error;

/// Messages the per-process queue keeps for a receiver that falls behind; beyond that the
/// oldest are dropped.
const QUEUE_CAP: i64 = 10_000;
/// Unacknowledged deliveries the broker may push to this process at once.
const PREFETCH: u16 = 256;
/// Deliveries acknowledged together (well under [`PREFETCH`], so the broker never waits on us).
const ACK_BATCH: u64 = 64;
/// Messages `publish` may hand the background task before it starts dropping them.
const OUTBOX: usize = 1024;
/// Longest wait for a connection and its topology.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(10);
/// How often a session checks that its connection is still up (besides noticing errors).
const HEALTH_CHECK: Duration = Duration::from_secs(1);

type OnMessage = Arc<dyn Fn(Vec<u8>) + Send + Sync>;

/// A broadcast channel between processes; see the module documentation.
pub struct Fanout {
    exchange: String,
    outbox: mpsc::Sender<Vec<u8>>,
}

impl Fanout {
    /// Declares the fanout exchange `<prefix>.fanout.<name>`, binds a queue of this process to
    /// it and consumes it: every message published by any process under this name (this one
    /// included) is handed to `on_message`. Fails when the broker cannot be reached now; after
    /// that it reconnects by itself, with backoff, whenever the broker goes away (messages sent
    /// meanwhile are lost).
    ///
    /// `on_message` runs on a tokio worker thread, one message after another: it should be
    /// quick (hand the message to a channel or spawn) rather than block.
    ///
    /// The background task stops, closing its connection, when the returned `Fanout` is
    /// dropped.
    pub async fn start(
        opts: AmqpOptions,
        name: &str,
        on_message: impl Fn(Vec<u8>) + Send + Sync + 'static,
    ) -> Result<Arc<Self>, Error> {
        let exchange = format!("{}.fanout.{name}", opts.prefix);
        let link = connect(&opts, &exchange).await.map_err(broker)?;
        let (outbox, rx) = mpsc::channel(OUTBOX);
        let driver = Driver {
            opts,
            exchange: exchange.clone(),
            on_message: Arc::new(on_message),
            rx,
        };
        tokio::spawn(driver.run(link));
        Ok(Arc::new(Self { exchange, outbox }))
    }

    /// The exchange's name, `<prefix>.fanout.<name>`.
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// Broadcasts `bytes` to every process of this fanout, without waiting: the message is
    /// handed to the background task, and dropped when the broker is away or too many are
    /// already waiting.
    pub fn publish(&self, bytes: Vec<u8>) {
        match self.outbox.try_send(bytes) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::debug!(exchange = %self.exchange, "fanout outbox full; message dropped");
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

/// One connection: a channel to publish on and the consumer of this process's queue.
struct Link {
    conn: Connection,
    publish: Channel,
    consumer: Consumer,
}

async fn connect(opts: &AmqpOptions, exchange: &str) -> Result<Link, lapin::Error> {
    match tokio::time::timeout(CONNECT_TIMEOUT, try_connect(opts, exchange)).await {
        Ok(r) => r,
        Err(_) => Err(lapin::Error::from(
            lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed),
        )),
    }
}

async fn try_connect(opts: &AmqpOptions, exchange: &str) -> Result<Link, lapin::Error> {
    let props = ConnectionProperties::default().with_connection_name(
        format!("forge-fanout {exchange} pid {}", std::process::id())
            .into_bytes()
            .into(),
    );
    let conn = Connection::connect(&opts.url, props).await?;
    let setup = async {
        let ch = conn.create_channel().await?;
        ch.exchange_declare(
            exchange.into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: false,
                auto_delete: false,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(QUEUE_CAP));
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString("drop-head".as_bytes().to_vec().into()),
        );
        let queue = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    durable: false,
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                args,
            )
            .await?;
        ch.queue_bind(
            queue.name().clone(),
            exchange.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        ch.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
        let consumer = ch
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let publish = conn.create_channel().await?;
        Ok((publish, consumer))
    };
    match setup.await {
        Ok((publish, consumer)) => Ok(Link {
            conn,
            publish,
            consumer,
        }),
        Err(e) => {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                conn.close(200, "fanout setup failed".into()),
            )
            .await;
            Err(e)
        }
    }
}

/// The background task: runs sessions, reconnecting between them.
struct Driver {
    opts: AmqpOptions,
    exchange: String,
    on_message: OnMessage,
    rx: mpsc::Receiver<Vec<u8>>,
}

enum SessionEnd {
    /// The `Fanout` was dropped.
    Stopped,
    Lost(String),
}

impl Driver {
    async fn run(mut self, first: Link) {
        let mut link = Some(first);
        let mut wait = FIRST_RETRY;
        // In an outage (connection lost, not back yet): warn once, then stay quiet till it ends.
        let mut outage = false;
        loop {
            let current = match link.take() {
                Some(l) => l,
                None => match connect(&self.opts, &self.exchange).await {
                    Ok(l) => {
                        tracing::info!(exchange = %self.exchange, "fanout reconnected");
                        outage = false;
                        wait = FIRST_RETRY;
                        // Whatever was published while away is dropped, as promised.
                        while self.rx.try_recv().is_ok() {}
                        l
                    }
                    Err(e) => {
                        tracing::debug!(exchange = %self.exchange, error = %e, ?wait, "fanout: broker still unavailable");
                        if !self.pause(&mut wait).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            match self.session(current).await {
                SessionEnd::Stopped => return,
                SessionEnd::Lost(e) => {
                    if !outage {
                        tracing::warn!(exchange = %self.exchange, error = %e, "fanout lost the broker; reconnecting (messages are dropped meanwhile)");
                        outage = true;
                    }
                    if !self.pause(&mut wait).await {
                        return;
                    }
                }
            }
        }
    }

    /// Waits out the backoff, dropping what is published meanwhile; false when the `Fanout`
    /// was dropped.
    async fn pause(&mut self, wait: &mut Duration) -> bool {
        let sleep = tokio::time::sleep(*wait);
        tokio::pin!(sleep);
        *wait = (*wait * 2).min(MAX_RETRY);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                msg = self.rx.recv() => if msg.is_none() { return false },
            }
        }
    }

    async fn session(&mut self, link: Link) -> SessionEnd {
        let Link {
            conn,
            publish,
            consumer,
        } = link;
        // Deliveries are handled on a task of their own, so a slow `on_message` does not hold
        // up publishing.
        let mut consuming = tokio::spawn(consume(consumer, self.on_message.clone()));
        let mut health = tokio::time::interval(HEALTH_CHECK);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = loop {
            tokio::select! {
                done = &mut consuming => {
                    break SessionEnd::Lost(match done {
                        Ok(e) => e,
                        Err(join) => format!("fanout consumer failed: {join}"),
                    });
                }
                msg = self.rx.recv() => {
                    let Some(bytes) = msg else { break SessionEnd::Stopped };
                    let sent = publish
                        .basic_publish(
                            self.exchange.as_str().into(),
                            "".into(),
                            BasicPublishOptions::default(),
                            &bytes,
                            BasicProperties::default().with_delivery_mode(1), // transient
                        )
                        .await;
                    if let Err(e) = sent {
                        break SessionEnd::Lost(e.to_string());
                    }
                }
                _ = health.tick() => {
                    if !conn.status().connected() {
                        break SessionEnd::Lost("connection closed".into());
                    }
                }
            }
        };
        consuming.abort();
        if conn.status().connected() {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                conn.close(200, "fanout stopped".into()),
            )
            .await;
        }
        end
    }
}

/// Hands every delivery to `on_message` until the consumer fails; returns why it stopped.
async fn consume(mut consumer: Consumer, on_message: OnMessage) -> String {
    let mut unacked = 0u64;
    while let Some(delivery) = consumer.next().await {
        let delivery = match delivery {
            Ok(d) => d,
            Err(e) => return e.to_string(),
        };
        unacked += 1;
        if unacked >= ACK_BATCH {
            unacked = 0;
            if let Err(e) = delivery.acker.ack(BasicAckOptions { multiple: true }).await {
                return e.to_string();
            }
        }
        let handler = on_message.clone();
        if std::panic::catch_unwind(AssertUnwindSafe(move || handler(delivery.data))).is_err() {
            tracing::error!("fanout message handler panicked; message skipped");
        }
    }
    "fanout consumer cancelled".into()
}
