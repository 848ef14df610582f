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

#[cfg(test)]
mod tests {
    use tracing::subscriber::with_default;

    #[test]
    fn names_the_span_by_the_http_server_conventions_with_the_servers_fields() {
        with_default(tracing_subscriber::registry(), || {
            let span =
                crate::request_span!(target: "x::trace", "webhook", http::Method::POST, changes);
            let meta = span.metadata().expect("enabled under a subscriber");
            assert_eq!(meta.name(), "http.request");
            assert_eq!(meta.target(), "x::trace");
            let fields: Vec<&str> = meta.fields().iter().map(|f| f.name()).collect();
            assert_eq!(
                fields,
                [
                    "otel.kind",
                    "otel.name",
                    "http.request.method",
                    "url.path",
                    "http.response.status_code",
                    "changes"
                ]
            );
        });
    }
}
