//! The caller's token: the first of `RISE_TOKEN`, `RISE_TOKEN_FILE`, `RISE_TOKEN_COMMAND`,
//! or a GitHub Actions OIDC token (`ACTIONS_ID_TOKEN_REQUEST_URL` +
//! `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, audience `RISE_AUDIENCE`). No message here ever holds
//! a token, a file's content or a command's output.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::http::{read_bounded, HttpError, ReadError, Transport, MAX_ANSWER_BYTES};
use crate::settings::{encode_query_value, setting, HttpUrl, Timeouts};

/// Largest token file or command output read.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// `RISE_AUDIENCE` when unset: the audience the broker's GitHub issuer rule expects.
pub const DEFAULT_AUDIENCE: &str = "rise";

const NO_TOKEN: &str = "no caller token: set RISE_TOKEN, RISE_TOKEN_FILE or RISE_TOKEN_COMMAND, \
     or run in a GitHub Actions job with `permissions: id-token: write`";

/// Where the caller's token comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `RISE_TOKEN`, trimmed.
    Env(String),
    /// `RISE_TOKEN_FILE`: the file's content, trimmed.
    File(PathBuf),
    /// `RISE_TOKEN_COMMAND`: run with `sh -c`, its stdout trimmed.
    Command(String),
    /// GitHub Actions' OIDC token endpoint.
    GitHub {
        request_url: HttpUrl,
        request_token: String,
        audience: String,
    },
}

// Written by hand so that no `{:?}` (a failed assertion included) prints a secret.
impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Env(_) => f.write_str("Env(<redacted>)"),
            TokenSource::File(path) => write!(f, "File({path:?})"),
            TokenSource::Command(_) => f.write_str("Command(<redacted>)"),
            TokenSource::GitHub {
                request_url,
                audience,
                ..
            } => write!(
                f,
                "GitHub {{ request_url: {:?}, request_token: <redacted>, audience: {audience:?} }}",
                request_url.text
            ),
        }
    }
}

