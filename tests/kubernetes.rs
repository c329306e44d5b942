//! Kubernetes discovery end to end: Switchboard's real kube client against
//! the in-test API server (a test double: `support::kube_api`), with real
//! upstream MCP servers standing in for the pods behind each Service.
//!
//! Every pod is the rmcp upstream on 127.0.0.1; an EndpointSlice names its
//! port, so the gateway dials the "pod" exactly as it would in a cluster
//! (the objects are built by `support::kube_api::fixtures`).

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::kube_api::KubeApi;
use support::kube_api::fixtures::*;
use support::*;

fn tool_names(answer: &Value) -> Vec<String> {
    answer["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {answer}"))
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// Waits for list_changed deliveries until the client's list satisfies `done`.
fn wait_changed_until(watcher: &mut Watcher, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = watcher.send("wait-changed 5000", Duration::from_secs(10));
        if answer["changed"] == true {
            let tools = tool_names(&answer);
            if done(&tools) {
                return tools;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no list_changed brought the expected tools; last answer {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registrations_drive_the_catalog_rollouts_and_status() {
    let api = api_serving_registrations().await;
    let dir = TempDir::new();

    // Pod A of the weather Service: a 2025-only upstream with sessions.
    let (pod_a, url_a) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    api.put(service("weather"));
    api.put(slice("weather", &[(port_of(&url_a), true)]));
    api.put(route("weather-route", "weather"));
    api.put(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": NS, "name": "weather-token"},
        "data": {"token": base64(b"s3cret-registration-token")},
    }));

    let gateway = kube_gateway(&api, &dir, "");
    wait_ready(&gateway).await;
    let (mut watcher, ready) = Watcher::start(&gateway.mcp(), "modern");
    assert!(
        tool_names(&ready).is_empty(),
        "nothing registered yet: {ready}"
    );

    // Register: the tools arrive with a notification, the status says so.
    api.put(registration(
        "weather",
        "weather-route",
        "weather_",
        "2026-01-01T00:00:00Z",
    ));
    let tools = wait_changed_until(&mut watcher, |t| t.iter().any(|n| n == "weather_echo"));
    assert!(tools.iter().all(|t| t.starts_with("weather_")), "{tools:?}");
    let object = wait_for_reason(&api, REGISTRATION, "weather", "Ready").await;
    let status = &object["status"];
    assert_eq!(status["conditions"][0]["status"], "True");
    assert_eq!(
        status["url"],
        "http://weather.team.svc.cluster.local:8080/mcp"
    );
    assert_eq!(
        status["observedGeneration"],
        object["metadata"]["generation"]
    );
    assert_eq!(status["discoveredTools"], json!(tools.len()));
    assert!(
        status["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "serving {} tools from http://weather.team",
                tools.len()
            )),
        "{status}"
    );

    // The Secret's token is what the upstream sees; the client's is not.
    let session = initialize(&gateway.mcp()).await;
    let first = session_info(&gateway.mcp(), &session, "weather_session_info", 1).await;
    assert_eq!(
        first["headers"]["authorization"], "Bearer s3cret-registration-token",
        "{first}"
    );
    let pinned_session = first["sessionId"].as_str().unwrap().to_string();
    assert_eq!(
        session_info(&gateway.mcp(), &session, "weather_session_info", 2).await["sessionId"],
        pinned_session
    );

    // A newer registration asking for the same prefix is held out.
    api.put(registration(
        "copycat",
        "weather-route",
        "weather_",
        "2026-03-01T00:00:00Z",
    ));
    let copycat = wait_for_reason(&api, REGISTRATION, "copycat", "DuplicatePrefix").await;
    let message = copycat["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("team/weather"), "{message}");
    assert_eq!(
        ready_condition(&api, REGISTRATION, "weather")["reason"],
        "Ready"
    );

    // A rollout: pod B (new version, one more tool) becomes ready, pod A
    // leaves the slice and stops. The 2025 client's next call works, on a
    // new upstream session, and the new tool arrives via list_changed.
    let (_pod_b, url_b) = rmcp_upstream(&[
        "--http",
        "127.0.0.1:0",
        "--legacy-only",
        "--extra-tool",
        "forecast",
    ]);
    api.put(slice("weather", &[(port_of(&url_b), true)]));
    let tools = wait_changed_until(&mut watcher, |t| t.iter().any(|n| n == "weather_forecast"));
    assert!(tools.iter().any(|n| n == "weather_echo"));
    drop(pod_a);
    let moved = session_info(&gateway.mcp(), &session, "weather_session_info", 3).await;
    assert_ne!(
        moved["sessionId"], pinned_session,
        "the session moved to pod B"
    );
    assert_ne!(moved["pid"], first["pid"], "served by another process");
    assert_eq!(
        session_info(&gateway.mcp(), &session, "weather_session_info", 4).await["sessionId"],
        moved["sessionId"]
    );

    // The route's backend changes: the URL moves to the other Service.
    let (_pod_c, url_c) = rmcp_upstream(&[
        "--http",
        "127.0.0.1:0",
        "--legacy-only",
        "--extra-tool",
        "relocated",
    ]);
    api.put(service("weather-v2"));
    api.put(slice("weather-v2", &[(port_of(&url_c), true)]));
    api.put(route("weather-route", "weather-v2"));
    wait_changed_until(&mut watcher, |t| t.iter().any(|n| n == "weather_relocated"));
    let deadline = Instant::now() + WAIT;
    while api
        .get(REGISTRATION.0, REGISTRATION.1, Some(NS), "weather")
        .unwrap()["status"]["url"]
        != "http://weather-v2.team.svc.cluster.local:8080/mcp"
    {
        assert!(Instant::now() < deadline, "the status URL never moved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // History compacted and every watch cut: the gateway's resumed watch
    // gets 410 Gone and it relists. (Waited for before the next change: a
    // change racing the cut could reach the old watch first and let the
    // resume start past the compaction, with no 410 to see.)
    let lists_before = registration_lists(&api);
    api.compact();
    api.break_watches();
    let deadline = Instant::now() + WAIT;
    while registration_lists(&api) == lists_before {
        assert!(
            Instant::now() < deadline,
            "no relist after 410 Gone; requests: {:?}",
            api.requests()
                .iter()
                .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It still sees the next changes: the deletions.
    api.delete(REGISTRATION.0, REGISTRATION.1, Some(NS), "weather");
    // The copycat now owns the prefix (its status turns Ready), and the
    // catalog keeps weather_ tools served through it.
    wait_for_reason(&api, REGISTRATION, "copycat", "Ready").await;
    api.delete(REGISTRATION.0, REGISTRATION.1, Some(NS), "copycat");
    wait_changed_until(&mut watcher, |t| t.is_empty());

    // Secrets: read by name only, never listed or watched.
    let secret_requests: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/secrets"))
        .collect();
    assert!(!secret_requests.is_empty());
    for r in &secret_requests {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/api/v1/namespaces/team/secrets/weather-token"),
            "{r:?}"
        );
        assert!(!r.query.contains("watch"), "{r:?}");
    }
    let log = gateway.proc.drain(Duration::from_millis(200)).join("\n");
    assert!(
        !log.contains("s3cret-registration-token"),
        "the token reached the log"
    );
}

fn registration_lists(api: &KubeApi) -> usize {
    api.requests()
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.path.ends_with("/mcpserverregistrations")
                && !r.query.contains("watch=true")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn older_form_bad_objects_and_missing_links_are_reported_not_fatal() {
    let api = api_serving_registrations().await;
    // The kagenti CRD is not installed yet.
    let dir = TempDir::new();
    let (_pod, url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    api.put(service("weather"));
    api.put(slice("weather", &[(port_of(&url), true)]));
    api.put(route("weather-route", "weather"));

    let gateway = kube_gateway(&api, &dir, "");
    wait_ready(&gateway).await;
    gateway.proc.wait_for(
        "MCPServer (mcp.kagenti.com/v1alpha1) not installed; not watched",
        WAIT,
    );

    // A registration missing its targetRef; one whose route does not exist;
    // one with no ready pods; one whose credential Secret is missing.
    api.put(json!({
        "apiVersion": "mcp.kuadrant.io/v1", "kind": "MCPServerRegistration",
        "metadata": {"namespace": NS, "name": "broken"},
        "spec": {"prefix": "broken_"},
    }));
    wait_for_reason(&api, REGISTRATION, "broken", "InvalidSpec").await;
    let mut lost = registration("lost", "no-such-route", "lost_", "2026-01-01T00:00:00Z");
    lost["spec"]
        .as_object_mut()
        .unwrap()
        .remove("credentialRef");
    api.put(lost);
    let object = wait_for_reason(&api, REGISTRATION, "lost", "RouteNotFound").await;
    assert!(
        object["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("HTTPRoute team/no-such-route not found")
    );
    api.put(service("idle"));
    api.put(slice("idle", &[(port_of(&url), false)]));
    api.put(route("idle-route", "idle"));
    let mut idle = registration("idle", "idle-route", "idle_", "2026-01-01T00:00:00Z");
    idle["spec"]
        .as_object_mut()
        .unwrap()
        .remove("credentialRef");
    api.put(idle);
    wait_for_reason(&api, REGISTRATION, "idle", "NoReadyEndpoints").await;
    api.put(registration(
        "secretless",
        "weather-route",
        "secretless_",
        "2026-01-01T00:00:00Z",
    ));
    wait_for_reason(&api, REGISTRATION, "secretless", "SecretNotFound").await;

    // The older kagenti form, once its CRD appears.
    api.register("mcp.kagenti.com/v1alpha1", "MCPServer", "mcpservers", true);
    api.put(json!({
        "apiVersion": "mcp.kagenti.com/v1alpha1", "kind": "MCPServer",
        "metadata": {"namespace": NS, "name": "legacy"},
        "spec": {"targetRef": {"name": "weather-route"}, "toolPrefix": "old_"},
    }));
    gateway.wait_for_tools(&["old_echo"]).await;
    wait_for_reason(
        &api,
        ("mcp.kagenti.com/v1alpha1", "MCPServer"),
        "legacy",
        "Ready",
    )
    .await;

    // Disabled: the tools leave.
    api.put(json!({
        "apiVersion": "mcp.kagenti.com/v1alpha1", "kind": "MCPServer",
        "metadata": {"namespace": NS, "name": "legacy"},
        "spec": {"targetRef": {"name": "weather-route"}, "toolPrefix": "old_", "state": "Disabled"},
    }));
    wait_for_reason(
        &api,
        ("mcp.kagenti.com/v1alpha1", "MCPServer"),
        "legacy",
        "Disabled",
    )
    .await;
    let deadline = Instant::now() + WAIT;
    while list_tool_names(&gateway.mcp())
        .await
        .iter()
        .any(|t| t.starts_with("old_"))
    {
        assert!(Instant::now() < deadline, "disabled tools stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_cluster_access_the_file_is_served() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let gateway = Gateway::start_with_env(
        &format!("kubernetes: {{}}\nupstreams:\n  - name: local\n    url: \"{url}\"\n"),
        &[("KUBECONFIG", "/nonexistent/kubeconfig")],
    );
    gateway.proc.wait_for("Kubernetes discovery is off", WAIT);
    wait_ready(&gateway).await;
    gateway.wait_for_tools(&["local_echo"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn https_upstreams_trust_a_private_ca_and_nothing_else() {
    let dir = TempDir::new();
    let service_host = "weather-tls.team.svc.cluster.local";
    let (ca_pem, cert, key) = private_ca(&dir.path, &[service_host, "localhost"]);
    let (_pod, port) = tls_upstream(&cert, &key);

    let api = api_serving_registrations().await;
    // The Service port is named https: the URL is https, and the pod
    // (dialed by address) must present a certificate for the Service name.
    let mut tls_service = service("weather-tls");
    tls_service["spec"]["ports"][0]["name"] = json!("https");
    api.put(tls_service);
    let mut tls_slice = slice("weather-tls", &[(port, true)]);
    tls_slice["ports"][0]["name"] = json!("https");
    api.put(tls_slice);
    api.put(route("weather-tls-route", "weather-tls"));
    api.put(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": NS, "name": "weather-ca"},
        "data": {"ca.crt": base64(ca_pem.as_bytes())},
    }));
    let mut trusted = registration(
        "trusted",
        "weather-tls-route",
        "tls_",
        "2026-01-01T00:00:00Z",
    );
    trusted["spec"]["caCertSecretRef"] = json!({"name": "weather-ca"});
    trusted["spec"]
        .as_object_mut()
        .unwrap()
        .remove("credentialRef");
    api.put(trusted);
    let mut untrusted = registration(
        "untrusted",
        "weather-tls-route",
        "untrusted_",
        "2026-01-01T00:00:00Z",
    );
    untrusted["spec"]
        .as_object_mut()
        .unwrap()
        .remove("credentialRef");
    api.put(untrusted);

    // A config-file upstream with the same CA, by host name.
    let ca_file = dir.path.join("ca.pem");
    let gateway = kube_gateway(
        &api,
        &dir,
        &format!(
            "upstreams:\n  - name: local\n    url: \"https://localhost:{port}/mcp\"\n    caFile: \"{}\"\n",
            ca_file.display()
        ),
    );
    gateway.wait_for_tools(&["tls_echo", "local_echo"]).await;
    let object = wait_for_reason(&api, REGISTRATION, "trusted", "Ready").await;
    assert_eq!(
        object["status"]["url"],
        format!("https://{service_host}:8080/mcp")
    );
    // Without the CA the system roots do not vouch for it: refused, and
    // the status says why. There is no switch to skip verification.
    let object = wait_for_reason(&api, REGISTRATION, "untrusted", "UpstreamUnreachable").await;
    let message = object["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap();
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    assert!(
        !list_tool_names(&gateway.mcp())
            .await
            .iter()
            .any(|t| t.starts_with("untrusted_"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_namespaces_bound_what_is_watched() {
    let api = api_serving_registrations().await;
    let dir = TempDir::new();
    let (_pod, url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let in_namespace = |mut object: Value, namespace: &str| {
        object["metadata"]["namespace"] = json!(namespace);
        object
    };
    for namespace in [NS, "other"] {
        api.put(in_namespace(service("weather"), namespace));
        api.put(in_namespace(
            slice("weather", &[(port_of(&url), true)]),
            namespace,
        ));
        api.put(in_namespace(route("weather-route", "weather"), namespace));
        let prefix = if namespace == NS { "mine_" } else { "theirs_" };
        let mut registration =
            registration("weather", "weather-route", prefix, "2026-01-01T00:00:00Z");
        registration["spec"]
            .as_object_mut()
            .unwrap()
            .remove("credentialRef");
        api.put(in_namespace(registration, namespace));
    }
    let gateway = kube_gateway_with(&api, &dir, "kubernetes:\n  namespaces: [team]", "");
    gateway.wait_for_tools(&["mine_echo"]).await;
    wait_for_reason(&api, REGISTRATION, "weather", "Ready").await;
    assert!(
        !list_tool_names(&gateway.mcp())
            .await
            .iter()
            .any(|t| t.starts_with("theirs_")),
        "a registration outside the configured namespaces was served"
    );
    let theirs = api
        .get(REGISTRATION.0, REGISTRATION.1, Some("other"), "weather")
        .unwrap();
    assert!(
        theirs.get("status").is_none(),
        "status written outside: {theirs}"
    );
    // API discovery (whether the absent kagenti kind is served yet) reads
    // no objects, in any namespace.
    for request in api.requests().iter().filter(|r| !r.is_discovery()) {
        assert!(
            request.path.contains("/namespaces/team/"),
            "a request beyond namespace team: {request:?}"
        );
    }
}
