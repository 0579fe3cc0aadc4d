//! How one task is enqueued: priority, attempts, de-duplication.

/// Options for one enqueue.
#[derive(Debug, Clone)]
pub struct TaskOptions {
    /// Highest priority first (0 = bulk, 9 = interactive).
    pub priority: u8,
    pub max_attempts: u32,
    /// When set, a task with the same key that is still queued is reused instead of adding another.
    pub dedup_key: Option<String>,
}

impl Default for TaskOptions {
    fn default() -> Self {
        Self {
            priority: 5,
            max_attempts: 5,
            dedup_key: None,
        }
    }
}
