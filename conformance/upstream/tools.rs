//! The tools: the catalogue `tools/list` shows, what `tools/call` runs, and
//! the helpers their schemas and answers are built with. The input-asking
//! tools live in `input` and `mrtr`, logging and progress in `logging`.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use rmcp::{
    ErrorData,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject,
        ResourceContents, Tool,
    },
    service::{RequestContext, RoleServer},
};
use serde_json::{Value, json};

use crate::RED_PIXEL_PNG;
use crate::server::{Upstream, is_2026_or_later};

/// A 52-byte WAV: 8 kHz mono 8-bit PCM, eight samples of silence, base64.
const SILENT_WAV: &str = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

#[derive(Default)]
pub(crate) struct SleepStats {
    started: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
}

/// Counts a `sleep` call as completed, or as cancelled if it ends early.
struct SleepGuard<'a> {
    stats: &'a SleepStats,
    done: bool,
}

impl<'a> SleepGuard<'a> {
    fn start(stats: &'a SleepStats) -> Self {
        stats.started.fetch_add(1, Ordering::SeqCst);
        SleepGuard { stats, done: false }
    }
}

impl Drop for SleepGuard<'_> {
    fn drop(&mut self) {
        let counter = if self.done {
            &self.stats.completed
        } else {
            &self.stats.cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("schemas are written as JSON objects"),
    }
}

pub(crate) fn no_arguments() -> JsonObject {
    object(json!({ "type": "object", "properties": {} }))
}

fn string_arguments(names: &[(&str, &str)]) -> JsonObject {
    let properties: JsonObject = names
        .iter()
        .map(|(name, description)| {
            (
                name.to_string(),
                json!({ "type": "string", "description": description }),
            )
        })
        .collect();
    let required: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
    object(json!({ "type": "object", "properties": properties, "required": required }))
}

pub(crate) fn text_result(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(text)]).into()
}

pub(crate) fn string_argument<'a>(
    params: &'a CallToolRequestParams,
    name: &str,
) -> Result<&'a str, ErrorData> {
    params
        .arguments
        .as_ref()
        .and_then(|arguments| arguments.get(name))
        .and_then(Value::as_str)
        .ok_or_else(|| ErrorData::invalid_params(format!("missing string argument {name:?}"), None))
}

impl Upstream {
    pub(crate) fn tools(&self) -> Vec<Tool> {
        let mut tools = vec![
            Tool::new("test_simple_text", "Returns a fixed text", no_arguments()),
            Tool::new(
                "test_image_content",
                "Returns a 1x1 PNG image",
                no_arguments(),
            ),
            Tool::new(
                "test_audio_content",
                "Returns a short WAV clip",
                no_arguments(),
            ),
            Tool::new(
                "test_embedded_resource",
                "Returns an embedded text resource",
                no_arguments(),
            ),
            Tool::new(
                "test_multiple_content_types",
                "Returns text, an image and an embedded resource",
                no_arguments(),
            ),
            Tool::new(
                "test_tool_with_logging",
                "Sends three log notifications while it runs",
                no_arguments(),
            ),
            Tool::new(
                "test_tool_with_progress",
                "Reports progress 0, 50 and 100 of 100 when given a progress token",
                no_arguments(),
            ),
            Tool::new(
                "test_error_handling",
                "Always fails with a tool error",
                no_arguments(),
            ),
            Tool::new(
                "test_sampling",
                "Asks the client's LLM to answer the prompt",
                string_arguments(&[("prompt", "The prompt to send to the LLM")]),
            ),
            Tool::new(
                "test_elicitation",
                "Asks the user for a username and an email address",
                string_arguments(&[("message", "The message to show the user")]),
            ),
            Tool::new(
                "test_elicitation_sep1034_defaults",
                "Elicits a form whose fields all have defaults (SEP-1034)",
                no_arguments(),
            ),
            Tool::new(
                "test_elicitation_sep1330_enums",
                "Elicits a form with every enum schema variant (SEP-1330)",
                no_arguments(),
            ),
            // SEP-1613 and SEP-2106: the listing must carry these 2020-12 keywords
            // unchanged.
            Tool::new(
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features",
                object(json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "$defs": {
                        "address": {
                            "$anchor": "addressDef",
                            "type": "object",
                            "properties": {
                                "street": { "type": "string" },
                                "city": { "type": "string" }
                            }
                        }
                    },
                    "properties": {
                        "name": { "type": "string" },
                        "address": { "$ref": "#/$defs/address" },
                        "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                        "phone": { "type": "string" },
                        "email": { "type": "string" }
                    },
                    // SEP-2106 (2026-07-28): composition and conditionals too.
                    "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
                    "if": {
                        "properties": { "contactMethod": { "const": "phone" } },
                        "required": ["contactMethod"]
                    },
                    "then": { "required": ["phone"] },
                    "else": { "required": ["email"] },
                    "additionalProperties": false
                })),
            ),
            Tool::new(
                "echo",
                "Returns its text argument",
                string_arguments(&[("text", "The text to return")]),
            ),
            Tool::new(
                "sleep",
                "Waits `ms` milliseconds, then answers: a slow upstream for timeout tests",
                object(json!({
                    "type": "object",
                    "properties": { "ms": { "type": "integer", "minimum": 0 } },
                    "required": ["ms"]
                })),
            ),
            Tool::new(
                "sleep_stats",
                "How many sleep calls started, completed and were cancelled",
                no_arguments(),
            ),
            Tool::new(
                "session_info",
                "Returns the Mcp-Session-Id and the other MCP headers of the HTTP request that carried this call, and the server's pid",
                no_arguments(),
            ),
        ];
        tools.extend(Self::mrtr_tools());
        tools.extend(self.shared.changes.tools());
        tools.extend(self.shared.extra_tools.iter().map(|name| {
            Tool::new(
                name.clone(),
                format!("Extra tool; returns \"{name} ok\""),
                no_arguments(),
            )
        }));
        tools
    }

    fn session_info(context: &RequestContext<RoleServer>) -> CallToolResponse {
        // The streamable HTTP service puts the request's http::request::Parts
        // into the context's extensions; over stdio there are none.
        let headers = context
            .extensions
            .get::<http::request::Parts>()
            .map(|parts| &parts.headers);
        let session_id = headers
            .and_then(|headers| headers.get("mcp-session-id"))
            .and_then(|value| value.to_str().ok());
        // The MCP headers and the credential the request arrived with, so
        // tests can see what a gateway in front rewrote and forwarded.
        let seen: serde_json::Map<String, Value> = headers
            .into_iter()
            .flatten()
            .filter(|(name, _)| {
                name.as_str().starts_with("mcp-")
                    || *name == "authorization"
                    || *name == "x-api-key"
                    || *name == "traceparent"
                    || *name == "tracestate"
            })
            .map(|(name, value)| {
                let value = value.to_str().unwrap_or("<not text>").to_string();
                (name.as_str().to_string(), Value::String(value))
            })
            .collect();
        // W3C trace context as MCP carries it in `_meta` (any transport).
        let trace_meta: serde_json::Map<String, Value> = ["traceparent", "tracestate"]
            .into_iter()
            .filter_map(|key| Some((key.to_string(), context.meta.get(key)?.clone())))
            .collect();
        let info = json!({
            "sessionId": session_id,
            "pid": std::process::id(),
            "headers": seen,
            "meta": trace_meta,
        });
        text_result(info.to_string())
    }
}

