//! Streaming reader for log objects: Bedrock model-invocation logs (JSON lines) and
//! CloudTrail files (`{"Records": [...]}`), gzip (any number of members) or plain.
//!
//! The reader owns the field mapping and denial rules of SPEC section 1 and the
//! bad-input rules of SPEC section 6. It never holds more than one block plus one
//! line (capped at [`MAX_LINE_BYTES`]) of an object, and it only parses lines that
//! can be denials: a substring prefilter runs over whole blocks first, like ripgrep,
//! and candidate lines get a fields-only, borrowing deserialize.

use crate::key::DenialKey;
use chrono::DateTime;
use flate2::read::MultiGzDecoder;
use memchr::memmem;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::io::{self, BufReader, Cursor, Read};
use std::rc::Rc;
use thiserror::Error;

/// Longest line kept; a longer one is skipped (and counted) without being buffered.
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// Read size: large blocks keep the per-read overhead out of the hot loop.
const BLOCK_BYTES: usize = 256 << 10;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// CloudTrail event names that are model invocations.
const INVOCATION_EVENTS: [&str; 4] = [
    "InvokeModel",
    "InvokeModelWithResponseStream",
    "Converse",
    "ConverseStream",
];
const BEDROCK_EVENT_SOURCE: &str = "bedrock.amazonaws.com";

/// One denied model invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub key: DenialKey,
    /// Event time, epoch seconds.
    pub event_time: i64,
    pub request_id: Option<String>,
}

/// How the object was laid out, as detected from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Empty,
    JsonLines,
    CloudTrail,
}

/// Records skipped, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Skipped {
    /// Not a JSON object, cut short, or a field of the wrong type.
    pub invalid_json: u64,
    /// A denial without user, model, account or time.
    pub missing_fields: u64,
    /// A denial whose time is not RFC 3339.
    pub bad_timestamp: u64,
    /// A line longer than [`MAX_LINE_BYTES`].
    pub oversized_line: u64,
}

impl Skipped {
    pub fn total(&self) -> u64 {
        self.invalid_json + self.missing_fields + self.bad_timestamp + self.oversized_line
    }

    pub fn add(&mut self, other: &Skipped) {
        self.invalid_json += other.invalid_json;
        self.missing_fields += other.missing_fields;
        self.bad_timestamp += other.bad_timestamp;
        self.oversized_line += other.oversized_line;
    }
}

/// What reading one object saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ReadStats {
    pub format: LogFormat,
    pub gzip: bool,
    /// Bytes read from the source (compressed size for gzip).
    pub source_bytes: u64,
    /// Bytes of log text after decompression.
    pub log_bytes: u64,
    /// Log lines or CloudTrail records seen.
    pub records: u64,
    pub denials: u64,
    pub skipped: Skipped,
}

/// Why an object could not be read to its end. What was read before still counts.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The source itself failed (network, S3): a retry can succeed.
    #[error("reading the object failed after {source_bytes} bytes: {source}")]
    Source {
        source_bytes: u64,
        source: io::Error,
    },
    /// The gzip stream is corrupt or cut short: a retry reads the same bytes.
    #[error(
        "corrupt or truncated gzip after {records} records ({log_bytes} bytes of log): {source}"
    )]
    CorruptGzip {
        records: u64,
        log_bytes: u64,
        source: io::Error,
    },
    /// A CloudTrail document that stops being valid JSON.
    #[error("malformed CloudTrail document after {records} records: {message}")]
    MalformedCloudTrail { records: u64, message: String },
}

impl ReadError {
    /// True when the failure is in our dependency (the object store), not the object.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ReadError::Source { .. })
    }
}

/// Statistics, plus the error that ended reading early, if any.
#[derive(Debug)]
pub struct ReadOutcome {
    pub stats: ReadStats,
    pub error: Option<ReadError>,
}

/// The configured denial codes and the prefilter derived from them.
#[derive(Debug, Clone)]
pub struct DenialMatcher {
    codes: Vec<String>,
    /// `"CODE` needles; a needle that another one starts with is enough for both.
    needles: Vec<memmem::Finder<'static>>,
}

impl DenialMatcher {
    pub fn new(codes: &[String]) -> Self {
        let mut quoted: Vec<Vec<u8>> = codes
            .iter()
            .map(|c| {
                let mut q = b"\"".to_vec();
                q.extend_from_slice(c.as_bytes());
                q
            })
            .collect();
        quoted.sort_by_key(Vec::len);
        let mut kept: Vec<Vec<u8>> = Vec::new();
        for q in quoted {
            if !kept.iter().any(|k| q.starts_with(k)) {
                kept.push(q);
            }
        }
        Self {
            codes: codes.to_vec(),
            needles: kept
                .into_iter()
                .map(|n| memmem::Finder::new(&n).into_owned())
                .collect(),
        }
    }

