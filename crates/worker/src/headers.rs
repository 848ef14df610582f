//! The AMQP headers the worker sets on the messages it moves (delay tiers, dead letters) and
//! reads back, for the consumer and the dead-letter tools alike.
//!
//! Owns the header names and how their values are read; imports nothing else of the crate.

use wa_broker::lapin::types::{AMQPValue, FieldTable};

/// Header: how many delay tiers this message has been through.
pub const ATTEMPT: &str = "x-wa-attempt";
/// Header: the last transient error, token-free.
pub const LAST_ERROR: &str = "x-wa-last-error";
/// Header on dead letters: why.
pub const REASON: &str = "x-wa-reason";
/// Header on dead letters: the routing key to replay to.
pub const ROUTING_KEY: &str = "x-wa-routing-key";

/// The text of header `name`, if it is a string.
pub fn string(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(v) => Some(v.to_string()),
        AMQPValue::ShortString(v) => Some(v.to_string()),
        _ => None,
    }
}

/// The value of header `name`, if it is an integer.
pub fn integer(headers: Option<&FieldTable>, name: &str) -> Option<i64> {
    match headers?.inner().get(name)? {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        _ => None,
    }
}
