//! The docker-credential-helpers protocol: `get`, `store`, `erase`, `list`, `version`.
//!
//! Like the protocol's reference implementation (`credentials.Serve` of
//! docker-credential-helpers), every failure is one line on **stdout** and exit 1:
//! clients (docker, and containers/image under podman, skopeo and buildah) read the
//! helper's stdout, recognise `credentials not found in native keychain` and fall back to
//! their other credentials, and quote any other line in their own error message.
//!
//! Nothing is ever stored: `store` and `erase` read their input and succeed, and each
//! `get` asks the broker again. There is no cache, neither in a file nor in memory: every
//! `get` is a new process, so a memory cache would never be hit, and a file would put a
//! registry password on disk, which is what a credential helper is there to avoid. A
//! client calls `get` a few times per push; each call costs one broker request, which the
//! broker's own credential cache answers without going upstream while its credential is
//! valid, and a `get` after the credential expired simply receives a fresh one.

use std::io::{Read, Write};

use serde::Serialize;

use crate::broker::{self, Issued};
use crate::http::{read_bounded, HttpError, ReadError, Transport, MAX_ANSWER_BYTES};
use crate::settings::Settings;
use crate::token;

/// The message clients recognise as "this helper has nothing for that registry".
pub const NOT_FOUND: &str = "credentials not found in native keychain";
pub const USAGE: &str = "Usage: docker-credential-rise <get|store|erase|list|version>";
/// Largest request read from stdin (a server URL, or the JSON `store` receives).
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

const PREFIX: &str = "docker-credential-rise: ";

/// A failed verb: exit 1 with this line on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Not this helper's registry: [`NOT_FOUND`].
    NotFound,
    /// The broker refused: `rise broker refused: <code>: <error>`.
    Refused(String),
    /// Anything else, printed after `docker-credential-rise: `.
    Error(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Error(message)
    }
}

/// `get`'s answer, in the protocol's field order.
#[derive(Serialize)]
struct Credentials<'a> {
    #[serde(rename = "ServerURL")]
    server_url: &'a str,
    #[serde(rename = "Username")]
    username: &'a str,
    #[serde(rename = "Secret")]
    secret: &'a str,
}

/// Runs the verb in `args` (the arguments after the program name) and returns the exit
/// code. `env` looks up environment variables.
pub fn run(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    input: &mut dyn Read,
    output: &mut dyn Write,
    transport: &dyn Transport,
) -> u8 {
    let result = match args {
        [verb] => match verb.as_str() {
            "get" => get(env, input, transport),
            "store" | "erase" => discard(input).map(|()| String::new()),
            "list" => Ok("{}\n".to_string()),
            "version" | "--version" => Ok(format!(
                "docker-credential-rise {}\n",
                env!("CARGO_PKG_VERSION")
            )),
            "--help" | "-h" | "help" => Ok(format!("{USAGE}\n{HELP}")),
            other => Err(Failure::Error(format!("unknown action {other:?}. {USAGE}"))),
        },
        _ => Err(Failure::Error(USAGE.to_string())),
    };
    let (text, code) = match result {
        Ok(text) => (text, 0),
        Err(Failure::NotFound) => (format!("{NOT_FOUND}\n"), 1),
        Err(Failure::Refused(line)) => (format!("{line}\n"), 1),
        Err(Failure::Error(message)) => (format!("{PREFIX}{message}\n"), 1),
    };
    // A client that closed the pipe can do nothing with an error about it.
    let _ = output
        .write_all(text.as_bytes())
        .and_then(|()| output.flush());
    code
}

const HELP: &str = "\
A docker credential helper for the rise registry broker: docker, podman, skopeo and
buildah ask it for credentials of a registry host (a `credHelpers` entry), and it asks
the broker. Nothing is stored. See docs/credential-helper.md.

  RISE_BROKER_URL       the broker, https:// (http:// only for loopback)   required
  RISE_PROJECT          the project whose repository to use                  required
  RISE_ACCESS           push (default) or pull
  RISE_TOKEN            the caller's bearer token, or else
  RISE_TOKEN_FILE       a file holding it, or else
  RISE_TOKEN_COMMAND    a shell line printing it (sh -c), or else GitHub Actions' OIDC
                        token (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN) for RISE_AUDIENCE (rise)
  RISE_TIMEOUT_SECONDS  time for each HTTP exchange (default 30)
";

