//! Every series whose labels are known in advance is exported at 0 from the start, so a
//! dashboard shows 0 rather than "no data" and a `rate()` alert sees the first increment.

use crate::helpers::spawn_env;

#[tokio::test]
async fn every_known_series_is_exported_at_zero_before_any_message() {
    let mut env = spawn_env().await;
    let worker = env.spawn_worker().await;
    let text = env.metrics(worker).await;
    let mut expected = Vec::new();
    for event in [
        "PARTNER_APP_INSTALLED",
        "PARTNER_APP_UNINSTALLED",
        "FINISH",
        "NONE",
        "OTHER",
    ] {
        for outcome in ["done", "retry", "dead_letter"] {
            expected.push(format!(
                r#"wa_worker_events_total{{event="{event}",outcome="{outcome}"}}"#
            ));
        }
    }
    for outcome in ["ok", "transient", "permanent"] {
        expected.push(format!(
            r#"wa_worker_token_fetches_total{{outcome="{outcome}"}}"#
        ));
    }
    // The test's delay tiers (200 ms, 400 ms).
    for tier in ["200ms", "400ms"] {
        expected.push(format!(r#"wa_worker_retries_total{{tier="{tier}"}}"#));
    }
    for (kind, event) in [
        ("finish", "FINISH"),
        ("finish", "FINISH_ONLY_WABA"),
        ("cancel", "CANCEL"),
        ("error", "CANCEL"),
    ] {
        expected.push(format!(
            r#"wa_worker_signup_events_total{{kind="{kind}",event="{event}"}}"#
        ));
    }
    for r#type in [
        "tenant.installed",
        "tenant.token_ready",
        "tenant.token_failed",
        "tenant.token_invalid",
        "tenant.token_refreshed",
        "tenant.uninstalled",
        "tenant.account_changed",
    ] {
        expected.push(format!(
            r#"wa_worker_tenant_events_published_total{{type="{type}"}}"#
        ));
    }
    expected.extend(
        [
            "wa_worker_dlq_publishes_total",
            "wa_worker_duplicates_total",
            "wa_worker_in_flight",
            // The census of no tenant, or none yet: every series at 0.
            "wa_tenant_tokens_expiring",
            "wa_tenant_tokens_expiring_unchecked",
        ]
        .map(str::to_owned),
    );
    for status in ["pending", "active", "failed", "invalid", "revoked"] {
        expected.push(format!(r#"wa_tenant_tokens{{status="{status}"}}"#));
    }
    for attention in ["token_invalid", "token_expiring", "not_subscribed"] {
        expected.push(format!(r#"wa_tenant_attention{{attention="{attention}"}}"#));
    }
    for series in expected {
        assert!(
            text.lines().any(|l| l == format!("{series} 0")),
            "{series} is not exported at 0 before any message:\n{text}"
        );
    }
    // The census runs at once: its outcomes are all there, `counted` maybe past 0 already,
    // and the census's age (since the start, or since the first census) too.
    let runs = ["counted", "skipped", "failed"]
        .map(|outcome| format!(r#"wa_worker_census_runs_total{{outcome="{outcome}"}} "#));
    for series in runs
        .iter()
        .map(String::as_str)
        .chain(["wa_tenant_census_age_seconds "])
    {
        assert!(
            text.lines().any(|l| l.starts_with(series)),
            "{series}is not exported from the start:\n{text}"
        );
    }
    env.stop().await;
}
