//! Detects repeated denied Amazon Bedrock model invocations: a port of Elastic's rule
//! "AWS Bedrock Detected Multiple Attempts to use Denied Models by a Single User"
//! (17261da3-a6d0-463c-aac8-ea1718afcd20) to an event-driven pipeline. The design,
//! and why it is so, is in docs/DESIGN.md.
//!
//! The pure core (`logs`, `window`, `aggregate`, `alert` building, `config`,
//! `exceptions`, `event`) holds no AWS types; the counter store, the alert sinks and
//! the object source are traits with an in-memory and an AWS implementation.

pub mod aggregate;
pub mod alert;
pub mod cli;
pub mod config;
pub mod detector;
pub mod errors;
pub mod event;
pub mod exceptions;
pub mod key;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod logs;
pub mod metrics;
pub mod report;
pub mod source;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod window;

pub use errors::{error_chain, Context};
