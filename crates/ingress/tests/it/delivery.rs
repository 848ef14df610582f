use std::collections::HashSet;

use lapin::types::AMQPValue;
use serde_json::{Value, json};

use crate::helpers::{Options, SECRET, fixture, install_body, spawn_app, spawn_with};

fn header<'a>(d: &'a lapin::message::Delivery, name: &str) -> Option<&'a AMQPValue> {
    d.properties.headers().as_ref()?.inner().get(name)
}

#[tokio::test]
async fn a_signed_delivery_becomes_persistent_messages_with_the_documented_body() {
    let app = spawn_app().await;
    let body = fixture("partner_app_installed.json");
    let r = app.post_signed(&body).await;
    assert_eq!(r.status(), 200);

    let msgs = app.drain(&app.account_update(), 1).await;
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(
        m.routing_key.as_str(),
        "whatsapp_business_account.account_update"
    );
    assert_eq!(*m.properties.delivery_mode(), Some(2), "persistent");
    let json: Value = serde_json::from_slice(&m.data).unwrap();
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["object"], "whatsapp_business_account");
    assert_eq!(json["entry_id"], "2949482758682047");
    assert_eq!(json["entry_time"], 1763900000);
    assert_eq!(json["field"], "account_update");
    assert_eq!(json["value"], sent["entry"][0]["changes"][0]["value"]);
    assert!(json["received_at"].as_i64().unwrap() > 1_700_000_000);
    let key = wa_envelope::dedupe_key(
        "whatsapp_business_account",
        "2949482758682047",
        Some(1763900000),
        "account_update",
        &sent["entry"][0]["changes"][0]["value"],
    );
    assert_eq!(json["id"], key);
    assert_eq!(
        m.properties.message_id().as_ref().map(|s| s.as_str()),
        Some(key.as_str())
    );
    let Some(AMQPValue::LongString(tp)) = header(m, "traceparent") else {
        panic!("traceparent header missing")
    };
    assert!(wa_telemetry::trace_id(&tp.to_string()).is_some(), "{tp}");
    app.stop().await;
}

#[tokio::test]
async fn bad_signatures_are_401_and_publish_nothing() {
    let app = spawn_app().await;
    let body = install_body("111", 1);
    let url = app.url("/webhooks/whatsapp");
    let good = wa_envelope::sign(SECRET.as_bytes(), &body);
    let cases: Vec<Option<String>> = vec![
        None,
        Some("sha1=abc".into()),
        Some("sha256=nothex".into()),
        Some(wa_envelope::sign(b"another-secret", &body)),
        Some(good[..good.len() - 1].to_string() + "0"),
    ];
    for case in &cases {
        let mut req = app.client.post(&url).body(body.clone());
        if let Some(h) = case {
            req = req.header("x-hub-signature-256", h);
        }
        assert_eq!(req.send().await.unwrap().status(), 401, "{case:?}");
    }
    // Then a valid one: it is the only message in the queue.
    assert_eq!(app.post_signed(&install_body("222", 2)).await.status(), 200);
    let msgs = app.drain(&app.account_update(), 1).await;
    assert_eq!(msgs.len(), 1);
    let json: Value = serde_json::from_slice(&msgs[0].data).unwrap();
    assert_eq!(json["value"]["waba_info"]["waba_id"], "222");
    app.stop().await;
}

