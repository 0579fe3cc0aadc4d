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

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The program the embedded store runs.
pub const SERVER_BINARY: &str = "secantusd-rs";
/// What to tell a user who has no server installed.
pub const INSTALL_HINT: &str =
    "cargo install secantus-mdb --version 0.5.3-beta.196 --ignore-rust-version --locked";

/// How long a process waits for another one to start (or stop) the server.
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(90);
/// How long a freshly started server may take to listen.
const START_LIMIT: Duration = Duration::from_secs(30);
/// `store.log` is set aside (as `store.log.old`) when a server starts and it is larger.
const LOG_ROTATE_BYTES: u64 = 10_000_000;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no embedded store: `{SERVER_BINARY}` is not installed; install it with `{INSTALL_HINT}` or set FORGE_MONGODB_URI"
    )]
    NotInstalled,
    #[error("could not start {SERVER_BINARY}: {0}")]
    Spawn(std::io::Error),
    #[error("{SERVER_BINARY} exited before it was ready: {0}")]
    EarlyExit(String),
    #[error("{SERVER_BINARY} did not report its port within {0:?}")]
    Timeout(Duration),
    #[error("cannot lock {0}: {1}")]
    Lock(PathBuf, Errno),
    #[error(
        "another forge process on this data dir holds the embedded store, but no store answered within {0:?}"
    )]
    Busy(Duration),
}

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

/// What the owner's supervisor does when told to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// Stop the server: nobody else uses it.
    Stop,
    /// Leave it running for the other processes (one of them takes over).
    Detach,
}

#[derive(Debug, Clone)]
struct Paths {
    storage: PathBuf,
    lock: PathBuf,
    users: PathBuf,
    /// The port of the running server.
    record: PathBuf,
    log: PathBuf,
}

impl Paths {
    fn new(data_dir: &Path) -> Self {
        Self {
            storage: data_dir.join("store"),
            lock: data_dir.join("store.lock"),
            users: data_dir.join("store.users"),
            record: data_dir.join("store.port"),
            log: data_dir.join("store.log"),
        }
    }
}

fn uri_for(port: u16) -> String {
    format!("mongodb://127.0.0.1:{port}/?directConnection=true")
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

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// The lock, or `None` when another process holds a conflicting one.
fn try_lock(path: &Path, arg: FlockArg) -> Result<Option<Flock<File>>, EmbeddedError> {
    let file = open_lock_file(path).map_err(EmbeddedError::Spawn)?;
    match Flock::lock(file, arg) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(EmbeddedError::Lock(path.to_owned(), e)),
    }
}

/// Polls for a lock until `limit`.
async fn lock_within(
    path: &Path,
    arg: FlockArg,
    limit: Duration,
) -> Result<Option<Flock<File>>, EmbeddedError> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(lock) = try_lock(path, arg)? {
            return Ok(Some(lock));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The exclusive `store.users` lock when no other process uses the store. Tried for a second:
/// another process may hold it only while it checks the same thing.
async fn last_user(paths: &Paths) -> Option<Flock<File>> {
    lock_within(
        &paths.users,
        FlockArg::LockExclusiveNonblock,
        Duration::from_secs(1),
    )
    .await
    .ok()
    .flatten()
}

fn read_record(path: &Path) -> Option<u16> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Writes the port through a temporary file, so readers never see half of it.
fn write_record(path: &Path, port: u16) -> std::io::Result<()> {
    let tmp = path.with_extension("port.tmp");
    std::fs::write(&tmp, format!("{port}\n"))?;
    std::fs::rename(tmp, path)
}

/// Whether something accepts connections on the port.
async fn answers(port: u16) -> bool {
    let probe = tokio::net::TcpStream::connect(("127.0.0.1", port));
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(_))
    )
}

/// Whether a MongoDB server on the port answers a ping.
async fn answers_ping(port: u16) -> bool {
    let uri = uri_for(port);
    let ping = super::connect(&uri, "admin", Duration::from_secs(3));
    matches!(
        tokio::time::timeout(Duration::from_secs(10), ping).await,
        Ok(Ok(_))
    )
}

/// Live `secantusd-rs` processes serving this storage (found by their command line).
fn store_processes(storage: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| is_store_process(*pid, storage))
        .collect()
}

/// Whether `pid` is a live `secantusd-rs` with `--storage-path <storage>` (a zombie's command
/// line is empty).
fn is_store_process(pid: i32, storage: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_server = args.first().is_some_and(|arg0| {
        Path::new(OsStr::from_bytes(arg0)).file_name() == Some(OsStr::new(SERVER_BINARY))
    });
    is_server
        && args
            .windows(2)
            .any(|w| w[0] == b"--storage-path" && w[1] == storage.as_os_str().as_bytes())
}

/// Whether `pid` holds the socket listening on the loopback port (`/proc/net/tcp*` and the
/// process's open files).
fn listens_on(pid: i32, port: u16) -> bool {
    let mut sockets = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // sl local_address rem_address st ... inode: state 0A is LISTEN.
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if f.len() > 9 && f[3] == "0A" && local_port == Some(port) {
                sockets.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if sockets.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .any(|link| sockets.iter().any(|s| link.as_os_str() == s.as_str()))
}

/// `secantusd-rs` on PATH, else in cargo's bin folder (where `cargo install` puts it).
pub fn find_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(SERVER_BINARY))
        .find(|p| p.is_file())
}

/// The server process: a child this process started, or one adopted from an owner that died.
enum Proc {
    Child(Child),
    Adopted(i32),
}

impl Proc {
    fn pid(&self) -> Option<i32> {
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
async fn spawn(binary: &Path, paths: &Paths, port: u16) -> Result<(Child, u16), EmbeddedError> {
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

async fn supervise(
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
async fn terminate(proc: &mut Proc, storage: &Path) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_tolerate_junk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.port");
        assert_eq!(read_record(&path), None);
        write_record(&path, 40123).unwrap();
        assert_eq!(read_record(&path), Some(40123));
        std::fs::write(&path, "nonsense").unwrap();
        assert_eq!(read_record(&path), None);
    }

    #[test]
    fn this_process_is_not_a_store() {
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(!is_store_process(me, Path::new("/nowhere/store")));
        assert!(!listens_on(me, 1));
    }

    #[tokio::test]
    async fn the_owner_lock_is_exclusive_and_users_share() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let owner = try_lock(&paths.lock, FlockArg::LockExclusiveNonblock).unwrap();
        assert!(owner.is_some());
        assert!(
            try_lock(&paths.lock, FlockArg::LockExclusiveNonblock)
                .unwrap()
                .is_none()
        );
        let a = try_lock(&paths.users, FlockArg::LockSharedNonblock).unwrap();
        let b = try_lock(&paths.users, FlockArg::LockSharedNonblock).unwrap();
        assert!(a.is_some() && b.is_some());
        assert!(last_user(&paths).await.is_none(), "others still use it");
        drop((a, b));
        assert!(last_user(&paths).await.is_some());
    }
}
