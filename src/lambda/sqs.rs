//! An SQS batch of S3 notifications (docs/DESIGN.md, "A queue for busy buckets"): its
//! messages processed a few at once, and only the messages that failed, or were not
//! started before the invocation's time ran low, reported back for redelivery.

use super::{account_objects, Handler, MESSAGE_CONCURRENCY};
use crate::event::SqsMessage;
use crate::objects::ObjectSource;
use crate::stats::Counts;
use crate::store::FunctionStore;
use aws_lambda_events::sqs::SqsBatchResponse;
use futures_util::stream::{self, StreamExt};
use std::time::Instant;
use tracing::warn;

/// A message not started because the invocation's time is nearly out.
struct Deferred;

impl<S: FunctionStore, O: ObjectSource> Handler<S, O> {
    /// Processes the batch's messages a few at once; when the invocation's deadline
    /// draws near (`cutoff`), messages not yet counting are returned as failures, to be
    /// redelivered, rather than let the whole batch time out.
    pub(super) async fn handle_sqs(
        &self,
        messages: &[SqsMessage],
        cutoff: Option<Instant>,
        metrics: &mut Counts,
    ) -> SqsBatchResponse {
        let results: Vec<_> = stream::iter(messages)
            .map(|m| async move {
                let Ok(objects) = &m.objects else {
                    return (m, None);
                };
                if cutoff.is_some_and(|c| Instant::now() >= c) {
                    return (m, Some(Err(Deferred)));
                }
                (m, Some(Ok(self.process_objects(objects, cutoff).await)))
            })
            .buffer_unordered(MESSAGE_CONCURRENCY)
            .collect()
            .await;
        let mut response = SqsBatchResponse::default();
        for (m, result) in results {
            let failed = match (result, &m.objects) {
                (None, Err(reason)) => {
                    warn!(message_id = %m.message_id, reason = %reason, "SQS message acknowledged without objects");
                    false
                }
                (None, Ok(_)) => false,
                (Some(Err(Deferred)), _) => {
                    metrics.messages_deferred += 1;
                    warn!(message_id = %m.message_id, "the invocation's time is nearly out: message left for redelivery");
                    true
                }
                (Some(Ok(results)), Ok(objects)) => {
                    let failed = results.iter().any(Result::is_err);
                    account_objects(objects, &results, metrics);
                    failed
                }
                (Some(Ok(_)), Err(_)) => false,
            };
            if failed {
                response.add_failure(m.message_id.clone());
            }
        }
        response
    }
}
