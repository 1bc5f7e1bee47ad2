//! Detects repeated denied Amazon Bedrock model invocations: a port of Elastic's rule
//! "AWS Bedrock Detected Multiple Attempts to use Denied Models by a Single User"
//! (17261da3-a6d0-463c-aac8-ea1718afcd20) to an event-driven pipeline.
//!
//! The pure core (`logs`, `window`, `aggregate`, `alert` building, `config`, `event`)
//! holds no AWS types; the counter store, the alert sink and the object source are
//! traits with an in-memory and an AWS implementation.

pub mod aggregate;
pub mod alert;
pub mod cli;
pub mod config;
pub mod detector;
pub mod event;
pub mod key;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod logs;
pub mod metrics;
pub mod source;
pub mod store;
pub mod window;
