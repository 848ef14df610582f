//! `signups funnel|get` against a real Redis (arranged with `wa_store` as the worker records
//! session events), `signup-config`'s launch options, and the ingress's signup token flag.

use std::{process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::process::Command;
use wa_store::{SignupCounter, SignupEvent};

use crate::helpers::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `wa-onboard signups ARGS` pointed at `t`'s prefix, without `WA_TOKEN_KEY` (not needed).
fn signups(t: &TestTenants, args: &[&str]) -> Command {
    let mut cmd = wa_onboard();
    cmd.arg("signups")
        .args(args)
        .env("REDIS_URL", redis_url())
        .env("WA_REDIS_PREFIX", &t.prefix)
        .env_remove("WA_TOKEN_KEY")
        .env_remove("WA_TOKEN_KEY_FILE");
    cmd
}

async fn record(t: &TestTenants, id: &str, at: i64, sessions: &[&str], counter: SignupCounter) {
    let ev = SignupEvent {
        id: key(id),
        received_at: at,
        session_ids: sessions.iter().map(|s| s.parse().unwrap()).collect(),
        counter,
        entry: json!({"id": id, "received_at": at, "message": {"event": id}}),
    };
    assert!(t.store.record_signup_event(&ev).await.unwrap().counted);
}

/// A dedupe key named after `name` (its bytes in hex, padded to a SHA-256's length).
fn key(name: &str) -> wa_ids::DedupeKey {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0<64}").parse().unwrap()
}

fn cancelled(step: &str) -> SignupCounter {
    SignupCounter::Cancelled {
        step: step.to_owned(),
    }
}

#[tokio::test]
async fn funnel_prints_started_finished_cancelled_by_step_and_errors_by_code() {
    let t = TestTenants::new().await;
    let recent = now() - 60;
    record(
        &t,
        "e1",
        recent,
        &["L1"],
        SignupCounter::Finished {
            event: "FINISH_GRANT_ONLY_API_ACCESS".into(),
        },
    )
    .await;
    record(
        &t,
        "e2",
        recent,
        &["L2"],
        cancelled("PHONE_NUMBER_VERIFICATION"),
    )
    .await;
    record(
        &t,
        "e3",
        recent,
        &["L3"],
        cancelled("PHONE_NUMBER_VERIFICATION"),
    )
    .await;
    record(
        &t,
        "e4",
        recent,
        &["L3", "meta-1"],
        SignupCounter::Error {
            code: "524126".into(),
        },
    )
    .await;
    // Two days ago: outside `--since 1d`, inside `--since 3d`.
    record(
        &t,
        "e5",
        now() - 2 * 86_400,
        &["L9"],
        cancelled("WABA_SELECTION"),
    )
    .await;

    let out = run(&mut signups(&t, &["funnel", "--since", "1d"])).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let f: Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    assert_eq!(f["started"], 3);
    assert_eq!(f["finished"], 1);
    assert_eq!(
        f["finished_by_event"],
        json!({"FINISH_GRANT_ONLY_API_ACCESS": 1})
    );
    assert_eq!(f["cancelled"], 2);
    assert_eq!(
        f["cancelled_by_step"],
        json!({"PHONE_NUMBER_VERIFICATION": 2})
    );
    assert_eq!(f["errors"], 1);
    assert_eq!(f["errors_by_code"], json!({"524126": 1}));
    assert!(f["until"].as_i64().unwrap() >= recent);

    let out = run(&mut signups(&t, &["funnel", "--since", "3d"])).await;
    let f: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(f["cancelled"], 3);
    assert_eq!(f["cancelled_by_step"]["WABA_SELECTION"], 1);
    assert_eq!(f["started"], 4);
}

#[tokio::test]
async fn get_prints_a_sessions_events_as_json_lines_and_exits_3_for_an_unknown_one() {
    let t = TestTenants::new().await;
    let at = now() - 120;
    record(
        &t,
        "e1",
        at,
        &["launch-7"],
        cancelled("PHONE_NUMBER_VERIFICATION"),
    )
    .await;
    record(
        &t,
        "e2",
        at + 5,
        &["launch-7", "meta-7"],
        SignupCounter::Error { code: "1".into() },
    )
    .await;

    let out = run(&mut signups(&t, &["get", "launch-7"])).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "e1", "oldest first");
    assert_eq!(lines[1]["id"], "e2");
    assert_eq!(lines[1]["received_at"], at + 5);

    let by_meta = run(&mut signups(&t, &["get", "meta-7"])).await;
    assert_eq!(by_meta.stdout.lines().count(), 1);

    let unknown = run(&mut signups(&t, &["get", "no-such-session"])).await;
    assert_eq!(unknown.code, Some(3), "{unknown:?}");
    assert!(unknown.stdout.is_empty());
    assert!(
        unknown.stderr.contains("no-such-session"),
        "{}",
        unknown.stderr
    );

    let bad = run(&mut signups(&t, &["get", "a b"])).await;
    assert_eq!(bad.code, Some(2), "{bad:?}");
    let too_far = run(&mut signups(&t, &["funnel", "--since", "365d"])).await;
    assert_eq!(too_far.code, Some(2), "{too_far:?}");
}

