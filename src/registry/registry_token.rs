//! The registry token provider: the broker as a Docker registry token server, so a
//! project's credentials push to that project's repository and nowhere else — on any
//! registry that implements distribution's token authentication.
//!
//! `/registry/credentials` answers a *login secret*: a JWT the broker signs (with the
//! `[oidc]` key) bound to the caller, the project, the access level and the token endpoint
//! (`aud` = `{issuer}/registry/token`), valid `login_seconds`. A client logs in to the
//! registry with it (`docker login -u <username> --password-stdin`). The registry sends
//! the client to `GET /registry/token?service=…&scope=…` with those Basic credentials;
//! the broker checks the secret and answers a registry token whose `access` claim is the
//! intersection of what was asked with the project's repository (`pull` only for pull
//! secrets), signed by the same key, with the certificate chain in `x5c` when configured
//! (distribution 2.x verifies tokens by that chain to its `rootcertbundle`).

use std::rc::Rc;

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use super::{
    namespaced, validate_location, AuthMethod, CredentialRequest, ProviderConfig, ProviderError,
    RegistryConfig, RegistryCredentials, RegistryProvider, Services, TokenGrant, TokenRefusal,
    TokenServer, UpstreamTrace,
};
use crate::auth::{AuthConfig, AuthError, IssuerConfig, Verifier};
use crate::config_support::in_range;
use crate::error::{ConfigError, ErrorCode, PublicError, PublicFailure};
use crate::oidc::{Mint, TokenIssuer};
use crate::project::{Access, ProjectName};
use crate::runtime::Context;
use crate::secrets::{MapSecrets, Secrets};
use crate::signer::KeyFamily;

/// `[registry]` with `type = "registry_token"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTokenConfig {
    /// Registry host[:port] clients push to.
    pub registry_url: String,
    /// Repository = `{namespace}/{project}`.
    pub namespace: String,
    /// The registry's `auth.token.service`: `aud` of the registry tokens.
    pub service: String,
    /// Registry token lifetime (60–3600 s).
    pub token_seconds: u64,
    /// Lifetime of the login secret `/registry/credentials` returns (300–43200 s).
    pub login_seconds: u64,
    /// NAME of a worker secret holding the PEM certificate chain of the signing key
    /// (leaf first), sent as `x5c`.
    pub certificate_chain: Option<String>,
}

impl ProviderConfig for RegistryTokenConfig {
    const KIND: &'static str = "registry_token";

    fn parse(map: serde_json::Map<String, serde_json::Value>) -> Result<Self, ConfigError> {
        let mut f = crate::config_support::Fields::new("registry", map);
        let config = RegistryTokenConfig {
            registry_url: f.string("registry_url")?,
            namespace: f.string_or("namespace", "")?,
            service: f.string("service")?,
            token_seconds: f.u64_or("token_seconds", 300)?,
            login_seconds: f.u64_or("login_seconds", 3600)?,
            certificate_chain: f.opt_string("certificate_chain")?,
        };
        f.finish()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate_location(&self.registry_url, &self.namespace)?;
        let service_ok = !self.service.is_empty()
            && self.service.len() <= 255
            && self
                .service
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b','));
        if !service_ok {
            return Err(ConfigError::key(
                "registry.service",
                "must be 1–255 printable characters without quotes, backslashes or commas",
            ));
        }
        in_range("registry.token_seconds", self.token_seconds, 60..=3600)?;
        in_range("registry.login_seconds", self.login_seconds, 300..=43_200)?;
        Ok(())
    }

    fn build(
        &self,
        services: &Services,
        secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError> {
        let oidc = services.oidc.clone().ok_or_else(|| {
            ConfigError::key(
                "registry.type",
                "is `registry_token`, which needs the [oidc] section (its key signs the tokens)",
            )
        })?;
        let login_audience = format!("{}{TOKEN_PATH}", oidc.issuer());
        if self.service == login_audience {
            // A registry token must never double as a login secret.
            return Err(ConfigError::key(
                "registry.service",
                "must differ from the broker's token endpoint URL",
            ));
        }
        let x5c = match &self.certificate_chain {
            Some(name) => Some(certificate_chain(name, secrets, &oidc)?),
            None => None,
        };
        let login_verifier = login_verifier(&oidc, &login_audience)?;
        Ok(Box::new(RegistryTokenProvider {
            config: self.clone(),
            oidc,
            login_audience,
            login_verifier,
            x5c,
        }))
    }
}

