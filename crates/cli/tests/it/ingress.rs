//! `wa-onboard ingress`'s settings: a bound that cannot work is refused at start, naming its
//! variable.

use crate::helpers::{run, wa_onboard};

#[tokio::test]
async fn unauthenticated_bounds_that_cannot_work_are_refused_at_start() {
    let ingress = || {
        let mut cmd = wa_onboard();
        cmd.arg("ingress")
            .env("WA_LISTEN", "127.0.0.1:0")
            .env("WA_APP_SECRET", "secret")
            .env("WA_VERIFY_TOKEN", "verify")
            .env("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f");
        cmd
    };
    // Less room for unverified bodies than one body may take.
    let small = run(ingress()
        .env("WA_MAX_BODY_BYTES", "1048576")
        .env("WA_MAX_UNVERIFIED_BYTES", "65536"))
    .await;
    assert_eq!(small.code, Some(1), "{small:?}");
    assert!(
        small.stderr.contains("WA_MAX_UNVERIFIED_BYTES"),
        "{}",
        small.stderr
    );
    // Out of range or not a number: a usage error naming the setting (its flag).
    for (variable, flag, value) in [
        ("WA_MAX_CONNECTIONS", "--max-connections", "0"),
        ("WA_MAX_CONNECTIONS", "--max-connections", "many"),
        (
            "WA_MAX_UNVERIFIED_BYTES",
            "--max-unverified-bytes",
            "2000000000",
        ),
    ] {
        let out = run(ingress().env(variable, value)).await;
        assert_eq!(out.code, Some(2), "{variable}={value}: {out:?}");
        assert!(out.stderr.contains(flag), "{}", out.stderr);
    }
}
