//! `s3logd listen` as a child process, for the listener's tests
//! (tests/listener.rs) and its throughput bench (host/benches/listener.rs):
//! a configuration with a TCP address and the caller's sinks, and the
//! process handle of [`Collector`], which the listener shares with `run`.

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::{Deref, DerefMut};

use s3logd_test_support::victorialogs::VictoriaLogs;
use tempfile::TempDir;
use tokio::net::TcpStream;

use super::{Collector, free_port};

/// A running `s3logd listen`, killed when dropped.
pub struct Listen {
    process: Collector,
    /// Where clients connect.
    pub address: SocketAddr,
    _dir: TempDir,
}

impl Listen {
    /// Starts the listener into `receiver` (the sink `vl`), with `listen`
    /// settings added to its `[listen]` section and `sink` settings to
    /// `[sink.vl]`.
    pub async fn start(receiver: &VictoriaLogs, listen: &str, sink: &str) -> Listen {
        let sinks = format!(
            "[sink.vl]\ntype = \"victorialogs\"\nurl = \"{url}\"\nbatch_max_age_ms = 50\n{sink}",
            url = receiver.url(),
        );
        Listen::start_with(listen, &sinks).await
    }

    /// Starts the listener with `listen` settings in its `[listen]` section
    /// and `sections` (the sinks, `[aws]`) as they are.
    pub async fn start_with(listen: &str, sections: &str) -> Listen {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let metrics = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let config = format!(
            r#"[listen]
address = "{address}"
{listen}

{sections}

[dead_letter]
path = "{dead_letter}"

[metrics]
listen = "{metrics}"

[shutdown]
grace_period_secs = 30
"#,
            dead_letter = dir.path().join("dead-letter.ndjson").display(),
        );
        let path = dir.path().join("s3logd.toml");
        std::fs::write(&path, config).expect("cannot write the config");
        let log = dir.path().join("s3logd.log");
        let mut process = Collector::spawn("listen", &path, log, metrics, &[]);
        // The TCP port is bound before the metrics server starts.
        process.wait_until_serving().await;
        Listen {
            process,
            address,
            _dir: dir,
        }
    }

    pub async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address)
            .await
            .expect("cannot connect to the listener")
    }
}

/// The process: its pid, metrics, signals and log.
impl Deref for Listen {
    type Target = Collector;

    fn deref(&self) -> &Collector {
        &self.process
    }
}

impl DerefMut for Listen {
    fn deref_mut(&mut self) -> &mut Collector {
        &mut self.process
    }
}
