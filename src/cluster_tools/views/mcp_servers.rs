//! The MCP servers view: the upstreams Switchboard serves, read from the
//! snapshot handed to the tools (never from the pool itself).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::cluster_tools::{ClusterTools, Output};
use crate::pool::{Health, UpstreamReport};

pub(super) fn mcp_servers(tools: &ClusterTools) -> Vec<Value> {
    let mut servers: Vec<Value> = (tools.upstreams)()
        .into_iter()
        .map(|UpstreamReport { upstream, state }| {
            let (health, error) = Health::describe(state.as_ref().map(|s| &s.health));
            json!({
                "name": &*upstream.name,
                "prefix": &*upstream.prefix,
                "source": upstream.spec.source.to_string(),
                "url": upstream.spec.transport.target(),
                "health": health,
                "era": upstream.era().map(|e| e.version().to_string()),
                "tools": state.as_ref().map_or(0, |s| s.tools),
                "lastError": error,
            })
        })
        .collect();
    servers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    servers
}

pub(super) fn list_mcp_servers(tools: &ClusterTools) -> Output {
    let servers = mcp_servers(tools);
    let mut text = String::new();
    for s in &servers {
        let _ = writeln!(
            text,
            "{} ({}*) {} {} era {} tools {} — {}{}",
            s["name"].as_str().unwrap_or(""),
            s["prefix"].as_str().unwrap_or(""),
            s["health"].as_str().unwrap_or(""),
            s["url"].as_str().unwrap_or(""),
            s["era"].as_str().unwrap_or("?"),
            s["tools"],
            s["source"].as_str().unwrap_or(""),
            s["lastError"]
                .as_str()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default(),
        );
    }
    Output {
        structured: json!({"servers": servers}),
        text,
    }
}
