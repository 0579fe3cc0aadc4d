//! The embedded store: with no `FORGE_MONGODB_URI`, the forge starts its own MongoDB-compatible
//! server (SecantusDB's `secantusd-rs`) on a loopback port with its data under the data dir,
//! restarts it if it dies, and stops it on exit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The program the embedded store runs.
pub const SERVER_BINARY: &str = "secantusd-rs";
/// What to tell a user who has no server installed.
pub const INSTALL_HINT: &str =
    "cargo install secantus-mdb --version 0.5.3-beta.196 --ignore-rust-version --locked";

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
}

/// The embedded server a command uses: one this process started and supervises, or one
/// another forge process on the same data dir already runs (then `forge user create` works
/// while `forge serve` is up, instead of fighting over the storage files).
pub struct EmbeddedStore {
    uri: String,
    owned: Option<Owned>,
}

struct Owned {
    stop_tx: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
    port_file: PathBuf,
}

/// Where a running embedded server's port is recorded, next to its data.
fn port_file(data_dir: &Path) -> PathBuf {
    data_dir.join("store.port")
}

fn uri_for(port: u16) -> String {
    format!("mongodb://127.0.0.1:{port}/?directConnection=true")
}

impl EmbeddedStore {
    /// Uses the server already running on this data dir, or starts one with its data in
    /// `<data_dir>/store` and waits until it listens.
    pub async fn start(data_dir: &Path) -> Result<Self, EmbeddedError> {
        if let Some(port) = running_port(data_dir).await {
            return Ok(Self {
                uri: uri_for(port),
                owned: None,
            });
        }
        let binary = find_binary().ok_or(EmbeddedError::NotInstalled)?;
        let storage = data_dir.join("store");
        std::fs::create_dir_all(&storage).map_err(EmbeddedError::Spawn)?;
        // Port 0: the server picks a free port and prints it; restarts reuse that port so the
        // driver's address stays valid.
        let (child, port) = spawn(&binary, &storage, 0).await?;
        let port_file = port_file(data_dir);
        std::fs::write(&port_file, port.to_string()).map_err(EmbeddedError::Spawn)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(binary, storage, port, child, stop_rx));
        Ok(Self {
            uri: uri_for(port),
            owned: Some(Owned {
                stop_tx,
                supervisor,
                port_file,
            }),
        })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Whether this process started (and will stop) the server.
    pub fn is_owned(&self) -> bool {
        self.owned.is_some()
    }

    /// Stops the server if this process owns it (SIGTERM, then wait for it to flush and exit).
    pub async fn stop(self) {
        if let Some(owned) = self.owned {
            let _ = owned.stop_tx.send(true);
            let _ = owned.supervisor.await;
            let _ = std::fs::remove_file(owned.port_file);
        }
    }
}

/// The port of a server another process runs on this data dir, if it answers.
async fn running_port(data_dir: &Path) -> Option<u16> {
    let port: u16 = std::fs::read_to_string(port_file(data_dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let probe = tokio::net::TcpStream::connect(("127.0.0.1", port));
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(_)) => Some(port),
        _ => None,
    }
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

async fn spawn(binary: &Path, storage: &Path, port: u16) -> Result<(Child, u16), EmbeddedError> {
    let mut child = Command::new(binary)
        .arg("--host")
        .arg("127.0.0.1")
        .arg("--port")
        .arg(port.to_string())
        .arg("--storage-path")
        .arg(storage)
        .arg("--cache-size")
        .arg("256M")
        .arg("--log-level")
        .arg("WARNING")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(EmbeddedError::Spawn)?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(EmbeddedError::EarlyExit("no output pipes".into()));
    };
    tokio::spawn(forward_lines(stderr));
    let mut lines = BufReader::new(stdout).lines();
    let limit = Duration::from_secs(30);
    let found = tokio::time::timeout(limit, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.split("listening on ").nth(1) {
                return addr
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.trim().parse::<u16>().ok());
            }
            tracing::debug!(target: "forge::store", "{line}");
        }
        None
    })
    .await;
    match found {
        Ok(Some(port)) => {
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::debug!(target: "forge::store", "{line}");
                }
            });
            Ok((child, port))
        }
        Ok(None) => {
            let status = child
                .wait()
                .await
                .map(|s| s.to_string())
                .unwrap_or_default();
            Err(EmbeddedError::EarlyExit(status))
        }
        Err(_) => Err(EmbeddedError::Timeout(limit)),
    }
}

async fn forward_lines(stream: impl tokio::io::AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::warn!(target: "forge::store", "{line}");
    }
}

async fn supervise(
    binary: PathBuf,
    storage: PathBuf,
    port: u16,
    mut child: Child,
    mut stop_rx: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            status = child.wait() => {
                tracing::error!(?status, "embedded store exited; restarting it");
                tokio::time::sleep(Duration::from_millis(500)).await;
                loop {
                    if *stop_rx.borrow() {
                        return;
                    }
                    match spawn(&binary, &storage, port).await {
                        Ok((c, _)) => {
                            child = c;
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
            _ = stop_rx.changed() => {
                terminate(&mut child).await;
                return;
            }
        }
    }
}

/// SIGTERM and a grace period for the storage engine to checkpoint; SIGKILL after that.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
