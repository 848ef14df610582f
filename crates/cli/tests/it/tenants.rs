//! `tenants get|list|token`: the record and token the worker stored, read back through the
//! binary; exit 3 for what does not exist; configuration errors that name their variable.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wa_store::Install;

use crate::helpers::*;

/// The tenant most tests arrange, and its owner business.
const WABA: &str = "100000000000001";
const OWNER: &str = "200000000000001";

#[tokio::test]
async fn get_prints_the_tenant_record() {
    let t = TestTenants::new().await;
    t.install(&Install {
        waba_id: waba("102290129340398"),
        owner_business_id: OWNER.parse().unwrap(),
        partner_app_id: Some("770000000000077".parse().unwrap()),
        solution_id: Some("900000000000009".parse().unwrap()),
        solution_partner_business_ids: vec!["300000000000001".parse().unwrap()],
        event_time: 1_730_000_000,
    })
    .await;
    t.store_token(
        "102290129340398",
        "EAAG-business-token",
        1_730_000_001,
        1_730_000_000,
    )
    .await;

    let out = run(&mut t.tenants(&["get", "102290129340398"])).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    // One line, compact: scripts grep it (`"status":"active"`, as scripts/run-local.sh does).
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(
        out.stdout.contains(r#""status":"installed""#),
        "{}",
        out.stdout
    );
    let record: Value = serde_json::from_str(&out.stdout).expect("stdout is one JSON record");
    assert_eq!(record["waba_id"], "102290129340398");
    assert_eq!(record["owner_business_id"], OWNER);
    assert_eq!(record["status"], "installed");
    assert_eq!(record["partner_app_id"], "770000000000077");
    assert_eq!(record["solution_id"], "900000000000009");
    assert_eq!(
        record["solution_partner_business_ids"],
        json!(["300000000000001"])
    );
    assert_eq!(record["phone_number_ids"], json!([]));
    assert_eq!(record["installed_at"], 1_730_000_000);
    assert_eq!(record["uninstalled_at"], Value::Null);
    assert_eq!(record["last_event_time"], 1_730_000_000);
    assert_eq!(
        record["token"],
        json!({"status": "active", "fetched_at": 1_730_000_001, "expires_at": null,
            "checked_at": null, "error": null})
    );
    assert_eq!(record["attention"], json!([]));
    assert_eq!(record["subscribed"], false);
    assert_eq!(
        record["account"],
        json!({"ban_state": null, "restrictions": [], "violation": null,
               "partner_removed": false, "deleted": false, "offboarded": false})
    );
    // Exactly what the store holds, and never the token itself.
    let stored = t
        .store
        .get(&waba("102290129340398"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record, serde_json::to_value(stored).unwrap());
    assert!(!out.stdout.contains("EAAG-business-token"));
}

#[tokio::test]
async fn token_prints_the_decrypted_business_token() {
    let t = TestTenants::new().await;
    t.install(&install(WABA, OWNER, 1_730_000_000)).await;
    t.store_token(
        WABA,
        "EAAG-secret-business-token",
        1_730_000_001,
        1_730_000_000,
    )
    .await;

    let out = run(&mut t.tenants(&["token", WABA])).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "EAAG-secret-business-token\n");
}

#[tokio::test]
async fn token_key_may_come_from_a_file() {
    let t = TestTenants::new().await;
    t.install(&install(WABA, OWNER, 1_730_000_000)).await;
    t.store_token(WABA, "from-file-token", 1_730_000_001, 1_730_000_000)
        .await;
    let key_file = TempFile::new(format!("{}\n", t.key_base64));

    let out = run(t
        .tenants(&["token", WABA])
        .env_remove("WA_TOKEN_KEY")
        .env("WA_TOKEN_KEY_FILE", key_file.path()))
    .await;

    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "from-file-token\n");
}

