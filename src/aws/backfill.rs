//! Backfill on the deployed fleet (docs/DESIGN.md, "Backfill through the queue"): the
//! objects under a prefix, listed a page at a time, sent to the stack's input queue as
//! the S3 notifications S3 itself would send, 10 to a `SendMessageBatch`, so the
//! deployed functions count them with every guarantee of the live path.
//!
//! Memory is one listing page and one batch, whatever the number of objects. Keys come
//! in order and batches are sent one after another, so every key up to the last one of
//! the last batch sent is on the queue: that key is where `--start-after` resumes.

use super::json::JsonApi;
use crate::errors::BoxError;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The tag the template puts on its input queue: a queue without it is no queue of a
/// stack of this project.
pub const QUEUE_TAG: (&str, &str) = ("bedrock-denied-models", "log-queue");
/// Entries of one `SendMessageBatch`, SQS's most.
pub const BATCH: usize = 10;
/// Sends of a batch's failed entries before the backfill stops (with the key to
/// resume from).
pub const ATTEMPTS: u32 = 5;

/// One message to send: its id within the batch, and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub body: String,
}

/// An entry SQS did not take, and whether the sender was at fault (then a retry
/// cannot help).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub id: String,
    pub sender_fault: bool,
    pub reason: String,
}

/// Where the messages go: the stack's queue, or a test's.
pub trait BatchSender: Send + Sync {
    /// Sends `entries` (at most [`BATCH`]); the entries not taken.
    fn send(
        &self,
        entries: &[Entry],
    ) -> impl std::future::Future<Output = Result<Vec<Failure>, BoxError>> + Send;
}

/// An SQS queue, reached with signed JSON requests.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    api: JsonApi,
    url: String,
}

impl SqsQueue {
    pub fn new(sdk: &aws_config::SdkConfig, region: &str, url: impl Into<String>) -> Self {
        Self {
            api: JsonApi::new(sdk, "sqs", region),
            url: url.into(),
        }
    }

    async fn call(&self, operation: &'static str, body: Value) -> Result<Value, BoxError> {
        let target = format!("AmazonSQS.{operation}");
        Ok(self
            .api
            .call(
                operation,
                "/",
                &[
                    ("content-type", "application/x-amz-json-1.0"),
                    ("x-amz-target", &target),
                ],
                body.to_string().as_bytes(),
            )
            .await?)
    }

    /// Whether the queue carries [`QUEUE_TAG`]: an error names what it has instead.
    pub async fn check_owned(&self) -> Result<(), String> {
        let answer = self
            .call("ListQueueTags", json!({"QueueUrl": self.url}))
            .await
            .map_err(|e| {
                format!(
                    "cannot read the tags of {}: {}",
                    self.url,
                    crate::error_chain(&*e)
                )
            })?;
        let (key, value) = QUEUE_TAG;
        match answer["Tags"][key].as_str() {
            Some(v) if v == value => Ok(()),
            _ => Err(format!(
                "{} is not the input queue of a stack of this project (no tag {key}={value})",
                self.url
            )),
        }
    }
}

impl BatchSender for SqsQueue {
    async fn send(&self, entries: &[Entry]) -> Result<Vec<Failure>, BoxError> {
        let entries: Vec<Value> = entries
            .iter()
            .map(|e| json!({"Id": e.id, "MessageBody": e.body}))
            .collect();
        let answer = self
            .call(
                "SendMessageBatch",
                json!({"QueueUrl": self.url, "Entries": entries}),
            )
            .await?;
        Ok(answer["Failed"]
            .as_array()
            .map(|failed| {
                failed
                    .iter()
                    .map(|f| Failure {
                        id: f["Id"].as_str().unwrap_or_default().to_string(),
                        sender_fault: f["SenderFault"].as_bool().unwrap_or(false),
                        reason: format!(
                            "{}: {}",
                            f["Code"].as_str().unwrap_or("?"),
                            f["Message"].as_str().unwrap_or("")
                        ),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// Characters S3 leaves as they are in a notification's key; a space is `+`.
const KEY_KEEPS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b' ');

/// The S3 event notification S3 sends for a new object, as the function reads it.
pub fn notification(bucket: &str, region: &str, key: &str, size: i64, etag: &str) -> String {
    let encoded = utf8_percent_encode(key, KEY_KEEPS)
        .to_string()
        .replace(' ', "+");
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": format!("arn:{}:s3:::{bucket}", crate::arn::partition(region))},
            "object": {"key": encoded, "size": size, "eTag": etag.trim_matches('"')},
        },
    }]})
    .to_string()
}

/// What a backfill is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub start_after: Option<String>,
    /// Count only: list and select, send nothing.
    pub dry_run: bool,
}

