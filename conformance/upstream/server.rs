//! One MCP server instance (`Upstream`), what the instances of a process
//! share, and its `ServerHandler`: each MCP method, answered here or handed
//! to the module that serves it.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use rmcp::{
    ErrorData, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
        GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, LoggingLevel,
        PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
        ReadResourceResult, Reference, ServerCapabilities, ServerConfig, SetLevelRequestParams,
        SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
    },
    service::{RequestContext, RoleServer, SubscriptionContext},
};
use serde_json::json;

use crate::changes::ListChanges;
use crate::mrtr::RequestStates;
use crate::prompts::{completions, prompts};
use crate::resources::{read, resource_templates, resources};
use crate::tools::SleepStats;

/// What every server instance of the process shares.
pub(crate) struct Shared {
    pub(crate) extra_tools: Vec<String>,
    /// What became of `sleep` calls.
    pub(crate) sleeps: SleepStats,
    pub(crate) legacy_only: bool,
    /// Serving `--stateless`: 2025 requests come without a session.
    pub(crate) stateless: bool,
    /// Behind the `requestState` of the 2026-07-28 diagnostics.
    pub(crate) states: RequestStates,
    /// `--strip-prefix`: tools and prompts named `<prefix><rest>` are served
    /// as `<rest>`, so that a gateway adding this prefix shows the names the
    /// suite calls.
    pub(crate) strip_prefix: Option<String>,
    /// `--list-changed`: lists the suite can change, and who is told.
    pub(crate) changes: ListChanges,
}

impl Shared {
    /// The name a client sees for the tool or prompt `name`.
    fn exposed(&self, name: &str) -> Option<String> {
        let prefix = self.strip_prefix.as_deref()?;
        name.strip_prefix(prefix)
            .filter(|rest| !rest.is_empty())
            .map(str::to_string)
    }

    /// The tool or prompt a client means by `name`, among `names` (what is
    /// served): the prefixed name when `name` is one stripped of it.
    fn internal<'a>(&self, name: &str, mut names: impl Iterator<Item = &'a str>) -> Option<String> {
        let prefix = self.strip_prefix.as_deref()?;
        let full = format!("{prefix}{name}");
        names.any(|served| served == full).then_some(full)
    }
}

/// One MCP server instance. The HTTP service makes one per session (per
/// request when stateless), so the state below is per session.
#[derive(Clone)]
pub(crate) struct Upstream {
    pub(crate) shared: Arc<Shared>,
    /// Least severe level sent as `notifications/message` to 2025 clients,
    /// set by `logging/setLevel`. Until a client sets one, everything is sent.
    pub(crate) log_level: Arc<Mutex<LoggingLevel>>,
    /// URIs passed to `resources/subscribe` and not yet unsubscribed. Nothing
    /// here ever changes, so no update is sent; the suite asks for tracking.
    subscriptions: Arc<Mutex<HashSet<String>>>,
}

impl Upstream {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            log_level: Arc::new(Mutex::new(LoggingLevel::Debug)),
            subscriptions: Arc::default(),
        }
    }
}

/// Whether this request speaks 2026-07-28 or later, where a server may no
/// longer send requests to the client and asks for input with an
/// `InputRequiredResult` (SEP-2322) instead.
pub(crate) fn is_2026_or_later(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

impl Upstream {
    /// The prompt a client means by `name` (see [`Shared::internal`]).
    fn internal_prompt(&self, name: &str) -> Option<String> {
        let prompts = self.all_prompts();
        self.shared
            .internal(name, prompts.iter().map(|prompt| prompt.name.as_str()))
    }
}

impl Upstream {
    /// What `prompts/list` lists, before any `--strip-prefix`.
    fn all_prompts(&self) -> Vec<rmcp::model::Prompt> {
        let mut all = prompts();
        all.extend(self.shared.changes.prompts());
        all
    }
}

impl ServerHandler for Upstream {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .build();
        if self.shared.changes.enabled {
            if let Some(tools) = capabilities.tools.as_mut() {
                tools.list_changed = Some(true);
            }
            if let Some(prompts) = capabilities.prompts.as_mut() {
                prompts.list_changed = Some(true);
            }
        }
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                "switchboard-conformance-upstream",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Test server for the MCP conformance suite and Switchboard's tests.")
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        if self.shared.legacy_only {
            std::borrow::Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
        } else {
            std::borrow::Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.tools();
        for tool in &mut tools {
            if let Some(name) = self.shared.exposed(&tool.name) {
                tool.name = name.into();
            }
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        mut params: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tools = self.tools();
        if let Some(name) = self
            .shared
            .internal(&params.name, tools.iter().map(|tool| tool.name.as_ref()))
        {
            params.name = name.into();
        }
        if let Some(response) = self.shared.changes.call(&params.name, &context).await {
            return response;
        }
        self.call(params, context).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resource_templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match read(&request.uri) {
            Some(contents) => Ok(ReadResourceResult::new(vec![contents]).into()),
            None => Err(ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                Some(json!({ "uri": request.uri })),
            )),
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions
            .lock()
            .expect("subscriptions lock")
            .insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions
            .lock()
            .expect("subscriptions lock")
            .remove(&request.uri);
        Ok(())
    }

    /// 2026-07-28 replaces resources/subscribe with subscriptions/listen:
    /// accept whatever was asked (rmcp narrows it to what get_info advertises).
    /// Nothing here changes, so the stream only carries rmcp's acknowledgement.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    /// A listen stream is told of `--list-changed` changes until it ends.
    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.shared
            .changes
            .listen(context.sink().clone(), context.cancelled())
            .await;
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let mut prompts = self.all_prompts();
        for prompt in &mut prompts {
            if let Some(name) = self.shared.exposed(&prompt.name) {
                prompt.name = name;
            }
        }
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        mut request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if let Some(name) = self.internal_prompt(&request.name) {
            request.name = name;
        }
        self.prompt(request, context).await
    }

    async fn complete(
        &self,
        mut request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        if let Reference::Prompt(prompt) = &mut request.r#ref
            && let Some(name) = self.internal_prompt(&prompt.name)
        {
            prompt.name = name;
        }
        completions(&request)
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self.log_level.lock().expect("log level lock") = request.level;
        Ok(())
    }
}
