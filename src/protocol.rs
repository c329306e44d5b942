//! MCP protocol constants shared by the front (client side) and the
//! upstream clients: versions, header names, `_meta` keys.

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
        _ => None,
    }
}
