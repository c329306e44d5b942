//! Upstreams started for a test: the rmcp conformance upstream (HTTP or
//! HTTPS) and the third-party servers in `tests/peers/` (server-everything,
//! the TypeScript SDK 1.x and v2 servers, the Python SDK's MCPServer).

use std::path::PathBuf;
use std::process::Command;

use super::{Proc, need_node_modules, peers, url_in};

/// The rmcp upstream from `conformance/upstream/`.
pub fn rmcp_upstream(args: &[&str]) -> (Proc, String) {
    let mut command = Command::new(example_path("conformance-upstream"));
    command.args(args);
    let (proc, line) = Proc::start(command, "listening on http://");
    (proc, url_in(&line))
}

/// A cargo example binary beside the test binary (cargo test builds them).
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug_dir = exe.parent().unwrap().parent().unwrap();
    let path = debug_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test` (it builds examples)",
        path.display()
    );
    path
}

/// `@modelcontextprotocol/server-everything` in Streamable HTTP mode, on loopback.
pub fn everything() -> (Proc, String) {
    need_node_modules();
    let mut command = Command::new("bash");
    command.arg(peers().join("everything.sh")).arg("0");
    let (proc, line) = Proc::start(command, "loopback: listening on");
    let address = line.rsplit(' ').next().unwrap().to_string();
    (proc, format!("http://{address}/mcp"))
}

/// A TypeScript SDK 1.x server (`tests/peers/ts_sdk1_server.mjs`): 2025
/// era, asking for input both outside any call and on the call's stream.
pub fn ts_sdk1_server() -> (Proc, String) {
    need_node_modules();
    let mut command = Command::new("node");
    command.arg(peers().join("ts_sdk1_server.mjs")).arg("0");
    let (proc, line) = Proc::start(command, "ts_sdk1_server ready on");
    (proc, url_in(&line))
}

/// A TypeScript SDK v2 server (`tests/peers/ts_v2_server.mjs`), 2026-07-28
/// only.
pub fn ts_v2_server() -> (Proc, String) {
    need_node_modules();
    let mut command = Command::new("node");
    command.arg(peers().join("ts_v2_server.mjs")).arg("0");
    let (proc, line) = Proc::start(command, "ts_v2_server ready on");
    (proc, url_in(&line))
}

/// The Python SDK's MCPServer (`tests/peers/py_server.py`).
pub fn py_server(transport: &str, extra: &[&str]) -> (Proc, String) {
    py_server_on("0", transport, extra)
}

/// The Python SDK's MCPServer on a given port (a restart on the same address).
pub fn py_server_on(port: &str, transport: &str, extra: &[&str]) -> (Proc, String) {
    let mut command = Command::new("python3");
    command
        .arg(peers().join("py_server.py"))
        .arg(port)
        .arg(transport)
        .args(extra);
    let (proc, line) = Proc::start(command, "py_server ready on");
    (proc, url_in(&line))
}

/// The rmcp upstream serving HTTPS; returns it and its port.
pub fn tls_upstream(cert: &std::path::Path, key: &std::path::Path) -> (Proc, u16) {
    let mut command = std::process::Command::new(example_path("conformance-upstream"));
    command
        .args(["--http", "127.0.0.1:0", "--tls"])
        .arg(cert)
        .arg(key);
    let (proc, line) = Proc::start(command, "listening on https://");
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches("/mcp").trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (proc, port)
}
