//! The fingerprint record: a prepared article as the prepare role writes it to the fingerprint
//! topic and the decide role reads it back (docs/state.md), so that deciding, restoring and
//! standing by never parse or normalize a raw article again.
//!
//! A versioned binary layout of our own, little-endian: the article's fields the story events
//! need (the record as received among them), its event and ingest times, and every
//! fingerprint the engine reads. Decoding gives back exactly what was encoded, and refuses
//! anything else with a reason; it never panics on hostile bytes.

use crate::pipeline::fingerprint::sketch::Sketch;
use crate::pipeline::fingerprint::{Fingerprint, Lead, LEAD_ANCHORS};
use crate::pipeline::record::Article;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// The layout written by [`encode`]. A reader refuses other versions rather than guess.
pub const VERSION: u8 = 1;

const HAS_PUBLISHED_AT: u8 = 1;
const COMPLETE_SKETCH: u8 = 2;
const HAS_TITLE_KEY: u8 = 4;

/// Why bytes are not a fingerprint record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogRecordError {
    #[error("fingerprint record ends early, at byte {0}: the topic holds a cut record, or not a fingerprint record")]
    Truncated(usize),
    #[error(
        "fingerprint record version {found}, this build reads {VERSION}: run a build of the same version on both roles"
    )]
    Version { found: u8 },
    #[error("fingerprint record has an invalid {0}: the topic holds a record syndic did not write")]
    Invalid(&'static str),
}

/// Appends the record of `article` and its `fingerprint` to `out`.
pub fn encode(article: &Article, fingerprint: &Fingerprint, out: &mut Vec<u8>) {
    out.push(VERSION);
    put_str(out, &article.id);
    put_str(out, &article.source);
    put_opt_str(out, article.title.as_deref());
    put_opt_str(out, article.url.as_deref());
    put_opt_str(out, article.lang.as_deref());
    for time in [article.published_at, article.published_until, article.ingest_time] {
        out.extend_from_slice(&time.timestamp().to_le_bytes());
        out.extend_from_slice(&time.timestamp_subsec_nanos().to_le_bytes());
    }
    let (values, lens, complete) = fingerprint.sketch.stored();
    let flags = u8::from(article.has_published_at) * HAS_PUBLISHED_AT
        + u8::from(complete) * COMPLETE_SKETCH
        + u8::from(fingerprint.title.is_some()) * HAS_TITLE_KEY;
    out.push(flags);
    out.extend_from_slice(&fingerprint.exact.to_le_bytes());
    out.extend_from_slice(&fingerprint.simhash.to_le_bytes());
    out.extend_from_slice(&fingerprint.tokens.to_le_bytes());
    for anchor in fingerprint.lead_anchors {
        out.extend_from_slice(&anchor.to_le_bytes());
    }
    out.extend_from_slice(&fingerprint.title.unwrap_or(0).to_le_bytes());
    for len in lens {
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for value in values {
        out.extend_from_slice(&value.to_le_bytes());
    }
    let (hashes, facts) = fingerprint.lead.stored();
    out.push(hashes.len() as u8);
    for hash in hashes {
        out.extend_from_slice(&hash.to_le_bytes());
    }
    out.push(facts.len() as u8);
    for fact in facts {
        out.extend_from_slice(&fact.to_le_bytes());
    }
    put_str(out, &article.raw);
}

/// The article and fingerprint that [`encode`] wrote into `bytes`.
pub fn decode(bytes: &[u8]) -> Result<(Article, Fingerprint), LogRecordError> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(LogRecordError::Version { found: version });
    }
    let id = r.string()?;
    let source = r.string()?;
    let title = r.opt_string()?;
    let url = r.opt_string()?;
    let lang = r.opt_string()?;
    let [published_at, published_until, ingest_time] = [r.time()?, r.time()?, r.time()?];
    let flags = r.u8()?;
    if flags & !(HAS_PUBLISHED_AT | COMPLETE_SKETCH | HAS_TITLE_KEY) != 0 {
        return Err(LogRecordError::Invalid("flags"));
    }
    let exact = r.u64()?;
    let simhash = r.u64()?;
    let tokens = r.u32()?;
    let mut lead_anchors = [0u32; LEAD_ANCHORS];
    for anchor in &mut lead_anchors {
        *anchor = r.u32()?;
    }
    let title_key = r.u64()?;
    let lens = [r.u32()?, r.u32()?, r.u32()?];
    let count = r.u32()? as usize;
    // Bounded by the bytes left before anything is allocated: a hostile count allocates nothing.
    if count > r.left() / 4 {
        return Err(LogRecordError::Truncated(bytes.len()));
    }
    let values = (0..count).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
    let sketch =
        Sketch::from_stored(values, lens, flags & COMPLETE_SKETCH != 0).ok_or(LogRecordError::Invalid("sketch"))?;
    let hashes_len = usize::from(r.u8()?);
    let hashes = (0..hashes_len).map(|_| r.u16()).collect::<Result<Vec<_>, _>>()?;
    let facts_len = usize::from(r.u8()?);
    let facts = (0..facts_len).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
    let lead = Lead::from_stored(&hashes, &facts).ok_or(LogRecordError::Invalid("lead"))?;
    let raw: Arc<str> = r.string()?.into();
    if r.left() != 0 {
        return Err(LogRecordError::Invalid("length (bytes after the record)"));
    }
    let article = Article {
        id,
        source,
        title,
        url,
        published_at,
        published_until,
        has_published_at: flags & HAS_PUBLISHED_AT != 0,
        ingest_time,
        lang,
        raw,
    };
    let fingerprint = Fingerprint {
        exact,
        simhash,
        sketch,
        tokens,
        lead_anchors,
        title: (flags & HAS_TITLE_KEY != 0).then_some(title_key),
        lead,
    };
    Ok((article, fingerprint))
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// An absent string is length `u32::MAX`, which no present one reaches (records are bounded by
/// `input.max_record_bytes`).
fn put_opt_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => put_str(out, text),
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
}

