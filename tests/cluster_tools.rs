//! The built-in `cluster_` tools through a real MCP client (the TypeScript
//! SDK), against the in-test Kubernetes API server (a test double,
//! `support::kube_api`) holding a cluster with things wrong in it: a
//! crash-looping pod, a node that is not ready, a stalled deployment, a
//! failing Flux Kustomization and a certificate about to expire.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::kube_api::{KubeApi, rfc3339};
use support::*;

fn ago(seconds: u64) -> String {
    rfc3339(std::time::SystemTime::now() - Duration::from_secs(seconds))
}

fn in_days(days: u64) -> String {
    rfc3339(std::time::SystemTime::now() + Duration::from_secs(days * 86_400))
}

/// A small cluster with one of each kind of trouble.
fn populate(api: &KubeApi) {
    let node = |name: &str, ready: &str, role: &str, pressure: &str| {
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "creationTimestamp": ago(30 * 86_400),
                         "labels": {format!("node-role.kubernetes.io/{role}"): ""}},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": ready, "reason": if ready == "True" { "KubeletReady" } else { "KubeletNotReady" },
                     "message": if ready == "True" { "kubelet is posting ready status" } else { "container runtime is down" }},
                    {"type": "MemoryPressure", "status": pressure, "reason": "KubeletHasInsufficientMemory", "message": "available memory is low"},
                ],
                "capacity": {"cpu": "4", "memory": "16Gi"},
                "allocatable": {"cpu": "3800m", "memory": "15Gi"},
                "nodeInfo": {"kubeletVersion": "v1.35.1", "operatingSystem": "linux", "architecture": "amd64",
                             "bootID": "", "containerRuntimeVersion": "containerd://2.1", "kernelVersion": "6.8",
                             "kubeProxyVersion": "", "machineID": "", "osImage": "Debian", "systemUUID": ""},
            },
        })
    };
    api.put(node("node-1", "True", "control-plane", "False"));
    api.put(node("node-2", "False", "worker", "True"));

    api.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": "shop", "name": "web-7d9f", "labels": {"app": "web"}, "creationTimestamp": ago(7200)},
        "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "web:1"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "web", "ready": true, "restartCount": 0, "image": "web:1", "imageID": "",
             "state": {"running": {"startedAt": ago(7000)}}}]},
    }));
    api.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": "shop", "name": "api-5c4b", "labels": {"app": "api"}, "creationTimestamp": ago(3600)},
        "spec": {"nodeName": "node-1", "containers": [{"name": "api", "image": "api:2"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "api", "ready": false, "restartCount": 7, "image": "api:2", "imageID": "",
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
             "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}]},
    }));
    let log: String = (1..=200).map(|i| format!("api line {i}\n")).collect();
    api.set_pod_log("shop", "api-5c4b", "api", &log);
    api.set_previous_pod_log("shop", "api-5c4b", "api", "panic: missing DATABASE_URL\n");

    api.put(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"namespace": "shop", "name": "api", "creationTimestamp": ago(86_400)},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "api:2"}]}}},
        "status": {"replicas": 2, "updatedReplicas": 2, "readyReplicas": 0, "availableReplicas": 0,
                   "conditions": [
                       {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."},
                       {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"api-5c4b\" has timed out progressing."}]},
    }));
    api.put(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"namespace": "shop", "name": "web", "creationTimestamp": ago(86_400)},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
        "status": {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                   "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "done"}]},
    }));
    api.put(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"namespace": "shop", "name": "api-5c4b.backoff"},
        "involvedObject": {"kind": "Pod", "name": "api-5c4b", "namespace": "shop"},
        "type": "Warning", "reason": "BackOff", "count": 31,
        "message": "Back-off restarting failed container api",
        "lastTimestamp": ago(60),
    }));
    api.put(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"namespace": "shop", "name": "web-7d9f.scheduled"},
        "involvedObject": {"kind": "Pod", "name": "web-7d9f", "namespace": "shop"},
        "type": "Normal", "reason": "Scheduled", "message": "Successfully assigned shop/web-7d9f to node-1",
        "lastTimestamp": ago(7200),
    }));
    api.put(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"namespace": "shop", "name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {
            "metadata": {"labels": {"app": "nightly"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "report", "image": "report:1"}]}}}}},
    }));
    // A Secret exists; no tool may ever read it.
    api.put(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": "shop", "name": "db"},
        "data": {"password": "aHVudGVyMg=="},
    }));
}

