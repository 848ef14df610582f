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
//! Each layer has its own filter, so each sees only what it needs: both follow `RUST_LOG`, and
//! the log lines leave out spans whose target ends in [`TRACE_ONLY`] (a request's spans on a
//! hot path, made for the trace exporter). With no exporter such a span is enabled by no
//! layer, so creating, entering and recording it costs a disabled callsite's check.
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
    trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{FilterExt, filter_fn},
    fmt::MakeWriter,
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// The W3C trace-context header name.
pub const TRACEPARENT: &str = "traceparent";

/// The target suffix of spans made for the trace exporter alone (e.g.
/// `target: "wa_ingress::trace"`): log lines never carry their fields, so with no exporter
/// they cost nothing. `RUST_LOG` still filters them by their crate's name.
pub const TRACE_ONLY: &str = "::trace";

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
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    let tracer = provider.as_ref().map(|p| p.tracer(service_name));
    let json = !std::io::stderr().is_terminal();
    subscriber(tracer, json, &directives, std::io::stderr)?
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry { provider })
}

/// The subscriber [`init`] installs: log lines (JSON or text) to `writer`, and the
/// OpenTelemetry layer when there is a `tracer`, each filtered by `directives` (`RUST_LOG`
/// syntax; `info` when empty) on its own. Log lines leave out [`TRACE_ONLY`] spans.
fn subscriber<W>(
    tracer: Option<SdkTracer>,
    json: bool,
    directives: &str,
    writer: W,
) -> Result<Box<dyn tracing::Subscriber + Send + Sync>, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = || {
        EnvFilter::try_new(if directives.is_empty() {
            "info"
        } else {
            directives
        })
        .map_err(|e| TelemetryError::Filter(e.to_string()))
    };
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().with_writer(writer).boxed()
    };
    let logged = filter_fn(|meta| !(meta.is_span() && meta.target().ends_with(TRACE_ONLY)));
    let logging = tracing_subscriber::registry().with(logs.with_filter(filter()?.and(logged)));
    // No `Option` layer for "no exporter": beside per-layer filters, an absent layer counts
    // as one that wants every span, and the trace-only spans would be built for nobody.
    Ok(match tracer {
        Some(tracer) => Box::new(
            logging.with(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(filter()?),
            ),
        ),
        None => Box::new(logging),
    })
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
    use std::sync::{Arc, Mutex, PoisonError};

    use opentelemetry_sdk::trace::InMemorySpanExporter;

    use super::*;

    /// What the log layer wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
                .into_owned()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Self;

        fn make_writer(&'w self) -> Self {
            self.clone()
        }
    }

    /// Held by each test that installs a subscriber: whether a callsite is enabled is cached
    /// per process from every live subscriber, so two tests' subscribers alive at once (the
    /// test harness runs them on parallel threads) can let one's span through the other's
    /// filter. A service has one subscriber; only the tests need this.
    static ONE_SUBSCRIBER: Mutex<()> = Mutex::new(());

    #[test]
    fn without_an_exporter_a_trace_only_span_is_never_built() {
        let _alone = ONE_SUBSCRIBER
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let logs = Captured::default();
        let subscriber = subscriber(None, true, "", logs.clone()).expect("subscriber");
        tracing::subscriber::with_default(subscriber, || {
            let hot = tracing::info_span!(target: "wa_test::trace", "hot", route = "hot-route");
            assert!(hot.is_disabled(), "no layer wants a trace-only span");
            let kept = tracing::info_span!("kept", queue = "kept-queue");
            assert!(!kept.is_disabled());
            hot.in_scope(|| kept.in_scope(|| tracing::warn!("inside both")));
        });
        let text = logs.text();
        assert!(text.contains("inside both"), "{text}");
        assert!(
            text.contains("kept-queue"),
            "ordinary spans still give context: {text}"
        );
        assert!(!text.contains("hot-route"), "{text}");
    }

    #[test]
    fn with_an_exporter_a_trace_only_span_is_exported_but_not_logged() {
        let _alone = ONE_SUBSCRIBER
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let logs = Captured::default();
        let subscriber =
            subscriber(Some(provider.tracer("test")), true, "", logs.clone()).expect("subscriber");
        tracing::subscriber::with_default(subscriber, || {
            let hot =
                tracing::info_span!(target: "wa_test::trace", "exported", route = "hot-route");
            assert!(!hot.is_disabled());
            hot.in_scope(|| tracing::warn!("inside the exported span"));
        });
        let spans = exporter.get_finished_spans().expect("spans");
        assert!(spans.iter().any(|s| s.name == "exported"), "{spans:?}");
        let text = logs.text();
        assert!(text.contains("inside the exported span"), "{text}");
        assert!(!text.contains("hot-route"), "{text}");
    }

    #[test]
    fn a_log_filter_that_does_not_parse_is_refused() {
        assert!(matches!(
            subscriber(None, true, "wa_ingress=loud", Captured::default()),
            Err(TelemetryError::Filter(_))
        ));
    }

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
