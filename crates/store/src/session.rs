//! Embedded Signup session events: phone numbers merged into tenants, per-session logs with
//! a bounded retention, and the signup funnel.
//!
//! Key layout (`P` = prefix). Everything about sessions shares the hash tag `{es}`, so one
//! script updates a session's log and the funnel atomically, on Redis Cluster too (session
//! events are a human-paced flow, so one slot carries them easily):
//!
//! | key | type | content |
//! |---|---|---|
//! | `Psignups:{es}:session:<S>` | sorted set | session `S`'s events (JSON, by received time): the newest [`SESSION_LOG_LEN`], expiring [`SESSION_RETENTION`] after the last |
//! | `Psignups:{es}:funnel:<H>` | hash | counters of hour `H` (unix time / 3600), by received time, kept [`FUNNEL_RETENTION`] |
//! | `Psignups:{es}:seen:<K>` | string | event `K` (its dedupe key) was counted, kept [`SESSION_RETENTION`] |
//!
//! A session is named by the partner's `launch_id` and, for an error, Meta's `session_id`; an
//! event is logged under each name it carries. Funnel fields: `started` (sessions seen for the
//! first time), `finished:<EVENT>`, `cancelled:<current_step>`, `errors:<code>`,
//! `other:<EVENT>`. Labels come from the customer's browser, so each hour keeps at most
//! [`FUNNEL_LABELS`] distinct ones; later ones are counted as `<kind>:OTHER`.
//!
//! Merging a `FINISH` into a tenant ([`Store::merge_signup`]) adds the phone number id to
//! `phone_number_ids` and, for a WABA without a status yet, sets [`crate::Status::Pending`];
//! it never marks a tenant installed, never moves its event-time ordering, never sets its
//! owner and never touches its token: only Meta's signed webhook does (browser data is
//! untrusted).

use std::{
    collections::{BTreeMap, HashMap},
    sync::LazyLock,
    time::Duration,
};

use redis::{AsyncCommands, Script};
use serde::Serialize;
use serde_json::Value;
use wa_ids::{DedupeKey, PhoneNumberId, SessionId, WabaId};

use crate::{Keys, Result, Status, Store, StoreError, durable::Eval};

static MERGE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/signup_merge.lua")));
static RECORD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/signup_event.lua")));

/// How long a session's log (and an event's "counted" marker) is kept after its last event.
pub const SESSION_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// How many events one session's log keeps (the newest).
pub const SESSION_LOG_LEN: usize = 100;
/// How long the funnel's hourly counters are kept.
pub const FUNNEL_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
/// How many distinct labels (steps, codes, event names) one hour of the funnel keeps.
pub const FUNNEL_LABELS: usize = 256;
/// How many phone number ids claims from the browser may put on one record (a WABA has a
/// few; Graph's verified list replaces them, see [`Store::store_phone_numbers`]).
pub const MAX_CLAIMED_PHONE_NUMBERS: usize = 20;

const HOUR: i64 = 3600;

impl Keys {
    fn signup_session(&self, session_id: &SessionId) -> String {
        format!("{}signups:{{es}}:session:{session_id}", self.prefix)
    }

    fn signup_funnel(&self, hour: i64) -> String {
        format!("{}signups:{{es}}:funnel:{hour}", self.prefix)
    }

    fn signup_seen(&self, id: &DedupeKey) -> String {
        format!("{}signups:{{es}}:seen:{id}", self.prefix)
    }
}

/// Refuses a funnel label that cannot be a hash field or go into a JSON text built by Lua.
/// (Labels are not ids: a step name or an error code from the customer's browser.)
fn check_label(value: &str) -> Result<()> {
    if !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        Ok(())
    } else {
        Err(StoreError::InvalidInput {
            what: "funnel label",
            value: value.chars().take(128).collect(),
            reason: "must be 1 to 128 of [A-Za-z0-9_.:-]",
        })
    }
}

/// What [`Store::merge_signup`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignupMerge {
    /// The record had no status (or did not exist) and is now `pending`.
    pub created: bool,
    /// The phone number id was not listed yet and is now.
    pub added: bool,
    /// The tenant's status afterwards.
    pub status: Status,
}

/// Which funnel counter a session event moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignupCounter {
    /// A `FINISH…` event, by event name.
    Finished {
        /// `event`.
        event: String,
    },
    /// `CANCEL` with `current_step`.
    Cancelled {
        /// `data.current_step`.
        step: String,
    },
    /// An error report, by error code.
    Error {
        /// `data.error_code` or `data.error_id`.
        code: String,
    },
    /// Any other event, by event name.
    Other {
        /// `event`.
        event: String,
    },
}