/// Reads the whole input (bounded) and forgets it.
fn discard(input: &mut dyn Read) -> Result<(), Failure> {
    read_input(input).map(drop)
}

fn read_input(input: &mut dyn Read) -> Result<Vec<u8>, Failure> {
    read_bounded(input, MAX_INPUT_BYTES).map_err(|err| {
        Failure::Error(match err {
            ReadError::Io(err) => format!("cannot read stdin: {err}"),
            ReadError::TooLarge => format!("more than {MAX_INPUT_BYTES} bytes on stdin"),
        })
    })
}

fn get(
    env: &dyn Fn(&str) -> Option<String>,
    input: &mut dyn Read,
    transport: &dyn Transport,
) -> Result<String, Failure> {
    let raw = String::from_utf8(read_input(input)?)
        .map_err(|_| Failure::Error("the server URL on stdin is not UTF-8".to_string()))?;
    let server_url = raw.trim();
    if server_url.is_empty() {
        return Err(Failure::Error("no server URL on stdin".to_string()));
    }
    let host = normalise_host(server_url).ok_or_else(|| {
        Failure::Error(format!("cannot read a registry host from {server_url:?}"))
    })?;
    let settings = Settings::from_env(env)?;
    let source = token::choose(env)?;
    let caller_token = token::resolve(&source, transport, &settings.timeouts)?;
    let broker_url = &settings.broker.text;
    let suffix = settings.credentials_suffix();
    let answer = transport
        .get(&settings.broker, &suffix, &caller_token, &settings.timeouts)
        .map_err(|err| {
            Failure::Error(match err {
                HttpError::Unreachable(why) => {
                    format!("cannot reach the rise broker at {broker_url}: {why}")
                }
                HttpError::TooLarge => format!(
                    "the rise broker at {broker_url} answered more than {MAX_ANSWER_BYTES} bytes"
                ),
            })
        })?;
    match broker::interpret(answer.status, &answer.body)? {
        Issued::ClientAuth { .. } => Err(Failure::NotFound),
        Issued::Login { registry_url, .. } if !host_matches(&registry_url, &host) => {
            Err(Failure::NotFound)
        }
        Issued::Login {
            username, password, ..
        } => {
            let body = serde_json::to_string(&Credentials {
                server_url,
                username: &username,
                secret: &password,
            })
            .map_err(|err| Failure::Error(format!("cannot write the answer: {err}")))?;
            Ok(format!("{body}\n"))
        }
    }
}

/// The registry host in a server URL as clients send it: `host[:port]`, maybe with
/// `https://` or `http://`, a path or a trailing `/` (`https://index.docker.io/v1/`).
/// Lower-case; `:443` dropped; `None` if there is no host.
pub fn normalise_host(server_url: &str) -> Option<String> {
    let mut rest = server_url.trim();
    if let Some((scheme, after)) = rest.split_once("://") {
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+')
        {
            return None;
        }
        rest = after;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let authority = authority.strip_suffix(":443").unwrap_or(authority);
    let valid =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']');
    if authority.is_empty() || authority.starts_with(':') || !authority.bytes().all(valid) {
        return None;
    }
    Some(authority.to_ascii_lowercase())
}

