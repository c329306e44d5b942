//! One client request as the front hands it to the router, and what goes
//! back: the client's era and session, who is calling, the request's span,
//! and the outcome (JSON, an event stream, or 202). The router decides and
//! the relay forwards; both speak these types, so neither depends on the
//! other for them.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::auth::Caller;
use crate::catalog::Catalog;
use crate::jsonrpc::{self, RpcError};
use crate::pool::Pool;
use crate::sessions::ClientSession;
use crate::traces::Span;

/// Which era the client speaks, and its session if legacy.
pub enum Client {
    Modern,
    Legacy(Arc<ClientSession>),
}

/// Everything the router needs about one request.
pub struct Request<'a> {
    pub pool: &'a Pool,
    pub catalog: Arc<Catalog>,
    /// `None` for `/mcp`, the server name for `/servers/{name}/mcp`.
    pub scope: Option<&'a str>,
    pub client: Client,
    /// Who is calling: decides what is listed and what may be routed.
    pub caller: &'a Caller,
    pub forwarded: Vec<(HeaderName, HeaderValue)>,
    /// This request's span: its context goes on to every upstream call.
    pub span: &'a mut Span,
}

/// What to send back to the client.
pub enum Outcome {
    /// A JSON-RPC response (success or error) with its HTTP status.
    Json(StatusCode, Bytes),
    /// Server-Sent Events, already framed.
    Stream(mpsc::Receiver<Bytes>),
    /// 202: a notification or response was accepted.
    Accepted,
}

impl Outcome {
    pub fn error(status: StatusCode, id: Option<&Value>, error: RpcError) -> Outcome {
        Outcome::Json(status, Bytes::from(error.response(id).to_string()))
    }

    pub fn result(id: &Value, result: Value) -> Outcome {
        Outcome::Json(
            StatusCode::OK,
            Bytes::from(jsonrpc::result_response(id, result).to_string()),
        )
    }
}

impl Request<'_> {
    pub fn is_modern(&self) -> bool {
        matches!(self.client, Client::Modern)
    }
}

/// A request that failed: the HTTP status and the JSON-RPC error.
pub type Failure = (StatusCode, RpcError);
