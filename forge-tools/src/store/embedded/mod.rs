//! The embedded store: with no `FORGE_MONGODB_URI`, the forge runs its own MongoDB-compatible
//! server (SecantusDB's `secantusd-rs`) on a loopback port with its data in `<data>/store`.
//!
//! Several forge processes may use one data dir at once (`forge serve` and `forge worker`
//! started together by a Procfile or systemd, `forge user create` beside a running server).
//! Files in the data dir coordinate them so that exactly one server runs:
//!
//! - `store.lock`: the *owner* holds an exclusive lock on it for as long as it runs. The owner
//!   starts the server (or adopts one left running), restarts it on the same port if it dies,
//!   and records the port in `store.port`. Every other process waits until a server answers on
//!   the recorded port and attaches to it; processes started at the same moment therefore
//!   start one server, and the others wait for it.
//! - `store.users`: every process using the server holds a shared lock on it. An owner that
//!   exits stops the server only when it is the last user; otherwise it leaves the server
//!   running, and one of the remaining processes (each polls `store.lock` every second)
//!   becomes the owner and adopts it. The last process to leave stops the server, owner or not.
//! - A server whose owner died without stopping it (`kill -9`) keeps running. The next process
//!   to take `store.lock` adopts it when it is the only `secantusd-rs` serving this data dir's
//!   storage, listens on the recorded port and answers a ping; otherwise it stops every server
//!   of this storage and starts a fresh one on the recorded port (processes attached to the
//!   old one reconnect there).
//!
//! The server writes its output to `<data>/store.log`, not to a pipe of its owner (which would
//! break when the owner goes), and runs in its own process group, so Ctrl-C in the owner's
//! terminal reaches only the owner, which decides whether to stop it.
//!
//! Here: the handle ([`EmbeddedStore`]) and taking ownership; `files` holds the coordination
//! files, `procs` finds servers on the machine, `server` starts, supervises and stops one.

mod binary;
mod error;
mod files;
mod procs;
mod server;

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use binary::{INSTALL_HINT, SERVER_BINARY, find_binary};
pub use error::EmbeddedError;
use files::{Paths, last_user, lock_within, read_record, try_lock, write_record};
use procs::{answers, answers_ping, is_store_process, listens_on, store_processes, uri_for};
use server::{Exit, Proc, spawn, supervise, terminate};

/// How long a process waits for another one to start (or stop) the server.
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(90);

/// The embedded server a process uses: one it owns (started or adopted, and supervises), or
/// one another forge process on the same data dir owns.
pub struct EmbeddedStore {
    uri: String,
    inner: Arc<Inner>,
    /// Non-owners: polls `store.lock` to take over when the owner goes.
    watcher: Option<JoinHandle<()>>,
}

struct Inner {
    paths: Paths,
    port: u16,
    /// Shared lock on `store.users` while this process uses the server.
    user: Mutex<Option<Flock<File>>>,
    owner: Mutex<Option<Owner>>,
}

