//! One VictoriaLogs `/insert/jsonline` endpoint: the HTTP client with its
//! fixed headers, and the retry loop that POSTs a body until it is accepted,
//! rejected for good, or cancelled. A throttling or overloaded server's
//! `Retry-After` is the least it waits before the next attempt.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::body::Body;
use super::{SinkError, SinkStats};
use crate::config::{Compression, VictoriaLogsConfig};

/// VictoriaLogs answers 200 and drops the body unread without this type.
const STREAM_CONTENT_TYPE: &str = "application/stream+json";
/// How much of a rejection's answer is kept for the error.
const DETAIL_CHARS: usize = 200;
/// During an outage, how often a failed attempt is logged.
const OUTAGE_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Exponential backoff with full jitter: the n-th wait is uniform in
/// `0..=min(cap, base * 2^n)`, which spreads retries of many batches and
/// processes instead of having them hit a recovering VictoriaLogs at once.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait after `failed_attempts` failures, and no less than the
    /// server asked for unless that exceeds the cap: a server asking for an
    /// hour must not stall a message whose visibility is being extended.
    fn wait(&self, failed_attempts: u32, asked: Option<Duration>) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << failed_attempts.min(20))
            .min(self.cap);
        let jittered = Duration::from_nanos(fastrand::u64(0..=ceiling.as_nanos() as u64));
        jittered.max(asked.unwrap_or_default().min(self.cap))
    }
}

pub(super) struct Endpoint {
    client: reqwest::Client,
    url: reqwest::Url,
    /// For logs: the URL without credentials, query or path.
    display_url: String,
    compression: Compression,
    backoff: Backoff,
    stats: Arc<SinkStats>,
    outage: Mutex<Outage>,
}

