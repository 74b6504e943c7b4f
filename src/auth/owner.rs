//! Which claims of a CI token name the workload's *owner*, and whether a service-account
//! rule pins one.
//!
//! A rule that matches only `ref`, `environment` or a glob like `my-org*` admits every
//! GitHub user's workflow on `main`, or an org named `my-org-evil` — the misconfiguration
//! researchers keep finding in AWS trust policies for GitHub OIDC. So every rule must pin
//! at least one owner claim: exactly, or with `*` only after the owner part
//! (`my-org/*`, never `my-org*`). Well-known CI issuers come with their owner claims;
//! for any other issuer the operator names them (`owner_claims`), or its rules are
//! refused at config load.

use std::borrow::Cow;

/// How a claim carries the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerClaim {
    /// The whole value is the owner (or an id): matched exactly, no `*` at all.
    Exact(Cow<'static, str>),
    /// `{prefix}{owner}/…`: the literal prefix and the owner must come before any `*`.
    Path(Cow<'static, str>, &'static str),
}

impl OwnerClaim {
    const fn exact(name: &'static str) -> Self {
        OwnerClaim::Exact(Cow::Borrowed(name))
    }

    const fn path(name: &'static str, prefix: &'static str) -> Self {
        OwnerClaim::Path(Cow::Borrowed(name), prefix)
    }

    /// An operator-named owner claim: `owner/…` paths, or exact values.
    pub fn named(name: &str) -> Self {
        OwnerClaim::Path(Cow::Owned(name.to_owned()), "")
    }

    pub fn name(&self) -> &str {
        match self {
            OwnerClaim::Exact(name) | OwnerClaim::Path(name, _) => name,
        }
    }

    /// Whether `pattern` (a rule's value for this claim) pins the owner.
    pub fn pinned_by(&self, pattern: &str) -> bool {
        match self {
            OwnerClaim::Exact(_) => !pattern.is_empty() && !pattern.contains('*'),
            OwnerClaim::Path(_, prefix) => path_pins_owner(pattern, prefix),
        }
    }
}

/// `pattern` starts with `prefix`, then a non-empty owner and `/`, all before any `*`
/// (or has no `*` at all and a non-empty value after the prefix).
fn path_pins_owner(pattern: &str, prefix: &str) -> bool {
    let Some(rest) = pattern.strip_prefix(prefix) else {
        return false;
    };
    match rest.find('*') {
        None => !rest.is_empty(),
        Some(star) => rest[..star]
            .split_once('/')
            .is_some_and(|(owner, _)| !owner.is_empty()),
    }
}

/// GitHub Actions (`https://token.actions.githubusercontent.com`, also with an
/// enterprise slug after it). `sub` is `repo:{owner}/{repo}:…`.
///
/// Only claims that name the repository the job runs *in*. Not `job_workflow_ref`: in a
/// job that calls a reusable workflow it names the *called* workflow's file, while
/// `repository`/`sub` stay the caller's — and any repository can call a public workflow
/// with `on: workflow_call`. A rule pinning only `job_workflow_ref` would admit every
/// caller of that workflow; it may still narrow a rule that pins one of these.
pub const GITHUB_ACTIONS: &[OwnerClaim] = &[
    OwnerClaim::path("repository", ""),
    OwnerClaim::exact("repository_id"),
    OwnerClaim::exact("repository_owner"),
    OwnerClaim::exact("repository_owner_id"),
    OwnerClaim::path("sub", "repo:"),
];

/// GitLab CI on gitlab.com. `sub` is `project_path:{group}/{project}:…`.
///
/// Only claims of the project the pipeline runs in. Not `ci_config_ref_uri` /
/// `ci_config_sha` (the CI file may live in — be included from — another project), nor
/// `user_*` claims (a person, who may run pipelines in any project they can reach).
pub const GITLAB: &[OwnerClaim] = &[
    OwnerClaim::path("project_path", ""),
    OwnerClaim::exact("project_id"),
    OwnerClaim::path("namespace_path", ""),
    OwnerClaim::exact("namespace_id"),
    OwnerClaim::path("sub", "project_path:"),
];

/// The built-in owner claims of a well-known CI issuer.
pub fn well_known(issuer: &str) -> Option<&'static [OwnerClaim]> {
    const GITHUB: &str = "https://token.actions.githubusercontent.com";
    if issuer == GITHUB
        || issuer
            .strip_prefix(GITHUB)
            .is_some_and(|r| r.starts_with('/'))
    {
        Some(GITHUB_ACTIONS)
    } else if issuer == "https://gitlab.com" {
        Some(GITLAB)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pinning_table() {
        let repo = &OwnerClaim::path("repository", "");
        let sub = &OwnerClaim::path("sub", "repo:");
        let id = &OwnerClaim::exact("repository_id");
        let cases = [
            (repo, "my-org/my-app", true),
            (repo, "my-org/*", true),
            (repo, "my-org/app-*", true),
            (repo, "my-org*", false),
            (repo, "my-org", true), // exact: a value that can only equal itself
            (repo, "*/my-app", false),
            (repo, "*", false),
            (repo, "/x*", false), // no owner before the `/`
            (repo, "", false),
            (sub, "repo:my-org/my-app:ref:refs/heads/main", true),
            (sub, "repo:my-org/*", true),
            (sub, "repo:my-org*", false),
            (sub, "repo:*", false),
            (sub, "*repo:my-org/x", false),
            (sub, "my-org/x", false),
            (id, "123456", true),
            (id, "12*", false),
            (id, "", false),
        ];
        for (claim, pattern, want) in cases {
            assert_eq!(
                claim.pinned_by(pattern),
                want,
                "{} = {pattern}",
                claim.name()
            );
        }
        assert!(well_known("https://token.actions.githubusercontent.com").is_some());
        assert!(well_known("https://token.actions.githubusercontent.com/my-enterprise").is_some());
        assert!(well_known("https://token.actions.githubusercontent.com.evil.test").is_none());
        assert!(well_known("https://gitlab.com").is_some());
        assert!(well_known("https://ci.example.com").is_none());
    }
}
