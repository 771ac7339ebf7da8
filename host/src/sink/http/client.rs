//! The HTTP client of one store: its base URL (a path prefix kept), fixed
//! headers, credentials, extra CA certificates and timeout, and one POST
//! whose answer is read up to a bound.

use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};

use super::body::Body;
use super::sigv4::Signer;
use crate::config::HttpConfig;
use crate::sink::delivery::Answer;

/// How much of an answer is read by default; stores whose answers carry
/// per-record results ask for more.
pub const ANSWER_BYTES: usize = 64 * 1024;
/// How much of an answer is kept in a reason.
const DETAIL_CHARS: usize = 200;

pub struct HttpClient {
    client: reqwest::Client,
    base: Url,
    /// Signs every request (AWS SigV4) when set.
    signer: Option<Signer>,
    /// `sink.<name>`, for errors about the settings.
    path: String,
}

/// A store's answer to one request.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    /// The delay a 429 or 503 answer's `Retry-After` asks for.
    pub retry_after: Option<Duration>,
    /// The answer's body, cut at the size the caller allowed.
    pub body: Bytes,
}

impl HttpClient {
    /// A client for the store at `config.url`; `fixed` headers go with
    /// every request, as do the configured credentials and extra headers.
    /// `path` (`sink.<name>`) names the settings in errors, which never
    /// repeat a header's value or a credential.
    pub fn new(config: &HttpConfig, path: &str, fixed: HeaderMap) -> anyhow::Result<HttpClient> {
        let base =
            Url::parse(&config.url).with_context(|| format!("{path}.url is not a valid URL"))?;
        if base.cannot_be_a_base() {
            bail!("{path}.url cannot have a path");
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers(config, path, fixed)?)
            .timeout(Duration::from_secs(config.request_timeout_secs))
            // A redirect would be a misconfigured URL; it is reported, not followed.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(file) = &config.tls_ca_file {
            let pem = std::fs::read(file)
                .with_context(|| format!("{path}.tls_ca_file: cannot read {}", file.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "{path}.tls_ca_file: {} holds no valid PEM certificates",
                    file.display()
                )
            })?;
            if certificates.is_empty() {
                bail!(
                    "{path}.tls_ca_file: {} holds no certificates",
                    file.display()
                );
            }
            builder = builder.tls_certs_merge(certificates);
        }
        let client = builder
            .build()
            .with_context(|| format!("{path}: cannot build the HTTP client"))?;
        Ok(HttpClient {
            client,
            base,
            signer: None,
            path: path.to_owned(),
        })
    }

    /// Every request signed by `signer`.
    pub fn signed_by(self, signer: Signer) -> HttpClient {
        HttpClient {
            signer: Some(signer),
            ..self
        }
    }

    /// The base URL with `segments` appended to its path.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.path_segments_mut()
            .expect("checked to be a base URL")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// POSTs `body` once and reads up to `answer_bytes` of the answer.
    /// `Err` is the [`Answer::Retry`] for a request that got no answer at
    /// all (no connection, a timeout, no credentials to sign with yet), in
    /// words that never repeat the URL (it may carry credentials).
    pub async fn post(
        &self,
        url: &Url,
        body: &Body,
        answer_bytes: usize,
    ) -> Result<Response, Answer> {
        self.attempt(url, body, answer_bytes)
            .await
            .map_err(|reason| Answer::Retry {
                reason,
                retry_after: None,
            })
    }

    async fn attempt(
        &self,
        url: &Url,
        body: &Body,
        answer_bytes: usize,
    ) -> Result<Response, String> {
        let mut headers = HeaderMap::new();
        if let Some(encoding) = body.content_encoding() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        if let Some(signer) = &self.signer {
            let signature = signer.sign(url, &headers, body, SystemTime::now()).await?;
            headers.extend(signature);
        }
        let response = self
            .client
            .post(url.clone())
            .headers(headers)
            .body(body.for_attempt())
            .send()
            .await
            .map_err(|error| crate::errors::error_chain(&error.without_url()))?;
        let status = response.status();
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                retry_after(response.headers(), SystemTime::now())
            }
            _ => None,
        };
        let body = read_at_most(response, answer_bytes).await;
        Ok(Response {
            status,
            retry_after,
            body,
        })
    }

    /// `sink.<name>`.
    pub fn settings_path(&self) -> &str {
        &self.path
    }
}

/// Reads the answer up to `limit` bytes; a longer one is cut (and its
/// connection not reused). A body that breaks off keeps what arrived.
async fn read_at_most(mut response: reqwest::Response, limit: usize) -> Bytes {
    let mut body = BytesMut::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == limit {
            break;
        }
    }
    body.freeze()
}

impl Response {
    /// The start of the answer, on one line, for reasons and logs.
    pub fn excerpt(&self) -> String {
        excerpt(&self.body)
    }

    /// What the status means for most stores: 2xx stored; 408, 429 and 5xx
    /// worth retrying; 413 too large; 400 and 422 refused for what the
    /// records hold; anything else (401, 403, 404, …) a failure of the
    /// settings that no record can change.
    pub fn answer(&self) -> Answer {
        let status = self.status;
        let reason = || {
            let excerpt = self.excerpt();
            if excerpt.is_empty() {
                format!("status {status}")
            } else {
                format!("status {status}: {excerpt}")
            }
        };
        if status.is_success() {
            Answer::Stored
        } else if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            Answer::Retry {
                reason: reason(),
                retry_after: self.retry_after,
            }
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            Answer::TooLarge { reason: reason() }
        } else if status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY {
            Answer::Refused { reason: reason() }
        } else {
            Answer::Failed { reason: reason() }
        }
    }
}

