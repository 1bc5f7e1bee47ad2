//! The integration tests, one binary (the AWS SDK is linked once): the function in
//! process and as the built binary against the AWS emulator, `scan` as a command,
//! fault injection, hostile input and the templates checked against the code.
//!
//! Tests marked `#[ignore = "needs the emulator"]` run under `scripts/test`, which
//! starts the emulator and passes `--include-ignored`.

mod attribution;
mod backfill;
mod deploy_modes;
mod design;
mod faults;
mod hostile;
mod lambda;
mod outages;
mod rules;
mod runtime_api;
mod scan_cli;
mod signing;
mod sinks;
mod store;
mod support;
mod sweep;
mod template;
mod wiring;
