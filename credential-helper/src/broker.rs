//! The broker's answer to `GET /registry/credentials`: credentials, the docker provider's
//! "use your own login" (`client_auth`), or `{"error", "code"}`.

use serde::Deserialize;

use crate::protocol::Failure;

/// What the broker issued.
#[derive(Clone, PartialEq, Eq)]
pub enum Issued {
    /// `login_credentials`: a username and a short-lived password for `registry_url`.
    Login {
        registry_url: String,
        username: String,
        password: String,
    },
    /// `client_auth` (docker provider): nothing to hand out; the client uses its own login.
    ClientAuth { registry_url: String },
}

// Written by hand so that no `{:?}` (a failed assertion included) prints the password.
impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Issued::Login {
                registry_url,
                username,
                ..
            } => write!(
                f,
                "Login {{ registry_url: {registry_url:?}, username: {username:?}, password: <redacted> }}"
            ),
            Issued::ClientAuth { registry_url } => {
                write!(f, "ClientAuth {{ registry_url: {registry_url:?} }}")
            }
        }
    }
}

#[derive(Deserialize)]
struct CredentialsAnswer {
    credentials: Credentials,
    #[serde(default)]
    auth_method: String,
}

#[derive(Deserialize)]
struct Credentials {
    registry_url: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    code: String,
}

/// Longest `error` text repeated from the broker.
const MAX_ERROR_CHARS: usize = 300;

/// Reads the broker's answer: what it issued, its refusal, or why the answer makes no sense.
pub fn interpret(status: u16, body: &[u8]) -> Result<Issued, Failure> {
    if status != 200 {
        return Err(match serde_json::from_slice::<ErrorAnswer>(body) {
            Ok(refusal) => Failure::Refused(refused_line(&refusal.code, &refusal.error)),
            Err(_) if (300..400).contains(&status) => Failure::Error(format!(
                "the rise broker answered HTTP {status}, a redirect (not followed): check RISE_BROKER_URL"
            )),
            Err(_) => Failure::Error(format!(
                "the rise broker answered HTTP {status} without its {{\"error\", \"code\"}} body: \
                 is RISE_BROKER_URL the broker?"
            )),
        });
    }
    // serde_json's message can quote a value of the answer: only its position is shown.
    let answer: CredentialsAnswer = serde_json::from_slice(body).map_err(|err| {
        Failure::Error(format!(
            "the rise broker's answer is not the credentials JSON (line {}, column {}): \
             is RISE_BROKER_URL the broker?",
            err.line(),
            err.column()
        ))
    })?;
    let Credentials {
        registry_url,
        username,
        password,
    } = answer.credentials;
    if answer.auth_method == "client_auth" || username.is_empty() || password.is_empty() {
        return Ok(Issued::ClientAuth { registry_url });
    }
    Ok(Issued::Login {
        registry_url,
        username,
        password,
    })
}

/// `rise broker refused: <code>: <error>`, on one line.
pub fn refused_line(code: &str, error: &str) -> String {
    format!(
        "rise broker refused: {}: {}",
        one_line(code, 64),
        one_line(error, MAX_ERROR_CHARS)
    )
}

/// `text` with control characters (newlines too) as spaces, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let mut out: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.trim().chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line a failure prints (without the program-name prefix of `Error`).
    fn text(result: Result<Issued, Failure>) -> String {
        match result.unwrap_err() {
            Failure::Refused(line) | Failure::Error(line) => line,
            Failure::NotFound => "not found".to_string(),
        }
    }

    const LOGIN: &str = r#"{"auth_method":"login_credentials",
        "credentials":{"registry_url":"127.0.0.1:5000","username":"rise","password":"s3cret-pass","expires_in":3599},
        "image":"127.0.0.1:5000/rise-apps/my-app","repository":"rise-apps/my-app"}"#;

    #[test]
    fn login_credentials_are_read() {
        assert_eq!(
            interpret(200, LOGIN.as_bytes()),
            Ok(Issued::Login {
                registry_url: "127.0.0.1:5000".into(),
                username: "rise".into(),
                password: "s3cret-pass".into(),
            })
        );
    }

    #[test]
    fn the_docker_providers_client_auth_hands_out_nothing() {
        let body = r#"{"auth_method":"client_auth","credentials":{"password":"","registry_url":"localhost:5000","username":""},
            "image":"localhost:5000/rise-apps/my-app","repository":"rise-apps/my-app"}"#;
        assert_eq!(
            interpret(200, body.as_bytes()),
            Ok(Issued::ClientAuth {
                registry_url: "localhost:5000".into()
            })
        );
        // Empty credentials mean the same whatever the method says.
        let body = r#"{"credentials":{"registry_url":"r.example","username":"u","password":""}}"#;
        assert!(matches!(
            interpret(200, body.as_bytes()),
            Ok(Issued::ClientAuth { .. })
        ));
    }

    #[test]
    fn a_refusal_is_one_line_with_code_and_error() {
        let body = r#"{"error":"token expired","code":"token_expired"}"#;
        assert_eq!(
            interpret(401, body.as_bytes()),
            Err(Failure::Refused(
                "rise broker refused: token_expired: token expired".into()
            ))
        );
        let body = r#"{"code":"forbidden","error":"not allowed\nto use\r\nthis project"}"#;
        let line = text(interpret(403, body.as_bytes()));
        assert_eq!(
            line,
            "rise broker refused: forbidden: not allowed to use  this project"
        );
        let long = format!(
            r#"{{"code":"misconfigured","error":"{}"}}"#,
            "x".repeat(1000)
        );
        let line = text(interpret(500, long.as_bytes()));
        assert!(line.ends_with('…') && line.chars().count() < 400, "{line}");
    }

    #[test]
    fn other_answers_are_explained_without_quoting_them() {
        let err = text(interpret(502, b"<html>bad gateway</html>"));
        assert!(err.contains("HTTP 502") && !err.contains("html"), "{err}");
        let err = text(interpret(302, b""));
        assert!(err.contains("redirect"), "{err}");
        // A password where a string is expected elsewhere: the message does not quote it.
        let body = r#"{"credentials":{"registry_url":"r","username":"u","password":"s3cret-pass","x":1},"auth_method":7}"#;
        let err = text(interpret(200, body.as_bytes()));
        assert!(
            err.contains("not the credentials JSON") && !err.contains("s3cret"),
            "{err}"
        );
        let err = text(interpret(
            200,
            br#"{"credentials":{"username":"u","password":"s3cret-pass"}}"#,
        ));
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let issued = interpret(200, LOGIN.as_bytes()).unwrap();
        assert!(!format!("{issued:?}").contains("s3cret-pass"));
    }
}
