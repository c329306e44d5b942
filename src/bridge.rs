//! `switchboard stdio <url>`: a stdio MCP server that is really a remote
//! one, for clients that can only launch local processes. Each line on
//! stdin is POSTed to the URL (with the session and version headers the
//! exchange has established, and `Mcp-Method`/`Mcp-Name` for 2026-07-28
//! messages); every message that comes back — JSON, an event stream, or
//! the session's GET stream — is written to stdout as one line.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use crate::jsonrpc;
use crate::net::client::{client, client_with};
use crate::protocol;
use crate::upstream::http::{HttpLink, PostHeaders};
use crate::upstream::{Reply, UpstreamError};

/// What the exchange has established so far.
#[derive(Default)]
struct Negotiated {
    session: Option<HeaderValue>,
    version: Option<HeaderValue>,
    stream_open: bool,
}

/// Longest a single request may take (long tool calls stream progress).
const CALL_TIMEOUT: Duration = Duration::from_secs(3600);

pub async fn run(
    url: &str,
    headers: Vec<(String, String)>,
    ca_pem: Option<String>,
) -> anyhow::Result<()> {
    let http = match &ca_pem {
        Some(pem) => client_with(Some(pem), None).map_err(|e| anyhow::anyhow!(e))?,
        None => client(),
    };
    let link = Arc::new(HttpLink::new(http, url, &headers, None).map_err(|e| anyhow::anyhow!(e))?);
    let negotiated = Arc::new(Mutex::new(Negotiated::default()));
    let (out_tx, mut out_rx) = mpsc::channel::<Value>(256);
    // One writer: lines never interleave.
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(message) = out_rx.recv().await {
            let mut line = message.to_string();
            line.push('\n');
            if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
                return;
            }
        }
    });

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(&line) {
            Ok(message) => message,
            Err(error) => {
                let error =
                    jsonrpc::RpcError::new(jsonrpc::PARSE_ERROR, format!("not JSON: {error}"));
                let _ = out_tx.send(error.response(None)).await;
                continue;
            }
        };
        let (link, negotiated, out) = (link.clone(), negotiated.clone(), out_tx.clone());
        // The handshake must finish before anything else is sent.
        if message.get("method").and_then(Value::as_str) == Some("initialize") {
            forward(&link, &negotiated, &out, message).await;
        } else {
            tasks.spawn(async move { forward(&link, &negotiated, &out, message).await });
        }
        while tasks.try_join_next().is_some() {}
    }
    // stdin closed: let calls in flight finish, then end the session.
    while tasks.join_next().await.is_some() {}
    let negotiated = negotiated.lock().await;
    if let (Some(session), Some(version)) = (&negotiated.session, &negotiated.version) {
        link.delete(session, version, None).await;
    }
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

async fn forward(
    link: &Arc<HttpLink>,
    negotiated: &Arc<Mutex<Negotiated>>,
    out: &mpsc::Sender<Value>,
    message: Value,
) {
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let id = message.get("id").cloned();
    let expect_id = if method.is_some() { id.clone() } else { None };
    // A 2026-07-28 message names its version in `_meta`; a 2025 one uses
    // the version `initialize` settled.
    let modern = message
        .pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")
        .and_then(Value::as_str)
        .filter(|v| *v == protocol::MODERN)
        .is_some();
    let (session, version) = {
        let n = negotiated.lock().await;
        let version = if modern {
            Some(HeaderValue::from_static(protocol::MODERN))
        } else if method.as_deref() == Some("initialize") {
            None
        } else {
            n.version.clone()
        };
        (n.session.clone(), version)
    };
    let name = method
        .as_deref()
        .and_then(protocol::routed_name_key)
        .and_then(|key| message.get("params")?.get(key)?.as_str())
        .map(str::to_owned);
    let headers = PostHeaders {
        version: version.as_ref(),
        session: if modern { None } else { session.as_ref() },
        method: if modern { method.as_deref() } else { None },
        name: if modern { name.as_deref() } else { None },
        forwarded: &[],
        endpoint: None,
    };
    let body = Bytes::from(message.to_string());
    let deadline = Instant::now() + CALL_TIMEOUT;
    let reply = link.post(body, &headers, expect_id, deadline, None).await;
    let fail = |error: String| async {
        if let Some(id) = &id
            && method.is_some()
        {
            let error = jsonrpc::RpcError::new(jsonrpc::UPSTREAM_UNAVAILABLE, error);
            let _ = out.send(error.response(Some(id))).await;
        } else {
            tracing::warn!("{error}");
        }
    };
    match reply {
        Ok(Reply::Accepted) => {}
        Ok(Reply::Json {
            body, session_id, ..
        }) => {
            let answer: Value = match serde_json::from_slice(&body) {
                Ok(answer) => answer,
                Err(error) => {
                    return fail(format!(
                        "the server answered something that is not JSON: {error}"
                    ))
                    .await;
                }
            };
            if method.as_deref() == Some("initialize") {
                settle(negotiated, &answer, session_id).await;
            }
            let _ = out.send(answer).await;
        }
        Ok(Reply::Stream {
            mut messages,
            session_id,
        }) => {
            let mut session_id = session_id;
            while let Some(item) = messages.recv().await {
                match item {
                    Ok(answer) => {
                        if method.as_deref() == Some("initialize") && jsonrpc::is_response(&answer)
                        {
                            settle(negotiated, &answer, session_id.take()).await;
                        }
                        if out.send(answer).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => return fail(error.to_string()).await,
                }
            }
        }
        Err(UpstreamError::SessionLost) => {
            fail("the server no longer knows this session (restarted?): restart the client".into())
                .await
        }
        Err(error) => fail(error.to_string()).await,
    }
    if method.as_deref() == Some("notifications/initialized") {
        open_stream(link, negotiated, out).await;
    }
}

/// Records the session and version `initialize` settled.
async fn settle(negotiated: &Arc<Mutex<Negotiated>>, answer: &Value, session: Option<HeaderValue>) {
    let mut n = negotiated.lock().await;
    n.session = session.or(n.session.take());
    if let Some(version) = answer
        .pointer("/result/protocolVersion")
        .and_then(Value::as_str)
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        n.version = Some(version);
    }
}

/// The 2025 session's GET stream: the server's own notifications and
/// requests, passed to the client as they come.
async fn open_stream(
    link: &Arc<HttpLink>,
    negotiated: &Arc<Mutex<Negotiated>>,
    out: &mpsc::Sender<Value>,
) {
    let (session, version) = {
        let mut n = negotiated.lock().await;
        if n.stream_open {
            return;
        }
        n.stream_open = true;
        (n.session.clone(), n.version.clone())
    };
    let Some(version) = version else { return };
    let (link, out) = (link.clone(), out.clone());
    tokio::spawn(async move {
        let Ok(Some(mut messages)) = link.open_stream(session.as_ref(), &version, None).await
        else {
            return;
        };
        while let Some(Ok(message)) = messages.recv().await {
            if out.send(message).await.is_err() {
                return;
            }
        }
    });
}
