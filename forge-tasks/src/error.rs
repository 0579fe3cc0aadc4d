//! The errors of the task system: what a handler reports ([`TaskError`]) and what the runner
//! itself reports ([`Error`]).

/// Why a handler did not finish its task.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Worth trying again later (store unavailable, lock held...).
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (bad arguments): no further attempts.
    #[error("{0}")]
    Fatal(String),
}

/// Errors of the runner itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store: {0}")]
    Store(#[from] mongodb::error::Error),
    #[error("no handler registered for task {0:?}")]
    UnknownTask(String),
    #[error("task transport closed")]
    TransportClosed,
    #[error("invalid task arguments: {0}")]
    Args(String),
    #[error("broker: {0}")]
    Broker(String),
}