/// How far a backfill got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Objects listed under the prefix (after `start_after`).
    pub listed: u64,
    /// Objects selected (in the period) and sent, or counted in a dry run.
    pub sent: u64,
    /// Sends of entries SQS did not take at first.
    pub retried: u64,
    /// The last key of the last batch sent: everything up to it is on the queue.
    pub sent_through: Option<String>,
}

/// Why a backfill stopped early; `progress` says where to resume.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct BackfillError {
    pub what: String,
    pub progress: Progress,
}

/// Sends `batch` until SQS took every entry, at most [`ATTEMPTS`] times.
async fn send_all(
    sender: &impl BatchSender,
    mut batch: Vec<Entry>,
    progress: &Mutex<Progress>,
) -> Result<(), String> {
    for attempt in 1..=ATTEMPTS {
        let failed = sender
            .send(&batch)
            .await
            .map_err(|e| format!("SendMessageBatch failed: {}", crate::error_chain(&*e)))?;
        if failed.is_empty() {
            return Ok(());
        }
        if let Some(f) = failed.iter().find(|f| f.sender_fault) {
            return Err(format!("SQS refused message {}: {}", f.id, f.reason));
        }
        if attempt == ATTEMPTS {
            return Err(format!(
                "SQS did not take {} messages after {ATTEMPTS} sends: {}",
                failed.len(),
                failed[0].reason
            ));
        }
        crate::errors::lock(progress).retried += failed.len() as u64;
        batch.retain(|e| failed.iter().any(|f| f.id == e.id));
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
    }
    Ok(())
}

/// Lists `plan`'s objects a page at a time, keeps those `keep` selects (key, last
/// modified epoch seconds) and sends them 10 to a batch; `progress` is kept current
/// for the caller to show, and to print where to resume when interrupted.
pub async fn backfill(
    s3: &aws_sdk_s3::Client,
    sender: &impl BatchSender,
    plan: &Plan,
    keep: impl Fn(&str, i64) -> bool,
    progress: Arc<Mutex<Progress>>,
) -> Result<Progress, BackfillError> {
    let stop = |what: String| BackfillError {
        what,
        progress: crate::errors::lock(&progress).clone(),
    };
    let mut pages = s3
        .list_objects_v2()
        .bucket(&plan.bucket)
        .prefix(&plan.prefix)
        .set_start_after(plan.start_after.clone())
        .into_paginator()
        .send();
    let mut batch: Vec<Entry> = Vec::with_capacity(BATCH);
    let mut last_key = String::new();
    let flush = |batch: Vec<Entry>, last_key: String| {
        let progress = progress.clone();
        async move {
            let n = batch.len() as u64;
            if !plan.dry_run {
                send_all(sender, batch, &progress).await?;
            }
            let mut p = crate::errors::lock(&progress);
            p.sent += n;
            p.sent_through = Some(last_key);
            Ok::<(), String>(())
        }
    };
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            stop(format!(
                "ListObjectsV2 s3://{}/{}: {}",
                plan.bucket,
                plan.prefix,
                crate::error_chain(&e)
            ))
        })?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            crate::errors::lock(&progress).listed += 1;
            let modified = o.last_modified().map_or(0, |t| t.secs());
            if !keep(key, modified) {
                continue;
            }
            let body = notification(
                &plan.bucket,
                &plan.region,
                key,
                o.size().unwrap_or(0),
                o.e_tag().unwrap_or_default(),
            );
            batch.push(Entry {
                id: batch.len().to_string(),
                body,
            });
            last_key = key.to_string();
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                flush(full, last_key.clone()).await.map_err(&stop)?;
            }
        }
    }
    if !batch.is_empty() {
        flush(batch, last_key).await.map_err(&stop)?;
    }
    let done = crate::errors::lock(&progress).clone();
    Ok(done)
}

