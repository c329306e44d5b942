//! An MCP server, built on rmcp, that passes the official conformance suite's
//! server scenarios on its own.
//!
//! It is the baseline for Switchboard's conformance runs: the suite is run
//! against it directly, then through the gateway, and any difference is the
//! gateway's doing. Integration tests also start it as an ordinary rmcp
//! upstream, which is why it carries a few tools of its own (`echo`,
//! `session_info`, `sleep`, `--extra-tool`) besides the ones the suite calls.
//!
//! ```text
//! conformance-upstream --http 127.0.0.1:0 [--stateless] [--legacy-only] [--extra-tool NAME]...
//! conformance-upstream --stdio [--legacy-only] [--extra-tool NAME]...
//! ```
//!
//! With `--http` it prints exactly one line on stdout once it is bound,
//! `listening on http://ADDR/mcp`, so a parent can start it on port 0 and read
//! the address back. Diagnostics go to stderr (`RUST_LOG`, default `warn`).
//!
//! The tool, resource and prompt names, arguments and texts below are the
//! ones the suite's scenarios ask for (its `--scenario` descriptions spell
//! them out); changing one makes a scenario fail. Suite 0.1.16 tests the 2025
//! revisions only; the `test_input_required_result_*` and other 2026-07-28
//! fixtures are for its 0.2.0 line (`--requirements 2026-07-28`).

// The 2025 revisions the suite tests rely on logging, sampling and
// server-to-client requests, which rmcp marks deprecated by SEP-2577.
#![allow(deprecated)]

use std::{
    collections::{HashMap, HashSet},
    convert::Infallible,
    io::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use rmcp::{
    ErrorData, ServerHandler, ServiceExt as _,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientResult,
        CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock, CreateMessageRequest,
        CreateMessageRequestParams, ElicitRequest, ElicitRequestParams, ErrorCode,
        GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation, InputRequest,
        InputRequests, InputRequiredResult, InputResponses, JsonObject, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListRootsRequest, ListToolsResult,
        LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
        ProgressNotificationParam, Prompt, PromptArgument, PromptMessage, ProtocolVersion,
        ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Reference, Resource,
        ResourceContents, ResourceTemplate, Role, SamplingMessage, ServerCapabilities,
        ServerConfig, ServerRequest, SetLevelRequestParams, SubscribeRequestParams,
        SubscriptionFilter, Tool, UnsubscribeRequestParams,
    },
    service::{RequestContext, RoleServer},
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};
use serde_json::{Value, json};

/// A 1x1 red PNG (8-bit RGB, one zlib-compressed scanline), base64.
const RED_PIXEL_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mP4z8AAAAMBAQD3A0FDAAAAAElFTkSuQmCC";

/// A 52-byte WAV: 8 kHz mono 8-bit PCM, eight samples of silence, base64.
const SILENT_WAV: &str = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

/// The pause between the notifications of the logging and progress tools:
/// the suite checks that several notifications arrive during one call.
const STEP: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

enum Transport {
    Http { addr: String, stateless: bool },
    Stdio,
}

struct Options {
    transport: Transport,
    extra_tools: Vec<String>,
    /// Speak only the 2025 revisions: a 2025-era upstream with sessions,
    /// for the gateway's affinity and era-bridging tests.
    legacy_only: bool,
    /// Serve HTTPS with this PEM certificate chain and key.
    tls: Option<(String, String)>,
}

const USAGE: &str = "usage: conformance-upstream (--http ADDR [--stateless] [--tls CERT KEY] | --stdio) \
                     [--legacy-only] [--extra-tool NAME]...";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut http = None;
    let mut stdio = false;
    let mut stateless = false;
    let mut extra_tools = Vec::new();
    let mut legacy_only = false;
    let mut tls = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--http" => http = Some(args.next().ok_or("--http needs an address")?),
            "--stdio" => stdio = true,
            "--stateless" => stateless = true,
            "--legacy-only" => legacy_only = true,
            "--tls" => {
                let cert = args.next().ok_or("--tls needs a certificate file")?;
                let key = args.next().ok_or("--tls needs a key file")?;
                tls = Some((cert, key));
            }
            "--extra-tool" => extra_tools.push(args.next().ok_or("--extra-tool needs a name")?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let transport = match (http, stdio) {
        (Some(addr), false) => Transport::Http { addr, stateless },
        (None, true) if !stateless => Transport::Stdio,
        (None, true) => return Err("--stateless only applies to --http".into()),
        _ => return Err(format!("give exactly one of --http and --stdio\n{USAGE}")),
    };
    Ok(Options {
        transport,
        extra_tools,
        legacy_only,
        tls,
    })
}

