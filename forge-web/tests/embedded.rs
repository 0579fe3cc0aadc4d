//! Zero-configuration start: `forge serve` with no store configured starts its own embedded
//! server under the data dir, serves `/healthz`, restarts the store if it dies, and stops it on
//! exit; processes started together share one store, and a store left behind by a killed
//! owner is adopted or replaced. Runs the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{free_port, process};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    process::terminate(child);
    process::exited(child, Duration::from_secs(30), "forge stops on SIGTERM")
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
    // (`/healthz` answers from a status refreshed every second, so wait for the new store
    // process itself, then for a healthy answer.)
    let restarted = Instant::now();
    let again = loop {
        let now = store_pids(data.path());
        if now.len() == 1 && now[0] != pids[0] {
            break now;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(30),
            "store not restarted: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(1100));
    wait_for(port, 200, Duration::from_secs(30));
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

/// The parent of a process (the owner of a store it started).
fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `forge <args>` on the data dir with the embedded store, its log in `log`.
fn forge_logged(data: &Path, args: &[&str], log: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
    cmd.args(args)
        .env_remove("FORGE_MONGODB_URI")
        .env_remove("FORGE_CONFIG")
        .env_remove("FORGE_BASE_URL")
        .env_remove("FORGE_AMQP_URL")
        .env("FORGE_DATA_DIR", data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    cmd
}

fn serve_logged(data: &Path, port: u16, log: &Path) -> Command {
    let mut cmd = forge_logged(data, &["serve"], log);
    cmd.env("FORGE_BIND", format!("127.0.0.1:{port}"));
    cmd
}

/// Every log in the folder, for failure messages.
fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            out.push_str(&format!("--- {}\n{text}\n", path.display()));
        }
    }
    out
}

fn kill9(pid: u32) {
    Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .unwrap();
}

