use crate::helpers::{VERIFY_TOKEN, spawn_app};

#[tokio::test]
async fn handshake_echoes_the_challenge_when_the_token_matches() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url(&format!(
            "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(r.text().await.unwrap(), "1158201444");
    app.stop().await;
}

#[tokio::test]
async fn handshake_is_refused_for_a_wrong_token_or_mode() {
    let app = spawn_app().await;
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1".to_string(),
        format!("hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"),
        format!("hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"),
        "hub.mode=subscribe&hub.challenge=1".to_string(),
        format!("hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}x&hub.challenge=1"),
    ] {
        let r = app
            .client
            .get(app.url(&format!("/webhooks/whatsapp?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{query}");
        assert!(
            !r.text().await.unwrap().contains('1'),
            "{query} must not echo"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // One refused delivery, so the counters have something to show.
    let r = app
        .client
        .post(app.url("/webhooks/whatsapp"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    for needle in [
        r#"wa_ingress_requests_total{route="webhook",status="401"} 1"#,
        r#"wa_ingress_signature_failures_total{reason="missing"} 1"#,
        "wa_ingress_broker_ready 1",
        "wa_ingress_publish_confirm_seconds",
        "wa_build_info{version=",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_refused() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        app.client
            .delete(app.url("/webhooks/whatsapp"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        app.client
            .post(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    app.stop().await;
}
