use std::collections::BTreeSet;

use wa_ids::WabaId;

use crate::helpers::spawn_api;

#[tokio::test]
async fn a_tenant_is_its_record_and_an_unknown_one_404() {
    let api = spawn_api().await;
    api.install("495709166956424", 1_730_000_000).await;
    let (status, body) = api.get_json("/v1/tenants/495709166956424").await;
    assert_eq!(status, 200);
    let record = api
        .store
        .get(&WabaId::parse("495709166956424").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body, serde_json::to_value(&record).unwrap());
    assert_eq!(body["status"], "installed");

    let (status, body) = api.get_json("/v1/tenants/495709166956425").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    api.stop().await;
}

/// Follows `next_cursor` from `first` to the end; every WABA id seen, with duplicates.
async fn walk(api: &crate::helpers::TestApi, first: &str) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut path = first.to_owned();
    loop {
        let (status, body) = api.get_json(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        pages += 1;
        let tenants = body["tenants"].as_array().unwrap();
        let limit: usize = first
            .split("limit=")
            .nth(1)
            .map_or(100, |l| l.split('&').next().unwrap().parse().unwrap());
        assert!(tenants.len() <= limit, "a page holds at most `limit`");
        ids.extend(
            tenants
                .iter()
                .map(|t| t["waba_id"].as_str().unwrap().to_owned()),
        );
        match body["next_cursor"].as_str() {
            None => {
                assert!(body["next_cursor"].is_null());
                return (ids, pages);
            }
            Some(cursor) => {
                path = format!("{first}&cursor={cursor}");
            }
        }
        assert!(pages < 10_000, "the walk ends");
    }
}

#[tokio::test]
async fn pages_walk_every_tenant_and_filter_by_status() {
    let api = spawn_api().await;
    const N: u64 = 600;
    for i in 0..N {
        let waba = format!("{}", 7_000_000 + i);
        api.install(&waba, 100).await;
        if i % 4 == 0 {
            api.uninstall(&waba, 200).await;
        }
    }
    let (ids, pages) = walk(&api, "/v1/tenants?limit=7").await;
    // Every tenant; SCAN may repeat one while Redis rehashes under other tests' writes.
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len() as u64, N, "every tenant");
    assert!(pages >= (N / 7) as usize, "{pages} pages");

    let (installed, _) = walk(&api, "/v1/tenants?status=installed&limit=50").await;
    let installed: BTreeSet<_> = installed.iter().collect();
    assert_eq!(installed.len() as u64, N - N / 4);
    let (uninstalled, _) = walk(&api, "/v1/tenants?status=uninstalled&limit=1000").await;
    assert_eq!(
        uninstalled.iter().collect::<BTreeSet<_>>().len() as u64,
        N / 4
    );
    assert!(
        uninstalled
            .iter()
            .all(|id| id.parse::<u64>().unwrap() % 4 == 0)
    );
    let (pending, _) = walk(&api, "/v1/tenants?status=pending&limit=10").await;
    assert!(pending.is_empty());
    api.stop().await;
}

#[tokio::test]
async fn the_attention_filter_is_accepted_and_matches_only_listed_tenants() {
    let api = spawn_api().await;
    api.install("8000001", 100).await;
    api.install_with_token("8000002", 100, "EAAattentiontoken-0000000")
        .await;
    let findings = wa_store::CheckFindings {
        install_time: 100,
        checked_at: 110,
        invalid: false,
        expires_at: None,
        subscribed: Some(false),
        attention: vec![wa_store::Attention::NotSubscribed],
        phone_number_ids: None,
    };
    let id = wa_ids::WabaId::parse("8000002").unwrap();
    assert!(
        wa_testkit::record_check(&api.store, &id, &findings)
            .await
            .unwrap()
    );
    let (ids, _) = walk(&api, "/v1/tenants?attention=not_subscribed&limit=10").await;
    assert_eq!(ids, ["8000002"]);
    let (ids, _) = walk(&api, "/v1/tenants?attention=token_invalid&limit=10").await;
    assert!(ids.is_empty(), "{ids:?}");
    let (mut ids, _) = walk(&api, "/v1/tenants?status=installed&limit=10").await;
    ids.sort();
    assert_eq!(ids, ["8000001", "8000002"]);
    api.stop().await;
}

#[tokio::test]
async fn an_empty_listing_ends_with_a_null_cursor() {
    let api = spawn_api().await;
    // Other tests' keys share the Redis: pages may be empty before the cursor is null.
    let (ids, _) = walk(&api, "/v1/tenants?limit=1000").await;
    assert!(ids.is_empty(), "{ids:?}");
    let (status, body) = api.get_json("/v1/tenants").await;
    assert_eq!(status, 200);
    assert!(body["tenants"].as_array().unwrap().is_empty(), "{body}");
    api.stop().await;
}

#[tokio::test]
async fn the_funnel_is_json_over_the_window() {
    let api = spawn_api().await;
    for path in ["/v1/signups/funnel", "/v1/signups/funnel?since=24h"] {
        let (status, body) = api.get_json(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        for field in [
            "since",
            "until",
            "started",
            "finished",
            "finished_by_event",
            "cancelled",
            "cancelled_by_step",
            "errors",
            "errors_by_code",
            "other_by_event",
        ] {
            assert!(body.get(field).is_some(), "{path}: no {field} in {body}");
        }
    }
    let (_, week) = api.get_json("/v1/signups/funnel").await;
    let span = week["until"].as_i64().unwrap() - week["since"].as_i64().unwrap();
    assert!((7 * 86_400..7 * 86_400 + 3600).contains(&span), "{span}");
    api.stop().await;
}