impl From<RegistryTokenConfig> for RegistryConfig {
    fn from(config: RegistryTokenConfig) -> Self {
        RegistryConfig::RegistryToken(config)
    }
}

/// The route the registry's `auth.token.realm` points at.
pub const TOKEN_PATH: &str = "/registry/token";
/// Claim of the login secret holding what it may be exchanged for.
const GRANT_CLAIM: &str = "urn:rise:registry";
/// Scopes accepted in one token request.
const MAX_SCOPES: usize = 16;
/// Longest repository name distribution accepts.
const MAX_NAME_LEN: usize = 255;

/// The PEM chain in secret `name`, as `x5c` (standard base64 DER, leaf first). Its leaf
/// must carry the current signing key, or every token would be refused by the registry.
fn certificate_chain(
    name: &str,
    secrets: &dyn Secrets,
    oidc: &TokenIssuer,
) -> Result<Vec<String>, ConfigError> {
    let bad = |reason| ConfigError::Secret {
        name: name.to_owned(),
        reason,
    };
    let pem = secrets
        .get(name)
        .ok_or_else(|| ConfigError::missing_secret(name))?;
    let mut chain = Vec::new();
    let mut rest = pem.expose();
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = body
            .find("-----END CERTIFICATE-----")
            .ok_or_else(|| bad("holds an unterminated certificate"))?;
        let b64: String = body[..end].split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .map_err(|_| bad("holds a certificate that is not base64"))?;
        chain.push(base64::engine::general_purpose::STANDARD.encode(der));
        rest = &body[end..];
    }
    let leaf = chain
        .first()
        .ok_or_else(|| bad("holds no PEM certificate"))?;
    let leaf_der = base64::engine::general_purpose::STANDARD
        .decode(leaf)
        .expect("just encoded");
    // The leaf's SubjectPublicKeyInfo is the signing key's, byte for byte.
    let spki = oidc.signer().current().public_key_der();
    if !leaf_der.windows(spki.len()).any(|w| w == spki.as_slice()) {
        return Err(bad(
            "holds a certificate for another key than the first [oidc] signing key",
        ));
    }
    Ok(chain)
}

/// A verifier for login secrets: the broker's own issuer and keys, the token endpoint as
/// audience — the same checks as any bearer token (algorithm from the key, `exp`, …).
fn login_verifier(oidc: &TokenIssuer, audience: &str) -> Result<Verifier, ConfigError> {
    let auth = AuthConfig {
        issuers: vec![IssuerConfig {
            issuer: oidc.issuer().to_owned(),
            audience: audience.to_owned(),
            hs256_secret: None,
            jwks: Some(oidc.jwks()),
            jwks_url: None,
            discovery: false,
            claims_grant_access: Some(false),
            owner_claims: None,
        }],
        ..AuthConfig::default()
    };
    Verifier::from_config(&auth, &MapSecrets::default())
}

pub struct RegistryTokenProvider {
    config: RegistryTokenConfig,
    oidc: Rc<TokenIssuer>,
    /// `{issuer}/registry/token`: the login secret's `aud`.
    login_audience: String,
    login_verifier: Verifier,
    x5c: Option<Vec<String>>,
}

/// What a login secret may be exchanged for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LoginGrant {
    project: String,
    access: String,
}

#[derive(Serialize)]
struct X5cHeader<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<&'a [String]>,
}

