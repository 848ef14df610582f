//! `wa-onboard api` as an operator runs it: settings refused at start naming the variable,
//! `WA_API_TOKENS_FILE`, the `listening` event with `role = "api"`, a tenant and its token
//! read through it.

use std::time::Duration;

use crate::helpers::{TempFile, TestTenants, install, run, serving, wa_onboard};

const TOKEN: &str = "crm:crm-token-0123456789abcdef";

#[tokio::test]
async fn bad_tokens_are_refused_at_start_naming_the_variable() {
    let t = TestTenants::new().await;
    for (tokens, says) in [
        (None, "WA_API_TOKENS (or WA_API_TOKENS_FILE) is required"),
        (Some("crm:short"), "at least 16 characters"),
        (Some("crm"), "not `name:token`"),
        (
            Some("crm:crm-token-0123456789abcdef,crm:other-token-0123456789"),
            "already the name of entry 1",
        ),
    ] {
        let mut cmd = wa_onboard();
        cmd.arg("api")
            .env("WA_API_LISTEN", "127.0.0.1:0")
            .env("REDIS_URL", crate::helpers::redis_url())
            .env("WA_REDIS_PREFIX", &t.prefix)
            .env("WA_TOKEN_KEY", &t.key_base64);
        if let Some(tokens) = tokens {
            cmd.env("WA_API_TOKENS", tokens);
        }
        let out = run(&mut cmd).await;
        assert_eq!(out.code, Some(1), "{tokens:?}: {}", out.stderr);
        assert!(out.stderr.contains("WA_API_TOKENS"), "{}", out.stderr);
        assert!(out.stderr.contains(says), "{tokens:?}: {}", out.stderr);
        assert!(!out.stderr.contains("0123456789abcdef"), "{}", out.stderr);
    }
    // The token route decrypts: no key, no start.
    let out = run(wa_onboard()
        .arg("api")
        .env("WA_API_LISTEN", "127.0.0.1:0")
        .env("WA_API_TOKENS", TOKEN))
    .await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("WA_TOKEN_KEY"), "{}", out.stderr);
}

#[tokio::test]
async fn serves_a_tenant_and_its_token_from_a_tokens_file() {
    let t = TestTenants::new().await;
    t.install(&install(
        "495709166956424",
        "942647313864044",
        1_730_000_000,
    ))
    .await;
    t.store_token(
        "495709166956424",
        "EAAG-business-token",
        1_730_000_001,
        1_730_000_000,
    )
    .await;
    let file = TempFile::new(format!("{TOKEN}\n"));
    let mut cmd = wa_onboard();
    cmd.arg("api")
        .env("WA_API_LISTEN", "127.0.0.1:0")
        .env("WA_API_TOKENS_FILE", file.path())
        .env("REDIS_URL", crate::helpers::redis_url())
        .env("WA_REDIS_PREFIX", &t.prefix)
        .env("WA_TOKEN_KEY", &t.key_base64);
    let mut child = serving(cmd).await;
    assert_eq!(child.role, "api");
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{}{path}", child.base()))
            .bearer_auth("crm-token-0123456789abcdef")
            .timeout(Duration::from_secs(10))
            .send()
    };
    let record: serde_json::Value = get("/v1/tenants/495709166956424")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["status"], "installed");
    assert_eq!(record["token"]["status"], "active");
    let token: serde_json::Value = get("/v1/tenants/495709166956424/token")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["access_token"], "EAAG-business-token");
    child.assert_running();
    let status = child.terminate(Duration::from_secs(10)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(
        !child.tail().contains("EAAG-business-token"),
        "{}",
        child.tail()
    );
    assert!(child.tail().contains("token read"), "{}", child.tail());
}
