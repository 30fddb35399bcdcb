//! Parsing and validation of one raw input record into an [`Article`].
//!
//! This module owns the input contract: which fields are required, how timestamps are read,
//! and the typed [`InvalidRecord`] reason every rejected record carries. The original JSON is
//! kept untouched so it can be carried through to the output as received.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Why a record was rejected. Every variant names the problem and what the producer should fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecord {
    #[error("record is not valid UTF-8 (first bad byte at offset {offset}): send UTF-8 encoded JSON")]
    InvalidUtf8 { offset: usize },
    #[error("record is not valid JSON ({message}): send one JSON object per record")]
    InvalidJson { message: String },
    #[error("record is JSON but not an object (got {found}): send one JSON object per article")]
    NotAnObject { found: &'static str },
    #[error("required field `{field}` is missing: every article needs `id`, `source` and `body`")]
    MissingField { field: &'static str },
    #[error("field `{field}` must be {expected}, got {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error("body is empty after normalization: the article has no text to match on")]
    EmptyBody,
    #[error("record is {size} bytes, over the limit of {limit} bytes (raise `max_record_bytes` if this is expected)")]
    Oversize { size: usize, limit: usize },
    #[error("`published_at` value {value:?} is not an RFC 3339 timestamp, a YYYY-MM-DD date or a YYYY-MM month")]
    BadTimestamp { value: String },
}

impl InvalidRecord {
    /// Every value [`InvalidRecord::code`] can return.
    pub const CODES: [&'static str; 8] = [
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "missing_field",
        "wrong_type",
        "empty_body",
        "oversize",
        "bad_timestamp",
    ];

    /// A short stable code for the reason, for dead-letter headers and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            InvalidRecord::InvalidUtf8 { .. } => "invalid_utf8",
            InvalidRecord::InvalidJson { .. } => "invalid_json",
            InvalidRecord::NotAnObject { .. } => "not_an_object",
            InvalidRecord::MissingField { .. } => "missing_field",
            InvalidRecord::WrongType { .. } => "wrong_type",
            InvalidRecord::EmptyBody => "empty_body",
            InvalidRecord::Oversize { .. } => "oversize",
            InvalidRecord::BadTimestamp { .. } => "bad_timestamp",
        }
    }
}

/// One validated article. Cheap to clone: the raw record is shared.
#[derive(Debug, Clone)]
pub struct Article {
    pub id: String,
    pub source: String,
    pub title: Option<String>,
    pub url: Option<String>,
    pub body: String,
    /// Event time: `published_at` when given, else the ingest time passed to [`parse`].
    pub published_at: DateTime<Utc>,
    /// The latest instant `published_at` may stand for: the end of the month for a
    /// month-precision date (`2024-05`), else `published_at` itself.
    pub published_until: DateTime<Utc>,
    /// Whether `published_at` came from the record (true) or from ingest time (false).
    pub has_published_at: bool,
    pub lang: Option<String>,
    /// The record exactly as received, for carrying through to story events.
    pub raw: Arc<RawValue>,
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn required_string(obj: &mut Map<String, Value>, field: &'static str) -> Result<String, InvalidRecord> {
    match obj.remove(field) {
        None | Some(Value::Null) => Err(InvalidRecord::MissingField { field }),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(InvalidRecord::WrongType {
            field,
            expected: "a string",
            found: json_type_name(&other),
        }),
    }
}

fn optional_string(obj: &mut Map<String, Value>, field: &'static str) -> Result<Option<String>, InvalidRecord> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(InvalidRecord::WrongType {
            field,
            expected: "a string or null",
            found: json_type_name(&other),
        }),
    }
}

/// Reads `published_at` as RFC 3339, a plain date (midnight UTC) or a month (its first day).
pub fn parse_timestamp(value: &str) -> Result<DateTime<Utc>, InvalidRecord> {
    parse_time_range(value).map(|(start, _)| start)
}

