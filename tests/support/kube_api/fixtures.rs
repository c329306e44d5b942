//! Builders for the objects discovery follows (a Service, its
//! EndpointSlice, an HTTPRoute, a registration) and for a gateway pointed
//! at the double, shared by the discovery tests. Every pod is a real MCP
//! server on 127.0.0.1: an EndpointSlice names its port, so the gateway
//! dials the "pod" exactly as it would in a cluster.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::KubeApi;
use crate::support::{Gateway, TempDir, request};

/// The namespace the fixtures live in.
pub const NS: &str = "team";

/// How long anything in a discovery test may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// `MCPServerRegistration`: (apiVersion, kind).
pub const REGISTRATION: (&str, &str) = ("mcp.kuadrant.io/v1", "MCPServerRegistration");

/// The older kagenti `MCPServer`: (apiVersion, kind).
pub const KAGENTI: (&str, &str) = ("mcp.kagenti.com/v1alpha1", "MCPServer");

pub fn port_of(url: &str) -> u16 {
    url.trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// The API double with the MCPServerRegistration CRD installed (the
/// built-in kinds are always served).
pub async fn api_serving_registrations() -> KubeApi {
    let api = KubeApi::start().await;
    serve_registrations(&api);
    api
}

/// Installs the MCPServerRegistration CRD.
pub fn serve_registrations(api: &KubeApi) {
    api.register(
        REGISTRATION.0,
        REGISTRATION.1,
        "mcpserverregistrations",
        true,
    );
}

/// Installs the kagenti MCPServer CRD.
pub fn serve_kagenti(api: &KubeApi) {
    api.register(KAGENTI.0, KAGENTI.1, "mcpservers", true);
}

pub fn service(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": NS, "name": name},
        "spec": {"type": "ClusterIP", "selector": {"app": name},
                 "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]},
    })
}

/// The EndpointSlice of `service`: each pod is (port on 127.0.0.1, ready).
pub fn slice(service: &str, pods: &[(u16, bool)]) -> Value {
    // One slice per pod port: in a cluster every pod listens on the same
    // port; here each "pod" is a process with its own.
    let endpoints: Vec<Value> = pods
        .iter()
        .map(|(_, ready)| json!({"addresses": ["127.0.0.1"], "conditions": {"ready": ready}}))
        .collect();
    let port = pods.first().map_or(0, |(port, _)| *port);
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": NS, "name": format!("{service}-abcde"),
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    })
}

pub fn route(name: &str, service: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"namespace": NS, "name": name},
        "spec": {"parentRefs": [{"name": "mcp-gateway"}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/mcp"}}],
                            "backendRefs": [{"name": service, "port": 8080}]}]},
    })
}

/// A registration whose credential is the Secret `weather-token`.
pub fn registration(name: &str, route: &str, prefix: &str, created: &str) -> Value {
    json!({
        "apiVersion": "mcp.kuadrant.io/v1", "kind": "MCPServerRegistration",
        "metadata": {"namespace": NS, "name": name, "creationTimestamp": created},
        "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route},
                 "prefix": prefix, "path": "/mcp",
                 "credentialRef": {"name": "weather-token", "key": "token"}},
    })
}

/// A registration that sends no credential.
pub fn open_registration(name: &str, route: &str, prefix: &str) -> Value {
    let mut registration = registration(name, route, prefix, "2026-01-01T00:00:00Z");
    if let Some(spec) = registration["spec"].as_object_mut() {
        spec.remove("credentialRef");
    }
    registration
}

/// The older kagenti form, pointing at `route`.
pub fn kagenti_server(name: &str, route: &str, prefix: &str) -> Value {
    json!({
        "apiVersion": KAGENTI.0, "kind": KAGENTI.1,
        "metadata": {"namespace": NS, "name": name},
        "spec": {"targetRef": {"name": route}, "toolPrefix": prefix},
    })
}

/// A Service with one ready pod (the MCP server at `url`) and a route to it.
pub fn serve_pod(api: &KubeApi, service_name: &str, route_name: &str, url: &str) {
    api.put(service(service_name));
    api.put(slice(service_name, &[(port_of(url), true)]));
    api.put(route(route_name, service_name));
}

pub fn ready_condition(api: &KubeApi, kind: (&str, &str), name: &str) -> Value {
    api.get(kind.0, kind.1, Some(NS), name)
        .and_then(|o| o.pointer("/status/conditions/0").cloned())
        .unwrap_or(Value::Null)
}

/// Waits until the registration's Ready condition has `reason`.
pub async fn wait_for_reason(api: &KubeApi, kind: (&str, &str), name: &str, reason: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let condition = ready_condition(api, kind, name);
        if condition["reason"] == reason {
            return api.get(kind.0, kind.1, Some(NS), name).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "{name}: Ready never had reason {reason}; last: {condition}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A gateway discovering from the double, with `upstreams` (YAML) besides.
pub fn kube_gateway(api: &KubeApi, dir: &TempDir, upstreams: &str) -> Gateway {
    kube_gateway_with(api, dir, "kubernetes: {}", upstreams)
}

pub fn kube_gateway_with(
    api: &KubeApi,
    dir: &TempDir,
    kubernetes: &str,
    upstreams: &str,
) -> Gateway {
    let kubeconfig = api.write_kubeconfig(&dir.path);
    Gateway::start_with_env(
        &format!("{kubernetes}\nhealth:\n  probeInterval: 1s\n  gracePeriod: 3s\n{upstreams}"),
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    )
}

/// `/readyz` status now.
pub async fn readyz(gateway: &Gateway) -> u16 {
    request("GET", &format!("{}/readyz", gateway.base), &[], "")
        .await
        .status
}

/// Waits until `/readyz` answers 200 (discovery synced).
pub async fn wait_ready(gateway: &Gateway) {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = readyz(gateway).await;
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