/// Reads the layout front to back; every read checks the bytes left.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], LogRecordError> {
        let end = self.at.checked_add(N).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(LogRecordError::Truncated(self.at))?;
        let mut taken = [0u8; N];
        taken.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, LogRecordError> {
        Ok(self.take::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, LogRecordError> {
        Ok(u16::from_le_bytes(self.take()?))
    }

    fn u32(&mut self) -> Result<u32, LogRecordError> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64, LogRecordError> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    fn time(&mut self) -> Result<DateTime<Utc>, LogRecordError> {
        let secs = i64::from_le_bytes(self.take()?);
        let nanos = self.u32()?;
        DateTime::from_timestamp(secs, nanos).ok_or(LogRecordError::Invalid("time"))
    }

    fn string_of(&mut self, len: usize) -> Result<String, LogRecordError> {
        if len > self.left() {
            return Err(LogRecordError::Truncated(self.bytes.len()));
        }
        let text =
            std::str::from_utf8(&self.bytes[self.at..self.at + len]).map_err(|_| LogRecordError::Invalid("text"))?;
        self.at += len;
        Ok(text.to_string())
    }

    fn string(&mut self) -> Result<String, LogRecordError> {
        let len = self.u32()? as usize;
        self.string_of(len)
    }

    fn opt_string(&mut self) -> Result<Option<String>, LogRecordError> {
        match self.u32()? {
            u32::MAX => Ok(None),
            len => self.string_of(len as usize).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::config::PipelineConfig;
    use crate::pipeline::messages::Prepared;
    use crate::pipeline::normalize::rules::BoilerplateRules;
    use crate::pipeline::prepare::Preparer;
    use proptest::prelude::*;

    fn preparer() -> Preparer {
        Preparer::new(&PipelineConfig::default(), BoilerplateRules::builtin()).expect("default config")
    }

    fn prepared(preparer: &mut Preparer, record: &str) -> (Article, Fingerprint) {
        match preparer.prepare(
            record.as_bytes(),
            DateTime::from_timestamp(1_700_000_000, 5).expect("a time"),
        ) {
            Prepared::Article { article, fingerprint } => (article, fingerprint),
            Prepared::Invalid { invalid, .. } => panic!("a valid record was rejected: {invalid}"),
        }
    }

    fn round_trip(article: &Article, fingerprint: &Fingerprint) -> (Article, Fingerprint) {
        let mut bytes = Vec::new();
        encode(article, fingerprint, &mut bytes);
        decode(&bytes).expect("what encode wrote decodes")
    }

    #[test]
    fn a_quoted_titled_dated_article_and_an_undated_bare_one_come_back_exactly() {
        let mut preparer = preparer();
        let dated = r#"{"id":"a1","source":"wire","url":"https://x.example/1","lang":"en","title":"Officials say 31 wounded in the border clashes","published_at":"2024-05","body":"The minister said \"we will not allow this to happen again\" on Monday in Baku. Officials said 31 people were wounded and 4 killed in the clashes, the ministry reported, adding that talks would go on."}"#;
        let bare = r#"{"id":"a2","source":"s","body":"story number two in words"}"#;
        for record in [dated, bare] {
            let (article, fingerprint) = prepared(&mut preparer, record);
            assert_eq!(round_trip(&article, &fingerprint), (article, fingerprint), "{record}");
        }
    }

    #[test]
    fn other_versions_and_cut_records_are_refused_with_their_reason() {
        let mut preparer = preparer();
        let (article, fingerprint) = prepared(&mut preparer, r#"{"id":"a","source":"s","body":"some words here"}"#);
        let mut bytes = Vec::new();
        encode(&article, &fingerprint, &mut bytes);
        let mut other = bytes.clone();
        other[0] = 9;
        assert_eq!(decode(&other).unwrap_err(), LogRecordError::Version { found: 9 });
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(LogRecordError::Truncated(_))
        ));
        bytes.push(0);
        assert!(matches!(decode(&bytes), Err(LogRecordError::Invalid(_))));
    }

    proptest! {
        /// A real record cut anywhere or with any byte changed: a reason or a record, never a
        /// panic.
        #[test]
        fn damaged_records_are_refused_or_read_never_a_panic(cut in 0usize..400, at in 0usize..400, byte in any::<u8>()) {
            // Encoded once: a preparer compiles the rules, too slow to do per case.
            static ENCODED: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
                let mut preparer = preparer();
                let (article, fingerprint) = prepared(&mut preparer, r#"{"id":"a","source":"s","title":"A headline long enough to count here","body":"The minister said \"we will go on\" in Baku on Monday, and 31 people were hurt."}"#);
                let mut bytes = Vec::new();
                encode(&article, &fingerprint, &mut bytes);
                bytes
            });
            let mut bytes = ENCODED.clone();
            let _ = decode(&bytes[..cut.min(bytes.len())]);
            let i = at % bytes.len();
            bytes[i] = byte;
            let _ = decode(&bytes);
        }

        /// Any bytes at all: a reason, never a panic or a huge allocation.
        #[test]
        fn arbitrary_bytes_are_refused_or_read_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut versioned = vec![VERSION];
            versioned.extend_from_slice(&bytes);
            let _ = decode(&bytes);
            let _ = decode(&versioned);
        }
    }
}
