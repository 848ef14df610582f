use crate::helpers::{BILLING, log_lines, spawn_api, whole_log};

const TOKEN: &str = "EAAGm0PX4ZCpsBAtestbusinesstokenvalue";

fn audit_lines(waba: &str) -> Vec<serde_json::Value> {
    log_lines(waba)
        .into_iter()
        .filter(|l| l["target"] == "wa_api::audit")
        .collect()
}

#[tokio::test]
async fn an_installed_tenants_token_is_served_and_audited() {
    let api = spawn_api().await;
    let waba = "910000000000001";
    api.install_with_token(waba, 1_730_000_000, TOKEN).await;

    let r = api
        .get_as(BILLING, &format!("/v1/tenants/{waba}/token"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["access_token"], TOKEN);
    assert!(body.get("expires_at").is_some(), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");

    let audit = audit_lines(waba);
    assert_eq!(audit.len(), 1, "{audit:?}");
    let fields = &audit[0]["fields"];
    assert_eq!(fields["caller"], "billing");
    assert_eq!(fields["waba_id"], waba);
    assert_eq!(fields["outcome"], "served");

    let metrics = api.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("wa_api_token_reads_total{caller=\"billing\",outcome=\"served\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains(TOKEN));
    assert!(!whole_log().contains(TOKEN), "the token is never logged");
    api.stop().await;
}

#[tokio::test]
async fn no_token_is_404_and_each_read_is_audited() {
    let api = spawn_api().await;
    let unknown = "920000000000001";
    let uninstalled = "920000000000002";
    let pending = "920000000000003";
    api.install_with_token(uninstalled, 100, TOKEN).await;
    api.uninstall(uninstalled, 200).await;
    api.install(pending, 100).await;

    for waba in [unknown, uninstalled, pending] {
        let (status, body) = api.get_json(&format!("/v1/tenants/{waba}/token")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{waba}: {body}"
        );
        let audit = audit_lines(waba);
        assert_eq!(audit.len(), 1, "{waba}: {audit:?}");
        assert_eq!(audit[0]["fields"]["caller"], "crm");
        assert_eq!(audit[0]["fields"]["outcome"], "not_found");
    }
    let metrics = api.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("wa_api_token_reads_total{caller=\"crm\",outcome=\"not_found\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wa_api_token_reads_total{caller=\"billing\",outcome=\"served\"} 0"),
        "{metrics}"
    );
    assert!(!whole_log().contains(TOKEN));
    api.stop().await;
}

#[tokio::test]
async fn a_token_read_without_a_bearer_reads_nothing() {
    let api = spawn_api().await;
    let waba = "930000000000001";
    api.install_with_token(waba, 100, TOKEN).await;
    let r = api
        .client
        .get(api.url(&format!("/v1/tenants/{waba}/token")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains(TOKEN));
    assert!(audit_lines(waba).is_empty());
    api.stop().await;
}

/// What a tenant check records when Graph refuses the token.
fn invalid(install_time: i64) -> wa_store::CheckFindings {
    wa_store::CheckFindings {
        install_time,
        checked_at: install_time + 10,
        invalid: true,
        expires_at: None,
        subscribed: None,
        attention: vec![wa_store::Attention::TokenInvalid],
        phone_number_ids: None,
    }
}

#[tokio::test]
async fn a_token_a_check_found_invalid_is_never_served() {
    let api = spawn_api().await;
    let waba = "940000000000001";
    api.install_with_token(waba, 1_730_000_000, TOKEN).await;
    let id = wa_ids::WabaId::parse(waba).unwrap();
    assert!(
        wa_testkit::record_check(&api.store, &id, &invalid(1_730_000_000))
            .await
            .unwrap()
    );

    let (status, body) = api.get_json(&format!("/v1/tenants/{waba}/token")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, record) = api.get_json(&format!("/v1/tenants/{waba}")).await;
    assert_eq!(status, 200);
    assert_eq!(record["token"]["status"], "invalid");
    assert_eq!(record["attention"], serde_json::json!(["token_invalid"]));
    let (_, page) = api
        .get_json("/v1/tenants?attention=token_invalid&limit=100")
        .await;
    let ids: Vec<&str> = page["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["waba_id"].as_str())
        .collect();
    assert!(ids.contains(&waba), "{page}");
    api.stop().await;
}
