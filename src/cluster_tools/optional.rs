//! The kinds some tools need and most clusters lack (Flux's
//! `Kustomization`, cert-manager's `Certificate`): a tool is offered only
//! while its kind is served.
//!
//! Whether a kind is served is asked when a tool list or call needs it, and
//! not again before it is due: a served kind after [`CRD_CHECK_TTL`] (to
//! notice its removal), an absent one after a backoff that grows from a
//! second to minutes ([`presence::Backoff`]), so a cluster without Flux is
//! asked about it a handful of times an hour, not on every call. A change
//! is logged once, the first answer included.

use std::time::{Duration, Instant};

use kube::api::ApiResource;

use super::{CRD_CHECK_TTL, dynamic};
use crate::discovery::kubernetes::presence::{self, Backoff};

/// A check that takes longer is given up on (and retried on the backoff):
/// tool calls wait for it, so it must not hang with the API server.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// One optional kind and what is known about it.
pub(super) struct OptionalKind {
    /// The tool it gates (without the `cluster_` prefix).
    pub tool: &'static str,
    resource: ApiResource,
    /// The last answer; None until one came.
    served: Option<bool>,
    /// The API server is not asked again before this.
    next_check: Option<Instant>,
    backoff: Backoff,
}

impl OptionalKind {
    pub fn new(tool: &'static str, group: &str, version: &str, kind: &str, plural: &str) -> Self {
        OptionalKind {
            tool,
            resource: dynamic(group, version, kind, plural),
            served: None,
            next_check: None,
            backoff: Backoff::default(),
        }
    }

    /// The kinds the cluster tools know, in a fixed order.
    pub fn all() -> Vec<OptionalKind> {
        vec![
            OptionalKind::new(
                "flux_status",
                "kustomize.toolkit.fluxcd.io",
                "v1",
                "Kustomization",
                "kustomizations",
            ),
            OptionalKind::new(
                "certificates",
                "cert-manager.io",
                "v1",
                "Certificate",
                "certificates",
            ),
        ]
    }

    /// Whether its tool is offered now (not until the kind is known served).
    pub fn offered(&self) -> bool {
        self.served == Some(true)
    }

    /// Asks the API server if an answer is due; otherwise keeps the last.
    pub async fn refresh(&mut self, client: &kube::Client) {
        let now = Instant::now();
        if self.next_check.is_some_and(|due| now < due) {
            return;
        }
        let answer =
            match tokio::time::timeout(CHECK_TIMEOUT, presence::served(client, &self.resource))
                .await
            {
                Ok(Ok(served)) => Ok(served),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
        if let Some(line) = self.record(answer, Instant::now()) {
            tracing::info!("{line}");
        }
    }

    /// Records an answer got at `now` and schedules the next check; returns
    /// the line to log when the answer is news. A failed check keeps the
    /// last answer and is retried on the backoff.
    fn record(&mut self, answer: Result<bool, String>, now: Instant) -> Option<String> {
        let served = match answer {
            Ok(served) => served,
            Err(error) => {
                tracing::debug!(
                    kind = %presence::describe(&self.resource),
                    "checking whether the kind is served: {error}"
                );
                self.next_check = Some(now + self.backoff.next_delay());
                return None;
            }
        };
        let news = self.served != Some(served);
        self.served = Some(served);
        if served {
            self.backoff.reset();
            self.next_check = Some(now + CRD_CHECK_TTL);
        } else {
            self.next_check = Some(now + self.backoff.next_delay());
        }
        let name = presence::describe(&self.resource);
        let tool = format!("{}{}", super::PREFIX, self.tool);
        news.then(|| match served {
            true => format!("{name} installed; {tool} offered"),
            false => format!("{name} not installed; {tool} not offered"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flux() -> OptionalKind {
        OptionalKind::all().remove(0)
    }

    #[test]
    fn an_absent_kind_is_said_once_and_asked_ever_more_rarely() {
        let mut kind = flux();
        let start = Instant::now();
        assert_eq!(
            kind.record(Ok(false), start).as_deref(),
            Some(
                "Kustomization (kustomize.toolkit.fluxcd.io/v1) not installed; cluster_flux_status not offered"
            )
        );
        assert!(!kind.offered());
        let mut at = start;
        let mut gaps = Vec::new();
        for _ in 0..4 {
            let due = kind.next_check.unwrap();
            gaps.push((due - at).as_secs());
            at = due;
            assert_eq!(kind.record(Ok(false), at), None, "said again");
        }
        assert_eq!(gaps, [1, 2, 4, 8]);
    }

    #[test]
    fn an_installed_kind_is_offered_said_and_checked_at_the_ttl() {
        let mut kind = flux();
        let start = Instant::now();
        kind.record(Ok(false), start);
        kind.record(Ok(false), start);
        let line = kind.record(Ok(true), start).unwrap();
        assert!(
            line.ends_with("installed; cluster_flux_status offered"),
            "{line}"
        );
        assert!(kind.offered());
        assert_eq!(kind.next_check, Some(start + CRD_CHECK_TTL));
        // Removed again: said, and the backoff starts over.
        assert!(kind.record(Ok(false), start).is_some());
        assert_eq!(kind.next_check, Some(start + Duration::from_secs(1)));
    }

    #[test]
    fn a_failed_check_keeps_the_last_answer_and_backs_off() {
        let mut kind = flux();
        let start = Instant::now();
        kind.record(Ok(true), start);
        assert_eq!(kind.record(Err("connection refused".into()), start), None);
        assert!(kind.offered());
        assert_eq!(kind.next_check, Some(start + Duration::from_secs(1)));
    }
}