fn signup_config(args: &[&str]) -> Command {
    let mut cmd = wa_onboard();
    cmd.arg("signup-config").args(args);
    cmd
}

#[tokio::test]
async fn signup_config_prints_metas_app_only_install_options_for_v3() {
    let out = run(&mut signup_config(&["--config-id", "1234567890123456"])).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        printed,
        json!({
            "config_id": "1234567890123456",
            "response_type": "code",
            "override_default_response_type": true,
            "extras": {"version": "v3", "features": [{"name": "app_only_install"}]}
        })
    );
    // In the order Meta's documentation writes it.
    let keys: Vec<usize> = [
        "config_id",
        "response_type",
        "override_default_response_type",
        "extras",
    ]
    .iter()
    .map(|k| out.stdout.find(&format!("\"{k}\"")).unwrap())
    .collect();
    assert!(keys.is_sorted(), "{}", out.stdout);

    let out = run(&mut signup_config(&[
        "--config-id",
        "1234567890123456",
        "--solution-id",
        "580381314521123",
        "--version",
        "v3",
    ]))
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        printed,
        json!({
            "config_id": "1234567890123456",
            "response_type": "code",
            "override_default_response_type": true,
            "extras": {
                "version": "v3",
                "features": [{"name": "app_only_install"}],
                "setup": {"solutionID": "580381314521123"}
            }
        })
    );

    let v4 = run(&mut signup_config(&["--config-id", "1", "--version", "v4"])).await;
    let printed: Value = serde_json::from_str(&v4.stdout).unwrap();
    assert_eq!(printed["extras"]["version"], "v4");
}

#[tokio::test]
async fn signup_config_refuses_v2_and_bad_input() {
    let out = run(&mut signup_config(&["--config-id", "1", "--version", "v2"])).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("v2 was deprecated in October 2026"),
        "{}",
        out.stderr
    );
    for args in [
        &[][..],
        &["--config-id", "1\"};alert(1)//"][..],
        &["--config-id", "1", "--version", "v9"][..],
    ] {
        let out = run(&mut signup_config(args)).await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
    }
}

#[tokio::test]
async fn the_ingress_takes_the_signup_token_from_a_file_and_checks_the_bearer() {
    let token = TempFile::new("signup-token-from-a-file-0123456789\n");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let mut cmd = wa_onboard();
    cmd.arg("ingress")
        .env("WA_LISTEN", &addr)
        .env("WA_APP_SECRET", "secret")
        .env("WA_VERIFY_TOKEN", "verify")
        // Nothing is published in this test: no broker needed, none reached.
        .env("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env("WA_SIGNUP_API_TOKEN_FILE", token.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn wa-onboard ingress");
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/v1/signup-events");
    let status = |bearer: &'static str| {
        let request = http
            .post(&url)
            .header("authorization", bearer)
            .body(r#"{"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","data":{"current_step":"S"}}"#)
            .send();
        async move { request.await.ok().map(|r| r.status().as_u16()) }
    };
    eventually(Duration::from_secs(15), "ingress answering", || {
        status("Bearer wrong")
    })
    .await;
    assert_eq!(status("Bearer wrong").await, Some(401));
    // The right bearer passes authentication and validation; the broker is unreachable.
    assert_eq!(
        status("Bearer signup-token-from-a-file-0123456789").await,
        Some(503)
    );
    child.kill().await.unwrap();

    let short = run(wa_onboard()
        .arg("ingress")
        .env("WA_LISTEN", "127.0.0.1:0")
        .env("WA_APP_SECRET", "secret")
        .env("WA_VERIFY_TOKEN", "verify")
        .env("WA_SIGNUP_API_TOKEN", "short"))
    .await;
    assert_eq!(short.code, Some(1), "{short:?}");
    assert!(
        short.stderr.contains("WA_SIGNUP_API_TOKEN"),
        "{}",
        short.stderr
    );
    assert!(!short.stderr.contains("short\n"), "never echo the token");
}
