//! The generator is deterministic, writes lines the ALB parser accepts in
//! full, and keeps roughly the traffic mix the benchmarks were measured on.

use s3logd_parser_alb::Alb;
use s3logd_parser_sdk::testing::{Owned, Record, parse};
use s3logd_parser_sdk::text::Fields;

use super::{lines, write_lines};

const KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/03/01/123456789012_elasticloadbalancing_us-east-2_app.web-prod.50dc6c495c0c9188_20240301T1205Z_10.0.1.17_3k9x2m1q.log.gz";

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let first = lines(7, 500);
    assert_eq!(first, lines(7, 500));
    assert_ne!(first, lines(8, 500));
    let mut streamed = Vec::new();
    write_lines(7, 500, &mut streamed).unwrap();
    assert_eq!(streamed, first.as_bytes());
    // A shorter run is a prefix of a longer one.
    assert!(first.starts_with(&lines(7, 20)));
}

#[test]
fn every_line_has_the_33_current_fields() {
    let text = lines(1, 5000);
    assert_eq!(text.lines().count(), 5000);
    for line in text.lines() {
        assert_eq!(Fields::new(line).count(), 33, "{line}");
    }
}

fn share(records: &[Record], matches: impl Fn(&Record) -> bool) -> f64 {
    records.iter().filter(|r| matches(r)).count() as f64 / records.len() as f64
}

fn assert_near(what: &str, actual: f64, expected: f64) {
    let tolerance = (expected * 0.25).max(0.003);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual:.4} is not within {tolerance:.4} of {expected}"
    );
}

#[test]
fn the_alb_parser_reads_every_line_with_the_documented_mix() {
    const COUNT: usize = 20_000;
    let text = lines(42, COUNT);
    let parsed = parse::<Alb>(KEY, &[], &text).unwrap();
    assert!(
        parsed.errors.is_empty(),
        "{:?}",
        &parsed.errors[..parsed.errors.len().min(5)]
    );
    assert_eq!(parsed.records.len(), COUNT);
    assert_eq!(parsed.counters.rows_with_extra, 0);
    let r = &parsed.records;

    let average = text.len() as f64 / COUNT as f64;
    assert!(
        (650.0..=750.0).contains(&average),
        "average line {average:.0} bytes"
    );

    let is_type = |t: &'static str| move |rec: &Record| rec.str("type") == Some(t);
    assert_near("h2", share(r, is_type("h2")), 0.50);
    assert_near("https", share(r, is_type("https")), 0.38);
    assert_near("http", share(r, is_type("http")), 0.08);
    assert_near("wss", share(r, is_type("wss")), 0.02);
    assert_near("grpcs", share(r, is_type("grpcs")), 0.02);
    assert_near(
        "IPv6 clients",
        share(r, |rec| rec.str("client_ip").unwrap().contains(':')),
        0.12,
    );
    assert_near(
        "query strings",
        share(r, |rec| rec.str("request_url").unwrap().contains('?')),
        0.45 * 0.98,
    );
    assert_near(
        "Self= trace ids",
        share(r, |rec| rec.str("trace_id").unwrap().starts_with("Self=")),
        0.05,
    );

    let status = |code: i64| move |rec: &Record| rec.int("elb_status_code") == Some(code);
    assert_near("460", share(r, status(460)), 0.015);
    assert_near("502", share(r, status(502)), 0.01);
    assert_near("503", share(r, status(503)), 0.005);
    for record in r.iter().filter(|rec| status(460)(rec)) {
        assert!(record.has("target_ip"), "460 keeps its target");
        assert_eq!(record.float("target_processing_time"), Some(-1.0));
        assert_eq!(record.float("response_processing_time"), Some(-1.0));
    }
    for record in r.iter().filter(|rec| status(502)(rec) || status(503)(rec)) {
        assert!(!record.has("target_ip"), "502/503 have no target");
        assert_eq!(record.float("request_processing_time"), Some(-1.0));
        assert_eq!(record.float("target_processing_time"), Some(-1.0));
    }
    let redirects: Vec<&Record> = r.iter().filter(|rec| rec.has("redirect_url")).collect();
    assert!(
        redirects.len() > COUNT / 100,
        "{} redirects",
        redirects.len()
    );
    for record in redirects {
        assert_eq!(
            record.list("actions_executed").unwrap().last(),
            Some(&Owned::Str("redirect".into()))
        );
    }

    let mut agents: Vec<&str> = r.iter().map(|rec| rec.str("user_agent").unwrap()).collect();
    agents.sort_unstable();
    agents.dedup();
    assert_eq!(agents.len(), 17);
    assert!(agents.iter().all(|agent| agent.contains(' ')));
    let mut methods: Vec<&str> = r
        .iter()
        .map(|rec| rec.str("request_method").unwrap())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    assert_eq!(
        methods,
        ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    );

    for record in r {
        let created = record.timestamp("request_creation_time").unwrap();
        assert!(
            created <= record.time.unwrap(),
            "a request is created before its response"
        );
        assert!(record.has("conn_trace_id"));
    }
}