fn main() {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    // Logs on stderr: stdout is the address line (HTTP) or the protocol (stdio).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let stateless = matches!(
        options.transport,
        Transport::Http {
            stateless: true,
            ..
        }
    );
    let shared = Arc::new(Shared {
        extra_tools: options.extra_tools,
        sleeps: SleepStats::default(),
        legacy_only: options.legacy_only,
        stateless,
        states: RequestStates::default(),
    });
    let result = runtime.block_on(async move {
        match options.transport {
            Transport::Http { addr, stateless } => {
                serve_http(&addr, stateless, options.tls, shared).await
            }
            Transport::Stdio => serve_stdio(shared).await,
        }
    });
    if let Err(error) = result {
        eprintln!("conformance-upstream: {error}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// Transports
// ---------------------------------------------------------------------------

type Error = Box<dyn std::error::Error + Send + Sync>;
type HttpResponse = http::Response<BoxBody<Bytes, Infallible>>;

/// A TLS acceptor for `--tls CERT KEY` (the gateway's upstream TLS tests).
fn tls_acceptor(cert: &str, key: &str) -> Result<tokio_rustls::TlsAcceptor, Error> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn serve_http(
    addr: &str,
    stateless: bool,
    tls: Option<(String, String)>,
    shared: Arc<Shared>,
) -> Result<(), Error> {
    let acceptor = match &tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    // The default config keeps rmcp's loopback-only `allowed_hosts`, which is
    // what makes the DNS-rebinding scenario pass. In session mode, 2025 clients
    // get an Mcp-Session-Id and one `Upstream` per session; requests that
    // negotiate 2026-07-28 are served statelessly in either mode.
    let config = StreamableHttpServerConfig::default().with_legacy_session_mode(!stateless);
    let service = StreamableHttpService::new(
        move || Ok(Upstream::new(shared.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );

    let mut stdout = std::io::stdout().lock();
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    writeln!(stdout, "listening on {scheme}://{local}/mcp")?;
    stdout.flush()?;
    drop(stdout);

    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Typically fd exhaustion: keep serving the connections we have.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Event streams go out in several small writes: without this,
        // Nagle and delayed ACKs add about 40 ms to each reused connection's
        // answer.
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve_connection(stream, service, peer).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => serve_connection(stream, service, peer).await,
                    Err(error) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                },
            }
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    service: StreamableHttpService<Upstream, LocalSessionManager>,
    peer: std::net::SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let handler = service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(route(&service, request).await) }
    });
    if let Err(error) = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), handler)
        .await
    {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Only `/mcp` is an MCP endpoint; anything else is a 404, so a client with a
/// wrong URL fails loudly instead of talking to the right server by accident.
async fn route(
    service: &StreamableHttpService<Upstream, LocalSessionManager>,
    request: http::Request<hyper::body::Incoming>,
) -> HttpResponse {
    if request.uri().path() == "/mcp" {
        return service.handle(request).await;
    }
    let mut response = http::Response::new(Full::new(Bytes::from_static(b"not found\n")).boxed());
    *response.status_mut() = http::StatusCode::NOT_FOUND;
    response
}

async fn serve_stdio(shared: Arc<Shared>) -> Result<(), Error> {
    let running = Upstream::new(shared)
        .serve(rmcp::transport::stdio_pipes())
        .await?;
    running.waiting().await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// What every server instance of the process shares.
struct Shared {
    extra_tools: Vec<String>,
    /// What became of `sleep` calls.
    sleeps: SleepStats,
    legacy_only: bool,
    /// Serving `--stateless`: 2025 requests come without a session.
    stateless: bool,
    /// Behind the `requestState` of the 2026-07-28 diagnostics.
    states: RequestStates,
}

#[derive(Default)]
struct SleepStats {
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

/// One MCP server instance. The HTTP service makes one per session (per
/// request when stateless), so the state below is per session.
#[derive(Clone)]
struct Upstream {
    shared: Arc<Shared>,
    /// Least severe level sent as `notifications/message` to 2025 clients,
    /// set by `logging/setLevel`. Until a client sets one, everything is sent.
    log_level: Arc<Mutex<LoggingLevel>>,
    /// URIs passed to `resources/subscribe` and not yet unsubscribed. Nothing
    /// here ever changes, so no update is sent; the suite asks for tracking.
    subscriptions: Arc<Mutex<HashSet<String>>>,
}

impl Upstream {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            log_level: Arc::new(Mutex::new(LoggingLevel::Debug)),
            subscriptions: Arc::default(),
        }
    }
}

/// Severity order of the MCP (syslog) levels.
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// Whether this request speaks 2026-07-28 or later, where a server may no
/// longer send requests to the client and asks for input with an
/// `InputRequiredResult` (SEP-2322) instead.
fn is_2026_or_later(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("schemas are written as JSON objects"),
    }
}

