//! The manifests in `manifests/` render (as `kubectl kustomize manifests/`
//! would: the listed resources, the namespace applied) and say what the
//! gateway needs: least-privilege RBAC, probes on the real endpoints, a
//! hardened pod, a Service and routes that point at it, the CRD the
//! discovery code reads, and a config the real `check-config` accepts.

mod support;

use std::path::Path;

use serde_json::Value;
use support::*;

/// Every document of every resource of the kustomization in `dir`.
fn render(dir: &Path) -> Vec<Value> {
    let kustomization = read_documents(&dir.join("kustomization.yaml")).remove(0);
    let namespace = kustomization["namespace"].as_str().map(str::to_string);
    let mut objects = Vec::new();
    for resource in kustomization["resources"].as_array().expect("resources") {
        let path = dir.join(resource.as_str().unwrap());
        let documents = if path.is_dir() {
            render(&path)
        } else {
            read_documents(&path)
        };
        for mut object in documents {
            if let Some(namespace) = &namespace
                && is_namespaced(&object)
            {
                object["metadata"]["namespace"] = Value::String(namespace.clone());
            }
            objects.push(object);
        }
    }
    objects
}

fn read_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let documents: Vec<Value> = serde_saphyr::from_str_multiple(&text)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

fn is_namespaced(object: &Value) -> bool {
    !matches!(
        object["kind"].as_str(),
        Some("Namespace" | "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding")
    )
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn manifests() -> std::path::PathBuf {
    repo().join("manifests")
}

#[test]
fn every_object_is_well_formed_and_unique() {
    let objects = render(&manifests());
    assert!(objects.len() >= 12, "{} objects", objects.len());
    let mut seen = std::collections::HashSet::new();
    for object in &objects {
        for field in ["apiVersion", "kind"] {
            assert!(object[field].is_string(), "{field} missing: {object}");
        }
        let name = object["metadata"]["name"].as_str().expect("metadata.name");
        let key = (
            object["kind"].to_string(),
            object["metadata"]["namespace"].to_string(),
            name.to_string(),
        );
        assert!(seen.insert(key.clone()), "duplicate {key:?}");
        if is_namespaced(object) {
            assert_eq!(object["metadata"]["namespace"], "switchboard", "{name}");
        }
    }
    // The examples parse too (they are applied by hand).
    for entry in std::fs::read_dir(manifests().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        for object in read_documents(&path) {
            assert!(object["kind"].is_string(), "{}: {object}", path.display());
        }
    }
}

#[test]
fn rbac_is_least_privilege() {
    let objects = render(&manifests());
    for role in objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
    {
        for rule in role["rules"].as_array().unwrap() {
            let resources: Vec<&str> = rule["resources"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let verbs: Vec<&str> = rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                !verbs.contains(&"*") && !resources.contains(&"*"),
                "wildcard in {rule}"
            );
            if resources.contains(&"secrets") {
                assert_eq!(verbs, ["get"], "secrets are only read by name: {rule}");
            }
            for write in ["create", "patch", "update", "delete"] {
                if verbs.contains(&write) {
                    // A TokenReview is a question to the API server; it stores nothing.
                    let review = resources == ["tokenreviews"] && verbs == ["create"];
                    assert!(
                        review || resources.iter().all(|r| r.ends_with("/status")),
                        "the default install writes only registration status: {rule}"
                    );
                }
            }
        }
    }
    let auth = find(&objects, "ClusterRole", "switchboard-auth");
    assert_eq!(
        auth["rules"],
        serde_json::json!([{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}])
    );
    let binding = find(&objects, "ClusterRoleBinding", "switchboard-discovery");
    assert_eq!(binding["subjects"][0]["name"], "switchboard");
    assert_eq!(binding["subjects"][0]["namespace"], "switchboard");
    let tools = find(&objects, "ClusterRole", "switchboard-cluster-tools");
    for rule in tools["rules"].as_array().unwrap() {
        assert!(!rule["resources"].to_string().contains("secrets"), "{rule}");
        for verb in rule["verbs"].as_array().unwrap() {
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                "{rule}"
            );
        }
    }
}

/// The opt-in actions: exactly patch Deployments, read CronJobs, create Jobs.
#[test]
fn cluster_tool_actions_are_separate_and_narrow() {
    let objects = render(&manifests().join("cluster-tools-actions"));
    let role = find(&objects, "ClusterRole", "switchboard-cluster-tools-actions");
    let mut grants: Vec<String> = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        for resource in rule["resources"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                grants.push(format!(
                    "{} {}",
                    verb.as_str().unwrap(),
                    resource.as_str().unwrap()
                ));
            }
        }
    }
    grants.sort();
    assert_eq!(grants, ["create jobs", "get cronjobs", "patch deployments"]);
    let binding = find(
        &objects,
        "ClusterRoleBinding",
        "switchboard-cluster-tools-actions",
    );
    assert_eq!(binding["subjects"][0]["namespace"], "switchboard");
    // Not part of the default install.
    assert!(
        render(&manifests())
            .iter()
            .all(|o| o["metadata"]["name"] != "switchboard-cluster-tools-actions")
    );
}

