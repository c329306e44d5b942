//! The prompts: what `prompts/list` shows, what `prompts/get` answers (one
//! prompt asks for input first), and completions of their arguments.

use rmcp::{
    ErrorData,
    model::{
        CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock,
        GetPromptRequestParams, GetPromptResponse, GetPromptResult, Prompt, PromptArgument,
        PromptMessage, Reference, ResourceContents, Role,
    },
    service::{RequestContext, RoleServer},
};
use serde_json::Value;

use crate::RED_PIXEL_PNG;
use crate::input::send_to_client;
use crate::mrtr::{IRR_PROMPT, accepted, ask_for, input_required};
use crate::server::{Upstream, is_2026_or_later};

/// What `prompts/list` lists.
pub(crate) fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "test_simple_prompt",
            Some("A prompt without arguments"),
            None,
        ),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with two required arguments"),
            Some(vec![
                prompt_argument("arg1", "First test argument"),
                prompt_argument("arg2", "Second test argument"),
            ]),
        ),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt that embeds a resource"),
            Some(vec![prompt_argument(
                "resourceUri",
                "URI of the resource to embed",
            )]),
        ),
        Prompt::new(
            IRR_PROMPT,
            Some("Asks for context through an InputRequiredResult (2026-07-28)"),
            None,
        ),
        Prompt::new(
            "test_prompt_with_image",
            Some("A prompt with an image"),
            None,
        ),
    ]
}

impl Upstream {
    /// `prompts/get`.
    pub(crate) async fn prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let messages = match request.name.as_str() {
            "test_simple_prompt" => vec![PromptMessage::new_text(
                Role::User,
                "This is a simple prompt for testing.",
            )],
            "test_prompt_with_arguments" => {
                let arg1 = prompt_argument_value(&request, "arg1")?;
                let arg2 = prompt_argument_value(&request, "arg2")?;
                vec![PromptMessage::new_text(
                    Role::User,
                    format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
                )]
            }
            "test_prompt_with_embedded_resource" => {
                let uri = prompt_argument_value(&request, "resourceUri")?;
                vec![
                    PromptMessage::new(
                        Role::User,
                        ContentBlock::resource(ResourceContents::text(
                            "Embedded resource content for testing.",
                            uri,
                        )),
                    ),
                    PromptMessage::new_text(
                        Role::User,
                        "Please process the embedded resource above.",
                    ),
                ]
            }
            IRR_PROMPT => {
                let answer = request
                    .input_responses
                    .as_ref()
                    .and_then(|r| r.get("user_context"));
                match accepted(answer, "context").and_then(Value::as_str) {
                    Some(context) => vec![PromptMessage::new_text(
                        Role::User,
                        format!("Answer using this context: {context}"),
                    )],
                    None => {
                        let ask =
                            ask_for("What context should the prompt use?", "context", "string")?;
                        if is_2026_or_later(&context) {
                            return Ok(input_required([("user_context", ask)], None).into());
                        }
                        // A 2025 session: asked on the request's stream.
                        let answer = send_to_client(&context, ask).await?;
                        let context = accepted(Some(&answer), "context")
                            .and_then(Value::as_str)
                            .ok_or_else(|| ErrorData::invalid_params("no context given", None))?;
                        vec![PromptMessage::new_text(
                            Role::User,
                            format!("Answer using this context: {context}"),
                        )]
                    }
                }
            }
            "test_prompt_with_image" => vec![
                PromptMessage::new(Role::User, ContentBlock::image(RED_PIXEL_PNG, "image/png")),
                PromptMessage::new_text(Role::User, "Please analyze the image above."),
            ],
            name => {
                return Err(ErrorData::invalid_params(
                    format!("unknown prompt {name:?}"),
                    None,
                ));
            }
        };
        Ok(GetPromptResult::new(messages).into())
    }
}

/// `completion/complete`: only the prompt arguments have candidates;
/// anything else completes to nothing, which the spec allows.
pub(crate) fn completions(request: &CompleteRequestParams) -> Result<CompleteResult, ErrorData> {
    let values = match &request.r#ref {
        Reference::Prompt(prompt) if prompt.name == "test_prompt_with_arguments" => COMPLETIONS
            .iter()
            .filter(|candidate| candidate.starts_with(&request.argument.value))
            .map(|candidate| candidate.to_string())
            .collect(),
        _ => Vec::new(),
    };
    let completion =
        CompletionInfo::new(values).map_err(|error| ErrorData::internal_error(error, None))?;
    Ok(CompleteResult::new(completion))
}

fn prompt_argument(name: &str, description: &str) -> PromptArgument {
    PromptArgument::new(name)
        .with_description(description)
        .with_required(true)
}

fn prompt_argument_value<'a>(
    params: &'a GetPromptRequestParams,
    name: &str,
) -> Result<&'a str, ErrorData> {
    params
        .arguments
        .as_ref()
        .and_then(|arguments| arguments.get(name))
        .and_then(Value::as_str)
        .ok_or_else(|| ErrorData::invalid_params(format!("missing prompt argument {name:?}"), None))
}

/// Candidate completions for `test_prompt_with_arguments`' arguments.
const COMPLETIONS: &[&str] = &["paris", "park", "party", "test", "testValue1", "testValue2"];
