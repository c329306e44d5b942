//! A running gateway (`switchboard serve` on port 0), and what tests ask
//! it: its tools listed, the `sleep` calls of an rmcp upstream behind it.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Proc, START_DEADLINE, TempFile, modern_headers, post, url_in};

/// A running gateway.
pub struct Gateway {
    pub proc: Proc,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub config: TempFile,
}

impl Gateway {
    /// Starts `switchboard serve` on `upstreams_yaml` (the `upstreams:` list
    /// and anything else but `listen`).
    pub fn start(config_yaml: &str) -> Gateway {
        Gateway::start_with_env(config_yaml, &[])
    }

    /// Like [`Gateway::start`], with extra environment variables.
    pub fn start_with_env(config_yaml: &str, env: &[(&str, &str)]) -> Gateway {
        let config = TempFile::new("yaml", &format!("listen: \"127.0.0.1:0\"\n{config_yaml}"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&config.path)
            .env("RUST_LOG", "switchboard=debug")
            .envs(env.iter().copied());
        let (proc, line) = Proc::start(command, "switchboard listening on");
        let url = url_in(&line);
        let base = url.trim_end_matches("/mcp").to_string();
        Gateway { proc, base, config }
    }

    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub fn server_mcp(&self, name: &str) -> String {
        format!("{}/servers/{name}/mcp", self.base)
    }

    /// Starts `switchboard serve` with `args` and no config file of ours.
    pub fn start_with_args(args: &[&str]) -> Gateway {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command.arg("serve").args(args);
        let (proc, line) = Proc::start(command, "switchboard listening on");
        let base = url_in(&line).trim_end_matches("/mcp").to_string();
        let config = TempFile::new("yaml", "");
        Gateway { proc, base, config }
    }

    /// Waits until `tools/list` through `/mcp` has every name in `tools`.
    pub async fn wait_for_tools(&self, tools: &[&str]) {
        self.wait_for_tools_within(tools, START_DEADLINE).await;
    }

    pub async fn wait_for_tools_within(&self, tools: &[&str], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let listed = list_tool_names(&self.mcp()).await;
            if tools.iter().all(|t| listed.iter().any(|l| l == t)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tools {tools:?} did not all appear; {} listed, starting {:?}",
                listed.len(),
                &listed[..listed.len().min(20)]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Every name listed by stateless 2026-07-28 `tools/list`, all pages.
pub async fn list_tool_names(url: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = serde_json::json!({ "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }});
        if let Some(cursor) = &cursor {
            params["cursor"] = cursor.clone().into();
        }
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params });
        let result = post(url, &modern_headers("tools/list", None), &body.to_string())
            .await
            .json()["result"]
            .take();
        let Some(tools) = result["tools"].as_array() else {
            return names;
        };
        names.extend(
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string)),
        );
        match result["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return names,
        }
    }
}

/// What became of the `sleep` calls of an rmcp test upstream (its
/// `sleep_stats` tool, called through the gateway as a 2026 client).
pub async fn sleep_stats(gateway: &Gateway, upstream: &str) -> Value {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": format!("{upstream}_sleep_stats"), "arguments": {},
                    "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                               "io.modelcontextprotocol/clientCapabilities": {} } },
    });
    let name = format!("{upstream}_sleep_stats");
    let response = post(
        &gateway.mcp(),
        &modern_headers("tools/call", Some(&name)),
        &body.to_string(),
    )
    .await;
    let text = response.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("{}")
        .to_string();
    serde_json::from_str(&text).unwrap()
}

/// Waits until `count` sleep calls have started on the upstream: a call is
/// in flight there.
pub async fn wait_until_sleeping(gateway: &Gateway, upstream: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleep_stats(gateway, upstream).await["started"] != count {
        assert!(Instant::now() < deadline, "the call never started upstream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
