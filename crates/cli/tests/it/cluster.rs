//! The binary on the Redis Cluster of scripts/redis-cluster.sh (3 masters, 3 replicas):
//! `tenants list|get|token|rekey` and the API's pages see tenants on every master;
//! `REDIS_URL_FILE` and `AMQP_URL_FILE`; a `REDIS_URL` or `WA_REDIS_CA_FILE` that cannot work
//! refused at start; a worker waiting for the replicas its writes wait for, ready once they are
//! there, and saying so when its Redis user may not run the `INFO` that tells.

use std::{collections::BTreeSet, time::Duration};

use serde_json::Value;

use tokio::process::Command;

use crate::helpers::{
    Listening, Role, TempFile, TestTenants, amqp_url, delete_topology, install, run, serving,
    wa_onboard,
};

/// WABA ids whose hash tags fall on all three masters' slot ranges (0-5460: 101, 104, 105;
/// 5461-10922: 102, 106; 10923-16383: 103, 107).
const WABAS: [&str; 7] = ["101", "102", "103", "104", "105", "106", "107"];
const OWNER: &str = "900";

async fn arranged() -> TestTenants {
    let t = TestTenants::cluster().await;
    for waba in WABAS {
        t.install(&install(waba, OWNER, 1_730_000_000)).await;
        t.store_token(waba, &format!("tok-{waba}"), 1_730_000_001, 1_730_000_000)
            .await;
    }
    t
}

fn listed(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("one JSON record a line");
            record["waba_id"].as_str().expect("waba_id").to_owned()
        })
        .collect()
}

fn all() -> BTreeSet<String> {
    WABAS.iter().map(|w| (*w).to_owned()).collect()
}

#[tokio::test]
async fn tenants_list_get_token_and_rekey_reach_every_master() {
    let t = arranged().await;

    let out = run(&mut t.tenants(&["list"])).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(listed(&out.stdout), all());

    for waba in WABAS {
        let out = run(&mut t.tenants(&["get", waba])).await;
        assert_eq!(out.code, Some(0), "{waba}: {out:?}");
        let out = run(&mut t.tenants(&["token", waba])).await;
        assert_eq!(out.stdout, format!("tok-{waba}\n"), "{out:?}");
    }

    // Rotation: rekey under `new,old`, then the old key can go, on every master.
    let new = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    };
    let both = format!("{new},{}", t.key_base64);
    let out = run(t.tenants(&["rekey"]).env("WA_TOKEN_KEY", &both)).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    for waba in WABAS {
        let out = run(t.tenants(&["token", waba]).env("WA_TOKEN_KEY", &new)).await;
        assert_eq!(out.stdout, format!("tok-{waba}\n"), "{waba}: {out:?}");
    }
}