fn no_arguments() -> JsonObject {
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

fn text_result(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(text)]).into()
}

fn string_argument<'a>(
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
    fn tools(&self) -> Vec<Tool> {
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
        tools.extend(self.shared.extra_tools.iter().map(|name| {
            Tool::new(
                name.clone(),
                format!("Extra tool; returns \"{name} ok\""),
                no_arguments(),
            )
        }));
        tools
    }

    async fn log(&self, context: &RequestContext<RoleServer>, level: LoggingLevel, message: &str) {
        // 2026-07-28 has no logging/setLevel: a request that wants log
        // messages names a level in its _meta, and one that does not gets none.
        let threshold = if is_2026_or_later(context) {
            context.meta.log_level()
        } else {
            Some(*self.log_level.lock().expect("log level lock"))
        };
        if threshold.is_none_or(|threshold| severity(level) < severity(threshold)) {
            return;
        }
        let notification = LoggingMessageNotificationParam::new(level, json!(message))
            .with_logger("conformance-upstream");
        if let Err(error) = context.peer.notify_logging_message(notification).await {
            tracing::debug!(%error, "log notification not delivered");
        }
    }

    async fn run_with_logging(&self, context: &RequestContext<RoleServer>) -> CallToolResponse {
        self.log(context, LoggingLevel::Info, "Tool execution started")
            .await;
        tokio::time::sleep(STEP).await;
        self.log(context, LoggingLevel::Info, "Tool processing data")
            .await;
        tokio::time::sleep(STEP).await;
        self.log(context, LoggingLevel::Info, "Tool execution completed")
            .await;
        text_result("Tool with logging executed successfully")
    }

    async fn run_with_progress(&self, context: &RequestContext<RoleServer>) -> CallToolResponse {
        let token = context.meta.get_progress_token();
        for (step, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
            if step > 0 {
                tokio::time::sleep(STEP).await;
            }
            if let Some(token) = &token {
                let notification =
                    ProgressNotificationParam::new(token.clone(), progress).with_total(100.0);
                if let Err(error) = context.peer.notify_progress(notification).await {
                    tracing::debug!(%error, "progress notification not delivered");
                }
            }
        }
        text_result("Tool with progress executed successfully")
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

// ---------------------------------------------------------------------------
// Asking the client: sampling and elicitation
// ---------------------------------------------------------------------------

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
    async fn answer_in_legacy_session(
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

/// Sends `request` to the client on the call's stream; its result as JSON.
async fn send_to_client(
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
    let result = context.peer.send_request(request).await.map_err(|error| {
        ErrorData::internal_error(format!("client request failed: {error}"), None)
    })?;
    let answer = match result {
        ClientResult::CreateMessageResult(result) => serde_json::to_value(result),
        ClientResult::ElicitResult(result) => serde_json::to_value(result),
        other => serde_json::to_value(other),
    };
    answer.map_err(|error| ErrorData::internal_error(error.to_string(), None))
}

fn elicitation(message: &str, schema: Value) -> Result<InputRequest, ErrorData> {
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
    async fn sampling(
        &self,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.sample(params, context, string_argument(params, "prompt")?)
            .await
    }

    async fn sample(
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

    async fn elicitation_tool(
        &self,
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.elicit_user(params, context, string_argument(params, "message")?)
            .await
    }

    async fn elicit_user(
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

    async fn elicitation_defaults_tool(
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

    async fn elicitation_enums_tool(
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
fn plain(value: &Value) -> String {
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
fn sampled_text(answer: &Value) -> String {
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

// ---------------------------------------------------------------------------
// 2026-07-28 diagnostics: multi round-trip requests (SEP-2322)
// ---------------------------------------------------------------------------
//
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
struct RequestStates(Mutex<HashMap<String, PendingCall>>);

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

fn input_required<const N: usize>(
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
fn accepted<'a>(answer: Option<&'a Value>, field: &str) -> Option<&'a Value> {
    let answer = answer?;
    (answer["action"] == "accept")
        .then(|| answer["content"].get(field))
        .flatten()
}

fn ask_for(message: &str, field: &str, kind: &str) -> Result<InputRequest, ErrorData> {
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
const IRR_PROMPT: &str = "test_input_required_result_prompt";

impl Upstream {
    fn mrtr_tools() -> Vec<Tool> {
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
    async fn mrtr_tool(
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

// ---------------------------------------------------------------------------
// Resources and prompts
// ---------------------------------------------------------------------------

const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

fn read(uri: &str) -> Option<ResourceContents> {
    let text = |mime: &str, text: String| ResourceContents::TextResourceContents {
        uri: uri.to_string(),
        mime_type: Some(mime.to_string()),
        text,
        meta: None,
    };
    match uri {
        "test://static-text" => Some(text(
            "text/plain",
            "This is the content of the static text resource.".into(),
        )),
        "test://static-binary" => {
            Some(ResourceContents::blob(RED_PIXEL_PNG, uri).with_mime_type("image/png"))
        }
        "test://watched-resource" => Some(text(
            "text/plain",
            "This resource is watched for updates.".into(),
        )),
        _ => {
            // test://template/{id}/data
            let id = uri
                .strip_prefix(TEMPLATE_PREFIX)?
                .strip_suffix(TEMPLATE_SUFFIX)
                .filter(|id| !id.is_empty() && !id.contains('/'))?;
            let body =
                json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
            Some(text("application/json", body.to_string()))
        }
    }
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

// ---------------------------------------------------------------------------
// ServerHandler
// ---------------------------------------------------------------------------

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

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new("test://static-text", "static-text")
                .with_description("A static text resource")
                .with_mime_type("text/plain"),
            Resource::new("test://static-binary", "static-binary")
                .with_description("A static binary resource (1x1 PNG)")
                .with_mime_type("image/png"),
            Resource::new("test://watched-resource", "watched-resource")
                .with_description("A resource that can be subscribed to")
                .with_mime_type("text/plain"),
        ]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new("test://template/{id}/data", "template-data")
                .with_description("JSON data for the given id")
                .with_mime_type("application/json"),
        ]))
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
        Ok(ListPromptsResult::with_all_items(vec![
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
        ]))
    }

    async fn get_prompt(
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

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        // Only the prompt arguments have candidates; anything else completes
        // to nothing, which the spec allows.
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

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self.log_level.lock().expect("log level lock") = request.level;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_args(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn command_line() {
        let options =
            parse(&["--http", "127.0.0.1:0", "--stateless", "--extra-tool", "a"]).unwrap();
        assert!(matches!(
            options.transport,
            Transport::Http {
                stateless: true,
                ..
            }
        ));
        assert_eq!(options.extra_tools, ["a"]);
        assert!(matches!(
            parse(&["--stdio"]).unwrap().transport,
            Transport::Stdio
        ));
        assert!(parse(&[]).is_err());
        assert!(parse(&["--stdio", "--http", "x"]).is_err());
        assert!(parse(&["--stdio", "--stateless"]).is_err());
        assert!(parse(&["--extra-tool"]).is_err());
    }

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

    #[test]
    fn template_reads_substitute_the_id() {
        let Some(ResourceContents::TextResourceContents { text, .. }) =
            read("test://template/123/data")
        else {
            panic!("template did not resolve");
        };
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({ "id": "123", "templateTest": true, "data": "Data for ID: 123" })
        );
        assert!(read("test://template//data").is_none());
        assert!(read("test://nothing").is_none());
    }
}
