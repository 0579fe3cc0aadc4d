//! The broker side every process shares: queue names and topology, the message format, and
//! publishing with confirms.

use std::collections::HashSet;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::Error;
use crate::record::{TaskId, TaskRecord};
use crate::runner::backoff;

/// Where the broker is and how queues are named.
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    pub url: String,
    /// Queue name prefix; lets several forges (or tests) share one broker.
    pub prefix: String,
    /// First retry delay; each further attempt waits twice as long.
    pub base_backoff: Duration,
    /// How long a publish keeps retrying while the broker is unreachable.
    pub publish_patience: Duration,
}

impl AmqpOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "forge".into(),
            base_backoff: Duration::from_secs(2),
            publish_patience: Duration::from_secs(30),
        }
    }

    pub(super) fn main_queue(&self) -> String {
        format!("{}.tasks", self.prefix)
    }

    pub(super) fn exclusive_queue(&self) -> String {
        format!("{}.tasks.exclusive", self.prefix)
    }

    pub(super) fn dead_queue(&self) -> String {
        format!("{}.tasks.dead", self.prefix)
    }

    pub(super) fn retry_queue(&self, delay: Duration) -> String {
        format!("{}.tasks.retry.{}ms", self.prefix, delay.as_millis())
    }

    /// Every queue name this configuration may have declared (tests delete them).
    pub fn queue_names(&self, max_attempts: u32) -> Vec<String> {
        let mut names = vec![self.main_queue(), self.exclusive_queue(), self.dead_queue()];
        for attempt in 1..max_attempts.max(1) {
            names.push(self.retry_queue(backoff(self.base_backoff, attempt)));
        }
        names
    }
}

/// What travels in a message: enough to run the task without reading its record.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Message {
    pub(super) id: TaskId,
    pub(super) name: String,
    pub(super) args: String,
    /// Attempts made before this delivery.
    pub(super) attempts: u32,
    pub(super) max_attempts: u32,
    pub(super) priority: u8,
    /// Published again by a sweep (its first publish may never have happened): run only
    /// after claiming the record, like a redelivery.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) swept: bool,
}

impl Message {
    pub(super) fn of(rec: &TaskRecord) -> Self {
        Self {
            id: rec.id,
            name: rec.name.clone(),
            args: rec.args.clone(),
            attempts: rec.attempts,
            max_attempts: rec.max_attempts,
            priority: rec.priority,
            swept: false,
        }
    }

    fn properties(&self) -> BasicProperties {
        BasicProperties::default()
            .with_delivery_mode(2) // persistent
            .with_priority(broker_priority(self.priority))
            .with_content_type("application/json".into())
            .with_message_id(self.id.to_string().into())
    }
}

/// Task priorities 0–9 map onto three broker levels (bulk, normal, interactive): every level
/// of a RabbitMQ priority queue is a queue of its own inside, and ten cost publish throughput.
fn broker_priority(p: u8) -> u8 {
    match p {
        0..=3 => 0,
        4..=6 => 1,
        _ => 2,
    }
}

pub(super) fn broker(e: lapin::Error) -> Error {
    Error::Broker(e.to_string())
}

fn str_value(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.as_bytes().to_vec().into())
}

async fn declare(ch: &Channel, name: &str, args: FieldTable) -> Result<u32, lapin::Error> {
    let q = ch
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await?;
    Ok(q.message_count())
}

/// Messages ready (not handed to a consumer) in an existing queue.
pub(super) async fn ready_count(ch: &Channel, name: &str) -> Result<u32, lapin::Error> {
    let q = ch
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(q.message_count())
}

/// Opens a connection and a confirming channel and declares the fixed queues.
pub(super) async fn open(opts: &AmqpOptions) -> Result<(Connection, Channel), lapin::Error> {
    let conn = Connection::connect(&opts.url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let mut main_args = FieldTable::default();
    main_args.insert("x-max-priority".into(), AMQPValue::LongInt(2));
    main_args.insert("x-dead-letter-exchange".into(), str_value(""));
    main_args.insert(
        "x-dead-letter-routing-key".into(),
        str_value(&opts.dead_queue()),
    );
    declare(&ch, &opts.main_queue(), main_args.clone()).await?;
    declare(&ch, &opts.exclusive_queue(), main_args).await?;
    declare(&ch, &opts.dead_queue(), FieldTable::default()).await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok((conn, ch))
}

/// Declares (once per channel owner) the delay queue for one backoff step.
pub(super) async fn declare_retry(
    ch: &Channel,
    opts: &AmqpOptions,
    delay: Duration,
    known: &Mutex<HashSet<String>>,
) -> Result<String, lapin::Error> {
    let name = opts.retry_queue(delay);
    let mut known = known.lock().await;
    if !known.contains(&name) {
        let mut args = FieldTable::default();
        let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        args.insert("x-dead-letter-exchange".into(), str_value(""));
        args.insert(
            "x-dead-letter-routing-key".into(),
            str_value(&opts.main_queue()),
        );
        declare(ch, &name, args).await?;
        known.insert(name.clone());
    }
    Ok(name)
}

/// Publishes messages and waits for the broker's confirms, at most this many in flight.
const IN_FLIGHT: usize = 1000;

pub(super) async fn publish_confirmed(
    ch: &Channel,
    queue: &str,
    msgs: &[Message],
) -> Result<(), lapin::Error> {
    for chunk in msgs.chunks(IN_FLIGHT) {
        let mut confirms = Vec::with_capacity(chunk.len());
        for m in chunk {
            let payload = serde_json::to_vec(m).unwrap_or_default();
            let confirm = ch
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    &payload,
                    m.properties(),
                )
                .await?;
            confirms.push(confirm);
        }
        for c in confirms {
            let confirmation = c.await?;
            if confirmation.is_nack() {
                return Err(lapin::Error::from(lapin::ErrorKind::InvalidChannelState(
                    lapin::ChannelState::Error,
                    "broker refused a message (nack)",
                )));
            }
        }
    }
    Ok(())
}
