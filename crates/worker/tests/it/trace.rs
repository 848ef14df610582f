//! One trace per change, end to end: the ingress's server and producer spans and the
//! worker's consumer span share a trace id, carried in the AMQP `traceparent` header.

use std::time::Duration;

use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SpanData;
use secrecy::SecretString;
use wa_broker::BrokerConfig;
use wa_ingress::IngressConfig;

use crate::helpers::*;

fn find(spans: &[SpanData], kind: SpanKind) -> Option<&SpanData> {
    spans.iter().find(|s| s.span_kind == kind)
}

#[tokio::test]
async fn the_worker_span_continues_the_ingress_trace() {
    let exporter = spans();
    let mut env = spawn_env().await;
    graph_ok(&env, "trace-test-business-token").await;
    env.spawn_worker().await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = IngressConfig::new(
        vec![SecretString::from(APP_SECRET.to_owned())],
        SecretString::from("verify".to_owned()),
        BrokerConfig::new(&amqp_url(), env.topology.clone()).unwrap(),
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let ingress = tokio::spawn(wa_ingress::run(listener, config, shutdown.clone()));
    let client = reqwest::Client::new();
    let body = installed("4242", "4343", 100).to_string();
    eventually(Duration::from_secs(10), "ingress ready", || {
        let client = client.clone();
        async move {
            let r = client
                .get(format!("http://{addr}/readyz"))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        }
    })
    .await;
    let r = client
        .post(format!("http://{addr}/webhooks/whatsapp"))
        .header(
            "x-hub-signature-256",
            wa_envelope::sign(APP_SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Other tests run beside this one: keep only the spans of this webhook's trace.
    let spans = eventually(
        Duration::from_secs(15),
        "producer and consumer spans",
        || async {
            let all = exporter.get_finished_spans().ok()?;
            let server = all
                .iter()
                .find(|s| s.span_kind == SpanKind::Server && s.name == "webhook")?;
            let trace = server.span_context.trace_id();
            let spans: Vec<SpanData> = all
                .iter()
                .filter(|s| s.span_context.trace_id() == trace)
                .cloned()
                .collect();
            let kinds = [SpanKind::Producer, SpanKind::Consumer];
            kinds
                .into_iter()
                .all(|k| find(&spans, k).is_some())
                .then_some(spans)
        },
    )
    .await;
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server && s.name == "webhook")
        .expect("the webhook's server span");
    let producer = find(&spans, SpanKind::Producer).unwrap();
    let consumer = find(&spans, SpanKind::Consumer).unwrap();
    assert_eq!(server.name, "webhook");
    assert!(producer.name.starts_with("publish "), "{}", producer.name);
    assert_eq!(
        producer.span_context.trace_id(),
        server.span_context.trace_id()
    );
    assert_eq!(
        consumer.span_context.trace_id(),
        server.span_context.trace_id(),
        "one trace, end to end"
    );
    assert_eq!(consumer.parent_span_id, producer.span_context.span_id());
    // The Graph call and the Redis steps are client spans of the same trace, with no secret.
    let clients: Vec<&SpanData> = spans
        .iter()
        .filter(|s| {
            s.span_kind == SpanKind::Client
                && s.span_context.trace_id() == server.span_context.trace_id()
        })
        .collect();
    assert!(
        clients.iter().any(|s| s.name.starts_with("redis ")),
        "redis spans"
    );
    assert!(
        clients
            .iter()
            .any(|s| s.name == "POST /{business_id}/system_user_access_tokens"),
        "graph spans: {:?}",
        clients.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let everything = format!("{spans:?}");
    for secret in [APP_SECRET, SYSTEM_USER_TOKEN, "trace-test-business-token"] {
        assert!(!everything.contains(secret), "a secret in the spans");
    }
    shutdown.cancel();
    ingress.await.unwrap().unwrap();
    env.stop().await;
}
