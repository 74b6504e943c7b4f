//! Azure Container Registry, keyless: the broker's own token as an Entra client
//! assertion (workload identity federation) → an Entra access token for the identity of
//! this (project, access) → `POST /oauth2/exchange` → an ACR refresh token → with
//! `scope_to_repository`, `POST /oauth2/token` → an ACR access token for
//! `repository:{namespace/}{project}:pull[,push]` only.
//!
//! Scope, conservatively (PROVIDERS.md §2c): the identity itself should hold only its
//! repository (one identity per (project, access), ABAC repository condition); the
//! access-token narrowing is a second boundary, not the only one — whether an ACR access
//! token can be exchanged for wider scopes is UNCONFIRMED. So the config refuses the
//! combinations where narrowing would be the only boundary (see [`AcrConfig::validate`]).
//! Request shapes follow azure-identity's `ClientAssertionCredential` and
//! azure-containerregistry's exchange client, compared field by field in a test.

use std::rc::Rc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::federation::{self, jwt_expiry_ms};
use super::{
    namespaced, validate_location, AuthMethod, CredentialRequest, ProviderConfig, ProviderError,
    RegistryConfig, RegistryCredentials, RegistryProvider, Services, UpstreamTrace,
};
use crate::config_support::{base_url, Fields};
use crate::error::ConfigError;
use crate::oidc::TokenIssuer;
use crate::project::{Access, ProjectName};
use crate::runtime::{Context, OutboundRequest, OutboundResponse};
use crate::secrets::{SecretString, Secrets};
use crate::signer::KeyFamily;
use crate::upstream::call;
use crate::upstream::{
    form_post, json_error, json_token, reported_expiry, ErrorAnswer, Step, UpstreamError,
};

const ENTRA_TOKEN: Step = Step::new("Azure", "Entra client credentials");
const ACR_EXCHANGE: Step = Step::new("Azure", "ACR /oauth2/exchange");
const ACR_TOKEN: Step = Step::new("Azure", "ACR /oauth2/token");

/// Entra's audience for federated identity credentials (they accept exactly one).
pub const FEDERATION_AUDIENCE: &str = "api://AzureADTokenExchange";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// ACR-scoped Entra tokens (not ARM-scoped: a registry may accept only these).
const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";
/// The username that tells ACR the password is one of its own tokens.
pub const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";
/// Entra and ACR both answer with `x-ms-request-id`.
const RESPONSE_HEADERS: &[&str] = &["x-ms-request-id"];

/// The identities of one project: `push` (also serves pull unless `pull` is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIds {
    pub push: String,
    pub pull: Option<String>,
}

/// `[registry]` with `type = "acr"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcrConfig {
    /// The login server, e.g. `myregistry.azurecr.io`.
    pub registry_url: String,
    pub tenant_id: String,
    /// One identity (app or user-assigned managed identity) for every project.
    pub client_id: Option<String>,
    /// project → identities (a table: `{"my-app": {"push": "…", "pull": "…"}}`).
    pub client_ids: Option<Vec<(String, ClientIds)>>,
    /// Default `""`.
    pub namespace: String,
    /// Default `true`.
    pub scope_to_repository: bool,
    /// Base URL; default `https://login.microsoftonline.com`.
    pub authority: Option<String>,
    /// Base URL; default `https://{registry_url}`.
    pub acr_endpoint: Option<String>,
    pub timeout_ms: u64,
    pub max_attempts: u64,
}