#[async_trait(?Send)]
impl RegistryProvider for RegistryTokenProvider {
    fn kind(&self) -> &'static str {
        RegistryTokenConfig::KIND
    }

    fn worst_case_ms(&self) -> u64 {
        0 // no upstream call
    }

    /// The login secret names its caller: never handed to another one from a cache.
    fn cacheable(&self) -> bool {
        false
    }

    fn token_server(&self) -> Option<&dyn TokenServer> {
        Some(self)
    }

    async fn credentials(
        &self,
        request: &CredentialRequest<'_>,
        ctx: &Context<'_>,
        _trace: &mut UpstreamTrace,
    ) -> Result<RegistryCredentials, ProviderError> {
        let identity = request.caller.audit_identity();
        let mut extra = Map::new();
        let grant = LoginGrant {
            project: request.project.to_string(),
            access: request.access.as_str().to_owned(),
        };
        extra.insert(GRANT_CLAIM.into(), json!(grant));
        let password = self
            .oidc
            .mint(
                Mint {
                    audience: &self.login_audience,
                    subject: &identity,
                    lifetime_seconds: self.config.login_seconds,
                    extra,
                    header: jwt_compact::Header::empty(),
                    family: KeyFamily::Any,
                },
                ctx.now_ms,
            )
            .await;
        Ok(RegistryCredentials {
            registry_url: self.config.registry_url.clone(),
            username: identity,
            password,
            expires_at_ms: Some(ctx.now_ms + self.config.login_seconds * 1000),
            repository: namespaced(&self.config.namespace, request.project),
            auth_method: AuthMethod::LoginCredentials,
        })
    }
}

/// Why a token request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    MissingCredentials,
    BadCredentials(&'static str),
    Expired,
    WrongService,
    BadScope(&'static str),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::MissingCredentials => f.write_str("no Basic credentials"),
            TokenError::BadCredentials(why) => write!(f, "bad login secret: {why}"),
            TokenError::Expired => f.write_str("login secret expired"),
            TokenError::WrongService => f.write_str("service is not this registry's"),
            TokenError::BadScope(why) => write!(f, "bad scope: {why}"),
        }
    }
}

impl PublicError for TokenError {
    fn public(&self) -> PublicFailure {
        const CHALLENGE: &str = "Basic realm=\"rise-registry\"";
        match self {
            TokenError::MissingCredentials => PublicFailure::new(
                ErrorCode::MissingToken,
                "Basic credentials from /registry/credentials are required",
            )
            .with_header("www-authenticate", CHALLENGE),
            TokenError::BadCredentials(_) => {
                PublicFailure::new(ErrorCode::InvalidToken, "the login secret is not valid")
                    .with_header("www-authenticate", CHALLENGE)
            }
            TokenError::Expired => {
                PublicFailure::new(ErrorCode::TokenExpired, "the login secret has expired")
                    .with_header("www-authenticate", CHALLENGE)
            }
            TokenError::WrongService => PublicFailure::new(
                ErrorCode::InvalidService,
                "`service` must be this registry's service name",
            ),
            TokenError::BadScope(_) => PublicFailure::new(
                ErrorCode::InvalidScope,
                "`scope` must be `type:name:actions` (at most 16 of them)",
            ),
        }
    }
}

