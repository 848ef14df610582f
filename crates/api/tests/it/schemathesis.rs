//! Schemathesis (from PyPI) against the running API, checked against `docs/openapi.yaml`:
//! no server error, answers that conform to the documented schemas, status codes and
//! content types, and no route that works without its bearer (`ignored_auth`). Ignored by
//! default: `scripts/check-api.sh` installs schemathesis and runs it
//! (`SCHEMATHESIS` = its path, `SCHEMATHESIS_EXAMPLES` = examples per operation).

use std::process::Stdio;

use crate::helpers::{CRM, spawn_api};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs schemathesis: run scripts/check-api.sh"]
async fn schemathesis_finds_nothing() {
    let program = std::env::var("SCHEMATHESIS")
        .expect("SCHEMATHESIS: the path of the schemathesis command (scripts/check-api.sh)");
    let examples = std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "50".to_owned());
    let api = spawn_api().await;
    // The documented example WABA holds a token; others are uninstalled or pending.
    api.install_with_token("495709166956424", 1_730_000_000, "EAAG-schemathesis-token")
        .await;
    api.install_with_token("495709166956425", 100, "EAAG-gone")
        .await;
    api.uninstall("495709166956425", 200).await;
    api.install("495709166956426", 100).await;
    for i in 0..20 {
        api.install(&format!("{}", 1_000_000 + i), 100).await;
    }
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");
    let out = tokio::process::Command::new(program)
        .args(["run", spec, "--url", &api.base])
        .args(["--header", &format!("Authorization: Bearer {CRM}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,ignored_auth",
        ])
        .args(["--max-examples", &examples, "--workers", "2"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", "10"])
        .env("NO_COLOR", "1")
        // Its cache (.schemathesis/) stays out of the source tree.
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The figures (operations, test cases, failures) for the CI log.
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found problems (above)");
    api.stop().await;
}
