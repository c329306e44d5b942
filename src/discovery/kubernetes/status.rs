//! The status Switchboard writes on each registration: a `Ready`
//! condition (reason and message: the resolved URL and tool count, or what
//! is wrong), the URL, the tool count and `observedGeneration`.

use serde_json::{Value, json};

use super::resolve::{Held, Resolution};
use crate::pool::{Health, UpstreamState};

/// What the `Ready` condition says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
    pub url: Option<String>,
    pub tools: usize,
}

/// Readiness from how the registration resolved and, when it did, how its
/// upstream is doing.
pub fn readiness(resolution: &Resolution, upstream: Option<&UpstreamState>) -> Readiness {
    let target = match resolution {
        Err(Held { reason, message }) => {
            return Readiness {
                status: "False",
                reason,
                message: message.clone(),
                url: None,
                tools: 0,
            };
        }
        Ok(target) => target,
    };
    let url = Some(target.url.clone());
    if target.pods.as_ref().is_some_and(Vec::is_empty) {
        return Readiness {
            status: "False",
            reason: "NoReadyEndpoints",
            message: format!("no ready endpoints behind {}", target.url),
            url,
            tools: 0,
        };
    }
    match upstream.map(|u| (&u.health, u.tools)) {
        None | Some((Health::Connecting, _)) => Readiness {
            status: "Unknown",
            reason: "Connecting",
            message: format!("connecting to {}", target.url),
            url,
            tools: 0,
        },
        Some((Health::Ready, tools)) => Readiness {
            status: "True",
            reason: "Ready",
            message: format!(
                "serving {tools} tool{} from {}",
                if tools == 1 { "" } else { "s" },
                target.url
            ),
            url,
            tools,
        },
        Some((Health::Failing(error), tools)) => Readiness {
            status: "False",
            reason: "UpstreamUnreachable",
            message: format!("{}: {error}", target.url),
            url,
            tools,
        },
    }
}

/// The status patch when `current` (the object's `.status`) does not
/// already say `readiness` for `generation`; None when it does. The
/// transition time is kept while the condition's status stays the same,
/// so replicas that agree never rewrite it.
pub fn patch(current: &Value, readiness: &Readiness, generation: i64, now: &str) -> Option<Value> {
    let condition = current
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        });
    let text = |v: Option<&Value>, key: &str| {
        v.and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let same = condition.is_some()
        && text(condition, "status").as_deref() == Some(readiness.status)
        && text(condition, "reason").as_deref() == Some(readiness.reason)
        && text(condition, "message").as_deref() == Some(readiness.message.as_str())
        && condition.and_then(|c| c.get("observedGeneration")) == Some(&json!(generation))
        && current.get("observedGeneration") == Some(&json!(generation))
        && text(Some(current), "url") == readiness.url
        && current.get("discoveredTools") == Some(&json!(readiness.tools));
    if same {
        return None;
    }
    let transition = match text(condition, "lastTransitionTime") {
        Some(time) if text(condition, "status").as_deref() == Some(readiness.status) => time,
        _ => now.to_string(),
    };
    Some(json!({ "status": {
        "observedGeneration": generation,
        "url": readiness.url,
        "discoveredTools": readiness.tools,
        "conditions": [{
            "type": "Ready",
            "status": readiness.status,
            "reason": readiness.reason,
            "message": readiness.message,
            "observedGeneration": generation,
            "lastTransitionTime": transition,
        }],
    }}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::kubernetes::resolve::Target;

    fn target(pods: Option<Vec<std::net::SocketAddr>>) -> Resolution {
        Ok(Target {
            name: "team.weather".into(),
            prefix: "weather_".into(),
            url: "http://weather.team.svc.cluster.local:8080/mcp".into(),
            pods,
            credential: None,
            ca: None,
        })
    }

    #[test]
    fn readiness_follows_resolution_then_health() {
        let held = Err(Held {
            reason: "RouteNotFound",
            message: "HTTPRoute team/x not found".into(),
        });
        let r = readiness(&held, None);
        assert_eq!((r.status, r.reason), ("False", "RouteNotFound"));

        let r = readiness(&target(Some(vec![])), None);
        assert_eq!((r.status, r.reason), ("False", "NoReadyEndpoints"));

        let pods = Some(vec!["10.0.0.1:8080".parse().unwrap()]);
        let r = readiness(&target(pods.clone()), None);
        assert_eq!((r.status, r.reason), ("Unknown", "Connecting"));

        let ready = UpstreamState {
            health: Health::Ready,
            since: std::time::SystemTime::now(),
            tools: 3,
            prompts: 0,
            resources: 0,
        };
        let r = readiness(&target(pods.clone()), Some(&ready));
        assert_eq!((r.status, r.reason, r.tools), ("True", "Ready", 3));
        assert_eq!(
            r.message,
            "serving 3 tools from http://weather.team.svc.cluster.local:8080/mcp"
        );

        let failing = UpstreamState {
            health: Health::Failing("connection refused".into()),
            since: std::time::SystemTime::now(),
            tools: 0,
            prompts: 0,
            resources: 0,
        };
        let r = readiness(&target(pods), Some(&failing));
        assert_eq!((r.status, r.reason), ("False", "UpstreamUnreachable"));
        assert!(r.message.ends_with("connection refused"));
    }

    #[test]
    fn patch_only_when_something_changed_and_keep_transition_time() {
        let ready = Readiness {
            status: "True",
            reason: "Ready",
            message: "serving 1 tool from u".into(),
            url: Some("u".into()),
            tools: 1,
        };
        let first = patch(&Value::Null, &ready, 2, "T1").expect("nothing written yet");
        let written = first["status"].clone();
        assert_eq!(written["conditions"][0]["lastTransitionTime"], "T1");
        assert_eq!(written["observedGeneration"], 2);
        assert_eq!(patch(&written, &ready, 2, "T2"), None, "already says it");

        // Same status, new message (tool count): the transition time stays.
        let more = Readiness {
            message: "serving 2 tools from u".into(),
            tools: 2,
            ..ready.clone()
        };
        let second = patch(&written, &more, 2, "T2").unwrap();
        assert_eq!(
            second["status"]["conditions"][0]["lastTransitionTime"],
            "T1"
        );

        // A new generation is observed even when nothing else changed.
        assert!(patch(&written, &ready, 3, "T3").is_some());

        let down = Readiness {
            status: "False",
            reason: "UpstreamUnreachable",
            message: "u: refused".into(),
            url: Some("u".into()),
            tools: 0,
        };
        let third = patch(&written, &down, 2, "T3").unwrap();
        assert_eq!(third["status"]["conditions"][0]["lastTransitionTime"], "T3");
    }
}
