//! Peers and data for s3logd's integration tests and benchmarks.
//!
//! Nothing here is mocked: AWS services come from a real `moto_server`,
//! sinks are receivers that implement the stores' documented HTTP
//! protocols (quirks included) with injectable faults, and log data comes
//! from deterministic generators.

pub mod alb;
pub mod elasticsearch;
pub mod fault_proxy;
pub mod http;
pub mod lambda_runtime;
pub mod loki;
pub mod moto;
pub mod port;
pub mod victorialogs;

/// A benchmark's numeric knob from the environment, `default` when unset;
/// a value that is not a number stops the run rather than being ignored.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |text| {
        text.parse()
            .unwrap_or_else(|e| panic!("{name}={text:?}: {e}"))
    })
}

/// Paths of the test components built by `build.rs`: the deliberately
/// broken parsers under `tests/fixtures/` and the example custom parser.
pub mod components {
    include!(concat!(env!("OUT_DIR"), "/components.rs"));
}
