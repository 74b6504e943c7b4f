//! Azure answers: Entra and ACR token responses, the `exp` read from ACR's JWTs, and the
//! registry-style error shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rise_registry_broker::registry::federation::jwt_expiry_ms;
use rise_registry_broker::registry::acr::parse_token;
use rise_registry_broker::upstream::json_error_code;

fuzz_target!(|data: &[u8]| {
    for field in ["access_token", "refresh_token"] {
        if let Some(token) = parse_token(data, field) {
            let _ = jwt_expiry_ms(token.expose());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = jwt_expiry_ms(text);
    }
    let _ = json_error_code(data);
});
