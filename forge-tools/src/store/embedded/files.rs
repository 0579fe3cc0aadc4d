//! The files in the data dir that coordinate the processes sharing one server: the owner's
//! lock, the users' shared lock, and the record of the server's port.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use tokio::time::Instant;

use super::error::EmbeddedError;

#[derive(Debug, Clone)]
pub(super) struct Paths {
    pub(super) storage: PathBuf,
    pub(super) lock: PathBuf,
    pub(super) users: PathBuf,
    /// The port of the running server.
    pub(super) record: PathBuf,
    pub(super) log: PathBuf,
}

impl Paths {
    pub(super) fn new(data_dir: &Path) -> Self {
        Self {
            storage: data_dir.join("store"),
            lock: data_dir.join("store.lock"),
            users: data_dir.join("store.users"),
            record: data_dir.join("store.port"),
            log: data_dir.join("store.log"),
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
pub(super) fn try_lock(path: &Path, arg: FlockArg) -> Result<Option<Flock<File>>, EmbeddedError> {
    let file = open_lock_file(path).map_err(EmbeddedError::Spawn)?;
    match Flock::lock(file, arg) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(EmbeddedError::Lock(path.to_owned(), e)),
    }
}

/// Polls for a lock until `limit`.
pub(super) async fn lock_within(
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
pub(super) async fn last_user(paths: &Paths) -> Option<Flock<File>> {
    lock_within(
        &paths.users,
        FlockArg::LockExclusiveNonblock,
        Duration::from_secs(1),
    )
    .await
    .ok()
    .flatten()
}

pub(super) fn read_record(path: &Path) -> Option<u16> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Writes the port through a temporary file, so readers never see half of it.
pub(super) fn write_record(path: &Path, port: u16) -> std::io::Result<()> {
    let tmp = path.with_extension("port.tmp");
    std::fs::write(&tmp, format!("{port}\n"))?;
    std::fs::rename(tmp, path)
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
