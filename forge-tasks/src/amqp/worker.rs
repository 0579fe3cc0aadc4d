//! The consuming side ([`run_worker`], behind `forge worker`): runs each delivery and settles
//! it (ack, delay queue for a retry, dead letter), reconnecting when the broker goes away.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bson::doc;
use futures::{StreamExt, TryStreamExt};
use lapin::Channel;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use super::broker::{AmqpOptions, Message, declare_retry, open, publish_confirmed, ready_count};
use crate::error::{Error, TaskError};
use crate::ledger::{Ledger, Mark};
use crate::record::{self, TaskRecord, TaskState};
use crate::registry::Registry;
use crate::runner::backoff;

/// A task still running after this long is marked `running` in its record.
const RUNNING_MARK_AFTER: Duration = Duration::from_millis(200);
/// How often a worker that is not exclusive tries to take the exclusive resource.
const TAKEOVER_EVERY: Duration = Duration::from_secs(5);
/// How often, at most, a worker looks for task records that never reached the broker (more
/// often when `sweep_after` is shorter).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Takes the exclusive resource when nobody holds it (the search index writer: its holder
/// may have died); `true` when this process holds it now.
#[derive(Clone)]
pub struct Takeover(pub Arc<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for Takeover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Takeover")
    }
}

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
    /// Tried every few seconds while not exclusive: on success the worker reconnects
    /// consuming the exclusive queue too, so exclusive tasks do not wait for a dead holder.
    pub takeover: Option<Takeover>,
    /// A task record still `queued`, never attempted, this long after it was stored, while
    /// the broker holds no ready message, is published again (once): the process that
    /// stored it died before publishing it. Its delivery claims the record first, so a task
    /// that did run meanwhile is not run again, so a short bound only costs a lookup: it is
    /// the longest a task whose publish was lost (a broker restart) waits.
    pub sweep_after: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            prefetch: 256,
            grace: Duration::from_secs(30),
            exclusive: false,
            takeover: None,
            sweep_after: Duration::from_secs(120),
        }
    }
}

/// Shared by every delivery a worker handles.
struct Ctx {
    opts: AmqpOptions,
    exclusive: AtomicBool,
    registry: Registry,
    coll: Collection<TaskRecord>,
    ledger: Ledger,
    retry_queues: Mutex<HashSet<String>>,
}

enum SessionEnd {
    Shutdown,
    /// This worker took the exclusive resource: consume again, the exclusive queue too.
    Exclusive,
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
        exclusive: AtomicBool::new(opts.exclusive),
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
            Ok(SessionEnd::Exclusive) => {}
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
    let exclusive = ctx.exclusive.load(Ordering::Relaxed);
    if exclusive {
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
    let mut takeover = tokio::time::interval(TAKEOVER_EVERY);
    let mut sweep =
        tokio::time::interval(SWEEP_EVERY.min((opts.sweep_after / 2).max(Duration::from_secs(1))));
    let mut sweeping: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let end = tokio::select! {
            () = shutdown.as_mut() => SessionEnd::Shutdown,
            _ = takeover.tick(), if !exclusive && opts.takeover.is_some() => {
                let took = opts.takeover.as_ref().is_some_and(|t| (t.0)());
                if !took {
                    continue;
                }
                tracing::info!("took over the exclusive resource; consuming its queue too");
                ctx.exclusive.store(true, Ordering::Relaxed);
                SessionEnd::Exclusive
            }
            _ = sweep.tick() => {
                if sweeping.as_ref().is_none_or(tokio::task::JoinHandle::is_finished) {
                    let (ctx, ch, after) = (ctx.clone(), ch.clone(), opts.sweep_after);
                    sweeping = Some(tokio::spawn(async move {
                        match sweep_stranded(&ctx, &ch, after).await {
                            Ok(0) => {}
                            Ok(n) => tracing::warn!(tasks = n, "published again task records that never reached the broker"),
                            Err(e) => tracing::warn!(error = %e, "sweep for stranded task records failed"),
                        }
                    }));
                }
                continue;
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
                continue;
            }
            Some(_) = inflight.join_next(), if !inflight.is_empty() => continue,
        };
        for i in 0..queues.len() {
            let _ = ch
                .basic_cancel(
                    format!("{tag}-{i}").as_str().into(),
                    BasicCancelOptions::default(),
                )
                .await;
        }
        tracing::info!(
            in_flight = inflight.len(),
            "worker stopping consuming; finishing in-flight tasks"
        );
        let drained = tokio::time::timeout(opts.grace, async {
            while inflight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = inflight.len(),
                "grace period over; unfinished tasks go back to the queue"
            );
        }
        let _ = conn.close(200, "worker shutdown".into()).await;
        return Ok(end);
    }
}

/// Publishes again, once, the task records a process stored but never published (it died
/// between the two): still `queued`, never attempted, older than `after`, looked for only
/// while the broker holds no ready message (a backlog may hold them). The copies are marked
/// swept, so their delivery claims the record before running.
async fn sweep_stranded(ctx: &Ctx, ch: &Channel, after: Duration) -> Result<usize, Error> {
    for q in [ctx.opts.main_queue(), ctx.opts.exclusive_queue()] {
        if ready_count(ch, &q).await.map_err(super::broker::broker)? > 0 {
            return Ok(0);
        }
    }
    let cutoff = bson::DateTime::from_millis(
        bson::DateTime::now().timestamp_millis()
            - i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2),
    );
    let stale: Vec<TaskRecord> = ctx
        .coll
        .find(doc! {
            "state": TaskState::Queued.as_str(),
            "attempts": 0,
            "created": {"$lt": cutoff},
            "swept": {"$exists": false},
        })
        .limit(1000)
        .await?
        .try_collect()
        .await?;
    let mut msgs = Vec::new();
    for rec in stale {
        // One sweeper per record, whichever worker gets there first.
        let marked = ctx
            .coll
            .update_one(
                doc! {"_id": rec.id.0, "state": TaskState::Queued.as_str(), "swept": {"$exists": false}},
                doc! {"$set": {"swept": bson::DateTime::now()}},
            )
            .await?;
        if marked.modified_count == 1 {
            msgs.push(Message {
                swept: true,
                ..Message::of(&rec)
            });
        }
    }
    publish_confirmed(ch, &ctx.opts.main_queue(), &msgs)
        .await
        .map_err(super::broker::broker)?;
    Ok(msgs.len())
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
    if !ctx.exclusive.load(Ordering::Relaxed) && ctx.registry.is_exclusive(&msg.name) {
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
    let attempt = if delivery.redelivered || msg.swept {
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
