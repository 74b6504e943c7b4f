//! The broker's own HTTP surface as plain data: what the shell hands in, what it sends
//! back, and the one JSON error shape.
//!
//! Nothing here performs IO. The worker shell converts `worker::Request` into an
//! [`ApiRequest`] and an [`ApiResponse`] back into a `worker::Response`.

use serde_json::json;

use crate::error::PublicError;

/// An incoming request, reduced to what the broker looks at.
#[derive(Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    /// Raw query string without the leading `?`.
    pub query: Option<String>,
    /// Raw `Authorization` header value.
    pub authorization: Option<String>,
    /// The runtime's id for the request (`cf-ray`), when there is one.
    pub request_id: Option<String>,
}

// Hand-written: the Authorization header holds a bearer token.
impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .field("request_id", &self.request_id)
            .finish()
    }
}

/// A response the shell sends as is. Its body may hold a password: `Debug` prints only
/// the status and headers.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl std::fmt::Debug for ApiResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
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

    /// The JSON error contract: `{"error": "...", "code": "..."}` plus the failure's
    /// headers. The only place an error becomes a response.
    pub fn error(err: &dyn PublicError) -> Self {
        let failure = err.public();
        let mut response = ApiResponse::json(
            failure.status(),
            &json!({ "error": failure.message, "code": failure.code.as_str() }),
        );
        response.headers.extend(failure.headers);
        response
    }

    /// Replaces a header's value (or adds it).
    pub fn set_header(&mut self, name: &'static str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name, value.to_owned()));
    }

    /// First value of a header (names are stored lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
