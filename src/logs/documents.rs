//! Records inside JSON documents, streamed one record at a time: a CloudTrail log file
//! (`{"Records": [...]}`), a top-level array of records, the output of
//! `aws cloudtrail lookup-events` (`{"Events": [{"CloudTrailEvent": "<JSON>"}]}`), and
//! a stream of JSON values such as pretty-printed records.
//!
//! Each record is held alone while it is classified, and never more than
//! [`MAX_LINE_BYTES`] of it: a larger one stops the object.

use super::record::Unusable;
use super::{Collector, Denial, LogFormat, Stop, MAX_LINE_BYTES};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::io::{self, BufReader, Read};

/// Reads a document of `format` from `input`, handing each record to `out`.
pub(super) fn read_document<F: FnMut(Denial)>(
    format: LogFormat,
    input: impl Read,
    out: &mut Collector<'_, F>,
) -> Result<(), Stop> {
    let budget = Budget::default();
    let reader = Capped {
        inner: BufReader::with_capacity(super::BLOCK_BYTES, input),
        budget: &budget,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut records = Records {
        out,
        budget: &budget,
    };
    let outcome = match format {
        LogFormat::CloudTrail => Document {
            key: "Records",
            records: &mut records,
            embedded: false,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end()),
        LogFormat::LookupEvents => Document {
            key: "Events",
            records: &mut records,
            embedded: true,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end()),
        LogFormat::JsonArray => Array {
            records: &mut records,
            embedded: false,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end()),
        _ => de
            .into_iter::<Box<RawValue>>()
            .try_for_each(|value| value.map(|v| records.record(&v))),
    };
    match outcome {
        Ok(()) => Ok(()),
        Err(_) if budget.exceeded.get() => {
            records.out.skip(Unusable::OversizedLine);
            Err(Stop::Malformed(format!(
                "a record is larger than {} MiB",
                MAX_LINE_BYTES >> 20
            )))
        }
        Err(e) if e.is_io() => Err(Stop::Io(io::Error::from(e))),
        Err(e) => Err(Stop::Malformed(e.to_string())),
    }
}

/// Bytes serde may still pull for the current record.
#[derive(Default)]
struct Budget {
    taken: Cell<usize>,
    exceeded: Cell<bool>,
}

/// Fails the read once one record has taken [`MAX_LINE_BYTES`].
struct Capped<'b, R> {
    inner: R,
    budget: &'b Budget,
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = MAX_LINE_BYTES.saturating_sub(self.budget.taken.get());
        if left == 0 {
            self.budget.exceeded.set(true);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "record over the size limit",
            ));
        }
        let n = buf.len().min(left);
        let n = self.inner.read(&mut buf[..n])?;
        self.budget.taken.set(self.budget.taken.get() + n);
        Ok(n)
    }
}

/// Hands records to the collector and renews the budget after each one.
struct Records<'o, 'a, F> {
    out: &'o mut Collector<'a, F>,
    budget: &'o Budget,
}

impl<F: FnMut(Denial)> Records<'_, '_, F> {
    fn record(&mut self, raw: &RawValue) {
        self.out.record(raw.get());
        self.budget.taken.set(0);
    }

    /// A lookup-events entry: the record is the JSON string in `CloudTrailEvent`.
    fn embedded(&mut self, raw: &RawValue) {
        #[derive(Deserialize)]
        struct Entry<'a> {
            #[serde(borrow, rename = "CloudTrailEvent")]
            event: Option<Cow<'a, str>>,
        }
        match serde_json::from_str::<Entry<'_>>(raw.get()) {
            Ok(Entry { event: Some(text) }) => self.out.record(&text),
            _ => self.out.skip(Unusable::InvalidJson),
        }
        self.budget.taken.set(0);
    }
}

/// `{"<key>": [records...], ...}`; other members are skipped.
struct Document<'r, 'o, 'a, F> {
    key: &'static str,
    records: &'r mut Records<'o, 'a, F>,
    embedded: bool,
}

impl<'de, F: FnMut(Denial)> DeserializeSeed<'de> for Document<'_, '_, '_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Denial)> Visitor<'de> for Document<'_, '_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with a {:?} array", self.key)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key::<Cow<'de, str>>()? {
            if k == self.key {
                map.next_value_seed(Array {
                    records: &mut *self.records,
                    embedded: self.embedded,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            self.records.budget.taken.set(0);
        }
        Ok(())
    }
}

/// `[records...]`.
struct Array<'r, 'o, 'a, F> {
    records: &'r mut Records<'o, 'a, F>,
    embedded: bool,
}

impl<'de, F: FnMut(Denial)> DeserializeSeed<'de> for Array<'_, '_, '_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Denial)> Visitor<'de> for Array<'_, '_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            if self.embedded {
                self.records.embedded(&raw);
            } else {
                self.records.record(&raw);
            }
        }
        Ok(())
    }
}
