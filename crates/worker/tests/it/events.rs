use std::{collections::HashSet, time::Duration};

use serde_json::{Value, json};
use wa_broker::lapin::{
    options::ExchangeDeleteOptions,
    types::{AMQPValue, FieldTable, LongString},
};
use wa_testkit::{Tap, Tapped};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path_regex},
};

use crate::{event_schema::assert_documented, helpers::*};

pub(crate) const TOKEN: &str = "EAAGm0PX4ZCpsBA-business-token-tenant-events";
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// Delivers an account event about a WABA of its own and waits for its tenant event: every
/// change acked before was confirmed before it, so whatever those published is in. Returns
/// all received so far.
pub(crate) async fn through_sentinel(env: &Env, tap: &Tap) -> Vec<Tapped> {
    const SENTINEL: &str = "77";
    env.deliver(&webhook(SENTINEL, 1, json!({"event": "PARTNER_ADDED"})))
        .await;
    tap.wait(WAIT, "the sentinel's event", |r| {
        r.iter().any(|m| m.json()["waba_id"] == SENTINEL)
    })
    .await
}

pub(crate) fn kind(m: &Tapped) -> String {
    m.json()["type"].as_str().expect("a type").to_owned()
}

pub(crate) fn kinds(received: &[Tapped]) -> Vec<String> {
    received.iter().map(kind).collect()
}

/// A worker with Graph answering every call, and a tap bound before it starts.
pub(crate) async fn started() -> (Env, Tap) {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    let tap = tap(&env).await;
    env.spawn_worker().await;
    (env, tap)
}

