//! `enable-eventbridge`: turns on S3's EventBridge delivery for an existing bucket by
//! merging into its notification configuration, never dropping the Lambda, SQS or
//! SNS notifications it already has (docs/DESIGN.md, "Existing buckets").
//!
//! PutBucketNotificationConfiguration replaces the whole configuration, so this reads
//! it, adds `EventBridgeConfiguration`, writes it back, and reads it again to check.

use crate::errors::error_chain;
use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput as Current;
use aws_sdk_s3::types::{EventBridgeConfiguration, NotificationConfiguration};
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct WireArgs {
    /// The log bucket.
    #[arg(long, value_name = "NAME")]
    bucket: String,
    /// Print what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: &WireArgs) -> ExitCode {
    let runtime = match super::start_runtime(tokio::runtime::Builder::new_current_thread()) {
        Ok(r) => r,
        Err(status) => return status,
    };
    runtime.block_on(async {
        let sdk = crate::lambda::sdk_config().await;
        let client = crate::lambda::s3_client(&sdk);
        match enable(&client, &args.bucket, args.dry_run).await {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bedrock-denied-models: s3://{}: {e}", args.bucket);
                ExitCode::from(1)
            }
        }
    })
}

/// What the bucket's configuration holds besides EventBridge, for the report.
fn kept(c: &Current) -> String {
    let mut lines = Vec::new();
    for l in c.lambda_function_configurations() {
        lines.push(format!(
            "  keeps Lambda  {} ({})",
            l.lambda_function_arn(),
            l.id().unwrap_or("no id")
        ));
    }
    for q in c.queue_configurations() {
        lines.push(format!(
            "  keeps SQS     {} ({})",
            q.queue_arn(),
            q.id().unwrap_or("no id")
        ));
    }
    for t in c.topic_configurations() {
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

/// Adds EventBridge delivery, keeping everything else; idempotent.
pub async fn enable(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    dry_run: bool,
) -> Result<String, String> {
    let current = client
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| {
            format!(
                "reading the notification configuration: {}",
                error_chain(&e)
            )
        })?;
    let mut report = format!(
        "s3://{bucket}: notification configuration\n{}",
        kept(&current)
    );
    if current.event_bridge_configuration().is_some() {
        report.push_str("\n  EventBridge delivery is already on: nothing to change");
        return Ok(report);
    }
    report.push_str("\n  adds EventBridge delivery");
    if dry_run {
        report.push_str("\n(dry run: nothing written)");
        return Ok(report);
    }
    let merged = NotificationConfiguration::builder()
        .set_lambda_function_configurations(Some(current.lambda_function_configurations().to_vec()))
        .set_queue_configurations(Some(current.queue_configurations().to_vec()))
        .set_topic_configurations(Some(current.topic_configurations().to_vec()))
        .event_bridge_configuration(EventBridgeConfiguration::builder().build())
        .build();
    client
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(merged)
        // The kept destinations are unchanged: do not fail on one that S3 would no
        // longer validate today.
        .skip_destination_validation(true)
        .send()
        .await
        .map_err(|e| {
            format!(
                "writing the notification configuration: {}",
                error_chain(&e)
            )
        })?;
    let after = client
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| format!("reading the configuration back: {}", error_chain(&e)))?;
    let same = after.lambda_function_configurations() == current.lambda_function_configurations()
        && after.queue_configurations() == current.queue_configurations()
        && after.topic_configurations() == current.topic_configurations();
    if !same || after.event_bridge_configuration().is_none() {
        return Err(format!(
            "the configuration read back differs from what was written:\n{}",
            kept(&after)
        ));
    }
    report.push_str("\n  written and read back: EventBridge delivery on, the rest unchanged");
    Ok(report)
}
