use std::time::Duration;

use crate::helpers::{Options, eventually, field_body, install_body, spawn_with};

fn proxied() -> Options {
    Options {
        through_proxy: true,
        confirm_timeout: Duration::from_millis(1500),
        ..Options::default()
    }
}

#[tokio::test]
async fn a_nack_from_the_broker_is_a_503_never_a_200() {
    let app = crate::helpers::spawn_app().await;
    // A queue that refuses every message, bound beside the work queue: the broker nacks.
    let full = app.refuse_publishes("#").await;
    let r = app.post_signed(&install_body("777", 7)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "7");
    app.channel
        .queue_delete(full.as_str().into(), Default::default())
        .await
        .unwrap();
    // Once the broker accepts again, so does the ingress.
    assert_eq!(app.post_signed(&install_body("777", 7)).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_broker_is_not_ready_and_503() {
    let app = spawn_with(proxied()).await;
    app.proxy.as_ref().unwrap().cut();
    assert!(!app.ready().await);
    let r = app.post_signed(&install_body("888", 8)).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    app.stop().await;
}

#[tokio::test]
async fn a_broker_that_never_confirms_gets_a_503() {
    let app = spawn_with(proxied()).await;
    app.wait_ready().await;
    app.proxy.as_ref().unwrap().freeze();
    let r = app.post_signed(&install_body("999", 9)).await;
    assert_eq!(r.status(), 503, "no confirm within the timeout");
    app.proxy.as_ref().unwrap().restore();
    app.stop().await;
}

#[tokio::test]
async fn the_ingress_reconnects_by_itself_after_the_connection_is_cut() {
    let app = spawn_with(proxied()).await;
    app.wait_ready().await;
    assert_eq!(
        app.post_signed(&install_body("1001", 10)).await.status(),
        200
    );

    let proxy = app.proxy.as_ref().unwrap();
    proxy.cut();
    eventually(Duration::from_secs(10), "readyz turns 503", || async {
        (!app.ready().await).then_some(())
    })
    .await;
    assert_eq!(
        app.post_signed(&install_body("1002", 11)).await.status(),
        503
    );

    proxy.restore();
    eventually(
        Duration::from_secs(15),
        "ingress serves 200 again",
        || async {
            (app.post_signed(&install_body("1003", 12)).await.status() == 200).then_some(())
        },
    )
    .await;
    assert!(app.ready().await);
    // Exactly the deliveries answered 200 are in the queue.
    let msgs = app.drain(&app.account_update(), 2).await;
    let wabas: Vec<String> = msgs
        .iter()
        .map(|m| {
            serde_json::from_slice::<serde_json::Value>(&m.data).unwrap()["value"]["waba_info"]
                    ["waba_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
        })
        .collect();
    assert_eq!(wabas, ["1001", "1003"]);
    app.stop().await;
}

#[tokio::test]
async fn a_returned_message_fails_its_own_request_and_never_another() {
    // One confirm channel: every request shares it, which is where lapin could hand one
    // request's returned message to another's confirm.
    let app = spawn_with(Options {
        channels: 1,
        ..Options::default()
    })
    .await;
    app.wait_ready().await;
    // Without the queue behind the alternate exchange, an unconsumed field routes nowhere:
    // the broker returns it (mandatory).
    app.channel
        .queue_delete(app.topology.unrouted().as_str().into(), Default::default())
        .await
        .unwrap();
    const PAIRS: i64 = 20;
    let shared = &app;
    let requests = (0..PAIRS).map(|i| async move {
        let (routable, unroutable) = (
            install_body(&format!("5{i:03}"), i),
            field_body("messages", i),
        );
        let (routable, unroutable) = tokio::join!(
            shared.post_signed(&routable),
            shared.post_signed(&unroutable)
        );
        (routable.status(), unroutable.status())
    });
    for (i, (routable, unroutable)) in futures_util::future::join_all(requests)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            unroutable, 503,
            "pair {i}: a returned message is never a 200"
        );
        assert_eq!(routable, 200, "pair {i}: a routed message is never a 503");
    }
    // Exactly the routable ones are stored.
    assert_eq!(
        app.drain(&app.account_update(), PAIRS as usize).await.len(),
        PAIRS as usize
    );
    app.stop().await;
}
