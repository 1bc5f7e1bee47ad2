//! `enable-eventbridge`: turns on S3's EventBridge delivery for an existing bucket by
//! merging into its notification configuration, never dropping the Lambda, SQS or
//! SNS notifications it already has (docs/DESIGN.md, "Existing buckets").
//!
//! PutBucketNotificationConfiguration replaces the whole configuration, so this reads
//! it, adds `EventBridgeConfiguration`, writes it back, and reads it again to compare
//! with what it wrote. A bucket that a CloudFormation stack manages is refused
//! unless forced: that stack's next update would write its own configuration back,
//! without EventBridge, and blind the detector.

use crate::errors::error_chain;
use aws_sdk_s3::types::{
    EventBridgeConfiguration, LambdaFunctionConfiguration, NotificationConfiguration,
    QueueConfiguration, TopicConfiguration,
};
use clap::Args;
use std::future::Future;
use std::process::ExitCode;
use thiserror::Error;

/// The tag CloudFormation puts on every bucket a stack creates.
pub const STACK_TAG: &str = "aws:cloudformation:stack-name";

/// Exit status when a stack-managed bucket is refused (without `--force`).
pub const EXIT_REFUSED: u8 = 3;
/// Exit status when another writer changed the configuration meanwhile.
pub const EXIT_CONCURRENT_CHANGE: u8 = 4;

#[derive(Debug, Args)]
pub struct WireArgs {
    /// The log bucket.
    #[arg(long, value_name = "NAME")]
    bucket: String,
    /// Print what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write even when a CloudFormation stack manages the bucket (its next update
    /// will remove EventBridge delivery again unless the stack turns it on).
    #[arg(long)]
    force: bool,
}

/// Why `enable-eventbridge` did not finish.
#[derive(Debug, Error)]
pub enum WireError {
    #[error(
        "belongs to CloudFormation stack {stack:?} (tag {STACK_TAG}): a configuration written \
         here is replaced at that stack's next update, which turns EventBridge delivery off \
         again and blinds the detector. Turn it on in the stack instead: add \
         `NotificationConfiguration: {{EventBridgeConfiguration: {{EventBridgeEnabled: true}}}}` \
         to the bucket's properties (for a bucket Terraform manages, `eventbridge = true` in \
         its aws_s3_bucket_notification). Run again with --force to write it anyway."
    )]
    ManagedByStack { stack: String },
    #[error(
        "the configuration read back is not the one written: another writer changed it \
         meanwhile (another tool, a stack update, a person). Run again to merge with what \
         is there now. Read back:\n{read_back}"
    )]
    ConcurrentChange { read_back: String },
    #[error("{what}: {message}")]
    Failed { what: &'static str, message: String },
}

impl WireError {
    fn exit_code(&self) -> ExitCode {
        match self {
            WireError::ManagedByStack { .. } => ExitCode::from(EXIT_REFUSED),
            WireError::ConcurrentChange { .. } => ExitCode::from(EXIT_CONCURRENT_CHANGE),
            WireError::Failed { .. } => ExitCode::from(1),
        }
    }
}

/// A bucket's notification configuration, as far as this command keeps it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notifications {
    pub lambda: Vec<LambdaFunctionConfiguration>,
    pub queues: Vec<QueueConfiguration>,
    pub topics: Vec<TopicConfiguration>,
    pub eventbridge: bool,
}

/// What the command reads and writes of a bucket: S3, or a test's stand-in that
/// writes in between like another tool would.
pub trait BucketConfig {
    /// The stack that manages the bucket, from its tags.
    fn managing_stack(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<Option<String>, WireError>>;
    fn read(&self, bucket: &str) -> impl Future<Output = Result<Notifications, WireError>>;
    fn write(
        &self,
        bucket: &str,
        config: &Notifications,
    ) -> impl Future<Output = Result<(), WireError>>;
}

fn failed(what: &'static str, e: &(dyn std::error::Error + '_)) -> WireError {
    WireError::Failed {
        what,
        message: error_chain(e),
    }
}

