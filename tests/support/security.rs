//! Shared by the `security_*` tests: requests carrying a client credential
//! (stateless 2026-07-28 `tools/list` as it), and the check that no secret
//! reached the gateway's log.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Gateway, HttpResponse, modern_headers, post};

/// How long the tests wait for upstreams, tokens and certificates to take.
pub const WAIT: Duration = Duration::from_secs(30);

/// `headers` with `credential` (a header name and value) added.
pub fn with(credential: (&str, &str), mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers.push((credential.0.into(), credential.1.into()));
    headers
}

/// `token` as an `Authorization: Bearer` credential.
pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// The `_meta` of a stateless 2026-07-28 request.
pub fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// Stateless `tools/list` as `credential`: the names, or the refusal.
pub async fn tools_as(url: &str, credential: &(&str, String)) -> Result<Vec<String>, HttpResponse> {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta()}});
    let headers = with(
        (credential.0, &credential.1),
        modern_headers("tools/list", None),
    );
    let response = post(url, &headers, &body.to_string()).await;
    if response.status != 200 {
        return Err(response);
    }
    let mut names: Vec<String> = response.json()["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    Ok(names)
}

/// The gateway logged its refusals, and none of `secrets`.
pub fn logs_hold_none_of(gateway: &Gateway, secrets: &[&str]) {
    let log = gateway.proc.drain(Duration::from_millis(300)).join("\n");
    assert!(log.contains("request refused"), "the refusals are logged");
    for secret in secrets {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}
