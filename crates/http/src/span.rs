//! The span of one request, named and shaped by the OpenTelemetry HTTP server conventions
//! (`http.request`, `otel.kind = "server"`, the route label as name and path, the method,
//! the status recorded once answered). It owns those field names only; the route label
//! comes from the server's fixed table, never from the request's path, and the server
//! decides the span's target and any field of its own.

/// What [`request_span!`](crate::request_span) expands to needs, reachable from any crate.
#[doc(hidden)]
pub use tracing;

/// An `info` span for one request: `request_span!(target: T, route, method, extra...)`,
/// where `route` is a `&'static str` label, `method` the request's method and every
/// `extra` an identifier recorded later (empty until then). Record the answer's status with
/// `span.record("http.response.status_code", status)`.
#[macro_export]
macro_rules! request_span {
    (target: $target:expr, $route:expr, $method:expr $(, $field:ident)* $(,)?) => {
        $crate::span::tracing::info_span!(
            target: $target,
            "http.request",
            otel.kind = "server",
            otel.name = $route,
            http.request.method = %$method,
            url.path = $route,
            http.response.status_code = $crate::span::tracing::field::Empty
            $(, $field = $crate::span::tracing::field::Empty)*
        )
    };
}
