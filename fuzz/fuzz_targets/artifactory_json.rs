//! JFrog answers: the OIDC token exchange response (access token, the user read from its
//! `sub`, expiry from `expires_in` or `exp`) and the `{"errors": […]}` shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rise_registry_broker::registry::artifactory::{docker_username, parse_exchange_response};
use rise_registry_broker::upstream::json_error_code;

fuzz_target!(|data: &[u8]| {
    let _ = parse_exchange_response(data, 1_767_225_600_000);
    let _ = json_error_code(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = docker_username(text);
    }
});