    pub fn is_denial_code(&self, code: &str) -> bool {
        self.codes.iter().any(|c| c == code)
    }

    /// Cheap test: can `text` hold a denial at all?
    fn may_match(&self, text: &[u8]) -> bool {
        self.needles.iter().any(|f| f.find(text).is_some())
    }

    /// Offsets in `block` where a needle starts, ascending.
    fn candidates(&self, block: &[u8], out: &mut Vec<usize>) {
        out.clear();
        for f in &self.needles {
            out.extend(f.find_iter(block));
        }
        if self.needles.len() > 1 {
            out.sort_unstable();
        }
    }
}

/// The fields the rule reads, of either a Bedrock invocation log line or a CloudTrail
/// record; everything else in the line is skipped without being copied.
#[derive(Deserialize)]
struct RecordFields<'a> {
    #[serde(borrow, rename = "errorCode")]
    error_code: Option<Cow<'a, str>>,
    // Bedrock invocation log
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "accountId")]
    account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    identity: Option<Arn<'a>>,
    #[serde(borrow, rename = "modelId")]
    model_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "requestId")]
    request_id: Option<Cow<'a, str>>,
    // CloudTrail
    #[serde(borrow, rename = "eventSource")]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eventName")]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eventTime")]
    event_time: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "userIdentity")]
    user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow, rename = "recipientAccountId")]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "requestParameters")]
    request_parameters: Option<RequestParameters<'a>>,
    #[serde(borrow, rename = "requestID")]
    ct_request_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Arn<'a> {
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct UserIdentity<'a> {
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "accountId")]
    account_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RequestParameters<'a> {
    #[serde(borrow, rename = "modelId")]
    model_id: Option<Cow<'a, str>>,
}

/// Why a record that is a denial could not be used.
enum Unusable {
    MissingFields,
    BadTimestamp,
}

fn non_empty(v: Option<Cow<'_, str>>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(Cow::into_owned)
}

impl RecordFields<'_> {
    /// `Ok(None)` for a record that is not a denial under SPEC section 1.
    fn into_denial(self, matcher: &DenialMatcher) -> Result<Option<Denial>, Unusable> {
        match self.error_code.as_deref() {
            Some(code) if matcher.is_denial_code(code) => {}
            _ => return Ok(None),
        }
        let (user, model, account, time, request_id) = if let Some(source) = &self.event_source {
            let invocation = self
                .event_name
                .as_deref()
                .is_some_and(|n| INVOCATION_EVENTS.contains(&n));
            if source != BEDROCK_EVENT_SOURCE || !invocation {
                return Ok(None);
            }
            let (arn, identity_account) = match self.user_identity {
                Some(u) => (u.arn, u.account_id),
                None => (None, None),
            };
            (
                arn,
                self.request_parameters.and_then(|p| p.model_id),
                self.recipient_account_id
                    .filter(|a| !a.is_empty())
                    .or(identity_account),
                self.event_time,
                self.ct_request_id,
            )
        } else {
            (
                self.identity.and_then(|i| i.arn),
                self.model_id,
                self.account_id,
                self.timestamp,
                self.request_id,
            )
        };
        let (Some(user), Some(model), Some(account), Some(time)) = (
            non_empty(user),
            non_empty(model),
            non_empty(account),
            time.filter(|t| !t.is_empty()),
        ) else {
            return Err(Unusable::MissingFields);
        };
        let event_time = DateTime::parse_from_rfc3339(&time)
            .map_err(|_| Unusable::BadTimestamp)?
            .timestamp();
        Ok(Some(Denial {
            key: DenialKey {
                user_id: user,
                model_id: model,
                account_id: account,
            },
            event_time,
            request_id: non_empty(request_id),
        }))
    }
}

/// Counts what the source yields and remembers whether the source itself failed,
/// so a network error is not mistaken for a corrupt gzip.
struct Tracked<R> {
    inner: R,
    bytes: Rc<Cell<u64>>,
    failed: Rc<Cell<bool>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.bytes.set(self.bytes.get() + n as u64);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failed.set(true);
                Err(e)
            }
        }
    }
}