#[tokio::test]
async fn flags_override_the_environment() {
    let t = TestTenants::new().await;
    t.install(&install(WABA, OWNER, 1_730_000_000)).await;
    let prefix = t.prefix.clone();

    let out = run(t
        .tenants(&["get", WABA, "--redis-prefix", &prefix])
        .env("WA_REDIS_PREFIX", "wa-cli-test:elsewhere:"))
    .await;

    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn unknown_waba_exits_3() {
    let t = TestTenants::new().await;
    t.install(&install("100000000000002", OWNER, 1_730_000_000))
        .await;

    for command in ["get", "token"] {
        let out = run(&mut t.tenants(&[command, "100000000000404"])).await;

        assert_eq!(out.code, Some(3), "tenants {command}: {out:?}");
        assert_eq!(out.stdout, "", "tenants {command}");
        assert!(
            out.stderr.contains("unknown WABA 100000000000404"),
            "tenants {command}: {}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn token_of_a_tenant_without_one_exits_3_and_says_why() {
    let t = TestTenants::new().await;
    t.install(&install("100000000000003", OWNER, 1_730_000_000))
        .await;

    let out = run(&mut t.tenants(&["token", "100000000000003"])).await;

    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("no business token"), "{}", out.stderr);
    assert!(out.stderr.contains("pending"), "{}", out.stderr);
}

#[tokio::test]
async fn list_prints_one_record_a_line() {
    let t = TestTenants::new().await;
    let wabas: BTreeSet<String> = (0..5).map(|i| format!("1000000000000{i:02}")).collect();
    for (i, waba) in wabas.iter().enumerate() {
        t.install(&install(waba, OWNER, 1_730_000_000 + i as i64))
            .await;
    }
    // 100000000000002 is the third in order: installed at 1_730_000_000 + 2.
    t.store_token(
        "100000000000002",
        "listed-token",
        1_730_000_100,
        1_730_000_002,
    )
    .await;

    let out = run(&mut t.tenants(&["list"])).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", out.stdout);
    let mut seen = BTreeSet::new();
    for line in lines {
        let record: Value = serde_json::from_str(line).expect("each line is one JSON record");
        assert_eq!(record["status"], "installed");
        let waba = record["waba_id"].as_str().expect("waba_id").to_owned();
        let want = if waba == "100000000000002" {
            "active"
        } else {
            "pending"
        };
        assert_eq!(record["token"]["status"], want, "{line}");
        seen.insert(waba);
    }
    assert_eq!(seen, wabas);
    assert!(!out.stdout.contains("listed-token"));
}

#[tokio::test]
async fn list_of_no_tenants_prints_nothing() {
    let t = TestTenants::new().await;

    let out = run(&mut t.tenants(&["list"])).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "");
}

#[tokio::test]
async fn missing_token_key_is_an_error_naming_it() {
    let t = TestTenants::new().await;
    t.install(&install(WABA, OWNER, 1_730_000_000)).await;

    for args in [&["token", WABA][..], &["rekey"]] {
        let out = run(t.tenants(args).env_remove("WA_TOKEN_KEY")).await;

        assert_ne!(out.code, Some(0), "{args:?}: {out:?}");
        assert_ne!(out.code, Some(3), "{args:?}: not a lookup miss: {out:?}");
        assert!(
            out.stderr.contains("WA_TOKEN_KEY"),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(out.stdout, "", "{args:?}");
    }
}

#[tokio::test]
async fn get_and_list_read_state_without_the_token_key() {
    let t = TestTenants::new().await;
    t.install(&install(WABA, OWNER, 1_730_000_000)).await;

    for args in [&["get", WABA][..], &["list"]] {
        let out = run(t
            .tenants(args)
            .env_remove("WA_TOKEN_KEY")
            .env_remove("WA_TOKEN_KEY_FILE"))
        .await;

        assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
        let record: Value = serde_json::from_str(out.stdout.trim_end()).expect("one JSON record");
        assert_eq!(record["waba_id"], WABA, "{args:?}");
        assert_eq!(record["status"], "installed", "{args:?}");
    }
}

#[tokio::test]
async fn malformed_token_key_is_an_error_naming_it() {
    let t = TestTenants::new().await;

    let out = run(t.tenants(&["rekey"]).env("WA_TOKEN_KEY", "c2hvcnQ=")).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("WA_TOKEN_KEY"), "{}", out.stderr);
    assert!(out.stderr.contains("32 bytes"), "{}", out.stderr);
}

#[tokio::test]
async fn another_token_key_cannot_read_the_token() {
    let t = TestTenants::new().await;
    t.install(&install(WABA, OWNER, 1_730_000_000)).await;
    t.store_token(WABA, "sealed-token", 1_730_000_001, 1_730_000_000)
        .await;
    let other = TestTenants::new().await.key_base64.clone();

    let out = run(t.tenants(&["token", WABA]).env("WA_TOKEN_KEY", other)).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(!out.stderr.contains("sealed-token"));
}

#[tokio::test]
async fn unreachable_redis_exits_1_without_the_password() {
    let t = TestTenants::new().await;

    let out = run(t
        .tenants(&["get", WABA])
        .env("REDIS_URL", "redis://:hunter2@127.0.0.1:1/0"))
    .await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("REDIS_URL"), "{}", out.stderr);
    assert!(out.stderr.contains("127.0.0.1:1"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[tokio::test]
async fn an_id_that_cannot_name_a_tenant_is_a_usage_error() {
    let t = TestTenants::new().await;

    for id in ["{waba}", "waba-1", ""] {
        for command in ["get", "token"] {
            let out = run(&mut t.tenants(&[command, id])).await;

            assert_eq!(out.code, Some(2), "tenants {command} {id:?}: {out:?}");
            assert!(out.stderr.contains("WABA_ID"), "{}", out.stderr);
            assert!(out.stderr.contains("digits"), "{}", out.stderr);
        }
    }
}

#[tokio::test]
async fn list_filters_on_attention() {
    let t = TestTenants::new().await;
    for waba in ["540000000000001", "540000000000002"] {
        t.install(&install(waba, OWNER, 1_730_000_000)).await;
        t.store_token(waba, "attention-token", 1_730_000_001, 1_730_000_000)
            .await;
    }
    let flagged = wa_store::CheckFindings {
        install_time: 1_730_000_000,
        checked_at: 1_730_000_002,
        invalid: true,
        expires_at: None,
        subscribed: None,
        attention: vec![wa_store::Attention::TokenInvalid],
        phone_number_ids: None,
    };
    assert!(
        wa_testkit::record_check(&t.store, &waba("540000000000002"), &flagged)
            .await
            .unwrap()
    );

    let out = run(&mut t.tenants(&["list", "--attention", "token_invalid"])).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert_eq!(lines[0]["waba_id"], "540000000000002");
    assert_eq!(lines[0]["attention"], serde_json::json!(["token_invalid"]));
    assert_eq!(lines[0]["token"]["status"], "invalid");

    let none = run(&mut t.tenants(&["list", "--attention", "not_subscribed"])).await;
    assert_eq!((none.code, none.stdout.as_str()), (Some(0), ""));
    let bad = run(&mut t.tenants(&["list", "--attention", "everything"])).await;
    assert_eq!(bad.code, Some(2), "{bad:?}");
}