#[async_trait(?Send)]
impl TokenServer for RegistryTokenProvider {
    async fn token(
        &self,
        authorization: Option<&str>,
        query: Option<&str>,
        ctx: &Context<'_>,
    ) -> Result<TokenGrant, TokenRefusal> {
        let refuse = |error: TokenError, subject: Option<String>| TokenRefusal {
            public: error.public(),
            reason: error.to_string(),
            subject,
        };
        let (service, scopes) = parse_token_query(query).map_err(|e| refuse(e, None))?;
        let (username, password) = basic_credentials(authorization).map_err(|e| refuse(e, None))?;
        let caller = self
            .login_verifier
            .verify_uncached(&password, ctx.now_ms, ctx.http)
            .await
            .map_err(|e| match e {
                AuthError::Expired => refuse(TokenError::Expired, None),
                AuthError::InvalidToken(why) => refuse(TokenError::BadCredentials(why), None),
                _ => refuse(TokenError::BadCredentials("unverifiable"), None),
            })?;
        let subject = caller.subject().to_owned();
        if username != subject {
            return Err(refuse(
                TokenError::BadCredentials("username is not the secret's subject"),
                Some(subject),
            ));
        }
        let grant: LoginGrant = caller
            .claim(GRANT_CLAIM)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .ok_or_else(|| {
                refuse(
                    TokenError::BadCredentials("not a login secret"),
                    Some(subject.clone()),
                )
            })?;
        let (project, access) = match (
            ProjectName::parse(&grant.project),
            Access::parse(Some(&grant.access)),
        ) {
            (Ok(project), Ok(access)) => (project, access),
            _ => {
                return Err(refuse(
                    TokenError::BadCredentials("unusable grant"),
                    Some(subject),
                ))
            }
        };
        if service != self.config.service {
            return Err(refuse(TokenError::WrongService, Some(subject)));
        }
        let repository = namespaced(&self.config.namespace, &project);
        let access_claim = grant_scopes(&scopes, &repository, access);
        let granted = access_claim
            .iter()
            .map(|a| format!("{}:{}:{}", a.kind, a.name, a.actions.join(",")))
            .collect();
        let mut extra = Map::new();
        extra.insert("access".into(), json!(access_claim));
        let header = jwt_compact::Header::new(X5cHeader {
            x5c: self.x5c.as_deref(),
        });
        let token = self
            .oidc
            .mint(
                Mint {
                    audience: &self.config.service,
                    subject: &subject,
                    lifetime_seconds: self.config.token_seconds,
                    extra,
                    header,
                    // The registry trusts the certificate of the first key (`x5c`).
                    family: KeyFamily::Any,
                },
                ctx.now_ms,
            )
            .await;
        let issued_at = chrono::DateTime::from_timestamp_millis(ctx.now_ms as i64)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        Ok(TokenGrant {
            body: json!({
                "token": token.expose(),
                "access_token": token.expose(),
                "expires_in": self.config.token_seconds,
                "issued_at": issued_at,
            }),
            subject,
            project,
            access,
            granted,
        })
    }
}

/// `Authorization: Basic base64(username:password)` → (username, password).
fn basic_credentials(header: Option<&str>) -> Result<(String, String), TokenError> {
    let header = header.ok_or(TokenError::MissingCredentials)?.trim();
    let (scheme, encoded) = header
        .split_once(' ')
        .ok_or(TokenError::MissingCredentials)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(TokenError::MissingCredentials);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| TokenError::BadCredentials("not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| TokenError::BadCredentials("not UTF-8"))?;
    let (user, pass) = text
        .split_once(':')
        .ok_or(TokenError::BadCredentials("no `:`"))?;
    Ok((user.to_owned(), pass.to_owned()))
}

/// One parsed `scope` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `repository`, `registry`, … (a `(class)` suffix is kept, e.g. `repository(plugin)`).
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// `type:name:actions`. The name may hold `/` and a `host:port/` prefix, so the type ends
/// at the first `:` and the actions start after the last one.
pub fn parse_scope(raw: &str) -> Result<Scope, TokenError> {
    if raw.len() > MAX_NAME_LEN + 64 {
        return Err(TokenError::BadScope("too long"));
    }
    let (kind, rest) = raw.split_once(':').ok_or(TokenError::BadScope("no `:`"))?;
    let (name, actions) = rest
        .rsplit_once(':')
        .ok_or(TokenError::BadScope("no actions"))?;
    let kind_ok = !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'(' | b')' | b'_' | b'-'));
    if !kind_ok {
        return Err(TokenError::BadScope("bad resource type"));
    }
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(TokenError::BadScope("bad name length"));
    }
    let name_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b));
    if !name_ok || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(TokenError::BadScope("bad name"));
    }
    let actions: Vec<String> = actions
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    let actions_ok = actions
        .iter()
        .all(|a| a == "*" || (a.len() <= 32 && a.bytes().all(|b| b.is_ascii_lowercase())));
    if actions.is_empty() || !actions_ok {
        return Err(TokenError::BadScope("bad actions"));
    }
    Ok(Scope {
        kind: kind.to_owned(),
        name: name.to_owned(),
        actions,
    })
}

