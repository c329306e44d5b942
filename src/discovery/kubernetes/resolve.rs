//! Registration → upstream, without any I/O: follows `targetRef` to the
//! HTTPRoute, its backendRef to the Service and port, and the Service's
//! EndpointSlices to the ready pods; settles duplicate prefixes (the older
//! registration keeps it). The Kubernetes source feeds it what its watches
//! hold; tests feed it objects directly.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use super::objects::{
    BackendRef, ObjectKey, Registration, RegistrationKind, RegistrationSpec, Route, SecretKeyRef,
    ServiceInfo, Slice,
};

/// Everything the watches hold, keyed by namespace/name (slices by their
/// Service).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub registrations: Vec<Registration>,
    pub routes: HashMap<ObjectKey, Route>,
    pub services: HashMap<ObjectKey, ServiceInfo>,
    pub slices: HashMap<ObjectKey, Vec<Slice>>,
}

/// Why a registration is not served, as written to its `Ready` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub reason: &'static str,
    pub message: String,
}

/// A registration that resolved to an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The upstream's name: `<namespace>.<name>` (`….mcpserver` for the
    /// older kind); never a config-file name, which cannot contain a dot.
    pub name: String,
    pub prefix: String,
    /// `http(s)://<svc>.<ns>.svc.cluster.local:<port><path>`, or the
    /// external name of an ExternalName Service.
    pub url: String,
    /// Ready pods; `None` for an ExternalName Service (dial the URL).
    pub pods: Option<Vec<SocketAddr>>,
    /// Sent upstream as a bearer token.
    pub credential: Option<(ObjectKey, String)>,
    /// CA bundle for an https upstream.
    pub ca: Option<(ObjectKey, String)>,
}

pub type Resolution = Result<Target, Held>;

/// A registration of either kind (the two may share a namespace/name).
pub type RegistrationId = (RegistrationKind, ObjectKey);

/// Resolves every registration. `taken` are prefixes declared elsewhere
/// (the config file), with the upstream that holds each.
pub fn resolve(
    snapshot: &Snapshot,
    taken: &[(String, String)],
) -> BTreeMap<RegistrationId, Resolution> {
    let mut out = BTreeMap::new();
    // Oldest first: the first to claim a prefix keeps it.
    let mut order: Vec<&Registration> = snapshot.registrations.iter().collect();
    order.sort_by(|a, b| (&a.created, &a.uid).cmp(&(&b.created, &b.uid)));
    let mut owners: HashMap<&str, String> = taken
        .iter()
        .map(|(prefix, name)| {
            (
                prefix.as_str(),
                format!("upstream {name:?} (config file or built in)"),
            )
        })
        .collect();
    for registration in order {
        let resolution = claim(registration, &mut owners)
            .and_then(|spec| route_to_target(snapshot, registration, spec));
        out.insert((registration.kind, registration.key.clone()), resolution);
    }
    out
}

/// Checks the spec and claims its prefix.
fn claim<'a>(
    registration: &'a Registration,
    owners: &mut HashMap<&'a str, String>,
) -> Result<&'a RegistrationSpec, Held> {
    let spec = registration.spec.as_ref().map_err(|message| Held {
        reason: "InvalidSpec",
        message: message.clone(),
    })?;
    if !spec.enabled {
        return Err(Held {
            reason: "Disabled",
            message: "spec.state is Disabled".into(),
        });
    }
    if !valid_prefix(&spec.prefix) {
        return Err(Held {
            reason: "InvalidSpec",
            message: format!("prefix {:?} must match ^[a-z0-9][a-z0-9_]*$", spec.prefix),
        });
    }
    if let Some(owner) = owners.get(spec.prefix.as_str()) {
        return Err(Held {
            reason: "DuplicatePrefix",
            message: format!("prefix {:?} is already used by {owner}", spec.prefix),
        });
    }
    owners.insert(
        &spec.prefix,
        format!("registration {} (older)", registration.key),
    );
    Ok(spec)
}

