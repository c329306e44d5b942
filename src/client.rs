//! The command line as an MCP client: `switchboard tools <url>` and
//! `switchboard call <url> <tool> <json>`, in either protocol era (the same
//! probe the gateway uses toward its upstreams), with errors that say what
//! to do.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::catalog::Listing;
use crate::config::{LegacySse, Source, TransportSpec, UpstreamSpec};
use crate::upstream::{Upstream, UpstreamError};

/// A connected MCP endpoint.
pub struct Remote {
    pub upstream: Arc<Upstream>,
    pub listing: Listing,
}

/// `K:V` header arguments.
pub fn parse_headers(headers: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    headers
        .iter()
        .map(|h| match h.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => bail!("--header {h:?}: write it as Name: value"),
        })
        .collect()
}

pub async fn connect(
    url: &str,
    headers: Vec<(String, String)>,
    ca_file: Option<&Path>,
) -> anyhow::Result<Remote> {
    let ca_pem = match ca_file {
        None => None,
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--ca-file {}: cannot read", path.display()))?,
        ),
    };
    let spec = UpstreamSpec {
        name: "remote".into(),
        prefix: String::new(),
        transport: TransportSpec::Http {
            url: url.to_string(),
            headers,
            legacy_sse: if url.trim_end_matches('/').ends_with("/sse") {
                LegacySse::Detect
            } else {
                LegacySse::Never
            },
            ca_pem,
            dial_pods: false,
        },
        timeout: Duration::from_secs(60),
        max_concurrency: crate::config::DEFAULT_MAX_CONCURRENCY,
        source: Source::ConfigFile,
    };
    let upstream = Arc::new(
        Upstream::new(spec, crate::net::client::client(), None).map_err(|e| anyhow::anyhow!(e))?,
    );
    let listing = upstream
        .connect()
        .await
        .map_err(|error| advice(url, &error))?;
    Ok(Remote { upstream, listing })
}

/// An error phrased as what to do about it.
pub fn advice(url: &str, error: &UpstreamError) -> anyhow::Error {
    let text = error.to_string();
    let lower = text.to_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("tls") {
        return anyhow::anyhow!(
            "{url}: TLS: {text}\nthe server's certificate is not trusted here; pass its CA bundle with --ca-file FILE (never turn verification off)"
        );
    }
    match error {
        UpstreamError::Status { status: 404, .. } => {
            let hint = match url.parse::<::http::Uri>() {
                Ok(uri) if uri.path() != "/mcp" => format!(
                    "\nthis server answers at /mcp: try {}://{}/mcp",
                    uri.scheme_str().unwrap_or("http"),
                    uri.authority().map(|a| a.as_str()).unwrap_or("")
                ),
                _ => String::new(),
            };
            anyhow::anyhow!("{url}: no MCP endpoint here (HTTP 404){hint}")
        }
        UpstreamError::Status {
            status: 401 | 403, ..
        } => anyhow::anyhow!(
            "{url}: {text}\nthe server wants credentials: pass them with --header 'Authorization: Bearer …'"
        ),
        UpstreamError::Connect(_) => {
            anyhow::anyhow!("{url}: {text}\nis the server running, and is the host and port right?")
        }
        _ => anyhow::anyhow!("{url}: {text}"),
    }
}

/// One line per tool: name and the first line of its description.
pub fn tool_lines(tools: &[Value]) -> String {
    let width = tools
        .iter()
        .filter_map(|t| t["name"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(0);
    tools
        .iter()
        .map(|tool| {
            let name = tool["name"].as_str().unwrap_or("?");
            let description = tool["description"]
                .as_str()
                .and_then(|d| d.lines().next())
                .unwrap_or("");
            format!("{name:width$}  {description}\n")
        })
        .collect()
}

/// The text a person wants from a `CallToolResult`: its text content, with
/// other content kinds named.
pub fn result_text(result: &Value) -> String {
    let mut out = String::new();
    for item in result["content"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("text") => out.push_str(item["text"].as_str().unwrap_or("")),
            Some(other) => out.push_str(&format!("[{other} content]")),
            None => {}
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    if out.is_empty()
        && let Some(structured) = result.get("structuredContent")
    {
        out = format!("{structured}\n");
    }
    out
}