/// Whether the broker's `registry_url` names the host the client asked about.
pub fn host_matches(registry_url: &str, host: &str) -> bool {
    normalise_host(registry_url).as_deref() == Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::fake::{json, Fake};
    use crate::settings::env_of;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.Y2FsbGVyLXNpZ25hdHVyZQ";
    const PASSWORD: &str = "eyJhbGciOiJFUzI1NiJ9.eyJsb2dpbiI6MX0.cmVnaXN0cnktcGFzc3dvcmQ";

    fn login_answer(registry_url: &str) -> String {
        format!(
            r#"{{"auth_method":"login_credentials","credentials":{{"registry_url":"{registry_url}",
            "username":"rise-my-app","password":"{PASSWORD}","expires_in":3599}},
            "image":"{registry_url}/rise-apps/my-app","repository":"rise-apps/my-app"}}"#
        )
    }

    fn call(verb: &str, stdin: &str, env: &[(&str, &str)], fake: &Fake) -> (u8, String) {
        let mut output = Vec::new();
        let code = run(
            &[verb.to_string()],
            &env_of(env),
            &mut stdin.as_bytes(),
            &mut output,
            fake,
        );
        (code, String::from_utf8(output).unwrap())
    }

    const ENV: [(&str, &str); 3] = [
        ("RISE_BROKER_URL", "https://broker.example"),
        ("RISE_PROJECT", "my-app"),
        ("RISE_TOKEN", JWT),
    ];

    #[test]
    fn get_prints_the_credentials_for_the_brokers_registry() {
        let fake = Fake::new(vec![json(200, &login_answer("127.0.0.1:5000"))]);
        let (code, out) = call("get", "127.0.0.1:5000\n", &ENV, &fake);
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            out,
            format!(
                "{{\"ServerURL\":\"127.0.0.1:5000\",\"Username\":\"rise-my-app\",\"Secret\":\"{PASSWORD}\"}}\n"
            )
        );
        assert_eq!(
            fake.calls.borrow().clone(),
            vec![(
                "https://broker.example/registry/credentials?project=my-app&access=push"
                    .to_string(),
                JWT.to_string()
            )]
        );
    }

    #[test]
    fn get_accepts_the_server_url_in_every_form_clients_send() {
        for stdin in [
            "127.0.0.1:5000",
            "https://127.0.0.1:5000",
            "http://127.0.0.1:5000/",
            "https://127.0.0.1:5000/v2/",
            "  127.0.0.1:5000  \n",
        ] {
            let fake = Fake::new(vec![json(200, &login_answer("127.0.0.1:5000"))]);
            let (code, out) = call("get", stdin, &ENV, &fake);
            assert_eq!(code, 0, "{stdin:?}: {out}");
            let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(
                parsed["ServerURL"],
                stdin.trim(),
                "echoes what the client sent"
            );
            assert_eq!(parsed["Secret"], PASSWORD);
        }
    }

    #[test]
    fn get_for_another_host_is_not_found_exactly() {
        for stdin in [
            "registry.example.com",
            "https://index.docker.io/v1/",
            "127.0.0.1:5001",
        ] {
            let fake = Fake::new(vec![json(200, &login_answer("127.0.0.1:5000"))]);
            let (code, out) = call("get", stdin, &ENV, &fake);
            assert_eq!(
                (code, out.as_str()),
                (1, "credentials not found in native keychain\n")
            );
        }
    }

    #[test]
    fn get_with_client_auth_is_not_found() {
        let body = r#"{"auth_method":"client_auth","credentials":{"password":"","registry_url":"localhost:5000","username":""},
            "image":"localhost:5000/rise-apps/my-app","repository":"rise-apps/my-app"}"#;
        let fake = Fake::new(vec![json(200, body)]);
        let (code, out) = call("get", "localhost:5000", &ENV, &fake);
        assert_eq!(
            (code, out.as_str()),
            (1, "credentials not found in native keychain\n")
        );
    }

    #[test]
    fn get_prints_the_brokers_refusal_as_one_line() {
        let body = r#"{"error":"token expired","code":"token_expired"}"#;
        let fake = Fake::new(vec![json(401, body)]);
        let (code, out) = call("get", "127.0.0.1:5000", &ENV, &fake);
        assert_eq!(code, 1);
        assert_eq!(out, "rise broker refused: token_expired: token expired\n");
    }

    #[test]
    fn get_uses_access_and_the_chosen_token_source() {
        let fake = Fake::new(vec![json(200, &login_answer("r.example"))]);
        let env = [
            ("RISE_BROKER_URL", "http://127.0.0.1:8787/"),
            ("RISE_PROJECT", "my-app"),
            ("RISE_ACCESS", "pull"),
            ("RISE_TOKEN_COMMAND", "echo cmd-token"),
        ];
        let (code, out) = call("get", "r.example", &env, &fake);
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            fake.calls.borrow().clone(),
            vec![(
                "http://127.0.0.1:8787/registry/credentials?project=my-app&access=pull".to_string(),
                "cmd-token".to_string()
            )]
        );
    }

    #[test]
    fn get_failures_are_clear_and_never_show_the_token_or_password() {
        let unreachable = Err(HttpError::Unreachable(
            "Connection refused (os error 111)".into(),
        ));
        // (environment, the broker's scripted answers, the message expected)
        type Case<'a> = (
            Vec<(&'a str, &'a str)>,
            Vec<Result<crate::http::Answer, HttpError>>,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                vec![("RISE_PROJECT", "p"), ("RISE_TOKEN", JWT)],
                vec![],
                "RISE_BROKER_URL is not set",
            ),
            (
                vec![ENV[0], ("RISE_TOKEN", JWT)],
                vec![],
                "RISE_PROJECT is not set",
            ),
            (vec![ENV[0], ENV[1]], vec![], "no caller token"),
            (
                vec![("RISE_BROKER_URL", "http://broker.example"), ENV[1], ENV[2]],
                vec![],
                "not a loopback host",
            ),
            (
                ENV.to_vec(),
                vec![unreachable],
                "cannot reach the rise broker at https://broker.example: Connection refused",
            ),
            (
                ENV.to_vec(),
                vec![Err(HttpError::TooLarge)],
                "answered more than 65536 bytes",
            ),
            (
                ENV.to_vec(),
                vec![json(200, "{\"credentials\":")],
                "not the credentials JSON",
            ),
        ];
        for (env, answers, expected) in cases {
            let fake = Fake::new(answers);
            let (code, out) = call("get", "127.0.0.1:5000", &env, &fake);
            assert_eq!(code, 1);
            assert!(out.starts_with("docker-credential-rise: "), "{out}");
            assert!(out.contains(expected), "{out}");
            assert_eq!(out.lines().count(), 1, "{out}");
            assert!(!out.contains(JWT) && !out.contains(PASSWORD), "{out}");
        }
    }

    #[test]
    fn get_needs_a_server_url() {
        let fake = Fake::new(vec![]);
        for stdin in ["", " \n", "https://", "https:///v2/"] {
            let (code, out) = call("get", stdin, &ENV, &fake);
            assert_eq!(code, 1, "{stdin:?}");
            assert!(out.starts_with("docker-credential-rise: "), "{out}");
        }
        assert!(fake.calls.borrow().is_empty());
    }

    #[test]
    fn store_and_erase_read_their_input_and_store_nothing() {
        let fake = Fake::new(vec![]);
        let creds =
            format!(r#"{{"ServerURL":"127.0.0.1:5000","Username":"u","Secret":"{PASSWORD}"}}"#);
        assert_eq!(call("store", &creds, &[], &fake), (0, String::new()));
        assert_eq!(
            call("erase", "127.0.0.1:5000\n", &[], &fake),
            (0, String::new())
        );
        assert!(
            fake.calls.borrow().is_empty(),
            "no request, no settings needed"
        );
    }

    #[test]
    fn list_and_version() {
        let fake = Fake::new(vec![]);
        assert_eq!(call("list", "", &[], &fake), (0, "{}\n".to_string()));
        let (code, out) = call("version", "", &[], &fake);
        assert_eq!(code, 0);
        assert_eq!(
            out,
            format!("docker-credential-rise {}\n", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn unknown_actions_and_wrong_argument_counts_print_the_usage() {
        let fake = Fake::new(vec![]);
        let (code, out) = call("delete", "", &[], &fake);
        assert_eq!(code, 1);
        assert!(
            out.contains("unknown action \"delete\"") && out.contains(USAGE),
            "{out}"
        );
        for args in [vec![], vec!["get".to_string(), "extra".to_string()]] {
            let mut output = Vec::new();
            let code = run(&args, &env_of(&[]), &mut "".as_bytes(), &mut output, &fake);
            assert_eq!(code, 1);
            assert_eq!(
                String::from_utf8(output).unwrap(),
                format!("docker-credential-rise: {USAGE}\n")
            );
        }
    }

    #[test]
    fn server_urls_normalise_to_host_and_port() {
        for (raw, host) in [
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("https://127.0.0.1:5000", "127.0.0.1:5000"),
            ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
            ("https://Registry.Example.com/v2/", "registry.example.com"),
            ("registry.example.com:443", "registry.example.com"),
            ("https://index.docker.io/v1/", "index.docker.io"),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            ),
            ("[::1]:5000", "[::1]:5000"),
            ("https://user@r.example/x", "r.example"),
        ] {
            assert_eq!(normalise_host(raw).as_deref(), Some(host), "{raw}");
        }
        for raw in ["", "https://", "/v2/", "a b", "://x", ":5000"] {
            assert_eq!(normalise_host(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn hosts_match_only_exactly_after_normalising() {
        assert!(host_matches("127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(host_matches("https://R.example/", "r.example"));
        assert!(host_matches("r.example:443", "r.example"));
        assert!(!host_matches("127.0.0.1:5000", "127.0.0.1:5001"));
        assert!(!host_matches("127.0.0.1:5000", "127.0.0.1"));
        assert!(!host_matches("r.example", "r.example.evil.test"));
        assert!(!host_matches("", "r.example"));
    }
}
