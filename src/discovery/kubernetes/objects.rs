//! The Kubernetes objects discovery reads, reduced to the fields it uses.
//! Parsed one object at a time from JSON, so one malformed object is
//! reported (on its own status, or in the log) and the rest still work.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

/// Namespace and name of an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// From an object's metadata; cluster-scoped objects have no namespace.
    pub fn of(object: &Value) -> Option<ObjectKey> {
        let metadata = object.get("metadata")?;
        Some(ObjectKey {
            namespace: metadata
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            name: metadata.get("name")?.as_str()?.to_string(),
        })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The two registration kinds: Kuadrant's current one, and the older
/// kagenti form whose prefix field is `toolPrefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegistrationKind {
    /// `mcp.kuadrant.io/v1` `MCPServerRegistration`.
    Kuadrant,
    /// `mcp.kagenti.com/v1alpha1` `MCPServer`.
    Kagenti,
}

impl RegistrationKind {
    pub fn group(self) -> &'static str {
        match self {
            RegistrationKind::Kuadrant => "mcp.kuadrant.io",
            RegistrationKind::Kagenti => "mcp.kagenti.com",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            RegistrationKind::Kuadrant => "v1",
            RegistrationKind::Kagenti => "v1alpha1",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            RegistrationKind::Kuadrant => "MCPServerRegistration",
            RegistrationKind::Kagenti => "MCPServer",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            RegistrationKind::Kuadrant => "mcpserverregistrations",
            RegistrationKind::Kagenti => "mcpservers",
        }
    }

    fn prefix_field(self) -> &'static str {
        match self {
            RegistrationKind::Kuadrant => "prefix",
            RegistrationKind::Kagenti => "toolPrefix",
        }
    }
}

