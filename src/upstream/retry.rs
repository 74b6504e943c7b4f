//! Bounded retries with full-jitter exponential backoff, for one upstream call (any
//! cloud).
//!
//! Retried: HTTP 5xx, HTTP 429, a 4xx whose error code the cloud's parser calls
//! throttling, timeouts, network failures, and codes the parser calls transient (AWS
//! `IDPCommunicationError`, OAuth `temporarily_unavailable`). Never retried: denials
//! (any 401/403, and codes the parser calls denials: AWS `AccessDenied`, OAuth
//! `invalid_grant`, …) and every other 4xx. Each attempt is a Worker subrequest, so the
//! attempt cap is small and configurable. Every attempt is built anew with the current
//! time (SigV4 signatures carry it).

use super::{ErrorAnswer, Step, UpstreamError, UpstreamKind, Verdict};
use crate::runtime::{HttpClient, OutboundRequest, OutboundResponse, Sleeper, TransportError};

/// The longest wait between two attempts.
pub const MAX_BACKOFF_MS: u64 = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts including the first.
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl RetryPolicy {
    pub fn new(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            base_delay_ms: 100,
            max_delay_ms: MAX_BACKOFF_MS,
        }
    }

    /// Full jitter: uniform in `[0, min(max, base · 2^retry)]`.
    pub fn backoff_ms(&self, retry: u32, random: u32) -> u64 {
        let ceiling = self
            .base_delay_ms
            .saturating_mul(1u64 << retry.min(20))
            .min(self.max_delay_ms);
        u64::from(random) % (ceiling + 1)
    }
}

/// An error response, reduced to (code, request id, verdict) by the cloud's parser.
pub type ErrorParser = fn(&OutboundResponse) -> ErrorAnswer;

/// Everything one retried call needs.
pub struct Call<'a> {
    pub step: Step,
    pub policy: RetryPolicy,
    pub http: &'a dyn HttpClient,
    pub sleeper: &'a dyn Sleeper,
    pub parse_error: ErrorParser,
}

/// Sends `build(now_ms)` until a 2xx, a non-retryable answer, or the attempt cap.
/// Returns the 2xx response and the number of attempts used.
pub async fn send<F>(
    call: &Call<'_>,
    start_ms: u64,
    build: F,
) -> Result<(OutboundResponse, u32), UpstreamError>
where
    F: Fn(u64) -> Result<OutboundRequest, UpstreamError>,
{
    let mut slept_ms = 0;
    let mut attempt = 1;
    loop {
        let request = build(start_ms + slept_ms)?;
        let outcome = call.http.send(request).await;
        let failure = match outcome {
            Ok(response) if (200..300).contains(&response.status) => {
                return Ok((response, attempt))
            }
            Ok(response) => classify(call, &response),
            Err(TransportError::Timeout) => {
                (UpstreamError::new(call.step, UpstreamKind::Timeout), true)
            }
            Err(TransportError::Network(_)) => {
                (UpstreamError::new(call.step, UpstreamKind::Error), true)
            }
            // Not an answer the cloud gives: no point asking again.
            Err(TransportError::TooLarge) => {
                (UpstreamError::new(call.step, UpstreamKind::Error), false)
            }
        };
        let (mut error, retryable) = failure;
        error.attempts = attempt;
        if !retryable || attempt >= call.policy.max_attempts {
            return Err(error);
        }
        let delay = call.policy.backoff_ms(attempt - 1, random_u32());
        call.sleeper.sleep(delay).await;
        slept_ms += delay;
        attempt += 1;
    }
}

/// (error, retryable) for a non-2xx response.
fn classify(call: &Call<'_>, response: &OutboundResponse) -> (UpstreamError, bool) {
    let ErrorAnswer {
        code,
        request_id,
        verdict,
    } = (call.parse_error)(response);
    let status = response.status;
    let (kind, retryable) = match verdict {
        _ if status == 429 => (UpstreamKind::Throttled, true),
        Some(Verdict::Throttled) if (400..500).contains(&status) => (UpstreamKind::Throttled, true),
        Some(Verdict::Transient) => (UpstreamKind::Error, true),
        _ if status >= 500 => (UpstreamKind::Error, true),
        Some(Verdict::Denied) => (UpstreamKind::Denied, false),
        _ if matches!(status, 401 | 403) => (UpstreamKind::Denied, false),
        _ => (UpstreamKind::Error, false),
    };
    let error = UpstreamError {
        step: call.step,
        kind,
        code,
        request_id,
        attempts: 0,
    };
    (error, retryable)
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    // No entropy only costs jitter quality, never correctness.
    let _ = getrandom::getrandom(&mut bytes);
    u32::from_le_bytes(bytes)
}
