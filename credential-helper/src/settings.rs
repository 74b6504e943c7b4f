//! Settings from the environment, read through a lookup function so tests need not touch
//! the process environment, and the URL rules: `https://`, or `http://` for a loopback
//! host only, so that a bearer token never crosses a network in clear text.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Overall time for one HTTP exchange (connect, send, the whole answer), in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
/// Time to open the connection (TCP and TLS handshake), at most the overall time.
pub const CONNECT_TIMEOUT_SECONDS: u64 = 10;
/// Largest accepted `RISE_TIMEOUT_SECONDS`.
pub const MAX_TIMEOUT_SECONDS: u64 = 600;

/// The value of an environment variable, `None` when unset or blank.
pub fn setting(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name)
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// An `http(s)://` URL that passed [`HttpUrl::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The URL as given, without trailing `/` (no user information in it).
    pub text: String,
    /// The host, lower-case, without brackets or port.
    pub host: String,
    /// Whether the host is `localhost` or a loopback address.
    pub loopback: bool,
}

impl HttpUrl {
    /// Checks `raw` (the value of the setting `name`): scheme `https`, or `http` for a
    /// loopback host; a host; no user information; a query only when `allow_query`.
    pub fn parse(name: &str, raw: &str, allow_query: bool) -> Result<HttpUrl, String> {
        let raw = raw.trim();
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Err(format!("{name} must be an https:// URL (got {raw:?})"));
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(format!("{name} must be an https:// URL (got {raw:?})"));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if tail.contains('#') || (!allow_query && tail.contains('?')) {
            return Err(format!(
                "{name} must not have a query or fragment (got {raw:?})"
            ));
        }
        if authority.contains('@') {
            // Never echo it: user information may be a password.
            return Err(format!("{name} must not contain user information (user@)"));
        }
        let host = host_of_authority(authority)
            .ok_or_else(|| format!("{name} has no valid host[:port] (got {raw:?})"))?;
        let loopback = is_loopback(&host);
        if scheme == "http" && !loopback {
            return Err(format!(
                "{name} uses http:// for {host}, which is not a loopback host: use https:// \
                 (a bearer token must not cross a network in clear text)"
            ));
        }
        let text = if tail.is_empty() || tail == "/" {
            format!("{scheme}://{authority}")
        } else {
            format!("{scheme}://{authority}{}", tail.trim_end_matches('/'))
        };
        Ok(HttpUrl {
            text,
            host,
            loopback,
        })
    }
}

/// The host of `host[:port]` or `[v6][:port]`, lower-case; `None` if malformed.
fn host_of_authority(authority: &str) -> Option<String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        host.parse::<Ipv6Addr>().ok()?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
            return None;
        }
    }
    let valid =
        |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_' || b == b':';
    if host.is_empty() || !host.bytes().all(valid) {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

/// `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// `RISE_ACCESS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Push,
    Pull,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Push => "push",
            Access::Pull => "pull",
        }
    }
}

/// Timeouts of each HTTP exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(CONNECT_TIMEOUT_SECONDS),
            total: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
        }
    }
}

/// What `get` needs besides the caller's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub broker: HttpUrl,
    pub project: String,
    pub access: Access,
    pub timeouts: Timeouts,
}

