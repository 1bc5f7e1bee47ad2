//! Where log objects come from: the [`ObjectSource`] seam with an in-memory
//! implementation (tests) and S3 ([`s3`]).

#[cfg(feature = "aws")]
pub mod s3;

use crate::event::ObjectRef;
use std::collections::HashMap;
use std::future::Future;
use std::io::Read;
use std::sync::Mutex;
use thiserror::Error;

/// An object opened for streaming.
pub struct OpenedObject {
    /// Blocking reader over the body: read it from a blocking thread.
    pub body: Box<dyn Read + Send>,
    /// Version of what is being read (version id, else ETag), for the object id.
    pub version: String,
    pub size: Option<u64>,
}

/// Opening failed for a reason a retry may fix (access, throttling, network).
#[derive(Debug, Error)]
#[error("GetObject s3://{bucket}/{key} failed: {message}")]
pub struct SourceError {
    pub bucket: String,
    pub key: String,
    pub message: String,
}

pub trait ObjectSource: Send + Sync {
    /// `Ok(None)` when the object does not exist (any more).
    fn open(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Option<OpenedObject>, SourceError>> + Send;
}

/// Objects held in memory, keyed by (bucket, key).
#[derive(Debug, Default)]
pub struct MemorySource {
    objects: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((bucket.to_string(), key.to_string()), body.into());
    }
}

impl ObjectSource for MemorySource {
    async fn open(&self, object: &ObjectRef) -> Result<Option<OpenedObject>, SourceError> {
        let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        Ok(objects
            .get(&(object.bucket.clone(), object.key.clone()))
            .map(|body| OpenedObject {
                version: format!("len-{}", body.len()),
                size: Some(body.len() as u64),
                body: Box::new(std::io::Cursor::new(body.clone())),
            }))
    }
}