/// One registration; `spec` is the parse error when it did not parse.
#[derive(Debug, Clone)]
pub struct Registration {
    pub key: ObjectKey,
    pub kind: RegistrationKind,
    pub uid: String,
    /// RFC 3339 creation time (sorts as a string).
    pub created: String,
    pub generation: i64,
    pub spec: Result<RegistrationSpec, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationSpec {
    pub target: TargetRef,
    pub prefix: String,
    pub path: String,
    pub credential: Option<SecretKeyRef>,
    pub ca: Option<SecretKeyRef>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    pub group: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

/// A key of a Secret in the registration's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRegistrationSpec {
    target_ref: RawTargetRef,
    prefix: Option<String>,
    tool_prefix: Option<String>,
    path: Option<String>,
    credential_ref: Option<RawSecretKeyRef>,
    ca_cert_secret_ref: Option<RawSecretKeyRef>,
    state: Option<String>,
}

#[derive(Deserialize)]
struct RawTargetRef {
    group: Option<String>,
    kind: Option<String>,
    name: String,
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct RawSecretKeyRef {
    name: String,
    key: Option<String>,
}

impl Registration {
    pub fn parse(object: &Value, kind: RegistrationKind) -> Option<Registration> {
        let key = ObjectKey::of(object)?;
        let metadata = &object["metadata"];
        let text = |field: &str| {
            metadata
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Some(Registration {
            kind,
            uid: text("uid"),
            created: text("creationTimestamp"),
            generation: metadata
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            spec: parse_spec(object.get("spec"), kind),
            key,
        })
    }
}

fn parse_spec(spec: Option<&Value>, kind: RegistrationKind) -> Result<RegistrationSpec, String> {
    let spec = spec.ok_or("no spec")?;
    let raw = RawRegistrationSpec::deserialize(spec).map_err(|e| format!("spec: {e}"))?;
    let prefix = match kind {
        RegistrationKind::Kuadrant => raw.prefix,
        RegistrationKind::Kagenti => raw.tool_prefix,
    }
    .ok_or_else(|| format!("spec.{} is required", kind.prefix_field()))?;
    let enabled = match raw.state.as_deref() {
        None | Some("Enabled") => true,
        Some("Disabled") => false,
        Some(other) => return Err(format!("spec.state: {other:?} is not Enabled or Disabled")),
    };
    let secret = |raw: Option<RawSecretKeyRef>, default_key: &str| {
        raw.map(|r| SecretKeyRef {
            name: r.name,
            key: r.key.unwrap_or_else(|| default_key.to_string()),
        })
    };
    Ok(RegistrationSpec {
        target: TargetRef {
            group: raw
                .target_ref
                .group
                .unwrap_or_else(|| "gateway.networking.k8s.io".into()),
            kind: raw.target_ref.kind.unwrap_or_else(|| "HTTPRoute".into()),
            name: raw.target_ref.name,
            namespace: raw.target_ref.namespace,
        },
        prefix,
        path: raw.path.unwrap_or_else(|| "/mcp".into()),
        credential: secret(raw.credential_ref, "token"),
        ca: secret(raw.ca_cert_secret_ref, "ca.crt"),
        enabled,
    })
}

/// An HTTPRoute's backends, over all its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub backend_refs: Vec<BackendRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BackendRef {
    #[serde(default)]
    pub group: String,
    #[serde(default = "service_kind")]
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub port: Option<u16>,
}

fn service_kind() -> String {
    "Service".into()
}

impl BackendRef {
    pub fn is_service(&self) -> bool {
        self.group.is_empty() && self.kind == "Service"
    }
}

impl Route {
    pub fn parse(object: &Value) -> Result<Route, String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Rule {
            #[serde(default)]
            backend_refs: Vec<BackendRef>,
        }
        let rules = match object.get("spec").and_then(|s| s.get("rules")) {
            None | Some(Value::Null) => Vec::new(),
            Some(rules) => {
                Vec::<Rule>::deserialize(rules).map_err(|e| format!("spec.rules: {e}"))?
            }
        };
        Ok(Route {
            backend_refs: rules.into_iter().flat_map(|r| r.backend_refs).collect(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Set for `type: ExternalName`.
    pub external_name: Option<String>,
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    pub app_protocol: Option<String>,
}

impl ServiceInfo {
    pub fn parse(object: &Value) -> Result<ServiceInfo, String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Spec {
            #[serde(rename = "type")]
            kind: Option<String>,
            external_name: Option<String>,
            #[serde(default)]
            ports: Vec<ServicePort>,
        }
        let spec = Spec::deserialize(object.get("spec").unwrap_or(&Value::Null))
            .map_err(|e| format!("spec: {e}"))?;
        Ok(ServiceInfo {
            external_name: spec
                .external_name
                .filter(|_| spec.kind.as_deref() == Some("ExternalName")),
            ports: spec.ports,
        })
    }
}

/// One EndpointSlice: its ports (name, number) and ready addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub ports: Vec<(Option<String>, u16)>,
    pub ready: Vec<IpAddr>,
}

impl Slice {
    /// The slice and the Service it belongs to (its
    /// `kubernetes.io/service-name` label); None for a slice of no Service.
    pub fn parse(object: &Value) -> Result<Option<(ObjectKey, Slice)>, String> {
        #[derive(Deserialize)]
        struct Port {
            name: Option<String>,
            port: Option<u16>,
        }
        #[derive(Deserialize)]
        struct Endpoint {
            #[serde(default)]
            addresses: Vec<String>,
            conditions: Option<Conditions>,
        }
        #[derive(Deserialize)]
        struct Conditions {
            ready: Option<bool>,
        }
        let Some(key) = ObjectKey::of(object) else {
            return Ok(None);
        };
        let Some(service) = object
            .pointer("/metadata/labels/kubernetes.io~1service-name")
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let ports = match object.get("ports") {
            None | Some(Value::Null) => Vec::new(),
            Some(ports) => Vec::<Port>::deserialize(ports).map_err(|e| format!("ports: {e}"))?,
        };
        let endpoints = match object.get("endpoints") {
            None | Some(Value::Null) => Vec::new(),
            Some(e) => Vec::<Endpoint>::deserialize(e).map_err(|e| format!("endpoints: {e}"))?,
        };
        let ready = endpoints
            .into_iter()
            // An unset `ready` means ready (the API's documented default).
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
            .filter_map(|e| e.addresses.into_iter().next())
            .filter_map(|address| address.parse().ok())
            .collect();
        Ok(Some((
            ObjectKey::new(&key.namespace, service),
            Slice {
                ports: ports
                    .into_iter()
                    .filter_map(|p| Some((p.name.filter(|n| !n.is_empty()), p.port?)))
                    .collect(),
                ready,
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registration_defaults_and_both_forms() {
        let object = json!({
            "apiVersion": "mcp.kuadrant.io/v1", "kind": "MCPServerRegistration",
            "metadata": {"namespace": "team", "name": "weather", "uid": "u1",
                         "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 3},
            "spec": {"targetRef": {"name": "weather-route"}, "prefix": "weather_",
                     "credentialRef": {"name": "weather-token"}},
        });
        let registration = Registration::parse(&object, RegistrationKind::Kuadrant).unwrap();
        assert_eq!(registration.generation, 3);
        let spec = registration.spec.unwrap();
        assert_eq!(spec.target.group, "gateway.networking.k8s.io");
        assert_eq!(spec.target.kind, "HTTPRoute");
        assert_eq!(spec.path, "/mcp");
        assert!(spec.enabled);
        assert_eq!(spec.credential.unwrap().key, "token");

        let older = json!({
            "metadata": {"namespace": "team", "name": "old"},
            "spec": {"targetRef": {"name": "r"}, "toolPrefix": "old_", "state": "Disabled"},
        });
        let spec = Registration::parse(&older, RegistrationKind::Kagenti)
            .unwrap()
            .spec
            .unwrap();
        assert_eq!(spec.prefix, "old_");
        assert!(!spec.enabled);
    }

    #[test]
    fn a_malformed_registration_carries_its_error() {
        for (spec, fragment) in [
            (json!({"prefix": "x_"}), "targetRef"),
            (
                json!({"targetRef": {"name": "r"}}),
                "spec.prefix is required",
            ),
            (
                json!({"targetRef": {"name": "r"}, "prefix": "x_", "state": "Off"}),
                "spec.state",
            ),
            (json!({"targetRef": {"name": 7}, "prefix": "x_"}), "spec"),
        ] {
            let object = json!({"metadata": {"namespace": "a", "name": "b"}, "spec": spec});
            let error = Registration::parse(&object, RegistrationKind::Kuadrant)
                .unwrap()
                .spec
                .unwrap_err();
            assert!(
                error.contains(fragment),
                "{error:?} should mention {fragment:?}"
            );
        }
    }

    #[test]
    fn slices_keep_ready_addresses_of_their_service() {
        let object = json!({
            "metadata": {"namespace": "team", "name": "weather-abc",
                         "labels": {"kubernetes.io/service-name": "weather"}},
            "ports": [{"name": "http", "port": 3000, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.3"]},
            ],
        });
        let (service, slice) = Slice::parse(&object).unwrap().unwrap();
        assert_eq!(service, ObjectKey::new("team", "weather"));
        assert_eq!(slice.ports, vec![(Some("http".into()), 3000)]);
        let ready: Vec<String> = slice.ready.iter().map(|ip| ip.to_string()).collect();
        assert_eq!(ready, ["10.0.0.1", "10.0.0.3"]);
    }

    #[test]
    fn routes_collect_backends_of_every_rule() {
        let object = json!({"spec": {"rules": [
            {"backendRefs": [{"name": "a", "port": 80}]},
            {"matches": [{"path": {"value": "/x"}}]},
            {"backendRefs": [{"name": "b", "kind": "Other", "group": "x.io"}]},
        ]}});
        let route = Route::parse(&object).unwrap();
        assert_eq!(route.backend_refs.len(), 2);
        assert!(route.backend_refs[0].is_service());
        assert!(!route.backend_refs[1].is_service());
    }
}
