//! How a backup or a restore reports its progress: phases, each with a number of units (the
//! command line draws a bar from them).

/// Receives the progress of a backup or a restore. Called from several tasks and threads.
pub trait Progress: Send + Sync {
    /// A new phase begins: what it does, and how many units it has (0: not known).
    fn phase(&self, name: &str, total: u64);
    /// `n` more units of the current phase are done.
    fn advance(&self, n: u64);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _name: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
}
