//! The native integration tests, as one binary (the crypto crates link once).
//! `common` holds the fakes and helpers every module shares.
#![cfg(not(target_arch = "wasm32"))]

mod common;
#[path = "../vectors/mod.rs"]
mod vectors;

mod api;
mod authz;
mod botocore_reference;
mod cache;
mod config_layers;
mod ecr_provider;
mod faults;
mod federation;
mod gitlab;
mod harbor;
mod jwks_remote;
mod jwt_vectors;
mod oidc;
mod printing;
mod registry_token;
mod sigv4_suites;
mod static_token;
