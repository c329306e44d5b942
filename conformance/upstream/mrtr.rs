//! The 2026-07-28 input fixtures (multi round-trip requests, SEP-2322), and
//! the `requestState` store behind them.

use std::{collections::HashMap, sync::Mutex};

use rmcp::{
    ErrorData,
    model::{
        CallToolRequestParams, CallToolResponse, CreateMessageRequest, CreateMessageRequestParams,
        InputRequest, InputRequests, InputRequiredResult, ListRootsRequest, SamplingMessage, Tool,
    },
    service::{RequestContext, RoleServer},
};
use serde_json::{Value, json};

use crate::input::{elicitation, plain, sampled_text};
use crate::server::Upstream;
use crate::tools::{no_arguments, text_result};

// Fixtures the 2026-07-28 scenarios of the suite (0.2.0 on) call by name:
// each asks the client for input with an InputRequiredResult and completes
// once the retry carries the answers. rmcp refuses to send an
// InputRequiredResult to a 2025 client, so over 2025 revisions they fail.

/// What a `requestState` handle stands for.
struct PendingCall {
    tool: &'static str,
    round: u32,
    /// What earlier rounds gathered.
    data: Value,
}

/// Server-side store behind `requestState`: the client only sees a random
/// handle, so a tampered state is an unknown one. That is the integrity
/// SEP-2322 asks for, without signing anything, and it holds across the
/// per-request instances of stateless serving because the store is
/// process-wide. A handle is good for one retry; abandoned ones stay, which a
/// test server can afford.
#[derive(Default)]
pub(crate) struct RequestStates(Mutex<HashMap<String, PendingCall>>);

impl RequestStates {
    fn issue(&self, tool: &'static str, round: u32, data: Value) -> String {
        let handle = uuid::Uuid::new_v4().to_string();
        let call = PendingCall { tool, round, data };
        self.0
            .lock()
            .expect("request states lock")
            .insert(handle.clone(), call);
        handle
    }

    fn redeem(&self, tool: &str, handle: &str) -> Result<PendingCall, ErrorData> {
        let call = self.0.lock().expect("request states lock").remove(handle);
        call.filter(|call| call.tool == tool).ok_or_else(|| {
            ErrorData::invalid_params("requestState is unknown, used or tampered with", None)
        })
    }
}

pub(crate) fn input_required<const N: usize>(
    requests: [(&str, InputRequest); N],
    state: Option<String>,
) -> InputRequiredResult {
    let requests = requests
        .into_iter()
        .map(|(key, request)| (key.to_string(), request))
        .collect();
    InputRequiredResult::new(Some(requests), state)
}

/// The client's answer under `key`, if it is an object (a malformed one is
/// treated as missing, and asked for again).
fn answer<'a>(params: &'a CallToolRequestParams, key: &str) -> Option<&'a Value> {
    params
        .input_responses
        .as_ref()?
        .get(key)
        .filter(|answer| answer.is_object())
}

/// `field` of an accepted elicitation answer.
pub(crate) fn accepted<'a>(answer: Option<&'a Value>, field: &str) -> Option<&'a Value> {
    let answer = answer?;
    (answer["action"] == "accept")
        .then(|| answer["content"].get(field))
        .flatten()
}

pub(crate) fn ask_for(message: &str, field: &str, kind: &str) -> Result<InputRequest, ErrorData> {
    elicitation(
        message,
        json!({
            "type": "object",
            "properties": { field: { "type": kind } },
            "required": [field]
        }),
    )
}

fn sampling_request(text: &str, max_tokens: u32) -> InputRequest {
    InputRequest::CreateMessage(CreateMessageRequest::new(CreateMessageRequestParams::new(
        vec![SamplingMessage::user_text(text)],
        max_tokens,
    )))
}

fn roots_request() -> InputRequest {
    InputRequest::ListRoots(ListRootsRequest::default())
}

const IRR_ELICITATION: &str = "test_input_required_result_elicitation";
const IRR_SAMPLING: &str = "test_input_required_result_sampling";
const IRR_LIST_ROOTS: &str = "test_input_required_result_list_roots";
const IRR_REQUEST_STATE: &str = "test_input_required_result_request_state";
const IRR_TAMPERED_STATE: &str = "test_input_required_result_tampered_state";
const IRR_MULTIPLE_INPUTS: &str = "test_input_required_result_multiple_inputs";
const IRR_MULTI_ROUND: &str = "test_input_required_result_multi_round";
const IRR_CAPABILITIES: &str = "test_input_required_result_capabilities";
pub(crate) const IRR_PROMPT: &str = "test_input_required_result_prompt";