/// Reads one object from `input`, calling `on_denial` for every denial, in order.
/// Never panics on bad input; an early end is returned in [`ReadOutcome::error`].
pub fn read_log<R: Read>(
    input: R,
    matcher: &DenialMatcher,
    mut on_denial: impl FnMut(Denial),
) -> ReadOutcome {
    let source_bytes = Rc::new(Cell::new(0));
    let source_failed = Rc::new(Cell::new(false));
    let mut tracked = Tracked {
        inner: input,
        bytes: source_bytes.clone(),
        failed: source_failed.clone(),
    };
    let mut stats = ReadStats::default();

    let mut magic = [0u8; 2];
    let got = match read_up_to(&mut tracked, &mut magic) {
        Ok(n) => n,
        Err(source) => {
            return ReadOutcome {
                stats,
                error: Some(ReadError::Source {
                    source_bytes: source_bytes.get(),
                    source,
                }),
            }
        }
    };
    let head = Cursor::new(magic).take(got as u64);
    stats.gzip = got == 2 && magic == GZIP_MAGIC;
    let mut text: Box<dyn Read + '_> = if stats.gzip {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            BLOCK_BYTES,
            head.chain(&mut tracked),
        )))
    } else {
        Box::new(head.chain(&mut tracked))
    };

    let mut lines = LineReader {
        matcher,
        stats: &mut stats,
        on_denial: &mut on_denial,
        candidates: Vec::new(),
    };
    let result = lines.run(&mut text);
    drop(text);
    stats.source_bytes = source_bytes.get();
    let error = result.err().map(|e| match e {
        Stop::Io(source) if source_failed.get() => ReadError::Source {
            source_bytes: stats.source_bytes,
            source,
        },
        Stop::Io(source) => ReadError::CorruptGzip {
            records: stats.records,
            log_bytes: stats.log_bytes,
            source,
        },
        Stop::CloudTrail(message) => ReadError::MalformedCloudTrail {
            records: stats.records,
            message,
        },
    });
    ReadOutcome { stats, error }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

enum Stop {
    Io(io::Error),
    CloudTrail(String),
}

struct LineReader<'a, F> {
    matcher: &'a DenialMatcher,
    stats: &'a mut ReadStats,
    on_denial: &'a mut F,
    candidates: Vec<usize>,
}

impl<F: FnMut(Denial)> LineReader<'_, F> {
    fn run(&mut self, input: &mut dyn Read) -> Result<(), Stop> {
        let mut buf = vec![0u8; BLOCK_BYTES];
        // buf[start..filled] is the unprocessed tail; a line never starts before `start`.
        let mut start = 0usize;
        let mut filled = 0usize;
        let mut discarding = false;
        let mut detected = false;
        loop {
            if filled == buf.len() {
                if start > 0 {
                    buf.copy_within(start..filled, 0);
                    filled -= start;
                    start = 0;
                } else if buf.len() < MAX_LINE_BYTES {
                    let grown = (buf.len() * 2).min(MAX_LINE_BYTES);
                    buf.resize(grown, 0);
                } else {
                    // One line fills the cap: count it once, drop it and skip to its end.
                    if !discarding {
                        self.stats.skipped.oversized_line += 1;
                        self.stats.records += 1;
                    }
                    discarding = true;
                    filled = 0;
                    start = 0;
                    buf.truncate(BLOCK_BYTES);
                    buf.shrink_to(BLOCK_BYTES);
                }
            }
            let n = match input.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Stop::Io(e)),
            };
            self.stats.log_bytes += n as u64;
            let eof = n == 0;
            let scan_from = filled;
            filled += n;

            if discarding {
                match memchr::memchr(b'\n', &buf[scan_from..filled]) {
                    Some(i) => {
                        start = scan_from + i + 1;
                        discarding = false;
                    }
                    None => {
                        start = filled;
                        if eof {
                            return Ok(());
                        }
                        continue;
                    }
                }
            }

            if !detected {
                match detect_format(&buf[start..filled], eof) {
                    None => continue,
                    Some(LogFormat::CloudTrail) => {
                        self.stats.format = LogFormat::CloudTrail;
                        let head = Cursor::new(&buf[start..filled]);
                        return self.cloudtrail(head.chain(input));
                    }
                    Some(format) => {
                        self.stats.format = format;
                        detected = true;
                    }
                }
            }

            if eof {
                if start < filled {
                    self.block(&buf[start..filled], true);
                }
                return Ok(());
            }
            // Complete lines only; the partial last line waits for more input.
            if let Some(last_nl) = memchr::memrchr(b'\n', &buf[scan_from..filled]) {
                let end = scan_from + last_nl + 1;
                self.block(&buf[start..end], false);
                start = end;
            }
            if start == filled {
                start = 0;
                filled = 0;
                if buf.len() > BLOCK_BYTES {
                    // A long line has been handled: give its memory back.
                    buf.truncate(BLOCK_BYTES);
                    buf.shrink_to(BLOCK_BYTES);
                }
            }
        }
    }

    /// Complete lines (`block` ends with '\n' unless `last`): counts records, and
    /// parses the lines the prefilter flags.
    fn block(&mut self, block: &[u8], last: bool) {
        let mut line_start = 0;
        for nl in memchr::memchr_iter(b'\n', block) {
            self.count_line(&block[line_start..nl]);
            line_start = nl + 1;
        }
        if last && line_start < block.len() {
            self.count_line(&block[line_start..]);
        }

        let mut candidates = std::mem::take(&mut self.candidates);
        self.matcher.candidates(block, &mut candidates);
        let mut parsed_up_to = 0;
        for &at in &candidates {
            if at < parsed_up_to {
                continue;
            }
            let from = memchr::memrchr(b'\n', &block[..at]).map_or(0, |i| i + 1);
            let to = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |i| at + i);
            self.candidate_line(&block[from..to]);
            parsed_up_to = to + 1;
        }
        self.candidates = candidates;
    }

    /// Every line is a record; one that is not shaped like a JSON object is counted
    /// as invalid even when it cannot be a denial.
    fn count_line(&mut self, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        self.stats.records += 1;
        if line.first() != Some(&b'{') || line.last() != Some(&b'}') {
            self.stats.skipped.invalid_json += 1;
        }
    }

    fn candidate_line(&mut self, line: &[u8]) {
        let trimmed = line.trim_ascii();
        if trimmed.first() != Some(&b'{') || trimmed.last() != Some(&b'}') {
            return; // already counted as invalid by count_line
        }
        match serde_json::from_slice::<RecordFields<'_>>(trimmed) {
            Ok(fields) => self.record(fields),
            Err(_) => self.stats.skipped.invalid_json += 1,
        }
    }

    fn record(&mut self, fields: RecordFields<'_>) {
        match fields.into_denial(self.matcher) {
            Ok(Some(d)) => {
                self.stats.denials += 1;
                (self.on_denial)(d);
            }
            Ok(None) => {}
            Err(Unusable::MissingFields) => self.stats.skipped.missing_fields += 1,
            Err(Unusable::BadTimestamp) => self.stats.skipped.bad_timestamp += 1,
        }
    }

    /// A CloudTrail file, streamed: the `Records` array is visited element by element.
    fn cloudtrail(&mut self, input: impl Read) -> Result<(), Stop> {
        let mut de =
            serde_json::Deserializer::from_reader(BufReader::with_capacity(BLOCK_BYTES, input));
        let outcome = CloudTrailFile { reader: self }
            .deserialize(&mut de)
            .and_then(|()| de.end());
        match outcome {
            Ok(()) => Ok(()),
            Err(e) if e.is_io() => Err(Stop::Io(io::Error::from(e))),
            Err(e) => Err(Stop::CloudTrail(e.to_string())),
        }
    }

    fn cloudtrail_record(&mut self, raw: &RawValue) {
        self.stats.records += 1;
        let text = raw.get().as_bytes();
        if !self.matcher.may_match(text) {
            return;
        }
        match serde_json::from_str::<RecordFields<'_>>(raw.get()) {
            Ok(fields) => self.record(fields),
            Err(_) => self.stats.skipped.invalid_json += 1,
        }
    }
}