fn add_flux_and_cert_manager(api: &KubeApi) {
    api.register(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        "kustomizations",
        true,
    );
    api.register(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        "gitrepositories",
        true,
    );
    api.register("cert-manager.io/v1", "Certificate", "certificates", true);
    api.put(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"namespace": "flux-system", "name": "apps"},
        "spec": {"path": "./apps", "sourceRef": {"kind": "GitRepository", "name": "fleet"}},
        "status": {"lastAttemptedRevision": "main@sha1:bad0", "conditions": [
            {"type": "Ready", "status": "False", "reason": "BuildFailed",
             "message": "kustomize build failed: accumulating resources: missing file apps/shop"}]},
    }));
    api.put(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"namespace": "flux-system", "name": "fleet"},
        "spec": {"url": "https://git.example.com/fleet"},
        "status": {"artifact": {"revision": "main@sha1:bad0"}, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "stored artifact"}]},
    }));
    api.put(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"namespace": "shop", "name": "web-tls"},
        "spec": {"secretName": "web-tls", "dnsNames": ["shop.example.com"],
                 "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
        "status": {"notAfter": in_days(5), "renewalTime": ago(3600), "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready", "message": "Certificate is up to date and has not expired"}]},
    }));
}

fn gateway_for(api: &KubeApi, config: &str) -> (Gateway, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-cluster-tools-{}-{}",
        std::process::id(),
        api.url().rsplit(':').next().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = api.write_kubeconfig(&dir);
    let gateway = Gateway::start_with_env(config, &[("KUBECONFIG", kubeconfig.to_str().unwrap())]);
    (gateway, dir)
}

