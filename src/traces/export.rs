//! The exporter task: batches finished spans and posts them to the
//! collector as OTLP/HTTP JSON, counting (and logging once) what it drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::context::hex;
use super::span::{AttributeValue, FinishedSpan};
use crate::net::client::HttpClient;

/// Spans per OTLP request.
const BATCH: usize = 512;
/// How long a span may wait for its batch to fill.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
pub(super) const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) enum Queued {
    Span(FinishedSpan),
    Flush(oneshot::Sender<()>),
}

pub(super) struct Exporter {
    pub(super) client: HttpClient,
    pub(super) uri: Uri,
    /// Configured headers (the collector's credentials): never logged.
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    pub(super) resource: Value,
    /// Spans lost: queue full (the collector too slow) or export failed.
    pub(super) dropped: Arc<AtomicU64>,
    /// How many of them the log has already told of.
    pub(super) reported: u64,
    /// Logged once when exports start failing, once when they recover.
    pub(super) failing: bool,
}

impl Exporter {
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Queued>) {
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

pub(super) fn attribute(key: &str, value: &AttributeValue) -> Value {
    let value = match value {
        AttributeValue::Text(text) => json!({ "stringValue": text }),
        // OTLP/JSON writes 64-bit integers as strings.
        AttributeValue::Int(number) => json!({ "intValue": number.to_string() }),
    };
    json!({ "key": key, "value": value })
}