/// `service` (exactly once) and every `scope` (at most [`MAX_SCOPES`]) from the query.
/// Unknown parameters (`account`, `client_id`, `offline_token`) are ignored: refresh
/// tokens are not issued.
pub fn parse_token_query(query: Option<&str>) -> Result<(String, Vec<Scope>), TokenError> {
    let mut service = None;
    let mut scopes = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "service" if service.is_some() => return Err(TokenError::WrongService),
            "service" => service = Some(value.into_owned()),
            "scope" => {
                // A client may put several space-separated scopes in one parameter.
                for one in value.split(' ').filter(|s| !s.is_empty()) {
                    if scopes.len() == MAX_SCOPES {
                        return Err(TokenError::BadScope("too many"));
                    }
                    scopes.push(parse_scope(one)?);
                }
            }
            _ => {}
        }
    }
    Ok((service.ok_or(TokenError::WrongService)?, scopes))
}

/// One entry of the registry token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantedAccess {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// What was asked ∩ what the login secret allows: only `repository:{repository}`, with
/// `pull` (and `push` for a push secret); `*` asks for all of those. Everything else is
/// left out, as the specification says, rather than refused. Repeated scopes merge.
pub fn grant_scopes(scopes: &[Scope], repository: &str, access: Access) -> Vec<GrantedAccess> {
    let allowed: &[&str] = match access {
        Access::Push => &["pull", "push"],
        Access::Pull => &["pull"],
    };
    let mut actions: Vec<String> = Vec::new();
    for scope in scopes
        .iter()
        .filter(|s| s.kind == "repository" && s.name == repository)
    {
        for action in allowed {
            let asked = scope.actions.iter().any(|a| a == action || a == "*");
            if asked && !actions.iter().any(|a| a == action) {
                actions.push((*action).to_owned());
            }
        }
    }
    if actions.is_empty() {
        return Vec::new();
    }
    actions.sort();
    vec![GrantedAccess {
        kind: "repository".into(),
        name: repository.to_owned(),
        actions,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(kind: &str, name: &str, actions: &[&str]) -> Scope {
        Scope {
            kind: kind.into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn scope_parsing_table() {
        let long = "a".repeat(MAX_NAME_LEN);
        let too_long = "a".repeat(MAX_NAME_LEN + 1);
        let ok = [
            (
                "repository:rise-apps/my-app:pull,push",
                scope("repository", "rise-apps/my-app", &["pull", "push"]),
            ),
            (
                "repository:my-app:pull",
                scope("repository", "my-app", &["pull"]),
            ),
            (
                "repository:a/b/c/d:*",
                scope("repository", "a/b/c/d", &["*"]),
            ),
            (
                "repository:registry.example.com:5000/ns/app:pull",
                scope("repository", "registry.example.com:5000/ns/app", &["pull"]),
            ),
            (
                "repository(plugin):ns/p:pull",
                scope("repository(plugin)", "ns/p", &["pull"]),
            ),
            ("registry:catalog:*", scope("registry", "catalog", &["*"])),
            (
                "repository:x:pull,,push",
                scope("repository", "x", &["pull", "push"]),
            ),
            ("repository:x:delete", scope("repository", "x", &["delete"])),
        ];
        for (raw, want) in ok {
            assert_eq!(parse_scope(raw), Ok(want), "{raw}");
        }
        assert_eq!(
            parse_scope(&format!("repository:{long}:pull"))
                .unwrap()
                .name
                .len(),
            MAX_NAME_LEN
        );
        for raw in [
            "",
            "repository",
            "repository:name",
            ":name:pull",
            "repository::pull",
            "repository:name:",
            "repository:Name:pull",
            "repository:/abs:pull",
            "repository:a//b:pull",
            "repository:a/:pull",
            "repository:a b:pull",
            "repository:\"x\":pull",
            "repository:x:PULL",
            "repository:x:pull;rm",
            "repo sitory:x:pull",
            "repository:é:pull",
            &format!("repository:{too_long}:pull"),
        ] {
            assert!(parse_scope(raw).is_err(), "{raw:?} parsed");
        }
    }

    #[test]
    fn query_parsing_limits_and_repeats() {
        let (service, scopes) = parse_token_query(Some(
            "service=registry.test&scope=repository:a:pull&scope=repository:a:push&account=x&offline_token=true",
        ))
        .unwrap();
        assert_eq!(service, "registry.test");
        assert_eq!(scopes.len(), 2);
        let (_, spaced) = parse_token_query(Some(
            "service=s&scope=repository:a:pull%20repository:b:pull",
        ))
        .unwrap();
        assert_eq!(spaced.len(), 2);
        assert_eq!(
            parse_token_query(Some("scope=repository:a:pull")),
            Err(TokenError::WrongService)
        );
        assert_eq!(
            parse_token_query(Some("service=a&service=a")),
            Err(TokenError::WrongService)
        );
        let many: String = (0..17)
            .map(|i| format!("&scope=repository:a{i}:pull"))
            .collect();
        assert!(matches!(
            parse_token_query(Some(&format!("service=s{many}"))),
            Err(TokenError::BadScope("too many"))
        ));
        // No scope at all (a plain `docker login`): a token with an empty access list.
        assert_eq!(parse_token_query(Some("service=s")).unwrap().1, vec![]);
    }

    #[test]
    fn grants_are_the_intersection() {
        let repo = "rise-apps/my-app";
        let g = |scopes: &[Scope], access| -> Vec<(String, Vec<String>)> {
            grant_scopes(scopes, repo, access)
                .into_iter()
                .map(|a| (a.name, a.actions))
                .collect()
        };
        let both = vec![(repo.to_owned(), vec!["pull".to_owned(), "push".to_owned()])];
        let pull = vec![(repo.to_owned(), vec!["pull".to_owned()])];
        assert_eq!(
            g(
                &[scope("repository", repo, &["pull", "push"])],
                Access::Push
            ),
            both
        );
        assert_eq!(
            g(
                &[scope("repository", repo, &["push", "pull"])],
                Access::Pull
            ),
            pull
        );
        assert_eq!(g(&[scope("repository", repo, &["*"])], Access::Push), both);
        assert_eq!(g(&[scope("repository", repo, &["*"])], Access::Pull), pull);
        assert_eq!(
            g(&[scope("repository", repo, &["push"])], Access::Pull),
            vec![]
        );
        assert_eq!(
            g(&[scope("repository", repo, &["delete"])], Access::Push),
            vec![]
        );
        // Other repositories, prefixes, types: left out.
        for other in [
            scope("repository", "rise-apps/other", &["pull", "push"]),
            scope("repository", "rise-apps/my-app2", &["push"]),
            scope("repository", "rise-apps/my-app/sub", &["push"]),
            scope("repository", "rise-apps", &["push"]),
            scope("registry", "catalog", &["*"]),
            scope("repository(plugin)", repo, &["pull"]),
        ] {
            assert_eq!(
                g(std::slice::from_ref(&other), Access::Push),
                vec![],
                "{other:?}"
            );
        }
        // Repeats and a mix: merged, only ours.
        let mixed = [
            scope("repository", repo, &["pull"]),
            scope("repository", "rise-apps/other", &["push"]),
            scope("repository", repo, &["push", "pull"]),
        ];
        assert_eq!(g(&mixed, Access::Push), both);
    }
}
