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
        ReadResourceResult, ServerCapabilities, ServerConfig, SetLevelRequestParams,
        SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
    },
    service::{RequestContext, RoleServer},
};
use serde_json::json;

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

impl ServerHandler for Upstream {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_logging()
                .enable_completions()
                .enable_prompts()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_tools()
                .build(),
        )
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
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        params: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
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

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(prompts()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.prompt(request, context).await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
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
