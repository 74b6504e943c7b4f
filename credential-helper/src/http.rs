//! One small HTTP client: a GET with a bearer token, timeouts, no redirects, an answer of
//! at most [`MAX_ANSWER_BYTES`]. ureq 3 with rustls (ring) and Mozilla's roots
//! (webpki-roots): no OpenSSL, nothing read from the system's certificate store.

use std::io::Read;

use crate::settings::{HttpUrl, Timeouts};

/// Largest answer read from the broker or from GitHub's token endpoint; a credentials
/// answer is well under 4 KiB.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

const USER_AGENT: &str = concat!("docker-credential-rise/", env!("CARGO_PKG_VERSION"));

/// An HTTP answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a GET got no answer. The texts never hold the bearer token or the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// No answer: DNS, connect, TLS, timeout, a broken connection.
    Unreachable(String),
    /// The answer was longer than [`MAX_ANSWER_BYTES`].
    TooLarge,
}

/// The network, behind a trait so the protocol tests run without one.
pub trait Transport {
    /// `GET {url.text}{suffix}` with `Authorization: Bearer <bearer>`.
    fn get(
        &self,
        url: &HttpUrl,
        suffix: &str,
        bearer: &str,
        timeouts: &Timeouts,
    ) -> Result<Answer, HttpError>;
}

/// Why [`read_bounded`] stopped.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    TooLarge,
}

/// Reads at most `limit` bytes (through `take`, so an endless source stops there too);
/// more is [`ReadError::TooLarge`].
pub fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(ReadError::Io)?;
    if buf.len() > limit {
        return Err(ReadError::TooLarge);
    }
    Ok(buf)
}

/// The real network through ureq.
pub struct Ureq;

impl Transport for Ureq {
    fn get(
        &self,
        url: &HttpUrl,
        suffix: &str,
        bearer: &str,
        timeouts: &Timeouts,
    ) -> Result<Answer, HttpError> {
        let mut config = ureq::Agent::config_builder()
            // 4xx/5xx are answers to read (the broker's `{"error","code"}`), not errors.
            .http_status_as_error(false)
            // A redirect is returned as it is (and reported), never followed.
            .max_redirects(0)
            .timeout_global(Some(timeouts.total))
            .timeout_connect(Some(timeouts.connect))
            .user_agent(USER_AGENT);
        if url.loopback {
            // A proxy from HTTP(S)_PROXY must not see a loopback (plain http) exchange.
            config = config.proxy(None);
        }
        let agent = ureq::Agent::new_with_config(config.build());
        let full = format!("{}{}", url.text, suffix);
        let response = agent
            .get(full.as_str())
            .header("Authorization", format!("Bearer {bearer}"))
            .header("Accept", "application/json")
            .call()
            .map_err(|err| HttpError::Unreachable(describe(&err)))?;
        let status = response.status().as_u16();
        let body =
            read_bounded(response.into_body().into_reader(), MAX_ANSWER_BYTES).map_err(|err| {
                match err {
                    ReadError::TooLarge => HttpError::TooLarge,
                    ReadError::Io(io) => {
                        HttpError::Unreachable(format!("reading the answer failed: {io}"))
                    }
                }
            })?;
        Ok(Answer { status, body })
    }
}

/// A ureq error in words, without the URL's query or any header value.
fn describe(err: &ureq::Error) -> String {
    match err {
        ureq::Error::Timeout(which) => format!("timed out ({which})"),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::BadUri(_) => "not a valid URL".to_string(),
        ureq::Error::Http(_) => {
            "the request could not be built (a header value has characters HTTP does not allow)"
                .to_string()
        }
        other => other.to_string(),
    }
}

/// A scripted [`Transport`] for the unit tests: answers in order, records every request.
#[cfg(test)]
pub mod fake {
    use std::cell::RefCell;

    use super::{Answer, HttpError, Transport};
    use crate::settings::{HttpUrl, Timeouts};

    pub struct Fake {
        answers: RefCell<Vec<Result<Answer, HttpError>>>,
        /// (URL, bearer token) of each request.
        pub calls: RefCell<Vec<(String, String)>>,
    }

    impl Fake {
        pub fn new(answers: Vec<Result<Answer, HttpError>>) -> Fake {
            Fake {
                answers: RefCell::new(answers),
                calls: RefCell::new(Vec::new()),
            }
        }
    }

    impl Transport for Fake {
        fn get(
            &self,
            url: &HttpUrl,
            suffix: &str,
            bearer: &str,
            _timeouts: &Timeouts,
        ) -> Result<Answer, HttpError> {
            self.calls
                .borrow_mut()
                .push((format!("{}{}", url.text, suffix), bearer.to_string()));
            let mut answers = self.answers.borrow_mut();
            assert!(
                !answers.is_empty(),
                "unexpected request to {}{}",
                url.text,
                suffix
            );
            answers.remove(0)
        }
    }

    pub fn json(status: u16, body: &str) -> Result<Answer, HttpError> {
        Ok(Answer {
            status,
            body: body.as_bytes().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_up_to_the_limit_are_read_whole() {
        let body = vec![b'x'; MAX_ANSWER_BYTES];
        assert_eq!(read_bounded(&body[..], MAX_ANSWER_BYTES).unwrap(), body);
        assert_eq!(read_bounded(&b""[..], MAX_ANSWER_BYTES).unwrap(), b"");
    }

    #[test]
    fn a_longer_answer_is_refused() {
        let body = vec![b'x'; MAX_ANSWER_BYTES + 1];
        assert!(matches!(
            read_bounded(&body[..], MAX_ANSWER_BYTES),
            Err(ReadError::TooLarge)
        ));
    }

    #[test]
    fn an_endless_answer_is_refused_after_the_limit() {
        // io::repeat never ends: the limit alone stops the read.
        assert!(matches!(
            read_bounded(std::io::repeat(b'{'), 1024),
            Err(ReadError::TooLarge)
        ));
    }
}
