//! What every cloud's calls share, whoever the cloud: how a failed upstream call is
//! described ([`UpstreamError`]) and shown to the caller (`upstream_denied`,
//! `upstream_error`, `upstream_throttled` with `Retry-After`, `upstream_timeout`), the
//! bounded retry policy ([`retry`]), the JSON error shapes of OAuth-style token services
//! ([`json_error`]), and the bookkeeping of a call in the audit trace.
//!
//! AWS (`crate::aws`), Google and Azure (`crate::registry::{gar, acr}`) each bring only
//! their own requests, parsers and error codes; the rest is here, so every provider fails,
//! retries and reports the same way.

pub mod retry;

use std::fmt;

use serde_json::Value;

use crate::error::{ErrorCode, PublicError, PublicFailure};
use crate::runtime::{OutboundRequest, OutboundResponse, DEFAULT_MAX_RESPONSE_BYTES};

/// What one issuance cost upstream, for the audit line. Travels beside the credentials,
/// never inside them: whoever did not make the calls (a cache hit, a single-flight
/// follower) simply has an empty trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTrace {
    /// Request ids upstream returned (log-safe characters only).
    pub request_ids: Vec<String>,
    /// Outbound calls (Worker subrequests) made, retries included.
    pub subrequests: u32,
}

/// Which upstream call failed: the cloud (for the public message) and the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// `AWS`, `Google`, `Azure`, …
    pub cloud: &'static str,
    /// e.g. `sts:AssumeRole (push_role_arn)`, `STS token exchange`.
    pub call: &'static str,
}

impl Step {
    pub const fn new(cloud: &'static str, call: &'static str) -> Self {
        Step { cloud, call }
    }

    pub fn as_str(self) -> &'static str {
        self.call
    }
}

/// How an upstream call failed, after retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// The cloud refused the caller (signature, key, permissions, token, policy).
    Denied,
    /// Still throttled after the last attempt.
    Throttled,
    /// No answer in time on the last attempt.
    Timeout,
    /// Any other failure: 5xx after retries, network, unparseable or unusable answers.
    Error,
}

/// A failed upstream call. Holds only the cloud's error *code* and request id — never
/// its message, which could echo request material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    pub step: Step,
    pub kind: UpstreamKind,
    /// The cloud's error code (`AccessDenied`, `invalid_grant`, …), log-safe.
    pub code: Option<String>,
    pub request_id: Option<String>,
    pub attempts: u32,
}

impl UpstreamError {
    pub fn new(step: Step, kind: UpstreamKind) -> Self {
        UpstreamError {
            step,
            kind,
            code: None,
            request_id: None,
            attempts: 1,
        }
    }

    /// A 2xx answer that could not be used (unparseable, missing fields, already expired).
    pub fn unusable(step: Step, attempts: u32, code: &str) -> Self {
        UpstreamError {
            code: Some(code.into()),
            attempts,
            ..UpstreamError::new(step, UpstreamKind::Error)
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} failed ({:?}) after {} attempt(s)",
            self.step.cloud, self.step.call, self.kind, self.attempts
        )?;
        if let Some(code) = &self.code {
            write!(f, ", code={code}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, ", request_id={id}")?;
        }
        Ok(())
    }
}

/// Seconds a throttled caller is told to wait.
pub const RETRY_AFTER_SECONDS: u32 = 5;

impl PublicError for UpstreamError {
    fn public(&self) -> PublicFailure {
        let Step { cloud, call } = self.step;
        match self.kind {
            UpstreamKind::Denied => {
                PublicFailure::new(ErrorCode::UpstreamDenied, format!("{cloud} denied {call}"))
            }
            UpstreamKind::Error => PublicFailure::new(
                ErrorCode::UpstreamError,
                format!("{cloud} call {call} failed"),
            ),
            UpstreamKind::Throttled => PublicFailure::new(
                ErrorCode::UpstreamThrottled,
                format!("{cloud} throttled {call}; retry later"),
            )
            .with_header("retry-after", RETRY_AFTER_SECONDS.to_string()),
            UpstreamKind::Timeout => PublicFailure::new(
                ErrorCode::UpstreamTimeout,
                format!("{cloud} did not answer {call} in time"),
            ),
        }
    }
}

