//! Checks that the deserializer cannot express: required keys, ranges,
//! URLs, regexes and keys that only make sense together.

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;

use super::{Config, ConfigError};

/// Collects problems so that all of them are reported in one go.
#[derive(Default)]
pub(crate) struct Problems(Vec<ConfigError>);

impl Problems {
    pub(super) fn add(&mut self, path: &str, message: impl Display) {
        self.0.push(ConfigError {
            path: path.to_owned(),
            message: message.to_string(),
        });
    }

    pub(super) fn in_range<T: PartialOrd + Display>(
        &mut self,
        path: &str,
        value: T,
        range: RangeInclusive<T>,
    ) {
        if !range.contains(&value) {
            self.add(
                path,
                format_args!(
                    "{value} is out of range {}..={}",
                    range.start(),
                    range.end()
                ),
            );
        }
    }

    pub(super) fn http_url(&mut self, path: &str, value: &str) {
        match url::Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            Ok(url) => self.add(
                path,
                format_args!(
                    "{value:?} is not an http(s) URL (scheme {:?})",
                    url.scheme()
                ),
            ),
            Err(error) => self.add(path, format_args!("{value:?} is not a URL: {error}")),
        }
    }

    pub(super) fn required_http_url(&mut self, path: &str, value: &str) {
        if value.is_empty() {
            self.add(path, "required");
        } else {
            self.http_url(path, value);
        }
    }

    pub(super) fn regex(&mut self, path: &str, pattern: &str) {
        if let Err(error) = regex::Regex::new(pattern) {
            self.add(path, format_args!("invalid regex: {error}"));
        }
    }
}

impl Config {
    pub(super) fn validate(&self) -> Vec<ConfigError> {
        let mut problems = Problems::default();

        let queue = &self.queue;
        problems.required_http_url("queue.url", &queue.url);
        problems.in_range("queue.max_messages", queue.max_messages, 1..=10);
        problems.in_range("queue.wait_time_secs", queue.wait_time_secs, 0..=20);
        // SQS accepts visibility timeouts up to twelve hours.
        problems.in_range(
            "queue.visibility_timeout_secs",
            queue.visibility_timeout_secs,
            1..=43_200,
        );
        if !(1..queue.visibility_timeout_secs).contains(&queue.heartbeat_interval_secs) {
            problems.add(
                "queue.heartbeat_interval_secs",
                format_args!(
                    "{} must be at least 1 and below queue.visibility_timeout_secs ({}), or messages reappear while in work",
                    queue.heartbeat_interval_secs, queue.visibility_timeout_secs
                ),
            );
        }
        problems.in_range(
            "queue.max_receive_count",
            queue.max_receive_count,
            1..=u32::MAX,
        );
        problems.in_range("queue.concurrency", queue.concurrency, 1..=u32::MAX);

        if let Some(endpoint) = &self.aws.endpoint_url {
            problems.http_url("aws.endpoint_url", endpoint);
        }

        let objects = &self.objects;
        problems.in_range(
            "objects.max_line_bytes",
            objects.max_line_bytes,
            1..=u64::MAX,
        );
        // A single line must fit in the budget or an object could never start.
        problems.in_range(
            "objects.in_flight_bytes",
            objects.in_flight_bytes,
            objects.max_line_bytes.max(1)..=u64::MAX,
        );

        for (index, route) in self.routes.iter().enumerate() {
            problems.regex(&format!("routes[{index}].key_regex"), &route.key_regex);
            if route.parser.as_deref() == Some("") {
                problems.add(&format!("routes[{index}].parser"), "must not be empty");
            }
        }

        if let Some(pattern) = &self.enrich.key_regex {
            problems.regex("enrich.key_regex", pattern);
        }

        problems.in_range(
            "parsers.call_timeout_ms",
            self.parsers.call_timeout_ms,
            1..=u64::MAX,
        );
        problems.in_range(
            "parsers.memory_limit_mib",
            self.parsers.memory_limit_mib,
            1..=4096,
        );

        if self.sink.is_empty() {
            problems.add(
                "sink",
                format_args!(
                    "required: at least one [sink.<name>] section (types: {})",
                    super::SinkConfig::KINDS.join(", ")
                ),
            );
        }
        for (name, sink) in &self.sink {
            super::sink::check_name(name, &mut problems);
            sink.validate(&format!("sink.{name}"), &mut problems);
        }
        for (index, route) in self.routes.iter().enumerate() {
            for name in route.sinks.iter().flatten() {
                if !self.sink.contains_key(name) {
                    problems.add(
                        &format!("routes[{index}].sinks"),
                        format_args!("no sink named {name:?}"),
                    );
                }
            }
        }
        if let Some(url) = &self.dead_letter.s3_url
            && super::S3Location::parse(url).is_none()
        {
            problems.add(
                "dead_letter.s3_url",
                format_args!("{url:?} is not an s3://bucket/prefix URL"),
            );
        }

        if let Err(error) = self.metrics.listen.parse::<SocketAddr>() {
            problems.add(
                "metrics.listen",
                format_args!("{:?} is not an address:port: {error}", self.metrics.listen),
            );
        }

        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            problems.add(
                "log.level",
                format_args!("{:?} is not a level or filter: {error}", self.log.level),
            );
        }

        problems.0
    }
}