#[tokio::test]
async fn any_rotated_secret_is_accepted() {
    let app = spawn_with(Options {
        secrets: vec!["old-secret", "new-secret"],
        ..Options::default()
    })
    .await;
    let body = install_body("333", 3);
    assert_eq!(
        app.post_signed_with("old-secret", &body).await.status(),
        200
    );
    assert_eq!(
        app.post_signed_with("new-secret", &body).await.status(),
        200
    );
    assert_eq!(app.post_signed_with(SECRET, &body).await.status(), 401);
    assert_eq!(app.drain(&app.account_update(), 2).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn the_signature_covers_the_raw_bytes_not_reserialised_json() {
    let app = spawn_app().await;
    // Non-ASCII, an escaped slash, an escaped unicode character and an `@`, as Meta writes them.
    let raw = r#"{"object":"whatsapp_business_account","entry":[{"id":"42","time":5,"changes":[{"field":"account_update","value":{"event":"PARTNER_ADDED","note":"Zoë @ café \/ caf\u00e9"}}]}]}"#;
    let reserialised = serde_json::to_vec(&serde_json::from_str::<Value>(raw).unwrap()).unwrap();
    assert_ne!(raw.as_bytes(), &reserialised[..]);
    // Signed over what was sent: accepted.
    assert_eq!(app.post_signed(raw.as_bytes()).await.status(), 200);
    // Signed over a re-serialisation of the same JSON, but the original bytes sent: refused.
    let r = app
        .client
        .post(app.url("/webhooks/whatsapp"))
        .header(
            "x-hub-signature-256",
            wa_envelope::sign(SECRET.as_bytes(), &reserialised),
        )
        .body(raw.as_bytes().to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let msgs = app.drain(&app.account_update(), 1).await;
    let json: Value = serde_json::from_slice(&msgs[0].data).unwrap();
    assert_eq!(json["value"]["note"], "Zoë @ café / café");
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_body_is_413_whether_announced_or_streamed() {
    let app = spawn_with(Options {
        max_body_bytes: 2048,
        ..Options::default()
    })
    .await;
    let mut big = install_body("444", 4);
    big.extend(std::iter::repeat_n(b' ', 4096));
    assert_eq!(app.post_signed(&big).await.status(), 413);
    // Chunked, with no Content-Length to refuse early.
    let signature = wa_envelope::sign(SECRET.as_bytes(), &big);
    assert_eq!(app.post_chunked(&signature, &big).await, 413);
    // A body just under the limit still goes through, and is the only message.
    assert_eq!(app.post_signed(&install_body("555", 5)).await.status(), 200);
    assert_eq!(app.drain(&app.account_update(), 1).await.len(), 1);
    assert_eq!(app.depth(&app.account_update()).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn signed_but_not_an_envelope_is_400_and_publishes_nothing() {
    let app = spawn_app().await;
    for body in [
        &b"not json"[..],
        b"[1,2]",
        br#"{"object":"whatsapp_business_account"}"#,
        br#"{"entry":[]}"#,
        br#"{"object":"whatsapp_business_account","entry":{}}"#,
        br#"{"object":"a.b","entry":[]}"#,
    ] {
        let r = app.post_signed(body).await;
        assert_eq!(r.status(), 400, "{}", String::from_utf8_lossy(body));
    }
    assert_eq!(app.post_signed(&install_body("666", 6)).await.status(), 200);
    assert_eq!(app.drain(&app.account_update(), 1).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_thousand_change_batch_is_a_thousand_messages_with_distinct_keys() {
    let app = spawn_app().await;
    let entries: Vec<Value> = (0..100)
        .map(|e| {
            json!({"id": format!("{}", 1000 + e), "time": 1763900000 + e, "changes": (0..10).map(|c| json!({
                "field": "account_update",
                "value": {"event": "PARTNER_APP_INSTALLED", "waba_info": {"waba_id": format!("{e}-{c}")}}
            })).collect::<Vec<_>>()})
        })
        .collect();
    let body =
        serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": entries}))
            .unwrap();
    assert_eq!(app.post_signed(&body).await.status(), 200);
    let msgs = app.drain(&app.account_update(), 1000).await;
    assert_eq!(msgs.len(), 1000);
    let keys: HashSet<String> = msgs
        .iter()
        .map(|m| m.properties.message_id().as_ref().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 1000);
    app.stop().await;
}

#[tokio::test]
async fn the_same_change_rebatched_keeps_its_key() {
    let app = spawn_app().await;
    let alone = fixture("partner_app_installed.json");
    let mut batch: Value = serde_json::from_slice(&fixture("batch_mixed.json")).unwrap();
    let original: Value = serde_json::from_slice(&alone).unwrap();
    // Meta re-delivers the install inside another batch, after other entries.
    batch["entry"]
        .as_array_mut()
        .unwrap()
        .push(original["entry"][0].clone());
    assert_eq!(app.post_signed(&alone).await.status(), 200);
    assert_eq!(
        app.post_signed(&serde_json::to_vec(&batch).unwrap())
            .await
            .status(),
        200
    );
    let msgs = app.drain(&app.account_update(), 4).await;
    assert_eq!(msgs.len(), 4, "1 + 3 account_update changes");
    let ids: Vec<String> = msgs
        .iter()
        .map(|m| m.properties.message_id().as_ref().unwrap().to_string())
        .collect();
    assert_eq!(ids[0], ids[3], "the re-batched install has the same key");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn a_field_no_one_consumes_lands_in_unrouted() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_signed(&fixture("batch_mixed.json")).await.status(),
        200
    );
    let unrouted = app.drain(&app.topology.unrouted(), 1).await;
    assert_eq!(unrouted.len(), 1);
    assert_eq!(
        unrouted[0].routing_key.as_str(),
        "whatsapp_business_account.messages"
    );
    assert_eq!(app.drain(&app.account_update(), 2).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn one_odd_entry_does_not_sink_the_batch() {
    let app = spawn_app().await;
    let mut batch: Value = serde_json::from_slice(&install_body("1212", 12)).unwrap();
    batch["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "x", "time": "yesterday", "changes": []}));
    assert_eq!(
        app.post_signed(&serde_json::to_vec(&batch).unwrap())
            .await
            .status(),
        200
    );
    let work = app.drain(&app.account_update(), 1).await;
    assert_eq!(work.len(), 1);
    let kept = app.drain(&app.topology.unrouted(), 1).await;
    let json: Value = serde_json::from_slice(&kept[0].data).unwrap();
    assert_eq!(
        kept[0].routing_key.as_str(),
        "whatsapp_business_account.malformed"
    );
    assert_eq!(json["value"]["reason"], "entry `time` is not an integer");
    assert_eq!(json["value"]["raw"]["time"], "yesterday");
    app.stop().await;
}