/// What one attempt came to.
#[derive(Debug)]
enum Attempt {
    Accepted,
    Rejected {
        status: u16,
        detail: String,
    },
    Retryable {
        reason: String,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
}

impl Endpoint {
    pub(super) fn new(
        config: &VictoriaLogsConfig,
        stream_fields: &[String],
        stats: Arc<SinkStats>,
    ) -> anyhow::Result<Endpoint> {
        let url = insert_url(&config.url, stream_fields)?;
        let mut builder = reqwest::Client::builder()
            .default_headers(fixed_headers(config)?)
            .timeout(Duration::from_secs(config.request_timeout_secs))
            // A redirect would be a misconfigured URL; it is reported, not followed.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.tls_ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read tls_ca_file {}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "tls_ca_file {} holds no valid PEM certificates",
                    path.display()
                )
            })?;
            if certificates.is_empty() {
                bail!("tls_ca_file {} holds no certificates", path.display());
            }
            builder = builder.tls_certs_merge(certificates);
        }
        let client = builder
            .build()
            .context("cannot build the VictoriaLogs HTTP client")?;
        let mut display_url = url.clone();
        display_url.set_query(None);
        // Both only fail for URLs that cannot carry credentials at all.
        let _ = display_url.set_username("");
        let _ = display_url.set_password(None);
        Ok(Endpoint {
            client,
            url,
            display_url: display_url.to_string(),
            compression: config.compression,
            backoff: Backoff::default(),
            stats,
            outage: Mutex::default(),
        })
    }

    pub(super) fn compression(&self) -> Compression {
        self.compression
    }

    /// POSTs `body` until VictoriaLogs accepts it (Ok), answers with a
    /// status retrying cannot change, or `cancel` fires.
    pub(super) async fn post_until_accepted(
        &self,
        body: &Body,
        cancel: &CancellationToken,
    ) -> Result<(), SinkError> {
        let mut failed_attempts = 0u32;
        loop {
            self.stats.requests.fetch_add(1, Relaxed);
            let attempt = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(SinkError::Cancelled),
                attempt = self.attempt(body) => attempt,
            };
            match attempt {
                Attempt::Accepted => {
                    self.lock_outage().recovered(&self.display_url);
                    return Ok(());
                }
                Attempt::Rejected { status, detail } => {
                    self.stats.failures.fetch_add(1, Relaxed);
                    tracing::error!(
                        url = %self.display_url, status, detail = %detail,
                        "VictoriaLogs rejected a batch; its records are not stored"
                    );
                    return Err(SinkError::Rejected { status, detail });
                }
                Attempt::Retryable {
                    reason,
                    retry_after,
                } => {
                    self.lock_outage().failed(&self.display_url, &reason);
                    self.stats.retries.fetch_add(1, Relaxed);
                    let wait = self.backoff.wait(failed_attempts, retry_after);
                    failed_attempts = failed_attempts.saturating_add(1);
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return Err(SinkError::Cancelled),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn attempt(&self, body: &Body) -> Attempt {
        let mut request = self.client.post(self.url.clone()).body(body.for_attempt());
        if let Some(encoding) = body.content_encoding() {
            request = request.header(header::CONTENT_ENCODING, encoding);
        }
        let response = match request.send().await {
            Ok(response) => response,
            // The URL is known from the logs' `url` field; the error's copy
            // would repeat it with any credentials in it.
            Err(error) => {
                return Attempt::Retryable {
                    reason: error.without_url().to_string(),
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                retry_after(response.headers(), SystemTime::now())
            }
            _ => None,
        };
        // Reading the answer lets the connection be reused; VictoriaLogs
        // answers success with an empty body.
        let answer = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            Attempt::Accepted
        } else if is_retryable(status) {
            Attempt::Retryable {
                reason: format!("status {status}: {}", excerpt(&answer)),
                retry_after,
            }
        } else {
            Attempt::Rejected {
                status: status.as_u16(),
                detail: excerpt(&answer),
            }
        }
    }

    fn lock_outage(&self) -> std::sync::MutexGuard<'_, Outage> {
        self.outage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// The delay a `Retry-After` header asks for: delay-seconds or an HTTP
/// date (none once that date has passed). An unreadable value asks nothing.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or_default())
}

/// The first characters of an answer, on one line.
fn excerpt(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let mut excerpt: String = text
        .trim()
        .chars()
        .take(DETAIL_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.trim().chars().nth(DETAIL_CHARS).is_some() {
        excerpt.push('…');
    }
    excerpt
}

/// `<base>/insert/jsonline` with the field roles set explicitly, so that
/// nothing depends on VictoriaLogs' defaults or on headers a proxy may drop.
fn insert_url(base: &str, stream_fields: &[String]) -> anyhow::Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(base).context("sink.victorialogs.url is not a valid URL")?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("sink.victorialogs.url cannot have a path"))?
        .pop_if_empty()
        .extend(["insert", "jsonline"]);
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        if !stream_fields.is_empty() {
            query.append_pair("_stream_fields", &stream_fields.join(","));
        }
        query.append_pair("_msg_field", "_msg");
        query.append_pair("_time_field", "_time");
    }
    Ok(url)
}

/// Headers every request carries: content type, tenant, credentials and
/// the configured extras. Errors name the header, never its value.
fn fixed_headers(config: &VictoriaLogsConfig) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in &config.headers {
        let name = HeaderName::try_from(name.as_str())
            .with_context(|| format!("sink.victorialogs.headers: invalid header name {name:?}"))?;
        let mut value = HeaderValue::try_from(value.as_str())
            .with_context(|| format!("sink.victorialogs.headers: invalid value for {name}"))?;
        // Extra headers often carry API keys.
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(STREAM_CONTENT_TYPE),
    );
    for (name, id) in [
        ("AccountID", config.account_id),
        ("ProjectID", config.project_id),
    ] {
        if let Some(id) = id {
            headers.insert(name, HeaderValue::from(id));
        }
    }
    let authorization = match (&config.username, &config.password, &config.bearer_token) {
        (Some(username), Some(password), _) => {
            let credentials = base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", password.expose()));
            Some(format!("Basic {credentials}"))
        }
        (_, _, Some(token)) => Some(format!("Bearer {}", token.expose())),
        _ => None,
    };
    if let Some(authorization) = authorization {
        let mut value = HeaderValue::try_from(authorization).map_err(|_| {
            anyhow::anyhow!(
                "sink.victorialogs credentials contain characters not allowed in a header"
            )
        })?;
        value.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, value);
    }
    Ok(headers)
}