impl Upstream {
    pub(crate) fn mrtr_tools() -> Vec<Tool> {
        [
            (
                IRR_ELICITATION,
                "Asks for a name through an InputRequiredResult, then greets",
            ),
            (
                IRR_SAMPLING,
                "Asks the client's model a question through an InputRequiredResult",
            ),
            (
                IRR_LIST_ROOTS,
                "Asks for the client's roots through an InputRequiredResult",
            ),
            (
                IRR_REQUEST_STATE,
                "Asks for a confirmation and checks the echoed requestState",
            ),
            (
                IRR_TAMPERED_STATE,
                "Like the request-state tool; rejects a tampered requestState",
            ),
            (
                IRR_MULTIPLE_INPUTS,
                "Asks for an elicitation, a sample and the roots at once",
            ),
            (
                IRR_MULTI_ROUND,
                "Asks for a name, then a colour, in two rounds",
            ),
            (
                IRR_CAPABILITIES,
                "Asks only through the capabilities the client declared",
            ),
            (
                "test_missing_capability",
                "Needs sampling: -32021 if the client did not declare it",
            ),
            (
                "test_streaming_elicitation",
                "Elicits a username and an email",
            ),
            (
                "test_logging_tool",
                "Logs three messages, at the request's log level only",
            ),
        ]
        .into_iter()
        .map(|(name, description)| Tool::new(name, description, no_arguments()))
        .collect()
    }

