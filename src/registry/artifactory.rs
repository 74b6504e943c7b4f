//! JFrog Artifactory, keyless through the platform's OIDC integration: the broker's own
//! token is exchanged at `POST {url}/access/api/v1/oidc/token` (JSON token exchange),
//! and an identity mapping of the integration turns its subject into a user or group
//! whose permission target covers one Docker repository (PROVIDERS.md §3).
//!
//! Choices where JFrog's documentation is unconfirmed (docs/artifactory.md): the token is
//! signed RS256 (the accepted algorithms are not documented; RS256 is what every OIDC
//! relying party takes); no `Authorization` header is sent (JFrog's own setup-jfrog-cli
//! sends none; the REST page's samples disagree); the docker username is the user part
//! of the returned token's `sub` (JFrog refuses any other name), by setup-jfrog-cli's
//! rule.

use std::rc::Rc;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::federation::{self, jwt_claims};
use super::{
    fill, validate_location, validate_template, AuthMethod, CredentialRequest, Fields,
    ProviderConfig, ProviderError, RegistryConfig, RegistryCredentials, RegistryProvider, Services,
    UpstreamTrace,
};
use crate::config_support::base_url;
use crate::error::ConfigError;
use crate::oidc::TokenIssuer;
use crate::runtime::{Context, OutboundRequest, OutboundResponse};
use crate::secrets::{SecretString, Secrets};
use crate::signer::KeyFamily;
use crate::upstream::call;
use crate::upstream::{
    json_error, json_request, json_token, reported_expiry, ErrorAnswer, Step, UpstreamError,
};

const EXCHANGE: Step = Step::new("JFrog", "OIDC token exchange");
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// `[registry]` with `type = "artifactory"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactoryConfig {
    /// The JFrog platform's base URL, e.g. `https://mycompany.jfrog.io`.
    pub url: String,
    /// The OIDC integration's name.
    pub provider_name: String,
    /// The Docker registry host, e.g. `mycompany.jfrog.io`.
    pub registry_url: String,
    /// Repository path in the registry (template, default `docker-local/{project}`).
    pub repository: String,
    /// Force one identity mapping (template), e.g. `rise-{project}-{access}`.
    pub identity_mapping: Option<String>,
    /// `aud` of the minted token (default: `url`).
    pub audience: Option<String>,
    pub timeout_ms: u64,
    pub max_attempts: u64,
}

impl ProviderConfig for ArtifactoryConfig {
    const KIND: &'static str = "artifactory";

    fn parse(map: Map<String, Value>) -> Result<Self, ConfigError> {
        let mut f = Fields::new("registry", map);
        let config = ArtifactoryConfig {
            url: f.string("url")?,
            provider_name: f.string("provider_name")?,
            registry_url: f.string("registry_url")?,
            repository: f.string_or("repository", "docker-local/{project}")?,
            identity_mapping: f.opt_string("identity_mapping")?,
            audience: f.opt_string("audience")?,
            timeout_ms: f.u64_or("timeout_ms", 5_000)?,
            max_attempts: f.u64_or("max_attempts", 3)?,
        };
        f.finish()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        base_url("registry.url", &self.url)?;
        let name_ok = !self.provider_name.is_empty()
            && self
                .provider_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            return Err(ConfigError::key(
                "registry.provider_name",
                "must be the OIDC integration's name (letters, digits, `-`, `_`, `.`)",
            ));
        }
        validate_location(&self.registry_url, "")?;
        validate_template("registry.repository", &self.repository, true)?;
        if let Some(mapping) = &self.identity_mapping {
            validate_template("registry.identity_mapping", mapping, true)?;
        }
        crate::upstream::validate_limits(self.timeout_ms, self.max_attempts)?;
        Ok(())
    }

    fn build(
        &self,
        services: &Services,
        _secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError> {
        let oidc = federation::issuer(services, KeyFamily::Rsa, Self::KIND)?;
        let url = base_url("registry.url", &self.url)?;
        Ok(Box::new(ArtifactoryProvider {
            endpoint: format!("{url}/access/api/v1/oidc/token"),
            audience: self.audience.clone().unwrap_or(url),
            config: self.clone(),
            oidc,
        }))
    }
}

impl From<ArtifactoryConfig> for RegistryConfig {
    fn from(config: ArtifactoryConfig) -> Self {
        RegistryConfig::Artifactory(config)
    }
}

