//! Tasks through RabbitMQ: the [`Amqp`] transport (publishing side, used by web nodes) and
//! [`run_worker`] (the consuming side behind `forge worker`).
//!
//! Topology, all on the default exchange, names under a prefix (`forge` unless configured):
//! - `<prefix>.tasks`: durable, three priority levels, dead-letters rejected messages to `.dead`;
//! - `<prefix>.tasks.retry.<ms>`: one durable queue per backoff step; messages wait out the
//!   queue's TTL there and are dead-lettered back to `.tasks` (a queue-wide TTL means no
//!   message waits behind a longer one);
//! - `<prefix>.tasks.dead`: tasks that used all their attempts, kept for operators.
//!
//! Messages are persistent and published with confirms; the worker acks only after the
//! handler finished and the task record says so, so a crash at any point means redelivery,
//! never loss. Handlers must therefore be idempotent.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bson::doc;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use crate::ledger::{Ledger, Mark};
use crate::record::{self, TaskId, TaskRecord, TaskState};
use crate::runner::{Transport, backoff};
use crate::{Error, Registry, TaskError};

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

    fn main_queue(&self) -> String {
        format!("{}.tasks", self.prefix)
    }

    fn exclusive_queue(&self) -> String {
        format!("{}.tasks.exclusive", self.prefix)
    }

    fn dead_queue(&self) -> String {
        format!("{}.tasks.dead", self.prefix)
    }

    fn retry_queue(&self, delay: Duration) -> String {
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
struct Message {
    id: TaskId,
    name: String,
    args: String,
    /// Attempts made before this delivery.
    attempts: u32,
    max_attempts: u32,
    priority: u8,
}

impl Message {
    fn of(rec: &TaskRecord) -> Self {
        Self {
            id: rec.id,
            name: rec.name.clone(),
            args: rec.args.clone(),
            attempts: rec.attempts,
            max_attempts: rec.max_attempts,
            priority: rec.priority,
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

fn broker(e: lapin::Error) -> Error {
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

/// Opens a connection and a confirming channel and declares the fixed queues.
async fn open(opts: &AmqpOptions) -> Result<(Connection, Channel), lapin::Error> {
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
async fn declare_retry(
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

async fn publish_confirmed(
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

/// A task still running after this long is marked `running` in its record.
const RUNNING_MARK_AFTER: Duration = Duration::from_millis(200);

/// How a worker consumes.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Handlers running at once.
    pub concurrency: usize,
    /// Unacknowledged messages the broker may hand this worker.
    pub prefetch: u16,
    /// On shutdown, how long in-flight tasks may take before they are left to redelivery.
    pub grace: Duration,
    /// This worker runs the registry's exclusive tasks (it holds their resource) and consumes
    /// the exclusive queue too; other workers forward such tasks there.
    pub exclusive: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            prefetch: 256,
            grace: Duration::from_secs(30),
            exclusive: false,
        }
    }
}

/// Shared by every delivery a worker handles.
struct Ctx {
    opts: AmqpOptions,
    exclusive: bool,
    registry: Registry,
    coll: Collection<TaskRecord>,
    ledger: Ledger,
    retry_queues: Mutex<HashSet<String>>,
}

enum SessionEnd {
    Shutdown,
}

/// Runs tasks from the broker until `shutdown` resolves, reconnecting (with backoff) whenever
/// the broker goes away. On shutdown it stops consuming, lets in-flight tasks finish for up to
/// `grace`, and closes the connection, which returns anything unacknowledged to the queue.
pub async fn run_worker(
    db: &Database,
    registry: Registry,
    amqp: AmqpOptions,
    opts: WorkerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let coll = record::collection(db);
    let ctx = Arc::new(Ctx {
        opts: amqp,
        exclusive: opts.exclusive,
        registry,
        ledger: Ledger::start(coll.clone()),
        coll,
        retry_queues: Mutex::new(HashSet::new()),
    });
    let mut shutdown = std::pin::pin!(shutdown);
    let mut wait = Duration::from_millis(200);
    loop {
        match session(&ctx, &opts, &mut shutdown, &mut wait).await {
            Ok(SessionEnd::Shutdown) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, ?wait, "broker connection lost; reconnecting");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = &mut shutdown => return Ok(()),
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn session(
    ctx: &Arc<Ctx>,
    opts: &WorkerOptions,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    wait: &mut Duration,
) -> Result<SessionEnd, lapin::Error> {
    let (conn, ch) = open(&ctx.opts).await?;
    ctx.retry_queues.lock().await.clear();
    ch.basic_qos(opts.prefetch.max(1), BasicQosOptions::default())
        .await?;
    let tag = format!("forge-worker-{}", std::process::id());
    let mut queues = vec![ctx.opts.main_queue()];
    if opts.exclusive {
        queues.push(ctx.opts.exclusive_queue());
    }
    let mut consumers = Vec::new();
    for (i, q) in queues.iter().enumerate() {
        consumers.push(
            ch.basic_consume(
                q.as_str().into(),
                format!("{tag}-{i}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?,
        );
    }
    let mut consumer = futures::stream::select_all(consumers);
    tracing::info!(
        ?queues,
        concurrency = opts.concurrency,
        prefetch = opts.prefetch,
        "worker consuming"
    );
    *wait = Duration::from_millis(200);
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut inflight = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.as_mut() => {
                for i in 0..queues.len() {
                    let _ = ch.basic_cancel(format!("{tag}-{i}").as_str().into(), BasicCancelOptions::default()).await;
                }
                tracing::info!(in_flight = inflight.len(), "worker stopping; finishing in-flight tasks");
                let drained = tokio::time::timeout(opts.grace, async {
                    while inflight.join_next().await.is_some() {}
                }).await;
                if drained.is_err() {
                    tracing::warn!(left = inflight.len(), "grace period over; unfinished tasks go back to the queue");
                }
                let _ = conn.close(200, "worker shutdown".into()).await;
                return Ok(SessionEnd::Shutdown);
            }
            delivery = consumer.next() => {
                let delivery = match delivery {
                    Some(d) => d?,
                    None => {
                        inflight.detach_all();
                        return Err(lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(
                            lapin::ConnectionState::Closed,
                        )));
                    }
                };
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return Ok(SessionEnd::Shutdown);
                };
                let ctx = ctx.clone();
                let ch = ch.clone();
                inflight.spawn(async move {
                    handle(&ctx, &ch, delivery, permit).await;
                });
            }
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
        }
    }
}

/// Runs one delivery and settles it: ack after success (record written first), a delay queue
/// for a retry, the dead-letter queue when attempts are used up.
async fn handle(
    ctx: &Ctx,
    ch: &Channel,
    delivery: lapin::message::Delivery,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let msg: Message = match serde_json::from_slice(&delivery.data) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "unreadable task message; dead-lettering it");
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            return;
        }
    };
    let id = msg.id;
    if !ctx.exclusive && ctx.registry.is_exclusive(&msg.name) {
        // Not ours to run: hand it to the worker that holds the resource, unchanged.
        drop(permit);
        let forwarded = async {
            publish_confirmed(ch, &ctx.opts.exclusive_queue(), std::slice::from_ref(&msg)).await?;
            delivery.ack(BasicAckOptions::default()).await.map(drop)
        };
        if let Err(e) = forwarded.await {
            tracing::warn!(task = %id, error = %e, "could not forward an exclusive task; it will be redelivered");
        }
        return;
    }
    let attempt = if delivery.redelivered {
        // Delivered before without an ack (a worker died or the broker restarted): the record
        // knows whether it finished meanwhile, and counts the attempt a crash may have eaten.
        let claimed = ctx
            .coll
            .find_one_and_update(
                doc! {"_id": id.0, "state": {"$in": [TaskState::Queued.as_str(), TaskState::Running.as_str()]}},
                doc! {"$inc": {"attempts": 1}, "$set": {"state": TaskState::Running.as_str(), "started": bson::DateTime::now()}},
            )
            .return_document(ReturnDocument::After)
            .await;
        match claimed {
            Ok(Some(rec)) => rec.attempts,
            Ok(None) => {
                let _ = delivery.ack(BasicAckOptions::default()).await;
                return;
            }
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "store unavailable; returning the task");
                let _ = delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await;
                return;
            }
        }
    } else {
        msg.attempts + 1
    };

    let mut started = bson::DateTime::now();
    let outcome = if attempt > msg.max_attempts {
        Err(TaskError::Fatal(format!(
            "gave up after {} deliveries (the worker stopped while running it)",
            attempt - 1
        )))
    } else {
        match ctx.registry.get(&msg.name) {
            None => Err(TaskError::Fatal(format!(
                "no handler registered for task {:?}",
                msg.name
            ))),
            Some(handler) => {
                let args = serde_json::from_str(&msg.args).unwrap_or(serde_json::Value::Null);
                started = bson::DateTime::now();
                let mut run = tokio::spawn(async move { handler.run(args).await });
                // Most tasks finish within milliseconds; only a slower one gets a `running`
                // mark, which spares the store a write per task (redelivery does not rely on it).
                let joined = match tokio::time::timeout(RUNNING_MARK_AFTER, &mut run).await {
                    Ok(j) => j,
                    Err(_) => {
                        if !delivery.redelivered {
                            ctx.ledger.note(id, attempt, Mark::Running);
                        }
                        run.await
                    }
                };
                match joined {
                    Ok(r) => r,
                    Err(join) => Err(TaskError::Retry(format!("handler panicked: {join}"))),
                }
            }
        }
    };
    drop(permit);

    let settled = match outcome {
        Ok(()) => match ctx
            .ledger
            .write(id, attempt, Mark::Complete { started })
            .await
        {
            Ok(()) => delivery.ack(BasicAckOptions::default()).await.map(drop),
            Err(e) => requeue(&delivery, &e).await,
        },
        Err(TaskError::Retry(err)) if attempt < msg.max_attempts => {
            tracing::warn!(task = %id, name = %msg.name, attempt, error = %err, "task failed; will retry");
            match ctx.ledger.write(id, attempt, Mark::Retry(err)).await {
                Ok(()) => retry_later(ctx, ch, &delivery, msg, attempt).await,
                Err(e) => requeue(&delivery, &e).await,
            }
        }
        Err(e) => {
            tracing::error!(task = %id, name = %msg.name, attempt, error = %e, "task failed for good");
            match ctx
                .ledger
                .write(id, attempt, Mark::Failed(e.to_string()))
                .await
            {
                // Rejected without requeue, the main queue dead-letters it to `.dead`.
                Ok(()) => delivery
                    .reject(BasicRejectOptions { requeue: false })
                    .await
                    .map(drop),
                Err(e) => requeue(&delivery, &e).await,
            }
        }
    };
    if let Err(e) = settled {
        // The channel is gone; the broker redelivers the message to the next consumer.
        tracing::warn!(task = %id, error = %e, "could not settle the message; it will be redelivered");
    }
}

async fn requeue(delivery: &lapin::message::Delivery, why: &str) -> Result<(), lapin::Error> {
    tracing::warn!(error = %why, "task record not written; returning the message");
    delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        })
        .await
        .map(drop)
}

/// Sends the task to the delay queue for its backoff step, then acks the original.
async fn retry_later(
    ctx: &Ctx,
    ch: &Channel,
    delivery: &lapin::message::Delivery,
    mut msg: Message,
    attempt: u32,
) -> Result<(), lapin::Error> {
    msg.attempts = attempt;
    let delay = backoff(ctx.opts.base_backoff, attempt);
    let queue = declare_retry(ch, &ctx.opts, delay, &ctx.retry_queues).await?;
    publish_confirmed(ch, &queue, std::slice::from_ref(&msg)).await?;
    delivery.ack(BasicAckOptions::default()).await.map(drop)
}
