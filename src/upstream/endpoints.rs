//! The pods behind a Kubernetes-backed upstream: requests go to a ready
//! pod's address rather than through the Service, so that a 2025 upstream
//! session stays on the pod that holds it (affinity), and a rollout is seen
//! as the set changing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;

use super::UpstreamError;

#[derive(Debug, Default)]
pub struct Endpoints {
    ready: ArcSwap<Vec<SocketAddr>>,
    /// Round robin over the ready set for requests outside any session.
    next: AtomicUsize,
}

impl Endpoints {
    /// Replaces the ready set; true when it changed.
    pub fn set(&self, mut ready: Vec<SocketAddr>) -> bool {
        ready.sort_unstable();
        ready.dedup();
        if **self.ready.load() == ready {
            return false;
        }
        self.ready.store(Arc::new(ready));
        true
    }

    /// A ready pod for a new session or a request outside any session.
    pub fn pick(&self) -> Result<SocketAddr, UpstreamError> {
        let ready = self.ready.load();
        if ready.is_empty() {
            return Err(UpstreamError::Connect("no ready endpoints".into()));
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        Ok(ready[turn % ready.len()])
    }

    pub fn is_ready(&self, endpoint: SocketAddr) -> bool {
        self.ready.load().binary_search(&endpoint).is_ok()
    }

    pub fn ready(&self) -> Vec<SocketAddr> {
        self.ready.load().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_round_robin_and_reports_changes() {
        let endpoints = Endpoints::default();
        assert!(
            endpoints.pick().is_err(),
            "an empty set has nothing to pick"
        );
        let a: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:8080".parse().unwrap();
        assert!(endpoints.set(vec![b, a, a]));
        assert!(!endpoints.set(vec![a, b]), "same set in another order");
        let picks: Vec<_> = (0..4).map(|_| endpoints.pick().unwrap()).collect();
        assert_eq!(picks.iter().filter(|p| **p == a).count(), 2);
        assert_eq!(picks.iter().filter(|p| **p == b).count(), 2);
        assert!(endpoints.set(vec![b]));
        assert!(!endpoints.is_ready(a));
        assert!(endpoints.is_ready(b));
    }
}