/// The token exchange body setup-jfrog-cli sends, without its GitHub-only fields.
pub fn exchange_request(
    endpoint: &str,
    provider_name: &str,
    identity_mapping: Option<&str>,
    subject_token: &SecretString,
    timeout_ms: u64,
) -> OutboundRequest {
    let mut body = json!({
        "grant_type": GRANT_TYPE,
        "subject_token_type": SUBJECT_TOKEN_TYPE,
        "subject_token": subject_token.expose(),
        "provider_name": provider_name,
    });
    if let Some(mapping) = identity_mapping {
        body["identity_mapping_name"] = mapping.into();
    }
    // No `Authorization`: JFrog's own client (setup-jfrog-cli) sends none.
    json_request(
        "POST",
        endpoint.to_owned(),
        None,
        Some(&body),
        timeout_ms,
        &[],
    )
}

/// JFrog's answer: the access token, the docker username (see [`docker_username`]) and
/// when it expires (`expires_in`, else the token's `exp`).
pub fn parse_exchange_response(body: &[u8], now_ms: u64) -> Option<(SecretString, String, u64)> {
    let token = json_token(body, "access_token")?;
    let claims = jwt_claims(token.expose())?;
    let username = docker_username(claims.get("sub")?.as_str()?)?;
    let value: Value = serde_json::from_slice(body).ok()?;
    let expires_at_ms = match value.get("expires_in").and_then(Value::as_u64) {
        Some(seconds) => now_ms.checked_add(seconds.checked_mul(1000)?)?,
        None => claims.get("exp")?.as_u64()?.checked_mul(1000)?,
    };
    Some((token, username, expires_at_ms))
}

/// setup-jfrog-cli's `extractTokenUser`: for `jfac@…/users/alice` or `jfrt@…/alice` the
/// part after the last `/`, otherwise the whole `sub`. `None` when empty or not a
/// printable name.
pub fn docker_username(sub: &str) -> Option<String> {
    let user = if sub.starts_with("jfrt@") || sub.contains("/users/") {
        sub.rsplit('/').next().unwrap_or_default()
    } else {
        sub
    };
    let ok = !user.is_empty() && user.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| user.to_owned())
}

fn jfrog_error(response: &OutboundResponse) -> ErrorAnswer {
    json_error(response, None)
}

pub struct ArtifactoryProvider {
    config: ArtifactoryConfig,
    oidc: Rc<TokenIssuer>,
    endpoint: String,
    audience: String,
}

#[async_trait(?Send)]
impl RegistryProvider for ArtifactoryProvider {
    fn kind(&self) -> &'static str {
        ArtifactoryConfig::KIND
    }

    fn worst_case_ms(&self) -> u64 {
        let c = &self.config;
        crate::upstream::worst_case_ms(1, c.max_attempts, c.timeout_ms)
    }

    async fn credentials(
        &self,
        request: &CredentialRequest<'_>,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<RegistryCredentials, ProviderError> {
        let c = &self.config;
        let token = federation::plain_subject_token(
            &self.oidc,
            &self.audience,
            KeyFamily::Rsa,
            request,
            ctx.now_ms,
        )
        .await;
        let mapping = c
            .identity_mapping
            .as_deref()
            .map(|m| fill(m, request.project, request.access));
        let outbound = exchange_request(
            &self.endpoint,
            &c.provider_name,
            mapping.as_deref(),
            &token,
            c.timeout_ms,
        );
        let (response, attempts) =
            call(EXCHANGE, c.max_attempts, jfrog_error, outbound, ctx, trace).await?;
        let (password, username, expires_at_ms) =
            parse_exchange_response(&response.body, ctx.clock.now_ms())
                .ok_or_else(|| UpstreamError::unusable(EXCHANGE, attempts, "UnreadableResponse"))?;
        let expires_at = reported_expiry(expires_at_ms, ctx.clock.now_ms(), EXCHANGE)?;
        Ok(RegistryCredentials {
            registry_url: c.registry_url.clone(),
            username,
            password,
            expires_at_ms: Some(expires_at),
            repository: fill(&c.repository, request.project, request.access),
            auth_method: AuthMethod::LoginCredentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_usernames_follow_setup_jfrog_cli() {
        assert_eq!(
            docker_username("jfac@01abc/users/rise-my-app-push").as_deref(),
            Some("rise-my-app-push")
        );
        assert_eq!(
            docker_username("jfrt@01abc/alice").as_deref(),
            Some("alice")
        );
        assert_eq!(
            docker_username("broker/mapping").as_deref(),
            Some("broker/mapping")
        );
        assert_eq!(docker_username("jfac@x/users/"), None);
        assert_eq!(docker_username("a b"), None);
    }
}
