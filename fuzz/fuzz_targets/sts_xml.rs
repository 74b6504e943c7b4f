//! STS answers: AssumeRole / AssumeRoleWithWebIdentity responses and error documents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rise_registry_broker::aws::sts::{parse_assume_role_response, parse_error_response};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_assume_role_response(&text);
    let _ = parse_error_response(&text);
});