struct Owner {
    /// Exclusive lock on `store.lock`; released last.
    lock: Flock<File>,
    exit_tx: watch::Sender<Option<Exit>>,
    supervisor: JoinHandle<()>,
    /// The server's current pid (the supervisor updates it on restarts).
    pid: Arc<AtomicI32>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EmbeddedStore {
    /// Attaches to the server another process runs on this data dir, or becomes its owner:
    /// adopts a server left running, or starts one (data in `<data_dir>/store`) and waits
    /// until it listens.
    pub async fn start(data_dir: &Path) -> Result<Self, EmbeddedError> {
        std::fs::create_dir_all(data_dir).map_err(EmbeddedError::Spawn)?;
        // Absolute, so a server is recognised by its `--storage-path` whatever the cwd was.
        let data_dir = std::fs::canonicalize(data_dir).map_err(EmbeddedError::Spawn)?;
        let paths = Paths::new(&data_dir);
        std::fs::create_dir_all(&paths.storage).map_err(EmbeddedError::Spawn)?;
        // Waits while a last user is stopping the server.
        let user = lock_within(&paths.users, FlockArg::LockSharedNonblock, WAIT_FOR_OTHERS)
            .await?
            .ok_or(EmbeddedError::Busy(WAIT_FOR_OTHERS))?;
        let deadline = Instant::now() + WAIT_FOR_OTHERS;
        loop {
            if let Some(lock) = try_lock(&paths.lock, FlockArg::LockExclusiveNonblock)? {
                let (owner, port) = become_owner(&paths, lock).await?;
                let inner = Arc::new(Inner {
                    paths,
                    port,
                    user: Mutex::new(Some(user)),
                    owner: Mutex::new(Some(owner)),
                });
                return Ok(Self {
                    uri: uri_for(port),
                    inner,
                    watcher: None,
                });
            }
            // Another process owns the store; it may still be starting it.
            if let Some(port) = read_record(&paths.record)
                && answers(port).await
            {
                let inner = Arc::new(Inner {
                    paths,
                    port,
                    user: Mutex::new(Some(user)),
                    owner: Mutex::new(None),
                });
                let watcher = tokio::spawn(watch_owner(inner.clone()));
                return Ok(Self {
                    uri: uri_for(port),
                    inner,
                    watcher: Some(watcher),
                });
            }
            if Instant::now() >= deadline {
                return Err(EmbeddedError::Busy(WAIT_FOR_OTHERS));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Whether this process owns (supervises) the server now.
    pub fn is_owned(&self) -> bool {
        guard(&self.inner.owner).is_some()
    }

    /// Leaves the store: stops the server (SIGTERM, then waits for it to flush and exit) when
    /// no other process uses it, and otherwise leaves it running for them.
    pub async fn stop(mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
            let _ = watcher.await;
        }
        let paths = self.inner.paths.clone();
        drop(guard(&self.inner.user).take());
        let owner = guard(&self.inner.owner).take();
        match owner {
            Some(owner) => {
                let last = last_user(&paths).await;
                let exit = if last.is_some() {
                    Exit::Stop
                } else {
                    tracing::info!(
                        "other forge processes use the embedded store; leaving it running for them"
                    );
                    Exit::Detach
                };
                let _ = owner.exit_tx.send(Some(exit));
                let _ = owner.supervisor.await;
                if exit == Exit::Stop {
                    let _ = std::fs::remove_file(&paths.record);
                }
                drop(last);
                drop(owner.lock);
            }
            None => {
                // Our owner may have gone while we used the store (and we did not take over
                // yet): if nobody is left, stop the server rather than leave it behind.
                let Ok(Some(lock)) = try_lock(&paths.lock, FlockArg::LockExclusiveNonblock) else {
                    return;
                };
                let Ok(Some(last)) = try_lock(&paths.users, FlockArg::LockExclusiveNonblock) else {
                    return;
                };
                for pid in store_processes(&paths.storage) {
                    terminate(&mut Proc::Adopted(pid), &paths.storage).await;
                }
                let _ = std::fs::remove_file(&paths.record);
                drop(last);
                drop(lock);
            }
        }
    }
}

impl Drop for EmbeddedStore {
    /// Dropped without `stop` (an error on the way out): SIGTERM the server if this process
    /// owns it and nobody else uses it, without waiting.
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
        drop(guard(&self.inner.user).take());
        let Some(owner) = guard(&self.inner.owner).take() else {
            return;
        };
        if let Ok(Some(_last)) = try_lock(&self.inner.paths.users, FlockArg::LockExclusiveNonblock)
        {
            let _ = owner.exit_tx.send(Some(Exit::Stop));
            // The runtime may be shutting down and never run the supervisor again.
            let pid = owner.pid.load(Ordering::Relaxed);
            if pid > 0 && is_store_process(pid, &self.inner.paths.storage) {
                let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
    }
}

/// Takes over a server left running (when it is this storage's, on the recorded port, and
/// answers) or starts a fresh one, and supervises it.
async fn become_owner(paths: &Paths, lock: Flock<File>) -> Result<(Owner, u16), EmbeddedError> {
    let binary = find_binary().ok_or(EmbeddedError::NotInstalled)?;
    let recorded = read_record(&paths.record);
    let running = store_processes(&paths.storage);
    let mut adopt = None;
    if let (Some(port), [pid]) = (recorded, running.as_slice())
        && listens_on(*pid, port)
        && answers_ping(port).await
    {
        adopt = Some((*pid, port));
    }
    let (proc, port) = match adopt {
        Some((pid, port)) => {
            tracing::info!(pid, port, "adopting the embedded store left running");
            (Proc::Adopted(pid), port)
        }
        None => {
            for pid in running {
                tracing::warn!(
                    pid,
                    "stopping an embedded store left running that cannot be adopted"
                );
                terminate(&mut Proc::Adopted(pid), &paths.storage).await;
            }
            // Nobody attaches to a stale port while the new server starts.
            let _ = std::fs::remove_file(&paths.record);
            // The recorded port first, so processes still holding it reconnect; port 0 (the
            // server picks and prints a free one) when there is none or it is taken.
            let hint = recorded.unwrap_or(0);
            let (child, port) = match spawn(&binary, paths, hint).await {
                Ok(started) => started,
                Err(e) if hint != 0 => {
                    tracing::warn!(error = %e, port = hint, "cannot start the store on its recorded port");
                    spawn(&binary, paths, 0).await?
                }
                Err(e) => return Err(e),
            };
            (Proc::Child(child), port)
        }
    };
    write_record(&paths.record, port).map_err(EmbeddedError::Spawn)?;
    let pid = Arc::new(AtomicI32::new(proc.pid().unwrap_or(0)));
    let (exit_tx, exit_rx) = watch::channel(None);
    let supervisor = tokio::spawn(supervise(
        binary,
        paths.clone(),
        port,
        proc,
        pid.clone(),
        exit_rx,
    ));
    Ok((
        Owner {
            lock,
            exit_tx,
            supervisor,
            pid,
        },
        port,
    ))
}

/// A non-owner's background task: becomes the owner when the owner goes.
async fn watch_owner(inner: Arc<Inner>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let lock = match try_lock(&inner.paths.lock, FlockArg::LockExclusiveNonblock) {
            Ok(Some(lock)) => lock,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the embedded store's owner");
                continue;
            }
        };
        match become_owner(&inner.paths, lock).await {
            Ok((owner, port)) => {
                if port == inner.port {
                    tracing::info!(port, "took over the embedded store");
                } else {
                    tracing::error!(
                        port,
                        was = inner.port,
                        "the embedded store had to move to another port; restart this process"
                    );
                }
                *guard(&inner.owner) = Some(owner);
                return;
            }
            Err(e) => tracing::error!(error = %e, "could not take over the embedded store"),
        }
    }
}