fn valid_prefix(prefix: &str) -> bool {
    let mut chars = prefix.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn route_to_target(
    snapshot: &Snapshot,
    registration: &Registration,
    spec: &RegistrationSpec,
) -> Result<Target, Held> {
    let key = &registration.key;
    let target = &spec.target;
    if target.group != "gateway.networking.k8s.io" || target.kind != "HTTPRoute" {
        return Err(Held {
            reason: "InvalidSpec",
            message: format!(
                "targetRef must be a gateway.networking.k8s.io HTTPRoute, not {}/{}",
                target.group, target.kind
            ),
        });
    }
    let route_key = ObjectKey::new(
        target.namespace.as_deref().unwrap_or(&key.namespace),
        &target.name,
    );
    let route = snapshot.routes.get(&route_key).ok_or_else(|| Held {
        reason: "RouteNotFound",
        message: format!("HTTPRoute {route_key} not found"),
    })?;
    // The first Service backend: one MCP server per registration.
    let backend = route
        .backend_refs
        .iter()
        .find(|b| b.is_service())
        .ok_or_else(|| Held {
            reason: "NoBackendRef",
            message: format!("HTTPRoute {route_key} has no Service backendRef"),
        })?;
    let service_key = ObjectKey::new(
        backend.namespace.as_deref().unwrap_or(&route_key.namespace),
        &backend.name,
    );
    let service = snapshot.services.get(&service_key).ok_or_else(|| Held {
        reason: "ServiceNotFound",
        message: format!("Service {service_key} (backend of HTTPRoute {route_key}) not found"),
    })?;
    let port = service_port(service, backend).ok_or_else(|| Held {
        reason: "NoBackendRef",
        message: match backend.port {
            Some(port) => format!("Service {service_key} has no port {port}"),
            None => format!(
                "HTTPRoute {route_key}: the backendRef names no port and Service {service_key} has several"
            ),
        },
    })?;
    let https = spec.ca.is_some()
        || port.name.as_deref().is_some_and(is_https_name)
        || port.app_protocol.as_deref().is_some_and(is_https_name);
    let scheme = if https { "https" } else { "http" };
    let path = if spec.path.starts_with('/') {
        spec.path.clone()
    } else {
        format!("/{}", spec.path)
    };
    let (host, pods) = match &service.external_name {
        Some(external) => (external.clone(), None),
        None => (
            format!(
                "{}.{}.svc.cluster.local",
                service_key.name, service_key.namespace
            ),
            Some(ready_pods(
                snapshot
                    .slices
                    .get(&service_key)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
                port.name.as_deref(),
            )),
        ),
    };
    let secret = |r: &SecretKeyRef| (ObjectKey::new(&key.namespace, &r.name), r.key.clone());
    Ok(Target {
        // The older kind gets its own names: both may exist side by side
        // while a cluster migrates.
        name: match registration.kind {
            RegistrationKind::Kuadrant => format!("{}.{}", key.namespace, key.name),
            RegistrationKind::Kagenti => format!("{}.{}.mcpserver", key.namespace, key.name),
        },
        prefix: spec.prefix.clone(),
        url: format!("{scheme}://{host}:{}{path}", port.port),
        pods,
        credential: spec.credential.as_ref().map(secret),
        ca: spec.ca.as_ref().map(secret),
    })
}

fn is_https_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "https" || name.starts_with("https-") || name == "kubernetes.io/https"
}

/// The Service port a backendRef means: the one it names, or the only one.
fn service_port<'a>(
    service: &'a ServiceInfo,
    backend: &BackendRef,
) -> Option<&'a super::objects::ServicePort> {
    match backend.port {
        Some(port) => service.ports.iter().find(|p| p.port == port),
        None if service.ports.len() == 1 => service.ports.first(),
        None => None,
    }
}

