//! Token verification time per algorithm (a benchmark, not a test).
//!
//!     cargo run --release --example verify_speed
//!
//! Verifies the valid tokens of the PyJWT corpus (tests/fixtures/jwt/corpus.json) through
//! `Verifier::verify_uncached` — the full path without the token cache — and prints the
//! mean time per token for HS256, RS256, ES256 and EdDSA. The Wasm figure comes from the
//! ignored wasm-bindgen test `verify_speed_in_wasm` (see bench/README.md).

use std::time::Instant;

use rise_registry_broker::auth::Verifier;
use rise_registry_broker::config;
use rise_registry_broker::secrets::MapSecrets;
use serde_json::{json, Value};

fn main() {
    let corpus: Value =
        serde_json::from_str(include_str!("../tests/fixtures/jwt/corpus.json")).unwrap();
    let issuers = json!([
        {"issuer": corpus["hs256_issuer"], "audience": corpus["audience"], "hs256_secret": "HS"},
        {"issuer": corpus["jwks_issuer"], "audience": corpus["audience"], "jwks": corpus["jwks"]},
    ])
    .to_string();
    let config = config::load_embedded(
        Some("development"),
        [("RISE_AUTH__ISSUERS", issuers.as_str())],
    )
    .unwrap();
    let secrets = MapSecrets::default().with("HS", corpus["hs256_secret_b64"].as_str().unwrap());
    let verifier = Verifier::from_config(&config.auth, &secrets).unwrap();
    let now_ms = corpus["now"].as_u64().unwrap() * 1000;
    let http = NoHttp;
    for (name, alg) in [
        ("hs256_valid", "HS256"),
        ("rs256_valid", "RS256"),
        ("es256_valid", "ES256"),
        ("eddsa_valid", "EdDSA"),
    ] {
        let token = corpus["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let n = if alg == "HS256" { 20_000 } else { 2_000 };
        let start = Instant::now();
        for _ in 0..n {
            futures::executor::block_on(verifier.verify_uncached(&token, now_ms, &http)).unwrap();
        }
        let per = start.elapsed().as_secs_f64() / n as f64;
        println!("{alg:6} {:8.1} µs/token ({n} tokens)", per * 1e6);
    }
}

struct NoHttp;

#[async_trait::async_trait(?Send)]
impl rise_registry_broker::runtime::HttpClient for NoHttp {
    async fn send(
        &self,
        _: rise_registry_broker::runtime::OutboundRequest,
    ) -> Result<
        rise_registry_broker::runtime::OutboundResponse,
        rise_registry_broker::runtime::TransportError,
    > {
        unreachable!("static keys only")
    }
}
