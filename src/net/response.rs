//! Responses every layer sends: the body type, JSON, event-stream and
//! empty bodies, a JSON-RPC refusal with its HTTP status, and the header
//! checks the MCP transports require.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::jsonrpc::{self, RpcError};

pub type Body = BoxBody<Bytes, Infallible>;

/// A refusal before routing: the HTTP status and the JSON-RPC error.
pub struct Rejection {
    pub status: StatusCode,
    pub error: RpcError,
    pub id: Option<Value>,
}

impl Rejection {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Rejection {
        Rejection {
            status,
            error: RpcError::new(code, message),
            id: None,
        }
    }

    pub fn with_id(mut self, id: Option<&Value>) -> Rejection {
        self.id = id.cloned();
        self
    }

    pub fn into_response(self) -> Response<Body> {
        json_response(
            self.status,
            Bytes::from(self.error.response(self.id.as_ref()).to_string()),
        )
    }
}

/// 405 with the `Allow` header HTTP requires and a JSON-RPC error.
pub fn method_not_allowed(message: &'static str, allow: &'static str) -> Response<Body> {
    let mut response = Rejection::new(
        StatusCode::METHOD_NOT_ALLOWED,
        jsonrpc::INVALID_REQUEST,
        message,
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

pub fn content_type_is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether an `Accept` header admits `media` (wildcards count).
pub fn accepts(headers: &HeaderMap, media: &str) -> bool {
    let (kind, _) = media.split_once('/').unwrap_or((media, ""));
    headers.get_all(header::ACCEPT).iter().any(|value| {
        value.to_str().unwrap_or("").split(',').any(|item| {
            let item = item.split(';').next().unwrap_or("").trim();
            item.eq_ignore_ascii_case(media)
                || item == "*/*"
                || item
                    .strip_suffix("/*")
                    .is_some_and(|k| k.eq_ignore_ascii_case(kind))
        })
    })
}

pub fn empty() -> Body {
    Full::new(Bytes::new()).boxed()
}

pub fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .body(Full::new(body).boxed())
        .expect("static response parts")
}

pub fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    stream_response_holding(rx, ())
}

/// An event stream whose body holds `guard` until it ends or the client
/// goes (hyper drops the body when the connection closes).
pub fn stream_response_holding<G>(rx: mpsc::Receiver<Bytes>, guard: G) -> Response<Body>
where
    G: Send + Sync + 'static,
{
    let frames = stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), (rx, guard)))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .expect("static response parts")
}