/// Keeps a long outage to one warning per [`OUTAGE_LOG_INTERVAL`] and
/// notes the recovery.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    failed_attempts: u64,
    last_logged: Option<Instant>,
}

impl Outage {
    fn failed(&mut self, url: &str, reason: &str) {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        self.failed_attempts += 1;
        if self
            .last_logged
            .is_some_and(|logged| now.duration_since(logged) < OUTAGE_LOG_INTERVAL)
        {
            return;
        }
        self.last_logged = Some(now);
        tracing::warn!(
            url,
            error = reason,
            failed_attempts = self.failed_attempts,
            failing_for_secs = now.duration_since(since).as_secs(),
            "VictoriaLogs request failed; retrying"
        );
    }

    fn recovered(&mut self, url: &str) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                url,
                failed_attempts = self.failed_attempts,
                outage_secs = since.elapsed().as_secs(),
                "VictoriaLogs accepts requests again"
            );
            *self = Outage::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use s3logd_test_support::victorialogs::VictoriaLogs as Receiver;

    use super::*;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::try_from(retry_after).unwrap(),
        );
        headers
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        // 1994-11-06T08:49:37Z, RFC 9110's example date.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let asked = |value: &str| retry_after(&headers(value), now);
        assert_eq!(asked("120"), Some(Duration::from_secs(120)));
        assert_eq!(asked(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            asked("Sun, 06 Nov 1994 08:50:07 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(asked("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(asked("-5"), None);
        assert_eq!(asked("soon"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn the_wait_is_at_least_what_the_server_asked_for_up_to_the_cap() {
        let backoff = Backoff::default();
        for failed_attempts in [0, 3, 30] {
            let asked = backoff.wait(failed_attempts, Some(Duration::from_secs(7)));
            assert!(asked >= Duration::from_secs(7), "{asked:?}");
            assert!(asked <= backoff.cap, "{asked:?}");
            let too_much = backoff.wait(failed_attempts, Some(Duration::from_secs(3600)));
            assert_eq!(too_much, backoff.cap);
            let unasked = backoff.wait(failed_attempts, None);
            assert!(unasked <= backoff.base * (1 << failed_attempts.min(20)));
        }
    }

    /// One attempt against the receiver answering `status` with `Retry-After: 3`.
    async fn attempt_answered(status: u16) -> Attempt {
        let receiver = Receiver::start();
        receiver.fail_next_with_retry_after(1, status, "3");
        let config = VictoriaLogsConfig {
            url: receiver.url(),
            ..VictoriaLogsConfig::default()
        };
        let endpoint = Endpoint::new(&config, &[], Arc::default()).unwrap();
        endpoint.attempt(&Body::lines(vec![b"{}\n".to_vec()])).await
    }

    #[tokio::test]
    async fn throttling_and_unavailable_answers_carry_their_retry_after() {
        for status in [429, 503] {
            let attempt = attempt_answered(status).await;
            assert!(
                matches!(attempt, Attempt::Retryable { retry_after: Some(wait), .. } if wait == Duration::from_secs(3)),
                "{status}: {attempt:?}"
            );
        }
        // Retry-After means nothing on other errors.
        let attempt = attempt_answered(500).await;
        assert!(
            matches!(
                attempt,
                Attempt::Retryable {
                    retry_after: None,
                    ..
                }
            ),
            "{attempt:?}"
        );
    }
}
