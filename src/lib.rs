//! Detects repeated denied Amazon Bedrock model invocations: a port of Elastic's rule
//! "AWS Bedrock Detected Multiple Attempts to use Denied Models by a Single User"
//! (17261da3-a6d0-463c-aac8-ea1718afcd20) to an event-driven pipeline. The design,
//! and why it is so, is in docs/DESIGN.md.
//!
//! The pure core (`logs`, `window`, `aggregate`, `calls`, `alert` building, `config`,
//! `exceptions`, `event`, `layout`, `sources`) holds no AWS types; the counter store,
//! the alert sinks and the object source are traits with an in-memory and an AWS
//! implementation. `aws` is the one place AWS is wired up; `lambda` (the function)
//! and `cli` (`scan`, `enable-eventbridge`) are built on it (docs/DESIGN.md,
//! "Layers").

pub mod aggregate;
pub mod alert;
pub mod arn;
#[cfg(feature = "aws")]
pub mod aws;
pub mod calls;
pub mod cli;
pub mod config;
pub mod detector;
pub mod errors;
pub mod event;
pub mod exceptions;
pub mod identity;
pub mod key;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod log_keys;
pub mod logs;
pub mod model;
pub mod objects;
pub mod pipeline;
pub mod reader;
pub mod report;
pub mod rule;
pub mod silence;
pub mod stats;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod window;

pub use errors::{error_chain, Context};
