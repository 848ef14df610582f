//! The worker on the Redis Cluster of scripts/redis-cluster.sh (3 masters, 3 replicas):
//! installs, uninstalls with and without `waba_info`, and account events for WABAs on every
//! master, none dead-lettered (no `MOVED`, no `CROSSSLOT`), each applied once.

use serde_json::json;

use crate::helpers::*;

const TOKEN: &str = "EAAGm0PX4ZCpsBA-business-token-for-tests";
/// WABA ids whose hash tags fall on all three masters' slot ranges (0-5460: 101, 104;
/// 5461-10922: 102, 106; 10923-16383: 103, 107).
const WABAS: [&str; 6] = ["101", "102", "103", "104", "106", "107"];

#[tokio::test]
async fn installs_uninstalls_and_account_events_on_every_master_none_dead_lettered() {
    let mut env = spawn_env_on_cluster().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.spawn_worker().await;
    // Two owners, each with WABAs on several masters: the owner index and its records live
    // in different slots.
    for (i, waba) in WABAS.iter().enumerate() {
        let owner = if i % 2 == 0 { "900" } else { "901" };
        env.deliver(&installed(waba, owner, 1000)).await;
    }
    for waba in WABAS {
        env.wait_tenant(waba, "installed, token active, subscribed", |t| {
            token_status(t) == Some("active") && t.subscribed
        })
        .await;
        env.deliver(&webhook(
            waba,
            1500,
            json!({"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE"}}),
        ))
        .await;
    }
    for waba in WABAS {
        env.wait_tenant(waba, "ban recorded", |t| t.account.ban_state.is_some())
            .await;
    }
    // Without waba_info: every tenant of owner 900, across masters. With it: 102.
    env.deliver(&bare_uninstall("900", 2000)).await;
    env.deliver(&uninstalled("102", "901", 2000)).await;
    for waba in ["101", "103", "106", "102"] {
        env.wait_tenant(waba, "uninstalled, token revoked", |t| {
            t.status.as_str() == "uninstalled" && token_status(t) == Some("revoked")
        })
        .await;
    }
    for waba in ["104", "107"] {
        assert_eq!(env.tenant(waba).await.unwrap().status.as_str(), "installed");
    }
    // One fetch and one subscription per install: nothing applied twice.
    assert_eq!(
        env.graph_calls("/system_user_access_tokens").await.len(),
        WABAS.len()
    );
    assert_eq!(env.graph_calls("/subscribed_apps").await.len(), WABAS.len());
    assert!(
        env.dead_letters().await.is_empty(),
        "{:?}",
        env.dead_letters().await
    );
    env.stop().await;
}
