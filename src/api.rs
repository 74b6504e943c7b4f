//! The HTTP surface: routes, query parsing and the order of checks.
//!
//! `GET /registry/credentials?project=P[&access=push|pull]`:
//! query (400) → config health (500) → bearer token (401) → authorization (403) →
//! provider (2xx / 5xx). `GET /health` reports status, provider and version.
//! Everything is IO-free except through [`RequestEnv`]; the shell supplies it.

use serde_json::{json, Value};

use crate::auth::{authorize, AuthError, VerifiedCaller, Verifier};
use crate::aws::retry::Sleeper;
use crate::cache::{CacheKey, CredentialCache, Lookup};
use crate::config::{Config, ConfigError};
use crate::error::{error_response, PublicError, RequestError};
use crate::http::{ApiRequest, ApiResponse, HttpClient};
use crate::project::{Access, ProjectName};
use crate::registry::{
    create_registry_provider, CredentialRequest, ProviderContext, ProviderError,
    RegistryCredentials, RegistryProvider,
};
use crate::secrets::Secrets;
use crate::singleflight::SingleFlight;
use std::hash::{Hash, Hasher};

/// Everything one request may use from the outside world.
pub struct RequestEnv<'a> {
    /// Milliseconds since the Unix epoch, read once per request by the shell.
    pub now_ms: u64,
    pub http: &'a dyn HttpClient,
    pub secrets: &'a dyn Secrets,
    pub sleeper: &'a dyn Sleeper,
}

/// A response plus the structured audit line to log for it (never holds a secret).
#[derive(Debug)]
pub struct Outcome {
    pub response: ApiResponse,
    pub audit: Option<Value>,
}

/// The configured broker: built once per isolate.
pub struct Broker {
    config: Config,
    verifier: Verifier,
    provider: Box<dyn RegistryProvider>,
    cache: CredentialCache,
    /// Concurrent misses on one key share one issuance.
    flight: SingleFlight<CacheKey, Result<RegistryCredentials, ProviderError>>,
    /// Fingerprint of the provider settings, part of every cache key.
    provider_fingerprint: u64,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("provider", &self.provider.kind())
            .finish()
    }
}

