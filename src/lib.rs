//! Switchboard: one MCP endpoint in front of many MCP servers.
//!
//! A request crosses each module once, in this order:
//!
//! - [`server`]: the HTTP edge — accept loop (TLS from [`tls`], limits),
//!   `Host`/`Origin` checks, health endpoints, authentication and rate
//!   limit ([`auth`]), path → endpoint.
//! - [`front`]: the protocol front — client era (2026-07-28 stateless or a
//!   2025 session, kept in [`sessions`]), header/body validation, response
//!   shaping (JSON, SSE, 202). It hands the router an [`exchange::Request`]
//!   and gets an [`exchange::Outcome`] back.
//! - [`router`]: method → answered from the [`catalog`] snapshot, or
//!   forwarded to the owning upstream with the prefix stripped; what the
//!   caller may see and call is asked of [`auth::Caller`].
//! - [`relay`]: one forwarded request and everything that belongs to it —
//!   progress, upstream requests of the client, input (MRTR) between eras,
//!   cancellation, the response shaped for the client's era.
//! - [`upstream`]: one client per upstream server — era probe, handshake,
//!   session affinity, transports ([`upstream::http`], [`upstream::stdio`],
//!   an [`upstream::InProcessServer`]).
//! - [`pool`]: the set of upstreams, reconciled towards the configuration;
//!   monitors each (change streams, probes, reconnects), builds catalog
//!   snapshots and announces changes.
//! - [`discovery`]: where the desired set comes from (the config file,
//!   watched for edits; Kubernetes `MCPServerRegistration`s, watched with
//!   the HTTPRoutes, Services and EndpointSlices they resolve through).
//! - [`cluster_tools`]: the gateway's own `cluster_` tools, served in the
//!   pool as an in-process upstream; they read the pool's health through a
//!   snapshot handed to them.
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
//! Shared pieces: [`net`] (HTTP plumbing: response bodies, refusals, the
//! outgoing client), [`config`] (YAML → validated config), [`jsonrpc`]
//! (envelopes, error codes), [`protocol`] (versions, headers, `_meta` keys),
//! [`sse`] (event-stream framing), [`refusal`] (why a credential was
//! refused), [`cli`] (the command line), [`client`] (its `tools` and `call`
//! commands), [`bridge`] (`switchboard stdio`).
//!
//! ## Layering
//!
//! Dependencies point down this table: a module uses only the modules in
//! its row, each of which sits further down. `tests/layering.rs` holds it
//! (and that no files import each other in a cycle); a new arrow goes in
//! here first, and never up.
//!
//! | module | may use |
//! |---|---|
//! | `cli` | `auth`, `bridge`, `client`, `config`, `discovery`, `runtimes`, `server`, `tls` |
//! | `bridge` | `jsonrpc`, `net`, `protocol`, `upstream` |
//! | `client` | `catalog`, `config`, `net`, `upstream` |
//! | `server` | `auth`, `cluster_tools`, `config`, `front`, `jsonrpc`, `net`, `pool`, `runtimes`, `sessions`, `status`, `traces` |
//! | `status` | `front`, `metrics`, `pool`, `protocol` |
//! | `front` | `auth`, `catalog`, `exchange`, `jsonrpc`, `metrics`, `net`, `pool`, `protocol`, `relay`, `router`, `sessions`, `sse`, `traces`, `upstream` |
//! | `router` | `catalog`, `exchange`, `jsonrpc`, `metrics`, `pool`, `protocol`, `relay`, `traces`, `upstream` |
//! | `relay` | `exchange`, `jsonrpc`, `metrics`, `pool`, `protocol`, `sessions`, `sse`, `traces`, `upstream` |
//! | `exchange` | `auth`, `catalog`, `jsonrpc`, `pool`, `sessions`, `traces` |
//! | `sessions` | `metrics`, `protocol`, `upstream` |
//! | `auth` | `config`, `jsonrpc`, `net`, `refusal` |
//! | `cluster_tools` | `config`, `discovery`, `jsonrpc`, `pool`, `protocol`, `upstream` |
//! | `discovery` | `config`, `pool` |
//! | `pool` | `catalog`, `config`, `metrics`, `net`, `protocol`, `upstream` |
//! | `upstream` | `catalog`, `config`, `jsonrpc`, `metrics`, `net`, `protocol`, `sse` |
//! | `traces` | `config`, `jsonrpc`, `net`, `sse` |
//! | `metrics` | `protocol`, `refusal` |
//! | `net` | `jsonrpc`, `runtimes` |
//! | `tls` | `config` |
//! | `catalog` | `protocol` |
//! | `config` | |
//! | `jsonrpc` | |
//! | `protocol` | |
//! | `refusal` | |
//! | `runtimes` | |
//! | `sse` | |

pub mod auth;
pub mod bridge;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod cluster_tools;
pub mod config;
pub mod discovery;
pub mod exchange;
pub mod front;
pub mod jsonrpc;
pub mod metrics;
pub mod net;
pub mod pool;
pub mod protocol;
pub mod refusal;
pub mod relay;
pub mod router;
pub mod runtimes;
pub mod server;
pub mod sessions;
pub mod sse;
pub mod status;
pub mod tls;
pub mod traces;
pub mod upstream;
