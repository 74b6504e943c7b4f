//! The one sweep loop of the providers that mint credentials living on upstream (GitLab
//! deploy tokens, Harbor robots): list the containers (projects) the broker can manage,
//! list each one's credentials, delete the broker's own expired ones — all within
//! [`SWEEP_MAX_CALLS`] outbound calls, one attempt each (the next run retries what
//! failed). Each provider says only how its API is spelled ([`SweepApi`]).

use super::{ProviderError, SweepReport, UpstreamTrace};
use crate::runtime::{Context, OutboundRequest, OutboundResponse};
use crate::upstream::{call, retry::ErrorParser, Step, UpstreamError};

/// Every robot or deploy token the broker creates is named
/// `rise-broker-{project}-{access}-{8 hex}`: the sweeper deletes only expired ones with
/// this prefix, never anyone else's.
pub const NAME_PREFIX: &str = "rise-broker-";

/// The name of a credential minted for (project, access): the prefix, who it is for,
/// and a random suffix so a re-issue never collides with the one it replaces.
pub fn minted_name(request: &super::CredentialRequest<'_>) -> String {
    let nonce = crate::runtime::random_hex(4).unwrap_or_default();
    format!(
        "{NAME_PREFIX}{}-{}-{nonce}",
        request.project,
        request.access.as_str()
    )
}

/// Outbound calls one sweep may make (Workers allows 50 subrequests per invocation on
/// the free plan): the rest waits for the next run.
pub const SWEEP_MAX_CALLS: u32 = 45;
/// Pages of containers one sweep lists.
const MAX_PAGES: u32 = 3;

/// How one provider's API lists and deletes.
pub trait SweepApi {
    /// The three calls, for errors and the log.
    fn steps(&self) -> [Step; 3];
    fn parse_error(&self) -> ErrorParser;
    /// Page `page` (from 1) of the containers.
    fn containers(&self, page: u32) -> OutboundRequest;
    /// Container ids in a page answer, and whether another page follows.
    fn parse_containers(&self, response: &OutboundResponse) -> Option<(Vec<u64>, bool)>;
    /// The credentials of one container.
    fn credentials(&self, container: u64) -> OutboundRequest;
    /// The ids in a credentials answer that are the broker's own and expired.
    fn expired_own(&self, body: &[u8], now_ms: u64) -> Option<Vec<u64>>;
    fn delete(&self, container: u64, credential: u64) -> OutboundRequest;
}

/// Runs the sweep (see the module docs).
pub async fn sweep(api: &dyn SweepApi, ctx: &Context<'_>) -> Result<SweepReport, ProviderError> {
    let [list_containers, list_credentials, delete] = api.steps();
    let parse_error = api.parse_error();
    let mut trace = UpstreamTrace::default();
    let mut report = SweepReport::default();
    let mut containers = Vec::new();
    for page in 1..=MAX_PAGES {
        let request = api.containers(page);
        let (response, attempts) =
            call(list_containers, 1, parse_error, request, ctx, &mut trace).await?;
        let (ids, more) = api.parse_containers(&response).ok_or_else(|| {
            UpstreamError::unusable(list_containers, attempts, "UnreadableResponse")
        })?;
        containers.extend(ids);
        if !more {
            break;
        }
        report.truncated = page == MAX_PAGES;
    }
    'containers: for container in containers {
        if trace.subrequests >= SWEEP_MAX_CALLS {
            report.truncated = true;
            break;
        }
        report.examined += 1;
        let request = api.credentials(container);
        let Ok((response, _)) =
            call(list_credentials, 1, parse_error, request, ctx, &mut trace).await
        else {
            report.failed += 1;
            continue;
        };
        let expired = api
            .expired_own(&response.body, ctx.clock.now_ms())
            .unwrap_or_default();
        for credential in expired {
            if trace.subrequests >= SWEEP_MAX_CALLS {
                report.truncated = true;
                break 'containers;
            }
            let request = api.delete(container, credential);
            match call(delete, 1, parse_error, request, ctx, &mut trace).await {
                Ok(_) => report.deleted += 1,
                Err(_) => report.failed += 1,
            }
        }
    }
    report.subrequests = trace.subrequests;
    Ok(report)
}
