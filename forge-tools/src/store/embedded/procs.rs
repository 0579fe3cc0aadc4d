//! Finding a server on this machine: `secantusd-rs` processes serving a storage (by their
//! command line), whether one listens on a port, and whether a port answers.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use super::binary::SERVER_BINARY;

pub(super) fn uri_for(port: u16) -> String {
    format!("mongodb://127.0.0.1:{port}/?directConnection=true")
}

/// Whether something accepts connections on the port.
pub(super) async fn answers(port: u16) -> bool {
    let probe = tokio::net::TcpStream::connect(("127.0.0.1", port));
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(_))
    )
}

/// Whether a MongoDB server on the port answers a ping.
pub(super) async fn answers_ping(port: u16) -> bool {
    let uri = uri_for(port);
    let ping = crate::store::connect(&uri, "admin", Duration::from_secs(3));
    matches!(
        tokio::time::timeout(Duration::from_secs(10), ping).await,
        Ok(Ok(_))
    )
}

/// Live `secantusd-rs` processes serving this storage (found by their command line).
pub(super) fn store_processes(storage: &Path) -> Vec<i32> {
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
pub(super) fn is_store_process(pid: i32, storage: &Path) -> bool {
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
pub(super) fn listens_on(pid: i32, port: u16) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_a_store() {
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(!is_store_process(me, Path::new("/nowhere/store")));
        assert!(!listens_on(me, 1));
    }
}
