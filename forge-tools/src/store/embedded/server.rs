//! Running the server: starting it (output appended to `store.log`, in its own process
//! group), supervising it (restarted on the same port when it dies), and stopping it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

use super::error::EmbeddedError;
use super::files::Paths;
use super::procs::is_store_process;

/// How long a freshly started server may take to listen.
const START_LIMIT: Duration = Duration::from_secs(30);
/// `store.log` is set aside (as `store.log.old`) when a server starts and it is larger.
const LOG_ROTATE_BYTES: u64 = 10_000_000;

/// What the owner's supervisor does when told to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exit {
    /// Stop the server: nobody else uses it.
    Stop,
    /// Leave it running for the other processes (one of them takes over).
    Detach,
}

/// The server process: a child this process started, or one adopted from an owner that died.
pub(super) enum Proc {
    Child(Child),
    Adopted(i32),
}

impl Proc {
    pub(super) fn pid(&self) -> Option<i32> {
        match self {
            Self::Child(c) => c.id().and_then(|p| i32::try_from(p).ok()),
            Self::Adopted(pid) => Some(*pid),
        }
    }

    /// Resolves when the process has exited.
    async fn exited(&mut self, storage: &Path) {
        match self {
            Self::Child(c) => {
                let _ = c.wait().await;
            }
            // Not our child: nothing to wait on but its presence.
            Self::Adopted(pid) => {
                while is_store_process(*pid, storage) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// Starts a server on `port` (0: it picks one) with its output appended to `store.log`, and
/// waits until it prints the address it listens on.
pub(super) async fn spawn(
    binary: &Path,
    paths: &Paths,
    port: u16,
) -> Result<(Child, u16), EmbeddedError> {
    if std::fs::metadata(&paths.log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let _ = std::fs::rename(&paths.log, paths.log.with_extension("log.old"));
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.log)
        .map_err(EmbeddedError::Spawn)?;
    let from = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log_err = log.try_clone().map_err(EmbeddedError::Spawn)?;
    let mut child = Command::new(binary)
        .arg("--host")
        .arg("127.0.0.1")
        .arg("--port")
        .arg(port.to_string())
        .arg("--storage-path")
        .arg(&paths.storage)
        .arg("--cache-size")
        .arg("256M")
        .arg("--log-level")
        .arg("WARNING")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .process_group(0)
        .spawn()
        .map_err(EmbeddedError::Spawn)?;
    let deadline = Instant::now() + START_LIMIT;
    loop {
        let output = read_from(&paths.log, from);
        if let Some(port) = output
            .lines()
            .find_map(|line| line.split("listening on ").nth(1))
            .and_then(|addr| addr.rsplit(':').next()?.trim().parse::<u16>().ok())
        {
            return Ok((child, port));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail: Vec<&str> = output.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(EmbeddedError::EarlyExit(format!(
                "{status}: {}",
                tail.join(" / ")
            )));
        }
        if Instant::now() >= deadline {
            let _ = child.kill().await;
            return Err(EmbeddedError::Timeout(START_LIMIT));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the log holds after byte `from`.
fn read_from(log: &Path, from: u64) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(log)
        && f.seek(SeekFrom::Start(from)).is_ok()
    {
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(super) async fn supervise(
    binary: PathBuf,
    paths: Paths,
    port: u16,
    mut proc: Proc,
    pid: Arc<AtomicI32>,
    mut exit_rx: watch::Receiver<Option<Exit>>,
) {
    loop {
        tokio::select! {
            () = proc.exited(&paths.storage) => {
                tracing::error!("embedded store exited; restarting it");
                tokio::time::sleep(Duration::from_millis(500)).await;
                loop {
                    if exit_rx.borrow().is_some() {
                        return;
                    }
                    match spawn(&binary, &paths, port).await {
                        Ok((child, _)) => {
                            proc = Proc::Child(child);
                            pid.store(proc.pid().unwrap_or(0), Ordering::Relaxed);
                            tracing::info!(port, "embedded store restarted");
                            break;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "embedded store restart failed; retrying");
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                    }
                }
            }
            changed = exit_rx.changed() => {
                // A dropped sender: the store was dropped, which decided already.
                let exit = if changed.is_ok() { *exit_rx.borrow() } else { Some(Exit::Detach) };
                if exit == Some(Exit::Stop) {
                    terminate(&mut proc, &paths.storage).await;
                }
                return;
            }
        }
    }
}

/// SIGTERM and a grace period for the storage engine to checkpoint; SIGKILL after that.
pub(super) async fn terminate(proc: &mut Proc, storage: &Path) {
    let Some(pid) = proc.pid() else {
        return;
    };
    // An adopted pid is signalled only while it is still this storage's server.
    if matches!(proc, Proc::Adopted(_)) && !is_store_process(pid, storage) {
        return;
    }
    let pid = Pid::from_raw(pid);
    let _ = signal::kill(pid, Signal::SIGTERM);
    if tokio::time::timeout(Duration::from_secs(15), proc.exited(storage))
        .await
        .is_ok()
    {
        return;
    }
    let _ = signal::kill(pid, Signal::SIGKILL);
    let _ = tokio::time::timeout(Duration::from_secs(5), proc.exited(storage)).await;
}
