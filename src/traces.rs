//! OpenTelemetry traces: a server span per client request, a client span
//! per upstream call, and W3C trace context carried through.
//!
//! Context comes in on the client's `traceparent` header or in
//! `params._meta.traceparent` (which wins: the header may belong to a proxy
//! in between, `_meta` is the caller's own) and goes out to each upstream
//! in both places — the keys MCP reserves unprefixed in `_meta`. It travels
//! on even when tracing is off, so a client's trace still joins the
//! upstream's.
//!
//! Export is OTLP/HTTP with a JSON body, written here over the gateway's
//! own hyper client: the OpenTelemetry SDK would cost more compile time
//! than this module, and the request path only pays for pushing a finished
//! span into a bounded queue (a full queue drops the span and counts it).
//! Off unless `traces.otlpEndpoint` is configured.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::config::TraceSettings;
use crate::jsonrpc::{Message, RpcError};
use crate::net::client::{self as http_client, HttpClient};

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// W3C caps what a vendor list may grow to; longer ones are dropped.
const MAX_TRACESTATE: usize = 512;
/// Finished spans waiting for the exporter.
const QUEUE: usize = 4096;
/// Spans per OTLP request.
const BATCH: usize = 512;
/// How long a span may wait for its batch to fill.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A position in a trace: what `traceparent` (and `tracestate`) say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
    tracestate: Option<Arc<str>>,
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

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}

/// OTLP's span kinds (the proto enum's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Server = 2,
    Client = 3,
}

#[derive(Debug, Clone)]
pub enum AttributeValue {
    Text(String),
    Int(i64),
}

impl From<&str> for AttributeValue {
    fn from(text: &str) -> Self {
        AttributeValue::Text(text.to_string())
    }
}

impl From<String> for AttributeValue {
    fn from(text: String) -> Self {
        AttributeValue::Text(text)
    }
}

impl From<i64> for AttributeValue {
    fn from(value: i64) -> Self {
        AttributeValue::Int(value)
    }
}

/// A span in progress. It may carry a context without recording (tracing
/// off, or a trace the client did not sample): then it only passes the
/// context on. A recording span is exported when dropped.
#[derive(Default)]
pub struct Span {
    context: Option<SpanContext>,
    recording: Option<Box<Recording>>,
}

struct Recording {
    tracer: Arc<Tracer>,
    parent_span_id: Option<[u8; 8]>,
    name: String,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<(&'static str, AttributeValue)>,
    error: Option<String>,
}

impl Span {
    /// The span of one client request: a child of the client's context,
    /// recorded when a tracer is configured and the trace is sampled.
    pub fn for_request(
        tracer: Option<&Arc<Tracer>>,
        headers: &HeaderMap,
        message: &Message,
    ) -> Span {
        let Message::Request { id, method, params } = message else {
            return Span::default();
        };
        let parent = SpanContext::incoming(headers, params.as_ref());
        let Some(tracer) = tracer else {
            return Span {
                context: parent,
                recording: None,
            };
        };
        let mut span =
            tracer.start_span(parent.as_ref(), SpanKind::Server, method, params.as_ref());
        if span.is_recording() {
            let id = match id {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            span.set("jsonrpc.request.id", id);
            span.set("network.transport", "tcp");
            span.set("network.protocol.name", "http");
        }
        span
    }

    /// A span for a request this one makes (a call to an upstream).
    pub fn child(&self, kind: SpanKind, message: &Value) -> Span {
        match (&self.recording, &self.context) {
            (Some(recording), Some(context)) => {
                let method = message.get("method").and_then(Value::as_str).unwrap_or("");
                recording
                    .tracer
                    .start_span(Some(context), kind, method, message.get("params"))
            }
            _ => Span {
                context: self.context.clone(),
                recording: None,
            },
        }
    }

    pub fn context(&self) -> Option<&SpanContext> {
        self.context.as_ref()
    }

    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<AttributeValue>) {
        if let Some(recording) = &mut self.recording {
            recording.attributes.push((key, value.into()));
        }
    }

