//! Asking the client for input, sampling and elicitation: as a request on
//! the call's stream (2025 revisions) or with an `InputRequiredResult`
//! (2026-07-28), and the tools that ask.

use rmcp::{
    ErrorData,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientResult, ContentBlock,
        CreateMessageRequest, CreateMessageRequestParams, ElicitRequest, ElicitRequestParams,
        ErrorCode, InputRequest, InputRequests, InputRequiredResult, InputResponses,
        SamplingMessage, ServerRequest,
    },
    service::{RequestContext, RoleServer},
};
use serde_json::{Value, json};

use crate::server::{Upstream, is_2026_or_later};
use crate::tools::{string_argument, text_result};

/// Key of the single entry in the `inputRequests` this server sends.
const INPUT_KEY: &str = "input";

/// Where a tool that needs the client's answer stands.
enum ClientAnswer {
    /// The client's result (`CreateMessageResult` or `ElicitResult`) as JSON.
    Ready(Value),
    /// Answer the call with this now: the `InputRequiredResult` of a first
    /// 2026-07-28 round, or a tool error when the client cannot be asked.
    Respond(CallToolResponse),
}

impl Upstream {
    /// Gets the client's answer to `request`: on 2025 revisions as a request
    /// on the call's stream, on 2026-07-28 as a multi round-trip (SEP-2322),
    /// where the first call returns the request and the retry carries
    /// `inputResponses`.
    async fn ask_client(
        &self,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        request: InputRequest,
    ) -> Result<ClientAnswer, ErrorData> {
        let (what, declared) = {
            let capabilities = context.client_capabilities();
            match &request {
                InputRequest::CreateMessage(_) => (
                    "sampling",
                    capabilities.is_none_or(|c| c.sampling.is_some()),
                ),
                _ => (
                    "elicitation",
                    capabilities.is_none_or(|c| c.elicitation.is_some()),
                ),
            }
        };
        let refuse = |text: String| {
            Ok(ClientAnswer::Respond(
                CallToolResult::error(vec![ContentBlock::text(text)]).into(),
            ))
        };
        if is_2026_or_later(context) {
            if let Some(answer) = params
                .input_responses
                .as_ref()
                .and_then(|responses| responses.get(INPUT_KEY))
            {
                return Ok(ClientAnswer::Ready(answer.clone()));
            }
            if !declared {
                return Err(missing_capability(what));
            }
            let requests = InputRequests::from([(INPUT_KEY.to_string(), request)]);
            return Ok(ClientAnswer::Respond(
                InputRequiredResult::from_input_requests(requests).into(),
            ));
        }
        if self.shared.stateless {
            // rmcp serves a stateless 2025 request without a session: the
            // client's answer would arrive as a POST of its own, which no
            // session can route (rmcp rejects it), and the call would hang.
            return refuse(format!(
                "{what} needs a session on this protocol revision, and this server runs --stateless"
            ));
        }
        if !declared {
            return refuse(format!("The client does not support {what}"));
        }
        send_to_client(context, request)
            .await
            .map(ClientAnswer::Ready)
    }

    /// A 2025 session has no `InputRequiredResult`: the 2026-07-28 fixtures
    /// ask there as a 2025 server does, one request at a time on the call's
    /// stream, and run again with the answers (as the SDKs' legacy shims
    /// do), so a 2025-only server behind a gateway looks like the real ones.
    pub(crate) async fn answer_in_legacy_session(
        &self,
        mut params: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        mut response: Result<CallToolResponse, ErrorData>,
    ) -> Result<CallToolResponse, ErrorData> {
        for _ in 0..8 {
            let required = match response? {
                CallToolResponse::InputRequired(required) => required,
                done => return Ok(done),
            };
            let mut answers = InputResponses::new();
            for (key, request) in required.input_requests.unwrap_or_default() {
                answers.insert(key, send_to_client(context, request).await?);
            }
            params.input_responses = Some(answers);
            params.request_state = required.request_state;
            response = match self.mrtr_tool(&params.name, &params, context).await {
                Some(response) => response,
                None => return Err(ErrorData::internal_error("not an input fixture", None)),
            };
        }
        Err(ErrorData::internal_error("too many rounds of input", None))
    }
}

/// `--unrelated-requests`: ask as a TS SDK 1.x server does when a tool
/// handler asks without its related request id, on the session's standalone
/// GET stream rather than the call's stream. Set once, at start.
pub(crate) static UNRELATED_REQUESTS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Sends `request` to the client on the call's stream (or, with
/// `--unrelated-requests`, the session's GET stream); its result as JSON.
pub(crate) async fn send_to_client(
    context: &RequestContext<RoleServer>,
    request: InputRequest,
) -> Result<Value, ErrorData> {
    let request = match request {
        InputRequest::CreateMessage(request) => ServerRequest::CreateMessageRequest(request),
        InputRequest::Elicitation(request) => ServerRequest::ElicitRequest(request),
        InputRequest::ListRoots(request) => ServerRequest::ListRootsRequest(request),
        other => {
            return Err(ErrorData::internal_error(
                format!("cannot send {other:?} to the client"),
                None,
            ));
        }
    };
    let result = if UNRELATED_REQUESTS.load(std::sync::atomic::Ordering::Relaxed) {
        // A spawned task does not carry the call's id (rmcp's task-local
        // originating request), so rmcp sends on the standalone stream.
        let peer = context.peer.clone();
        tokio::spawn(async move { peer.send_request(request).await })
            .await
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))?
    } else {
        context.peer.send_request(request).await
    };
    let result = result.map_err(|error| {
        ErrorData::internal_error(format!("client request failed: {error}"), None)
    })?;
    let answer = match result {
        ClientResult::CreateMessageResult(result) => serde_json::to_value(result),
        ClientResult::ElicitResult(result) => serde_json::to_value(result),
        other => serde_json::to_value(other),
    };
    answer.map_err(|error| ErrorData::internal_error(error.to_string(), None))
}

