//! JSON-RPC 2.0 envelopes as the gateway sees them: just enough structure to
//! route (id, method, the name inside params) while every other byte of the
//! message passes through untouched.

use serde::Deserialize;
use serde_json::{Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP 2026-07-28: an `Mcp-*` header disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28: a protocol version the gateway does not speak.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// Gateway-specific: the upstream could not be reached or did not answer in
/// time (a server error code from the range JSON-RPC reserves for servers).
pub const UPSTREAM_UNAVAILABLE: i64 = -32001;
/// Gateway-specific: the request carried no valid credentials (HTTP 401).
pub const UNAUTHORIZED: i64 = -32002;
/// Gateway-specific: the caller exceeded its request rate (HTTP 429).
pub const RATE_LIMITED: i64 = -32003;

/// One parsed JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// A response (result or error) — on the front, a client answering a
    /// server-initiated request.
    Response { id: Value, body: Value },
}

#[derive(Deserialize)]
struct Envelope {
    jsonrpc: Option<String>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    method: Option<String>,
    params: Option<Value>,
    result: Option<Value>,
    error: Option<Value>,
}

/// Distinguishes `"id": null` (present) from no `id` at all.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Why a body is not a JSON-RPC message we accept.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("parse error: {0}")]
    Json(String),
    #[error("batch requests are not supported; send one JSON-RPC message per request")]
    Batch,
    #[error("invalid request: {0}")]
    Invalid(&'static str),
}

impl ParseError {
    pub fn code(&self) -> i64 {
        match self {
            ParseError::Json(_) => PARSE_ERROR,
            ParseError::Batch | ParseError::Invalid(_) => INVALID_REQUEST,
        }
    }
}

impl Message {
    pub fn parse(body: &[u8]) -> Result<Message, ParseError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'[') {
            // Parse anyway so a malformed batch reports the JSON error first.
            serde_json::from_slice::<Value>(body).map_err(|e| ParseError::Json(e.to_string()))?;
            return Err(ParseError::Batch);
        }
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                ParseError::Invalid("not a JSON-RPC object")
            } else {
                ParseError::Json(e.to_string())
            }
        })?;
        if envelope.jsonrpc.as_deref() != Some("2.0") {
            return Err(ParseError::Invalid("jsonrpc must be \"2.0\""));
        }
        if let Some(params) = &envelope.params
            && !params.is_object()
            && !params.is_array()
        {
            return Err(ParseError::Invalid("params must be an object"));
        }
        match (envelope.id, envelope.method) {
            (Some(id), Some(method)) => {
                if !(id.is_string() || id.is_i64() || id.is_u64()) {
                    return Err(ParseError::Invalid("id must be a string or an integer"));
                }
                Ok(Message::Request {
                    id,
                    method,
                    params: envelope.params,
                })
            }
            (None, Some(method)) => Ok(Message::Notification {
                method,
                params: envelope.params,
            }),
            (Some(id), None) => {
                let body = match (envelope.result, envelope.error) {
                    (Some(result), None) => json!({ "result": result }),
                    (None, Some(error)) => json!({ "error": error }),
                    _ => return Err(ParseError::Invalid("a response has result or error")),
                };
                Ok(Message::Response { id, body })
            }
            (None, None) => Err(ParseError::Invalid("missing method")),
        }
    }

    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            Message::Response { .. } => None,
        }
    }

    pub fn params(&self) -> Option<&Value> {
        match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => {
                params.as_ref()
            }
            Message::Response { .. } => None,
        }
    }
}

/// A JSON-RPC error as it goes on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    /// An error as a peer sent it (`{"code", "message", "data"}`); a
    /// malformed one becomes an internal error keeping what it said.
    pub fn from_wire(error: &Value) -> RpcError {
        let code = error.get("code").and_then(Value::as_i64);
        let message = error.get("message").and_then(Value::as_str).unwrap_or("");
        let mut rpc = RpcError::new(code.unwrap_or(INTERNAL_ERROR), message);
        rpc.data = error.get("data").cloned();
        rpc
    }

    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The whole response object; `id` is null when the request's id is
    /// unknown (for example, the body did not parse).
    pub fn response(&self, id: Option<&Value>) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({ "jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error })
    }
}

/// A successful response object.
pub fn result_response(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// Classifies a JSON value received from a peer: a response carries an id and
/// a result or error.
pub fn is_response(value: &Value) -> bool {
    value.get("id").is_some() && (value.get("result").is_some() || value.get("error").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let request = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        assert!(
            matches!(request, Ok(Message::Request { ref method, .. }) if method == "tools/list")
        );
        let note = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(matches!(note, Ok(Message::Notification { .. })));
        let response = Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#);
        assert!(matches!(response, Ok(Message::Response { .. })));
    }

    #[test]
    fn rejects_bad_input_with_the_right_code() {
        let cases: &[(&[u8], i64)] = &[
            (b"{not json", PARSE_ERROR),
            (b"", PARSE_ERROR),
            (
                b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
                INVALID_REQUEST,
            ),
            (b"[1,", PARSE_ERROR),
            (b"42", INVALID_REQUEST),
            (b"{\"id\":1,\"method\":\"ping\"}", INVALID_REQUEST),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}",
                INVALID_REQUEST,
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":3}",
                INVALID_REQUEST,
            ),
            (b"{\"jsonrpc\":\"2.0\"}", INVALID_REQUEST),
        ];
        for (body, code) in cases {
            let error = Message::parse(body).expect_err(&String::from_utf8_lossy(body));
            assert_eq!(error.code(), *code, "{}", String::from_utf8_lossy(body));
        }
    }
}
