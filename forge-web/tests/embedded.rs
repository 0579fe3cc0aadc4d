//! Zero-configuration start: `forge serve` with no store configured starts its own embedded
//! server under the data dir, serves `/healthz`, restarts the store if it dies, and stops it on
//! exit. Runs the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

fn wait_for(port: u16, want: u16, limit: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if http_status(port, "/healthz") == Some(want) {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("/healthz did not answer {want} within {limit:?}");
}

/// Pids of store processes whose command line mentions `dir`.
fn store_pids(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains("secantusd") && c.contains(&needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

fn forge(data: &Path, port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
    cmd.arg("serve")
        .env_remove("FORGE_MONGODB_URI")
        .env_remove("FORGE_CONFIG")
        .env_remove("FORGE_BASE_URL")
        .env("FORGE_DATA_DIR", data)
        .env("FORGE_BIND", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn stop(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "forge did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_with_no_configuration_uses_an_embedded_store() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = forge(data.path(), port).spawn().unwrap();
    let took = wait_for(port, 200, Duration::from_secs(60));
    eprintln!("forge serve answered /healthz 200 after {took:?}");
    assert!(
        data.path().join("store").is_dir(),
        "store data lives under the data dir"
    );
    let pids = store_pids(data.path());
    assert_eq!(pids.len(), 1, "one embedded store process");

    // Other commands on the same data dir use the running store instead of starting another.
    let mut create = Command::new(env!("CARGO_BIN_EXE_forge"));
    create
        .args([
            "user",
            "create",
            "--username",
            "opsadmin",
            "--email",
            "ops@example.org",
            "--admin",
        ])
        .env_remove("FORGE_MONGODB_URI")
        .env("FORGE_DATA_DIR", data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut proc = create.spawn().unwrap();
    proc.stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let out = proc.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created user opsadmin (site admin)"));
    assert_eq!(store_pids(data.path()), pids, "still the one store");
    assert_eq!(
        http_status(port, "/u/opsadmin/"),
        Some(200),
        "the served forge sees the new user"
    );

    // The store dies: the forge notices and starts it again on the same port.
    Command::new("kill")
        .arg("-KILL")
        .arg(pids[0].to_string())
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    wait_for(port, 200, Duration::from_secs(30));
    let again = store_pids(data.path());
    assert_eq!(again.len(), 1);
    assert_ne!(again[0], pids[0]);

    let status = stop(&mut child);
    assert!(status.success(), "clean exit: {status}");
    assert!(
        store_pids(data.path()).is_empty(),
        "the store stops with the forge"
    );
}

#[test]
fn missing_store_binary_is_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let out = forge(data.path(), free_port())
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", data.path())
        .env_remove("CARGO_HOME")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("forge: ") && last.contains("cargo install secantus-mdb"),
        "{err}"
    );
}
