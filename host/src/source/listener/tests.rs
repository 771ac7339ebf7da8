//! The listener's parts: the options the configuration admits are the ones
//! the parser takes, `[listen]` is validated, and a stop does not drop the
//! clients the kernel already connected.

use super::connection::{check_options, parser_options};
use crate::config::Config;
use crate::config::listen::{ListenConfig, TIME_FORMATS, parse_network};

fn parse(listen: &str) -> Result<Config, String> {
    parse_with_output(listen, "-")
}

fn parse_with_output(listen: &str, output: &str) -> Result<Config, String> {
    let text = format!(
        "[queue]\nurl = \"https://queue.example/\"\n[sink.out]\ntype = \"file\"\npath = {output:?}\n[listen]\n{listen}"
    );
    Config::parse(&text, Vec::new()).map_err(|errors| errors.to_string())
}

#[test]
fn every_time_format_the_configuration_admits_is_one_the_parser_takes() {
    for format in TIME_FORMATS {
        let config = ListenConfig {
            time_format: format.to_owned(),
            time_field: Some("at".to_owned()),
            ..ListenConfig::default()
        };
        check_options(&parser_options(&config)).unwrap_or_else(|e| panic!("{format}: {e}"));
    }
    assert!(check_options(&[("time_format".into(), "unix_days".into())]).is_err());
}

#[test]
fn listen_settings_are_validated_with_their_key_paths() {
    let config =
        parse("address = \"0.0.0.0:9000\"\nallowed_networks = [\"10.0.0.0/8\", \"::1\"]\n")
            .unwrap();
    assert_eq!(config.listen.address, "0.0.0.0:9000");
    assert_eq!(config.listen.max_object_bytes, 4 << 20);
    let errors = parse(
        "address = \"localhost\"\nmax_object_bytes = 0\ntls_cert = \"c.pem\"\nallowed_networks = [\"10.0.0.0/33\"]\ntime_format = \"iso\"\n",
    )
    .unwrap_err();
    for path in [
        "listen.address",
        "listen.max_object_bytes",
        "listen.tls_key",
        "listen.allowed_networks[0]",
        "listen.time_format",
    ] {
        assert!(errors.contains(path), "{path} not in {errors}");
    }
}

#[test]
fn networks_are_cidrs_or_single_addresses() {
    let net = parse_network("10.1.0.0/16").unwrap();
    assert!(net.contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
    let one = parse_network("127.0.0.1").unwrap();
    assert!(one.contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
    assert!(!one.contains(&"127.0.0.2".parse::<std::net::IpAddr>().unwrap()));
    assert!(parse_network("localhost").is_none());
}

#[tokio::test]
async fn a_stop_serves_the_connections_waiting_in_the_backlog() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.ndjson");
    let config =
        parse_with_output("address = \"127.0.0.1:0\"\n", output.to_str().unwrap()).unwrap();
    let context = crate::sink::Context {
        stream_fields: Vec::new(),
        aws: crate::sink::testing::test_aws_config(None),
        dead_letter: crate::sink::dead_letter::DeadLetter::file(&dir.path().join("dead.ndjson")),
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    let sinks = std::sync::Arc::new(crate::sink::Sinks::start(&config.sink, &context).unwrap());
    let shutdown = crate::shutdown::Shutdown::default();
    let listener = super::Listener::bind(&config.listen, sinks, Default::default(), &shutdown)
        .await
        .unwrap();
    // Connected and sent before the listener ever accepted: the client
    // cannot tell this from being served.
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    for seq in 0..3 {
        writeln!(client, "{{\"seq\": {seq}}}").unwrap();
    }
    shutdown.on_signal();
    let drained = listener
        .run(&shutdown, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(drained, crate::shutdown::Drained::Finished);
    let stored = std::fs::read_to_string(&output).unwrap();
    assert_eq!(stored.lines().count(), 3, "{stored}");
}