#[test]
fn the_deployment_is_probed_hardened_and_served() {
    let objects = render(&manifests());
    let deployment = find(&objects, "Deployment", "switchboard");
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "http");
    assert_eq!(container["ports"][0]["name"], "http");
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert_eq!(pod["spec"]["serviceAccountName"], "switchboard");

    // The Service selects the pods; the example route reaches the Service.
    let service = find(&objects, "Service", "switchboard");
    let labels = &pod["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[key], value, "selector {key}");
    }
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    let route = find(&objects, "HTTPRoute", "switchboard");
    let backend = &route["spec"]["rules"][0]["backendRefs"][0];
    assert_eq!(backend["name"], "switchboard");
    assert_eq!(backend["port"], service["spec"]["ports"][0]["port"]);
    let policy = find(&objects, "NetworkPolicy", "switchboard");
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], 8080);
}

#[test]
fn the_crd_is_what_discovery_reads() {
    let objects = render(&manifests());
    let crd = find(
        &objects,
        "CustomResourceDefinition",
        "mcpserverregistrations.mcp.kuadrant.io",
    );
    assert_eq!(crd["spec"]["group"], "mcp.kuadrant.io");
    assert_eq!(crd["spec"]["names"]["kind"], "MCPServerRegistration");
    assert_eq!(crd["spec"]["names"]["plural"], "mcpserverregistrations");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1");
    assert!(version["subresources"]["status"].is_object());
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for field in [
        "targetRef",
        "prefix",
        "path",
        "credentialRef",
        "state",
        "caCertSecretRef",
    ] {
        assert!(spec[field].is_object(), "spec.{field} is in the schema");
    }
    assert_eq!(spec["prefix"]["pattern"], "^[a-z0-9][a-z0-9_]*$");
    assert_eq!(spec["path"]["default"], "/mcp");
}

#[test]
fn the_configmap_config_is_accepted_by_check_config() {
    let objects = render(&manifests());
    let config = find(&objects, "ConfigMap", "switchboard-config")["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let file = TempFile::new("yaml", &config);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg(&file.path)
        .env("SWITCHBOARD_SESSION_KEY", "k".repeat(44))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "check-config refused the ConfigMap's config: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Where kubectl is installed (CI installs it), its kustomize renders the
/// same objects as the reading above.
#[test]
fn kubectl_kustomize_agrees_when_available() {
    let Ok(output) = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(manifests())
        .output()
    else {
        eprintln!("kubectl not installed: the Rust rendering above is the check");
        return;
    };
    assert!(
        output.status.success(),
        "kubectl kustomize manifests/: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered: Vec<Value> =
        serde_saphyr::from_str_multiple(&String::from_utf8_lossy(&output.stdout)).unwrap();
    let names = |objects: &[Value]| {
        let mut names: Vec<String> = objects
            .iter()
            .filter(|o| !o.is_null())
            .map(|o| {
                format!(
                    "{}/{}/{}",
                    o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]
                )
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&rendered), names(&render(&manifests())));
}

/// The image runs as the user the Deployment expects, reads the config where
/// the ConfigMap is mounted, and copies what Cargo.toml's targets need.
/// (No Docker engine here to build it; this keeps the file honest.)
#[test]
fn the_dockerfile_matches_the_deployment() {
    let dockerfile = std::fs::read_to_string(manifests().join("Dockerfile")).unwrap();
    let objects = render(&manifests());
    let deployment = find(&objects, "Deployment", "switchboard");
    let pod = &deployment["spec"]["template"]["spec"];
    let user = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(
        dockerfile.contains(&format!("USER {user}:{user}")),
        "{dockerfile}"
    );
    let mount = pod["containers"][0]["volumeMounts"][0]["mountPath"]
        .as_str()
        .unwrap();
    assert!(
        dockerfile.contains(&format!("\"{mount}/config.yaml\"")),
        "{dockerfile}"
    );
    // Cargo.toml's bench and example targets live in these.
    for needed in ["benches", "conformance", "src"] {
        assert!(repo().join(needed).is_dir());
        assert!(
            dockerfile.contains(&format!("COPY {needed} ./{needed}")),
            "{needed}"
        );
    }
}
