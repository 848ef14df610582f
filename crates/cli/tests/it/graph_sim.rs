//! `graph-sim` as an operator starts it: a child process on port 0, configured by flags
//! and environment, answering Graph's token call, and exiting cleanly on SIGTERM.

use std::{process::ExitStatus, time::Duration};

use serde_json::{Value, json};

use crate::helpers::*;

/// The well-known HMAC-SHA256 example (key `key`, the pangram as message), so the simulator's
/// `appsecret_proof` check is held to a value computed outside this project.
const APP_SECRET: &str = "key";
const SYSTEM_USER_TOKEN: &str = "The quick brown fox jumps over the lazy dog";
const PROOF: &str = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";

/// How long the simulator may take to stop.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// A running `wa-onboard graph-sim` child (killed on drop if a test fails half-way).
struct SimProcess {
    child: Listening,
    base: String,
    http: reqwest::Client,
}

impl SimProcess {
    /// Starts the simulator on port 0 with `args` and `envs`; it answers once it logged the
    /// address it bound.
    async fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut cmd = wa_onboard();
        cmd.arg("graph-sim")
            .args(["--listen", "127.0.0.1:0"])
            .env("WA_APP_SECRET", format!("{APP_SECRET},an-older-secret"))
            .args(args)
            .envs(envs.iter().copied());
        let child = serving(cmd).await;
        assert_eq!(child.role, "graph-sim");
        Self {
            base: child.base(),
            child,
            http: reqwest::Client::new(),
        }
    }

    /// `POST /v22.0/{business}/system_user_access_tokens` with these query parameters.
    async fn fetch_token(&self, business: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let reply = self
            .http
            .post(format!(
                "{}/v22.0/{business}/system_user_access_tokens",
                self.base
            ))
            .query(params)
            .send()
            .await
            .expect("graph-sim request");
        let status = reply.status().as_u16();
        (status, reply.json().await.expect("graph-sim answers JSON"))
    }

    async fn mode(&self) -> Value {
        let reply = self
            .http
            .get(format!("{}/_sim/mode", self.base))
            .send()
            .await
            .expect("mode");
        reply.json().await.expect("mode JSON")
    }

    async fn set_mode(&self, mode: Value) {
        let reply = self
            .http
            .post(format!("{}/_sim/mode", self.base))
            .json(&mode)
            .send()
            .await
            .expect("set mode");
        assert_eq!(reply.status(), 200);
    }

    /// Sends SIGTERM and waits for the process to exit.
    async fn terminate(mut self) -> ExitStatus {
        let exit = self.child.terminate(START_DEADLINE).await;
        exit.unwrap_or_else(|| {
            panic!(
                "graph-sim did not stop after SIGTERM\n{}",
                self.child.tail()
            )
        })
    }
}

/// The token call's parameters, as the worker sends them (no proof when `proof` is empty).
fn token_params<'a>(access_token: &'a str, proof: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("access_token", access_token),
        ("system_user_id", "61550000000001"),
        ("fetch_only", "true"),
    ];
    if !proof.is_empty() {
        params.push(("appsecret_proof", proof));
    }
    params
}

#[tokio::test]
async fn answers_a_token_request_and_stops_on_sigterm() {
    let sim = SimProcess::start(&[], &[]).await;

    let (status, body) = sim
        .fetch_token("200000000000001", &token_params("any-token", ""))
        .await;

    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("access_token");
    assert!(token.starts_with("sim-200000000000001-"), "{token}");
    let exit = sim.terminate().await;
    assert!(exit.success(), "graph-sim exited with {exit}");
}

#[tokio::test]
async fn strict_mode_checks_the_system_user_token_and_its_proof() {
    let sim = SimProcess::start(&["--system-user-token", SYSTEM_USER_TOKEN], &[]).await;

    // The proof is keyed by the first app secret of the list.
    let (status, body) = sim
        .fetch_token("200000000000001", &token_params(SYSTEM_USER_TOKEN, PROOF))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");

    let (status, body) = sim
        .fetch_token(
            "200000000000001",
            &token_params(SYSTEM_USER_TOKEN, &"0".repeat(64)),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], 100, "{body}");

    let other = "not-the-system-user-token";
    let other_proof = wa_envelope::signature::hmac_hex(APP_SECRET.as_bytes(), other.as_bytes());
    let (status, body) = sim
        .fetch_token("200000000000001", &token_params(other, &other_proof))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], 190, "{body}");

    assert!(sim.terminate().await.success());
}

#[tokio::test]
async fn failure_flags_set_the_starting_mode() {
    let sim = SimProcess::start(
        &["--fail-transient", "1"],
        &[("WA_GRAPH_SIM_FAIL_PERMANENT", "true")],
    )
    .await;
    assert_eq!(
        sim.mode().await,
        json!({"fail_transient": 1, "fail_permanent": true})
    );
    let params = token_params("any-token", "");

    let (status, body) = sim.fetch_token("200000000000001", &params).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!(190)),
        "{body}"
    );

    sim.set_mode(json!({"fail_permanent": false})).await;
    let (status, body) = sim.fetch_token("200000000000001", &params).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["is_transient"], true, "{body}");

    let (status, body) = sim.fetch_token("200000000000001", &params).await;
    assert_eq!(status, 200, "{body}");

    assert!(sim.terminate().await.success());
}

#[tokio::test]
async fn refuses_to_start_without_an_app_secret() {
    let out = run(wa_onboard().args(["graph-sim", "--listen", "127.0.0.1:0"])).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("WA_APP_SECRET"), "{}", out.stderr);
}
