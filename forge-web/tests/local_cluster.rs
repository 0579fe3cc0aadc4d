//! `deploy/local-cluster.sh check`: the compose file's topology run natively (two `forge serve`
//! behind HAProxy, two `forge worker`s, one data dir) on the test store and broker, with its
//! checks: a log-in that holds across nodes, an edit read on the other node, search from both,
//! a worker killed while tasks are pending, a web node stopped (SIGTERM) and killed (SIGKILL)
//! under a load of writes through the proxy. Needs haproxy (scripts/test installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use forge_tasks::{Amqp, AmqpOptions};

/// Longer than any run of the script (well under 2 minutes with a debug binary) should take.
const LIMIT: Duration = Duration::from_secs(300);

/// A variable of `CLUSTER_DIR/cluster.env` (`NAME=value`, shell-quoted only when needed).
fn cluster_var(dir: &Path, name: &str) -> Option<String> {
    let env = std::fs::read_to_string(dir.join("cluster.env")).ok()?;
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(|v| v.trim_matches('\'').to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_compose_topology_holds_together_on_one_machine() {
    let store = std::env::var("FORGE_TEST_MONGODB_URI").expect(
        "FORGE_TEST_MONGODB_URI is unset: run the tests with scripts/test, which starts a store",
    );
    let broker = std::env::var("FORGE_TEST_AMQP_URL").expect(
        "FORGE_TEST_AMQP_URL is unset: run the tests with scripts/test, which starts RabbitMQ",
    );
    let haproxy = Command::new("haproxy").arg("-v").output();
    assert!(
        haproxy.as_ref().is_ok_and(|o| o.status.success()),
        "haproxy is not installed, and deploy/local-cluster.sh needs it: apt-get install -y haproxy \
         (scripts/test installs it) [{haproxy:?}]"
    );

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/local-cluster.sh");
    let work = tempfile::tempdir().unwrap();
    let cluster = work.path().join("cluster");
    let (status, output, took) = tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        let store = store.clone();
        let broker = broker.clone();
        move || {
            // One stream for the script's output and its notes, in order.
            let mut cmd = Command::new("bash");
            cmd.arg("-c").arg("exec \"$0\" check 2>&1").arg(&script);
            for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("FORGE_")) {
                if k != "FORGE_LOG" {
                    cmd.env_remove(k);
                }
            }
            cmd.env_remove("CHECKS");
            let mut child = cmd
                .env("FORGE_BIN", env!("CARGO_BIN_EXE_forge"))
                .env("FORGE_MONGODB_URI", &store)
                .env("FORGE_AMQP_URL", &broker)
                .env("CLUSTER_DIR", &cluster)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = child.stdout.take().unwrap();
            let reader = std::thread::spawn(move || {
                let mut s = String::new();
                let _ = out.read_to_string(&mut s);
                s
            });
            let start = Instant::now();
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                if start.elapsed() > LIMIT {
                    // SIGTERM: the script's trap stops everything it started.
                    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                    let stopping = Instant::now();
                    while child.try_wait().unwrap().is_none() {
                        if stopping.elapsed() > Duration::from_secs(60) {
                            let _ = child.kill();
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    panic!(
                        "deploy/local-cluster.sh check still running after {LIMIT:?}; stopped:\n{}",
                        reader.join().unwrap()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            (status, reader.join().unwrap(), start.elapsed())
        }
    })
    .await
    .unwrap();

    // What the script cannot remove itself: its database on the shared store (no MongoDB
    // client in bash); its queues too, should it have had no rabbitmqctl to delete them.
    if let Some(db) = cluster_var(&cluster, "DB_NAME") {
        let client = mongodb::Client::with_uri_str(&store).await.unwrap();
        let db = client.database(&db);
        forge_tools::events::log_db(&db).drop().await.unwrap();
        db.drop().await.unwrap();
    }
    if let Some(prefix) = cluster_var(&cluster, "AMQP_PREFIX") {
        let mut opts = AmqpOptions::new(&broker);
        opts.prefix = prefix;
        let amqp = Amqp::connect(opts).await.unwrap();
        amqp.delete_queues(5).await.unwrap();
    }

    if !status.success() {
        // Keep the logs the failure message points to.
        let kept = work.keep();
        panic!(
            "deploy/local-cluster.sh check failed ({status}) after {took:?}; its logs are in {}:\n{output}",
            kept.join("cluster/logs").display()
        );
    }
    eprintln!("{output}(deploy/local-cluster.sh check: {took:?})");
}
