//! The listener as a server on a real socket: slow headers are cut off, idle keep-alive
//! connections closed, connections over the cap answered 503 without being read, requests
//! over the in-flight cap shed with 503 + Retry-After while `/healthz` still answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::TestApp;
use forge_web::listen::{ConnLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(
    app: &TestApp,
    limits: ConnLimits,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = forge_web::app::build(app.forge.clone()).unwrap();
    tokio::spawn(serve(listener, router, limits, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Reads until the server closes the connection (or `limit` passes); returns what came.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut buf = Vec::new();
    match tokio::time::timeout(limit, s.read_to_end(&mut buf)).await {
        Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        Err(_) => None,
    }
}

async fn get(addr: SocketAddr, path: &str) -> (String, Duration) {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let text = read_to_close(&mut s, Duration::from_secs(10))
        .await
        .unwrap();
    (text, t.elapsed())
}

#[tokio::test]
async fn slow_idle_and_excess_connections_are_bounded() {
    let app = TestApp::new("listen").await;
    let limits = ConnLimits {
        max_connections: 8,
        header_timeout: Duration::from_millis(800),
        body_timeout: Duration::from_millis(800),
    };
    let (addr, _stop) = start(&app, limits).await;
    let (res, _) = get(addr, "/healthz").await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");

    // Slowloris: headers a byte at a time never finish in time; the server hangs up.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    for b in b"GET / HTTP/1.1\r\nHost: x\r\n" {
        if slow.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = read_to_close(&mut slow, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "slow client still connected");
    assert!(started.elapsed() < Duration::from_secs(6));

    // An idle keep-alive connection is closed too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert!(
        read_to_close(&mut idle, Duration::from_secs(5))
            .await
            .is_some()
    );

    // Fill every slot with idle connections: the next one is told 503 and closed.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let answer = read_to_close(&mut extra, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"));
    // Once they time out, the slots are free again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (res, _) = get(addr, "/healthz").await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
}

#[tokio::test]
async fn requests_over_the_in_flight_cap_are_shed_but_health_answers() {
    let app = TestApp::with_config("shed", |c| c.max_requests = 2).await;
    let limits = ConnLimits {
        max_connections: 100,
        header_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(5),
    };
    let (addr, _stop) = start(&app, limits).await;
    // Two requests whose bodies trickle in hold both request slots.
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nCookie: forge_csrf=0123456789abcdef0123456789abcdef0123\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=a",
        )
        .await
        .unwrap();
        holders.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (res, _) = get(addr, "/").await;
    assert!(res.starts_with("HTTP/1.1 503"), "{res}");
    assert!(res.to_ascii_lowercase().contains("retry-after"));
    let (res, took) = get(addr, "/healthz").await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(took < Duration::from_millis(500), "{took:?}");
    drop(holders);
}
