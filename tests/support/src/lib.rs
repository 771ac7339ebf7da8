//! Peers and data for s3logd's integration tests and benchmarks.
//!
//! Nothing here is mocked: AWS services come from a real `moto_server`,
//! sinks are receivers that implement the stores' documented HTTP
//! protocols (quirks included) with injectable faults, and log data comes
//! from deterministic generators.

pub mod alb;
