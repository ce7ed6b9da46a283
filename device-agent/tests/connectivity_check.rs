//! The connectivity check's failure classes against local servers (loopback only): no route
//! (refused), timeout (accepts, never answers; the whole check stays bounded), captive portal
//! (a redirect to another host), and a pass.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use device_agent::lwa_client::LwaClient;
use device_agent::network::ConnectivityChecker;
use shared_protocol::lwa::LwaEndpoints;
use shared_protocol::message::ConnectivityFailure;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn checker(base: &str, step: Duration) -> ConnectivityChecker {
    let lwa = LwaClient::new(LwaEndpoints::from_base(base).unwrap(), None).unwrap();
    ConnectivityChecker::new(lwa, step)
}

/// A server answering every request with `answer`, or never answering when `None`.
async fn server(answer: Option<&'static str>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = l.accept().await {
            match answer {
                Some(a) => {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 2048];
                        let _ = s.read(&mut buf).await;
                        let _ = s.write_all(a.as_bytes()).await;
                    });
                }
                None => held.push(s),
            }
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn failure_classes() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let step = Duration::from_millis(400);
    let r = checker(&closed, step).run().await;
    assert_eq!(
        (r.ok, r.failure),
        (false, Some(ConnectivityFailure::NoRoute))
    );
    assert_eq!(r.host.as_deref(), Some("127.0.0.1"));

    let silent = server(None).await;
    let t0 = Instant::now();
    let r = checker(&silent, step).run().await;
    assert_eq!(r.failure, Some(ConnectivityFailure::Timeout));
    assert!(t0.elapsed() < step * 3, "bounded: {:?}", t0.elapsed());

    let portal = server(Some(
        "HTTP/1.1 302 Found\r\nLocation: http://portal.example/login\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ))
    .await;
    let r = checker(&portal, step).run().await;
    assert_eq!(r.failure, Some(ConnectivityFailure::CaptivePortal));

    let fine = server(Some(
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ))
    .await;
    let r = checker(&fine, step).run().await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.failure, None);
}
