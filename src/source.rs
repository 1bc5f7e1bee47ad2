//! Where log objects come from: the [`ObjectSource`] seam with an in-memory
//! implementation (tests) and S3 (`aws::s3`).
//!
//! An object is read exactly as the event names it: the version the event names, or
//! the current one when it names none; [`OpenedObject::version`] says which was read,
//! and that is what the object's identity is made of (docs/DESIGN.md, "Object
//! identity").

use crate::errors::{lock, BoxError};
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
    /// ETag of what is being read, for the object's marker (docs/DESIGN.md, "The sweep").
    pub etag: Option<String>,
    pub size: Option<u64>,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// Last modified, epoch seconds (0 when unknown).
    pub modified: i64,
}

/// What a listing found: objects, and with a delimiter the "folders" below the prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<ListedObject>,
    pub prefixes: Vec<String>,
}

/// Opening or listing failed for a reason a retry may fix (access, throttling, network).
#[derive(Debug, Error)]
#[error("{operation} s3://{bucket}/{key} failed")]
pub struct SourceError {
    /// `GetObject` or `ListObjectsV2`.
    pub operation: &'static str,
    pub bucket: String,
    /// The key, or the prefix listed.
    pub key: String,
    #[source]
    pub source: BoxError,
}

pub trait ObjectSource: Send + Sync {
    /// `Ok(None)` when the object (or the version the event names) does not exist
    /// (any more).
    fn open(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Option<OpenedObject>, SourceError>> + Send;

    /// Every object whose key starts with `prefix` (and, with `start_after`, sorts
    /// after it), in key order; with `folders`, the objects directly below it and the
    /// next `/`-ended prefixes instead.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        folders: bool,
        start_after: Option<&str>,
    ) -> impl Future<Output = Result<Listing, SourceError>> + Send;
}

/// Bodies of every version of one object, oldest first.
type Versions = Vec<Vec<u8>>;

/// Objects held in memory, keyed by (bucket, key), each with its versions.
#[derive(Debug, Default)]
pub struct MemorySource {
    objects: Mutex<HashMap<(String, String), Versions>>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes a new version of the object; returns its version id.
    pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) -> String {
        let mut objects = lock(&self.objects);
        let versions = objects
            .entry((bucket.to_string(), key.to_string()))
            .or_default();
        versions.push(body.into());
        format!("v{}", versions.len())
    }
}

impl ObjectSource for MemorySource {
    async fn open(&self, object: &ObjectRef) -> Result<Option<OpenedObject>, SourceError> {
        let objects = lock(&self.objects);
        let Some(versions) = objects.get(&(object.bucket.clone(), object.key.clone())) else {
            return Ok(None);
        };
        let index = match &object.version_id {
            Some(v) => match v.strip_prefix('v').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) if n >= 1 && n <= versions.len() => n - 1,
                _ => return Ok(None),
            },
            None => versions.len() - 1,
        };
        let body = versions[index].clone();
        Ok(Some(OpenedObject {
            version: format!("v{}", index + 1),
            etag: Some(memory_etag(&body)),
            size: Some(body.len() as u64),
            body: Box::new(std::io::Cursor::new(body)),
        }))
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        folders: bool,
        start_after: Option<&str>,
    ) -> Result<Listing, SourceError> {
        let objects = lock(&self.objects);
        let mut keys: Vec<(&String, &Versions)> = objects
            .iter()
            .filter(|((b, k), _)| {
                b == bucket && k.starts_with(prefix) && start_after.is_none_or(|a| k.as_str() > a)
            })
            .map(|((_, k), v)| (k, v))
            .collect();
        keys.sort();
        let mut listing = Listing::default();
        for (key, versions) in keys {
            let rest = &key[prefix.len()..];
            match rest.find('/') {
                Some(i) if folders => {
                    let folder = format!("{prefix}{}", &rest[..=i]);
                    if listing.prefixes.last() != Some(&folder) {
                        listing.prefixes.push(folder);
                    }
                }
                _ => {
                    let body = versions.last().map(Vec::as_slice).unwrap_or_default();
                    listing.objects.push(ListedObject {
                        key: key.clone(),
                        size: body.len() as u64,
                        etag: Some(memory_etag(body)),
                        modified: 0,
                    });
                }
            }
        }
        Ok(listing)
    }
}

/// A content digest standing in for S3's ETag.
fn memory_etag(body: &[u8]) -> String {
    crate::key::ObjectId::file("memory", &String::from_utf8_lossy(body)).token
}
