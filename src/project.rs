//! Project names and access levels: validated before anything else happens.
//!
//! A project name ends up inside an IAM session policy and a repository path, so it must
//! not be able to change their shape. The grammar is one ECR repository path segment:
//! `[a-z0-9]+(?:[._-][a-z0-9]+)*`, 1–63 characters. Anything else is rejected.

use std::fmt;

use crate::error::RequestError;

/// Longest accepted project name.
pub const MAX_PROJECT_LEN: usize = 63;

/// A project name that satisfies the grammar. Only [`ProjectName::parse`] constructs one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectName(String);

impl ProjectName {
    /// Validates `raw` against the grammar; the error says which rule failed.
    pub fn parse(raw: &str) -> Result<Self, RequestError> {
        if raw.is_empty() {
            return Err(RequestError::MissingProject);
        }
        if raw.len() > MAX_PROJECT_LEN {
            return Err(RequestError::InvalidProject("longer than 63 characters"));
        }
        let bytes = raw.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let sep = |b: u8| matches!(b, b'.' | b'_' | b'-');
        if !bytes.iter().all(|&b| alnum(b) || sep(b)) {
            return Err(RequestError::InvalidProject(
                "only lower-case letters, digits and . _ - are allowed",
            ));
        }
        // Separators only between alphanumerics: no leading/trailing/doubled separator
        // (this also rules out `..`).
        let first_last_ok = alnum(bytes[0]) && alnum(bytes[bytes.len() - 1]);
        let no_double_sep = bytes.windows(2).all(|w| !(sep(w[0]) && sep(w[1])));
        if !first_last_ok || !no_double_sep {
            return Err(RequestError::InvalidProject(
                "separators . _ - must sit between letters or digits",
            ));
        }
        Ok(ProjectName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the caller wants to do with the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    Push,
    Pull,
}

impl Access {
    pub fn parse(raw: Option<&str>) -> Result<Self, RequestError> {
        match raw {
            None | Some("push") => Ok(Access::Push),
            Some("pull") => Ok(Access::Pull),
            Some(_) => Err(RequestError::InvalidAccess),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Push => "push",
            Access::Pull => "pull",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_grammar() {
        for ok in [
            "a",
            "my-app",
            "my_app",
            "my.app",
            "a1-b2_c3.d4",
            "0",
            &"a".repeat(63),
        ] {
            assert_eq!(ProjectName::parse(ok).unwrap().as_str(), ok, "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        let long = "a".repeat(64);
        for bad in [
            "*", "my-app*", "?", "my?app", "\"", "'", "a/b", "my-app/x", "..", "a..b", "../x",
            "My-App", "APP", "ünï", "appé", "-app", "app-", "a--b", "a-.b", ".app", " app", "app ",
            "a\u{0}b", "a%2fb", &long,
        ] {
            assert!(
                matches!(
                    ProjectName::parse(bad),
                    Err(RequestError::InvalidProject(_))
                ),
                "{bad:?} should be invalid"
            );
        }
        assert_eq!(ProjectName::parse(""), Err(RequestError::MissingProject));
    }

    #[test]
    fn access_values() {
        assert_eq!(Access::parse(None), Ok(Access::Push));
        assert_eq!(Access::parse(Some("pull")), Ok(Access::Pull));
        assert_eq!(
            Access::parse(Some("PUSH")),
            Err(RequestError::InvalidAccess)
        );
        assert_eq!(Access::parse(Some("")), Err(RequestError::InvalidAccess));
    }
}
