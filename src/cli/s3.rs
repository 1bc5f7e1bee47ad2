//! Listing the objects under an `s3://bucket/prefix` for `scan`.

use super::inputs::Input;
use crate::errors::error_chain;

/// Every object under `prefix`, in key order (the order S3 lists them).
pub async fn list_objects(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<Input>, String> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error_chain(&e))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            out.push(Input::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
                size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                modified: o.last_modified().map_or(0, |t| t.secs()),
            });
        }
    }
    Ok(out)
}
