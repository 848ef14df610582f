use std::collections::HashMap;

use hmac::{KeyInit, Mac};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::*;

const TOKEN: &str = "EAAGm0PX4ZCpsBA-business-token-for-tests";

#[tokio::test]
async fn install_fetches_the_token_once_with_the_exact_request_and_subscribes() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.deliver(&installed("495709166956424", "942647313864044", 1763900000))
        .await;

    let t = env
        .wait_tenant(
            "495709166956424",
            "installed, token active, subscribed",
            |t| t.token.status.is_some_and(|s| s.as_str() == "active") && t.subscribed,
        )
        .await;
    assert_eq!(t.status.as_str(), "installed");
    assert_eq!(t.owner_business_id.unwrap(), "942647313864044");
    assert_eq!(t.installed_at, Some(1763900000));
    assert_eq!(t.last_event_time, 1763900000);

    let fetches = env.graph_calls("/system_user_access_tokens").await;
    assert_eq!(fetches.len(), 1);
    let req = &fetches[0];
    assert_eq!(
        req.url.path(),
        "/v22.0/942647313864044/system_user_access_tokens"
    );
    let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(SYSTEM_USER_TOKEN.as_bytes());
    let proof = hex::encode(mac.finalize().into_bytes());
    assert_eq!(
        bearer(req).as_deref(),
        Some(SYSTEM_USER_TOKEN),
        "the system user token travels in the header"
    );
    assert!(!q.contains_key("access_token"));
    assert_eq!(q.get("appsecret_proof"), Some(&proof));
    assert_eq!(
        q.get("system_user_id").map(String::as_str),
        Some(SYSTEM_USER_ID)
    );
    assert_eq!(q.get("fetch_only").map(String::as_str), Some("true"));

    let subs = env.graph_calls("/subscribed_apps").await;
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].url.path(), "/v22.0/495709166956424/subscribed_apps");
    assert_eq!(
        bearer(&subs[0]).as_deref(),
        Some(TOKEN),
        "subscribed with the business token"
    );

    // Decrypted through the store, never readable in Redis itself.
    let stored = env
        .vault
        .token(&waba_id("495709166956424"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.expose_secret(), TOKEN);
    let dump = env.redis_dump().await;
    assert!(!dump.is_empty());
    assert!(
        !dump.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "token in plaintext in Redis"
    );
    env.stop().await;
}

#[tokio::test]
async fn the_same_install_five_times_to_two_workers_and_rebatched_fetches_once() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.spawn_worker().await;
    let install = installed("100000000000077", "200000000000077", 1763900100);
    let mut batch = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "555", "time": 1763900050, "changes": [{"field": "account_update", "value": {"event": "PARTNER_ADDED"}}]}
    ]});
    batch["entry"]
        .as_array_mut()
        .unwrap()
        .push(install["entry"][0].clone());
    let deliveries = (0..5).map(|_| env.deliver(&install));
    futures_util::future::join_all(deliveries).await;
    env.deliver(&batch).await;

    env.wait_tenant("100000000000077", "active", |t| {
        t.token.status.is_some_and(|s| s.as_str() == "active") && t.subscribed
    })
    .await;
    // Every copy is processed (done, duplicate, or bounced while another worker held it).
    eventually(
        std::time::Duration::from_secs(15),
        "all six copies settled",
        || async {
            let mut total = 0.0;
            for w in 0..2 {
                for line in env.metrics(w).await.lines() {
                    if line.starts_with("wa_worker_events_total{")
                        && line.contains("PARTNER_APP_INSTALLED")
                        && line.contains("outcome=\"done\"")
                    {
                        total += line.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
                    }
                }
            }
            (total >= 6.0).then_some(())
        },
    )
    .await;
    assert_eq!(env.graph_calls("/system_user_access_tokens").await.len(), 1);
    assert_eq!(env.graph_calls("/subscribed_apps").await.len(), 1);
    env.stop().await;
}

#[tokio::test]
async fn other_events_update_the_account_section_and_unknown_ones_are_kept() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.deliver(&installed("300", "400", 100)).await;
    env.deliver(&webhook("300", 110, json!({"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE", "waba_ban_date": "2026-12-01"}}))).await;
    env.deliver(&webhook(
        "300",
        111,
        json!({"event": "SOMETHING_META_ADDS_LATER", "x": 1}),
    ))
    .await;
    // The three may be processed in any order; each lands in its own part of the record.
    let t = env
        .wait_tenant("300", "installed and ban recorded", |t| {
            t.account.ban_state.is_some() && t.status.as_str() == "installed"
        })
        .await;
    assert_eq!(t.account.ban_state.as_deref(), Some("SCHEDULE_FOR_DISABLE"));
    assert_eq!(t.status.as_str(), "installed");
    eventually(
        std::time::Duration::from_secs(10),
        "unknown event kept",
        || async {
            let events = env.store.account_events(&waba_id("300")).await.unwrap();
            events
                .iter()
                .any(|e| e.event == "SOMETHING_META_ADDS_LATER")
                .then_some(())
        },
    )
    .await;
    env.stop().await;
}

/// The `Authorization: Bearer` token of a received request.
fn bearer(req: &wiremock::Request) -> Option<String> {
    req.headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}
