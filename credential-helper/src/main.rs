//! `docker-credential-rise`: a docker credential helper that asks the rise registry broker
//! for short-lived registry credentials each time a client (docker, podman, skopeo,
//! buildah) needs them, and stores nothing. See docs/credential-helper.md.
//!
//! The modules are pure where they can be — settings and token source from an
//! environment-lookup function, the network behind a trait — and `main` only wires the
//! process's environment, stdin, stdout and the real network to them.

mod broker;
mod http;
mod protocol;
mod settings;
mod token;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let env = |name: &str| std::env::var(name).ok();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let code = protocol::run(&args, &env, &mut stdin, &mut stdout, &http::Ureq);
    ExitCode::from(code)
}
