//! [`ObjectSource`] over S3 GetObject: the body is streamed, never held whole.

use super::{ObjectSource, OpenedObject, SourceError};
use crate::event::ObjectRef;
use aws_sdk_s3::error::DisplayErrorContext;
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

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<OpenedObject>, SourceError> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(SourceError {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    message: DisplayErrorContext(&e).to_string(),
                })
            }
        };
        let version = out
            .version_id()
            .filter(|v| !v.is_empty() && *v != "null")
            .or(out.e_tag())
            .unwrap_or_default()
            .to_string();
        let size = out.content_length().and_then(|n| u64::try_from(n).ok());
        // The bridge blocks on the runtime: the reader must be used on a blocking thread.
        let body = SyncIoBridge::new(out.body.into_async_read());
        Ok(Some(OpenedObject {
            body: Box::new(body),
            version,
            size,
        }))
    }
}

impl ObjectSource for S3Source {
    async fn open(&self, object: &ObjectRef) -> Result<Option<OpenedObject>, SourceError> {
        match self.get(&object.bucket, &object.key).await? {
            // A sender that did not URL-encode the key: try it as written.
            None if object.raw_key != object.key => self.get(&object.bucket, &object.raw_key).await,
            found => Ok(found),
        }
    }
}
