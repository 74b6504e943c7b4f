//! The runtime seams, in one place: outbound HTTP, timers, secrets, and the one
//! [`Context`] a request carries through the core.
//!
//! Outbound requests are plain data built by pure functions and sent through the small
//! [`HttpClient`] trait; the worker shell implements it with the Workers `fetch`, tests
//! with scripted fakes. Time is an input: `now_ms` is the request's start, read once by
//! the shell; [`Clock`] is read again where a later time matters (after upstream calls,
//! which may take minutes). Waiting goes through [`Sleeper`].

use async_trait::async_trait;

use crate::secrets::Secrets;

/// Everything one request may use from the outside world.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Milliseconds since the Unix epoch at the request's start, read once by the shell.
    pub now_ms: u64,
    /// The clock, for "now" after upstream calls (how long a credential still works).
    pub clock: &'a dyn Clock,
    pub http: &'a dyn HttpClient,
    pub secrets: &'a dyn Secrets,
    /// Waits between retries, and the timer followers poll on.
    pub sleeper: &'a dyn Sleeper,
}

/// Milliseconds since the Unix epoch: `Date.now()` in the shell, a hand-moved or frozen
/// value in tests.
pub trait Clock {
    fn now_ms(&self) -> u64;
}

/// A clock that does not move (tests, benchmarks, and places where time cannot pass).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

/// Waiting without a clock in the core: the shell sleeps on a timer, tests record.
#[async_trait(?Send)]
pub trait Sleeper {
    async fn sleep(&self, ms: u64);
}

/// An outbound request: plain data, built by pure functions, sent by an [`HttpClient`].
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Give up (and report [`TransportError::Timeout`]) after this long.
    pub timeout_ms: u64,
    /// Stop reading (and report [`TransportError::TooLarge`]) once the body passes this:
    /// a hostile or broken upstream cannot make the isolate buffer without bound.
    pub max_response_bytes: usize,
    /// The response headers the caller reads: the shell copies only these out of the
    /// runtime (each one copied is a few calls across the JS boundary). Fakes may return
    /// more.
    pub response_headers: &'static [&'static str],
}

/// Timeout for outbound calls that do not set their own.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Largest response body read from any upstream (JWKS, discovery, STS, ECR answers are a
/// few KiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;

// Hand-written: outbound requests may carry signatures or session tokens in headers.
impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl OutboundRequest {
    pub fn get(url: impl Into<String>) -> Self {
        OutboundRequest {
            method: "GET",
            url: url.into(),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            response_headers: &[],
        }
    }
}

impl OutboundRequest {
    /// The same request as the `http` crate's type, for any Rust HTTP client (the
    /// native tests, a CLI reusing the builders). The limits are not part of it: the
    /// caller's client applies its own.
    pub fn to_http(&self) -> Result<http::Request<Vec<u8>>, http::Error> {
        let mut builder = http::Request::builder()
            .method(self.method)
            .uri(self.url.as_str());
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.body(self.body.clone())
    }
}

/// What came back from an outbound call.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for OutboundResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl OutboundResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why an outbound call produced no response at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// No answer within the configured time.
    Timeout,
    /// The body passed `max_response_bytes`; reading stopped there.
    TooLarge,
    /// Connection or runtime failure; the text is for the log only.
    Network(String),
}

/// The one seam for outbound HTTP. `?Send`: the worker runtime is single-threaded.
#[async_trait(?Send)]
pub trait HttpClient {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, TransportError>;

    /// The runtime's timer, when a request waiting for another request's fetch must poll
    /// on its own clock instead of being woken (Workers cancels a request whose only
    /// pending work is a promise another request will resolve). `None`: wake-ups work.
    fn poll_timer(&self) -> Option<&dyn Sleeper> {
        None
    }
}

/// `n` random bytes from the runtime's source (`crypto.getRandomValues` in the worker),
/// hex-encoded; `None` when the source fails.
pub fn random_hex(n: usize) -> Option<String> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}
