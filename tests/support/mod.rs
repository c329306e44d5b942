//! Shared by the integration tests: start real processes on port 0 (the
//! gateway, rmcp upstreams, third-party peers), wait for them with a
//! deadline, and talk real HTTP to them. Every process is killed when its
//! guard drops.
//!
//! One file per part: `process` (a child process and its output lines),
//! `gateway` (a running Switchboard), `upstreams` (the rmcp and third-party
//! servers started as its upstreams), `peer_clients` (the third-party client
//! scripts), `http_client` (requests and their headers), `event_stream` (SSE
//! read event by event), `http_server` (a loopback server for test doubles),
//! `files` (temporary files) and `tls` (a private CA, base64). All of it is
//! re-exported here, so tests name it `support::x`. `kube_api` (the
//! Kubernetes API double) and what one family of tests shares (`security`,
//! `faults`) are named by their path.

#![allow(dead_code)]

pub mod faults;
pub mod kube_api;
pub mod security;

mod event_stream;
mod files;
mod gateway;
mod http_client;
mod http_server;
mod peer_clients;
mod process;
mod tls;
mod upstreams;

// Each test binary uses a part of these.
#[allow(unused_imports)]
pub use self::{
    event_stream::*, files::*, gateway::*, http_client::*, http_server::*, peer_clients::*,
    process::*, tls::*, upstreams::*,
};

use std::path::PathBuf;
use std::time::Duration;

/// How long any process may take to come up.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn peers() -> PathBuf {
    repo().join("tests/peers")
}

fn need_node_modules() {
    assert!(
        peers().join("node_modules").exists(),
        "tests/peers/node_modules is missing: run `npm ci --prefix tests/peers` (bash .ci/run does)"
    );
}