    /// The 2026-07-28 fixture `name`, if it is one.
    pub(crate) async fn mrtr_tool(
        &self,
        name: &str,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Option<Result<CallToolResponse, ErrorData>> {
        Some(match name {
            IRR_ELICITATION => Self::greet(params),
            IRR_SAMPLING => Ok(match sampled(answer(params, "capital_question")) {
                Some(text) => text_result(format!("Sampling response: {text}")),
                None => input_required(
                    [(
                        "capital_question",
                        sampling_request("What is the capital of France?", 100),
                    )],
                    None,
                )
                .into(),
            }),
            IRR_LIST_ROOTS => Ok(
                match answer(params, "client_roots").and_then(|a| a["roots"].as_array()) {
                    Some(roots) => {
                        let uris: Vec<&str> = roots
                            .iter()
                            .filter_map(|root| root["uri"].as_str())
                            .collect();
                        text_result(format!(
                            "Client roots ({}): {}",
                            uris.len(),
                            uris.join(", ")
                        ))
                    }
                    None => input_required([("client_roots", roots_request())], None).into(),
                },
            ),
            IRR_REQUEST_STATE => self.confirm(IRR_REQUEST_STATE, params),
            IRR_TAMPERED_STATE => self.confirm(IRR_TAMPERED_STATE, params),
            IRR_MULTIPLE_INPUTS => self.multiple_inputs(params),
            IRR_MULTI_ROUND => self.multi_round(params),
            IRR_CAPABILITIES => Self::by_capabilities(params, context),
            "test_missing_capability" => self.sample(params, context, "Reply with one word.").await,
            "test_streaming_elicitation" => {
                self.elicit_user(params, context, "Please provide your information")
                    .await
            }
            "test_logging_tool" => Ok(self.run_with_logging(context).await),
            _ => return None,
        })
    }

    fn greet(params: &CallToolRequestParams) -> Result<CallToolResponse, ErrorData> {
        let answer = answer(params, "user_name");
        if let Some(name) = accepted(answer, "name").and_then(Value::as_str) {
            return Ok(text_result(format!("Hello, {name}!")));
        }
        if let Some(action) = answer
            .and_then(|a| a["action"].as_str())
            .filter(|a| *a != "accept")
        {
            return Ok(text_result(format!("No name given (action={action})")));
        }
        // No answer yet, or the wrong keys, or a malformed one: ask (again).
        Ok(input_required(
            [(
                "user_name",
                ask_for("What is your name?", "name", "string")?,
            )],
            None,
        )
        .into())
    }

    fn confirm(
        &self,
        tool: &'static str,
        params: &CallToolRequestParams,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(handle) = &params.request_state {
            self.shared.states.redeem(tool, handle)?;
            if let Some(ok) = accepted(answer(params, "confirm"), "ok") {
                return Ok(text_result(format!("state-ok: confirmed={ok}")));
            }
        }
        let state = self.shared.states.issue(tool, 1, Value::Null);
        let request = ask_for("Please confirm", "ok", "boolean")?;
        Ok(input_required([("confirm", request)], Some(state)).into())
    }

    fn multiple_inputs(
        &self,
        params: &CallToolRequestParams,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(handle) = &params.request_state {
            self.shared.states.redeem(IRR_MULTIPLE_INPUTS, handle)?;
            let name = accepted(answer(params, "user_name"), "name");
            let greeting = sampled(answer(params, "greeting"));
            let roots = answer(params, "client_roots").and_then(|a| a["roots"].as_array());
            if let (Some(name), Some(greeting), Some(roots)) = (name, greeting, roots) {
                return Ok(text_result(format!(
                    "Received all inputs: name={}, greeting={greeting}, roots={}",
                    plain(name),
                    roots.len()
                )));
            }
        }
        let state = self
            .shared
            .states
            .issue(IRR_MULTIPLE_INPUTS, 1, Value::Null);
        Ok(input_required(
            [
                (
                    "user_name",
                    ask_for("What is your name?", "name", "string")?,
                ),
                ("greeting", sampling_request("Generate a greeting", 50)),
                ("client_roots", roots_request()),
            ],
            Some(state),
        )
        .into())
    }

    fn multi_round(&self, params: &CallToolRequestParams) -> Result<CallToolResponse, ErrorData> {
        let states = &self.shared.states;
        let ask_colour = |name: Value| -> Result<CallToolResponse, ErrorData> {
            let state = states.issue(IRR_MULTI_ROUND, 2, name);
            let request = ask_for("Step 2: What is your favorite color?", "color", "string")?;
            Ok(input_required([("step2", request)], Some(state)).into())
        };
        if let Some(handle) = &params.request_state {
            let call = states.redeem(IRR_MULTI_ROUND, handle)?;
            match (
                call.round,
                accepted(answer(params, "step1"), "name"),
                accepted(answer(params, "step2"), "color"),
            ) {
                (1, Some(name), _) => return ask_colour(name.clone()),
                (2, _, Some(color)) => {
                    return Ok(text_result(format!(
                        "Completed in three rounds: name={}, color={}",
                        plain(&call.data),
                        plain(color)
                    )));
                }
                // Round 2 without its answer: ask again, keeping the name.
                (2, _, None) => return ask_colour(call.data),
                _ => {}
            }
        }
        let state = states.issue(IRR_MULTI_ROUND, 1, Value::Null);
        let request = ask_for("Step 1: What is your name?", "name", "string")?;
        Ok(input_required([("step1", request)], Some(state)).into())
    }

    fn by_capabilities(
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(responses) = params.input_responses.as_ref().filter(|r| !r.is_empty()) {
            let keys: Vec<&str> = responses.keys().map(String::as_str).collect();
            return Ok(text_result(format!("Received inputs: {}", keys.join(", "))));
        }
        let capabilities = context.client_capabilities().unwrap_or_default();
        let mut requests = InputRequests::new();
        if capabilities.sampling.is_some() {
            requests.insert("sampling".into(), sampling_request("Say hello.", 50));
        }
        if capabilities.elicitation.is_some() {
            requests.insert(
                "elicitation".into(),
                ask_for("What is your name?", "name", "string")?,
            );
        }
        if capabilities.roots.is_some() {
            requests.insert("roots".into(), roots_request());
        }
        if requests.is_empty() {
            return Ok(text_result("The client declared nothing to ask it through"));
        }
        Ok(InputRequiredResult::from_input_requests(requests).into())
    }
}

/// The text of a sampling answer, if there is one.
fn sampled(answer: Option<&Value>) -> Option<String> {
    let text = sampled_text(answer?);
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_states_are_single_use_and_bound_to_their_tool() {
        let states = RequestStates::default();
        let handle = states.issue(IRR_MULTI_ROUND, 1, json!("Ada"));
        let tampered = format!("{handle}-TAMPERED");
        assert!(states.redeem(IRR_MULTI_ROUND, &tampered).is_err());
        let call = states.redeem(IRR_MULTI_ROUND, &handle).unwrap();
        assert_eq!((call.round, call.data), (1, json!("Ada")));
        assert!(states.redeem(IRR_MULTI_ROUND, &handle).is_err());
        let other = states.issue(IRR_REQUEST_STATE, 1, Value::Null);
        assert!(states.redeem(IRR_TAMPERED_STATE, &other).is_err());
    }
}
