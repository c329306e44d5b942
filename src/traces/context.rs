//! W3C trace context: the `traceparent`/`tracestate` a request arrives
//! with (header or `params._meta`) and the same put on each upstream call.
//! Kept apart from recording, because it travels even when tracing is off.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// W3C caps what a vendor list may grow to; longer ones are dropped.
const MAX_TRACESTATE: usize = 512;

/// A position in a trace: what `traceparent` (and `tracestate`) say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanContext {
    pub(super) trace_id: [u8; 16],
    pub(super) span_id: [u8; 8],
    pub(super) sampled: bool,
    pub(super) tracestate: Option<Arc<str>>,
}

impl SpanContext {
    /// Parses a W3C `traceparent` (version 00, or a later one read as 00);
    /// anything malformed is `None`, as the spec asks: start a new trace.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
        let text = traceparent.trim().as_bytes();
        if text.len() < 55 || (text.len() > 55 && text[55] != b'-') {
            return None;
        }
        let version = hex_byte(&text[0..2])?;
        if version == 0xff || (version == 0 && text.len() != 55) {
            return None;
        }
        if text[2] != b'-' || text[35] != b'-' || text[52] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, byte) in trace_id.iter_mut().enumerate() {
            *byte = hex_byte(&text[3 + 2 * i..5 + 2 * i])?;
        }
        let mut span_id = [0u8; 8];
        for (i, byte) in span_id.iter_mut().enumerate() {
            *byte = hex_byte(&text[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&text[53..55])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        let tracestate = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE)
            .filter(|s| HeaderValue::from_str(s).is_ok())
            .map(Arc::from);
        Some(SpanContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
            tracestate,
        })
    }

    /// The context a client request arrives with, if any.
    pub fn incoming(headers: &HeaderMap, params: Option<&Value>) -> Option<SpanContext> {
        let meta = params.and_then(|p| p.get("_meta"));
        let in_meta = |key: &str| meta.and_then(|m| m.get(key)).and_then(Value::as_str);
        if let Some(context) = in_meta(TRACEPARENT)
            .and_then(|traceparent| SpanContext::parse(traceparent, in_meta(TRACESTATE)))
        {
            return Some(context);
        }
        let in_header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        SpanContext::parse(in_header(TRACEPARENT)?, in_header(TRACESTATE))
    }

    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }

    /// Puts this context on a request to an upstream: into `_meta` for
    /// every transport, and into the returned copy of `headers` for HTTP ones.
    pub fn inject(
        &self,
        message: &mut Value,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Vec<(HeaderName, HeaderValue)> {
        let traceparent = self.traceparent();
        self.inject_meta(message, &traceparent);
        let mut headers = headers.to_vec();
        if let Ok(value) = HeaderValue::from_str(&traceparent) {
            headers.push((HeaderName::from_static(TRACEPARENT), value));
        }
        if let Some(value) = self
            .tracestate
            .as_deref()
            .and_then(|s| HeaderValue::from_str(s).ok())
        {
            headers.push((HeaderName::from_static(TRACESTATE), value));
        }
        headers
    }

    fn inject_meta(&self, message: &mut Value, traceparent: &str) {
        let Some(request) = message.as_object_mut() else {
            return;
        };
        let params = request.entry("params").or_insert_with(|| json!({}));
        let Some(params) = params.as_object_mut() else {
            return;
        };
        let meta = params.entry("_meta").or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else {
            return;
        };
        meta.insert(TRACEPARENT.into(), traceparent.into());
        match &self.tracestate {
            Some(state) => meta.insert(TRACESTATE.into(), state.to_string().into()),
            None => meta.remove(TRACESTATE),
        };
    }
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(pair[0])? << 4 | digit(pair[1])?)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn parses_and_writes_the_w3c_example() {
        let context = SpanContext::parse(EXAMPLE, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(context.traceparent(), EXAMPLE);
        assert_eq!(context.trace_id(), "0af7651916cd43dd8448eb211c80319c");
        assert!(context.sampled);
        assert_eq!(context.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn refuses_malformed_traceparents() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(SpanContext::parse(bad, None), None, "{bad:?}");
        }
        // A later version may append fields; its first four are read.
        let later = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-what";
        let context = SpanContext::parse(later, None).unwrap();
        assert!(!context.sampled);
    }

    #[test]
    fn meta_wins_over_the_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-11111111111111111111111111111111-2222222222222222-01"),
        );
        let params = json!({ "_meta": { "traceparent": EXAMPLE } });
        let context = SpanContext::incoming(&headers, Some(&params)).unwrap();
        assert_eq!(context.traceparent(), EXAMPLE);
        let context = SpanContext::incoming(&headers, Some(&json!({}))).unwrap();
        assert_eq!(context.trace_id(), "11111111111111111111111111111111");
    }

    #[test]
    fn injects_into_meta_and_headers() {
        let context = SpanContext::parse(EXAMPLE, Some("a=1")).unwrap();
        let mut message = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" });
        let headers = context.inject(&mut message, &[]);
        assert_eq!(message["params"]["_meta"]["traceparent"], EXAMPLE);
        assert_eq!(message["params"]["_meta"]["tracestate"], "a=1");
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].1, EXAMPLE);
    }
}
