//! The Prometheus pieces every role shares: the `wa_build_info` series and the text
//! exposition of a registry. Each role owns its own registry and metric names; this module
//! never registers anything else and never sees a label value.

use prometheus_client::{
    encoding::text::encode as encode_text, metrics::gauge::Gauge, registry::Registry,
};

/// Registers `wa_build_info{version="…"} 1` on `registry` (docs/REFERENCE.md, "Metrics").
pub fn register_build_info(registry: &mut Registry) {
    let build = Gauge::<i64>::default();
    build.set(1);
    registry
        .sub_registry_with_label(("version".into(), env!("CARGO_PKG_VERSION").into()))
        .register("wa_build_info", "Build of the running binary", build);
}

/// The Prometheus text exposition of `registry`.
#[must_use]
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode_text(&mut out, registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_is_one_with_the_workspace_version() {
        let mut registry = Registry::default();
        register_build_info(&mut registry);
        let text = encode(&registry);
        let line = format!(
            "wa_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&line), "{text}");
    }
}