    /// Marks the span failed; `error_type` is a short, bounded kind.
    pub fn fail(&mut self, error_type: impl Into<String>, message: impl Into<String>) {
        if let Some(recording) = &mut self.recording {
            recording
                .attributes
                .push(("error.type", AttributeValue::Text(error_type.into())));
            recording.error = Some(message.into());
        }
    }

    /// Records a JSON-RPC error answer the way the MCP conventions ask.
    pub fn fail_rpc(&mut self, error: &RpcError) {
        if self.is_recording() {
            let code = error.code.to_string();
            self.set("rpc.response.status_code", code.clone());
            self.fail(code, error.message.clone());
        }
    }

    /// Records a JSON-RPC response's outcome: an error, or a tool result
    /// with `isError` (a failed tool looks like success at every other layer).
    pub fn record_response(&mut self, response: &Value) {
        if self.is_recording() {
            self.record(ReplyOutcome::deserialize(response));
        }
    }

    /// [`Span::record_response`] on a serialised response.
    pub fn record_reply(&mut self, body: &[u8]) {
        if self.is_recording() {
            self.record(serde_json::from_slice(body));
        }
    }

    fn record(&mut self, outcome: Result<ReplyOutcome, serde_json::Error>) {
        match outcome {
            Ok(ReplyOutcome {
                error: Some(error), ..
            }) => self.fail_rpc(&RpcError::new(error.code, error.message)),
            Ok(ReplyOutcome {
                result: Some(ReplyResult { is_error: true }),
                ..
            }) => self.fail("tool_error", "the tool reported an error"),
            _ => {}
        }
    }
}

/// What a span needs of a JSON-RPC response; the rest is skipped unread.
#[derive(Deserialize)]
struct ReplyOutcome {
    result: Option<ReplyResult>,
    error: Option<ReplyError>,
}

#[derive(Deserialize)]
struct ReplyError {
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct ReplyResult {
    #[serde(rename = "isError", default)]
    is_error: bool,
}

/// Follows a streamed answer (SSE frames) for its final response, so that
/// `span` ends with the stream and records how it ended.
pub fn follow_stream(mut span: Span, mut frames: mpsc::Receiver<Bytes>) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut decoder = crate::sse::Decoder::default();
        let mut events = Vec::new();
        while let Some(frame) = frames.recv().await {
            // The gateway's own framing: a line too long cannot happen.
            let _ = decoder.push(&frame, &mut events);
            for event in events.drain(..) {
                if let Ok(message) = serde_json::from_str::<Value>(&event.data)
                    && crate::jsonrpc::is_response(&message)
                {
                    span.record_response(&message);
                }
            }
            if tx.send(frame).await.is_err() {
                break;
            }
        }
    });
    rx
}

impl Drop for Span {
    fn drop(&mut self) {
        if let (Some(recording), Some(context)) = (self.recording.take(), &self.context) {
            let end = SystemTime::now();
            let tracer = recording.tracer.clone();
            tracer.finish(FinishedSpan {
                trace_id: context.trace_id,
                span_id: context.span_id,
                parent_span_id: recording.parent_span_id,
                name: recording.name,
                kind: recording.kind,
                start: recording.start,
                end,
                attributes: recording.attributes,
                error: recording.error,
            });
        }
    }
}

