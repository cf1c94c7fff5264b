//! Idempotency keys of the HTTP send API: a client names a send with a key, and a second
//! request with that key gets the first one's answer instead of a second message. Pure:
//! the store keeps the records, the caller passes the time.

use sha2::{Digest, Sha256};

use crate::MessageId;

/// How long a key is remembered.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// The longest key taken.
pub const MAX_KEY_LEN: usize = 255;

/// Checks an `Idempotency-Key` header value: 1 to 255 visible ASCII characters
/// (`!` to `~`, no spaces or control characters).
pub fn check_key(key: &[u8]) -> Result<&str, &'static str> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err("Idempotency-Key must be 1 to 255 characters");
    }
    if !key.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err("Idempotency-Key may hold only visible ASCII characters (no spaces)");
    }
    std::str::from_utf8(key).map_err(|_| "Idempotency-Key is not ASCII")
}

/// What makes two requests "the same": the query string and the body, byte for byte.
/// SHA-256, hex.
pub fn request_hash(query: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update((query.len() as u64).to_be_bytes());
    hasher.update(query.as_bytes());
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// The successful answers a key remembers (the failures are not remembered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendAnswer {
    /// 202 `{"id", "status": "queued"}`.
    Queued,
    /// 200 `{"id", "status": "delivered"}` (sync mode).
    Delivered,
}

impl SendAnswer {
    pub fn as_str(self) -> &'static str {
        match self {
            SendAnswer::Queued => "queued",
            SendAnswer::Delivered => "delivered",
        }
    }

    pub fn parse(text: &str) -> Option<SendAnswer> {
        match text {
            "queued" => Some(SendAnswer::Queued),
            "delivered" => Some(SendAnswer::Delivered),
            _ => None,
        }
    }
}

/// A request's key and what identifies the request (`request_hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

/// A send that carries a key: what the store writes with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub key: String,
    pub request_hash: String,
    /// The answer, when it is known at commit (async); `None` while a sync delivery runs.
    pub answer: Option<SendAnswer>,
}

/// A key as the store remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    /// The message the first request made (`None` only inside the transaction that
    /// claims the key).
    pub message_id: Option<MessageId>,
    /// `None`: the first request's sync delivery has not answered yet.
    pub answer: Option<SendAnswer>,
    pub created_at: i64,
}

/// What a request with a remembered key gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The first request's answer again.
    Answer { id: MessageId, answer: SendAnswer },
    /// The key names another request: 422 `idempotency_key_reused`.
    Reused,
    /// The first request is still being answered: 409 `idempotency_key_in_use`.
    InFlight,
}

/// Decides what a request hashing to `request_hash` gets from `record`. A sync send whose
/// answer never came (its node stopped) is answered as queued once `in_flight_limit_ms`
/// passed since it was committed: by then its lease has lapsed and the workers deliver it.
pub fn replay(
    record: &IdempotencyRecord,
    request_hash: &str,
    now_ms: i64,
    in_flight_limit_ms: i64,
) -> Replay {
    if record.request_hash != request_hash {
        return Replay::Reused;
    }
    match (record.message_id, record.answer) {
        (Some(id), Some(answer)) => Replay::Answer { id, answer },
        (Some(id), None) if now_ms - record.created_at > in_flight_limit_ms => Replay::Answer {
            id,
            answer: SendAnswer::Queued,
        },
        _ => Replay::InFlight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert_eq!(check_key(b"order-42/retry"), Ok("order-42/retry"));
        assert!(check_key(&[b'k'; 255]).is_ok());
        for bad in [
            &b""[..],
            &[b'k'; 256],
            b"two words",
            b"tab\there",
            b"caf\xc3\xa9",
            b"\x7f",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_hash_covers_query_and_body_and_their_boundary() {
        assert_eq!(request_hash("", b"{}"), request_hash("", b"{}"));
        assert_ne!(request_hash("", b"{}"), request_hash("mode=sync", b"{}"));
        assert_ne!(request_hash("ab", b"c"), request_hash("a", b"bc"));
        assert_ne!(
            request_hash("", b"{\"a\":1}"),
            request_hash("", b"{\"a\": 1}")
        );
    }

    #[test]
    fn a_record_answers_by_hash_and_state() {
        let record = |answer| IdempotencyRecord {
            request_hash: "h".into(),
            message_id: Some(7),
            answer,
            created_at: 1_000,
        };
        let queued = record(Some(SendAnswer::Queued));
        assert_eq!(
            replay(&queued, "h", 2_000, 60_000),
            Replay::Answer {
                id: 7,
                answer: SendAnswer::Queued
            }
        );
        assert_eq!(replay(&queued, "other", 2_000, 60_000), Replay::Reused);
        let running = record(None);
        assert_eq!(replay(&running, "h", 2_000, 60_000), Replay::InFlight);
        assert_eq!(replay(&running, "other", 2_000, 60_000), Replay::Reused);
        assert_eq!(
            replay(&running, "h", 61_001, 60_000),
            Replay::Answer {
                id: 7,
                answer: SendAnswer::Queued
            }
        );
    }
}