/// How many events of `type` were received.
fn count(received: &[Tapped], r#type: &str) -> usize {
    received.iter().filter(|m| kind(m) == r#type).count()
}

/// Waits until `tap` received at least one event of each of `types`.
async fn wait_types(tap: &Tap, types: &[&str]) -> Vec<Tapped> {
    tap.wait(WAIT, &format!("events {types:?}"), |r| {
        let seen = kinds(r);
        types.iter().all(|t| seen.iter().any(|s| s == t))
    })
    .await
}

fn first<'a>(received: &'a [Tapped], r#type: &str) -> &'a Tapped {
    received
        .iter()
        .find(|m| kind(m) == r#type)
        .unwrap_or_else(|| panic!("no {type} in {:?}", kinds(received)))
}

/// What every event must be: routed by its type, persistent JSON, `message_id` = `id`, the
/// record inside, and no token or secret anywhere.
fn assert_well_formed(m: &Tapped, waba: &str) {
    let body = m.json();
    assert_documented(&body);
    assert_eq!(m.routing_key, body["type"].as_str().unwrap());
    assert_eq!(m.message_id.as_deref(), body["id"].as_str());
    assert_eq!(body["id"].as_str().unwrap().len(), 64);
    assert_eq!(m.content_type.as_deref(), Some("application/json"));
    assert_eq!(m.delivery_mode, Some(2), "persistent");
    assert_eq!(body["waba_id"], waba);
    assert_eq!(body["tenant"]["waba_id"], waba);
    assert!(body["occurred_at"].is_i64() && body["emitted_at"].is_i64());
    for secret in [TOKEN, SYSTEM_USER_TOKEN, APP_SECRET] {
        assert!(!m.contains(secret), "a secret in {}: {m:?}", m.routing_key);
    }
    assert!(
        body["tenant"]["token"].get("access_token").is_none(),
        "the record's token section holds no token"
    );
}

#[tokio::test]
async fn an_install_publishes_installed_then_token_ready_with_the_record_and_no_token() {
    let (env, tap) = started().await;
    env.deliver(&installed("495709166956001", "942647313864001", 1763900000))
        .await;

    let received = wait_types(&tap, &["tenant.installed", "tenant.token_ready"]).await;
    assert_eq!(
        kinds(&received)[..2],
        ["tenant.installed", "tenant.token_ready"]
    );
    for m in &received {
        assert_well_formed(m, "495709166956001");
        assert_eq!(m.json()["occurred_at"], 1763900000, "entry.time");
        assert!(m.json().get("event").is_none());
    }
    let installed = first(&received, "tenant.installed").json();
    assert_eq!(installed["tenant"]["status"], "installed");
    assert_eq!(installed["tenant"]["owner_business_id"], "942647313864001");
    let ready = first(&received, "tenant.token_ready").json();
    assert_eq!(ready["tenant"]["token"]["status"], "active");
    assert_ne!(installed["id"], ready["id"]);
    wait_metric(
        &env,
        r#"wa_worker_tenant_events_published_total{type="tenant.token_ready"}"#,
        1.0,
    )
    .await;
    tap.close().await;
    env.stop().await;
}

#[tokio::test]
async fn a_permanent_fetch_failure_publishes_token_failed_and_its_replay_the_same_ids() {
    let mut env = spawn_env().await;
    let permanent = Mock::given(method("POST"))
        .and(path_regex(r"/system_user_access_tokens$"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Invalid parameter", "type": "OAuthException", "code": 100}})))
        .mount_as_scoped(&env.graph)
        .await;
    let tap = tap(&env).await;
    env.spawn_worker().await;
    env.deliver(&installed("495709166956002", "942647313864002", 100))
        .await;
    let received = wait_types(&tap, &["tenant.installed", "tenant.token_failed"]).await;
    let failed = first(&received, "tenant.token_failed");
    assert_well_formed(failed, "495709166956002");
    assert_eq!(failed.json()["tenant"]["token"]["status"], "failed");
    assert!(
        failed.json()["tenant"]["token"]["error"]
            .as_str()
            .unwrap()
            .contains("100")
    );
    env.wait_dead_letters(1).await;
    let first_installed = first(&received, "tenant.installed").message_id.clone();

    // Fixed on Graph's side; the operator replays: the same change, processed again.
    drop(permanent);
    graph_ok(&env, TOKEN).await;
    wa_worker::dlq::replay(&env.broker, None, |_, _| {})
        .await
        .unwrap();
    let received = wait_types(&tap, &["tenant.token_ready"]).await;
    let installs: HashSet<_> = received
        .iter()
        .filter(|m| kind(m) == "tenant.installed")
        .map(|m| m.message_id.clone())
        .collect();
    assert_eq!(
        installs,
        HashSet::from([first_installed]),
        "the replayed install re-emits its id, never a new one"
    );
    assert_well_formed(first(&received, "tenant.token_ready"), "495709166956002");
    tap.close().await;
    env.stop().await;
}

#[tokio::test]
async fn an_uninstall_and_account_events_publish_uninstalled_and_account_changed() {
    let (env, tap) = started().await;
    let waba = "495709166956003";
    env.deliver(&installed(waba, "942647313864003", 100)).await;
    wait_types(&tap, &["tenant.token_ready"]).await;
    env.deliver(&webhook(
        waba,
        150,
        json!({"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE",
            "waba_ban_date": "2026-11-30"}}),
    ))
    .await;
    env.deliver(&webhook(
        waba,
        160,
        json!({"event": "SOMETHING_NEW_FROM_META", "x": 1}),
    ))
    .await;
    env.deliver(&uninstalled(waba, "942647313864003", 200))
        .await;

    let received = tap
        .wait(WAIT, "two account changes and the uninstall", |r| {
            let seen = kinds(r);
            seen.iter()
                .filter(|t| *t == "tenant.account_changed")
                .count()
                == 2
                && seen.iter().any(|t| t == "tenant.uninstalled")
        })
        .await;
    for m in &received {
        assert_well_formed(m, waba);
    }
    let changed: Vec<Value> = received
        .iter()
        .filter(|m| kind(m) == "tenant.account_changed")
        .map(Tapped::json)
        .collect();
    let ban = changed
        .iter()
        .find(|e| e["event"] == "DISABLED_UPDATE")
        .expect("the ban, named");
    assert_eq!(ban["occurred_at"], 150);
    assert_eq!(ban["tenant"]["account"]["ban_state"], "DISABLE");
    assert!(
        changed
            .iter()
            .any(|e| e["event"] == "SOMETHING_NEW_FROM_META"),
        "an unknown event is reported too, by its name"
    );
    let gone = first(&received, "tenant.uninstalled").json();
    assert_eq!(gone["occurred_at"], 200);
    assert_eq!(gone["tenant"]["status"], "uninstalled");
    assert_eq!(gone["tenant"]["token"]["status"], "revoked");
    tap.close().await;
    env.stop().await;
}

/// Installs two WABAs of one business, delivers `uninstall` (about the business, at 2000),
/// and checks it published one `tenant.uninstalled` per WABA, each with its own id.
async fn one_uninstalled_per_waba(business: &str, uninstall: Value) {
    let (env, tap) = started().await;
    for waba in ["801", "802"] {
        env.deliver(&installed(waba, business, 1000)).await;
    }
    tap.wait(WAIT, "both tokens ready", |r| {
        count(r, "tenant.token_ready") == 2
    })
    .await;
    env.deliver(&uninstall).await;
    let received = tap
        .wait(WAIT, "one uninstalled per WABA", |r| {
            count(r, "tenant.uninstalled") == 2
        })
        .await;
    let gone: Vec<&Tapped> = received
        .iter()
        .filter(|m| kind(m) == "tenant.uninstalled")
        .collect();
    let wabas: HashSet<String> = gone
        .iter()
        .map(|m| m.json()["waba_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(wabas, HashSet::from(["801".into(), "802".into()]));
    assert_ne!(gone[0].message_id, gone[1].message_id, "one id per WABA");
    for m in gone {
        let waba = m.json()["waba_id"].as_str().unwrap().to_owned();
        assert_well_formed(m, &waba);
        assert_eq!(m.json()["occurred_at"], 2000);
    }
    tap.close().await;
    env.stop().await;
}

#[tokio::test]
async fn a_business_integration_uninstall_publishes_one_uninstalled_per_waba() {
    let business = "942647313864004";
    let uninstall = integration("business_integration_uninstall", business, 2000);
    one_uninstalled_per_waba(business, uninstall).await;
}

#[tokio::test]
async fn an_uninstall_without_waba_info_publishes_one_uninstalled_per_waba_of_its_owner() {
    let business = "942647313864009";
    one_uninstalled_per_waba(business, bare_uninstall(business, 2000)).await;
}

#[tokio::test]
async fn stale_and_other_app_changes_publish_nothing() {
    let (env, tap) = started().await;
    let waba = "495709166956005";
    env.deliver(&uninstalled(waba, "942647313864005", 300))
        .await;
    wait_types(&tap, &["tenant.uninstalled"]).await;
    // Older than the uninstall: stale. Another app's install: not ours.
    env.deliver(&installed(waba, "942647313864005", 200)).await;
    env.deliver(&webhook(
        PARTNER,
        400,
        json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {"waba_id": waba,
            "owner_business_id": "942647313864005", "partner_app_id": "999999999999"}}),
    ))
    .await;
    wait_metric(&env, "wa_worker_stale_total", 1.0).await;
    wait_metric(
        &env,
        r#"wa_worker_other_app_events_total{event="PARTNER_APP_INSTALLED"}"#,
        1.0,
    )
    .await;
    // Both were acked, so anything they published is already queued ahead of this one.
    let received = through_sentinel(&env, &tap).await;
    assert_eq!(
        kinds(&received),
        ["tenant.uninstalled", "tenant.account_changed"],
        "nothing from the stale install or the other app's"
    );
    tap.close().await;
    env.stop().await;
}

#[tokio::test]
async fn a_worker_lost_before_its_ack_is_redelivered_and_re_emits_the_same_ids() {
    let mut env = spawn_env().await;
    // The first subscription hangs: the worker dies there, both events already confirmed.
    hang_first_subscription(&env).await;
    graph_ok(&env, TOKEN).await;
    let tap = tap(&env).await;
    let doomed = env.spawn_worker().await;
    env.deliver(&installed("495709166956006", "942647313864006", 100))
        .await;
    let before = wait_types(&tap, &["tenant.installed", "tenant.token_ready"]).await;
    eventually(WAIT, "subscription in flight", || async {
        (!env.graph_calls("/subscribed_apps").await.is_empty()).then_some(())
    })
    .await;
    env.kill_worker(doomed).await;
    let ids: HashSet<Option<String>> = before.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids.len(), 2);

    env.spawn_worker().await;
    env.wait_tenant("495709166956006", "subscribed after the redelivery", |t| {
        t.subscribed
    })
    .await;
    let after = tap.wait(WAIT, "both events again", |r| r.len() >= 4).await;
    let again: HashSet<Option<String>> = after.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(again, ids, "the same ids again, never a new one");
    tap.close().await;
    env.stop().await;
}

/// A queue bound to the tenant events `binding_key` names, with room for one message and
/// refusing more (`reject-publish`): once it holds one, the broker nacks every tenant event it
/// would route there. Not consumed until [`Tap::start`].
pub(crate) async fn one_message_queue(env: &Env, binding_key: &str) -> Tap {
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString(LongString::from("reject-publish")),
    );
    Tap::bound(
        &amqp_url(),
        &env.topology.tenant_events_exchange(),
        binding_key,
        args,
    )
    .await
}