struct FinishedSpan {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: Option<[u8; 8]>,
    name: String,
    kind: SpanKind,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<(&'static str, AttributeValue)>,
    error: Option<String>,
}

enum Queued {
    Span(FinishedSpan),
    Flush(oneshot::Sender<()>),
}

/// Starts spans and hands finished ones to the exporter task.
pub struct Tracer {
    queue: mpsc::Sender<Queued>,
    /// A new trace is sampled when the low half of its id is below this.
    sample_below: u64,
    random: ring::rand::SystemRandom,
    dropped: Arc<AtomicU64>,
}

impl Tracer {
    /// Starts the exporter task (on the current runtime).
    pub fn start(settings: &TraceSettings) -> Result<Arc<Tracer>, String> {
        let client = http_client::client_with(settings.ca_pem.as_deref(), None)?;
        let (queue, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let exporter = Exporter {
            client,
            uri: settings.endpoint.clone(),
            headers: settings.headers.clone(),
            resource: json!({
                "attributes": [
                    attribute("service.name", &AttributeValue::Text(settings.service_name.clone())),
                    attribute("service.version", &env!("CARGO_PKG_VERSION").into()),
                ]
            }),
            dropped: dropped.clone(),
            reported: 0,
            failing: false,
        };
        tokio::spawn(exporter.run(rx));
        let sample_below = if settings.sample_ratio >= 1.0 {
            u64::MAX
        } else {
            (settings.sample_ratio.max(0.0) * u64::MAX as f64) as u64
        };
        Ok(Arc::new(Tracer {
            queue,
            sample_below,
            random: ring::rand::SystemRandom::new(),
            dropped,
        }))
    }

    fn start_span(
        self: &Arc<Self>,
        parent: Option<&SpanContext>,
        kind: SpanKind,
        method: &str,
        params: Option<&Value>,
    ) -> Span {
        let (trace_id, sampled, tracestate) = match parent {
            // The client decided: an unsampled trace is only passed on.
            Some(parent) if !parent.sampled => {
                return Span {
                    context: Some(parent.clone()),
                    recording: None,
                };
            }
            Some(parent) => (parent.trace_id, true, parent.tracestate.clone()),
            None => {
                let trace_id = self.random_bytes::<16>();
                let low = u64::from_be_bytes(trace_id[8..].try_into().expect("8 bytes"));
                (trace_id, low <= self.sample_below, None)
            }
        };
        let context = SpanContext {
            trace_id,
            span_id: self.random_bytes::<8>(),
            sampled,
            tracestate,
        };
        if !sampled {
            return Span {
                context: Some(context),
                recording: None,
            };
        }
        // Span names follow the MCP conventions: the method, then the
        // tool or prompt it targets.
        let target_key = match method {
            "tools/call" => Some(("name", "gen_ai.tool.name")),
            "prompts/get" => Some(("name", "gen_ai.prompt.name")),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                Some(("uri", "mcp.resource.uri"))
            }
            _ => None,
        };
        let target = target_key.and_then(|(key, attribute)| {
            let value = params?.get(key)?.as_str()?;
            Some((attribute, value))
        });
        let name = match target {
            Some((attribute, value)) if attribute != "mcp.resource.uri" => {
                format!("{method} {value}")
            }
            _ => method.to_string(),
        };
        let mut attributes = vec![("mcp.method.name", AttributeValue::from(method))];
        if let Some((attribute, value)) = target {
            attributes.push((attribute, value.into()));
        }
        Span {
            context: Some(context),
            recording: Some(Box::new(Recording {
                tracer: self.clone(),
                parent_span_id: parent.map(|p| p.span_id),
                name,
                kind,
                start: SystemTime::now(),
                attributes,
                error: None,
            })),
        }
    }

    fn random_bytes<const N: usize>(&self) -> [u8; N] {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; N];
        // The system generator does not fail on Linux; a zero id would
        // only make the span invalid, never the request.
        let _ = self.random.fill(&mut bytes);
        if bytes.iter().all(|b| *b == 0) {
            bytes[N - 1] = 1;
        }
        bytes
    }

    fn finish(&self, span: FinishedSpan) {
        if self.queue.try_send(Queued::Span(span)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Exports what is queued (shutdown); bounded by the export timeout.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Queued::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(EXPORT_TIMEOUT, wait).await;
        }
    }
}