pub(crate) fn elicitation(message: &str, schema: Value) -> Result<InputRequest, ErrorData> {
    let requested_schema = serde_json::from_value(schema).map_err(|error| {
        ErrorData::internal_error(format!("bad elicitation schema: {error}"), None)
    })?;
    Ok(InputRequest::Elicitation(ElicitRequest::new(
        ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: message.to_string(),
            requested_schema,
        },
    )))
}

impl Upstream {
    pub(crate) async fn sampling(
        &self,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.sample(params, context, string_argument(params, "prompt")?)
            .await
    }

    pub(crate) async fn sample(
        &self,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        prompt: &str,
    ) -> Result<CallToolResponse, ErrorData> {
        let request = InputRequest::CreateMessage(CreateMessageRequest::new(
            CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100),
        ));
        Ok(match self.ask_client(params, context, request).await? {
            ClientAnswer::Respond(response) => response,
            ClientAnswer::Ready(answer) => {
                text_result(format!("LLM response: {}", sampled_text(&answer)))
            }
        })
    }

    async fn elicit(
        &self,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        request: InputRequest,
        describe: impl FnOnce(&Value, &Value) -> String,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(match self.ask_client(params, context, request).await? {
            ClientAnswer::Respond(response) => response,
            ClientAnswer::Ready(answer) => {
                let content = answer.get("content").cloned().unwrap_or(Value::Null);
                text_result(describe(&answer["action"], &content))
            }
        })
    }

    pub(crate) async fn elicitation_tool(
        &self,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.elicit_user(params, context, string_argument(params, "message")?)
            .await
    }

    pub(crate) async fn elicit_user(
        &self,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        message: &str,
    ) -> Result<CallToolResponse, ErrorData> {
        let request = elicitation(
            message,
            json!({
                "type": "object",
                "properties": {
                    "username": { "type": "string", "description": "User's response" },
                    "email": { "type": "string", "description": "User's email address" }
                },
                "required": ["username", "email"]
            }),
        )?;
        self.elicit(params, context, request, |action, content| {
            format!("User response: action={}, content={content}", plain(action))
        })
        .await
    }

    pub(crate) async fn elicitation_defaults_tool(
        &self,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let request = elicitation(
            "Please review and update the form fields with defaults",
            json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "description": "User name", "default": "John Doe" },
                    "age": { "type": "integer", "description": "User age", "default": 30 },
                    "score": { "type": "number", "description": "User score", "default": 95.5 },
                    "status": {
                        "type": "string",
                        "description": "User status",
                        "enum": ["active", "inactive", "pending"],
                        "default": "active"
                    },
                    "verified": { "type": "boolean", "description": "Verification status", "default": true }
                },
                "required": []
            }),
        )?;
        self.elicit(params, context, request, completed).await
    }

    pub(crate) async fn elicitation_enums_tool(
        &self,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let request = elicitation(
            "Please select options from the enum fields",
            json!({
                "type": "object",
                "properties": {
                    "untitledSingle": {
                        "type": "string",
                        "description": "Untitled single-select",
                        "enum": ["option1", "option2", "option3"]
                    },
                    "titledSingle": {
                        "type": "string",
                        "description": "Titled single-select",
                        "oneOf": [
                            { "const": "value1", "title": "First Option" },
                            { "const": "value2", "title": "Second Option" },
                            { "const": "value3", "title": "Third Option" }
                        ]
                    },
                    "legacyEnum": {
                        "type": "string",
                        "description": "Legacy titled enum (enumNames)",
                        "enum": ["opt1", "opt2", "opt3"],
                        "enumNames": ["Option One", "Option Two", "Option Three"]
                    },
                    "untitledMulti": {
                        "type": "array",
                        "description": "Untitled multi-select",
                        "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
                    },
                    "titledMulti": {
                        "type": "array",
                        "description": "Titled multi-select",
                        "items": {
                            "anyOf": [
                                { "const": "value1", "title": "First Choice" },
                                { "const": "value2", "title": "Second Choice" },
                                { "const": "value3", "title": "Third Choice" }
                            ]
                        }
                    }
                },
                "required": []
            }),
        )?;
        self.elicit(params, context, request, completed).await
    }
}

/// A JSON string without its quotes; any other value as JSON.
pub(crate) fn plain(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

fn completed(action: &Value, content: &Value) -> String {
    format!(
        "Elicitation completed: action={}, content={content}",
        plain(action)
    )
}

/// The text of a `CreateMessageResult`, whose content is one block or a list.
pub(crate) fn sampled_text(answer: &Value) -> String {
    let content = &answer["content"];
    let block = content
        .as_array()
        .and_then(|blocks| blocks.first())
        .unwrap_or(content);
    block["text"].as_str().unwrap_or_default().to_string()
}

/// -32021, which 2026-07-28 requires when a request needs a capability the
/// client did not declare in its `_meta`.
fn missing_capability(capability: &str) -> ErrorData {
    ErrorData::new(
        ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!("the client did not declare the {capability} capability"),
        Some(json!({ "requiredCapabilities": { capability: {} } })),
    )
}
