//! Whether the API server serves a kind (its CRD is installed), and when to
//! ask again about one that is not.
//!
//! Most clusters have no kagenti `MCPServer`, Flux or cert-manager CRD: an
//! absent kind is the usual case, not a fault. It is found out once and
//! then asked about through API discovery (`/apis/<group>/<version>`:
//! readable by every authenticated identity, no objects transferred, no
//! list permission needed) at growing intervals, so it costs a request
//! every few minutes rather than a failing list every second.

use std::time::Duration;

use kube::api::ApiResource;

/// The first re-check of an absent kind comes this soon: a CRD installed
/// just after the gateway started is picked up at once.
pub const RECHECK_FIRST: Duration = Duration::from_secs(1);
/// Re-checks never come further apart than this: how long a newly
/// installed CRD may go unnoticed in a gateway that has run for a while.
pub const RECHECK_CAP: Duration = Duration::from_secs(300);

/// Exponential backoff between checks of an absent kind: `first`, doubling,
/// up to `cap`. Kept per kind; reset once the kind is served.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(RECHECK_FIRST, RECHECK_CAP)
    }
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Self {
        let first = first.min(cap);
        Backoff {
            first,
            cap,
            next: first,
        }
    }

    /// The wait before the next check; the one after is twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.cap);
        delay
    }

    /// The kind was found served: a later absence starts from `first`.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// `Kind (group/version)`, as log lines name a kind.
pub fn describe(resource: &ApiResource) -> String {
    format!("{} ({})", resource.kind, resource.api_version)
}

/// Whether the API server serves `resource`, from API discovery. A group
/// version the server does not know at all answers 404: not served. Any
/// other failure is an error, and says nothing about the kind.
pub async fn served(client: &kube::Client, resource: &ApiResource) -> Result<bool, kube::Error> {
    let listed = if resource.group.is_empty() {
        client.list_core_api_resources(&resource.version).await
    } else {
        client.list_api_group_resources(&resource.api_version).await
    };
    match listed {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == resource.plural)),
        Err(error) if not_found(&error) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Waits until `resource` is served, checking after each of `backoff`'s
/// delays. A failed check (the API server unreachable, say) is retried on
/// the same schedule: the kind is not assumed to have appeared.
pub async fn wait_until_served(
    client: &kube::Client,
    resource: &ApiResource,
    backoff: &mut Backoff,
) {
    loop {
        tokio::time::sleep(backoff.next_delay()).await;
        match served(client, resource).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(error) => tracing::debug!(
                kind = %describe(resource),
                "checking whether the kind is served: {error}"
            ),
        }
    }
}

/// A 404 from the API server: the path (a kind, a group version) is not
/// served.
pub fn not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_starts_over_when_reset() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let delays: Vec<u64> = (0..6).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn the_default_reaches_minutes_not_seconds() {
        let mut backoff = Backoff::default();
        let total: Duration = (0..12).map(|_| backoff.next_delay()).sum();
        // 1 + 2 + ... + 256 s, then capped at 5 minutes.
        assert_eq!(total, Duration::from_secs(511 + 3 * 300));
        assert_eq!(backoff.next_delay(), RECHECK_CAP);
    }

    #[test]
    fn a_first_delay_beyond_the_cap_is_the_cap() {
        let mut backoff = Backoff::new(Duration::from_secs(60), Duration::from_secs(5));
        assert_eq!(backoff.next_delay(), Duration::from_secs(5));
    }

    #[test]
    fn kinds_are_named_with_their_group_version() {
        let resource = ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("mcp.kagenti.com", "v1alpha1", "MCPServer"),
            "mcpservers",
        );
        assert_eq!(describe(&resource), "MCPServer (mcp.kagenti.com/v1alpha1)");
    }
}