/// Ready addresses of the Service's slices, on the slice port that carries
/// the Service port (matched by name; an unnamed port matches an unnamed one).
fn ready_pods(slices: &[Slice], port_name: Option<&str>) -> Vec<SocketAddr> {
    let wanted = port_name.unwrap_or("");
    let mut pods = Vec::new();
    for slice in slices {
        let Some(port) = slice
            .ports
            .iter()
            .find(|(name, _)| name.as_deref().unwrap_or("") == wanted)
            .map(|(_, port)| *port)
        else {
            continue;
        };
        pods.extend(
            slice
                .ready
                .iter()
                .map(|ip: &IpAddr| SocketAddr::new(*ip, port)),
        );
    }
    pods.sort_unstable();
    pods.dedup();
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::kubernetes::objects::{ServicePort, TargetRef};

    fn registration(
        ns: &str,
        name: &str,
        created: &str,
        prefix: &str,
        route: &str,
    ) -> Registration {
        Registration {
            key: ObjectKey::new(ns, name),
            kind: RegistrationKind::Kuadrant,
            uid: format!("uid-{name}"),
            created: created.into(),
            generation: 1,
            spec: Ok(RegistrationSpec {
                target: TargetRef {
                    group: "gateway.networking.k8s.io".into(),
                    kind: "HTTPRoute".into(),
                    name: route.into(),
                    namespace: None,
                },
                prefix: prefix.into(),
                path: "/mcp".into(),
                credential: None,
                ca: None,
                enabled: true,
            }),
        }
    }

    fn route_to(service: &str, port: Option<u16>) -> Route {
        Route {
            backend_refs: vec![BackendRef {
                group: String::new(),
                kind: "Service".into(),
                name: service.into(),
                namespace: None,
                port,
            }],
        }
    }

    fn service(ports: &[(&str, u16)]) -> ServiceInfo {
        ServiceInfo {
            external_name: None,
            ports: ports
                .iter()
                .map(|(name, port)| ServicePort {
                    name: (!name.is_empty()).then(|| name.to_string()),
                    port: *port,
                    app_protocol: None,
                })
                .collect(),
        }
    }

    fn slice(port_name: &str, port: u16, ips: &[&str]) -> Slice {
        Slice {
            ports: vec![((!port_name.is_empty()).then(|| port_name.into()), port)],
            ready: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        }
    }

    /// One registration → route → service with two ready pods.
    fn weather() -> Snapshot {
        let mut snapshot = Snapshot::default();
        snapshot.registrations.push(registration(
            "team",
            "weather",
            "2026-01-01T00:00:00Z",
            "weather_",
            "weather-route",
        ));
        snapshot.routes.insert(
            ObjectKey::new("team", "weather-route"),
            route_to("weather-svc", Some(8080)),
        );
        snapshot.services.insert(
            ObjectKey::new("team", "weather-svc"),
            service(&[("http", 8080), ("metrics", 9090)]),
        );
        snapshot.slices.insert(
            ObjectKey::new("team", "weather-svc"),
            vec![
                slice("http", 3000, &["10.0.0.2", "10.0.0.1"]),
                slice("metrics", 9100, &["10.0.0.9"]),
            ],
        );
        snapshot
    }

    fn key(ns: &str, name: &str) -> ObjectKey {
        ObjectKey::new(ns, name)
    }

    fn reg(ns: &str, name: &str) -> RegistrationId {
        (RegistrationKind::Kuadrant, ObjectKey::new(ns, name))
    }

    #[test]
    fn resolves_route_service_and_ready_pods() {
        let resolved = resolve(&weather(), &[]);
        let target = resolved[&reg("team", "weather")].as_ref().unwrap();
        assert_eq!(target.name, "team.weather");
        assert_eq!(target.prefix, "weather_");
        assert_eq!(
            target.url,
            "http://weather-svc.team.svc.cluster.local:8080/mcp"
        );
        assert_eq!(
            target.pods.as_deref(),
            Some(
                &[
                    "10.0.0.1:3000".parse().unwrap(),
                    "10.0.0.2:3000".parse().unwrap()
                ][..]
            ),
            "the slice port named like the Service port, not the metrics one"
        );
    }

    #[test]
    fn https_from_port_name_app_protocol_or_ca() {
        let mut snapshot = weather();
        snapshot
            .services
            .insert(key("team", "weather-svc"), service(&[("https", 8080)]));
        let url = |s: &Snapshot| {
            resolve(s, &[])[&reg("team", "weather")]
                .as_ref()
                .unwrap()
                .url
                .clone()
        };
        assert!(url(&snapshot).starts_with("https://"));
        let mut plain = service(&[("web", 8080)]);
        plain.ports[0].app_protocol = Some("kubernetes.io/https".into());
        snapshot.services.insert(key("team", "weather-svc"), plain);
        assert!(url(&snapshot).starts_with("https://"));
        snapshot
            .services
            .insert(key("team", "weather-svc"), service(&[("web", 8080)]));
        assert!(url(&snapshot).starts_with("http://"));
        if let Ok(spec) = &mut snapshot.registrations[0].spec {
            spec.ca = Some(SecretKeyRef {
                name: "ca".into(),
                key: "ca.crt".into(),
            });
        }
        assert!(url(&snapshot).starts_with("https://"), "a CA implies https");
    }

    #[test]
    fn external_name_dials_the_external_host() {
        let mut snapshot = weather();
        let mut external = service(&[("", 443)]);
        external.external_name = Some("mcp.example.com".into());
        snapshot
            .services
            .insert(key("team", "weather-svc"), external);
        snapshot
            .routes
            .insert(key("team", "weather-route"), route_to("weather-svc", None));
        let target = resolve(&snapshot, &[])[&reg("team", "weather")]
            .clone()
            .unwrap();
        assert_eq!(target.url, "http://mcp.example.com:443/mcp");
        assert_eq!(target.pods, None);
    }

    #[test]
    fn each_missing_link_is_named() {
        let reason = |s: &Snapshot| {
            resolve(s, &[])[&reg("team", "weather")]
                .clone()
                .unwrap_err()
        };

        let mut snapshot = weather();
        snapshot.routes.clear();
        let held = reason(&snapshot);
        assert_eq!(held.reason, "RouteNotFound");
        assert!(
            held.message.contains("team/weather-route"),
            "{}",
            held.message
        );

        let mut snapshot = weather();
        snapshot.routes.insert(
            key("team", "weather-route"),
            Route {
                backend_refs: vec![],
            },
        );
        assert_eq!(reason(&snapshot).reason, "NoBackendRef");

        let mut snapshot = weather();
        snapshot.services.clear();
        assert_eq!(reason(&snapshot).reason, "ServiceNotFound");

        let mut snapshot = weather();
        snapshot.routes.insert(
            key("team", "weather-route"),
            route_to("weather-svc", Some(1234)),
        );
        let held = reason(&snapshot);
        assert_eq!(held.reason, "NoBackendRef");
        assert!(held.message.contains("no port 1234"), "{}", held.message);

        let mut snapshot = weather();
        if let Ok(spec) = &mut snapshot.registrations[0].spec {
            spec.enabled = false;
        }
        assert_eq!(reason(&snapshot).reason, "Disabled");

        let mut snapshot = weather();
        if let Ok(spec) = &mut snapshot.registrations[0].spec {
            spec.prefix = "Weather-".into();
        }
        assert_eq!(reason(&snapshot).reason, "InvalidSpec");

        let mut snapshot = weather();
        snapshot.registrations[0].spec = Err("spec.targetRef: missing field `name`".into());
        let held = reason(&snapshot);
        assert_eq!(held.reason, "InvalidSpec");
        assert!(held.message.contains("targetRef"));
    }

    #[test]
    fn no_ready_pods_still_resolves_with_an_empty_set() {
        let mut snapshot = weather();
        snapshot.slices.clear();
        let target = resolve(&snapshot, &[])[&reg("team", "weather")]
            .clone()
            .unwrap();
        assert_eq!(target.pods, Some(vec![]));
    }

    #[test]
    fn the_older_registration_keeps_a_duplicate_prefix() {
        let mut snapshot = weather();
        // Newer by creation time, listed first: order of arrival must not matter.
        snapshot.registrations.insert(
            0,
            registration(
                "team",
                "copycat",
                "2026-02-01T00:00:00Z",
                "weather_",
                "weather-route",
            ),
        );
        // Same creation second: the UID decides, deterministically.
        let mut twin = registration(
            "other",
            "twin",
            "2026-01-01T00:00:00Z",
            "weather_",
            "weather-route",
        );
        twin.uid = "uid-zz".into();
        snapshot.registrations.push(twin);
        let resolved = resolve(&snapshot, &[]);
        assert!(resolved[&reg("team", "weather")].is_ok());
        for loser in [reg("team", "copycat"), reg("other", "twin")] {
            let held = resolved[&loser].clone().unwrap_err();
            assert_eq!(held.reason, "DuplicatePrefix");
            assert!(held.message.contains("team/weather"), "{}", held.message);
        }
    }

    #[test]
    fn a_config_file_prefix_wins_over_registrations() {
        let resolved = resolve(&weather(), &[("weather_".into(), "local-weather".into())]);
        let held = resolved[&reg("team", "weather")].clone().unwrap_err();
        assert_eq!(held.reason, "DuplicatePrefix");
        assert!(held.message.contains("local-weather"));
    }

    #[test]
    fn credential_and_ca_refs_are_in_the_registrations_namespace() {
        let mut snapshot = weather();
        if let Ok(spec) = &mut snapshot.registrations[0].spec {
            spec.credential = Some(SecretKeyRef {
                name: "weather-token".into(),
                key: "token".into(),
            });
        }
        let target = resolve(&snapshot, &[])[&reg("team", "weather")]
            .clone()
            .unwrap();
        assert_eq!(
            target.credential,
            Some((key("team", "weather-token"), "token".into()))
        );
    }
}
