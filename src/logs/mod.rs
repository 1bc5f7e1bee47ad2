//! Reading log objects: Bedrock model-invocation logs and CloudTrail logs, gzip (any
//! number of members) or plain, in whichever layout the content shows
//! (docs/DESIGN.md, "Inputs and formats").
//!
//! One concern per file, as in a grep: [`buffer`] holds the streaming line buffer,
//! [`lines`] the JSON-lines reader with its block prefilter, [`documents`] the readers
//! of whole JSON documents, [`record`] the rule's field mapping and [`matcher`] the
//! denial codes of each source. Memory stays at one block plus one record (at most
//! [`MAX_LINE_BYTES`]) whatever the object's size, and only records that can be
//! denials are parsed, and then only for the fields the rule reads.

mod buffer;
mod documents;
mod lines;
mod matcher;
mod record;

pub use matcher::{DenialMatcher, RecordKind};

use crate::key::DenialKey;
use crate::stats::Counts;
use buffer::LineBuffer;
use flate2::read::MultiGzDecoder;
use record::{Record, Unusable};
use serde::Serialize;
use std::io::{self, BufReader, Cursor, Read};
use thiserror::Error;

/// Longest line (or record of a document) kept; a longer one is skipped and counted.
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// Read size: large blocks keep the per-read overhead out of the hot loop.
const BLOCK_BYTES: usize = 256 << 10;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One denied model invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub key: DenialKey,
    /// A validation error (the validation rule's record), not a denial.
    pub validation: bool,
    /// Event time, epoch seconds.
    pub event_time: i64,
    pub request_id: Option<String>,
    /// The log that told it: a call told by both logs counts once (docs/DESIGN.md,
    /// "One call, one count").
    pub source: RecordKind,
    pub context: DenialContext,
}

/// What else the record says about the call, for the alert's evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenialContext {
    /// CloudTrail `sourceIPAddress`.
    pub source_ip: Option<String>,
    /// CloudTrail `userAgent`.
    pub user_agent: Option<String>,
    /// CloudTrail `errorMessage`.
    pub error_message: Option<String>,
    /// Bedrock log `region`, CloudTrail `awsRegion`.
    pub region: Option<String>,
    /// Bedrock log `operation`, CloudTrail `eventName`.
    pub operation: Option<String>,
}

/// How the object is laid out, as detected from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Empty,
    /// One record per line: Bedrock model-invocation logs.
    JsonLines,
    /// `{"Records": [...]}`: CloudTrail log files.
    CloudTrail,
    /// `[...]`: a top-level array of records.
    JsonArray,
    /// `{"Events": [{"CloudTrailEvent": "..."}]}`: `aws cloudtrail lookup-events`.
    LookupEvents,
    /// Records spread over several lines each (pretty-printed JSON values).
    JsonValues,
}

/// What reading one object saw: its format, and its read counters (records, denials,
/// bytes, lines skipped by reason: `crate::stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ReadStats {
    pub format: LogFormat,
    pub gzip: bool,
    pub counts: Counts,
}

impl ReadStats {
    /// The counts of the object read: one object, of its kind, and what it held.
    pub fn object_counts(&self) -> Counts {
        let is = |f: LogFormat| u64::from(self.format == f);
        let mut counts = Counts {
            objects: 1,
            gzip: u64::from(self.gzip),
            cloudtrail: is(LogFormat::CloudTrail),
            json_array: is(LogFormat::JsonArray),
            lookup_events: is(LogFormat::LookupEvents),
            json_values: is(LogFormat::JsonValues),
            ..Counts::default()
        };
        counts.add(&self.counts);
        counts
    }
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
    /// A JSON document that stops being valid, or holds a record over the size limit.
    #[error("malformed {format:?} document after {records} records: {message}")]
    MalformedDocument {
        format: LogFormat,
        records: u64,
        message: String,
    },
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
    /// The account of the first denial skipped as `Counts::skipped_account_mismatch`, for
    /// the log line.
    pub mismatched_account: Option<String>,
}

/// Characters of a mismatched account id kept for the log line.
const SHOWN_ACCOUNT_BYTES: usize = 64;

