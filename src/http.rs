//! Plain wire types for the broker's own HTTP surface and for outbound calls.
//!
//! Nothing here performs IO. The worker shell converts `worker::Request` into an
//! [`ApiRequest`] and an [`ApiResponse`] back into a `worker::Response`; outbound calls
//! (JWKS today, STS/ECR later) go through the one small [`HttpClient`] trait, which the
//! shell implements with the Workers `fetch` and tests implement with scripted fakes.

use async_trait::async_trait;

use crate::aws::retry::Sleeper;

/// An incoming request, reduced to what the broker looks at.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    /// Raw query string without the leading `?`.
    pub query: Option<String>,
    /// Raw `Authorization` header value.
    pub authorization: Option<String>,
}

/// A response the shell sends as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl ApiResponse {
    /// A JSON response with the headers every answer carries.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        ApiResponse {
            status,
            headers: vec![
                ("content-type", "application/json".to_owned()),
                // Credentials must never sit in a shared or browser cache.
                ("cache-control", "no-store".to_owned()),
            ],
            body: body.to_string(),
        }
    }

    /// First value of a header (names are stored lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
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
}

/// Timeout for outbound calls that do not set their own.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

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
        }
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
