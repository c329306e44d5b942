//! HTTP plumbing below every layer: the response side ([`response`]) and
//! the outgoing client ([`client`]). Nothing here knows MCP beyond the
//! JSON-RPC error body of a refusal.

pub mod client;
pub mod response;

pub use client::HttpClient;
pub use response::{Body, Rejection};
