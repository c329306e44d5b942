//! Counters the gateway keeps about itself, for `/status` and `/metrics`:
//! requests by method and outcome, `tools/call` latency per upstream,
//! catalog rebuilds and `list_changed` deliveries, and the live counts of
//! what it holds ([`Live`]: sessions, streams, calls in flight). Atomics
//! only on the request path; labels come from bounded sets
//! (`protocol::METHODS`, the configured upstreams, [`Live::ALL`]), never
//! from client input.
//!
//! - `counters`: requests and `tools/call` statistics ([`Metrics`]).
//! - `live`: the live counts ([`Live`], [`LIVE`], [`Held`]).
//! - `prometheus`: the `/metrics` text ([`Metrics::render`], [`Gauges`]).

mod counters;
mod live;
mod prometheus;

pub use counters::{CallStats, Metrics, Outcome};
pub use live::{Counts, Held, LIVE, Live};
pub use prometheus::Gauges;
