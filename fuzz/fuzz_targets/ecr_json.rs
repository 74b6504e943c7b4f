//! ECR answers: GetAuthorizationToken responses (base64 `user:password`) and errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rise_registry_broker::aws::ecr::{parse_error_code, parse_get_authorization_token_response};

fuzz_target!(|data: &[u8]| {
    let _ = parse_get_authorization_token_response(data);
    let _ = parse_error_code(data);
});