/// `Some(format)` once the first bytes decide it, `None` when more input is needed.
fn detect_format(head: &[u8], eof: bool) -> Option<LogFormat> {
    let rest = head.trim_ascii_start();
    if rest.is_empty() {
        return eof.then_some(LogFormat::Empty);
    }
    let Some(after_brace) = rest.strip_prefix(b"{") else {
        return Some(LogFormat::JsonLines);
    };
    let after_brace = after_brace.trim_ascii_start();
    const RECORDS: &[u8] = b"\"Records\"";
    if after_brace.len() < RECORDS.len() && !eof {
        return None;
    }
    Some(if after_brace.starts_with(RECORDS) {
        LogFormat::CloudTrail
    } else {
        LogFormat::JsonLines
    })
}

struct CloudTrailFile<'r, 'a, F> {
    reader: &'r mut LineReader<'a, F>,
}

impl<'de, F: FnMut(Denial)> DeserializeSeed<'de> for CloudTrailFile<'_, '_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Denial)> Visitor<'de> for CloudTrailFile<'_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CloudTrail log file object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key::<Cow<'de, str>>()? {
            if k == "Records" {
                map.next_value_seed(CloudTrailRecords {
                    reader: &mut *self.reader,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct CloudTrailRecords<'r, 'a, F> {
    reader: &'r mut LineReader<'a, F>,
}

impl<'de, F: FnMut(Denial)> DeserializeSeed<'de> for CloudTrailRecords<'_, '_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Denial)> Visitor<'de> for CloudTrailRecords<'_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of CloudTrail records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            self.reader.cloudtrail_record(&raw);
        }
        Ok(())
    }
}

/// Objects that are not logs to scan (SPEC section 6): empty objects, Bedrock's
/// permission-check object, and Bedrock's large-payload files under `/data/`.
pub fn skip_reason(key: &str, size: u64) -> Option<&'static str> {
    if size == 0 {
        Some("empty object")
    } else if key.contains("amazon-bedrock-logs-permission-check") {
        Some("Bedrock logging permission check")
    } else if key.contains("/data/") {
        Some("Bedrock large-payload file")
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests;
