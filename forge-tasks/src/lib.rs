//! Background task runner.
//!
//! Domain code enqueues a *named* task with JSON arguments through [`Tasks`]; handlers are registered
//! by name in a [`Registry`]. Every task has a record in the `tasks` collection (state, attempts,
//! timings, last error) so operators can see and retry work. Delivery goes through a [`Transport`]:
//! the default [`InProcess`] transport runs tasks on the local tokio runtime; [`Amqp`] carries them
//! through RabbitMQ to [`run_worker`] processes.
//!
//! Handlers must be idempotent: a task can run more than once (retries, redelivery after a crash).

mod amqp;
mod error;
mod ledger;
mod options;
mod record;
mod registry;
mod runner;
mod tasks;

pub use amqp::{Amqp, AmqpOptions, Fanout, Takeover, WorkerOptions, run_worker};
pub use error::{Error, TaskError};
pub use options::TaskOptions;
pub use record::{TaskId, TaskRecord, TaskState};
pub use registry::{Handler, Registry};
pub use runner::{InProcess, StoreOnly, Transport};
pub use tasks::Tasks;
