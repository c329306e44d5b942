//! API keys end to end: per-subject (and per-group) lists and calls, a
//! forbidden call that reads like an unknown one, sessions bound to their
//! subject, the rate limit, the RFC 9728 metadata and challenges, refusals
//! in /metrics, and upstreams that see their own credential, never the
//! client's.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::security::*;
use support::*;

const ALICE_KEY: &str = "alice-key-7f3c9a1e5b";
const BOB_KEY: &str = "bob-key-2d8e4f6a0c";
const CAROL_KEY: &str = "carol-key-9b1d3f5e7a";
const DAVE_KEY: &str = "dave-key-4c6e8a0b2d";
const UPSTREAM_TOKEN: &str = "upstream-a-own-token-51ac";

fn key(k: &str) -> (&'static str, String) {
    ("x-api-key", k.to_string())
}

/// Stateless `tools/call` of `tool` as `credential`.
async fn call_as(url: &str, credential: &(&str, String), tool: &str) -> HttpResponse {
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": meta()}});
    let headers = with(
        (credential.0, &credential.1),
        modern_headers("tools/call", Some(tool)),
    );
    post(url, &headers, &body.to_string()).await
}

fn assert_refused(response: &HttpResponse, reason: Option<&str>, base: &str) {
    assert_eq!(response.status, 401, "{:?}", response.body);
    let challenge = response.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.starts_with(&format!(
            "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{challenge}"
    );
    match reason {
        None => assert!(!challenge.contains("error="), "{challenge}"),
        Some(reason) => assert!(
            challenge.contains(&format!(
                "error=\"invalid_token\", error_description=\"{reason}\""
            )),
            "wanted {reason}: {challenge}"
        ),
    }
    assert_eq!(response.json()["error"]["code"], -32002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_authorize_per_subject_and_credentials_stay_at_the_gateway() {
    let (_a, a_url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let (_b, b_url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let bob_key_file = TempFile::new("key", &format!("{BOB_KEY}\n"));
    let config = format!(
        r#"
upstreams:
  - name: a
    url: "{a_url}"
    headers:
      Authorization: "Bearer {UPSTREAM_TOKEN}"
  - name: b
    url: "{b_url}"
auth:
  apiKeys:
    - subject: alice
      key: "${{ALICE_KEY}}"
      groups: [platform]
    - subject: bob
      keyFile: "{bob}"
    - subject: carol
      key: "{CAROL_KEY}"
    - subject: dave
      key: "{DAVE_KEY}"
authorization:
  - subjects: [alice]
    allow: ["a_*"]
    deny: ["a_test_error_handling"]
  - subjects: ["group:platform"]
    allow: ["b_test_simple_text"]
  - subjects: [bob, dave]
    allow: ["b_*"]
rateLimit:
  requestsPerSecond: 2
  burst: 30
"#,
        bob = bob_key_file.path.display()
    );
    let gateway = Gateway::start_with_env(&config, &[("ALICE_KEY", ALICE_KEY)]);
    let url = gateway.mcp();
    let base = gateway.base.clone();
    let (alice, bob, carol, dave) = (
        key(ALICE_KEY),
        bearer(BOB_KEY),
        key(CAROL_KEY),
        key(DAVE_KEY),
    );

    // Health stays open; everything else wants credentials.
    assert_eq!(
        request("GET", &format!("{base}/healthz"), &[], "")
            .await
            .status,
        200
    );
    // Ready once its upstream has connected; never a 401 meanwhile.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = request("GET", &format!("{base}/readyz"), &[], "")
            .await
            .status;
        assert!(status == 200 || status == 503, "/readyz answered {status}");
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let anonymous = post(&url, &modern_headers("tools/list", None), "{}").await;
    assert_refused(&anonymous, None, &base);
    assert_refused(
        &request("GET", &format!("{base}/status"), &[], "").await,
        None,
        &base,
    );
    assert_refused(
        &request("GET", &format!("{base}/metrics"), &[], "").await,
        None,
        &base,
    );
    let wrong = tools_as(&url, &key("not-a-key-at-all-000"))
        .await
        .unwrap_err();
    assert_refused(&wrong, Some("unknown_credential"), &base);
    let basic = tools_as(&url, &("authorization", "Basic YTpi".into()))
        .await
        .unwrap_err();
    assert_refused(&basic, Some("malformed"), &base);

    // RFC 9728 metadata, at the path the challenge names and without it.
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let metadata = request("GET", &format!("{base}{path}"), &[], "").await;
        assert_eq!(metadata.status, 200);
        assert_eq!(metadata.json()["resource"], format!("{base}/mcp"));
        assert_eq!(
            metadata.json()["bearer_methods_supported"],
            json!(["header"])
        );
    }

    // Each subject lists exactly what the rules give it.
    let deadline = Instant::now() + WAIT;
    let alice_tools = loop {
        let tools = tools_as(&url, &alice).await.unwrap();
        if tools.iter().any(|t| t.starts_with("a_")) && tools.iter().any(|t| t.starts_with("b_")) {
            break tools;
        }
        assert!(Instant::now() < deadline, "upstreams not ready: {tools:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(alice_tools.contains(&"a_session_info".to_string()));
    assert!(
        !alice_tools.contains(&"a_test_error_handling".to_string()),
        "denied by her rule"
    );
    let alice_b: Vec<_> = alice_tools.iter().filter(|t| t.starts_with("b_")).collect();
    assert_eq!(alice_b, ["b_test_simple_text"], "granted through her group");
    let bob_tools = tools_as(&url, &bob).await.unwrap();
    assert!(
        !bob_tools.is_empty() && bob_tools.iter().all(|t| t.starts_with("b_")),
        "{bob_tools:?}"
    );
    assert!(
        tools_as(&url, &carol).await.unwrap().is_empty(),
        "no rule, no tools"
    );

    // Resources follow the upstream: a rule covering its whole prefix.
    let resources_as = |credential: (&'static str, String)| {
        let url = url.clone();
        async move {
            let body = json!({"jsonrpc": "2.0", "id": 3, "method": "resources/list", "params": {"_meta": meta()}});
            let headers = with(
                (credential.0, &credential.1),
                modern_headers("resources/list", None),
            );
            let listed = post(&url, &headers, &body.to_string()).await.json();
            listed["result"]["resources"]
                .as_array()
                .expect("resources")
                .len()
        }
    };
    let (for_alice, for_bob) = (
        resources_as(alice.clone()).await,
        resources_as(bob.clone()).await,
    );
    let body =
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/list", "params": {"_meta": meta()}});
    let one_upstream = post(
        &a_url,
        &modern_headers("resources/list", None),
        &body.to_string(),
    )
    .await
    .json()["result"]["resources"]
        .as_array()
        .expect("the upstream's resources")
        .len();
    assert!(one_upstream > 0);
    // Both upstreams are the same server: each caller sees one of them.
    assert_eq!(for_alice, one_upstream, "a's resources for alice (a_*)");
    assert_eq!(for_bob, one_upstream, "b's resources for bob (b_*)");
    assert_eq!(
        resources_as(carol.clone()).await,
        0,
        "no rule, no resources"
    );

    // A forbidden call reads exactly like a call of a tool that does not exist.
    let forbidden = call_as(&url, &alice, "b_session_info").await;
    let missing = call_as(&url, &alice, "b_no_such_tool").await;
    assert_eq!(forbidden.status, missing.status);
    let (forbidden, missing) = (forbidden.json(), missing.json());
    assert_eq!(forbidden["error"]["code"], missing["error"]["code"]);
    assert_eq!(
        forbidden["error"]["message"],
        "Unknown tool: b_session_info"
    );
    assert_eq!(missing["error"]["message"], "Unknown tool: b_no_such_tool");
    assert_eq!(forbidden.get("result"), None);

    // Upstreams see their own credential, never the client's.
    let info = call_as(&url, &alice, "a_session_info").await.json();
    let seen: Value =
        serde_json::from_str(info["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        seen["headers"]["authorization"],
        format!("Bearer {UPSTREAM_TOKEN}")
    );
    assert!(seen["headers"].get("x-api-key").is_none(), "{seen}");
    let info = call_as(&url, &bob, "b_session_info").await.json();
    let seen: Value =
        serde_json::from_str(info["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert!(
        seen["headers"].get("authorization").is_none(),
        "bob's key was forwarded: {seen}"
    );

    // A 2025 session is bound to the subject that opened it.
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    let opened = post(&url, &with((alice.0, &alice.1), legacy_headers(None)), init).await;
    assert_eq!(opened.status, 200);
    let session = opened.header("mcp-session-id").unwrap();
    let ping = r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#;
    let as_alice = post(
        &url,
        &with((alice.0, &alice.1), legacy_headers(Some(&session))),
        ping,
    )
    .await;
    assert_eq!(as_alice.status, 200, "{:?}", as_alice.body);
    let as_bob = post(
        &url,
        &with((bob.0, &bob.1), legacy_headers(Some(&session))),
        ping,
    )
    .await;
    assert_eq!(as_bob.status, 404, "another subject's session is unknown");
    let list = r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#;
    let listed = post(
        &url,
        &with((alice.0, &alice.1), legacy_headers(Some(&session))),
        list,
    )
    .await;
    assert_eq!(
        listed.json()["result"]["tools"].as_array().unwrap().len(),
        alice_tools.len()
    );

    // A burst beyond the bucket gets 429 with Retry-After, for dave alone.
    let burst = (0..60).map(|_| {
        let (url, dave) = (url.clone(), dave.clone());
        async move { post(&url, &with((dave.0, &dave.1), modern_headers("server/discover", None)),
            &json!({"jsonrpc":"2.0","id":9,"method":"server/discover","params":{"_meta": meta()}}).to_string()).await }
    });
    let answers = futures_util::future::join_all(burst).await;
    let limited: Vec<_> = answers.iter().filter(|r| r.status == 429).collect();
    assert!(limited.len() >= 25, "{} of 60 limited", limited.len());
    assert!(answers.iter().all(|r| r.status == 200 || r.status == 429));
    assert!(answers.iter().filter(|r| r.status == 200).count() >= 25);
    let retry: u64 = limited[0].header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(limited[0].json()["error"]["code"], -32003);
    assert!(
        tools_as(&url, &bob).await.is_ok(),
        "bob has a bucket of his own"
    );

    // Refusals by reason, and 429s, reach /metrics.
    let metrics = request(
        "GET",
        &format!("{base}/metrics"),
        &[(bob.0.into(), bob.1.clone())],
        "",
    )
    .await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    assert!(
        text.contains("switchboard_auth_failures_total{reason=\"missing\"} 3"),
        "{text}"
    );
    assert!(text.contains("switchboard_auth_failures_total{reason=\"unknown_credential\"} 1"));
    assert!(text.contains("switchboard_auth_failures_total{reason=\"malformed\"} 1"));
    assert!(text.contains(&format!("switchboard_rate_limited_total {}", limited.len())));

    logs_hold_none_of(
        &gateway,
        &[ALICE_KEY, BOB_KEY, CAROL_KEY, DAVE_KEY, UPSTREAM_TOKEN],
    );
}
