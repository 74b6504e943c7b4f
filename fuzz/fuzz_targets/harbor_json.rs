//! Harbor answers: a created robot (`RobotCreated`) and a robot list as the sweeper reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rise_registry_broker::registry::harbor::{expired_own_robots, parse_created};

fuzz_target!(|data: &[u8]| {
    let _ = parse_created(data);
    let _ = expired_own_robots(data, 1_767_225_600_000);
});
