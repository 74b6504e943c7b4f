//! ECR GetAuthorizationToken over JSON 1.1: request builder and response parsers.

use base64::Engine as _;
use serde::Deserialize;

use crate::runtime::{OutboundRequest, DEFAULT_MAX_RESPONSE_BYTES};
use crate::secrets::SecretString;
use crate::upstream::log_safe;

pub const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";

pub fn default_endpoint(region: &str) -> String {
    super::regional_endpoint("api.ecr", region)
}

/// The unsigned request: `POST /` with `{}` (the token is for the caller's own registry).
pub fn get_authorization_token_request(endpoint: &str, timeout_ms: u64) -> OutboundRequest {
    OutboundRequest {
        method: "POST",
        url: endpoint.to_owned(),
        headers: vec![
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            ("x-amz-target".into(), TARGET.into()),
        ],
        body: b"{}".to_vec(),
        timeout_ms,
        max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        response_headers: super::RESPONSE_HEADERS,
    }
}

/// A decoded authorization token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrAuthorization {
    /// Always `AWS` for ECR, taken from the token itself.
    pub username: String,
    pub password: SecretString,
    pub proxy_endpoint: String,
    /// `expiresAt` in ms since the epoch.
    pub expires_at_ms: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    authorization_data: Vec<AuthorizationData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorizationData {
    authorization_token: String,
    expires_at: f64,
    #[serde(default)]
    proxy_endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

/// `authorizationToken` is base64 of `user:password`; split at the first `:`.
/// `expiresAt` is float seconds since the epoch.
pub fn parse_get_authorization_token_response(body: &[u8]) -> Result<EcrAuthorization, ParseError> {
    let response: Response =
        serde_json::from_slice(body).map_err(|_| ParseError("unexpected JSON"))?;
    let data = response
        .authorization_data
        .into_iter()
        .next()
        .ok_or(ParseError("no authorizationData"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token.trim())
        .map_err(|_| ParseError("token is not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| ParseError("token is not UTF-8"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or(ParseError("token has no `:`"))?;
    if !data.expires_at.is_finite() || data.expires_at < 0.0 {
        return Err(ParseError("bad expiresAt"));
    }
    Ok(EcrAuthorization {
        username: username.to_owned(),
        password: SecretString::new(password),
        proxy_endpoint: data.proxy_endpoint,
        expires_at_ms: (data.expires_at * 1000.0) as u64,
    })
}

/// A JSON-protocol error: `__type` (possibly `prefix#Code`), without the message.
pub fn parse_error_code(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(rename = "__type")]
        kind: String,
    }
    let err: ErrorBody = serde_json::from_slice(body).ok()?;
    let code = err.kind.rsplit('#').next().unwrap_or(&err.kind);
    Some(log_safe(code))
}
