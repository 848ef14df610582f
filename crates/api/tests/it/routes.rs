use std::io::{Read as _, Write as _};

use wa_api::ROUTES;

use crate::helpers::{BILLING, CRM, spawn_api};

/// A concrete path for each route template.
fn paths() -> Vec<String> {
    ROUTES
        .iter()
        .map(|(_, t)| t.replace("{waba_id}", "102290129340398"))
        .collect()
}

#[tokio::test]
async fn every_route_but_the_probes_is_401_without_a_valid_bearer() {
    let api = spawn_api().await;
    let mut paths = paths();
    paths.push("/no/such/route".to_owned());
    paths.push("/v1/tenants?status=installed".to_owned());
    for path in &paths {
        let probe = matches!(path.as_str(), "/healthz" | "/readyz");
        let none = api.client.get(api.url(path)).send().await.unwrap();
        let wrong = api.get_as("not-a-configured-token-000", path).await;
        let almost = api.get_as(&CRM[..CRM.len() - 1], path).await;
        let basic = api
            .client
            .get(api.url(path))
            .header("authorization", format!("Basic {CRM}"))
            .send()
            .await
            .unwrap();
        for r in [none, wrong, almost, basic] {
            if probe {
                assert_eq!(r.status(), 200, "{path}");
                continue;
            }
            assert_eq!(r.status(), 401, "{path}");
            assert_eq!(
                r.headers()["www-authenticate"],
                "Bearer realm=\"wa-onboard-api\""
            );
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "unauthorized", "{path}");
        }
    }
    api.stop().await;
}

#[tokio::test]
async fn both_callers_are_let_in() {
    let api = spawn_api().await;
    for token in [BILLING, CRM] {
        assert_eq!(api.get_as(token, "/v1/tenants").await.status(), 200);
    }
    api.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_404_and_other_methods_405() {
    let api = spawn_api().await;
    for path in [
        "/",
        "/v1",
        "/v1/tenant",
        "/v1/tenants/1/tokens",
        "/v1/tenants/1/token/",
        "/v2/tenants",
        "/webhooks/whatsapp",
    ] {
        let (status, body) = api.get_json(path).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    for path in paths() {
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let r = api
                .client
                .request(method.parse().unwrap(), api.url(&path))
                .bearer_auth(CRM)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "{method} {path}");
            assert_eq!(r.headers()["allow"], "GET");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "method_not_allowed");
        }
    }
    api.stop().await;
}

#[tokio::test]
async fn malformed_ids_queries_and_bodies_are_400() {
    let api = spawn_api().await;
    for path in [
        "/v1/tenants/x1",
        "/v1/tenants/",
        "/v1/tenants/-1",
        "/v1/tenants/1.5",
        "/v1/tenants/%31",
        "/v1/tenants/123456789012345678901234567890123",
        "/v1/tenants/x1/token",
        "/v1/tenants//token",
        "/v1/tenants?status=active",
        "/v1/tenants?limit=0",
        "/v1/tenants?limit=1001",
        "/v1/tenants?limit=1&limit=2",
        "/v1/tenants?cursor=bm90LWEtY3Vyc29y",
        "/v1/tenants?attention=Not_Snake",
        "/v1/tenants?page=2",
        "/v1/tenants/1?fields=all",
        "/v1/signups/funnel?since=91d",
        "/v1/signups/funnel?since=never",
        "/healthz?verbose=1",
        "/metrics?x=1",
    ] {
        let (status, body) = api.get_json(path).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{path}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let long = format!("/v1/tenants?status=installed&cursor={}", "A".repeat(2048));
    let (status, body) = api.get_json(&long).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("longer than"),
        "{body}"
    );

    let r = api
        .client
        .get(api.url("/v1/tenants"))
        .bearer_auth(CRM)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("bodies"),
        "{body}"
    );
    api.stop().await;
}

#[tokio::test]
async fn a_chunked_body_is_refused_too() {
    let api = spawn_api().await;
    let addr = api.base.trim_start_matches("http://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET /v1/tenants HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {CRM}\r\n\
             transfer-encoding: chunked\r\nconnection: close\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    api.stop().await;
}

#[tokio::test]
async fn probes_answer_without_a_bearer_and_metrics_need_one() {
    let api = spawn_api().await;
    let health = api.client.get(api.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    let ready = api.client.get(api.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );

    let r = api.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text().await.unwrap();
    // Every caller's token reads exist from the start, at 0.
    for caller in ["billing", "crm"] {
        for outcome in ["served", "not_found", "error"] {
            let series =
                format!("wa_api_token_reads_total{{caller=\"{caller}\",outcome=\"{outcome}\"}} 0");
            assert!(text.contains(&series), "{series} missing:\n{text}");
        }
    }
    assert!(
        text.contains("wa_api_requests_total{route=\"healthz\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("wa_api_requests_total{route=\"tenant_token\",status=\"404\"} 0"),
        "{text}"
    );
    assert!(text.contains("wa_api_redis_ready 1"), "{text}");
    assert!(text.contains("wa_build_info"), "{text}");
    api.stop().await;
}