impl BucketConfig for aws_sdk_s3::Client {
    async fn managing_stack(&self, bucket: &str) -> Result<Option<String>, WireError> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        match self.get_bucket_tagging().bucket(bucket).send().await {
            Ok(out) => Ok(out
                .tag_set()
                .iter()
                .find(|t| t.key() == STACK_TAG)
                .map(|t| t.value().to_string())),
            Err(e) if e.code() == Some("NoSuchTagSet") => Ok(None),
            Err(e) => Err(failed("reading the bucket's tags", &e)),
        }
    }

    async fn read(&self, bucket: &str) -> Result<Notifications, WireError> {
        let c = self
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| failed("reading the notification configuration", &e))?;
        Ok(Notifications {
            lambda: c.lambda_function_configurations().to_vec(),
            queues: c.queue_configurations().to_vec(),
            topics: c.topic_configurations().to_vec(),
            eventbridge: c.event_bridge_configuration().is_some(),
        })
    }

    async fn write(&self, bucket: &str, config: &Notifications) -> Result<(), WireError> {
        let merged = NotificationConfiguration::builder()
            .set_lambda_function_configurations(Some(config.lambda.clone()))
            .set_queue_configurations(Some(config.queues.clone()))
            .set_topic_configurations(Some(config.topics.clone()))
            .set_event_bridge_configuration(
                config
                    .eventbridge
                    .then(|| EventBridgeConfiguration::builder().build()),
            )
            .build();
        self.put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(merged)
            // The kept destinations are unchanged: do not fail on one that S3 would no
            // longer validate today.
            .skip_destination_validation(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("writing the notification configuration", &e))
    }
}

pub fn run(args: &WireArgs) -> ExitCode {
    let runtime = match super::start_runtime(tokio::runtime::Builder::new_current_thread()) {
        Ok(r) => r,
        Err(status) => return status,
    };
    runtime.block_on(async {
        let sdk = crate::aws::sdk_config().await;
        let client = crate::aws::s3_client(&sdk);
        match enable(&client, &args.bucket, args.dry_run, args.force).await {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bedrock-denied-models: s3://{}: {e}", args.bucket);
                e.exit_code()
            }
        }
    })
}

/// What the bucket's configuration holds besides EventBridge, for the report.
pub fn kept(c: &Notifications) -> String {
    let mut lines = Vec::new();
    for l in &c.lambda {
        lines.push(format!(
            "  keeps Lambda  {} ({})",
            l.lambda_function_arn(),
            l.id().unwrap_or("no id")
        ));
    }
    for q in &c.queues {
        lines.push(format!(
            "  keeps SQS     {} ({})",
            q.queue_arn(),
            q.id().unwrap_or("no id")
        ));
    }
    for t in &c.topics {
        lines.push(format!(
            "  keeps SNS     {} ({})",
            t.topic_arn(),
            t.id().unwrap_or("no id")
        ));
    }
    if lines.is_empty() {
        lines.push("  no other notifications".into());
    }
    lines.join("\n")
}

/// Adds EventBridge delivery, keeping everything else; idempotent. Refuses a bucket a
/// stack manages unless `force`; reports a configuration changed by another writer
/// between this write and its read-back.
pub async fn enable(
    bucket_config: &impl BucketConfig,
    bucket: &str,
    dry_run: bool,
    force: bool,
) -> Result<String, WireError> {
    let stack = bucket_config.managing_stack(bucket).await?;
    let current = bucket_config.read(bucket).await?;
    let mut report = format!(
        "s3://{bucket}: notification configuration\n{}",
        kept(&current)
    );
    if let Some(stack) = &stack {
        report.push_str(&format!(
            "\n  managed by CloudFormation stack {stack:?} ({STACK_TAG})"
        ));
    }
    if current.eventbridge {
        report.push_str("\n  EventBridge delivery is already on: nothing to change");
        return Ok(report);
    }
    report.push_str("\n  adds EventBridge delivery");
    if dry_run {
        report.push_str("\n(dry run: nothing written)");
        return Ok(report);
    }
    if let (Some(stack), false) = (stack, force) {
        return Err(WireError::ManagedByStack { stack });
    }
    let written = Notifications {
        eventbridge: true,
        ..current
    };
    bucket_config.write(bucket, &written).await?;
    let after = bucket_config.read(bucket).await?;
    if after != written {
        return Err(WireError::ConcurrentChange {
            read_back: kept(&after)
                + if after.eventbridge {
                    "\n  EventBridge delivery on"
                } else {
                    "\n  EventBridge delivery OFF"
                },
        });
    }
    report.push_str("\n  written and read back: EventBridge delivery on, the rest unchanged");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_its_own_exit_status() {
        let refused = WireError::ManagedByStack {
            stack: "logs".into(),
        };
        assert_eq!(refused.exit_code(), ExitCode::from(EXIT_REFUSED));
        let concurrent = WireError::ConcurrentChange {
            read_back: String::new(),
        };
        assert_eq!(
            concurrent.exit_code(),
            ExitCode::from(EXIT_CONCURRENT_CHANGE)
        );
        let failed = WireError::Failed {
            what: "reading",
            message: "denied".into(),
        };
        assert_eq!(failed.exit_code(), ExitCode::from(1));
    }
}
