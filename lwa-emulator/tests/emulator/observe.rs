//! What every non-control request passes through, word for word: the request record, the
//! refusals before any handler (a body too large or too slow), and the answers of injected
//! faults. `faults.rs` tests the fault queue; these pin the exact bytes and records.

use std::time::{Duration, Instant};

use lwa_emulator::{redact, Emulator, Endpoint, Fault, RecordedRequest};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// `(name, value)` pairs as owned strings.
fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn the_record_holds_a_request_as_sent_with_its_secrets_fingerprinted() {
    let emu = start().await;
    let refresh = alice_refresh_token(&emu);
    let code = "ANcMJpTtVktKiZvfdYaV";
    let bearer = "Atza|not-a-live-token";
    let response = http()
        .post(emu.url(&format!("/auth/O2/token?trace=1&code={code}")))
        .header("user-agent", "pin/1")
        .header("x-not-recorded", "1")
        .header("cookie", "lwa-session=abc")
        .header("accept-language", "en-GB")
        .bearer_auth(bearer)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose_secret()),
            ("client_id", DEVICE),
            ("password", "hunter2"),
        ])
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);

    let fingerprinted = redact::fingerprint(refresh.expose_secret());
    let expected = RecordedRequest {
        seq: 1,
        endpoint: Some(Endpoint::Token),
        method: "POST".into(),
        path: "/auth/O2/token".into(),
        query: owned(&[("trace", "1"), ("code", &redact::fingerprint(code))]),
        content_type: Some("application/x-www-form-urlencoded".into()),
        params: owned(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &fingerprinted),
            ("client_id", DEVICE),
            ("password", "[redacted]"),
        ]),
        // The recorded headers in their fixed order, not the order sent.
        headers: owned(&[
            (
                "authorization",
                &format!("Bearer {}", redact::fingerprint(bearer)),
            ),
            ("accept-language", "en-GB"),
            ("user-agent", "pin/1"),
            ("cookie", &redact::fingerprint("lwa-session=abc")),
        ]),
        status: Some(200),
        fault: None,
    };
    assert_eq!(emu.requests(), vec![expected]);
}

#[tokio::test]
async fn unreadable_bodies_reach_the_handler_and_pages_are_recorded_without_an_endpoint() {
    let emu = start().await;
    emu.inject_fault(Endpoint::Token, Fault::status(500), 1);
    let not_json = http()
        .post(emu.url("/auth/o2/tokeninfo"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("an answer");
    let nowhere = status_of(http().get(emu.url("/nowhere?x=1"))).await;
    assert_eq!(nowhere, StatusCode::NOT_FOUND);

    let records = emu.requests();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].endpoint, Some(Endpoint::Tokeninfo));
    assert_eq!(records[0].content_type.as_deref(), Some("application/json"));
    assert!(records[0].params.is_empty(), "{records:?}");
    assert_eq!(records[0].status, Some(not_json.status().as_u16()));
    assert_eq!(records[1].endpoint, None);
    assert_eq!(records[1].query, owned(&[("x", "1")]));
    assert_eq!(
        (records[1].status, records[1].fault.as_deref()),
        (Some(404), None)
    );
}

/// The JSON error LWA's endpoints answer with.
fn lwa_error(error: &str, description: &str) -> String {
    format!(r#"{{"error_description":"{description}","error":"{error}"}}"#)
}

#[tokio::test]
async fn a_body_too_large_is_refused_before_it_is_recorded() {
    let emu = start().await;
    let response = http()
        .post(emu.url("/auth/o2/token"))
        .body(vec![b'x'; 64 * 1024 + 1])
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        header(&response, "content-type"),
        "application/json;charset=UTF-8"
    );
    assert_eq!(
        (
            header(&response, "cache-control"),
            header(&response, "pragma")
        ),
        ("no-store", "no-cache")
    );
    let description = "The request body is larger than 65536 bytes";
    assert_eq!(
        response.text().await.expect("a body"),
        lwa_error("invalid_request", description)
    );
    assert!(emu.requests().is_empty());
}

/// A body that does not arrive within the configured deadline (here 1 s; 10 s by default) is
/// answered `408` and not recorded. Takes ~1 s.
#[tokio::test]
async fn a_body_that_does_not_arrive_is_cut_off_at_the_configured_deadline() {
    let deadline = Duration::from_secs(1);
    let emu = start_with(Emulator::builder().body_timeout(deadline)).await;
    let mut stream = TcpStream::connect(emu.local_addr()).await.expect("connect");
    let head = "POST /auth/o2/token HTTP/1.1\r\nHost: emulator\r\nContent-Length: 10\r\n\r\nabc";
    stream.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        // Until the body of the answer is in (the connection stays open).
        while !String::from_utf8_lossy(&answer).ends_with('}') {
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 20 s");
    // Not before the deadline, and by the configured one, not the 10 s default.
    let took = started.elapsed();
    assert!(
        took >= deadline - Duration::from_millis(100) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    let description = "The request body did not arrive in time";
    assert!(
        answer.ends_with(&lwa_error("invalid_request", description)),
        "{answer}"
    );
    assert!(emu.requests().is_empty());
}

#[tokio::test]
async fn fault_answers_word_for_word_and_what_the_record_says_of_them() {
    let emu = start().await;
    let raw = Fault::Status {
        status: 99,
        retry_after: None,
        body: Some("raw body".into()),
    };
    let throttled = lwa_error("too_many_requests", "The request was throttled");
    let failed = lwa_error("servererror", "The server encountered an internal error");
    let truncated = r#"{"access_token":"Atza|IwEBIA","token_type":"bea"#.to_owned();
    // (fault, status, Retry-After, body); None: the handler answers.
    let cases = [
        (Fault::status(500), 500, "", Some(failed)),
        (
            Fault::too_many_requests(1),
            429,
            "1",
            Some(throttled.clone()),
        ),
        (Fault::status(400), 400, "", Some(throttled)),
        (raw, 503, "", Some("raw body".to_owned())),
        (Fault::MalformedJson, 200, "", Some(truncated)),
        (Fault::Delay { millis: 50 }, 403, "", None),
    ];
    for (fault, status, retry_after, body) in &cases {
        emu.inject_fault(Endpoint::Ping, fault.clone(), 1);
        let response = http()
            .get(emu.url("/ping"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status().as_u16(), *status, "{fault:?}");
        assert_eq!(header(&response, "retry-after"), *retry_after, "{fault:?}");
        if let Some(body) = body {
            let content_type = header(&response, "content-type").to_owned();
            assert_eq!(content_type, "application/json;charset=UTF-8", "{fault:?}");
            assert_eq!(&response.text().await.expect("a body"), body);
        }
    }
    let recorded: Vec<(Option<u16>, Option<String>)> = emu
        .requests()
        .into_iter()
        .map(|r| (r.status, r.fault))
        .collect();
    let said = |status: u16, fault: &str| (Some(status), Some(fault.to_owned()));
    assert_eq!(
        recorded,
        vec![
            said(500, "status 500"),
            said(429, "status 429"),
            said(400, "status 400"),
            said(503, "status 99"),
            said(200, "malformed_json"),
            said(403, "delay 50 ms"),
        ]
    );
}
