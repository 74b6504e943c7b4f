//! Errors by phase, and the one list of public error codes.
//!
//! A leaf module: every other module may import it, it imports none of them.
//!
//! [`ErrorCode`] is the single list of `code` values a client can see, each with its HTTP
//! status; the docs' error table (docs/api.md) is checked against [`ErrorCode::ALL`] by
//! a test. Every failure the broker can report implements [`PublicError`]: it knows its
//! code and a sentence that is safe to show. `crate::http::ApiResponse::error` is the only
//! function that turns one into a response body. Details that could help an operator
//! (upstream request ids, which check failed) go to the log through `Display`, and never
//! include a token, key, secret or password.

use std::fmt;

/// Every public error code, with its HTTP status. Adding a code: a variant here, a line
/// in [`ErrorCode::ALL`], `as_str`, `status`, and a row in docs/api.md (a test checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MissingProject,
    InvalidProject,
    InvalidAccess,
    InvalidService,
    InvalidScope,
    MissingToken,
    InvalidToken,
    TokenExpired,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Misconfigured,
    UpstreamError,
    UpstreamDenied,
    UpstreamThrottled,
    UpstreamTimeout,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::MissingProject,
        ErrorCode::InvalidProject,
        ErrorCode::InvalidAccess,
        ErrorCode::InvalidService,
        ErrorCode::InvalidScope,
        ErrorCode::MissingToken,
        ErrorCode::InvalidToken,
        ErrorCode::TokenExpired,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Misconfigured,
        ErrorCode::UpstreamError,
        ErrorCode::UpstreamDenied,
        ErrorCode::UpstreamThrottled,
        ErrorCode::UpstreamTimeout,
    ];

    /// The stable snake_case `code` of the JSON error body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingProject => "missing_project",
            ErrorCode::InvalidProject => "invalid_project",
            ErrorCode::InvalidAccess => "invalid_access",
            ErrorCode::InvalidService => "invalid_service",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::MissingToken => "missing_token",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Misconfigured => "misconfigured",
            ErrorCode::UpstreamError => "upstream_error",
            ErrorCode::UpstreamDenied => "upstream_denied",
            ErrorCode::UpstreamThrottled => "upstream_throttled",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorCode::MissingProject
            | ErrorCode::InvalidProject
            | ErrorCode::InvalidAccess
            | ErrorCode::InvalidService
            | ErrorCode::InvalidScope => 400,
            ErrorCode::MissingToken | ErrorCode::InvalidToken | ErrorCode::TokenExpired => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Misconfigured => 500,
            ErrorCode::UpstreamError | ErrorCode::UpstreamDenied => 502,
            ErrorCode::UpstreamThrottled => 503,
            ErrorCode::UpstreamTimeout => 504,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client may learn about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicFailure {
    pub code: ErrorCode,
    pub message: String,
    /// Extra headers (`WWW-Authenticate`, `Allow`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

impl PublicFailure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        PublicFailure {
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
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

/// Failures of the HTTP surface itself (routing and query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    NotFound,
    MethodNotAllowed { allow: &'static str },
    MissingProject,
    InvalidProject(&'static str),
    InvalidAccess,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.public().message)
    }
}

impl PublicError for RequestError {
    fn public(&self) -> PublicFailure {
        match self {
            RequestError::NotFound => PublicFailure::new(ErrorCode::NotFound, "no such endpoint"),
            RequestError::MethodNotAllowed { allow } => PublicFailure::new(
                ErrorCode::MethodNotAllowed,
                format!("method not allowed; use {allow}"),
            )
            .with_header("allow", *allow),
            RequestError::MissingProject => PublicFailure::new(
                ErrorCode::MissingProject,
                "query parameter `project` is required",
            ),
            RequestError::InvalidProject(why) => PublicFailure::new(
                ErrorCode::InvalidProject,
                format!("invalid project name: {why}"),
            ),
            RequestError::InvalidAccess => PublicFailure::new(
                ErrorCode::InvalidAccess,
                "query parameter `access` must be `push` or `pull`",
            ),
        }
    }
}

/// A configuration problem. `reason` never contains a configured value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A key (dotted path, e.g. `registry.region`) is missing, unknown or invalid.
    Key { key: String, reason: String },
    /// A worker secret named by the config (or required by a provider) is not set or invalid.
    Secret { name: String, reason: &'static str },
}

impl ConfigError {
    pub fn key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub fn missing_secret(name: impl Into<String>) -> Self {
        ConfigError::Secret {
            name: name.into(),
            reason: "is not set",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Key { key, reason } => write!(f, "config key `{key}` {reason}"),
            ConfigError::Secret { name, reason } => write!(f, "worker secret `{name}` {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl PublicError for ConfigError {
    fn public(&self) -> PublicFailure {
        // Names the key or secret, never a value: safe to show to the caller.
        PublicFailure::new(
            ErrorCode::Misconfigured,
            format!("broker is misconfigured: {self}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_error_statuses() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} listed twice");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!((400..600).contains(&code.status()), "{s}");
        }
    }
}