impl Upstream {
    /// `tools/call`: the 2026-07-28 fixtures (answered in rounds on a 2025
    /// session), then every other tool by name.
    pub(crate) async fn call(
        &self,
        params: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(response) = self.mrtr_tool(&params.name, &params, &context).await {
            if !is_2026_or_later(&context) {
                return self
                    .answer_in_legacy_session(params, &context, response)
                    .await;
            }
            return response;
        }
        let response = match params.name.as_ref() {
            "test_simple_text" => text_result("This is a simple text response for testing."),
            "test_image_content" => {
                CallToolResult::success(vec![ContentBlock::image(RED_PIXEL_PNG, "image/png")])
                    .into()
            }
            "test_audio_content" => {
                CallToolResult::success(vec![ContentBlock::audio(SILENT_WAV, "audio/wav")]).into()
            }
            "test_embedded_resource" => {
                CallToolResult::success(vec![ContentBlock::resource(ResourceContents::text(
                    "This is an embedded resource content.",
                    "test://embedded-resource",
                ))])
                .into()
            }
            "test_multiple_content_types" => CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(RED_PIXEL_PNG, "image/png"),
                ContentBlock::resource(ResourceContents::TextResourceContents {
                    uri: "test://mixed-content-resource".into(),
                    mime_type: Some("application/json".into()),
                    text: json!({ "test": "data", "value": 123 }).to_string(),
                    meta: None,
                }),
            ])
            .into(),
            "test_tool_with_logging" => self.run_with_logging(&context).await,
            "test_tool_with_progress" => self.run_with_progress(&context).await,
            // A tool failure, not a protocol error: the caller must see the text.
            "test_error_handling" => CallToolResult::error(vec![ContentBlock::text(
                "This tool intentionally returns an error for testing",
            )])
            .into(),
            "test_sampling" => self.sampling(&params, &context).await?,
            "test_elicitation" => self.elicitation_tool(&params, &context).await?,
            "test_elicitation_sep1034_defaults" => {
                self.elicitation_defaults_tool(&params, &context).await?
            }
            "test_elicitation_sep1330_enums" => {
                self.elicitation_enums_tool(&params, &context).await?
            }
            "json_schema_2020_12_tool" => text_result(format!(
                "Received: {}",
                Value::Object(params.arguments.clone().unwrap_or_default())
            )),
            "echo" => text_result(string_argument(&params, "text")?),
            "session_info" => Self::session_info(&context),
            "sleep" => {
                let ms = params
                    .arguments
                    .as_ref()
                    .and_then(|arguments| arguments.get("ms"))
                    .and_then(Value::as_u64)
                    .ok_or_else(|| {
                        ErrorData::invalid_params("missing integer argument \"ms\"", None)
                    })?;
                // Counted so tests can see a cancellation arrive: rmcp may
                // signal the token or drop this future; the guard counts both.
                let mut guard = SleepGuard::start(&self.shared.sleeps);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    _ = context.ct.cancelled() => {
                        return Err(ErrorData::internal_error("cancelled", None));
                    }
                }
                guard.done = true;
                text_result(format!("slept {ms} ms"))
            }
            "sleep_stats" => {
                let stats = &self.shared.sleeps;
                text_result(
                    json!({
                        "started": stats.started.load(Ordering::SeqCst),
                        "completed": stats.completed.load(Ordering::SeqCst),
                        "cancelled": stats.cancelled.load(Ordering::SeqCst),
                    })
                    .to_string(),
                )
            }
            name if self.shared.extra_tools.iter().any(|extra| extra == name) => {
                text_result(format!("{name} ok"))
            }
            name => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool {name:?}"),
                    None,
                ));
            }
        };
        Ok(response)
    }
}
