//! `/status` (JSON for humans and scripts) and `/metrics` (Prometheus text):
//! what the gateway serves, each upstream's health and traffic, sessions,
//! and the live counts of what it holds (`live`, see [`crate::metrics::Live`]).

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::front::Front;
use crate::metrics::{Gauges, LIVE};
use crate::pool::{Health, UpstreamReport};
use crate::protocol;

/// The status page at `/`: static HTML that renders `/status` in place.
pub const PAGE: &str = include_str!("status_page.html");

/// The `/status` document; `with_tools` adds each upstream's tool names
/// (what the status page shows; off by default, lists can be long).
pub fn document(front: &Front, with_tools: bool) -> Value {
    let pool = &front.pool;
    let catalog = pool.catalog();
    let mut upstreams: Vec<Value> = pool
        .reports()
        .into_iter()
        .map(|UpstreamReport { upstream, state }| {
            let (health, last_error) = Health::describe(state.as_ref().map(|s| &s.health));
            let calls = pool.metrics.calls_of(&upstream.name);
            let count = |f: fn(&crate::metrics::CallStats) -> u64| calls.as_deref().map_or(0, f);
            let latency = |q: f64| {
                calls
                    .as_ref()
                    .and_then(|c| c.quantile(q))
                    .filter(|s| s.is_finite())
                    .map(|s| s * 1000.0)
            };
            json!({
                "name": &*upstream.name,
                "prefix": &*upstream.prefix,
                "source": upstream.spec.source.to_string(),
                "url": upstream.spec.transport.target(),
                "transport": upstream.spec.transport.kind(),
                "era": upstream.era().map(|e| e.version().to_string()),
                "health": health,
                "lastError": last_error,
                "since": state.as_ref().map(|s| rfc3339(s.since)),
                "tools": state.as_ref().map_or(0, |s| s.tools),
                "prompts": state.as_ref().map_or(0, |s| s.prompts),
                "resources": state.as_ref().map_or(0, |s| s.resources),
                "calls": count(|c| c.calls.load(Ordering::Relaxed)),
                "callErrors": count(|c| c.errors.load(Ordering::Relaxed)),
                // Bucket bounds (upper estimates), as Prometheus would report.
                "latencyMs": { "p50": latency(0.5), "p99": latency(0.99) },
            })
        })
        .collect();
    if with_tools {
        for entry in &mut upstreams {
            let name = entry["name"].as_str().unwrap_or_default().to_string();
            let names: Vec<String> = catalog
                .server(&name)
                .and_then(|s| s.listing.as_ref().map(|l| (s.prefix.clone(), l.clone())))
                .map(|(prefix, listing)| {
                    listing
                        .tools
                        .iter()
                        .filter_map(|t| t.get("name").and_then(Value::as_str))
                        .map(|n| format!("{prefix}{n}"))
                        .collect()
                })
                .unwrap_or_default();
            entry["toolNames"] = json!(names);
        }
    }
    upstreams.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let aggregate = catalog
        .servers
        .iter()
        .filter_map(|s| s.listing.as_ref())
        .fold((0, 0, 0), |(t, p, r), l| {
            (
                t + l.tools.len(),
                p + l.prompts.len(),
                r + l.resources.len() + l.resource_templates.len(),
            )
        });
    json!({
        "name": "switchboard",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": pool.metrics.started.elapsed().as_secs(),
        "protocolVersions": std::iter::once(protocol::MODERN).chain(protocol::LEGACY.iter().copied()).collect::<Vec<_>>(),
        "ready": pool.ready(),
        "sessions": front.sessions.len(),
        "streams": front.listeners.len(),
        "live": LIVE.status(),
        "catalog": {
            "tools": aggregate.0,
            "prompts": aggregate.1,
            "resources": aggregate.2,
            "prefixConflicts": catalog.collisions,
        },
        "upstreams": upstreams,
    })
}

/// The `/metrics` exposition.
pub fn metrics(front: &Front) -> String {
    let pool = &front.pool;
    let mut upstreams: Vec<(String, bool)> = pool
        .upstreams()
        .iter()
        .map(|u| {
            let up = pool
                .state(&u.name)
                .is_some_and(|s| s.health == Health::Ready);
            (u.name.to_string(), up)
        })
        .collect();
    upstreams.sort();
    pool.metrics.render(&Gauges {
        upstreams,
        sessions: front.sessions.len(),
        streams: front.listeners.len(),
        list_changed_sent: front.listeners.delivered(),
        live: LIVE.snapshot(),
    })
}

/// RFC 3339 in UTC, to the second.
fn rfc3339(time: std::time::SystemTime) -> String {
    k8s_openapi::jiff::Timestamp::try_from(time)
        .ok()
        .and_then(|t| t.round(k8s_openapi::jiff::Unit::Second).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}