/// Keeps upstream error codes and request ids log-safe: `[A-Za-z0-9._:-]`, at most 128
/// chars.
pub fn log_safe(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._:-".contains(*c))
        .take(128)
        .collect()
}

/// What an error code means for the retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Slow down and try again.
    Throttled,
    /// "You may not": never retried.
    Denied,
    /// Worth another attempt (the cloud says so).
    Transient,
    /// Nothing known beyond the HTTP status.
    Other,
}

/// An error answer reduced to what the retry policy and the log need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorAnswer {
    pub code: Option<String>,
    pub request_id: Option<String>,
    pub verdict: Option<Verdict>,
}

/// The error code of a JSON error body, in the three shapes token services use:
/// OAuth 2.0 (RFC 6749 §5.2: `{"error": "invalid_grant", …}` — Google STS, Entra),
/// Google APIs (`{"error": {"status": "PERMISSION_DENIED", …}}` — IAM Credentials) and
/// the Docker registry API (`{"errors": [{"code": "UNAUTHORIZED", …}]}` — ACR).
pub fn json_error_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = match &value["error"] {
        Value::String(code) => Some(code.as_str()),
        Value::Object(error) => error.get("status").and_then(Value::as_str),
        _ => value["errors"][0]["code"].as_str(),
    }?;
    Some(log_safe(code)).filter(|c| !c.is_empty())
}

/// The verdict on the codes of [`json_error_code`]'s shapes.
pub fn json_verdict(code: &str) -> Verdict {
    match code {
        // RFC 6749 §5.2 and RFC 8693 §2.2.2; Google API statuses; registry API codes.
        "invalid_grant"
        | "invalid_client"
        | "unauthorized_client"
        | "access_denied"
        | "invalid_scope"
        | "invalid_target"
        | "PERMISSION_DENIED"
        | "UNAUTHENTICATED"
        | "UNAUTHORIZED"
        | "DENIED" => Verdict::Denied,
        "RESOURCE_EXHAUSTED" | "TOOMANYREQUESTS" | "slow_down" => Verdict::Throttled,
        "temporarily_unavailable" | "UNAVAILABLE" => Verdict::Transient,
        _ => Verdict::Other,
    }
}

/// Reads a JSON error answer; `request_id_header` names the cloud's request id header
/// when it sends one (the call must list it in `response_headers` to receive it).
pub fn json_error(response: &OutboundResponse, request_id_header: Option<&str>) -> ErrorAnswer {
    let code = json_error_code(&response.body);
    ErrorAnswer {
        verdict: code.as_deref().map(json_verdict),
        code,
        request_id: request_id_header
            .and_then(|h| response.header(h))
            .map(log_safe),
    }
}

/// An access token a cloud issued and when it stops working. `Debug` shows no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: crate::secrets::SecretString,
    /// ms since the epoch.
    pub expires_at_ms: u64,
}

/// Credentials are reported as expiring this long before they really do, so a client
/// never starts a push with a token about to lapse.
pub const EXPIRY_MARGIN_MS: u64 = 60_000;

/// When an issued credential should be reported as expiring: `expires_at_ms` less the
/// margin, refused (as an unusable answer) when that leaves under a second at `now_ms`
/// — read after the upstream calls, which may have taken minutes.
pub fn reported_expiry(expires_at_ms: u64, now_ms: u64, step: Step) -> Result<u64, UpstreamError> {
    let at = expires_at_ms.saturating_sub(EXPIRY_MARGIN_MS);
    if at < now_ms + 1000 {
        return Err(UpstreamError::unusable(step, 1, "TokenAlreadyExpired"));
    }
    Ok(at)
}

/// The token under `field` of a JSON answer (`access_token`, `refresh_token`, `token`),
/// if it is fit to be a registry password: non-empty printable ASCII without spaces (it
/// goes back out in a `Basic` header and a JSON string).
pub fn json_token(body: &[u8], field: &str) -> Option<crate::secrets::SecretString> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let token = value.get(field)?.as_str()?;
    (!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| crate::secrets::SecretString::new(token.to_owned()))
}

