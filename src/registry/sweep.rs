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

/// The name of a credential minted for (project, access) that the broker means to stop
/// using at `expires_at_s`: the prefix, who it is for, that expiry, and a random suffix
/// so a re-issue never collides with the one it replaces. The expiry in the name lets
/// the sweeper delete it on time even where the registry keeps only a day-granular
/// expiry (GitLab, PROVIDERS.md §A2).
pub fn minted_name(request: &super::CredentialRequest<'_>, expires_at_s: u64) -> String {
    let nonce = crate::runtime::random_hex(4).unwrap_or_default();
    format!(
        "{NAME_PREFIX}{}-{}-{expires_at_s}-{nonce}",
        request.project,
        request.access.as_str()
    )
}

/// The expiry (ms) a [`minted_name`] carries: `…-{seconds}-{8 hex}` at its end.
pub fn name_expiry_ms(name: &str) -> Option<u64> {
    let rest = &name[name.find(NAME_PREFIX)? + NAME_PREFIX.len()..];
    let mut parts = rest.rsplitn(3, '-');
    let nonce = parts.next()?;
    let seconds = parts.next()?;
    if nonce.len() != 8 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    seconds.parse::<u64>().ok()?.checked_mul(1000)
}

/// Outbound calls one sweep may make (Workers allows 50 subrequests per invocation on
/// the free plan): the rest waits for the next run.
pub const SWEEP_MAX_CALLS: u32 = 45;
/// Pages of containers one sweep lists (page 1 and a random window of the rest).
const MAX_PAGES: u32 = 3;

/// How one provider's API lists and deletes.
pub trait SweepApi {
    /// The three calls, for errors and the log.
    fn steps(&self) -> [Step; 3];
    fn parse_error(&self) -> ErrorParser;
    /// Page `page` (from 1) of the containers.
    fn containers(&self, page: u32) -> OutboundRequest;
    /// Container ids in a page answer, and how many pages there are in all (when the
    /// API says).
    fn parse_containers(&self, response: &OutboundResponse) -> Option<(Vec<u64>, Option<u32>)>;
    /// The credentials of one container.
    fn credentials(&self, container: u64) -> OutboundRequest;
    /// The ids in a credentials answer that are the broker's own and expired.
    fn expired_own(&self, body: &[u8], now_ms: u64) -> Option<Vec<u64>>;
    fn delete(&self, container: u64, credential: u64) -> OutboundRequest;
}

/// Runs the sweep (see the module docs).
pub async fn sweep(api: &dyn SweepApi, ctx: &Context<'_>) -> Result<SweepReport, ProviderError> {
    let [_, list_credentials, delete] = api.steps();
    let parse_error = api.parse_error();
    let mut trace = UpstreamTrace::default();
    let mut report = SweepReport::default();
    // Page 1, then — with more pages than one run lists — a window starting at a random
    // page, and the containers in a rotated order: every run starts elsewhere, so runs
    // that each stop at the call budget still reach every container in time (a cursor
    // would not survive from one isolate to the next).
    let (mut containers, total_pages) = containers_page(api, 1, ctx, &mut trace).await?;
    let total = total_pages.unwrap_or(1).max(1);
    if total > 1 {
        let others = total - 1;
        let window = others.min(MAX_PAGES - 1);
        report.truncated = others > window;
        let start = random_u32() % others;
        for i in 0..window {
            let page = 2 + (start + i) % others;
            let (ids, _) = containers_page(api, page, ctx, &mut trace).await?;
            containers.extend(ids);
        }
    }
    if !containers.is_empty() {
        let offset = random_u32() as usize % containers.len();
        containers.rotate_left(offset);
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

/// One page of containers (a failed listing ends the run: nothing to go on with).
async fn containers_page(
    api: &dyn SweepApi,
    page: u32,
    ctx: &Context<'_>,
    trace: &mut UpstreamTrace,
) -> Result<(Vec<u64>, Option<u32>), UpstreamError> {
    let [step, _, _] = api.steps();
    let request = api.containers(page);
    let (response, attempts) = call(step, 1, api.parse_error(), request, ctx, trace).await?;
    api.parse_containers(&response)
        .ok_or_else(|| UpstreamError::unusable(step, attempts, "UnreadableResponse"))
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    // No entropy only makes every run start at the same place, as a fixed order would.
    let _ = getrandom::getrandom(&mut bytes);
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_names_carry_their_expiry() {
        assert_eq!(
            name_expiry_ms("rise-broker-my-app-push-1767229200-0a1b2c3d"),
            Some(1_767_229_200_000)
        );
        assert_eq!(
            name_expiry_ms("robot$my-app+rise-broker-my.app-pull-1767229200-0a1b2c3d"),
            Some(1_767_229_200_000)
        );
        assert_eq!(name_expiry_ms("rise-broker-my-app-push-0a1b2c3d"), None);
        assert_eq!(name_expiry_ms("ci-1767229200-0a1b2c3d"), None);
        assert_eq!(name_expiry_ms("rise-broker-x-push-17x-0a1b2c3d"), None);
    }
}
