//! Google answers: STS token exchange and IAM Credentials generateAccessToken responses,
//! and the JSON error shapes (OAuth, Google API) the retry policy reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rise_registry_broker::registry::gar::{
    parse_generate_access_token_response, parse_sts_response,
};
use rise_registry_broker::upstream::json_error_code;

fuzz_target!(|data: &[u8]| {
    let _ = parse_sts_response(data, 1_767_225_600_000);
    let _ = parse_generate_access_token_response(data);
    let _ = json_error_code(data);
});
