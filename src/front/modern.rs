//! Validation of stateless 2026-07-28 requests: the `Mcp-*` headers must
//! mirror the body (`HeaderMismatch`), and `_meta` must carry the required
//! per-request keys.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use crate::jsonrpc::{self, Message};
use crate::net::Rejection;
use crate::protocol::{
    self, HEADER_METHOD, HEADER_NAME, HEADER_PARAM_PREFIX, META_CLIENT_CAPABILITIES,
    META_PROTOCOL_VERSION,
};

/// `_meta["io.modelcontextprotocol/protocolVersion"]` of a request, if any.
pub fn meta_version(message: &Message) -> Option<&str> {
    message
        .params()?
        .get("_meta")?
        .get(META_PROTOCOL_VERSION)?
        .as_str()
}

/// What a modern request's `_meta` says the client can answer.
pub fn meta_capabilities(message: &Message) -> Option<&Value> {
    message
        .params()?
        .get("_meta")?
        .get(META_CLIENT_CAPABILITIES)
}

fn mismatch(message: String) -> Rejection {
    Rejection::new(StatusCode::BAD_REQUEST, jsonrpc::HEADER_MISMATCH, message)
}

pub fn validate(headers: &HeaderMap, message: &Message) -> Result<(), Rejection> {
    let method = match message {
        Message::Response { .. } => {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "2026-07-28 clients do not send responses",
            ));
        }
        // No client notifications are defined on 2026 HTTP; accept and drop.
        Message::Notification { .. } => return Ok(()),
        Message::Request { method, .. } => method.as_str(),
    };

    let header_method = header_text(headers, HEADER_METHOD)?;
    match header_method {
        None => {
            return Err(mismatch(
                "Header mismatch: Mcp-Method header is required".into(),
            ));
        }
        Some(value) if value != method => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Method header value '{value}' does not match body value '{method}'"
            )));
        }
        Some(_) => {}
    }

    if let Some(key) = protocol::routed_name_key(method)
        .filter(|_| method != "resources/subscribe" && method != "resources/unsubscribe")
    {
        let body_value = message
            .params()
            .and_then(|p| p.get(key))
            .and_then(Value::as_str);
        match (header_text(headers, HEADER_NAME)?, body_value) {
            (None, _) => {
                return Err(mismatch(format!(
                    "Header mismatch: Mcp-Name header is required for {method}"
                )));
            }
            (Some(header), Some(body)) if header == body => {}
            (Some(header), body) => {
                return Err(mismatch(format!(
                    "Header mismatch: Mcp-Name header value '{header}' does not match body value '{}'",
                    body.unwrap_or("")
                )));
            }
        }
    }

    let meta = message.params().and_then(|p| p.get("_meta"));
    match meta
        .and_then(|m| m.get(META_PROTOCOL_VERSION))
        .and_then(Value::as_str)
    {
        None => return Err(missing_meta(META_PROTOCOL_VERSION)),
        Some(protocol::MODERN) => {}
        Some(other) => {
            return Err(mismatch(format!(
                "Header mismatch: MCP-Protocol-Version header value '{}' does not match body value '{other}'",
                protocol::MODERN
            )));
        }
    }
    if meta.and_then(|m| m.get(META_CLIENT_CAPABILITIES)).is_none() {
        return Err(missing_meta(META_CLIENT_CAPABILITIES));
    }
    Ok(())
}

fn missing_meta(key: &str) -> Rejection {
    Rejection::new(
        StatusCode::BAD_REQUEST,
        jsonrpc::INVALID_PARAMS,
        format!("missing required _meta field {key}"),
    )
}

/// A header's value, decoding the `=?base64?…?=` form the spec uses for
/// values that are not plain ASCII.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<Cow<'a, str>>, Rejection> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        mismatch(format!(
            "Header mismatch: {name} contains invalid characters"
        ))
    })?;
    match text
        .strip_prefix("=?base64?")
        .and_then(|t| t.strip_suffix("?="))
    {
        None => Ok(Some(Cow::Borrowed(text))),
        Some(encoded) => decode_base64(encoded)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(|text| Some(Cow::Owned(text)))
            .ok_or_else(|| mismatch(format!("Header mismatch: {name} has invalid base64"))),
    }
}

pub(super) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= sextet(c)? << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    Some(out)
}

/// `Mcp-Param-*` headers, forwarded untouched as intermediaries must.
pub fn forwarded_params(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with(HEADER_PARAM_PREFIX))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_spec_base64_example() {
        let decoded = decode_base64("SGVsbG8sIOS4lueVjA==").unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "Hello, 世界");
        assert_eq!(decode_base64("YQ").unwrap(), b"a");
        assert!(decode_base64("Y").is_none());
        assert!(decode_base64("@@@@").is_none());
    }
}
