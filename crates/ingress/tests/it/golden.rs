//! The published message format, byte for byte: every change of the golden sources
//! (`tests/golden/messages.jsonl`, checked against the envelope crate by its own golden test)
//! arrives on the broker with its golden routing key, `message_id` and body (its `received_at`
//! aside, which is the delivery's), and the documented properties.

use std::collections::BTreeSet;

use lapin::{
    options::{QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use serde_json::Value;

use crate::helpers::spawn_app;

fn read(path: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The golden lines, grouped by source in file order.
fn golden() -> Vec<(String, Vec<Value>)> {
    let mut sources: Vec<(String, Vec<Value>)> = Vec::new();
    for line in String::from_utf8(read("golden/messages.jsonl"))
        .unwrap()
        .lines()
    {
        let v: Value = serde_json::from_str(line).unwrap();
        let source = v["source"].as_str().unwrap().to_owned();
        match sources.last_mut() {
            Some((s, lines)) if *s == source => lines.push(v),
            _ => sources.push((source, vec![v])),
        }
    }
    sources
}

/// `body` with its `received_at` (the last member, as the golden bodies have it) taken off,
/// and that `received_at`.
fn split_received_at(body: &str) -> (&str, i64) {
    let at = body.rfind(",\"received_at\":").unwrap();
    let stamp = body[at + ",\"received_at\":".len()..].trim_end_matches('}');
    (&body[..at], stamp.parse().unwrap())
}

#[tokio::test]
async fn every_golden_change_is_published_with_its_golden_bytes_and_properties() {
    let app = spawn_app().await;
    // A queue of the test's own that sees every message the ingress publishes, in order.
    let queue = format!("{}.golden", app.topology.prefix());
    app.channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    app.channel
        .queue_bind(
            queue.as_str().into(),
            app.topology.webhooks_exchange().as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    for (source, lines) in golden() {
        assert_eq!(
            app.post_signed(&read(&source)).await.status(),
            200,
            "{source}"
        );
        let got = app.drain(&queue, lines.len()).await;
        assert_eq!(got.len(), lines.len(), "{source}");
        for (m, want) in got.iter().zip(&lines) {
            let what = format!("{source} change {}", want["index"]);
            assert_eq!(m.routing_key.as_str(), want["routing_key"], "{what}");
            let id = m.properties.message_id().as_ref().map(|s| s.to_string());
            assert_eq!(id.as_deref(), want["message_id"].as_str(), "{what}");
            let body = std::str::from_utf8(&m.data).unwrap();
            let (body, received_at) = split_received_at(body);
            let (want_body, _) = split_received_at(want["body"].as_str().unwrap());
            assert_eq!(body, want_body, "{what}");
            let p = &m.properties;
            assert_eq!(*p.delivery_mode(), Some(2), "{what}: persistent");
            assert_eq!(
                p.content_type().as_ref().map(|s| s.to_string()).as_deref(),
                Some("application/json")
            );
            assert_eq!(
                p.app_id().as_ref().map(|s| s.to_string()).as_deref(),
                Some("wa-onboard")
            );
            assert_eq!(*p.timestamp(), Some(received_at.unsigned_abs()), "{what}");
            let headers = p.headers().clone().unwrap_or_default();
            let names: BTreeSet<String> = headers.inner().keys().map(|k| k.to_string()).collect();
            assert_eq!(names, BTreeSet::from(["traceparent".to_owned()]), "{what}");
            let Some(AMQPValue::LongString(tp)) = headers.inner().get("traceparent") else {
                panic!("{what}: traceparent is not a string");
            };
            assert!(wa_telemetry::trace_id(&tp.to_string()).is_some(), "{tp}");
        }
    }
    app.stop().await;
}
