//! One function per route of docs/REFERENCE.md ("Internal API"), each given a request that
//! already passed the bearer, method and body checks: a path id or a query to parse, a
//! Redis read, a JSON answer.
//!
//! The token route audit-logs every read of a valid WABA id (target `wa_api::audit`:
//! caller, WABA, outcome; never the token) and counts it per caller.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Value, json};
use tracing::info;
use wa_ids::WabaId;
use wa_store::{Status, TenantRecord};

use super::{App, Reply, bad_request, error, json_reply, not_found, store_failed};
use crate::{
    ApiError,
    query::{ListQuery, encode_cursor, funnel_since},
};

/// How long a readiness check waits for Redis.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

fn waba_id(raw: &str) -> Result<WabaId, ApiError> {
    WabaId::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `GET /readyz`: `200` once Redis answers a `PING`, else `503`.
pub(super) async fn readyz(app: &App) -> Reply {
    let store = app.config.vault.store();
    let ready = matches!(
        tokio::time::timeout(READY_TIMEOUT, store.ping()).await,
        Ok(Ok(()))
    );
    app.metrics.redis_ready.set(i64::from(ready));
    if ready {
        json_reply(StatusCode::OK, &json!({"status": "ready"}))
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Redis is not answering",
        )
    }
}

/// `GET /v1/tenants/{waba_id}`: the record, `404` unknown, `400` not an id.
pub(super) async fn tenant(app: &App, raw: &str) -> Reply {
    let waba_id = match waba_id(raw) {
        Ok(id) => id,
        Err(e) => return bad_request(&e),
    };
    match app.config.vault.store().get(&waba_id).await {
        Ok(Some(record)) => json_reply(StatusCode::OK, &record),
        Ok(None) => not_found("unknown WABA"),
        Err(e) => store_failed(&e),
    }
}

/// The answer of `GET /v1/tenants`.
#[derive(Serialize)]
struct PageBody<'a> {
    tenants: &'a [TenantRecord],
    next_cursor: Option<String>,
}

/// The answer of `GET /v1/tenants/{waba_id}/token`.
#[derive(Serialize)]
struct TokenBody<'a> {
    access_token: &'a str,
    expires_at: Value,
}

/// Whether `record`'s `attention` lists `wanted` (a name no check uses matches nothing).
fn needs_attention(record: &TenantRecord, wanted: &str) -> bool {
    record.attention.iter().any(|a| a.as_str() == wanted)
}

/// `GET /v1/tenants?status=&attention=&limit=&cursor=`: a page and where the next starts.
pub(super) async fn tenants(app: &App, query: Option<&str>) -> Reply {
    let q = match ListQuery::parse(query) {
        Ok(q) => q,
        Err(e) => return bad_request(&e),
    };
    let (status, attention) = (q.status, q.attention.clone());
    let keep = move |r: &TenantRecord| {
        status.is_none_or(|s| r.status == s)
            && attention.as_deref().is_none_or(|a| needs_attention(r, a))
    };
    match app
        .config
        .vault
        .store()
        .tenant_page(&q.from, q.limit, keep)
        .await
    {
        Ok(page) => json_reply(
            StatusCode::OK,
            &PageBody {
                tenants: &page.records,
                next_cursor: page.next.as_ref().map(encode_cursor),
            },
        ),
        Err(wa_store::StoreError::InvalidInput { .. }) => bad_request(&ApiError::BadRequest(
            "`cursor` is not one this API gave out".to_owned(),
        )),
        Err(e) => store_failed(&e),
    }
}

/// `GET /v1/tenants/{waba_id}/token`: the business token of an installed tenant, `404`
/// when none is held. Audit-logged and counted per caller.
pub(super) async fn token(app: &App, caller: &str, raw: &str) -> Reply {
    let waba_id = match waba_id(raw) {
        Ok(id) => id,
        Err(e) => return bad_request(&e),
    };
    let audit = |outcome: &'static str, detail: &str| {
        app.metrics.token_read(caller, outcome);
        info!(target: "wa_api::audit", caller, waba_id = %waba_id, outcome, detail, "token read");
    };
    let record = match app.config.vault.store().get(&waba_id).await {
        Ok(record) => record,
        Err(e) => {
            audit("error", "tenant record not read");
            return store_failed(&e);
        }
    };
    let Some(record) = record else {
        audit("not_found", "unknown WABA");
        return not_found("unknown WABA");
    };
    if record.status != Status::Installed {
        audit("not_found", "not installed");
        return not_found(&format!(
            "no business token: the tenant is {}",
            record.status.as_str()
        ));
    }
    let token = match app.config.vault.token(&waba_id).await {
        Ok(token) => token,
        Err(e) => {
            audit("error", "token not read");
            return store_failed(&e);
        }
    };
    let Some(token) = token else {
        let status = record.token.status.map_or("none", |s| s.as_str());
        audit("not_found", "no token held");
        return not_found(&format!("no business token held (token status {status})"));
    };
    audit("served", "");
    json_reply(
        StatusCode::OK,
        &TokenBody {
            access_token: token.expose_secret(),
            expires_at: expires_at(&record),
        },
    )
}

/// `token.expires_at` of the record (`0`: never expires), or `null` while it is unknown
/// (records that do not carry the field yet).
fn expires_at(record: &TenantRecord) -> Value {
    serde_json::to_value(&record.token)
        .ok()
        .and_then(|t| t.get("expires_at").cloned())
        .unwrap_or(Value::Null)
}

/// `GET /v1/signups/funnel?since=7d`: the funnel over the last `since`.
pub(super) async fn funnel(app: &App, query: Option<&str>) -> Reply {
    let since = match funnel_since(query) {
        Ok(since) => since,
        Err(e) => return bad_request(&e),
    };
    let now = unix_now();
    let from = now - i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    match app.config.vault.store().signup_funnel(from, now).await {
        Ok(funnel) => json_reply(StatusCode::OK, &funnel),
        Err(e) => store_failed(&e),
    }
}
