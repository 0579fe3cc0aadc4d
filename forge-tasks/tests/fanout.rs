//! Broadcast notifications ([`Fanout`]) through the real RabbitMQ: every fanout of a name gets
//! every message any of them publishes, other names get nothing, messages are transient, a slow
//! receiver's queue is capped (oldest dropped), and a fanout whose connection the broker closes
//! reconnects and carries on. Broker connections are listed and closed with `rabbitmqctl`
//! (`FORGE_TEST_RABBITMQCTL`, as in `amqp_restart`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::amqp_options;
use forge_tasks::Fanout;
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

const WAIT: Duration = Duration::from_secs(30);

/// What one fanout received, in order.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<String>>>);

impl Inbox {
    fn handler(&self) -> impl Fn(Vec<u8>) + Send + Sync + 'static {
        let inbox = self.0.clone();
        move |bytes| {
            inbox
                .lock()
                .unwrap()
                .push(String::from_utf8(bytes).unwrap())
        }
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|m| pred(m)).count()
    }
}

async fn start(opts: &forge_tasks::AmqpOptions, name: &str) -> (Arc<Fanout>, Inbox) {
    let inbox = Inbox::default();
    let fanout = Fanout::start(opts.clone(), name, inbox.handler())
        .await
        .unwrap();
    (fanout, inbox)
}

