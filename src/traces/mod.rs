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
//!
//! - `context`: trace context in and out (`traceparent`, `tracestate`).
//! - `span`: the span model, and following a streamed answer.
//! - `export`: the OTLP/HTTP exporter task.
//!
//! The [`Tracer`] here ties them: it samples, starts spans, and queues the
//! finished ones for the exporter.

mod context;
mod export;
mod span;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::config::TraceSettings;
use crate::net::client as http_client;

pub use context::{SpanContext, TRACEPARENT, TRACESTATE};
use export::{EXPORT_TIMEOUT, Exporter, Queued, attribute};
pub use span::{AttributeValue, Span, SpanKind, follow_stream};
use span::{FinishedSpan, Recording};

/// Finished spans waiting for the exporter.
const QUEUE: usize = 4096;

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