/// Waits until the store processes of the data dir are `want`.
fn wait_store_pids(data: &Path, want: usize, limit: Duration) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let pids = store_pids(data);
        if pids.len() == want || start.elapsed() > limit {
            return pids;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn processes_started_together_share_one_store() {
    let data = tempfile::tempdir().unwrap();
    let logs_dir = tempfile::tempdir().unwrap();
    let log = |name: &str| logs_dir.path().join(format!("{name}.log"));
    let ports = [free_port(), free_port()];
    let mut cmds = vec![
        (
            "serve-a",
            serve_logged(data.path(), ports[0], &log("serve-a")),
        ),
        (
            "serve-b",
            serve_logged(data.path(), ports[1], &log("serve-b")),
        ),
    ];
    // With a broker, the Procfile pair: web and worker.
    if let Ok(amqp) = std::env::var("FORGE_TEST_AMQP_URL") {
        let prefix = format!("forge-embedded-{}", std::process::id());
        for (_, cmd) in &mut cmds {
            cmd.env("FORGE_AMQP_URL", &amqp)
                .env("FORGE_AMQP_PREFIX", &prefix);
        }
        let mut worker = forge_logged(data.path(), &["worker"], &log("worker"));
        worker
            .env("FORGE_AMQP_URL", &amqp)
            .env("FORGE_AMQP_PREFIX", &prefix);
        cmds.push(("worker", worker));
    }
    // All at once, as a Procfile or systemd starts them.
    let mut children: Vec<(&str, Child)> = cmds
        .iter_mut()
        .map(|(name, cmd)| (*name, cmd.spawn().unwrap()))
        .collect();
    for port in ports {
        let start = Instant::now();
        while http_status(port, "/healthz") != Some(200) {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "port {port} never healthy\n{}",
                logs(logs_dir.path())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for (name, child) in &mut children {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{name} exited\n{}",
            logs(logs_dir.path())
        );
    }
    let pids = store_pids(data.path());
    assert_eq!(pids.len(), 1, "one store\n{}", logs(logs_dir.path()));

    // One store: an account the operator creates (a reserved name, allowed from the CLI) is
    // seen by every web process.
    let mut create = forge_logged(
        data.path(),
        &[
            "user",
            "create",
            "--username",
            "admin",
            "--email",
            "admin@example.org",
            "--admin",
        ],
        &log("create"),
    );
    let mut proc = create.stdin(Stdio::piped()).spawn().unwrap();
    proc.stdin
        .take()
        .unwrap()
        .write_all(b"a-long-password\n")
        .unwrap();
    assert!(proc.wait().unwrap().success(), "{}", logs(logs_dir.path()));
    for port in ports {
        assert_eq!(http_status(port, "/u/admin/"), Some(200));
    }

    // The owner (the store's parent) leaves first: the store runs on for the others, and one
    // of them takes it over.
    let owner = ppid(pids[0]).unwrap();
    let at = children
        .iter()
        .position(|(_, c)| i32::try_from(c.id()).unwrap() == owner)
        .unwrap_or_else(|| panic!("no forge process owns the store\n{}", logs(logs_dir.path())));
    let (name, mut child) = children.remove(at);
    let status = stop(&mut child);
    assert!(
        status.success(),
        "{name}: {status}\n{}",
        logs(logs_dir.path())
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(store_pids(data.path()), pids, "the same store runs on");
    // The web processes left serve on, from the same store.
    for (other, port) in [("serve-a", ports[0]), ("serve-b", ports[1])] {
        if other != name {
            assert_eq!(
                http_status(port, "/u/admin/"),
                Some(200),
                "{}",
                logs(logs_dir.path())
            );
        }
    }
    let all = logs(logs_dir.path());
    assert!(all.contains("took over the embedded store"), "{all}");

    // The last one out stops it.
    for (name, mut child) in children {
        let status = stop(&mut child);
        assert!(
            status.success(),
            "{name}: {status}\n{}",
            logs(logs_dir.path())
        );
    }
    assert!(
        wait_store_pids(data.path(), 0, Duration::from_secs(5)).is_empty(),
        "the store stops with the last process\n{}",
        logs(logs_dir.path())
    );
}

#[test]
fn a_store_orphaned_by_sigkill_is_adopted_or_replaced() {
    let data = tempfile::tempdir().unwrap();
    let logs_dir = tempfile::tempdir().unwrap();
    let log = |name: &str| logs_dir.path().join(format!("{name}.log"));

    let port = free_port();
    let mut first = serve_logged(data.path(), port, &log("first"))
        .spawn()
        .unwrap();
    wait_for(port, 200, Duration::from_secs(60));
    let orphan = store_pids(data.path());
    assert_eq!(orphan.len(), 1);
    kill9(first.id());
    first.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        store_pids(data.path()),
        orphan,
        "the store outlives its owner"
    );

    // The next start adopts it: the same process, answering on the recorded port.
    let port = free_port();
    let mut second = serve_logged(data.path(), port, &log("second"))
        .spawn()
        .unwrap();
    wait_for(port, 200, Duration::from_secs(60));
    assert_eq!(store_pids(data.path()), orphan, "{}", logs(logs_dir.path()));
    assert!(logs(logs_dir.path()).contains("adopting the embedded store"));
    // An adopted store is supervised like a started one: it is restarted when it dies.
    kill9(u32::try_from(orphan[0]).unwrap());
    std::thread::sleep(Duration::from_millis(500));
    wait_for(port, 200, Duration::from_secs(30));
    let restarted = wait_store_pids(data.path(), 1, Duration::from_secs(10));
    assert_eq!(restarted.len(), 1, "{}", logs(logs_dir.path()));
    assert_ne!(restarted, orphan);

    // Orphaned again, and its record no longer matches it (another port): it cannot be
    // adopted, so the next start stops it and starts a fresh store.
    kill9(second.id());
    second.wait().unwrap();
    std::fs::write(data.path().join("store.port"), free_port().to_string()).unwrap();
    let port = free_port();
    let mut third = serve_logged(data.path(), port, &log("third"))
        .spawn()
        .unwrap();
    wait_for(port, 200, Duration::from_secs(60));
    let fresh = store_pids(data.path());
    assert_eq!(fresh.len(), 1, "{}", logs(logs_dir.path()));
    assert_ne!(fresh, restarted, "{}", logs(logs_dir.path()));

    // Orphaned once more: a short command adopts it, works, and as the last user stops it.
    kill9(third.id());
    third.wait().unwrap();
    let out = forge_logged(data.path(), &["migrate", "--status"], &log("migrate"))
        .status()
        .unwrap();
    assert!(out.success(), "{}", logs(logs_dir.path()));
    assert!(
        wait_store_pids(data.path(), 0, Duration::from_secs(5)).is_empty(),
        "{}",
        logs(logs_dir.path())
    );
}

/// With `FORGE_SHUTDOWN_DRAIN_SECS`, SIGTERM first turns `/healthz` to 503 while the node
/// keeps serving pages (a load balancer takes it out before its connections close), then it
/// exits cleanly once the drain is over.
#[test]
fn a_draining_node_fails_its_health_check_but_serves_until_it_stops() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let db = common::fresh_db_name("drain");
    let mut cmd = forge(data.path(), port);
    cmd.env("FORGE_MONGODB_URI", common::store_uri())
        .env("FORGE_DB_NAME", &db)
        .env("FORGE_SHUTDOWN_DRAIN_SECS", "2");
    let mut child = cmd.spawn().unwrap();
    wait_for(port, 200, Duration::from_secs(60));
    assert_eq!(http_status(port, "/"), Some(200));

    process::terminate(&child);
    let signalled = Instant::now();
    wait_for(port, 503, Duration::from_secs(1));
    assert_eq!(
        http_status(port, "/"),
        Some(200),
        "pages are still served while draining"
    );
    let status = process::exited(
        &mut child,
        Duration::from_secs(30),
        "forge stops after draining",
    );
    let took = signalled.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took >= Duration::from_millis(1900),
        "stopped {took:?} after SIGTERM, before the 2 s drain was over"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(common::store_uri())
            .await
            .unwrap();
        let db = client.database(&db);
        forge_tools::events::log_db(&db).drop().await.unwrap();
        db.drop().await.unwrap();
    });
}
