//! MCP protocol constants shared by the front (client side) and the
//! upstream clients: versions, header names, `_meta` keys.

pub mod param_headers;

use serde_json::{Value, json};

/// The stateless era: no `initialize`, no sessions.
pub const MODERN: &str = "2026-07-28";
/// Versions served with the `initialize` handshake, newest first.
pub const LEGACY: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// Every version the gateway speaks, newest first (what `-32022` lists).
pub const SUPPORTED: &[&str] = &[
    MODERN,
    "2025-11-25",
    "2025-06-18",
    "2025-03-26",
    "2024-11-05",
];

pub const HEADER_PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const HEADER_SESSION_ID: &str = "mcp-session-id";
pub const HEADER_METHOD: &str = "mcp-method";
pub const HEADER_NAME: &str = "mcp-name";
pub const HEADER_PARAM_PREFIX: &str = "mcp-param-";

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// The client request methods the gateway knows by name (metrics count
/// anything else as `other`).
pub const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
];

/// Whether a method's 2026-07-28 result is a `CacheableResult` (it must
/// carry `ttlMs` and `cacheScope`).
pub fn is_cacheable(method: &str) -> bool {
    matches!(
        method,
        "server/discover"
            | "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
    )
}

/// Methods of the 2025 era that 2026-07-28 removed: a modern client calling
/// one gets 404, like any unknown method.
pub const REMOVED_IN_MODERN: &[&str] = &[
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// The requests a client can be asked (relayed from an upstream), by the
/// capabilities it declared: sampling, elicitation, roots. Worked out once
/// from the declared capabilities; a copy is a byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relayable(u8);

impl Relayable {
    /// Each capability, the request it answers, and its bit.
    const KINDS: [(&'static str, &'static str, u8); 3] = [
        ("sampling", "sampling/createMessage", 1),
        ("elicitation", "elicitation/create", 2),
        ("roots", "roots/list", 4),
    ];
    /// How many distinct sets there are (each has an [`index`](Self::index)).
    pub const SETS: usize = 8;

    /// What `capabilities` (a client's, as declared) let it be asked.
    pub fn of(capabilities: Option<&Value>) -> Relayable {
        let Some(capabilities) = capabilities else {
            return Relayable::default();
        };
        Relayable(
            Self::KINDS
                .iter()
                .filter(|(key, _, _)| capabilities.get(key).is_some())
                .map(|(_, _, bit)| bit)
                .sum(),
        )
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// A number below [`Self::SETS`] naming this set (0: none).
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    pub fn from_index(index: usize) -> Relayable {
        Relayable(index as u8 & 7)
    }

    /// Whether a client with this set can be asked `method`.
    pub fn covers(self, method: &str) -> bool {
        Self::KINDS
            .iter()
            .any(|(_, asked, bit)| *asked == method && self.0 & bit != 0)
    }

    /// The capabilities to declare for this set (as an `initialize` would).
    pub fn declared(self) -> Value {
        let declared: serde_json::Map<String, Value> = Self::KINDS
            .iter()
            .filter(|(_, _, bit)| self.0 & bit != 0)
            .map(|(key, _, _)| (key.to_string(), json!({})))
            .collect();
        Value::Object(declared)
    }

    /// The relayable part of a client's capabilities, as it declared them
    /// (sub-capabilities such as elicitation's modes kept).
    pub fn of_declared(capabilities: &Value) -> Value {
        let kept: serde_json::Map<String, Value> = Self::KINDS
            .iter()
            .filter_map(|(key, _, _)| Some((key.to_string(), capabilities.get(key)?.clone())))
            .collect();
        Value::Object(kept)
    }
}

/// Removes the 2026-07-28 `_meta` keys (`io.modelcontextprotocol/…`) (and `_meta` itself
/// when nothing else is left in it).
pub fn strip_modern_meta(params: &mut serde_json::Map<String, Value>) {
    let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) else {
        return;
    };
    meta.retain(|key, _| !key.starts_with("io.modelcontextprotocol/"));
    if meta.is_empty() {
        params.remove("_meta");
    }
}

/// Which era a peer (client or upstream) speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28: stateless, per-request `_meta`.
    Modern,
    /// 2025-era handshake; the negotiated version.
    Legacy(String),
}

impl Era {
    pub fn version(&self) -> &str {
        match self {
            Era::Modern => MODERN,
            Era::Legacy(version) => version,
        }
    }
}

pub fn is_legacy(version: &str) -> bool {
    LEGACY.contains(&version)
}

/// The version the gateway answers an `initialize` with: the client's if
/// it is one we speak, else our newest legacy version (the client then
/// decides whether it can continue, as the lifecycle rules say).
pub fn negotiate_legacy(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| LEGACY.iter().find(|v| **v == r))
        .copied()
        .unwrap_or(LEGACY[0])
}

/// The gateway's identity as client and server.
pub fn implementation() -> Value {
    json!({
        "name": "switchboard",
        "title": "Switchboard MCP gateway",
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// Which method names carry a name that routing (and `Mcp-Name`) uses, and
/// where it sits in params.
pub fn routed_name_key(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        // The 2026-07-28 tasks extension names the task.
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayable_is_what_the_client_declared_and_nothing_else() {
        let asks = Relayable::of(Some(
            &json!({ "sampling": {}, "roots": { "listChanged": true } }),
        ));
        assert!(asks.covers("sampling/createMessage") && asks.covers("roots/list"));
        assert!(!asks.covers("elicitation/create") && !asks.covers("ping"));
        assert_eq!(asks.declared(), json!({ "sampling": {}, "roots": {} }));
        assert_eq!(Relayable::from_index(asks.index()), asks);
        assert!(
            Relayable::of(None).is_empty() && Relayable::of(Some(&json!({ "x": {} }))).is_empty()
        );
        let all = Relayable::of(Some(
            &json!({ "sampling": {}, "elicitation": {}, "roots": {} }),
        ));
        assert_eq!(all.index(), Relayable::SETS - 1);
        // A client's own sub-capabilities are kept when passed on.
        assert_eq!(
            Relayable::of_declared(&json!({ "elicitation": { "url": {} }, "experimental": {} })),
            json!({ "elicitation": { "url": {} } })
        );
    }
}