/// Why a reader stopped before the end.
enum Stop {
    Io(io::Error),
    Malformed(String),
}

/// Where records go: counts them, classifies the ones that may be denials.
struct Collector<'a, F> {
    matcher: &'a DenialMatcher,
    /// The account the object speaks for, when its location says (an S3 key in AWS's
    /// layout, a CloudWatch Logs payload's owner): a denial of any other is skipped.
    account: Option<&'a str>,
    mismatched_account: Option<String>,
    stats: &'a mut ReadStats,
    on_denial: F,
}

impl<F: FnMut(Denial)> Collector<'_, F> {
    /// A record the prefilter flagged (already counted): parse it.
    fn classify(&mut self, json: &[u8]) {
        match record::classify(json, self.matcher) {
            Record::Denial(d) | Record::ForeignPrincipal(d)
                if self.account.is_some_and(|a| a != d.key.account_id) =>
            {
                self.mismatch(&d.key.account_id);
            }
            Record::ForeignPrincipal(d) if self.account.is_some() => {
                let named = crate::arn::principal_account(&d.key.user_id).unwrap_or_default();
                self.mismatch(named);
            }
            Record::Denial(d) | Record::ForeignPrincipal(d) => {
                if d.validation {
                    self.stats.counts.validation_errors += 1;
                } else {
                    self.stats.counts.denials += 1;
                }
                (self.on_denial)(d);
            }
            Record::Other => {}
            Record::Unusable(u) => u.count_in(&mut self.stats.counts),
        }
    }

    /// A denial that speaks for another account than the object's: skipped, and the
    /// first such account kept for the log line.
    fn mismatch(&mut self, other_account: &str) {
        Unusable::AccountMismatch.count_in(&mut self.stats.counts);
        if self.mismatched_account.is_none() {
            let shown = crate::text::prefix_bytes(other_account, SHOWN_ACCOUNT_BYTES);
            self.mismatched_account = Some(shown.to_string());
        }
    }

    /// One whole record of a document or message: counted, prefiltered, classified.
    fn record(&mut self, json: &str) {
        if !json.trim_ascii_start().starts_with('{') {
            self.skip(Unusable::InvalidJson);
            return;
        }
        self.stats.counts.records += 1;
        if self.matcher.may_match(json.as_bytes()) {
            self.classify(json.as_bytes());
        }
    }

    /// A record counted and skipped without being classified.
    fn skip(&mut self, why: Unusable) {
        self.stats.counts.records += 1;
        why.count_in(&mut self.stats.counts);
    }
}

/// Reads once more into `buf`, counting a line that outgrew it.
fn fill<F: FnMut(Denial)>(
    buf: &mut LineBuffer,
    input: &mut dyn Read,
    out: &mut Collector<'_, F>,
) -> Result<(), Stop> {
    if buf.fill(input).map_err(Stop::Io)? {
        out.skip(Unusable::OversizedLine);
    }
    Ok(())
}

/// Counts what the inner reader yields; for the source, also whether it failed, so a
/// network error is not mistaken for a corrupt gzip.
struct Tracked<R> {
    inner: R,
    bytes: u64,
    failed: bool,
}

impl<R> Tracked<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            bytes: 0,
            failed: false,
        }
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}

