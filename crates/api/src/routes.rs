//! The route table of docs/REFERENCE.md ("Internal API") and what every request goes
//! through before a handler: which route, the bearer, the method, no body, then the
//! handler's own query and path checks. Every answer is JSON (but `/metrics`), every error
//! `{"error": "<code>", "message": "…"}`.
//!
//! Order: `/healthz` and `/readyz` answer without a bearer (the kubelet's probes carry none;
//! they reveal only that the process runs and Redis answers). Anything else, unknown paths
//! included, is `401` without a valid bearer; then `404` for an unknown path, `405` for
//! another method than `GET`, `400` for a request with a body or a query that breaks its
//! rule. The handlers are in [`handlers`].

mod handlers;

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use hyper::body::{Body as _, Incoming};
use serde_json::json;
use tracing::{Instrument, warn};

use crate::{ApiConfig, ApiError, metrics::Metrics};

/// Every route the API serves: (method, path template as `docs/openapi.yaml` writes it).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/tenants"),
    ("GET", "/v1/tenants/{waba_id}"),
    ("GET", "/v1/tenants/{waba_id}/token"),
    ("GET", "/v1/signups/funnel"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

pub(crate) use wa_http::Reply;

/// Shared state of every request.
pub(crate) struct App {
    pub(crate) config: ApiConfig,
    pub(crate) metrics: Metrics,
}

/// A path of [`ROUTES`], with what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Tenants,
    Tenant(&'a str),
    TenantToken(&'a str),
    Funnel,
    Healthz,
    Readyz,
    Metrics,
}

impl<'a> Route<'a> {
    fn of(path: &'a str) -> Option<Self> {
        Some(match path {
            "/v1/tenants" => Self::Tenants,
            "/v1/signups/funnel" => Self::Funnel,
            "/healthz" => Self::Healthz,
            "/readyz" => Self::Readyz,
            "/metrics" => Self::Metrics,
            _ => {
                let rest = path.strip_prefix("/v1/tenants/")?;
                match rest.split_once('/') {
                    None => Self::Tenant(rest),
                    Some((id, "token")) => Self::TenantToken(id),
                    Some(_) => return None,
                }
            }
        })
    }

    /// The metric and span label.
    fn label(route: Option<Self>) -> &'static str {
        match route {
            Some(Self::Tenants) => "tenants",
            Some(Self::Tenant(_)) => "tenant",
            Some(Self::TenantToken(_)) => "tenant_token",
            Some(Self::Funnel) => "funnel",
            Some(Self::Healthz) => "healthz",
            Some(Self::Readyz) => "readyz",
            Some(Self::Metrics) => "metrics",
            None => "other",
        }
    }
}

/// A JSON answer (fields in the order the type declares them, as `tenants get` prints).
pub(crate) fn json_reply(status: StatusCode, body: &impl serde::Serialize) -> Reply {
    match serde_json::to_vec(body) {
        Ok(bytes) => reply(status, "application/json", bytes),
        Err(e) => {
            warn!(error = %e, "answer not serialisable");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "application/json",
                r#"{"error":"internal","message":"the answer could not be written"}"#,
            )
        }
    }
}

/// An answer that no proxy or client may keep: records and tokens must not linger in a
/// cache.
fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = wa_http::reply(status, content_type, body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error answer: `{"error": code, "message": message}`.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    json_reply(status, &json!({"error": code, "message": message}))
}

pub(crate) fn bad_request(e: &ApiError) -> Reply {
    error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string())
}

pub(crate) fn not_found(message: &str) -> Reply {
    error(StatusCode::NOT_FOUND, "not_found", message)
}

/// Redis could not answer: `503` with `Retry-After` if it may pass, else `500`. The cause
/// is logged, never sent (it may name keys).
pub(crate) fn store_failed(e: &wa_store::StoreError) -> Reply {
    if e.is_transient() {
        warn!(error = %e, "redis unavailable");
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Redis is not answering; retry later",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else {
        warn!(error = %e, "redis read failed");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "a stored record could not be read",
        )
    }
}

fn unauthorized() -> Reply {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong bearer token",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"wa-onboard-api\""),
    );
    r
}

/// Entry point for every request.
pub(crate) async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let path = req.uri().path().to_owned();
    let route = Route::of(&path);
    let label = Route::label(route);
    let span = wa_http::request_span!(target: module_path!(), label, req.method(), caller);
    let response = dispatch(&app, route, &req).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    app.metrics.request(label, response.status().as_u16());
    Ok(response)
}

async fn dispatch(app: &App, route: Option<Route<'_>>, req: &Request<Incoming>) -> Reply {
    let probe = matches!(route, Some(Route::Healthz | Route::Readyz));
    let caller = if probe {
        None
    } else {
        match app
            .config
            .callers
            .authenticate(req.headers().get(header::AUTHORIZATION))
        {
            Some(caller) => {
                tracing::Span::current().record("caller", caller);
                Some(caller)
            }
            None => return unauthorized(),
        }
    };
    let Some(route) = route else {
        return not_found("no such route");
    };
    if req.method() != Method::GET {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "only GET is served",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    if !req.body().is_end_stream() {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "request bodies are not accepted",
        );
    }
    let query = req.uri().query();
    if !matches!(route, Route::Tenants | Route::Funnel)
        && let Err(e) = crate::query::none(query)
    {
        return bad_request(&e);
    }
    let caller = caller.unwrap_or_default();
    match route {
        Route::Healthz => json_reply(StatusCode::OK, &json!({"status": "ok"})),
        Route::Readyz => handlers::readyz(app).await,
        Route::Metrics => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            app.metrics.encode(),
        ),
        Route::Tenants => handlers::tenants(app, query).await,
        Route::Tenant(id) => handlers::tenant(app, id).await,
        Route::TenantToken(id) => handlers::token(app, caller, id).await,
        Route::Funnel => handlers::funnel(app, query).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        assert_eq!(Route::of("/v1/tenants"), Some(Route::Tenants));
        assert_eq!(Route::of("/v1/tenants/12"), Some(Route::Tenant("12")));
        assert_eq!(Route::of("/v1/tenants/"), Some(Route::Tenant("")));
        assert_eq!(
            Route::of("/v1/tenants/12/token"),
            Some(Route::TenantToken("12"))
        );
        assert_eq!(Route::of("/v1/tenants/12/tokens"), None);
        assert_eq!(Route::of("/v1/tenants/12/token/x"), None);
        assert_eq!(Route::of("/v1/tenants/12/token/"), None);
        assert_eq!(Route::of("/v1/signups/funnel"), Some(Route::Funnel));
        assert_eq!(Route::of("/v1/tenants?x"), None);
        assert_eq!(Route::of("/"), None);
        assert_eq!(Route::of("/metrics/"), None);
    }

    #[test]
    fn every_route_of_the_table_is_matched() {
        for (_, template) in ROUTES {
            let path = template.replace("{waba_id}", "1");
            assert!(Route::of(&path).is_some(), "{template}");
        }
    }
}
