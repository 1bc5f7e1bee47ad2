//! Detects repeated denied Amazon Bedrock model invocations: a port of Elastic's rule
//! "AWS Bedrock Detected Multiple Attempts to use Denied Models by a Single User"
//! (17261da3-a6d0-463c-aac8-ea1718afcd20) to an event-driven pipeline.
//!
//! The pure core (`logs`, `window`, `aggregate`, `alert` building, `config`) holds no
//! AWS types; the counter store and the alert sink are traits with an in-memory and
//! an AWS implementation.

pub mod config;
pub mod key;
pub mod logs;
pub mod window;
