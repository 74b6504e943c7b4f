//! The `static` provider: a pre-provisioned token per (project, access), read from the
//! worker secret the `secret` template names — a Docker Hub organization access token
//! limited to one repository, a GHCR classic personal access token, a Harbor robot made
//! by hand. Nothing is exchanged; the broker's part is to hand each authorized caller
//! only the token for the project (and access) it was authorized for.
//!
//! The answer is only as scoped and as short-lived as the operator made the token: it
//! has no `expires_in` (the broker cannot know), and is never cached (it is read from the
//! secrets on each request, so a rotated secret takes effect at once). The limits of each
//! registry are in docs/static-tokens.md.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{
    namespaced, validate_location, AuthMethod, CredentialRequest, ProviderConfig, ProviderError,
    RegistryConfig, RegistryCredentials, RegistryProvider, Services, UpstreamTrace,
};
use crate::config_support::Fields;
use crate::error::ConfigError;
use crate::project::{Access, ProjectName};
use crate::runtime::Context;
use crate::secrets::Secrets;

/// `[registry]` with `type = "static"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticConfig {
    pub registry_url: String,
    /// Default `""`.
    pub namespace: String,
    /// The registry username (template: `{project}`, `{access}`).
    pub username: String,
    /// The NAME of the worker secret holding the token (template: `{PROJECT}` and
    /// `{ACCESS}`, upper case with `.`/`-` as `_`), e.g. `REGISTRY_TOKEN_{PROJECT}_{ACCESS}`.
    pub secret: String,
}

/// `my-app` → `MY_APP` (`.`, `-` → `_`): worker secret names are upper-case identifiers.
/// `my-app`, `my.app` and `my_app` share a name: docs/static-tokens.md says so.
fn secret_part(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '.' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

impl StaticConfig {
    /// The worker secret holding the token for (project, access).
    pub fn secret_name(&self, project: &ProjectName, access: Access) -> String {
        self.secret
            .replace("{PROJECT}", &secret_part(project.as_str()))
            .replace("{ACCESS}", &secret_part(access.as_str()))
    }
}

impl ProviderConfig for StaticConfig {
    const KIND: &'static str = "static";

    fn parse(map: Map<String, Value>) -> Result<Self, ConfigError> {
        let mut f = Fields::new("registry", map);
        let config = StaticConfig {
            registry_url: f.string("registry_url")?,
            namespace: f.string_or("namespace", "")?,
            username: f.string("username")?,
            secret: f.string("secret")?,
        };
        f.finish()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate_location(&self.registry_url, &self.namespace)?;
        super::validate_template("registry.username", &self.username, false)?;
        if self.username.is_empty() {
            return Err(ConfigError::key("registry.username", "must not be empty"));
        }
        // One token per (project, access): a name without both would hand one project's
        // token to another, or a push token to a pull request.
        let rest = self.secret.replace("{PROJECT}", "").replace("{ACCESS}", "");
        let ok = self.secret.contains("{PROJECT}")
            && self.secret.contains("{ACCESS}")
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(ConfigError::key(
                "registry.secret",
                "must be an upper-case secret name containing `{PROJECT}` and `{ACCESS}`, e.g. `REGISTRY_TOKEN_{PROJECT}_{ACCESS}`",
            ));
        }
        Ok(())
    }

    fn build(
        &self,
        _services: &Services,
        _secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError> {
        // Which secrets exist depends on the projects, known only per request.
        Ok(Box::new(StaticProvider {
            config: self.clone(),
        }))
    }
}

impl From<StaticConfig> for RegistryConfig {
    fn from(config: StaticConfig) -> Self {
        RegistryConfig::Static(config)
    }
}

pub struct StaticProvider {
    config: StaticConfig,
}

#[async_trait(?Send)]
impl RegistryProvider for StaticProvider {
    fn kind(&self) -> &'static str {
        StaticConfig::KIND
    }

    fn worst_case_ms(&self) -> u64 {
        0 // no upstream call
    }

    async fn credentials(
        &self,
        request: &CredentialRequest<'_>,
        ctx: &Context<'_>,
        _trace: &mut UpstreamTrace,
    ) -> Result<RegistryCredentials, ProviderError> {
        let c = &self.config;
        let name = c.secret_name(request.project, request.access);
        let password = ctx
            .secrets
            .get(&name)
            .filter(|s| !s.expose().trim().is_empty())
            .ok_or_else(|| ProviderError::Misconfigured(ConfigError::missing_secret(&name)))?;
        Ok(RegistryCredentials {
            registry_url: c.registry_url.clone(),
            username: super::fill(&c.username, request.project, request.access),
            password,
            expires_at_ms: None,
            repository: namespaced(&c.namespace, request.project),
            auth_method: AuthMethod::LoginCredentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_per_project_and_access() {
        let c = StaticConfig {
            registry_url: "ghcr.io".into(),
            namespace: "my-org".into(),
            username: "ci-{project}".into(),
            secret: "REGISTRY_TOKEN_{PROJECT}_{ACCESS}".into(),
        };
        assert!(c.validate().is_ok());
        let p = ProjectName::parse("my-app.web").unwrap();
        assert_eq!(
            c.secret_name(&p, Access::Pull),
            "REGISTRY_TOKEN_MY_APP_WEB_PULL"
        );
        for bad in [
            "REGISTRY_TOKEN_{PROJECT}",
            "REGISTRY_TOKEN_{ACCESS}",
            "registry_{PROJECT}_{ACCESS}",
            "TOKEN_{project}_{ACCESS}",
        ] {
            let c = StaticConfig {
                secret: bad.into(),
                ..c.clone()
            };
            assert!(c.validate().is_err(), "{bad}");
        }
    }
}