struct Exporter {
    client: HttpClient,
    uri: Uri,
    /// Configured headers (the collector's credentials): never logged.
    headers: Vec<(HeaderName, HeaderValue)>,
    resource: Value,
    /// Spans lost: queue full (the collector too slow) or export failed.
    dropped: Arc<AtomicU64>,
    /// How many of them the log has already told of.
    reported: u64,
    /// Logged once when exports start failing, once when they recover.
    failing: bool,
}

impl Exporter {
    async fn run(mut self, mut rx: mpsc::Receiver<Queued>) {
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(first) = rx.recv().await {
            let mut flushed = None;
            match first {
                Queued::Span(span) => batch.push(span),
                Queued::Flush(done) => flushed = Some(done),
            }
            let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
            while flushed.is_none() && batch.len() < BATCH {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(Queued::Span(span))) => batch.push(span),
                    Ok(Some(Queued::Flush(done))) => flushed = Some(done),
                    Ok(None) | Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.export(std::mem::take(&mut batch)).await;
            }
            let dropped = self.dropped.load(Ordering::Relaxed);
            if dropped > self.reported && !self.failing {
                tracing::warn!(
                    dropped = dropped - self.reported,
                    "trace spans dropped: the export queue was full"
                );
                self.reported = dropped;
            }
            if let Some(done) = flushed {
                let _ = done.send(());
            }
        }
    }

    async fn export(&mut self, spans: Vec<FinishedSpan>) {
        let count = spans.len();
        let body = json!({
            "resourceSpans": [{
                "resource": &self.resource,
                "scopeSpans": [{
                    "scope": { "name": "switchboard", "version": env!("CARGO_PKG_VERSION") },
                    "spans": spans.into_iter().map(otlp_span).collect::<Vec<_>>(),
                }],
            }],
        });
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(map) = request.headers_mut() {
            map.extend(self.headers.iter().cloned());
        }
        let Ok(request) = request.body(Full::new(Bytes::from(body.to_string()))) else {
            return;
        };
        let sent = tokio::time::timeout(EXPORT_TIMEOUT, async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            // Read to the end, so the connection is reused.
            let _ = response.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("the collector answered HTTP {}", status.as_u16()))
            }
        })
        .await
        .unwrap_or_else(|_| Err("the collector did not answer in time".into()));
        match sent {
            Ok(()) if self.failing => {
                self.failing = false;
                self.reported = self.dropped.load(Ordering::Relaxed);
                tracing::info!(uri = %self.uri, "trace export recovered");
            }
            Ok(()) => {}
            Err(error) => {
                self.dropped.fetch_add(count as u64, Ordering::Relaxed);
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(
                        uri = %self.uri,
                        dropped_so_far = self.dropped.load(Ordering::Relaxed),
                        "trace export failed: {error}; spans are dropped until it recovers"
                    );
                }
            }
        }
    }
}

fn otlp_span(span: FinishedSpan) -> Value {
    let nanos = |time: SystemTime| {
        time.duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .to_string()
    };
    let mut out = json!({
        "traceId": hex(&span.trace_id),
        "spanId": hex(&span.span_id),
        "name": span.name,
        "kind": span.kind as i32,
        "startTimeUnixNano": nanos(span.start),
        "endTimeUnixNano": nanos(span.end),
        "attributes": span.attributes.iter().map(|(key, value)| attribute(key, value)).collect::<Vec<_>>(),
    });
    if let Some(parent) = span.parent_span_id {
        out["parentSpanId"] = hex(&parent).into();
    }
    // Status stays unset on success, as the conventions ask of servers.
    if let Some(message) = span.error {
        out["status"] = json!({ "code": 2, "message": message });
    }
    out
}

fn attribute(key: &str, value: &AttributeValue) -> Value {
    let value = match value {
        AttributeValue::Text(text) => json!({ "stringValue": text }),
        // OTLP/JSON writes 64-bit integers as strings.
        AttributeValue::Int(number) => json!({ "intValue": number.to_string() }),
    };
    json!({ "key": key, "value": value })
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