/// `listed, sent, rate` for the progress line, and the time since `started`.
pub fn progress_line(p: &Progress, started: Instant, dry_run: bool) -> String {
    let seconds = started.elapsed().as_secs_f64().max(0.001);
    format!(
        "listed {}, {} {} ({:.0}/s){}",
        p.listed,
        if dry_run { "selected" } else { "sent" },
        p.sent,
        p.sent as f64 / seconds,
        if p.retried > 0 {
            format!(", {} resent", p.retried)
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails entry "1" of the first `fail` sends, as SQS does under throttling.
    struct Flaky {
        fail: Mutex<u32>,
        sent: Mutex<Vec<String>>,
        sender_fault: bool,
    }

    impl BatchSender for Flaky {
        async fn send(&self, entries: &[Entry]) -> Result<Vec<Failure>, BoxError> {
            let mut fail = crate::errors::lock(&self.fail);
            let mut failed = Vec::new();
            for e in entries {
                if e.id == "1" && *fail > 0 {
                    failed.push(Failure {
                        id: e.id.clone(),
                        sender_fault: self.sender_fault,
                        reason: "ThrottlingException: slow down".into(),
                    });
                } else {
                    crate::errors::lock(&self.sent).push(e.body.clone());
                }
            }
            if !failed.is_empty() {
                *fail -= 1;
            }
            Ok(failed)
        }
    }

    fn entries(n: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                id: i.to_string(),
                body: format!("m{i}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_failed_entry_is_sent_again_alone() {
        let flaky = Flaky {
            fail: Mutex::new(2),
            sent: Mutex::default(),
            sender_fault: false,
        };
        let progress = Mutex::default();
        send_all(&flaky, entries(3), &progress).await.expect("sent");
        let sent = crate::errors::lock(&flaky.sent).clone();
        assert_eq!(sent, ["m0", "m2", "m1"], "each once, m1 after its retries");
        assert_eq!(crate::errors::lock(&progress).retried, 2);
    }

    #[tokio::test]
    async fn a_refused_entry_or_one_never_taken_stops_the_backfill() {
        let refused = Flaky {
            fail: Mutex::new(1),
            sent: Mutex::default(),
            sender_fault: true,
        };
        let err = send_all(&refused, entries(2), &Mutex::default())
            .await
            .expect_err("refused");
        assert!(err.contains("refused message 1"), "{err}");
        let never = Flaky {
            fail: Mutex::new(u32::MAX),
            sent: Mutex::default(),
            sender_fault: false,
        };
        let err = send_all(&never, entries(2), &Mutex::default())
            .await
            .expect_err("never taken");
        assert!(err.contains("after 5 sends"), "{err}");
    }

    #[test]
    fn the_notification_is_one_the_function_reads_back() {
        let key = "AWSLogs/111122223333/x y/ä+b%.json.gz";
        let body = notification("logs", "eu-west-1", key, 42, "\"abc\"");
        let event: Value = serde_json::from_str(&body).expect("json");
        match crate::event::parse_invocation(&event) {
            crate::event::Invocation::Objects(o) => {
                assert_eq!(o.len(), 1);
                assert_eq!(o[0].bucket, "logs");
                assert_eq!(o[0].key, key);
            }
            other => panic!("{other:?}"),
        }
        assert!(body.contains("\"eTag\":\"abc\""), "{body}");
    }
}
