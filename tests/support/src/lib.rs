//! Peers and data for s3logd's integration tests and benchmarks.
//!
//! Nothing here is mocked: AWS services come from a real `moto_server`,
//! sinks are receivers that implement the stores' documented HTTP
//! protocols (quirks included) with injectable faults, and log data comes
//! from deterministic generators.

pub mod alb;
pub mod moto;
pub mod victorialogs;

/// Paths of the test components built by `build.rs`: the deliberately
/// broken parsers under `tests/fixtures/` and the example custom parser.
pub mod components {
    include!(concat!(env!("OUT_DIR"), "/components.rs"));
}
