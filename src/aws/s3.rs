//! [`ObjectSource`] over S3 GetObject: pinned to the version the event names, the body
//! streamed, never held whole.

use crate::event::ObjectRef;
use crate::identity::ObjectId;
use crate::objects::{KeyRange, ListedObject, Listing, ObjectSource, OpenedObject, SourceError};
use crate::Context;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::Client;
use tokio_util::io::SyncIoBridge;

#[derive(Debug, Clone)]
pub struct S3Source {
    client: Client,
}

impl S3Source {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<OpenedObject>, SourceError> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(gone) => return Ok(None),
            Err(e) => {
                let what = match version_id {
                    Some(v) => format!("version {v}"),
                    None => "current version".to_string(),
                };
                return Err(SourceError::s3(
                    "GetObject",
                    bucket,
                    key,
                    Context::new(what, e),
                ));
            }
        };
        // The identity of what was read: the version id read, else the ETag read.
        let version = out
            .version_id()
            .filter(|v| !v.is_empty() && *v != "null")
            .or(out.e_tag())
            .unwrap_or_default()
            .to_string();
        let size = out.content_length().and_then(|n| u64::try_from(n).ok());
        let etag = out.e_tag().map(str::to_string);
        // The bridge blocks on the runtime: the reader must be used on a blocking thread.
        let body = SyncIoBridge::new(out.body.into_async_read());
        Ok(Some(OpenedObject {
            id: ObjectId::s3(bucket, key, &version),
            body: Box::new(body),
            version,
            etag,
            size,
        }))
    }
}

/// The object, or the version asked for, does not exist (any more).
fn gone(e: &GetObjectError) -> bool {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    e.is_no_such_key() || e.code() == Some("NoSuchVersion")
}

impl ObjectSource for S3Source {
    async fn open(&self, object: &ObjectRef) -> Result<Option<OpenedObject>, SourceError> {
        let version = object.version_id.as_deref();
        match self.get(&object.bucket, &object.key, version).await? {
            // A sender that did not URL-encode the key: try it as written.
            None if object.raw_key != object.key => {
                self.get(&object.bucket, &object.raw_key, version).await
            }
            found => Ok(found),
        }
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        folders: bool,
        range: KeyRange<'_>,
    ) -> Result<Listing, SourceError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(range.start_after.map(str::to_string))
            .set_delimiter(folders.then(|| "/".to_string()))
            .into_paginator()
            .send();
        let mut listing = Listing::default();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| SourceError::s3("ListObjectsV2", bucket, prefix, e))?;
            listing.prefixes.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            if let Some(max) = range.max_objects.filter(|m| listing.prefixes.len() > *m) {
                listing.prefixes.truncate(max);
                listing.cut = true;
                return Ok(listing);
            }
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                // Keys come in order: past the range's end, nothing more is in it.
                if range.end_before.is_some_and(|e| key >= e) {
                    return Ok(listing);
                }
                if !range.contains(key) {
                    continue;
                }
                if range
                    .max_objects
                    .is_some_and(|m| listing.objects.len() >= m)
                {
                    listing.cut = true;
                    return Ok(listing);
                }
                listing.objects.push(ListedObject {
                    key: key.to_string(),
                    size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                    etag: o.e_tag().map(str::to_string),
                    modified: o.last_modified().map_or(0, |t| t.secs()),
                });
            }
        }
        Ok(listing)
    }
}