/// Deletes the fanouts' exchanges (they are not auto-delete, so tests clean up after themselves).
async fn delete_exchanges(opts: &forge_tasks::AmqpOptions, fanouts: &[&Fanout]) {
    let conn = Connection::connect(&opts.url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    for f in fanouts {
        ch.exchange_delete(f.exchange().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }
    conn.close(200, "done".into()).await.unwrap();
}

/// Polls `cond` until it holds; panics with `what` after [`WAIT`].
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_fanout_of_a_name_receives_every_message() {
    let opts = amqp_options("fanout");
    let (a, a_in) = start(&opts, "stats").await;
    let (b, b_in) = start(&opts, "stats").await;
    let (c, c_in) = start(&opts, "other").await;
    assert_eq!(a.exchange(), format!("{}.fanout.stats", opts.prefix));

    // 100 from one of them: both get all of them.
    for i in 0..100 {
        a.publish(format!("a-{i}").into_bytes());
    }
    until("both get a's 100", || {
        a_in.all().len() >= 100 && b_in.all().len() >= 100
    })
    .await;
    // And 100 from the other.
    for i in 0..100 {
        b.publish(format!("b-{i}").into_bytes());
    }
    until("both get b's 100", || {
        a_in.all().len() >= 200 && b_in.all().len() >= 200
    })
    .await;

    // The other name hears only itself (which shows it is live).
    c.publish(b"c-0".to_vec());
    until("c gets its own message", || !c_in.all().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let expected: BTreeSet<String> = (0..100)
        .flat_map(|i| [format!("a-{i}"), format!("b-{i}")])
        .collect();
    for (who, inbox) in [("a", &a_in), ("b", &b_in)] {
        let got = inbox.all();
        assert_eq!(got.len(), 200, "{who} got duplicates or strays: {got:?}");
        assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected, "{who}");
    }
    assert_eq!(c_in.all(), vec!["c-0".to_string()]);
    delete_exchanges(&opts, &[&a, &c]).await;
}

#[tokio::test]
async fn messages_are_transient() {
    let opts = amqp_options("fanout_transient");
    let (a, _a_in) = start(&opts, "kick").await;

    // An outside queue bound to the same exchange sees how the messages are published.
    let conn = Connection::connect(&opts.url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    ch.queue_bind(
        q.name().clone(),
        a.exchange().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume(
            q.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();

    a.publish(b"probe".to_vec());
    let d = tokio::time::timeout(WAIT, consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(d.data, b"probe");
    assert_eq!(*d.properties.delivery_mode(), Some(1), "not persistent");
    conn.close(200, "done".into()).await.unwrap();
    delete_exchanges(&opts, &[&a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_receiver_s_queue_is_capped_dropping_the_oldest() {
    const SENT: usize = 12_000;
    const CAP: usize = 10_000;
    const PREFETCH: usize = 256;
    let opts = amqp_options("fanout_slow");
    let inbox = Inbox::default();
    let released = Arc::new(AtomicBool::new(false));
    let slow = {
        let push = inbox.handler();
        let released = released.clone();
        Fanout::start(opts.clone(), "stats", move |bytes| {
            // Stuck on the first message until the test lets go.
            while !released.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            push(bytes);
        })
        .await
        .unwrap()
    };

    // Published from outside with confirms, so all of them reached the queue before release.
    let conn = Connection::connect(&opts.url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut confirms = Vec::with_capacity(SENT);
    for i in 0..SENT {
        confirms.push(
            ch.basic_publish(
                slow.exchange().into(),
                "".into(),
                BasicPublishOptions::default(),
                i.to_string().as_bytes(),
                BasicProperties::default().with_delivery_mode(1),
            )
            .await
            .unwrap(),
        );
    }
    for c in confirms {
        assert!(c.await.unwrap().is_ack());
    }
    released.store(true, Ordering::SeqCst);

    let last = (SENT - 1).to_string();
    until("the newest message arrives", || {
        inbox.count(|m| m == last) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got: Vec<usize> = inbox.all().iter().map(|m| m.parse().unwrap()).collect();
    // What the client held when it got stuck, then the newest CAP the queue kept.
    assert!(
        (CAP..=CAP + PREFETCH + 1).contains(&got.len()),
        "received {}",
        got.len()
    );
    let newest: BTreeSet<usize> = (SENT - CAP..SENT).collect();
    assert!(newest.is_subset(&got.iter().copied().collect()));
    let dropped = got
        .iter()
        .filter(|&&n| (PREFETCH + 1..SENT - CAP).contains(&n))
        .count();
    assert_eq!(dropped, 0, "old messages should have been dropped");
    conn.close(200, "done".into()).await.unwrap();
    delete_exchanges(&opts, &[&slow]).await;
}

fn rabbitmqctl(args: &[&str]) -> String {
    // A command line, e.g. `sudo rabbitmqctl` when the tests do not run as root.
    let ctl = std::env::var("FORGE_TEST_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".into());
    let mut words = ctl.split_whitespace();
    let out = std::process::Command::new(words.next().unwrap_or("rabbitmqctl"))
        .args(words)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {ctl}: {e}"));
    assert!(out.status.success(), "{ctl} {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The broker's connections whose client properties mention `needle` (a fanout's connection
/// name holds its exchange), by pid (`<rabbit@host.1.2.3>`, as `close_connection` wants it).
fn connections(needle: &str) -> Vec<String> {
    // One line per connection: the pid, a tab, the client properties.
    let listed = rabbitmqctl(&["list_connections", "pid", "client_properties", "--silent"]);
    listed
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.split('\t').next().unwrap().trim().to_string())
        .collect()
}

async fn connections_of(fanout: &Fanout) -> Vec<String> {
    let exchange = fanout.exchange().to_string();
    tokio::task::spawn_blocking(move || connections(&exchange))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_fanout_reconnects_after_its_connection_is_closed() {
    let opts = amqp_options("fanout_reconnect");
    let (a, a_in) = start(&opts, "kick").await;
    let (b, b_in) = start(&opts, "kick").await;
    a.publish(b"before".to_vec());
    until("both get a message", || {
        a_in.count(|m| m == "before") == 1 && b_in.count(|m| m == "before") == 1
    })
    .await;

    // The broker closes both fanouts' connections.
    let before = connections_of(&a).await;
    assert_eq!(before.len(), 2, "{before:?}");
    for pid in before.clone() {
        tokio::task::spawn_blocking(move || {
            rabbitmqctl(&["close_connection", &pid, "fanout test: forced close"])
        })
        .await
        .unwrap();
    }

    // Messages published while a fanout is away are lost, so keep publishing from both until
    // each has heard the other (and itself) again.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut i = 0;
    let heard = |inbox: &Inbox, from: &str| inbox.count(|m| m.starts_with(from));
    while [&a_in, &b_in]
        .iter()
        .any(|inbox| heard(inbox, "after-a") == 0 || heard(inbox, "after-b") == 0)
    {
        assert!(tokio::time::Instant::now() < deadline, "no reconnection");
        a.publish(format!("after-a-{i}").into_bytes());
        b.publish(format!("after-b-{i}").into_bytes());
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Back to normal: a burst after the reconnection arrives whole.
    for n in 0..50 {
        b.publish(format!("burst-{n}").into_bytes());
    }
    until("both get the whole burst", || {
        a_in.count(|m| m.starts_with("burst-")) == 50
            && b_in.count(|m| m.starts_with("burst-")) == 50
    })
    .await;

    // Both on new connections; and a dropped fanout closes its own.
    let after = connections_of(&a).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after.iter().all(|pid| !before.contains(pid)),
        "{before:?} {after:?}"
    );
    drop(b);
    let deadline = tokio::time::Instant::now() + WAIT;
    while connections_of(&a).await.len() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dropped fanout's connection stays"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    delete_exchanges(&opts, &[&a]).await;
}
