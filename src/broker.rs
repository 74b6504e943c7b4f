//! Issuance: the configured broker (built once per isolate) and how a credential is
//! obtained for an authorized request — cache lookup, single-flight, refresh before
//! expiry and the stale fallback. `crate::api` decides *whether* to issue; this module
//! decides *how*.

use std::hash::{Hash, Hasher};
use std::rc::Rc;

use crate::audit::CacheStatus;
use crate::auth::Verifier;
use crate::cache::{CacheKey, CredentialCache, Lookup};
use crate::config::Config;
use crate::error::ConfigError;
use crate::oidc::TokenIssuer;
use crate::registry::{
    create_registry_provider, CredentialRequest, ProviderError, RegistryCredentials,
    RegistryProvider, Services, TokenServer, UpstreamTrace,
};
use crate::runtime::Context;
use crate::secrets::Secrets;
use crate::singleflight::{Abandoned, FlightOptions, SingleFlight};

/// How often a request waiting on another's issuance checks for the result.
const FOLLOWER_POLL_MS: u64 = 5;

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
    oidc: Option<Rc<TokenIssuer>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("provider", &self.provider.kind())
            .finish()
    }
}

/// One issuance's result, with what it cost beside it (for the audit line).
#[derive(Debug)]
pub struct Issued {
    pub result: Result<RegistryCredentials, ProviderError>,
    pub cache: CacheStatus,
    /// Served from another request's in-flight issuance.
    pub shared: bool,
    /// The upstream calls *this* request made (empty on a hit or when shared).
    pub trace: UpstreamTrace,
    /// Why the refresh failed when a stale credential was served.
    pub refresh_error: Option<String>,
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
        let oidc = match &config.oidc {
            Some(oidc) => Some(Rc::new(TokenIssuer::new(oidc, secrets)?)),
            None => None,
        };
        let services = Services { oidc: oidc.clone() };
        let provider = create_registry_provider(&config.registry, &services, secrets)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}", config.registry).hash(&mut hasher);
        Ok(Broker {
            cache: CredentialCache::new(config.cache.clone()),
            flight: SingleFlight::new(),
            provider_fingerprint: hasher.finish(),
            config,
            verifier,
            provider,
            oidc,
        })
    }

    /// Imports the configured keys into the runtime (the worker's WebCrypto) and checks
    /// each signing key pair: run once after [`Broker::new`], before serving, so a key
    /// the runtime refuses stops the broker naming its config key or secret.
    pub async fn prepare(&self) -> Result<(), ConfigError> {
        self.verifier.prepare().await?;
        if let Some(oidc) = &self.oidc {
            oidc.signer().prepare().await?;
        }
        Ok(())
    }

    /// The broker's OIDC issuer, when `[oidc]` is configured.
    pub fn oidc(&self) -> Option<&TokenIssuer> {
        self.oidc.as_deref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The provider kind (`docker`, `ecr`, …).
    pub fn provider_kind(&self) -> &'static str {
        self.provider.kind()
    }

    /// The registry token endpoint, when the provider is a token server.
    pub fn token_server(&self) -> Option<&dyn TokenServer> {
        self.provider.token_server()
    }

    /// Credentials currently cached (for tests and the benchmark).
    pub fn cached_credentials(&self) -> usize {
        self.cache.len()
    }

    /// The scheduled handler: the provider's sweep (see
    /// [`crate::registry::RegistryProvider::sweep`]), as one JSON log line; `None` when
    /// the provider has nothing to sweep.
    pub async fn sweep(&self, ctx: &Context<'_>) -> Option<String> {
        let kind = self.provider.kind();
        let line = match self.provider.sweep(ctx).await? {
            Ok(report) => serde_json::json!({"event": "sweep", "provider": kind, "outcome": "ok",
                                             "report": report}),
            // Names the failed call and the cloud's code, never a token.
            Err(error) => serde_json::json!({"event": "sweep", "provider": kind,
                                             "outcome": "error", "error": error.to_string()}),
        };
        Some(line.to_string())
    }

    /// Issues for an authorized request. A hit makes no upstream call; concurrent misses
    /// on one key share one issuance (single-flight); a credential past its refresh point
    /// is refetched and served only if that fails. Failures are never cached.
    pub async fn issue(&self, request: &CredentialRequest<'_>, ctx: &Context<'_>) -> Issued {
        let mut trace = UpstreamTrace::default();
        if !self.config.cache.enabled || !self.provider.cacheable() {
            let result = self.provider.credentials(request, ctx, &mut trace).await;
            return issued(result, CacheStatus::Off, false, trace);
        }
        let key = CacheKey {
            provider: self.provider_fingerprint,
            project: request.project.to_string(),
            access: request.access,
        };
        let stale = match self.cache.get(&key, ctx.now_ms) {
            Lookup::Hit(credentials) => {
                return issued(Ok(credentials), CacheStatus::Hit, false, trace)
            }
            Lookup::Refresh(credentials) => Some(credentials),
            Lookup::Miss => None,
        };
        let options = FlightOptions {
            now_ms: ctx.now_ms,
            deadline_ms: self.provider.worst_case_ms(),
            poll: Some((ctx.sleeper, FOLLOWER_POLL_MS)),
        };
        let leader_trace = &mut trace;
        let shared = self
            .flight
            .run(key.clone(), options, || {
                self.fill(&key, request, ctx, leader_trace)
            })
            .await;
        let (result, status, shared) = match shared {
            Ok((result, true)) => (result, CacheStatus::Miss, false),
            Ok((result, false)) => (result, CacheStatus::Hit, true),
            // The leader went away mid-flight (its client left) or hung past its worst
            // case: issue here instead, and cache it as any miss.
            Err(Abandoned) => (
                self.fill(&key, request, ctx, &mut trace).await,
                CacheStatus::Miss,
                false,
            ),
        };
        match (result, stale) {
            // The refresh may have taken minutes: the old credential is served only if it
            // still clears the floor now.
            (Err(error), Some(stale)) if self.cache.servable(&stale, ctx.clock.now_ms()) => {
                let mut out = issued(Ok(stale), CacheStatus::Stale, false, trace);
                out.refresh_error = Some(error.to_string());
                out
            }
            (result, _) => issued(result, status, shared, trace),
        }
    }

    /// Calls the provider and caches a success.
    async fn fill(
        &self,
        key: &CacheKey,
        request: &CredentialRequest<'_>,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<RegistryCredentials, ProviderError> {
        let result = self.provider.credentials(request, ctx, trace).await;
        if let Ok(credentials) = &result {
            self.cache.insert(key.clone(), credentials, ctx.now_ms);
        }
        result
    }
}

fn issued(
    result: Result<RegistryCredentials, ProviderError>,
    cache: CacheStatus,
    shared: bool,
    trace: UpstreamTrace,
) -> Issued {
    Issued {
        result,
        cache,
        shared,
        trace,
        refresh_error: None,
    }
}
