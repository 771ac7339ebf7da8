//! AWS Signature Version 4 for HTTP stores behind AWS auth (Amazon
//! OpenSearch Service `es`, OpenSearch Serverless `aoss`): every request
//! signed, its body's SHA-256 sent as `x-amz-content-sha256` (which `aoss`
//! requires), with credentials from aws-config's chain, kept until shortly
//! before they expire.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::body::Body;

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

pub struct Signer {
    service: String,
    region: String,
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<Credentials>>,
}

impl Signer {
    pub fn new(service: &str, region: &str, provider: SharedCredentialsProvider) -> Signer {
        Signer {
            service: service.to_owned(),
            region: region.to_owned(),
            provider,
            cached: Mutex::new(None),
        }
    }

    /// The headers that sign a POST of `body` to `url` carrying `headers`
    /// (those the client sends besides): `authorization`, `x-amz-date`,
    /// `x-amz-content-sha256` and, for temporary credentials,
    /// `x-amz-security-token`.
    pub async fn sign(
        &self,
        url: &Url,
        headers: &HeaderMap,
        body: &Body,
        now: SystemTime,
    ) -> Result<HeaderMap, String> {
        let credentials = self.credentials(now).await?;
        let mut hasher = Sha256::new();
        for part in body.parts_on_the_wire() {
            hasher.update(part);
        }
        let payload = hex::encode(hasher.finalize());
        let mut signed_headers: Vec<(&str, &str)> = headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let host = host_header(url)?;
        signed_headers.push(("host", &host));
        let request = SignableRequest::new(
            "POST",
            url.as_str(),
            signed_headers.into_iter(),
            SignableBody::Precomputed(payload),
        )
        .map_err(|error| format!("cannot sign the request: {error}"))?;
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let identity = Identity::from(credentials);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(now)
            .settings(settings)
            .build()
            .map_err(|error| format!("cannot sign the request: {error}"))?
            .into();
        let (instructions, _) = sign(request, &params)
            .map_err(|error| format!("cannot sign the request: {error}"))?
            .into_parts();
        let mut signing = HeaderMap::new();
        for (name, value) in instructions.headers() {
            let name = HeaderName::try_from(name).map_err(|error| error.to_string())?;
            let mut value = HeaderValue::try_from(value).map_err(|error| error.to_string())?;
            value.set_sensitive(true);
            signing.insert(name, value);
        }
        Ok(signing)
    }

    async fn credentials(&self, now: SystemTime) -> Result<Credentials, String> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref()
            && credentials
                .expiry()
                .is_none_or(|expiry| expiry > now + REFRESH_BEFORE_EXPIRY)
        {
            return Ok(credentials.clone());
        }
        // The provider's errors name the source, never a secret.
        let fresh = self.provider.provide_credentials().await.map_err(|error| {
            format!(
                "no AWS credentials to sign with: {}",
                crate::errors::error_chain(&error)
            )
        })?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

/// `host[:port]` as the client sends it (the port only when not the
/// scheme's default).
fn host_header(url: &Url) -> Result<String, String> {
    let host = url.host_str().ok_or("the URL has no host")?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

#[cfg(test)]
mod tests;