#[tokio::test]
async fn the_apis_pages_walk_every_master() {
    let t = arranged().await;
    let mut cmd = wa_onboard();
    cmd.arg("api")
        .env("WA_API_LISTEN", "127.0.0.1:0")
        .env("WA_API_TOKENS", "crm:crm-token-0123456789abcdef")
        .env("REDIS_URL", &t.url)
        .env("WA_REDIS_PREFIX", &t.prefix)
        .env("WA_TOKEN_KEY", &t.key_base64);
    let child = serving(cmd).await;
    let http = reqwest::Client::new();
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut url = format!("{}/v1/tenants?limit=2", child.base());
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http
            .get(url)
            .bearer_auth("crm-token-0123456789abcdef")
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        for tenant in page["tenants"].as_array().unwrap() {
            assert!(tenant["waba_id"].is_string(), "{tenant}");
            seen.insert(tenant["waba_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, all());
}

#[tokio::test]
async fn redis_and_amqp_urls_may_come_from_files() {
    let t = arranged().await;
    let urls = TempFile::new(format!("{}\n", t.url));
    let out = run(t
        .tenants(&["list"])
        .env_remove("REDIS_URL")
        .env("REDIS_URL_FILE", urls.path()))
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(listed(&out.stdout), all());

    // The broker's URLs are read from their file: what it holds is what is refused.
    let amqp = TempFile::new("http://:hunter2@from-the-file/\n");
    let out = run(wa_onboard()
        .args(["dlq", "list"])
        .env("AMQP_URL_FILE", amqp.path()))
    .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("AMQP_URL"), "{}", out.stderr);
    assert!(out.stderr.contains("from-the-file"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    let missing = run(wa_onboard()
        .args(["dlq", "list"])
        .env("AMQP_URL_FILE", "/nonexistent/amqp-url"))
    .await;
    assert!(
        missing.stderr.contains("AMQP_URL_FILE"),
        "{}",
        missing.stderr
    );
}

#[tokio::test]
async fn redis_settings_that_cannot_work_are_refused_at_start_naming_them() {
    for url in [
        "http://:hunter2@127.0.0.1:6379",
        "redis://:hunter2@127.0.0.1:7001,rediss://127.0.0.1:7002",
        " , ",
    ] {
        let out = run(wa_onboard().args(["tenants", "list"]).env("REDIS_URL", url)).await;
        assert_eq!(out.code, Some(1), "{url}: {out:?}");
        assert!(out.stderr.contains("REDIS_URL"), "{url}: {}", out.stderr);
        assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);

        let out = run(wa_onboard()
            .arg("worker")
            .env("WA_APP_SECRET", "settings-test-secret")
            .env("WA_SYSTEM_USER_ID", "61550000000001")
            .env("WA_APP_ID", "1061231232323117")
            .env("WA_SYSTEM_USER_TOKEN", "settings-test-token")
            .env(
                "WA_TOKEN_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            .env("WA_METRICS_LISTEN", "127.0.0.1:0")
            .env("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
            .env("REDIS_URL", url))
        .await;
        assert_eq!(out.code, Some(1), "worker, {url}: {out:?}");
        assert!(
            out.stderr.contains("REDIS_URL"),
            "worker, {url}: {}",
            out.stderr
        );
    }
    // Each CA file that cannot work, with what the refusal says besides the variable's name.
    let not_pem = TempFile::new("not a certificate");
    // PEM armour around what is not a certificate: refused before any connection.
    let garbled =
        TempFile::new("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
    // A real CA that did not sign the server: the connection fails, naming the CA file too.
    let foreign = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/foreign_ca.crt");
    for (ca, said) in [
        (std::path::Path::new("/nonexistent/ca.pem"), "reading"),
        (not_pem.path(), "holds no PEM"),
        (garbled.path(), "no certificate the TLS client can read"),
        (foreign.as_path(), "UnknownIssuer"),
    ] {
        let out = run(wa_onboard()
            .args(["tenants", "list"])
            .env("REDIS_URL", wa_testkit::redis_tls_url())
            .env("WA_REDIS_CA_FILE", ca))
        .await;
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr.contains("WA_REDIS_CA_FILE") && out.stderr.contains(said),
            "{}: {}",
            ca.display(),
            out.stderr
        );
    }
    // A CA for a plain redis:// URL would make the client fail at every connection attempt
    // (a worker would wait for Redis forever): refused at start instead, by every role.
    let out = run(wa_onboard()
        .args(["tenants", "list"])
        .env("REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0")
        .env("WA_REDIS_CA_FILE", wa_testkit::redis_tls_ca()))
    .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("is not rediss://"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    for replicas in ["17", "-1", "one"] {
        let out = run(wa_onboard()
            .args(["tenants", "list"])
            .env("WA_REDIS_WAIT_REPLICAS", replicas))
        .await;
        assert_eq!(out.code, Some(2), "{replicas}: {out:?}");
        assert!(
            out.stderr.contains("WA_REDIS_WAIT_REPLICAS"),
            "{}",
            out.stderr
        );
    }
}

/// `wa-onboard worker` on `redis` (metrics on port 0), writes waiting for `wait` replicas
/// (`None`: the default), consuming from `amqp` under `amqp_prefix`.
fn replicas_worker(redis: &str, wait: Option<&str>, amqp: &str, amqp_prefix: &str) -> Command {
    let mut cmd = wa_onboard();
    cmd.arg("worker")
        .env("WA_METRICS_LISTEN", "127.0.0.1:0")
        .env("WA_APP_SECRET", "replicas-test-secret")
        .env("WA_SYSTEM_USER_ID", "61550000000001")
        .env("WA_APP_ID", "1061231232323117")
        .env("WA_SYSTEM_USER_TOKEN", "replicas-test-token")
        .env(
            "WA_TOKEN_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env("AMQP_URL", amqp)
        .env("WA_AMQP_PREFIX", amqp_prefix)
        .env("REDIS_URL", redis)
        .env("WA_REDIS_PREFIX", "watest:replicas:");
    if let Some(wait) = wait {
        cmd.env("WA_REDIS_WAIT_REPLICAS", wait);
    }
    cmd
}

/// Polls `/readyz` of `worker` until it answers `503` with `said` in its body; the body.
async fn not_ready_saying(worker: &mut Listening, said: &str) -> String {
    let url = format!("{}/readyz", worker.base());
    let http = reqwest::Client::new();
    let body = wa_testkit::eventually(Duration::from_secs(20), said, || {
        let request = http.get(&url).send();
        async {
            let reply = request.await.ok()?;
            let status = reply.status();
            let body = reply.text().await.ok()?;
            (status == 503 && body.contains(said)).then_some(body)
        }
    })
    .await;
    worker.assert_running();
    body
}

/// A worker whose writes would wait for more replicas than a Redis primary has does not
/// consume: its `/readyz` and its log say how many replicas `WA_REDIS_WAIT_REPLICAS` asks and
/// how many the primary has, and it starts once they are there (here, never: the broker is
/// unreachable on purpose, so `/readyz` moving on to it shows the replica check passed).
#[tokio::test]
async fn a_worker_waits_for_the_replicas_its_writes_wait_for() {
    let standalone = wa_testkit::redis_url();
    let cluster = wa_testkit::redis_cluster_urls();
    let unreachable = "amqp://guest:guest@127.0.0.1:1/%2f";
    for (redis, wait, said) in [
        (
            &standalone,
            Some("1"),
            format!("WA_REDIS_WAIT_REPLICAS is 1, but the Redis primary {standalone} has 0"),
        ),
        (
            &cluster,
            Some("2"),
            "WA_REDIS_WAIT_REPLICAS is 2, but the Redis primary 127.0.0.1:".to_owned(),
        ),
        (&cluster, None, "broker not connected".to_owned()),
    ] {
        let cmd = replicas_worker(redis, wait, unreachable, "wa-unreachable");
        let mut worker = serving(cmd).await;
        let body = not_ready_saying(&mut worker, &said).await;
        if wait.is_some() {
            assert!(body.contains("not consuming"), "{body}");
            let log = worker.tail();
            assert!(
                log.contains("too few replicas") && log.contains(said.as_str()),
                "{log}"
            );
        }
        worker.kill().await;
    }
}

/// With RabbitMQ reachable, the same worker is ready (`/readyz` `200`, consuming) once every
/// primary has the replicas its writes wait for: one on the cluster, where each master has
/// one, or none on one Redis; and not ready, saying why, while a primary falls short.
#[tokio::test]
async fn a_worker_whose_primaries_have_the_replicas_becomes_ready() {
    let amqp_prefix = format!("wa-replicas-test-{:016x}", rand::random::<u64>());
    let http = reqwest::Client::new();
    let standalone = wa_testkit::redis_url();
    let cluster = wa_testkit::redis_cluster_urls();
    for (redis, wait) in [(&cluster, "1"), (&standalone, "0")] {
        let cmd = replicas_worker(redis, Some(wait), &amqp_url(), &amqp_prefix);
        let mut worker = Role::start("worker", cmd).await;
        worker.wait_ready(&http).await;
        worker.stop().await;
    }
    let cmd = replicas_worker(&standalone, Some("1"), &amqp_url(), &amqp_prefix);
    let mut worker = serving(cmd).await;
    let said = format!("WA_REDIS_WAIT_REPLICAS is 1, but the Redis primary {standalone} has 0");
    let body = not_ready_saying(&mut worker, &said).await;
    assert!(body.contains("not consuming"), "{body}");
    worker.kill().await;
    delete_topology(&amqp_url(), wa_broker::Topology::new(&amqp_prefix)).await;
}

/// A worker whose Redis user may not run `INFO` cannot tell whether the primaries have the
/// replicas its writes wait for: it does not consume, says so once in its log and on
/// `/readyz` with Redis's answer, and names the setting to change; with
/// `WA_REDIS_WAIT_REPLICAS=0` it needs no `INFO` and becomes ready.
#[tokio::test]
async fn a_worker_that_may_not_run_info_says_it_cannot_check_the_replicas() {
    let user = wa_testkit::RedisUserWithout::create("info").await;
    let amqp_prefix = format!("wa-replicas-test-{:016x}", rand::random::<u64>());
    let cmd = replicas_worker(&user.url(), Some("1"), &amqp_url(), &amqp_prefix);
    let mut worker = serving(cmd).await;
    let said = "cannot check WA_REDIS_WAIT_REPLICAS on the Redis primary";
    let body = not_ready_saying(&mut worker, said).await;
    assert!(
        body.contains("INFO refused (NOPERM") && body.contains("not consuming"),
        "{body}"
    );
    assert!(
        !body.contains(wa_testkit::ACL_TEST_PASSWORD),
        "never the password: {body}"
    );
    let log = worker.tail();
    assert!(
        log.matches("set it to 0 or allow INFO").count() == 1 && !log.contains("redis unreachable"),
        "logged once, not as an outage: {log}"
    );
    worker.kill().await;
    let cmd = replicas_worker(&user.url(), Some("0"), &amqp_url(), &amqp_prefix);
    let mut worker = Role::start("worker", cmd).await;
    worker.wait_ready(&reqwest::Client::new()).await;
    worker.stop().await;
    delete_topology(&amqp_url(), wa_broker::Topology::new(&amqp_prefix)).await;
}
