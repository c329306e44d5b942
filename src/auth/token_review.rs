//! Kubernetes service-account tokens of in-cluster agents, checked with the
//! TokenReview API for this gateway's audiences. Answers are cached for a
//! short while by the token's digest (never the token itself).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use ring::digest::{SHA256, digest};
use serde_json::{Value, json};

use super::Principal;
use crate::config::TokenReviewSettings;
use crate::refusal::Refusal;

/// Cached answers kept before expired ones are swept.
const SWEEP_ABOVE: usize = 10_000;
/// A refusal is remembered briefly too, so a bad token cannot flood the API.
const FAILURE_TTL: Duration = Duration::from_secs(5);

pub struct TokenReviewer {
    client: kube::Client,
    settings: TokenReviewSettings,
    cache: DashMap<[u8; 32], (Instant, Result<Principal, Refusal>)>,
}

impl TokenReviewer {
    pub fn new(client: kube::Client, settings: TokenReviewSettings) -> TokenReviewer {
        TokenReviewer {
            client,
            settings,
            cache: DashMap::new(),
        }
    }

    pub async fn review(&self, token: &str) -> Result<Principal, Refusal> {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        if let Some(entry) = self.cache.get(&key)
            && entry.0 > Instant::now()
        {
            return entry.1.clone();
        }
        let answer = self.ask(token).await;
        let ttl = match &answer {
            Ok(_) => self.settings.cache_ttl,
            // Not cached: the next request asks again.
            Err(Refusal::Unavailable) => return answer,
            Err(_) => FAILURE_TTL,
        };
        if self.cache.len() >= SWEEP_ABOVE {
            let now = Instant::now();
            self.cache.retain(|_, (until, _)| *until > now);
        }
        self.cache
            .insert(key, (Instant::now() + ttl, answer.clone()));
        answer
    }

    async fn ask(&self, token: &str) -> Result<Principal, Refusal> {
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": { "token": token, "audiences": self.settings.audiences },
        });
        let request = http::Request::post("/apis/authentication.k8s.io/v1/tokenreviews")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .map_err(|_| Refusal::Unavailable)?;
        let review: Value = match self.client.request(request).await {
            Ok(review) => review,
            Err(error) => {
                tracing::warn!("TokenReview failed: {error}");
                return Err(Refusal::Unavailable);
            }
        };
        let status = &review["status"];
        if status["authenticated"] != true {
            return Err(Refusal::Rejected);
        }
        // The API server names the audiences it checked; one must be ours.
        let audiences = status["audiences"].as_array();
        if audiences.is_some_and(|list| {
            !list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| self.settings.audiences.iter().any(|ours| ours == a))
        }) {
            return Err(Refusal::WrongAudience);
        }
        let user = &status["user"];
        let subject = user["username"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or(Refusal::Rejected)?;
        Ok(Principal {
            subject: Arc::from(subject),
            groups: user["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(Arc::from)
                .collect(),
            method: "kubernetes",
        })
    }
}
