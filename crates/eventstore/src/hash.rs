//! The tamper-evidence chain: each event's hash covers the previous event's hash in its stream
//! and the event's canonical content. The encoding below is permanent: changing it breaks every
//! stored chain.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Metadata;

/// The hash before a stream's first event.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// The content an event's hash covers.
pub(crate) struct HashInput<'a> {
    pub event_id: Uuid,
    pub stream_id: Uuid,
    pub stream_type: &'a str,
    pub stream_version: i64,
    pub event_type: &'a str,
    pub schema_version: i32,
    pub payload: &'a Value,
    pub metadata: &'a Metadata,
    pub idempotency_key: Option<&'a str>,
    pub recorded_at: DateTime<Utc>,
}

pub(crate) fn event_hash(prev: &[u8], input: &HashInput<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"casebook-event-v1");
    h.update(prev);
    h.update(input.event_id.as_bytes());
    h.update(input.stream_id.as_bytes());
    put_str(&mut h, input.stream_type);
    h.update(input.stream_version.to_be_bytes());
    put_str(&mut h, input.event_type);
    h.update(input.schema_version.to_be_bytes());
    let mut payload = Vec::with_capacity(256);
    canonical_json(input.payload, &mut payload);
    put_bytes(&mut h, &payload);
    let m = input.metadata;
    h.update(m.actor_id.as_bytes());
    put_str(&mut h, &m.actor_role);
    h.update(m.organisation_id.as_bytes());
    h.update(m.correlation_id.as_bytes());
    match m.causation_id {
        Some(id) => {
            h.update([1]);
            h.update(id.as_bytes());
        }
        None => h.update([0]),
    }
    match input.idempotency_key {
        Some(key) => {
            h.update([1]);
            put_str(&mut h, key);
        }
        None => h.update([0]),
    }
    h.update(m.occurred_at.timestamp_micros().to_be_bytes());
    h.update(input.recorded_at.timestamp_micros().to_be_bytes());
    h.finalize().into()
}

/// Fingerprint of a request for idempotency: the stream type and each event's type, version
/// and canonical payload (not ids or times, which a retry makes afresh).
pub(crate) fn fingerprint(stream_type: &str, events: &[crate::NewEvent]) -> [u8; 32] {
    let mut h = Sha256::new();
    put_str(&mut h, stream_type);
    for event in events {
        put_str(&mut h, &event.event_type);
        h.update(event.schema_version.to_be_bytes());
        let mut payload = Vec::new();
        canonical_json(&event.payload, &mut payload);
        put_bytes(&mut h, &payload);
    }
    h.finalize().into()
}

fn put_str(h: &mut Sha256, s: &str) {
    put_bytes(h, s.as_bytes());
}

fn put_bytes(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// JSON with object keys sorted by their UTF-8 bytes and no whitespace, so the same value gives
/// the same bytes however it was built (jsonb reorders keys).
pub(crate) fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                canonical_json(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_string(s, out),
        // A number, a boolean or null, printed as serde_json prints it (writing into a vector
        // cannot fail).
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it, written straight into `out` (no
/// copy of it, no `Value`, no formatter between).
fn write_string(s: &str, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Truncates to the microsecond, the precision PostgreSQL keeps, so hashes computed before the
/// insert match hashes computed from the stored row.
pub(crate) fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::canonical_json;

    fn canon(v: serde_json::Value) -> String {
        let mut out = Vec::new();
        canonical_json(&v, &mut out);
        String::from_utf8(out).expect("canonical JSON is UTF-8")
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        assert_eq!(
            canon(json!({"b": 1, "a": {"d": [true, null], "c": "x\"y"}})),
            r#"{"a":{"c":"x\"y","d":[true,null]},"b":1}"#
        );
    }

    /// Strings and numbers are written as serde_json's `Display` of a `Value` writes them, as
    /// before they were written straight into the buffer: every stored hash still matches.
    #[test]
    fn canonical_json_writes_strings_and_numbers_as_a_value_prints_them() {
        let tricky = json!({
            "control": "tab\t nul\u{0} bell\u{7} del\u{7f} line\nfeed",
            "quotes": "\"back\\slash\" and /slash",
            "unicode": "é ö 中文 𝄞 🙂 \u{2028}\u{2029}",
            "numbers": [0, -1, 1.5, -0.0, 1e300, 12345678901234567890_u64, -9223372036854775808_i64],
            "other": [true, false, null, "", {}],
        });
        // Keys in byte order, as the default map keeps them: canonical text is the value's text.
        assert_eq!(canon(tricky.clone()), tricky.to_string());
        for value in tricky.as_object().expect("an object").values() {
            assert_eq!(canon(value.clone()), value.to_string());
        }
    }

    #[test]
    fn canonical_json_survives_a_jsonb_style_reordering() {
        let a: serde_json::Value = serde_json::from_str(r#"{"zz":1.5,"a":[1,2],"m":"é"}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"a":[1,2],"m":"é","zz":1.5}"#).unwrap();
        assert_eq!(canon(a), canon(b));
    }
}
