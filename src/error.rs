//! Errors by phase, mapped to HTTP in one place.
//!
//! Every failure the broker can report implements [`PublicError`]: it knows its status,
//! its stable `code` and a sentence that is safe to show. [`error_response`] is the only
//! function that turns one into a response body. Details that could help an operator
//! (upstream request ids, which check failed) go to the log through `Display`, and never
//! include a token, key, secret or password.

use serde_json::json;

use crate::http::ApiResponse;

/// What a client may learn about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicFailure {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Extra headers (`WWW-Authenticate`, `Allow`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

impl PublicFailure {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        PublicFailure {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Implemented by each phase's error type.
pub trait PublicError {
    fn public(&self) -> PublicFailure;
}

impl PublicError for PublicFailure {
    fn public(&self) -> PublicFailure {
        self.clone()
    }
}

/// The JSON error contract: `{"error": "...", "code": "..."}` plus the failure's headers.
pub fn error_response(err: &dyn PublicError) -> ApiResponse {
    let failure = err.public();
    let mut response = ApiResponse::json(
        failure.status,
        &json!({ "error": failure.message, "code": failure.code }),
    );
    response.headers.extend(failure.headers);
    response
}

/// Failures of the HTTP surface itself (routing and query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    NotFound,
    MethodNotAllowed { allow: &'static str },
    MissingProject,
    InvalidProject(&'static str),
    InvalidAccess,
}

impl PublicError for RequestError {
    fn public(&self) -> PublicFailure {
        match self {
            RequestError::NotFound => PublicFailure::new(404, "not_found", "no such endpoint"),
            RequestError::MethodNotAllowed { allow } => PublicFailure::new(
                405,
                "method_not_allowed",
                format!("method not allowed; use {allow}"),
            )
            .with_header("allow", *allow),
            RequestError::MissingProject => PublicFailure::new(
                400,
                "missing_project",
                "query parameter `project` is required",
            ),
            RequestError::InvalidProject(why) => PublicFailure::new(
                400,
                "invalid_project",
                format!("invalid project name: {why}"),
            ),
            RequestError::InvalidAccess => PublicFailure::new(
                400,
                "invalid_access",
                "query parameter `access` must be `push` or `pull`",
            ),
        }
    }
}
