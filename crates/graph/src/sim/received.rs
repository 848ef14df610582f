//! The simulator's memory of the Graph calls it received: one [`Call`] per request, in arrival
//! order, at most a fixed number kept (the oldest dropped first, and counted). Owns only the
//! record and its bound; never sees a request's parameters or body, so it cannot hold a token,
//! a proof or a secret. HTTP parsing and answering stay in the parent module.

use std::{
    collections::VecDeque,
    time::{SystemTime, UNIX_EPOCH},
};

use http::{Method, StatusCode};
use serde::Serialize;

/// How many calls `GET /_sim/calls` keeps; about 200 bytes each.
pub const RECEIVED_CAP: usize = 20_000;

/// How the simulator answered a call, named as in the `calls` counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Outcome {
    Ok,
    FailedTransient,
    FailedPermanent,
    Rejected,
    NotFound,
}

/// The id a call's path names.
#[derive(Debug, Clone, Copy)]
pub(super) enum PathId<'a> {
    Business(&'a str),
    Waba(&'a str),
}

/// One Graph call, as `received` lists it.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Call {
    /// 1 for the first call the simulator received, and so on (dropped calls included).
    seq: u64,
    /// Arrival time, milliseconds since the Unix epoch.
    at_ms: u64,
    method: String,
    /// `system_user_access_tokens`, `debug_token`, `subscribed_apps`, `phone_numbers`, or `unknown` (answered 404).
    route: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    business_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waba_id: Option<String>,
    status: u16,
    outcome: Outcome,
}

impl Call {
    /// A call on `route`, with the id from its path.
    pub(super) fn new(route: &'static str, id: Option<PathId<'_>>) -> Self {
        let (mut business_id, mut waba_id) = (None, None);
        match id {
            Some(PathId::Business(id)) => business_id = Some(id.to_owned()),
            Some(PathId::Waba(id)) => waba_id = Some(id.to_owned()),
            None => {}
        }
        Self {
            seq: 0,
            at_ms: 0,
            method: String::new(),
            route,
            business_id,
            waba_id,
            status: 0,
            outcome: Outcome::NotFound,
        }
    }

    /// A call on a path the simulator does not serve: no id is kept from it.
    pub(super) fn unknown() -> Self {
        Self::new("unknown", None)
    }

    /// The same call, with when it arrived and how it was answered.
    pub(super) fn answered(
        mut self,
        arrived: SystemTime,
        method: &Method,
        status: StatusCode,
        outcome: Outcome,
    ) -> Self {
        self.at_ms = arrived
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.method = method.as_str().to_owned();
        self.status = status.as_u16();
        self.outcome = outcome;
        self
    }
}

/// The calls kept, bounded.
#[derive(Debug)]
pub(super) struct Received {
    cap: usize,
    calls: VecDeque<Call>,
    seq: u64,
    dropped: u64,
}

impl Received {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            cap,
            calls: VecDeque::new(),
            seq: 0,
            dropped: 0,
        }
    }

    /// Keeps `call` as the latest, numbering it; drops the oldest beyond the cap.
    pub(super) fn push(&mut self, mut call: Call) {
        self.seq += 1;
        call.seq = self.seq;
        self.calls.push_back(call);
        while self.calls.len() > self.cap {
            self.calls.pop_front();
            self.dropped += 1;
        }
    }

    /// The calls kept, oldest first; only those on `route` when given.
    pub(super) fn on_route(&self, route: Option<&str>) -> Vec<&Call> {
        self.calls
            .iter()
            .filter(|c| route.is_none_or(|r| r == c.route))
            .collect()
    }

    /// Calls received but no longer kept.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_call(business: &str) -> Call {
        Call::new(
            "system_user_access_tokens",
            Some(PathId::Business(business)),
        )
        .answered(UNIX_EPOCH, &Method::POST, StatusCode::OK, Outcome::Ok)
    }

    #[test]
    fn keeps_the_latest_calls_up_to_the_cap_and_counts_the_rest() {
        let mut received = Received::new(3);
        for b in ["1", "2", "3", "4", "5"] {
            received.push(token_call(b));
        }

        let kept: Vec<(u64, Option<&str>)> = received
            .on_route(None)
            .iter()
            .map(|c| (c.seq, c.business_id.as_deref()))
            .collect();
        assert_eq!(kept, [(3, Some("3")), (4, Some("4")), (5, Some("5"))]);
        assert_eq!(received.dropped(), 2);
    }

    #[test]
    fn filters_by_route() {
        let mut received = Received::new(10);
        received.push(token_call("1"));
        received.push(
            Call::new("subscribed_apps", Some(PathId::Waba("9"))).answered(
                UNIX_EPOCH,
                &Method::POST,
                StatusCode::OK,
                Outcome::Ok,
            ),
        );

        let subscribed = received.on_route(Some("subscribed_apps"));
        assert_eq!(subscribed.len(), 1);
        assert_eq!(subscribed[0].waba_id.as_deref(), Some("9"));
        assert!(received.on_route(Some("nothing")).is_empty());
    }
}