/// Reads one object from `input`, calling `on_denial` for every denial, in order.
/// With `account`, denials of any other account are skipped (`Counts::skipped_account_mismatch`).
/// Never panics on bad input; an early end is returned in [`ReadOutcome::error`].
pub fn read_log<R: Read>(
    input: R,
    matcher: &DenialMatcher,
    account: Option<&str>,
    on_denial: impl FnMut(Denial),
) -> ReadOutcome {
    let mut source = Tracked::new(input);
    let mut stats = ReadStats::default();

    let mut magic = [0u8; 2];
    let got = match read_up_to(&mut source, &mut magic) {
        Ok(n) => n,
        Err(e) => {
            return ReadOutcome {
                stats,
                error: Some(ReadError::Source {
                    source_bytes: source.bytes,
                    source: e,
                }),
                mismatched_account: None,
            }
        }
    };
    let head = Cursor::new(magic).take(got as u64);
    stats.gzip = got == 2 && magic == GZIP_MAGIC;
    let text: Box<dyn Read + '_> = if stats.gzip {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            BLOCK_BYTES,
            head.chain(&mut source),
        )))
    } else {
        Box::new(head.chain(&mut source))
    };
    let mut text = Tracked::new(text);

    let mut out = Collector {
        matcher,
        account,
        mismatched_account: None,
        stats: &mut stats,
        on_denial,
    };
    let result = read_text(&mut text, &mut out);
    let mismatched_account = out.mismatched_account.take();
    stats.counts.log_bytes = text.bytes;
    drop(text);
    stats.counts.source_bytes = source.bytes;
    let source_failed = source.failed;
    let error = result.err().map(|e| match e {
        Stop::Io(source) if source_failed => ReadError::Source {
            source_bytes: stats.counts.source_bytes,
            source,
        },
        Stop::Io(source) => ReadError::CorruptGzip {
            records: stats.counts.records,
            log_bytes: stats.counts.log_bytes,
            source,
        },
        Stop::Malformed(message) => ReadError::MalformedDocument {
            format: stats.format,
            records: stats.counts.records,
            message,
        },
    });
    ReadOutcome {
        stats,
        error,
        mismatched_account,
    }
}

/// Records that arrive one by one rather than in an object (CloudWatch Logs events):
/// each message is one record. `account` as for [`read_log`].
pub fn read_messages<'m>(
    messages: impl IntoIterator<Item = &'m str>,
    matcher: &DenialMatcher,
    account: Option<&str>,
    on_denial: impl FnMut(Denial),
) -> ReadOutcome {
    let mut stats = ReadStats {
        format: LogFormat::JsonLines,
        ..ReadStats::default()
    };
    let mut out = Collector {
        matcher,
        account,
        mismatched_account: None,
        stats: &mut stats,
        on_denial,
    };
    for message in messages {
        out.stats.counts.log_bytes += message.len() as u64;
        out.record(message.trim_ascii());
    }
    let mismatched_account = out.mismatched_account.take();
    ReadOutcome {
        stats,
        error: None,
        mismatched_account,
    }
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

/// Detects the layout from the first bytes, then hands the rest to its reader.
fn read_text<F: FnMut(Denial)>(
    text: &mut dyn Read,
    out: &mut Collector<'_, F>,
) -> Result<(), Stop> {
    let mut buf = LineBuffer::new();
    loop {
        fill(&mut buf, text, out)?;
        let Some(format) = detect_format(buf.buffered(), buf.is_eof()) else {
            continue;
        };
        out.stats.format = format;
        return match format {
            LogFormat::Empty => Ok(()),
            LogFormat::JsonLines => lines::read_lines(&mut buf, text, out),
            document => {
                let head = Cursor::new(buf.buffered());
                documents::read_document(document, head.chain(text), out)
            }
        };
    }
}

/// `Some(format)` once the first bytes decide it, `None` when more input is needed.
///
/// `[` opens an array of records; `{` followed by a `"Records"` or `"Events"` member
/// opens a CloudTrail file or lookup-events output; `{` alone on its line opens a
/// pretty-printed record; anything else is read as JSON lines (where a line that is
/// not a record is counted as invalid).
fn detect_format(head: &[u8], eof: bool) -> Option<LogFormat> {
    let rest = head.trim_ascii_start();
    match rest.first() {
        None => eof.then_some(LogFormat::Empty),
        Some(b'[') => Some(LogFormat::JsonArray),
        Some(b'{') => {
            let inner = &rest[1..];
            let member = inner.trim_ascii_start();
            for (name, format) in [
                (&b"\"Records\""[..], LogFormat::CloudTrail),
                (&b"\"Events\""[..], LogFormat::LookupEvents),
            ] {
                if member.starts_with(name) {
                    return Some(format);
                }
                if name.starts_with(member) && !eof {
                    return None; // not enough bytes to tell
                }
            }
            let blank = &inner[..inner.len() - member.len()];
            if blank.contains(&b'\n') {
                Some(LogFormat::JsonValues)
            } else {
                Some(LogFormat::JsonLines)
            }
        }
        Some(_) => Some(LogFormat::JsonLines),
    }
}

#[cfg(test)]
pub(crate) mod tests;
