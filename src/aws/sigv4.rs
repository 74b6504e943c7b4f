//! SigV4 for outbound requests, with `aws-sigv4` doing the signing.
//!
//! The one function [`sign`] is used for STS, ECR and the official test suites alike.
//! Settings are the crate defaults, which match botocore for non-S3 services: double
//! URI encoding, path normalisation, `x-amz-security-token` signed, no
//! `x-amz-content-sha256` header. Time is an argument: the shell's clock, or a frozen one.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{self, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::AwsCredentials;
use crate::runtime::OutboundRequest;

/// Signing failed: a header or URL aws-sigv4 cannot canonicalise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningError(pub String);

/// Adds `x-amz-date`, `x-amz-security-token` (for sessions) and `authorization` to
/// `request`, signing its method, URL, headers and body for `region`/`service` at `now_ms`.
pub fn sign(
    request: &mut OutboundRequest,
    credentials: &AwsCredentials,
    region: &str,
    service: &str,
    now_ms: u64,
) -> Result<(), SigningError> {
    let identity: Identity = Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_owned(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        None,
        "rise-broker",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::UNIX_EPOCH + Duration::from_millis(now_ms))
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SigningError(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url.as_str(),
        request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&request.body),
    )
    .map_err(|e| SigningError(e.to_string()))?;
    let (instructions, _signature) = http_request::sign(signable, &params)
        .map_err(|e| SigningError(e.to_string()))?
        .into_parts();
    let (headers, _query) = instructions.into_parts();
    for header in headers {
        request
            .headers
            .push((header.name().to_owned(), header.value().to_owned()));
    }
    Ok(())
}