/// The first characters of an answer, on one line.
pub fn excerpt(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let text = text.trim();
    let mut excerpt: String = text
        .chars()
        .take(DETAIL_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(DETAIL_CHARS).is_some() {
        excerpt.push('…');
    }
    excerpt
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

/// The headers of every request: the store's fixed ones, the configured
/// extras and credentials. Errors name the header, never its value.
fn headers(config: &HttpConfig, path: &str, fixed: HeaderMap) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in &config.headers {
        let name = HeaderName::try_from(name.as_str())
            .with_context(|| format!("{path}.headers: invalid header name {name:?}"))?;
        headers.insert(
            name.clone(),
            sensitive(value.expose(), || {
                format!("{path}.headers: invalid value for {name}")
            })?,
        );
    }
    headers.extend(fixed);
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
        headers.insert(
            header::AUTHORIZATION,
            sensitive(&authorization, || {
                format!("{path}: the credentials hold characters not allowed in a header")
            })?,
        );
    }
    Ok(headers)
}

/// A header value kept out of debug output (and HTTP/2 header compression).
pub fn sensitive(value: &str, error: impl FnOnce() -> String) -> anyhow::Result<HeaderValue> {
    let mut value = HeaderValue::try_from(value).map_err(|_| anyhow::anyhow!(error()))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use s3logd_test_support::http as receiver;

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

    fn answered(status: u16) -> Answer {
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: Bytes::from_static(b"why\nnot"),
        }
        .answer()
    }

    #[test]
    fn statuses_mean_what_most_stores_mean_by_them() {
        assert_eq!(answered(200), Answer::Stored);
        assert_eq!(answered(204), Answer::Stored);
        for status in [408, 429, 500, 502, 503] {
            assert!(matches!(answered(status), Answer::Retry { .. }), "{status}");
        }
        assert!(matches!(answered(413), Answer::TooLarge { .. }));
        for status in [400, 422] {
            assert!(
                matches!(answered(status), Answer::Refused { .. }),
                "{status}"
            );
        }
        for status in [401, 403, 404, 405] {
            assert!(
                matches!(answered(status), Answer::Failed { .. }),
                "{status}"
            );
        }
        let Answer::Refused { reason } = answered(400) else {
            unreachable!()
        };
        assert_eq!(reason, "status 400 Bad Request: why not");
    }

    #[test]
    fn the_base_path_is_kept_as_a_prefix() {
        let config = HttpConfig {
            url: "https://proxy.example/logs/vl/?ignored=1".into(),
            request_timeout_secs: 5,
            ..HttpConfig::default()
        };
        let client = HttpClient::new(&config, "sink.vl", HeaderMap::new()).unwrap();
        assert_eq!(
            client.url(&["insert", "jsonline"]).as_str(),
            "https://proxy.example/logs/vl/insert/jsonline"
        );
        let bare = HttpConfig {
            url: "http://127.0.0.1:9428".into(),
            ..config
        };
        let client = HttpClient::new(&bare, "sink.vl", HeaderMap::new()).unwrap();
        assert_eq!(
            client.url(&["insert", "jsonline"]).as_str(),
            "http://127.0.0.1:9428/insert/jsonline"
        );
    }

    /// Answers every request with a 4 MiB error body.
    struct Verbose;

    impl receiver::Protocol for Verbose {
        fn answer(
            &self,
            _parts: &hyper::http::request::Parts,
            _path: &str,
            _body: &[u8],
        ) -> receiver::Answer {
            receiver::Answer::new(StatusCode::BAD_REQUEST, vec![b'x'; 4 << 20])
        }
    }

    #[tokio::test]
    async fn an_answer_is_read_up_to_the_bound_the_caller_gives() {
        let store = receiver::HttpReceiver::start(Arc::new(Verbose), None, "");
        let config = HttpConfig {
            url: store.url(),
            request_timeout_secs: 10,
            ..HttpConfig::default()
        };
        let client = HttpClient::new(&config, "sink.vl", HeaderMap::new()).unwrap();
        let body = Body::of_bytes(b"{}\n".to_vec(), crate::config::Compression::None).await;
        let response = client
            .post(&client.url(&["insert"]), &body, ANSWER_BYTES)
            .await
            .expect("an answer");
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert_eq!(response.body.len(), ANSWER_BYTES);
    }

    #[test]
    fn a_missing_ca_file_or_bad_header_is_named_without_its_value() {
        let missing_ca = HttpConfig {
            url: "http://127.0.0.1:1".into(),
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..HttpConfig::default()
        };
        let error = HttpClient::new(&missing_ca, "sink.vl", HeaderMap::new())
            .err()
            .expect("refused");
        assert!(
            format!("{error:#}").contains("sink.vl.tls_ca_file"),
            "{error:#}"
        );
        let bad_header = HttpConfig {
            url: "http://127.0.0.1:1".into(),
            headers: [(
                "X-Key".to_owned(),
                crate::config::Secret::new("top\nsecret"),
            )]
            .into(),
            ..HttpConfig::default()
        };
        let error = HttpClient::new(&bad_header, "sink.vl", HeaderMap::new())
            .err()
            .expect("refused");
        let text = format!("{error:#}");
        assert!(
            text.contains("sink.vl.headers: invalid value for x-key"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }
}
