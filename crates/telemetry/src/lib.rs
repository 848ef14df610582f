//! Logs, traces and W3C trace context for every wa-onboard role.
//!
//! What this crate owns: installing the `tracing` subscriber (filter from `RUST_LOG`, JSON
//! lines when the output is not a terminal), the OpenTelemetry tracer provider behind the
//! `tracing-opentelemetry` layer, and turning a span into the `traceparent` header carried by
//! every broker message, and back.
//!
//! Export follows OpenTelemetry's standard variables: spans go over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and nowhere
//! otherwise; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_TRACES_SAMPLER(_ARG)`
//! are honoured by the SDK. Without an exporter no OpenTelemetry layer is installed at all
//! (spans then cost only what the log filter lets through), and [`traceparent`] starts a new
//! root trace per call, so every message still carries a `traceparent` that links the
//! ingress's delivery to the worker's handling of it. It never sees a payload, a token or a
//! secret: callers put only identifiers in span fields.
//!
//! [`metrics`] holds the Prometheus pieces every role shares (`wa_build_info`, encoding).

pub mod metrics;

use std::{collections::HashMap, io::IsTerminal};

use opentelemetry::{
    Context,
    propagation::TextMapPropagator,
    trace::{SpanContext, TraceContextExt, TraceFlags, TraceState, TracerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

/// The W3C trace-context header name.
pub const TRACEPARENT: &str = "traceparent";

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` does not parse.
    #[error("invalid RUST_LOG: {0}")]
    Filter(String),
    /// A global subscriber was already installed.
    #[error("tracing subscriber already installed")]
    AlreadyInstalled,
    /// The OTLP exporter could not be built from the `OTEL_EXPORTER_OTLP_*` variables.
    #[error("OTLP exporter: {0}")]
    Exporter(String),
}

fn configured(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// Keeps the tracer provider alive, when spans are exported; dropping it flushes and stops
/// span processing.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = &self.provider {
            // Nothing useful can be done with a flush failure while exiting.
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber for `service_name`.
///
/// # Errors
///
/// [`TelemetryError`] when `RUST_LOG` is invalid or a subscriber is already installed.
pub fn init(service_name: &'static str) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new("info"))
        .map_err(|e| TelemetryError::Filter(e.to_string()))?;
    // Only when spans go somewhere: with nothing to export, the layer would still give every
    // span of every request ids, attributes and an SDK span to build and drop.
    let provider = if configured("OTEL_EXPORTER_OTLP_ENDPOINT")
        || configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    {
        let mut resource = Resource::builder();
        if !configured("OTEL_SERVICE_NAME") {
            resource = resource.with_service_name(service_name);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        Some(
            SdkTracerProvider::builder()
                .with_resource(resource.build())
                .with_batch_exporter(exporter)
                .build(),
        )
    } else {
        None
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service_name)));
    let json = !std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let result = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    result.map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry { provider })
}

/// The `traceparent` of `span`, or of a new root trace when the span has no OpenTelemetry
/// context (telemetry not initialised, as in some tests), so every message carries one.
pub fn traceparent(span: &tracing::Span) -> String {
    let mut cx = span.context();
    if !cx.span().span_context().is_valid() {
        let ids = RandomIdGenerator::default();
        cx = Context::new().with_remote_span_context(SpanContext::new(
            ids.new_trace_id(),
            ids.new_span_id(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ));
    }
    let mut carrier = HashMap::with_capacity(1);
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT).unwrap_or_default()
}

/// Makes `span` a child of the trace named by a `traceparent` header value. A missing or
/// malformed header leaves the span a root.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The trace id of a `traceparent` value, if it is well-formed.
pub fn trace_id(traceparent: &str) -> Option<String> {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_without_context_still_gets_a_valid_traceparent() {
        let tp = traceparent(&tracing::Span::none());
        let parts: Vec<_> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1].len(), 32);
        assert_eq!(parts[2].len(), 16);
        assert_eq!(trace_id(&tp).as_deref(), Some(parts[1]));
        assert_ne!(traceparent(&tracing::Span::none()), tp);
    }

    #[test]
    fn garbage_is_not_a_trace() {
        assert_eq!(trace_id("00-zz-yy-01"), None);
        assert_eq!(trace_id(""), None);
    }
}