/// `client_ids`: project → `{push, pull?}`, both strings; errors name the exact key.
fn client_ids(value: Value) -> Result<Vec<(String, ClientIds)>, ConfigError> {
    let wrong = |key: String| ConfigError::key(key, "has the wrong type or an invalid value");
    let Value::Object(map) = value else {
        return Err(wrong("registry.client_ids".into()));
    };
    map.into_iter()
        .map(|(project, ids)| {
            let key = format!("registry.client_ids.{project}");
            let Value::Object(ids) = ids else {
                return Err(wrong(key));
            };
            let mut f = Fields::new(key, ids);
            let ids = ClientIds {
                push: f.string("push")?,
                pull: f.opt_string("pull")?,
            };
            f.finish()?;
            Ok((project, ids))
        })
        .collect()
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex).
fn guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl ProviderConfig for AcrConfig {
    const KIND: &'static str = "acr";

    fn parse(map: Map<String, Value>) -> Result<Self, ConfigError> {
        let mut f = Fields::new("registry", map);
        let config = AcrConfig {
            registry_url: f.string("registry_url")?,
            tenant_id: f.string("tenant_id")?,
            client_id: f.opt_string("client_id")?,
            client_ids: f.take("client_ids").map(client_ids).transpose()?,
            namespace: f.string_or("namespace", "")?,
            scope_to_repository: f.bool_or("scope_to_repository", true)?,
            authority: f.opt_string("authority")?,
            acr_endpoint: f.opt_string("acr_endpoint")?,
            timeout_ms: f.u64_or("timeout_ms", 5_000)?,
            max_attempts: f.u64_or("max_attempts", 3)?,
        };
        f.finish()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate_location(&self.registry_url, &self.namespace)?;
        let tenant_ok = guid(&self.tenant_id)
            || (!self.tenant_id.is_empty()
                && self
                    .tenant_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
        if !tenant_ok {
            return Err(ConfigError::key(
                "registry.tenant_id",
                "must be a tenant GUID or domain",
            ));
        }
        let id = |key: String, value: &str| {
            if guid(value) {
                Ok(())
            } else {
                Err(ConfigError::key(key, "must be a client id (GUID)"))
            }
        };
        match (&self.client_id, &self.client_ids) {
            (Some(one), None) => {
                id("registry.client_id".into(), one)?;
                // One identity for every project: the access-token narrowing would be
                // the only thing keeping a project to its repository.
                if !self.scope_to_repository {
                    return Err(ConfigError::key(
                        "registry.scope_to_repository",
                        "must stay true with a single `client_id` (the refresh token would reach every repository the identity can)",
                    ));
                }
            }
            (None, Some(map)) => {
                if map.is_empty() {
                    return Err(ConfigError::key(
                        "registry.client_ids",
                        "must list at least one project",
                    ));
                }
                for (project, ids) in map {
                    if ProjectName::parse(project).is_err() {
                        return Err(ConfigError::key(
                            format!("registry.client_ids.{project}"),
                            "is not a valid project name",
                        ));
                    }
                    id(format!("registry.client_ids.{project}.push"), &ids.push)?;
                    match &ids.pull {
                        Some(pull) => id(format!("registry.client_ids.{project}.pull"), pull)?,
                        // The push identity serves pull only narrowed to `pull`.
                        None if !self.scope_to_repository => {
                            return Err(ConfigError::key(
                                format!("registry.client_ids.{project}.pull"),
                                "is required when scope_to_repository = false (a pull request would get the push identity's refresh token)",
                            ))
                        }
                        None => {}
                    }
                }
            }
            _ => {
                return Err(ConfigError::key(
                    "registry.client_id",
                    "set exactly one of `client_id` and `client_ids`",
                ))
            }
        }
        if let Some(url) = &self.authority {
            base_url("registry.authority", url)?;
        }
        if let Some(url) = &self.acr_endpoint {
            base_url("registry.acr_endpoint", url)?;
        }
        crate::upstream::validate_limits(self.timeout_ms, self.max_attempts)?;
        Ok(())
    }

    fn build(
        &self,
        services: &Services,
        _secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError> {
        // Entra: "Only issuers that provide tokens signed using the RS256 algorithm are
        // supported" — the first RSA key signs.
        let oidc = federation::issuer(services, KeyFamily::Rsa, Self::KIND)?;
        let authority = match &self.authority {
            Some(url) => base_url("registry.authority", url)?,
            None => "https://login.microsoftonline.com".into(),
        };
        let acr_endpoint = match &self.acr_endpoint {
            Some(url) => base_url("registry.acr_endpoint", url)?,
            None => format!("https://{}", self.registry_url),
        };
        Ok(Box::new(AcrProvider {
            token_endpoint: format!("{authority}/{}/oauth2/v2.0/token", self.tenant_id),
            acr_endpoint,
            config: self.clone(),
            oidc,
        }))
    }
}

impl From<AcrConfig> for RegistryConfig {
    fn from(config: AcrConfig) -> Self {
        RegistryConfig::Acr(config)
    }
}

impl AcrConfig {
    /// The identity for (project, access), or `None` when `client_ids` has no entry.
    pub fn client_id(&self, project: &ProjectName, access: Access) -> Option<&str> {
        if let Some(one) = &self.client_id {
            return Some(one);
        }
        let (_, ids) = self
            .client_ids
            .as_ref()?
            .iter()
            .find(|(p, _)| p == project.as_str())?;
        Some(match (access, &ids.pull) {
            (Access::Pull, Some(pull)) => pull,
            _ => &ids.push,
        })
    }

    /// `repository:{namespace/}{project}:pull` or `…:pull,push`.
    pub fn scope(&self, project: &ProjectName, access: Access) -> String {
        let actions = match access {
            Access::Push => "pull,push",
            Access::Pull => "pull",
        };
        format!(
            "repository:{}:{actions}",
            namespaced(&self.namespace, project)
        )
    }
}

/// Entra client credentials with the broker's token as the client assertion: the form
/// azure-identity's `ClientAssertionCredential` sends.
pub fn entra_request(
    token_endpoint: &str,
    client_id: &str,
    assertion: &SecretString,
    timeout_ms: u64,
) -> OutboundRequest {
    form_post(
        token_endpoint.to_owned(),
        &[
            ("client_assertion", assertion.expose()),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_id", client_id),
            ("grant_type", "client_credentials"),
            ("scope", ACR_SCOPE),
        ],
        timeout_ms,
        RESPONSE_HEADERS,
    )
}

/// `POST /oauth2/exchange` (Azure/acr `AAD-OAuth.md`): Entra access token → ACR refresh
/// token. No `api-version` query: the documented request has none.
pub fn exchange_request(
    acr_endpoint: &str,
    service: &str,
    tenant: &str,
    entra_token: &SecretString,
    timeout_ms: u64,
) -> OutboundRequest {
    form_post(
        format!("{acr_endpoint}/oauth2/exchange"),
        &[
            ("grant_type", "access_token"),
            ("service", service),
            ("tenant", tenant),
            ("access_token", entra_token.expose()),
        ],
        timeout_ms,
        RESPONSE_HEADERS,
    )
}

/// `POST /oauth2/token`: ACR refresh token → access token for exactly `scope`.
pub fn token_request(
    acr_endpoint: &str,
    service: &str,
    scope: &str,
    refresh_token: &SecretString,
    timeout_ms: u64,
) -> OutboundRequest {
    form_post(
        format!("{acr_endpoint}/oauth2/token"),
        &[
            ("service", service),
            ("scope", scope),
            ("refresh_token", refresh_token.expose()),
            ("grant_type", "refresh_token"),
        ],
        timeout_ms,
        RESPONSE_HEADERS,
    )
}

/// The token under `field` of an Entra or ACR answer.
pub fn parse_token(body: &[u8], field: &str) -> Option<SecretString> {
    json_token(body, field)
}

fn azure_error(response: &OutboundResponse) -> ErrorAnswer {
    json_error(response, Some("x-ms-request-id"))
}

/// Issues ACR credentials for one repository (see the module docs).
pub struct AcrProvider {
    config: AcrConfig,
    oidc: Rc<TokenIssuer>,
    token_endpoint: String,
    acr_endpoint: String,
}

impl AcrProvider {
    /// One call (with retries); the token under `field` of its answer.
    async fn token(
        &self,
        step: Step,
        field: &str,
        request: OutboundRequest,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<SecretString, UpstreamError> {
        let (response, attempts) = call(
            step,
            self.config.max_attempts,
            azure_error,
            request,
            ctx,
            trace,
        )
        .await?;
        trace.request_ids.extend(
            response
                .header("x-ms-request-id")
                .map(crate::upstream::log_safe),
        );
        parse_token(&response.body, field)
            .ok_or_else(|| UpstreamError::unusable(step, attempts, "UnreadableResponse"))
    }
}

#[async_trait(?Send)]
impl RegistryProvider for AcrProvider {
    fn kind(&self) -> &'static str {
        AcrConfig::KIND
    }

    fn worst_case_ms(&self) -> u64 {
        let c = &self.config;
        crate::upstream::worst_case_ms(
            2 + u64::from(self.config.scope_to_repository),
            c.max_attempts,
            c.timeout_ms,
        )
    }

    async fn credentials(
        &self,
        request: &CredentialRequest<'_>,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<RegistryCredentials, ProviderError> {
        let c = &self.config;
        let client_id =
            c.client_id(request.project, request.access)
                .ok_or(ProviderError::NotConfigured(
                    "no Azure identity is configured for this project (`client_ids`)",
                ))?;
        let assertion = federation::plain_subject_token(
            &self.oidc,
            FEDERATION_AUDIENCE,
            KeyFamily::Rsa,
            request,
            ctx.now_ms,
        )
        .await;
        let entra = entra_request(&self.token_endpoint, client_id, &assertion, c.timeout_ms);
        let entra_token = self
            .token(ENTRA_TOKEN, "access_token", entra, ctx, trace)
            .await?;
        let service = c.registry_url.as_str();
        let exchange = exchange_request(
            &self.acr_endpoint,
            service,
            &c.tenant_id,
            &entra_token,
            c.timeout_ms,
        );
        let refresh = self
            .token(ACR_EXCHANGE, "refresh_token", exchange, ctx, trace)
            .await?;
        let (password, step) = if c.scope_to_repository {
            let scope = c.scope(request.project, request.access);
            let narrow = token_request(&self.acr_endpoint, service, &scope, &refresh, c.timeout_ms);
            let access = self
                .token(ACR_TOKEN, "access_token", narrow, ctx, trace)
                .await?;
            (access, ACR_TOKEN)
        } else {
            (refresh, ACR_EXCHANGE)
        };
        let expires_at_ms = jwt_expiry_ms(password.expose())
            .ok_or_else(|| UpstreamError::unusable(step, 1, "NoExpiry"))?;
        let expires_at = reported_expiry(expires_at_ms, ctx.clock.now_ms(), step)?;
        Ok(RegistryCredentials {
            registry_url: c.registry_url.clone(),
            username: NULL_GUID.into(),
            password,
            expires_at_ms: Some(expires_at),
            repository: namespaced(&c.namespace, request.project),
            auth_method: AuthMethod::LoginCredentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_and_tokens() {
        assert!(guid("0f0e0d0c-0b0a-0908-0706-050403020100"));
        assert!(!guid("0f0e0d0c-0b0a-0908-0706-05040302010"));
        assert!(!guid("not-a-guid"));
        assert_eq!(
            parse_token(br#"{"refresh_token":"eyJ.x.y"}"#, "refresh_token")
                .unwrap()
                .expose(),
            "eyJ.x.y"
        );
        assert!(parse_token(br#"{"refresh_token":""}"#, "refresh_token").is_none());
        assert!(parse_token(br#"{"access_token":"a"}"#, "refresh_token").is_none());
        assert!(parse_token(b"<html>", "access_token").is_none());
    }
}
