//! Checks that the deserializer cannot express: required keys, ranges,
//! URLs, regexes and keys that only make sense together.

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;

use super::{Config, ConfigError, MIB, without_credentials};
use crate::budget::{self, Split};
use crate::decode::BatchLimits;
use crate::sink::delivery::SEND_BUFFER_BYTES;

/// Every object in work holds a blocking thread and a parser instance:
/// past this many, threads and instances are the limit, not the budget.
const MAX_CONCURRENCY: u32 = 1024;
/// An encoded record must stay below 4 GiB, and a log line far below that.
const MAX_LINE_BYTES: u64 = 1 << 30;
const MAX_PARSER_MEMORY_MIB: u64 = 4096;
/// What a parser instance needs besides its input and output: its code's
/// data, stack and heap.
const PARSER_OWN_BYTES: u64 = 16 * MIB;
/// Epoch deadlines are added to the engine's epoch; an hour is far beyond
/// any batch.
const MAX_CALL_TIMEOUT_MS: u64 = 3_600_000;
/// Blocking threads beyond what objects and sinks take: parser loading,
/// dead-letter writes, the unforeseen.
const SPARE_BLOCKING_THREADS: usize = 16;

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

    /// Reports `value` unless it is an http(s) URL, showing it without
    /// credentials (nor its scheme, which is the user name in
    /// `user:password@host`).
    pub(super) fn http_url(&mut self, path: &str, value: &str) {
        let shown = without_credentials(value);
        match url::Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            Ok(_) => self.add(
                path,
                format_args!("{shown:?} is not an http:// or https:// URL with a host"),
            ),
            Err(error) => self.add(path, format_args!("{shown:?} is not a URL: {error}")),
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
        problems.in_range("queue.concurrency", queue.concurrency, 1..=MAX_CONCURRENCY);
        self.listen.validate(&mut problems);

        if let Some(endpoint) = &self.aws.endpoint_url {
            problems.http_url("aws.endpoint_url", endpoint);
        }

        let objects = &self.objects;
        if let Some(owner) = &objects.expected_bucket_owner
            && !(owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit()))
        {
            problems.add(
                "objects.expected_bucket_owner",
                format_args!("{owner:?} is not an AWS account id (12 digits)"),
            );
        }
        problems.in_range(
            "objects.max_line_bytes",
            objects.max_line_bytes,
            1..=MAX_LINE_BYTES,
        );
        problems.in_range(
            "objects.in_flight_bytes",
            objects.in_flight_bytes,
            1..=budget::MAX_BYTES,
        );
        self.check_memory(&mut problems);

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
            1..=MAX_CALL_TIMEOUT_MS,
        );
        problems.in_range(
            "parsers.memory_limit_mib",
            self.parsers.memory_limit_mib,
            1..=MAX_PARSER_MEMORY_MIB,
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
        // An object holds about a send buffer (1 MiB) of letters before
        // writing them: one line must fit.
        problems.in_range(
            "dead_letter.max_line_bytes",
            self.dead_letter.max_line_bytes,
            0..=MIB,
        );

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

impl Config {
    /// The blocking threads `run` needs: one for every object in work,
    /// which may wait there for budget that only the sinks give back, and
    /// beside them enough for what the sinks run on blocking threads
    /// (compression, file writes, name lookups) for every request in flight.
    pub fn blocking_threads(&self) -> usize {
        let sinks: u32 = self
            .sink
            .values()
            .map(|sink| 2 * sink.batch().max_requests_in_flight)
            .sum();
        (self.queue.concurrency + sinks) as usize + SPARE_BLOCKING_THREADS
    }

    /// Whether the in-flight budget leaves every object in work room for
    /// its send buffers and one of them room for the longest line, and
    /// whether a parser instance holds a batch with that line.
    fn check_memory(&self, problems: &mut Problems) {
        let (concurrency, objects) = (self.queue.concurrency, &self.objects);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency)
            || !(1..=MAX_LINE_BYTES).contains(&objects.max_line_bytes)
            || !(1..=budget::MAX_BYTES).contains(&objects.in_flight_bytes)
        {
            return;
        }
        // A send buffer and the record that fills it.
        let send_buffer = 2 * SEND_BUFFER_BYTES as u64;
        let split = Split::of(objects.in_flight_bytes, concurrency);
        if split.share < send_buffer {
            problems.add(
                "objects.in_flight_bytes",
                format_args!(
                    "{} bytes leave each of the queue.concurrency = {concurrency} objects in work {} bytes, less than the {send_buffer} its send buffers need: raise in_flight_bytes to at least {} or lower concurrency",
                    objects.in_flight_bytes,
                    split.share,
                    2 * u64::from(concurrency) * send_buffer,
                ),
            );
        }
        let limits = BatchLimits {
            max_line_bytes: objects.max_line_bytes as usize,
            ..BatchLimits::default()
        };
        let longest = limits.most_held() as u64 + send_buffer;
        if split.turn < longest {
            problems.add(
                "objects.max_line_bytes",
                format_args!(
                    "a line of {} bytes, its UTF-8 repair and a send buffer take up to {longest} bytes of objects.in_flight_bytes, more than the {} one of queue.concurrency = {concurrency} objects may hold of {}: raise in_flight_bytes or lower max_line_bytes",
                    objects.max_line_bytes, split.turn, objects.in_flight_bytes,
                ),
            );
        }
        let memory_limit_mib = self.parsers.memory_limit_mib;
        let parser_needs = 2 * (objects.max_line_bytes + 1) + PARSER_OWN_BYTES;
        if (1..=MAX_PARSER_MEMORY_MIB).contains(&memory_limit_mib)
            && memory_limit_mib * MIB < parser_needs
        {
            problems.add(
                "parsers.memory_limit_mib",
                format_args!(
                    "{memory_limit_mib} MiB cannot hold a batch with a line of objects.max_line_bytes ({} bytes) and the parser's output for it: at least {} MiB",
                    objects.max_line_bytes,
                    parser_needs.div_ceil(MIB),
                ),
            );
        }
    }
}
