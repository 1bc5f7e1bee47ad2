//! The one path of an object from its source to the detector: housekeeping objects
//! skipped, the object opened (gone is not an error), its body read on a blocking
//! thread, then counted. The function and `scan` both take it; `scan` reads several
//! objects at once ([`fetch`]) and counts them in input order.

use crate::detector::{DetectError, Detector, ObjectReport};
use crate::event::{skip_reason, ObjectRef};
use crate::identity::ObjectId;
use crate::objects::{ObjectSource, SourceError};
use crate::reader::{ObjectRead, Reader};
use crate::store::DetectorStore;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;
use thiserror::Error;

/// An object read, ready to be counted.
pub struct ReadObject {
    pub id: ObjectId,
    /// The version read (version id, else ETag; size and time for a file).
    pub version: String,
    pub etag: Option<String>,
    pub read: ObjectRead,
}

/// What became of an object before counting.
pub enum Fetched {
    /// A housekeeping object (or an empty one), with the reason: nothing to count.
    Skipped(&'static str),
    /// Gone before it could be read (NoSuchKey, NoSuchVersion, a deleted file).
    Missing,
    Read(Box<ReadObject>),
}

/// What became of an object.
pub enum Processed {
    Skipped(&'static str),
    Missing,
    Counted {
        report: Box<ObjectReport>,
        version: String,
        etag: Option<String>,
    },
}

/// Why an object could not be read or counted; the object is retried whole.
#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("reading {object} stopped unexpectedly: {message}")]
    Reader { object: String, message: String },
    #[error(transparent)]
    Detect(#[from] DetectError),
}

/// Opens `object` in `source` and reads it; reading stops at `cutoff` (the object
/// then fails before anything of it is counted, so it is retried whole).
pub async fn fetch<O: ObjectSource>(
    source: &O,
    reader: &Arc<Reader>,
    object: &ObjectRef,
    cutoff: Option<Instant>,
) -> Result<Fetched, PipelineError> {
    if let Some(reason) = skip_reason(&object.key, object.size.unwrap_or(u64::MAX)) {
        return Ok(Fetched::Skipped(reason));
    }
    let Some(opened) = source.open(object).await? else {
        return Ok(Fetched::Missing);
    };
    if opened.size == Some(0) {
        return Ok(Fetched::Skipped("empty object"));
    }
    let reader = reader.clone();
    let body = Until {
        inner: opened.body,
        cutoff,
    };
    let account = opened.id.folder_account();
    let read = tokio::task::spawn_blocking(move || reader.read(body, account.as_deref()))
        .await
        .map_err(|e| PipelineError::Reader {
            object: opened.id.uri.clone(),
            message: e.to_string(),
        })?;
    Ok(Fetched::Read(Box::new(ReadObject {
        id: opened.id,
        version: opened.version,
        etag: opened.etag,
        read,
    })))
}

/// [`fetch`], then count what was read.
pub async fn process<S: DetectorStore, O: ObjectSource>(
    source: &O,
    detector: &Detector<S>,
    object: &ObjectRef,
    cutoff: Option<Instant>,
) -> Result<Processed, PipelineError> {
    Ok(
        match fetch(source, detector.reader(), object, cutoff).await? {
            Fetched::Skipped(reason) => Processed::Skipped(reason),
            Fetched::Missing => Processed::Missing,
            Fetched::Read(o) => {
                let ReadObject {
                    id,
                    version,
                    etag,
                    read,
                } = *o;
                Processed::Counted {
                    report: Box::new(detector.count(&id, read).await?),
                    version,
                    etag,
                }
            }
        },
    )
}

/// A body that stops being read at `cutoff`, as a broken-off source would.
struct Until {
    inner: Box<dyn Read + Send>,
    cutoff: Option<Instant>,
}

impl Read for Until {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cutoff.is_some_and(|c| Instant::now() >= c) {
            return Err(std::io::Error::other(
                "stopped: the invocation's time is nearly out; retried whole",
            ));
        }
        self.inner.read(buf)
    }
}