fn text(output: &Value, index: usize) -> String {
    let call = &output["calls"][index];
    assert!(call.get("error").is_none(), "call {index} failed: {call}");
    call["text"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tool_through_a_real_client() {
    let api = KubeApi::start().await;
    populate(&api);
    add_flux_and_cert_manager(&api);
    let (gateway, dir) = gateway_for(
        &api,
        "clusterTools:\n  restartDeployments: [\"shop/web\"]\n  triggerJobs: [\"shop/nightly\"]\n\
         upstreams:\n  - name: broken\n    url: \"http://127.0.0.1:1/mcp\"\n",
    );
    gateway
        .wait_for_tools(&[
            "cluster_list_nodes",
            "cluster_flux_status",
            "cluster_certificates",
        ])
        .await;

    let plan = json!({"calls": [
        {"name": "cluster_list_nodes", "arguments": {}},
        {"name": "cluster_health", "arguments": {}},
        {"name": "cluster_list_pods", "arguments": {"namespace": "shop", "labelSelector": "app=api"}},
        {"name": "cluster_pod_logs", "arguments": {"namespace": "shop", "pod": "api-5c4b", "container": "api", "tailLines": 3}},
        {"name": "cluster_pod_logs", "arguments": {"namespace": "shop", "pod": "api-5c4b", "container": "api", "previous": true}},
        {"name": "cluster_events", "arguments": {"namespace": "shop", "type": "Warning"}},
        {"name": "cluster_list_deployments", "arguments": {"namespace": "shop"}},
        {"name": "cluster_list_mcp_servers", "arguments": {}},
        {"name": "cluster_flux_status", "arguments": {}},
        {"name": "cluster_certificates", "arguments": {}},
        {"name": "cluster_restart_deployment", "arguments": {"namespace": "shop", "name": "api"}},
        {"name": "cluster_restart_deployment", "arguments": {"namespace": "shop", "name": "web"}},
        {"name": "cluster_trigger_job", "arguments": {"namespace": "shop", "cronJob": "nightly"}},
        {"name": "cluster_list_pods", "arguments": {"namespace": 7}},
    ]});
    let output = ts_client(&gateway.mcp(), "modern", &plan);
    for (index, call) in output["calls"].as_array().unwrap().iter().enumerate() {
        eprintln!(
            "--- {index} {}\n{}",
            call["name"],
            call["text"].as_str().unwrap_or_default()
        );
    }

    let nodes = text(&output, 0);
    assert!(
        nodes.contains(
            "node-1 [control-plane] Ready kubelet v1.35.1 linux/amd64 cpu 3800m/4 memory 15Gi/16Gi"
        ),
        "{nodes}"
    );
    assert!(nodes.contains("node-2 [worker] NotReady"), "{nodes}");
    assert!(
        nodes.contains("MemoryPressure=True KubeletHasInsufficientMemory"),
        "{nodes}"
    );
    assert_eq!(output["calls"][0]["structured"]["nodes"][1]["ready"], false);

    let health = text(&output, 1);
    for expected in [
        "Nodes not ready (1):",
        "node-2: Ready=False KubeletNotReady",
        "shop/api-5c4b Running ready 0/1 restarts 7 node node-1",
        "waiting: CrashLoopBackOff last termination: Error (exit 1)",
        "shop/api desired 2 updated 2 ready 0 available 0 rollout stalled: ProgressDeadlineExceeded",
        "Warning BackOff shop/Pod/api-5c4b: Back-off restarting failed container api",
    ] {
        assert!(
            health.contains(expected),
            "health lacks {expected:?}:\n{health}"
        );
    }
    assert!(
        !health.contains("web-7d9f"),
        "a healthy pod is not a problem:\n{health}"
    );
    assert_eq!(output["calls"][1]["structured"]["healthy"], false);

    let pods = text(&output, 2);
    assert!(
        pods.contains("shop/api-5c4b") && !pods.contains("web-7d9f"),
        "{pods}"
    );

    assert_eq!(
        text(&output, 3),
        "api line 198\napi line 199\napi line 200\n"
    );
    assert_eq!(text(&output, 4), "panic: missing DATABASE_URL\n");

    let events = text(&output, 5);
    assert!(
        events.contains("BackOff") && !events.contains("Scheduled"),
        "{events}"
    );

    let deployments = text(&output, 6);
    assert!(
        deployments.contains("shop/web desired 1 updated 1 ready 1 available 1 rollout complete"),
        "{deployments}"
    );
    assert!(
        deployments.contains("Progressing=False ProgressDeadlineExceeded"),
        "{deployments}"
    );

    let servers = text(&output, 7);
    assert!(
        servers.contains("cluster (cluster_*) ready (built in) era 2026-07-28"),
        "{servers}"
    );
    assert!(
        servers.contains("broken (broken_*) failing http://127.0.0.1:1/mcp"),
        "{servers}"
    );
    assert!(servers.contains("last error:"), "{servers}");

    let flux = text(&output, 8);
    assert!(flux.contains("Kustomization flux-system/apps NotReady revision main@sha1:bad0 — BuildFailed: kustomize build failed"), "{flux}");
    assert!(
        flux.contains("GitRepository flux-system/fleet Ready revision main@sha1:bad0"),
        "{flux}"
    );

    let certificates = text(&output, 9);
    assert!(
        certificates.contains("shop/web-tls Ready")
            && certificates.contains("issuer letsencrypt EXPIRING SOON"),
        "{certificates}"
    );

    // Outside the allowlist: refused, naming the setting; nothing patched.
    let refused = &output["calls"][10];
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        refused["text"]
            .as_str()
            .unwrap()
            .contains("clusterTools.restartDeployments"),
        "{refused}"
    );
    let api_deployment = api
        .get("apps/v1", "Deployment", Some("shop"), "api")
        .unwrap();
    assert!(
        api_deployment
            .pointer("/spec/template/metadata/annotations")
            .is_none()
    );

    // Inside it: the patch `kubectl rollout restart` makes reached the API server.
    assert!(text(&output, 11).contains("deployment shop/web restarting"));
    let web = api
        .get("apps/v1", "Deployment", Some("shop"), "web")
        .unwrap();
    assert!(
        web.pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
            .is_some_and(Value::is_string),
        "{web}"
    );
    assert_eq!(
        web["metadata"]["generation"], 2,
        "a template change is a new generation"
    );

    assert!(text(&output, 12).contains("created from cronjob nightly"));
    let jobs = api.list("batch/v1", "Job");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        jobs[0]["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(
        jobs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "report:1"
    );

    assert_eq!(
        output["calls"][13]["isError"], true,
        "a bad argument is a tool error"
    );

    // Secrets: never requested by any tool.
    let secret_requests: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("secrets"))
        .collect();
    assert!(secret_requests.is_empty(), "{secret_requests:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn optional_tools_appear_only_where_they_apply() {
    let api = KubeApi::start().await;
    populate(&api);
    let (gateway, dir) = gateway_for(&api, "clusterTools:\n  namespaces: [shop]\n");
    gateway.wait_for_tools(&["cluster_list_nodes"]).await;
    let listed = post(
        &gateway.mcp(),
        &modern_headers("tools/list", None),
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}})
        .to_string(),
    )
    .await
    .json();
    let tools = listed["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for absent in [
        "cluster_flux_status",
        "cluster_certificates",
        "cluster_restart_deployment",
        "cluster_trigger_job",
    ] {
        assert!(!names.contains(&absent), "{absent} offered: {names:?}");
    }
    for tool in tools
        .iter()
        .filter(|t| t["name"].as_str().unwrap().starts_with("cluster_"))
    {
        assert_eq!(tool["annotations"]["readOnlyHint"], true, "{tool}");
        assert!(tool["description"].as_str().unwrap().len() > 40, "{tool}");
        assert_eq!(tool["inputSchema"]["type"], "object");
    }

    // A namespace outside clusterTools.namespaces is refused.
    let plan = json!({"calls": [
        {"name": "cluster_list_pods", "arguments": {"namespace": "kube-system"}},
        {"name": "cluster_list_pods", "arguments": {}},
    ]});
    let output = ts_client(&gateway.mcp(), "legacy", &plan);
    assert_eq!(output["calls"][0]["isError"], true);
    assert!(
        output["calls"][0]["text"]
            .as_str()
            .unwrap()
            .contains("clusterTools.namespaces")
    );
    assert!(text(&output, 1).contains("shop/api-5c4b"));
    assert!(
        api.requests()
            .iter()
            .all(|r| !r.path.contains("/pods") || r.path.contains("/namespaces/shop/")),
        "pods read beyond the allowed namespace"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// One `cluster_list_nodes` call as a 2026-07-28 client; its text.
async fn list_nodes(gateway: &Gateway) -> String {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "cluster_list_nodes", "arguments": {},
                    "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                               "io.modelcontextprotocol/clientCapabilities": {} } },
    });
    let response = post(
        &gateway.mcp(),
        &modern_headers("tools/call", Some("cluster_list_nodes")),
        &body.to_string(),
    )
    .await;
    response.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn absent_flux_and_cert_manager_are_said_once_and_rarely_asked_about() {
    let api = KubeApi::start().await;
    populate(&api);
    let (gateway, dir) = gateway_for(&api, "clusterTools: {}\n");
    gateway.wait_for_tools(&["cluster_list_nodes"]).await;
    gateway.proc.wait_for(
        "Kustomization (kustomize.toolkit.fluxcd.io/v1) not installed; cluster_flux_status not offered",
        START_DEADLINE,
    );
    gateway.proc.wait_for(
        "Certificate (cert-manager.io/v1) not installed; cluster_certificates not offered",
        START_DEADLINE,
    );

    // Calls keep coming; each one needs to know which tools are offered,
    // but an absent kind is asked about only as its backoff comes due
    // (1, 2, 4 s apart), through API discovery, never by listing it.
    let flux = "/apis/kustomize.toolkit.fluxcd.io/v1";
    let certs = "/apis/cert-manager.io/v1";
    let end = std::time::Instant::now() + Duration::from_secs(4);
    let mut calls = 0;
    while std::time::Instant::now() < end {
        assert!(list_nodes(&gateway).await.contains("node-2"));
        calls += 1;
        for path in [flux, certs] {
            let counts = api.counts(path);
            assert!(
                counts.reads <= 4,
                "{path} asked {} times in {calls} calls",
                counts.reads
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(calls >= 10, "only {calls} calls in the window");
    for listed in [
        KubeApi::path_of("kustomize.toolkit.fluxcd.io/v1", "kustomizations", None),
        KubeApi::path_of("cert-manager.io/v1", "certificates", None),
    ] {
        assert_eq!(api.counts(&listed).reads, 0, "{listed} was listed");
    }
    let log = gateway.proc.drain(Duration::from_millis(100));
    let again: Vec<_> = log.iter().filter(|l| l.contains("not installed")).collect();
    assert!(again.is_empty(), "said again: {again:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_cluster_access_the_tools_are_absent_and_the_log_says_why() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let gateway = Gateway::start_with_env(
        &format!("clusterTools: {{}}\nupstreams:\n  - name: local\n    url: \"{url}\"\n"),
        &[("KUBECONFIG", "/nonexistent/kubeconfig")],
    );
    gateway.proc.wait_for(
        "the cluster_ tools are off: no cluster access",
        START_DEADLINE,
    );
    gateway.wait_for_tools(&["local_echo"]).await;
    assert!(
        !list_tool_names(&gateway.mcp())
            .await
            .iter()
            .any(|t| t.starts_with("cluster_"))
    );
}