impl Broker {
    /// Builds the verifier and provider; secrets named by the config are read here.
    pub fn new(config: Config, secrets: &dyn Secrets) -> Result<Self, ConfigError> {
        let token_entries = if config.cache.enabled {
            config.cache.token_entries as usize
        } else {
            0
        };
        let verifier =
            Verifier::from_config(&config.auth, secrets)?.with_token_cache(token_entries);
        let provider = create_registry_provider(&config.registry);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}", config.registry).hash(&mut hasher);
        Ok(Broker {
            cache: CredentialCache::new(config.cache.clone()),
            flight: SingleFlight::new(),
            provider_fingerprint: hasher.finish(),
            config,
            verifier,
            provider,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Credentials currently cached (for tests and the benchmark).
    pub fn cached_credentials(&self) -> usize {
        self.cache.len()
    }
}

/// The `Allow` value of each route.
const ROUTES: &[(&str, &str)] = &[("/health", "GET"), ("/registry/credentials", "GET")];

/// Handles one request. `broker` is the start-up result: an error answers every known
/// route with 500 `misconfigured` (naming the key), never a half-configured service.
pub async fn respond(
    broker: Result<&Broker, &ConfigError>,
    request: &ApiRequest,
    env: &RequestEnv<'_>,
) -> Outcome {
    let Some((path, allow)) = ROUTES.iter().find(|(p, _)| *p == request.path) else {
        return plain(error_response(&RequestError::NotFound));
    };
    if request.method != "GET" {
        return plain(error_response(&RequestError::MethodNotAllowed { allow }));
    }
    match *path {
        "/health" => plain(match broker {
            Ok(b) => health(b),
            Err(e) => error_response(e),
        }),
        _ => credentials(broker, request, env).await,
    }
}

fn plain(response: ApiResponse) -> Outcome {
    Outcome {
        response,
        audit: None,
    }
}

fn health(broker: &Broker) -> ApiResponse {
    ApiResponse::json(
        200,
        &json!({
            "status": "ok",
            "provider": broker.provider.kind(),
            "version": env!("CARGO_PKG_VERSION"),
        }),
    )
}

/// `project` and `access` from the query; `project` must appear exactly once.
pub fn parse_query(query: Option<&str>) -> Result<(ProjectName, Access), RequestError> {
    let mut project = None;
    let mut access = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let slot = match key.as_ref() {
            "project" => &mut project,
            "access" => &mut access,
            _ => continue, // unknown parameters are ignored, for forward compatibility
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(match key.as_ref() {
                "project" => RequestError::InvalidProject("`project` given more than once"),
                _ => RequestError::InvalidAccess,
            });
        }
    }
    let project = ProjectName::parse(&project.ok_or(RequestError::MissingProject)?)?;
    let access = Access::parse(access.as_deref())?;
    Ok((project, access))
}

async fn credentials(
    broker: Result<&Broker, &ConfigError>,
    request: &ApiRequest,
    env: &RequestEnv<'_>,
) -> Outcome {
    let (project, access) = match parse_query(request.query.as_deref()) {
        Ok(parsed) => parsed,
        Err(e) => return plain(error_response(&e)),
    };
    let broker = match broker {
        Ok(b) => b,
        Err(e) => return plain(error_response(e)),
    };
    let mut audit = json!({
        "event": "registry_credentials",
        "project": project.as_str(),
        "access": access.as_str(),
        "provider": broker.provider.kind(),
    });
    let caller = match broker
        .verifier
        .verify_header(request.authorization.as_deref(), env.now_ms, env.http)
        .await
    {
        Ok(caller) => caller,
        Err(e) => return refused(audit, &e),
    };
    audit["sub"] = caller.audit_identity().into();
    audit["iss"] = caller.issuer().into();
    let result = issue(broker, &caller, &project, access, env, &mut audit).await;
    let response = match result {
        Ok(body) => {
            audit["outcome"] = "issued".into();
            ApiResponse::json(200, &body)
        }
        Err(failure) => {
            let public = failure.public();
            audit["outcome"] = "refused".into();
            audit["code"] = public.code.into();
            audit["reason"] = failure.to_string().into();
            error_response(&public)
        }
    };
    Outcome {
        response,
        audit: Some(audit),
    }
}

/// Authorization and the provider call, for a verified caller.
async fn issue(
    broker: &Broker,
    caller: &VerifiedCaller,
    project: &ProjectName,
    access: Access,
    env: &RequestEnv<'_>,
    audit: &mut Value,
) -> Result<Value, Box<dyn Failure>> {
    let claims_grant_access = broker
        .verifier
        .issuer_config(caller.issuer())
        .is_some_and(|i| i.claims_grant_access);
    let grant =
        authorize(&broker.config.auth, caller, claims_grant_access, project).map_err(boxed)?;
    audit["grant"] = grant.as_str().into();
    let ctx = ProviderContext {
        now_ms: env.now_ms,
        http: env.http,
        secrets: env.secrets,
        sleeper: env.sleeper,
    };
    let request = CredentialRequest {
        caller,
        project,
        access,
    };
    let credentials = cached_issue(broker, &request, &ctx, audit)
        .await
        .map_err(boxed)?;
    if let Some(expires_in) = credentials.expires_in {
        audit["expires_in"] = expires_in.into();
    }
    if !credentials.upstream_request_ids.is_empty() {
        audit["aws_request_ids"] = credentials.upstream_request_ids.clone().into();
    }
    audit["subrequests"] = credentials.subrequests.into();
    Ok(credentials.to_json())
}

/// How often a request waiting on another's issuance checks for the result.
const FOLLOWER_POLL_MS: u64 = 5;

/// Issues through the cache: a hit makes no upstream call; concurrent misses on one key
/// share one issuance (single-flight); a credential past its refresh point is refetched
/// and served only if that fails. Failures are never cached.
async fn cached_issue(
    broker: &Broker,
    request: &CredentialRequest<'_>,
    ctx: &ProviderContext<'_>,
    audit: &mut Value,
) -> Result<RegistryCredentials, ProviderError> {
    if !broker.config.cache.enabled {
        audit["cache"] = "off".into();
        return broker.provider.credentials(request, ctx).await;
    }
    let key = CacheKey {
        provider: broker.provider_fingerprint,
        project: request.project.to_string(),
        access: request.access,
    };
    let stale = match broker.cache.get(&key, ctx.now_ms) {
        Lookup::Hit(credentials) => {
            audit["cache"] = "hit".into();
            return Ok(credentials);
        }
        Lookup::Refresh(credentials) => Some(credentials),
        Lookup::Miss => None,
    };
    let mut led = false;
    let shared = broker
        .flight
        .run_polling(key.clone(), Some((ctx.sleeper, FOLLOWER_POLL_MS)), || {
            led = true;
            async {
                let result = broker.provider.credentials(request, ctx).await;
                if let Ok(credentials) = &result {
                    broker.cache.insert(key.clone(), credentials, ctx.now_ms);
                }
                result
            }
        })
        .await;
    // A leader dropped mid-flight (client went away) leaves followers to try themselves.
    let result = match shared {
        Ok(result) => result,
        Err(_) => broker.provider.credentials(request, ctx).await,
    };
    audit["cache"] = if led { "miss" } else { "hit" }.into();
    if !led {
        audit["shared"] = true.into();
    }
    // A follower made no upstream call: its audit line must not claim the leader's.
    let result = match result {
        Ok(mut credentials) if !led => {
            credentials.upstream_request_ids.clear();
            credentials.subrequests = 0;
            Ok(credentials)
        }
        other => other,
    };
    match (result, stale) {
        (Err(error), Some(stale)) => {
            audit["cache"] = "stale".into();
            audit["refresh_error"] = error.to_string().into();
            Ok(stale)
        }
        (result, _) => result,
    }
}

/// A failure that can be both shown (publicly) and logged (Display).
trait Failure: PublicError + std::fmt::Display {}
impl<T: PublicError + std::fmt::Display> Failure for T {}

fn boxed<E: Failure + 'static>(e: E) -> Box<dyn Failure> {
    Box::new(e)
}

fn refused(mut audit: Value, error: &AuthError) -> Outcome {
    let public = error.public();
    audit["outcome"] = "refused".into();
    audit["code"] = public.code.into();
    audit["reason"] = error.to_string().into();
    Outcome {
        response: error_response(error),
        audit: Some(audit),
    }
}