impl SignupCounter {
    fn field(&self) -> String {
        match self {
            Self::Finished { event } => format!("finished:{event}"),
            Self::Cancelled { step } => format!("cancelled:{step}"),
            Self::Error { code } => format!("errors:{code}"),
            Self::Other { event } => format!("other:{event}"),
        }
    }

    fn label(&self) -> &str {
        match self {
            Self::Finished { event } | Self::Other { event } => event,
            Self::Cancelled { step } => step,
            Self::Error { code } => code,
        }
    }
}

/// One session event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct SignupEvent {
    /// Its dedupe key (the message id).
    pub id: DedupeKey,
    /// When the ingress received it, unix seconds.
    pub received_at: i64,
    /// The sessions it belongs to (`launch_id`, Meta's `session_id`); may be empty.
    pub session_ids: Vec<SessionId>,
    /// The funnel counter it moves.
    pub counter: SignupCounter,
    /// What `signups get` prints for it.
    pub entry: Value,
}

/// What [`Store::record_signup_event`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignupRecorded {
    /// `false` if this event had been recorded before (nothing changed).
    pub counted: bool,
    /// It is the first event of its session.
    pub started: bool,
}

/// The signup funnel over a time window (`signups funnel`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Funnel {
    /// Start of the window, unix seconds (rounded down to the hour).
    pub since: i64,
    /// End of the window, unix seconds.
    pub until: i64,
    /// Sessions seen for the first time.
    pub started: u64,
    /// `FINISH…` events.
    pub finished: u64,
    /// `finished` by event name.
    pub finished_by_event: BTreeMap<String, u64>,
    /// Abandoned flows (`CANCEL` with `current_step`).
    pub cancelled: u64,
    /// `cancelled` by the step the customer left at.
    pub cancelled_by_step: BTreeMap<String, u64>,
    /// Error reports.
    pub errors: u64,
    /// `errors` by error code.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Other events, by name.
    pub other_by_event: BTreeMap<String, u64>,
}

impl Funnel {
    fn add(&mut self, field: &str, n: u64) {
        let Some((kind, label)) = field.split_once(':') else {
            if field == "started" {
                self.started += n;
            }
            return;
        };
        let label = label.to_owned();
        match kind {
            "finished" => {
                self.finished += n;
                *self.finished_by_event.entry(label).or_default() += n;
            }
            "cancelled" => {
                self.cancelled += n;
                *self.cancelled_by_step.entry(label).or_default() += n;
            }
            "errors" => {
                self.errors += n;
                *self.errors_by_code.entry(label).or_default() += n;
            }
            "other" => *self.other_by_event.entry(label).or_default() += n,
            _ => {}
        }
    }
}

fn secs(d: Duration) -> u64 {
    d.as_secs().max(1)
}

