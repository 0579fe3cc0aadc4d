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
//!
//! [`Fanout`] is apart from tasks: a broadcast of transient notifications to every process
//! (exchange `<prefix>.fanout.<name>`), lossy while the broker is away.

mod broker;
mod fanout;
mod publisher;
mod worker;

pub use broker::AmqpOptions;
pub use fanout::Fanout;
pub use publisher::Amqp;
pub use worker::{Takeover, WorkerOptions, run_worker};
