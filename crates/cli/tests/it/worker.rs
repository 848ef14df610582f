use crate::helpers::*;

#[tokio::test]
async fn the_worker_refuses_to_start_without_a_usable_app_id() {
    let out = run(wa_onboard().args(["worker", "--metrics-listen", "127.0.0.1:0"])).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("WA_APP_ID is required"),
        "{}",
        out.stderr
    );

    let out = run(wa_onboard()
        .args(["worker", "--metrics-listen", "127.0.0.1:0"])
        .env("WA_APP_ID", "app-1061231232323117"))
    .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("WA_APP_ID"), "{}", out.stderr);
}