/// A `POST` with an `application/x-www-form-urlencoded` body, fields in the given order
/// (OAuth token endpoints: Google STS, Entra, ACR). No `Authorization` header.
pub fn form_post(
    url: String,
    fields: &[(&str, &str)],
    timeout_ms: u64,
    response_headers: &'static [&'static str],
) -> OutboundRequest {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    OutboundRequest {
        method: "POST",
        url,
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("accept".into(), "application/json".into()),
        ],
        body: body.into_bytes(),
        timeout_ms,
        max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        response_headers,
    }
}

/// The longest `calls` sequential calls can take: every attempt timing out, plus the
/// longest backoff between attempts (a single-flight follower's wait).
pub fn worst_case_ms(calls: u64, max_attempts: u64, timeout_ms: u64) -> u64 {
    let per_call =
        max_attempts * timeout_ms + max_attempts.saturating_sub(1) * retry::MAX_BACKOFF_MS;
    calls * per_call
}

/// `timeout_ms` (100–60,000) and `max_attempts` (1–5): every provider's per-call limits.
pub fn validate_limits(
    timeout_ms: u64,
    max_attempts: u64,
) -> Result<(), crate::error::ConfigError> {
    crate::config_support::in_range("registry.timeout_ms", timeout_ms, 100..=60_000)?;
    crate::config_support::in_range("registry.max_attempts", max_attempts, 1..=5)
}

/// A JSON API request: `accept: application/json`, the caller's authorization header
/// (`authorization`, `private-token`) when given, and a JSON body when given.
pub fn json_request(
    method: &'static str,
    url: String,
    auth: Option<(&str, &str)>,
    body: Option<&Value>,
    timeout_ms: u64,
    response_headers: &'static [&'static str],
) -> OutboundRequest {
    let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
    if let Some((name, value)) = auth {
        headers.push((name.to_owned(), value.to_owned()));
    }
    if body.is_some() {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    OutboundRequest {
        method,
        url,
        headers,
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        timeout_ms,
        max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        response_headers,
    }
}

/// One call whose request is the same on every attempt (all but SigV4-signed ones):
/// sent under the retry policy with `max_attempts`, its attempts counted in `trace`.
/// One function for every provider, so the Wasm holds the retry loop once.
pub async fn call(
    step: Step,
    max_attempts: u64,
    parse_error: retry::ErrorParser,
    request: OutboundRequest,
    ctx: &crate::runtime::Context<'_>,
    trace: &mut UpstreamTrace,
) -> Result<(OutboundResponse, u32), UpstreamError> {
    let policy = retry::RetryPolicy::new(u32::try_from(max_attempts).unwrap_or(1));
    let call = retry::Call {
        step,
        policy,
        http: ctx.http,
        sleeper: ctx.sleeper,
        parse_error,
    };
    record(
        trace,
        retry::send(&call, ctx.now_ms, |_| Ok(request.clone())).await,
    )
}

/// Counts a retried call's attempts in the audit trace, whatever its outcome.
pub fn record<T>(
    trace: &mut UpstreamTrace,
    result: Result<(T, u32), UpstreamError>,
) -> Result<(T, u32), UpstreamError> {
    match &result {
        Ok((_, attempts)) => trace.subrequests += attempts,
        Err(error) => trace.subrequests += error.attempts,
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_error_shapes() {
        let code = |body: &str| json_error_code(body.as_bytes());
        assert_eq!(
            code(r#"{"error":"invalid_grant","error_description":"x"}"#).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(
            code(r#"{"error":{"code":403,"message":"m","status":"PERMISSION_DENIED"}}"#).as_deref(),
            Some("PERMISSION_DENIED")
        );
        assert_eq!(
            code(r#"{"errors":[{"code":"UNAUTHORIZED","message":"m"}]}"#).as_deref(),
            Some("UNAUTHORIZED")
        );
        assert_eq!(code("<html>"), None);
        assert_eq!(code(r#"{"error":"<script>"}"#).as_deref(), Some("script"));
        assert_eq!(json_verdict("invalid_client"), Verdict::Denied);
        assert_eq!(json_verdict("temporarily_unavailable"), Verdict::Transient);
        assert_eq!(json_verdict("server_error"), Verdict::Other);
    }
}
