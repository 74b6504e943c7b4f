//! Edge container-registry credential broker.
//!
//! A deploy CLI calls `GET /registry/credentials?project=my-app` with a bearer JWT and
//! gets back credentials that work for that project's repository only.
//!
//! ```text
//!  runtime Request ──shell──▶ http::ApiRequest ──▶ api::respond
//!                                                   │ project::ProjectName::parse   (400)
//!                                                   │ config (loaded once)          (500)
//!                                                   │ auth::jwt::Verifier           (401)
//!                                                   │   └ auth::jwks (JWKS fetch via runtime::HttpClient)
//!                                                   │ auth::authz::authorize        (403)
//!                                                   │ broker::Broker::issue: cache + singleflight
//!                                                   │   └ registry::RegistryProvider (200 / 5xx)
//!  runtime Response ◀──shell── http::ApiResponse ◀──┘ + audit::AuditLine (one JSON log line)
//! ```
//!
//! Leaves first: `error` (codes, error types) and `secrets` import nothing of the crate;
//! `runtime` holds the IO seams and the one per-request [`runtime::Context`];
//! `config_support` the helpers every config section uses. Config sections live beside
//! their feature (`auth`, `cache`, `registry`); only `config` gathers them.
//!
//! Everything above the shell is plain Rust that `cargo test` runs natively: no clock
//! (time is passed in as `now_ms`), no network (outbound calls go through
//! [`runtime::HttpClient`]), no environment (vars and secrets are passed in). The shell in
//! `shell` is compiled only for `wasm32` and is the one place that touches `worker`.
//! The other target-dependent code is `crypto`'s backend: the runtime's WebCrypto on
//! `wasm32`, the RustCrypto implementations natively (same API, same test vectors).

pub mod api;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod broker;
pub mod cache;
pub mod config;
pub mod config_support;
pub mod crypto;
pub mod error;
pub mod http;
pub mod oidc;
pub mod project;
pub mod registry;
pub mod runtime;
pub mod secrets;
pub mod signer;
pub mod singleflight;
pub mod upstream;

#[cfg(all(target_arch = "wasm32", feature = "shell"))]
mod shell;
