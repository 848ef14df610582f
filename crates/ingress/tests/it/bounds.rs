//! What an unauthenticated client can make the ingress hold, and the metrics that show it:
//! open connections and bytes of bodies whose signature is not checked yet are bounded, and
//! every series whose labels are known in advance is exported at 0 from the start.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{Options, eventually, install_body, spawn_app, spawn_with};

#[tokio::test]
async fn every_known_series_is_exported_at_zero_before_any_traffic() {
    let app = spawn_app().await;
    let text = app.metrics().await;
    let mut expected: Vec<String> = Vec::new();
    for (route, statuses) in wa_ingress::ROUTE_STATUSES {
        for status in *statuses {
            expected.push(format!(
                r#"wa_ingress_requests_total{{route="{route}",status="{status}"}}"#
            ));
        }
    }
    for reason in wa_ingress::SIGNATURE_FAILURE_REASONS {
        expected.push(format!(
            r#"wa_ingress_signature_failures_total{{reason="{reason}"}}"#
        ));
    }
    for reason in wa_ingress::OVERLOAD_REASONS {
        expected.push(format!(
            r#"wa_ingress_overload_refusals_total{{reason="{reason}"}}"#
        ));
    }
    // The only requests so far are the readiness probes that waited for the ingress.
    for series in &expected {
        let line = text.lines().find(|l| {
            l.strip_prefix(series.as_str())
                .is_some_and(|v| v.starts_with(' '))
        });
        let Some(line) = line else {
            panic!("{series} is not exported at start:\n{text}");
        };
        if !series.contains(r#"route="readyz""#) {
            assert_eq!(line, format!("{series} 0"), "before any traffic");
        }
    }
    assert!(text.contains("wa_ingress_unverified_bytes 0"), "{text}");
    app.stop().await;
}

/// Sends the headers of an unsigned `POST` declaring `length` bytes, and a few of them, then
/// holds the connection open without sending the rest.
async fn slow_unsigned_body(addr: &str, length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /webhooks/whatsapp HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {length}\r\n\r\n{{\"object\":"
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream
}

#[tokio::test]
async fn unverified_bodies_past_the_bound_get_503_until_they_close() {
    const BODY: usize = 64 * 1024;
    let app = spawn_with(Options {
        max_body_bytes: BODY,
        max_unverified_bytes: 3 * BODY,
        ..Options::default()
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..3 {
        slow.push(slow_unsigned_body(&addr, BODY).await);
    }
    eventually(Duration::from_secs(10), "3 bodies reserved", || async {
        (app.metric("wa_ingress_unverified_bytes").await == Some((3 * BODY) as f64)).then_some(())
    })
    .await;

    // Held up to the bound: the next delivery, even a signed one, is refused.
    let refused = app.post_signed(&install_body("4242", 1)).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "7");
    let counted = r#"wa_ingress_overload_refusals_total{reason="unverified_bytes"}"#;
    assert_eq!(app.metric(counted).await, Some(1.0));

    // Once they close, deliveries pass again.
    drop(slow);
    eventually(Duration::from_secs(10), "room again", || async {
        (app.post_signed(&install_body("4242", 1)).await.status() == 200).then_some(())
    })
    .await;
    assert_eq!(app.metric("wa_ingress_unverified_bytes").await, Some(0.0));
    app.stop().await;
}

#[tokio::test]
async fn connections_past_the_bound_are_closed_and_counted() {
    let app = spawn_with(Options {
        max_connections: 3,
        ..Options::default()
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Two idle connections, plus the test client's own kept-alive one: the bound.
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    eventually(Duration::from_secs(10), "3 connections open", || async {
        (app.metric("wa_ingress_connections").await == Some(3.0)).then_some(())
    })
    .await;

    // A fourth is closed before a byte of it is read.
    let mut extra = TcpStream::connect(&addr).await.expect("connect");
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = extra.read_to_end(&mut answer).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let counted = r#"wa_ingress_overload_refusals_total{reason="connections"}"#;
    assert_eq!(app.metric(counted).await, Some(1.0));

    // Once they close, new connections are served again.
    drop(idle);
    eventually(Duration::from_secs(10), "served again", || async {
        let client = reqwest::Client::new();
        let r = client.get(app.url("/healthz")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    app.stop().await;
}
