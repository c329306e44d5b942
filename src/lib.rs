//! Switchboard: one MCP endpoint in front of many MCP servers.
//!
//! A request crosses each module once, in this order:
//!
//! - [`server`]: the HTTP edge — accept loop (TLS from [`tls`], limits),
//!   `Host`/`Origin` checks, health endpoints, authentication and rate
//!   limit ([`auth`]), path → endpoint.
//! - [`front`]: the protocol front — client era (2026-07-28 stateless or a
//!   2025 session), header/body validation, response shaping (JSON, SSE, 202).
//!   [`front::sessions`] holds legacy client sessions.
//! - [`router`]: method → answered from the [`catalog`] snapshot, or
//!   forwarded to the owning upstream with the prefix stripped; what the
//!   caller may see and call is asked of [`auth::Caller`].
//! - [`relay`]: one forwarded request and everything that belongs to it —
//!   progress, upstream requests of the client, input (MRTR) between eras,
//!   cancellation, the response shaped for the client's era.
//! - [`upstream`]: one client per upstream server — era probe, handshake,
//!   session affinity, transports ([`upstream::http`], [`upstream::stdio`]).
//! - [`pool`]: the set of upstreams, reconciled towards the configuration;
//!   monitors each (change streams, probes, reconnects), builds catalog
//!   snapshots and announces changes.
//! - [`discovery`]: where the desired set comes from (the config file,
//!   watched for edits; Kubernetes `MCPServerRegistration`s, watched with
//!   the HTTPRoutes, Services and EndpointSlices they resolve through).
//! - [`cluster_tools`]: the gateway's own `cluster_` tools, an in-process
//!   upstream in the pool.
//! - [`front::notifications`]: long-lived client streams (GET, and
//!   `subscriptions/listen`) and the list_changed notifications on them.
//!
//! Operations: [`metrics`] (counters for `/status` and `/metrics`), served
//! by [`server`] with [`status`] (the `/status` document); [`traces`]
//! (OpenTelemetry spans, trace context in and out).
//!
//! Threads: [`runtimes`] (one single-threaded runtime per core, each with
//! its own listening socket and upstream connection pools).
//!
//! Shared pieces: [`config`] (YAML → validated config), [`jsonrpc`]
//! (envelopes, error codes), [`protocol`] (versions, headers, `_meta` keys),
//! [`sse`] (event-stream framing), [`cli`] (the command line), [`client`]
//! (its `tools` and `call` commands), [`bridge`] (`switchboard stdio`).

pub mod auth;
pub mod bridge;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod cluster_tools;
pub mod config;
pub mod discovery;
pub mod front;
pub mod jsonrpc;
pub mod metrics;
pub mod pool;
pub mod protocol;
pub mod relay;
pub mod router;
pub mod runtimes;
pub mod server;
pub mod sse;
pub mod status;
pub mod tls;
pub mod traces;
pub mod upstream;
