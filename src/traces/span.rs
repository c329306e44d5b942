//! The span model: a span in progress (its attributes and outcome, read
//! from the JSON-RPC answer, streamed or not) and what it becomes when it
//! ends. Starting one and sampling are the `Tracer`'s; writing it out is
//! the exporter's.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Tracer;
use super::context::SpanContext;
use crate::jsonrpc::{Message, RpcError};

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
    pub(super) context: Option<SpanContext>,
    pub(super) recording: Option<Box<Recording>>,
}

pub(super) struct Recording {
    pub(super) tracer: Arc<Tracer>,
    pub(super) parent_span_id: Option<[u8; 8]>,
    pub(super) name: String,
    pub(super) kind: SpanKind,
    pub(super) start: SystemTime,
    pub(super) attributes: Vec<(&'static str, AttributeValue)>,
    pub(super) error: Option<String>,
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

pub(super) struct FinishedSpan {
    pub(super) trace_id: [u8; 16],
    pub(super) span_id: [u8; 8],
    pub(super) parent_span_id: Option<[u8; 8]>,
    pub(super) name: String,
    pub(super) kind: SpanKind,
    pub(super) start: SystemTime,
    pub(super) end: SystemTime,
    pub(super) attributes: Vec<(&'static str, AttributeValue)>,
    pub(super) error: Option<String>,
}
