//! The per-route request counter every server exports (`<prefix>_requests_total` by route
//! and status). Label values come from the server's fixed route table and the statuses it
//! answers, never from request content; every pair of that table exists, at 0, from the
//! start. It owns no other metric and never encodes the registry (the server does).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

/// Labels of a server's `*_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// One of the routes served, or `other`.
    pub route: &'static str,
    /// The status code answered.
    pub status: u16,
}

/// Answered requests by route and status.
#[derive(Clone, Debug, Default)]
pub struct Requests(Family<RequestLabels, Counter>);

impl Requests {
    /// Registers the counter as `name` in `registry`, with every (route, status) of
    /// `route_statuses` at 0.
    pub fn register(
        registry: &mut Registry,
        name: &str,
        help: &str,
        route_statuses: &[(&'static str, &[u16])],
    ) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(name, help, requests.clone());
        for &(route, statuses) in route_statuses {
            for &status in statuses {
                let _ = requests.get_or_create(&RequestLabels { route, status });
            }
        }
        Self(requests)
    }

    /// Counts one answered request.
    #[inline]
    pub fn count(&self, route: &'static str, status: u16) {
        self.0.get_or_create(&RequestLabels { route, status }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_and_status_exists_at_zero_then_counts() {
        let mut registry = Registry::default();
        let requests = Requests::register(
            &mut registry,
            "x_requests",
            "help",
            &[("a", &[200, 404]), ("other", &[404])],
        );
        requests.count("a", 200);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"x_requests_total{route="a",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"x_requests_total{route="a",status="404"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"x_requests_total{route="other",status="404"} 0"#),
            "{text}"
        );
    }
}
