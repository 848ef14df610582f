use crate::helpers::*;

const TOKEN: &str = "business-token-uninstall-tests";

#[tokio::test]
async fn uninstall_revokes_and_a_stale_install_after_it_is_ignored() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.deliver(&installed("10", "20", 1000)).await;
    env.wait_tenant("10", "active", |t| token_status(t) == Some("active"))
        .await;
    env.deliver(&uninstalled("10", "20", 2000)).await;
    let t = env
        .wait_tenant("10", "uninstalled", |t| t.status.as_str() == "uninstalled")
        .await;
    assert_eq!(token_status(&t), Some("revoked"));
    assert_eq!(t.uninstalled_at, Some(2000));
    assert!(!t.subscribed);
    assert!(
        env.vault.token(&waba_id("10")).await.unwrap().is_none(),
        "token destroyed"
    );

    // An install older than the uninstall, delivered late: ignored.
    env.deliver(&installed("10", "20", 1500)).await;
    // A later, unrelated event on another tenant is our marker that the stale one was processed.
    env.deliver(&installed("11", "21", 1600)).await;
    env.wait_tenant("11", "marker", |t| token_status(t) == Some("active"))
        .await;
    eventually(
        std::time::Duration::from_secs(10),
        "stale install processed",
        || async {
            let m = env.metrics(0).await;
            m.lines()
                .any(|l| {
                    l.starts_with("wa_worker_events_total{")
                        && l.contains("PARTNER_APP_INSTALLED")
                        && l.contains("done")
                        && l.ends_with(" 3")
                })
                .then_some(())
        },
    )
    .await;
    let t = env.tenant("10").await.unwrap();
    assert_eq!(t.status.as_str(), "uninstalled");
    assert_eq!(token_status(&t), Some("revoked"));
    assert_eq!(
        env.graph_calls("/system_user_access_tokens").await.len(),
        2,
        "one per tenant, none for the stale install"
    );
    env.stop().await;
}

#[tokio::test]
async fn uninstall_before_install_leaves_the_tenant_uninstalled_without_a_token() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.deliver(&uninstalled("30", "40", 2000)).await;
    env.wait_tenant("30", "uninstalled record", |t| {
        t.status.as_str() == "uninstalled"
    })
    .await;
    env.deliver(&installed("30", "40", 1000)).await;
    env.deliver(&installed("31", "41", 1001)).await;
    env.wait_tenant("31", "marker", |t| token_status(t) == Some("active"))
        .await;
    eventually(
        std::time::Duration::from_secs(10),
        "late install processed",
        || async {
            env.metrics(0)
                .await
                .lines()
                .any(|l| {
                    l.starts_with("wa_worker_events_total{")
                        && l.contains("PARTNER_APP_INSTALLED")
                        && l.ends_with(" 2")
                })
                .then_some(())
        },
    )
    .await;
    let t = env.tenant("30").await.unwrap();
    assert_eq!(t.status.as_str(), "uninstalled");
    assert!(env.vault.token(&waba_id("30")).await.unwrap().is_none());
    assert_eq!(
        env.graph_calls("/system_user_access_tokens").await.len(),
        1,
        "only the marker's"
    );
    env.stop().await;
}

#[tokio::test]
async fn bare_uninstall_naming_a_waba_applies_to_it() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.deliver(&installed("50", "60", 1000)).await;
    env.wait_tenant("50", "active", |t| token_status(t) == Some("active"))
        .await;
    env.deliver(&bare_uninstall("50", 2000)).await;
    let t = env
        .wait_tenant("50", "uninstalled", |t| t.status.as_str() == "uninstalled")
        .await;
    assert_eq!(token_status(&t), Some("revoked"));
    env.stop().await;
}

#[tokio::test]
async fn bare_uninstall_naming_an_owner_business_applies_to_all_its_tenants() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    for waba in ["71", "72"] {
        env.deliver(&installed(waba, "70", 1000)).await;
    }
    env.deliver(&installed("73", "79", 1000)).await;
    for waba in ["71", "72", "73"] {
        env.wait_tenant(waba, "active", |t| token_status(t) == Some("active"))
            .await;
    }
    env.deliver(&bare_uninstall("70", 2000)).await;
    for waba in ["71", "72"] {
        env.wait_tenant(waba, "uninstalled", |t| {
            t.status.as_str() == "uninstalled" && token_status(t) == Some("revoked")
        })
        .await;
    }
    assert_eq!(
        env.tenant("73").await.unwrap().status.as_str(),
        "installed",
        "another owner's tenant untouched"
    );
    env.stop().await;
}

#[tokio::test]
async fn bare_uninstall_for_the_partner_portfolio_goes_to_the_dlq_at_once_an_unknown_id_after_the_tiers()
 {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.deliver(&installed("80", "90", 1000)).await;
    env.wait_tenant("80", "active", |t| token_status(t) == Some("active"))
        .await;
    env.deliver(&bare_uninstall(PARTNER, 2000)).await;
    env.deliver(&bare_uninstall("123456789", 2000)).await;
    let letters = env.wait_dead_letters(2).await;
    let reasons: Vec<String> = letters.iter().filter_map(|l| l.reason.clone()).collect();
    assert!(reasons.iter().any(|r| r.contains("partner")), "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("123456789") && r.contains("matches no")),
        "{reasons:?}"
    );
    for l in &letters {
        assert_eq!(l.routing_key, "whatsapp_business_account.account_update");
        let reason = l.reason.as_deref().unwrap_or_default();
        if reason.contains("partner") {
            assert_eq!(l.attempts, 0, "the partner's portfolio: to the DLQ at once");
        } else {
            assert!(
                l.attempts >= 2,
                "an unknown id waits through the tiers: {l:?}"
            );
        }
    }
    let t = env.tenant("80").await.unwrap();
    assert_eq!(t.status.as_str(), "installed", "nothing changed");
    assert_eq!(token_status(&t), Some("active"));
    env.stop().await;
}

#[tokio::test]
async fn a_record_made_from_unsigned_or_account_data_does_not_make_a_business_id_a_waba() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    for waba in ["171", "172"] {
        env.deliver(&installed(waba, "170", 1000)).await;
    }
    for waba in ["171", "172"] {
        env.wait_tenant(waba, "active", |t| token_status(t) == Some("active"))
            .await;
    }
    // An account event keyed on the business id (Meta's docs disagree on entry.id) leaves a
    // record under "170" that no signed install or uninstall ever named.
    env.deliver(&webhook(
        "170",
        1500,
        serde_json::json!({"event": "PARTNER_ADDED"}),
    ))
    .await;
    env.wait_tenant("170", "record under the business id", |_| true)
        .await;
    env.deliver(&bare_uninstall("170", 2000)).await;
    for waba in ["171", "172"] {
        env.wait_tenant(waba, "the business's tenants uninstalled", |t| {
            t.status.as_str() == "uninstalled" && token_status(t) == Some("revoked")
        })
        .await;
    }
    env.stop().await;
}