impl Settings {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let broker = setting(env, "RISE_BROKER_URL").ok_or(
            "RISE_BROKER_URL is not set: set it to the broker's URL, e.g. https://broker.example.com",
        )?;
        let broker = HttpUrl::parse("RISE_BROKER_URL", &broker, false)?;
        let project = setting(env, "RISE_PROJECT")
            .ok_or("RISE_PROJECT is not set: set it to the project whose repository to use")?;
        let access = match setting(env, "RISE_ACCESS").as_deref() {
            None | Some("push") => Access::Push,
            Some("pull") => Access::Pull,
            Some(other) => return Err(format!("RISE_ACCESS must be push or pull (got {other:?})")),
        };
        let timeouts = match setting(env, "RISE_TIMEOUT_SECONDS") {
            None => Timeouts::default(),
            Some(raw) => {
                let seconds = raw
                    .parse::<u64>()
                    .ok()
                    .filter(|s| (1..=MAX_TIMEOUT_SECONDS).contains(s))
                    .ok_or_else(|| {
                        format!(
                            "RISE_TIMEOUT_SECONDS must be a whole number of seconds from 1 to \
                             {MAX_TIMEOUT_SECONDS} (got {raw:?})"
                        )
                    })?;
                Timeouts {
                    connect: Duration::from_secs(seconds.min(CONNECT_TIMEOUT_SECONDS)),
                    total: Duration::from_secs(seconds),
                }
            }
        };
        Ok(Settings {
            broker,
            project,
            access,
            timeouts,
        })
    }

    /// `/registry/credentials?project=..&access=..`, to append to the broker's URL.
    pub fn credentials_suffix(&self) -> String {
        format!(
            "/registry/credentials?project={}&access={}",
            encode_query_value(&self.project),
            self.access.as_str()
        )
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
pub(crate) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_urls_are_accepted_and_trailing_slashes_dropped() {
        let url = HttpUrl::parse("X", "https://Broker.Example.com/", false).unwrap();
        assert_eq!(url.text, "https://Broker.Example.com");
        assert_eq!(url.host, "broker.example.com");
        assert!(!url.loopback);
        let url = HttpUrl::parse("X", " https://b.example:8443/prefix/ ", false).unwrap();
        assert_eq!(url.text, "https://b.example:8443/prefix");
        assert_eq!(url.host, "b.example");
    }

    #[test]
    fn http_is_refused_for_a_non_loopback_host() {
        for raw in [
            "http://broker.example.com",
            "http://10.0.0.1:8787",
            "http://[2001:db8::1]:80",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            let err = HttpUrl::parse("RISE_BROKER_URL", raw, false).unwrap_err();
            assert!(err.contains("not a loopback host"), "{raw}: {err}");
            assert!(err.contains("use https://"), "{err}");
        }
    }

    #[test]
    fn http_is_accepted_for_loopback_hosts() {
        for (raw, host) in [
            ("http://127.0.0.1:8787", "127.0.0.1"),
            ("http://127.1.2.3", "127.1.2.3"),
            ("http://localhost:8787/", "localhost"),
            ("HTTP://LOCALHOST", "localhost"),
            ("http://[::1]:8787", "::1"),
        ] {
            let url = HttpUrl::parse("X", raw, false).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(url.host, host);
            assert!(url.loopback);
        }
    }

    #[test]
    fn malformed_urls_are_refused_with_the_setting_named() {
        for raw in [
            "broker.example.com",
            "ftp://broker.example.com",
            "https://",
            "https://:443",
            "https://host:port",
            "https://[::1",
            "https://[nothex]:1",
            "https://a b",
            "https://host/#frag",
        ] {
            let err = HttpUrl::parse("RISE_BROKER_URL", raw, false).unwrap_err();
            assert!(err.starts_with("RISE_BROKER_URL "), "{raw}: {err}");
        }
        let err = HttpUrl::parse("RISE_BROKER_URL", "https://h/?a=1", false).unwrap_err();
        assert!(err.contains("query"), "{err}");
        assert!(HttpUrl::parse("U", "https://h/token?api-version=2.0", true).is_ok());
    }

    #[test]
    fn user_information_is_refused_without_echoing_it() {
        let err =
            HttpUrl::parse("RISE_BROKER_URL", "https://me:hunter2-secret@h", false).unwrap_err();
        assert!(!err.contains("hunter2-secret"), "{err}");
        assert!(err.contains("user information"));
    }

    #[test]
    fn settings_need_the_broker_and_the_project() {
        let err = Settings::from_env(&env_of(&[("RISE_PROJECT", "my-app")])).unwrap_err();
        assert!(err.starts_with("RISE_BROKER_URL is not set"), "{err}");
        let err = Settings::from_env(&env_of(&[
            ("RISE_BROKER_URL", "https://b"),
            ("RISE_PROJECT", " "),
        ]))
        .unwrap_err();
        assert!(err.starts_with("RISE_PROJECT is not set"), "{err}");
    }

    #[test]
    fn access_defaults_to_push_and_refuses_anything_else() {
        let base = [
            ("RISE_BROKER_URL", "https://b.example"),
            ("RISE_PROJECT", "my-app"),
        ];
        assert_eq!(
            Settings::from_env(&env_of(&base)).unwrap().access,
            Access::Push
        );
        for (value, access) in [
            ("push", Access::Push),
            ("pull", Access::Pull),
            ("", Access::Push),
        ] {
            let env = env_of(&[base[0], base[1], ("RISE_ACCESS", value)]);
            assert_eq!(Settings::from_env(&env).unwrap().access, access);
        }
        for value in ["Push", "write", "pull,push"] {
            let env = env_of(&[base[0], base[1], ("RISE_ACCESS", value)]);
            let err = Settings::from_env(&env).unwrap_err();
            assert!(err.starts_with("RISE_ACCESS must be push or pull"), "{err}");
        }
    }

    #[test]
    fn timeouts_default_and_override() {
        let base = [
            ("RISE_BROKER_URL", "https://b.example"),
            ("RISE_PROJECT", "my-app"),
        ];
        let settings = Settings::from_env(&env_of(&base)).unwrap();
        assert_eq!(settings.timeouts.total, Duration::from_secs(30));
        assert_eq!(settings.timeouts.connect, Duration::from_secs(10));
        let env = env_of(&[base[0], base[1], ("RISE_TIMEOUT_SECONDS", "5")]);
        let settings = Settings::from_env(&env).unwrap();
        assert_eq!(settings.timeouts.total, Duration::from_secs(5));
        assert_eq!(settings.timeouts.connect, Duration::from_secs(5));
        for bad in ["0", "-1", "1.5", "601", "soon"] {
            let env = env_of(&[base[0], base[1], ("RISE_TIMEOUT_SECONDS", bad)]);
            assert!(Settings::from_env(&env)
                .unwrap_err()
                .starts_with("RISE_TIMEOUT_SECONDS"));
        }
    }

    #[test]
    fn the_credentials_url_encodes_the_project() {
        let env = env_of(&[
            ("RISE_BROKER_URL", "https://b.example/"),
            ("RISE_PROJECT", "my-app"),
            ("RISE_ACCESS", "pull"),
        ]);
        let settings = Settings::from_env(&env).unwrap();
        assert_eq!(settings.broker.text, "https://b.example");
        assert_eq!(
            settings.credentials_suffix(),
            "/registry/credentials?project=my-app&access=pull"
        );
        assert_eq!(encode_query_value("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