/// Chooses the token source from the environment (`env` looks a variable up).
pub fn choose(env: &dyn Fn(&str) -> Option<String>) -> Result<TokenSource, String> {
    if let Some(token) = setting(env, "RISE_TOKEN") {
        return Ok(TokenSource::Env(token));
    }
    if let Some(path) = setting(env, "RISE_TOKEN_FILE") {
        return Ok(TokenSource::File(PathBuf::from(path)));
    }
    if let Some(command) = setting(env, "RISE_TOKEN_COMMAND") {
        return Ok(TokenSource::Command(command));
    }
    match (
        setting(env, "ACTIONS_ID_TOKEN_REQUEST_URL"),
        setting(env, "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) {
        (Some(url), Some(request_token)) => Ok(TokenSource::GitHub {
            request_url: HttpUrl::parse("ACTIONS_ID_TOKEN_REQUEST_URL", &url, true)?,
            request_token,
            audience: setting(env, "RISE_AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.to_string()),
        }),
        (None, None) => Err(NO_TOKEN.to_string()),
        _ => Err(
            "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN must both be set \
             (the GitHub Actions job needs `permissions: id-token: write`)"
                .to_string(),
        ),
    }
}

/// Fetches the token from its source.
pub fn resolve(
    source: &TokenSource,
    transport: &dyn Transport,
    timeouts: &Timeouts,
) -> Result<String, String> {
    match source {
        TokenSource::Env(token) => checked(token, "RISE_TOKEN"),
        TokenSource::File(path) => {
            let shown = path.display();
            let file = std::fs::File::open(path)
                .map_err(|err| format!("cannot read RISE_TOKEN_FILE {shown}: {err}"))?;
            let bytes = read_bounded(file, MAX_TOKEN_BYTES).map_err(|err| match err {
                ReadError::Io(err) => format!("cannot read RISE_TOKEN_FILE {shown}: {err}"),
                ReadError::TooLarge => {
                    format!("RISE_TOKEN_FILE {shown} is larger than {MAX_TOKEN_BYTES} bytes")
                }
            })?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("RISE_TOKEN_FILE {shown} is not UTF-8 text"))?;
            if text.trim().is_empty() {
                return Err(format!("RISE_TOKEN_FILE {shown} is empty"));
            }
            checked(&text, "RISE_TOKEN_FILE")
        }
        TokenSource::Command(command) => {
            // stdin: nothing (the client's request was already read); stderr: the
            // client's, so the command's own complaints reach the user.
            let output = Command::new("sh")
                .arg("-c")
                .arg(command)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .map_err(|err| format!("cannot run RISE_TOKEN_COMMAND with sh: {err}"))?;
            if !output.status.success() {
                return Err(format!("RISE_TOKEN_COMMAND failed ({})", output.status));
            }
            if output.stdout.len() > MAX_TOKEN_BYTES {
                return Err(format!(
                    "RISE_TOKEN_COMMAND printed more than {MAX_TOKEN_BYTES} bytes"
                ));
            }
            let text = String::from_utf8(output.stdout).map_err(|_| {
                "RISE_TOKEN_COMMAND printed something that is not UTF-8".to_string()
            })?;
            if text.trim().is_empty() {
                return Err("RISE_TOKEN_COMMAND printed nothing".to_string());
            }
            checked(&text, "RISE_TOKEN_COMMAND")
        }
        TokenSource::GitHub {
            request_url,
            request_token,
            audience,
        } => github_token(request_url, request_token, audience, transport, timeouts),
    }
}

/// `?audience=` or `&audience=` (the runner's URL already has `api-version`), encoded.
pub fn audience_suffix(request_url: &HttpUrl, audience: &str) -> String {
    let separator = if request_url.text.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{separator}audience={}", encode_query_value(audience))
}

#[derive(Deserialize)]
struct GitHubAnswer {
    value: String,
}

fn github_token(
    request_url: &HttpUrl,
    request_token: &str,
    audience: &str,
    transport: &dyn Transport,
    timeouts: &Timeouts,
) -> Result<String, String> {
    let host = &request_url.host;
    let suffix = audience_suffix(request_url, audience);
    let answer = transport
        .get(request_url, &suffix, request_token, timeouts)
        .map_err(|err| match err {
            HttpError::Unreachable(why) => {
                format!("cannot get a GitHub Actions OIDC token from {host}: {why}")
            }
            HttpError::TooLarge => format!(
                "the GitHub Actions OIDC token answer from {host} is larger than {MAX_ANSWER_BYTES} bytes"
            ),
        })?;
    if answer.status != 200 {
        return Err(format!(
            "the GitHub Actions OIDC token request to {host} failed: HTTP {}",
            answer.status
        ));
    }
    let parsed: GitHubAnswer = serde_json::from_slice(&answer.body).map_err(|_| {
        format!("the GitHub Actions OIDC token answer from {host} has no string `value`")
    })?;
    if parsed.value.trim().is_empty() {
        return Err(format!(
            "the GitHub Actions OIDC token answer from {host} has an empty `value`"
        ));
    }
    checked(&parsed.value, "the GitHub Actions OIDC token endpoint")
}

/// The token trimmed; refused (without showing it) if it has inner whitespace or control
/// characters, which no bearer token has and which would break the header.
fn checked(token: &str, from: &str) -> Result<String, String> {
    let token = token.trim();
    if token.is_empty() {
        return Err(format!("the caller token from {from} is empty"));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the caller token from {from} has whitespace or control characters inside"
        ));
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::fake::{json, Fake};
    use crate::settings::env_of;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlLXNlY3JldA";

    fn temp_file(name: &str, content: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "docker-credential-rise-unit-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, content).unwrap();
        path
    }

    fn resolve_env(pairs: &[(&str, &str)], transport: &Fake) -> Result<String, String> {
        let source = choose(&env_of(pairs))?;
        resolve(&source, transport, &Timeouts::default())
    }

    #[test]
    fn precedence_is_token_then_file_then_command_then_github() {
        let all = [
            ("RISE_TOKEN", "from-env"),
            ("RISE_TOKEN_FILE", "/nonexistent/token"),
            ("RISE_TOKEN_COMMAND", "echo from-command"),
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "https://gh.example/token?api-version=2.0",
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runtime-token"),
        ];
        assert_eq!(
            choose(&env_of(&all)),
            Ok(TokenSource::Env("from-env".into()))
        );
        assert_eq!(
            choose(&env_of(&all[1..])),
            Ok(TokenSource::File("/nonexistent/token".into()))
        );
        assert_eq!(
            choose(&env_of(&all[2..])),
            Ok(TokenSource::Command("echo from-command".into()))
        );
        match choose(&env_of(&all[3..])).unwrap() {
            TokenSource::GitHub {
                request_url,
                request_token,
                audience,
            } => {
                assert_eq!(request_url.text, "https://gh.example/token?api-version=2.0");
                assert_eq!(request_token, "runtime-token");
                assert_eq!(audience, "rise");
            }
            other => panic!("{other:?}"),
        }
        // Blank values count as unset.
        let blank = [("RISE_TOKEN", "  "), ("RISE_TOKEN_COMMAND", "echo x")];
        assert_eq!(
            choose(&env_of(&blank)),
            Ok(TokenSource::Command("echo x".into()))
        );
    }

    #[test]
    fn no_source_or_half_of_github_is_a_clear_error() {
        let err = choose(&env_of(&[])).unwrap_err();
        assert!(err.starts_with("no caller token"), "{err}");
        for name in [
            "RISE_TOKEN",
            "RISE_TOKEN_FILE",
            "RISE_TOKEN_COMMAND",
            "id-token: write",
        ] {
            assert!(err.contains(name), "{err}");
        }
        let err = choose(&env_of(&[(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "https://gh.example/t",
        )]))
        .unwrap_err();
        assert!(err.contains("must both be set"), "{err}");
        let err = choose(&env_of(&[(
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "runtime-token",
        )]))
        .unwrap_err();
        assert!(
            err.contains("must both be set") && !err.contains("runtime-token"),
            "{err}"
        );
    }

    #[test]
    fn the_env_token_is_trimmed() {
        let fake = Fake::new(vec![]);
        let padded = format!("  {JWT}\n");
        assert_eq!(
            resolve_env(&[("RISE_TOKEN", padded.as_str())], &fake),
            Ok(JWT.into())
        );
    }

    #[test]
    fn a_token_file_is_read_and_trimmed() {
        let fake = Fake::new(vec![]);
        let path = temp_file("file-ok", &format!("\n  {JWT} \r\n"));
        let got = resolve_env(&[("RISE_TOKEN_FILE", path.to_str().unwrap())], &fake);
        std::fs::remove_file(path).unwrap();
        assert_eq!(got, Ok(JWT.into()));
    }

    #[test]
    fn a_missing_empty_or_garbled_token_file_is_named_but_not_shown() {
        let fake = Fake::new(vec![]);
        let err =
            resolve_env(&[("RISE_TOKEN_FILE", "/nonexistent/rise-token")], &fake).unwrap_err();
        assert!(
            err.starts_with("cannot read RISE_TOKEN_FILE /nonexistent/rise-token: "),
            "{err}"
        );
        let empty = temp_file("file-empty", " \n");
        let err = resolve_env(&[("RISE_TOKEN_FILE", empty.to_str().unwrap())], &fake).unwrap_err();
        std::fs::remove_file(empty).unwrap();
        assert!(err.ends_with("is empty"), "{err}");
        let two = temp_file("file-two-words", "secret-part-one secret-part-two\n");
        let err = resolve_env(&[("RISE_TOKEN_FILE", two.to_str().unwrap())], &fake).unwrap_err();
        std::fs::remove_file(two).unwrap();
        assert!(
            err.contains("whitespace") && !err.contains("secret-part"),
            "{err}"
        );
        let big = temp_file("file-big", &"x".repeat(MAX_TOKEN_BYTES + 1));
        let err = resolve_env(&[("RISE_TOKEN_FILE", big.to_str().unwrap())], &fake).unwrap_err();
        std::fs::remove_file(big).unwrap();
        assert!(err.contains("larger than 65536 bytes"), "{err}");
    }

    #[test]
    fn a_token_command_runs_with_sh_and_its_stdout_is_trimmed() {
        let fake = Fake::new(vec![]);
        let command = format!("printf '  %s\\n\\n' '{JWT}'; echo ignored-on-stderr >&2");
        assert_eq!(
            resolve_env(&[("RISE_TOKEN_COMMAND", command.as_str())], &fake),
            Ok(JWT.into())
        );
        // A shell line, not a program name: pipes and variables work.
        let command = "X=abc; echo \"$X\" | tr a-c x-z";
        assert_eq!(
            resolve_env(&[("RISE_TOKEN_COMMAND", command)], &fake),
            Ok("xyz".into())
        );
    }

    #[test]
    fn a_failing_or_silent_token_command_is_an_error_without_its_output() {
        let fake = Fake::new(vec![]);
        let err = resolve_env(
            &[("RISE_TOKEN_COMMAND", "echo half-a-secret-token; exit 3")],
            &fake,
        )
        .unwrap_err();
        assert_eq!(err, "RISE_TOKEN_COMMAND failed (exit status: 3)");
        let err = resolve_env(&[("RISE_TOKEN_COMMAND", "true")], &fake).unwrap_err();
        assert_eq!(err, "RISE_TOKEN_COMMAND printed nothing");
    }

    #[test]
    fn github_actions_token_is_fetched_with_the_request_token_and_audience() {
        let fake = Fake::new(vec![json(
            200,
            &format!(r#"{{"count":1,"value":"{JWT}"}}"#),
        )]);
        let env = [
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "https://gh.example/token?api-version=2.0",
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runtime-token"),
        ];
        assert_eq!(resolve_env(&env, &fake), Ok(JWT.into()));
        assert_eq!(
            fake.calls.borrow().clone(),
            vec![(
                "https://gh.example/token?api-version=2.0&audience=rise".to_string(),
                "runtime-token".to_string()
            )]
        );
        let fake = Fake::new(vec![json(200, &format!(r#"{{"value":"{JWT}"}}"#))]);
        let env = [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:9/token"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runtime-token"),
            ("RISE_AUDIENCE", "api://rise broker"),
        ];
        assert_eq!(resolve_env(&env, &fake), Ok(JWT.into()));
        assert_eq!(
            fake.calls.borrow()[0].0,
            "http://127.0.0.1:9/token?audience=api%3A%2F%2Frise%20broker"
        );
    }

    #[test]
    fn github_actions_failures_name_the_status_but_no_token() {
        let env = [
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "https://gh.example/token?api-version=2.0",
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runtime-request-token"),
        ];
        let cases = [
            (
                json(403, r#"{"message":"runtime-request-token"}"#),
                "failed: HTTP 403",
            ),
            (json(200, r#"{"count":0}"#), "has no string `value`"),
            (json(200, r#"{"value":""}"#), "has an empty `value`"),
            (Err(HttpError::TooLarge), "larger than 65536 bytes"),
            (
                Err(HttpError::Unreachable("timed out (global)".into())),
                "cannot get a GitHub Actions OIDC token from gh.example: timed out (global)",
            ),
        ];
        for (answer, expected) in cases {
            let fake = Fake::new(vec![answer]);
            let err = resolve_env(&env, &fake).unwrap_err();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("runtime-request-token"), "{err}");
        }
    }

    #[test]
    fn a_plain_http_github_endpoint_off_loopback_is_refused() {
        let env = [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "http://gh.example/token"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runtime-token"),
        ];
        let err = choose(&env_of(&env)).unwrap_err();
        assert!(
            err.starts_with("ACTIONS_ID_TOKEN_REQUEST_URL uses http://"),
            "{err}"
        );
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let shown = format!("{:?}", TokenSource::Env(JWT.into()));
        assert!(!shown.contains(JWT), "{shown}");
        let source = choose(&env_of(&[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://gh.example/t"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runtime-request-token"),
        ]))
        .unwrap();
        assert!(!format!("{source:?}").contains("runtime-request-token"));
    }
}