/// Like [`parse_timestamp`], also returning the latest instant the value may stand for: a
/// month-precision date, common on pages whose day was never published, covers its month.
pub fn parse_time_range(value: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), InvalidRecord> {
    let trimmed = value.trim();
    if let Ok(ts) = DateTime::parse_from_rfc3339(trimmed) {
        let ts = ts.with_timezone(&Utc);
        return Ok((ts, ts));
    }
    let day = |date: NaiveDate| date.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    if let Some(start) = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").ok().and_then(day) {
        return Ok((start, start));
    }
    if let Some(first) = NaiveDate::parse_from_str(&format!("{trimmed}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| trimmed.len() == 7)
    {
        let next_month = first.checked_add_months(chrono::Months::new(1));
        if let (Some(start), Some(end)) = (day(first), next_month.and_then(day)) {
            return Ok((start, end - chrono::Duration::seconds(1)));
        }
    }
    Err(InvalidRecord::BadTimestamp {
        value: value.to_string(),
    })
}

/// Parses and validates one raw record. `ingest_time` stands in for a missing `published_at`.
pub fn parse(bytes: &[u8], max_record_bytes: usize, ingest_time: DateTime<Utc>) -> Result<Article, InvalidRecord> {
    if bytes.len() > max_record_bytes {
        return Err(InvalidRecord::Oversize {
            size: bytes.len(),
            limit: max_record_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| InvalidRecord::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let raw: Box<RawValue> =
        serde_json::from_str(text).map_err(|e| InvalidRecord::InvalidJson { message: e.to_string() })?;
    let value: Value =
        serde_json::from_str(raw.get()).map_err(|e| InvalidRecord::InvalidJson { message: e.to_string() })?;
    let mut obj = match value {
        Value::Object(obj) => obj,
        other => {
            return Err(InvalidRecord::NotAnObject {
                found: json_type_name(&other),
            })
        }
    };
    let id = required_string(&mut obj, "id")?;
    if id.trim().is_empty() {
        return Err(InvalidRecord::MissingField { field: "id" });
    }
    let source = required_string(&mut obj, "source")?;
    let body = required_string(&mut obj, "body")?;
    if body.trim().is_empty() {
        return Err(InvalidRecord::EmptyBody);
    }
    let title = optional_string(&mut obj, "title")?;
    let url = optional_string(&mut obj, "url")?;
    let lang = optional_string(&mut obj, "lang")?;
    let published = optional_string(&mut obj, "published_at")?;
    let (published_at, published_until, has_published_at) = match published {
        Some(value) => {
            let (start, end) = parse_time_range(&value)?;
            (start, end, true)
        }
        None => (ingest_time, ingest_time, false),
    };
    Ok(Article {
        id,
        source,
        title,
        url,
        body,
        published_at,
        published_until,
        has_published_at,
        lang,
        raw: Arc::from(raw),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        parse_timestamp("2024-01-01T00:00:00Z").unwrap()
    }

    fn reason(bytes: &[u8]) -> &'static str {
        parse(bytes, 1 << 20, now()).unwrap_err().code()
    }

    #[test]
    fn accepts_a_minimal_article_and_keeps_unknown_fields_in_raw() {
        let rec = br#"{"id":"a1","source":"news.az","body":"Text","extra":{"k":1}}"#;
        let a = parse(rec, 1 << 20, now()).unwrap();
        assert_eq!(a.id, "a1");
        assert!(!a.has_published_at);
        assert_eq!(a.published_at, now());
        assert!(a.raw.get().contains(r#""extra":{"k":1}"#));
    }

    #[test]
    fn reads_rfc3339_and_plain_dates() {
        let a = parse(
            br#"{"id":"a","source":"s","body":"b","published_at":"2023-12-26"}"#,
            1 << 20,
            now(),
        )
        .unwrap();
        assert_eq!(a.published_at.to_rfc3339(), "2023-12-26T00:00:00+00:00");
        let b = parse(
            br#"{"id":"a","source":"s","body":"b","published_at":"2023-12-26T10:00:00+04:00"}"#,
            1 << 20,
            now(),
        )
        .unwrap();
        assert_eq!(b.published_at.to_rfc3339(), "2023-12-26T06:00:00+00:00");
        let m = parse(
            br#"{"id":"a","source":"s","body":"b","published_at":"2024-02"}"#,
            1 << 20,
            now(),
        )
        .unwrap();
        assert_eq!(m.published_at.to_rfc3339(), "2024-02-01T00:00:00+00:00");
        assert_eq!(m.published_until.to_rfc3339(), "2024-02-29T23:59:59+00:00");
    }

    #[test]
    fn codes_lists_every_code() {
        let samples = [
            InvalidRecord::InvalidUtf8 { offset: 0 },
            InvalidRecord::InvalidJson { message: String::new() },
            InvalidRecord::NotAnObject { found: "" },
            InvalidRecord::MissingField { field: "" },
            InvalidRecord::WrongType {
                field: "",
                expected: "",
                found: "",
            },
            InvalidRecord::EmptyBody,
            InvalidRecord::Oversize { size: 0, limit: 0 },
            InvalidRecord::BadTimestamp { value: String::new() },
        ];
        let codes: Vec<&str> = samples.iter().map(InvalidRecord::code).collect();
        assert_eq!(codes, InvalidRecord::CODES);
    }

    #[test]
    fn every_kind_of_bad_record_gets_its_own_reason() {
        assert_eq!(reason(b"{\"id\":\"\xff\"}"), "invalid_utf8");
        assert_eq!(reason(b"{not json"), "invalid_json");
        assert_eq!(reason(b"[1,2]"), "not_an_object");
        assert_eq!(reason(br#"{"source":"s","body":"b"}"#), "missing_field");
        assert_eq!(reason(br#"{"id":7,"source":"s","body":"b"}"#), "wrong_type");
        assert_eq!(reason(br#"{"id":"a","source":"s","body":"  "}"#), "empty_body");
        assert_eq!(
            reason(br#"{"id":"a","source":"s","body":"b","published_at":"yesterday"}"#),
            "bad_timestamp"
        );
        assert_eq!(
            parse(br#"{"id":"a","source":"s","body":"bbbb"}"#, 10, now())
                .unwrap_err()
                .code(),
            "oversize"
        );
    }
}