impl Store {
    /// Merges an Embedded Signup `FINISH…` into tenant `waba_id`: adds `phone_number_id` (if
    /// any) to its phone numbers, unless they are Graph's verified list (a claim never
    /// replaces or extends it), and creates the record in status `pending` if the WABA has
    /// no status yet. Idempotent; never changes an existing status (see the module docs).
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    #[tracing::instrument(name = "redis merge_signup", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn merge_signup(
        &self,
        waba_id: &WabaId,
        phone_number_id: Option<&PhoneNumberId>,
    ) -> Result<SignupMerge> {
        let key = self.keys.tenant(waba_id);
        // A tenant write like the others: waited for on a cluster (docs/RELIABILITY.md).
        let mut conn = self.conn();
        let (created, added, status): (i64, i64, String) = conn
            .eval(
                Eval::new(&MERGE)
                    .key(&key)
                    .arg(waba_id.as_str())
                    .arg(phone_number_id.map_or("", PhoneNumberId::as_str))
                    .arg(MAX_CLAIMED_PHONE_NUMBERS),
            )
            .await?;
        let status = Status::parse(&status)
            .ok_or_else(|| StoreError::corrupt(&key, format!("status {status:?}")))?;
        Ok(SignupMerge {
            created: created == 1,
            added: added == 1,
            status,
        })
    }

    /// Logs a session event under each of its sessions and counts it in the funnel, once:
    /// recording the same event again (same `id`) changes nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; [`StoreError::InvalidInput`] for a funnel label that cannot be
    /// used (empty, or not 1 to 128 of `[A-Za-z0-9_.:-]`).
    #[tracing::instrument(name = "redis record_signup_event", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn record_signup_event(&self, ev: &SignupEvent) -> Result<SignupRecorded> {
        check_label(ev.counter.label())?;
        let entry = serde_json::to_string(&ev.entry)
            .map_err(|e| StoreError::corrupt(&self.keys.signup_seen(&ev.id), e.to_string()))?;
        let mut call = RECORD.key(self.keys.signup_seen(&ev.id));
        call.key(self.keys.signup_funnel(ev.received_at.div_euclid(HOUR)));
        for id in &ev.session_ids {
            call.key(self.keys.signup_session(id));
        }
        call.arg(ev.received_at)
            .arg(entry)
            .arg(SESSION_LOG_LEN)
            .arg(secs(SESSION_RETENTION))
            .arg(secs(FUNNEL_RETENTION))
            .arg(FUNNEL_LABELS)
            .arg(ev.counter.field());
        let (counted, started): (i64, i64) = call.invoke_async(&mut self.conn()).await?;
        Ok(SignupRecorded {
            counted: counted == 1,
            started: started == 1,
        })
    }

    /// One session's logged events, oldest first; empty for a session never seen (or whose
    /// retention has passed).
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; [`StoreError::Corrupt`] for an entry that is not JSON.
    #[tracing::instrument(name = "redis signup_session", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn signup_session(&self, session_id: &SessionId) -> Result<Vec<Value>> {
        let key = self.keys.signup_session(session_id);
        let raw: Vec<String> = self.conn().zrange(&key, 0, -1).await?;
        raw.iter()
            .map(|s| serde_json::from_str(s).map_err(|e| StoreError::corrupt(&key, e.to_string())))
            .collect()
    }

    /// The funnel from `since` to `until` (unix seconds), read from the hourly counters
    /// (so `since` is rounded down to the hour; counters older than [`FUNNEL_RETENTION`]
    /// are gone).
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; [`StoreError::InvalidInput`] if `since` is after `until` or the
    /// window is longer than [`FUNNEL_RETENTION`].
    #[tracing::instrument(name = "redis signup_funnel", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn signup_funnel(&self, since: i64, until: i64) -> Result<Funnel> {
        let longest = i64::try_from(FUNNEL_RETENTION.as_secs()).unwrap_or(i64::MAX);
        if since > until || until - since > longest + HOUR {
            return Err(StoreError::InvalidInput {
                what: "funnel window",
                value: format!("{since}..{until}"),
                reason: "must be ordered and at most the funnel retention (90 days)",
            });
        }
        let (first, last) = (since.div_euclid(HOUR), until.div_euclid(HOUR));
        let mut pipe = redis::pipe();
        for hour in first..=last {
            pipe.hgetall(self.keys.signup_funnel(hour));
        }
        let hours: Vec<HashMap<String, u64>> = pipe.query_async(&mut self.conn()).await?;
        let mut funnel = Funnel {
            since: first * HOUR,
            until,
            ..Funnel::default()
        };
        for counters in hours {
            for (field, n) in counters {
                funnel.add(&field, n);
            }
        }
        Ok(funnel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let k = Keys {
            prefix: "wa:".into(),
        };
        let session = SessionId::parse("L1").unwrap();
        assert_eq!(k.signup_session(&session), "wa:signups:{es}:session:L1");
        assert_eq!(k.signup_funnel(481_000), "wa:signups:{es}:funnel:481000");
        let seen = DedupeKey::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(
            k.signup_seen(&seen),
            format!("wa:signups:{{es}}:seen:{seen}")
        );
    }

    #[test]
    fn funnel_fields_add_up_by_kind() {
        let mut f = Funnel::default();
        for (field, n) in [
            ("started", 5),
            ("finished:FINISH", 2),
            ("finished:FINISH_ONLY_WABA", 1),
            ("cancelled:PHONE_NUMBER_SETUP", 1),
            ("cancelled:OTHER", 1),
            ("errors:524126", 2),
            ("other:SOMETHING", 1),
            ("unknown:x", 9),
        ] {
            f.add(field, n);
        }
        assert_eq!(f.started, 5);
        assert_eq!(f.finished, 3);
        assert_eq!(f.finished_by_event["FINISH"], 2);
        assert_eq!(f.cancelled, 2);
        assert_eq!(f.cancelled_by_step["OTHER"], 1);
        assert_eq!(f.errors, 2);
        assert_eq!(f.errors_by_code["524126"], 2);
        assert_eq!(f.other_by_event["SOMETHING"], 1);
    }

    #[test]
    fn labels_that_would_break_keys_or_lua_json_are_refused() {
        assert!(check_label("106540352242922").is_ok());
        assert!(check_label("s-1.2:3").is_ok());
        for bad in ["", "a{b}", "a\"b", "a b", "a\\b", &"9".repeat(129)] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
    }
}