/// A queue that takes nothing: bound to every tenant event, one message long and already
/// full, so the broker nacks every tenant event.
async fn full_queue(env: &Env) -> Tap {
    let tap = one_message_queue(env, "tenant.#").await;
    tap.put(br#"{"type":"filler"}"#).await;
    tap
}

/// Graph answering every call, and five delay tiers (6 s in all): room to retry a change
/// while its events are refused, and to see it done once they are taken.
pub(crate) async fn retrying_env() -> Env {
    let env = spawn_env_with_delays(
        [200, 400, 800, 1600, 3200]
            .map(Duration::from_millis)
            .to_vec(),
    )
    .await;
    graph_ok(&env, TOKEN).await;
    env
}

/// Installs acked.
const INSTALL_DONE: &str =
    r#"wa_worker_events_total{event="PARTNER_APP_INSTALLED",outcome="done"}"#;

#[tokio::test]
async fn a_nacked_event_retries_the_change_until_the_broker_takes_it() {
    let mut env = retrying_env().await;
    let mut tap = full_queue(&env).await;
    env.spawn_worker().await;
    let waba = "495709166956007";
    env.deliver(&installed(waba, "942647313864007", 100)).await;
    wait_metric(&env, r#"wa_worker_retries_total{tier="200ms"}"#, 1.0).await;
    assert_eq!(
        metric(&env.metrics(0).await, INSTALL_DONE),
        0.0,
        "not acked while its event is refused"
    );

    // The consumer drains its queue: the retried change publishes, and is done.
    tap.start().await;
    let received = wait_types(&tap, &["tenant.installed", "tenant.token_ready"]).await;
    let ids: HashSet<Option<String>> = received
        .iter()
        .filter(|m| m.routing_key.starts_with("tenant."))
        .map(|m| m.message_id.clone())
        .collect();
    assert_eq!(ids.len(), 2, "re-emissions keep their ids: {received:?}");
    wait_metric(&env, INSTALL_DONE, 1.0).await;
    assert!(env.dead_letters().await.is_empty());
    tap.close().await;
    env.stop().await;
}

#[tokio::test]
async fn a_missing_exchange_retries_the_change_until_it_is_declared_again() {
    let mut env = retrying_env().await;
    env.spawn_worker().await;
    let channel = env.broker.open_channel().await.expect("channel");
    channel
        .exchange_delete(
            env.topology.tenant_events_exchange().as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await
        .expect("exchange deleted");
    let waba = "495709166956008";
    env.deliver(&installed(waba, "942647313864008", 100)).await;
    wait_metric(&env, r#"wa_worker_retries_total{tier="200ms"}"#, 1.0).await;
    env.wait_tenant(waba, "installed, its event not published", |t| {
        status(t) == "installed"
    })
    .await;
    let published = r#"wa_worker_tenant_events_published_total{type="tenant.installed"}"#;
    assert_eq!(metric(&env.metrics(0).await, published), 0.0);

    // Declared again (as the worker does on its next connection): the retry succeeds.
    env.topology.declare(&channel).await.expect("declared");
    wait_metric(&env, published, 1.0).await;
    wait_metric(&env, INSTALL_DONE, 1.0).await;
    assert!(env.dead_letters().await.is_empty());
    env.stop().await;
}
