//! `send FILE`: the file's bytes, unchanged, with the `X-Hub-Signature-256` Meta would put on
//! them, POSTed to a one-request HTTP listener that records what arrived.

use std::collections::HashMap;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

use crate::helpers::*;

/// What the listener received.
#[derive(Debug)]
struct Received {
    request_line: String,
    /// Header names lowercased.
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Accepts one HTTP/1.1 request on 127.0.0.1:0 and answers `status` with body `reply`.
/// Returns the URL to send to and the task yielding what was received.
async fn one_request(status: &'static str, reply: &'static str) -> (String, JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "http://{}/webhooks/whatsapp",
        listener.local_addr().expect("addr")
    );
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0; 8192];
            let n = stream.read(&mut chunk).await.expect("read head");
            assert!(n > 0, "connection closed before the headers ended");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let request_line = lines.next().expect("request line").to_owned();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .expect("content-length")
            .parse()
            .expect("numeric content-length");
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let mut chunk = [0; 8192];
            let n = stream.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "connection closed before the body ended");
            body.extend_from_slice(&chunk[..n]);
        }
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{reply}",
            reply.len()
        );
        stream
            .write_all(response.as_bytes())
            .await
            .expect("write response");
        stream.shutdown().await.ok();
        Received {
            request_line,
            headers,
            body,
        }
    });
    (url, task)
}

#[tokio::test]
async fn signs_the_raw_bytes_as_meta_does() {
    // The well-known HMAC-SHA256 example: key `key` over the pangram.
    let file = TempFile::new("The quick brown fox jumps over the lazy dog");
    let (url, received) = one_request("200 OK", "").await;

    let out = run(wa_onboard()
        .arg("send")
        .arg(file.path())
        .args(["--url", &url])
        .env("WA_APP_SECRET", "key,an-older-secret"))
    .await;

    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("200"), "{}", out.stdout);
    let got = received.await.expect("listener");
    assert_eq!(got.request_line, "POST /webhooks/whatsapp HTTP/1.1");
    assert_eq!(
        got.headers.get("x-hub-signature-256").map(String::as_str),
        Some("sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
    );
    assert_eq!(
        got.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(got.body, b"The quick brown fox jumps over the lazy dog");
}

#[tokio::test]
async fn sends_the_file_unchanged() {
    // Non-ASCII, `@`, an escaped character and odd spacing: re-serialised JSON would differ.
    let json = "{\"object\": \"whatsapp_business_account\",\n  \"entry\":[{\"id\":\"1\",\
                \"changes\":[{\"field\":\"account_update\",\"value\":{\"note\":\"Café @ Zürich \\u00e9 ✓\"}}]}]}\n";
    let file = TempFile::new(json);
    let (url, received) = one_request("200 OK", "").await;

    let out = run(wa_onboard()
        .arg("send")
        .arg(file.path())
        .env("WA_SEND_URL", &url)
        .env("WA_APP_SECRET", "test-secret"))
    .await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let got = received.await.expect("listener");
    assert_eq!(got.body, json.as_bytes());
    let want = wa_envelope::sign(b"test-secret", json.as_bytes());
    assert_eq!(got.headers.get("x-hub-signature-256"), Some(&want));
}

#[tokio::test]
async fn a_refused_delivery_exits_non_zero_with_the_answer() {
    let file = TempFile::new("{}");
    let (url, received) = one_request("401 Unauthorized", "bad signature").await;

    let out = run(wa_onboard()
        .arg("send")
        .arg(file.path())
        .args(["--url", &url])
        .env("WA_APP_SECRET", "test-secret"))
    .await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "401 bad signature\n");
    received.await.expect("listener");
}

#[tokio::test]
async fn a_missing_file_or_secret_is_an_error_naming_it() {
    let out = run(wa_onboard()
        .args(["send", "/nonexistent/wa-onboard-payload.json"])
        .env("WA_APP_SECRET", "test-secret"))
    .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("/nonexistent/wa-onboard-payload.json"),
        "{}",
        out.stderr
    );

    let file = TempFile::new("{}");
    let out = run(wa_onboard().arg("send").arg(file.path())).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("WA_APP_SECRET"), "{}", out.stderr);
}
