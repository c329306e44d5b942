//! The 2024-11-05 HTTP+SSE transport, for clients that still speak it:
//! `GET /sse` opens the one stream, whose first event (`endpoint`) names
//! where to POST; `POST /message?sessionId=…` carries each client message
//! and is answered 202 at once; every response, notification and relayed
//! request travels on the stream. Otherwise a session here is a 2025-era
//! session like any other (affinity, list_changed, relays).

use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use http::{HeaderMap, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::{mpsc, oneshot};

use super::Front;
use crate::auth::Caller;
use crate::exchange::{self, Client, Outcome};
use crate::jsonrpc;
use crate::net::response::{accepts, content_type_is_json, empty, stream_response_holding};
use crate::net::{Body, Rejection};
use crate::router;
use crate::sse;
use crate::traces::Span;

/// Frames queued per stream before a slow client holds up its own answers.
const QUEUE: usize = 64;

/// Open HTTP+SSE streams by session id.
#[derive(Default)]
pub struct SseStreams {
    by_session: DashMap<Arc<str>, SseStream>,
}

struct SseStream {
    frames: mpsc::Sender<Bytes>,
    /// The subject that opened it; only that subject may post to it.
    subject: Option<Arc<str>>,
    /// Dropped to end the stream from the gateway's side.
    _end: oneshot::Sender<()>,
}

impl SseStreams {
    pub fn close_all(&self) {
        self.by_session.clear();
    }

    /// Ends the stream of a session that is gone (deleted or expired): the
    /// stream is the session, and a client left holding a stream whose
    /// session no longer exists could only wait on it forever.
    pub fn end(&self, session: &str) {
        self.by_session.remove(session);
    }
}

impl Front {
    /// `GET /sse`: opens the stream and names the message endpoint.
    pub fn open_sse(
        self: &Arc<Self>,
        headers: &HeaderMap,
        scope: Option<&str>,
        caller: &Caller,
    ) -> Result<Response<Body>, Rejection> {
        if !accepts(headers, "text/event-stream") {
            return Err(Rejection::new(
                StatusCode::NOT_ACCEPTABLE,
                jsonrpc::INVALID_REQUEST,
                "Accept must list text/event-stream",
            ));
        }
        let session = crate::sessions::new_id();
        let (tx, rx) = mpsc::channel(QUEUE);
        let endpoint = match scope {
            None => format!("/message?sessionId={session}"),
            Some(name) => format!("/servers/{name}/message?sessionId={session}"),
        };
        let _ = tx.try_send(Bytes::from(format!(
            "event: endpoint\ndata: {endpoint}\n\n"
        )));
        let (end, ended) = oneshot::channel();
        self.sse_streams.by_session.insert(
            session.clone(),
            SseStream {
                frames: tx.clone(),
                subject: caller.subject().cloned(),
                _end: end,
            },
        );
        // The stream is the session: when the client goes, so does it; when
        // the session ends, so does the stream (this task's sender is the
        // one that lasts).
        let front = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tx.closed() => {}
                _ = ended => {}
            }
            drop(tx);
            front.sse_streams.by_session.remove(&session);
            if let Some(ended) = front.sessions.remove(&session) {
                front.end_upstream_sessions(&ended);
            }
            tracing::debug!(%session, "HTTP+SSE stream closed");
        });
        // Counted while the client holds it.
        Ok(stream_response_holding(
            rx,
            crate::metrics::Live::SseStream.held(),
        ))
    }

    /// `POST /message?sessionId=…`: accepts one message; its answer goes on
    /// the session's stream.
    pub async fn sse_message(
        self: &Arc<Self>,
        request: hyper::Request<Incoming>,
        scope: Option<&str>,
        caller: Arc<Caller>,
    ) -> Result<Response<Body>, Rejection> {
        if !content_type_is_json(request.headers()) {
            return Err(Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                jsonrpc::INVALID_REQUEST,
                "Content-Type must be application/json",
            ));
        }
        let session_id = request
            .uri()
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("sessionId="))
            .map(str::to_owned);
        // Another subject's stream is as unknown as a missing one.
        let Some((session_id, stream)) = session_id.and_then(|id| {
            self.sse_streams
                .by_session
                .get(id.as_str())
                .filter(|entry| entry.subject.as_ref() == caller.subject())
                .map(|entry| (id, entry.frames.clone()))
        }) else {
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                jsonrpc::INVALID_REQUEST,
                "unknown sessionId: open GET /sse first",
            ));
        };
        let (parts, body) = request.into_parts();
        let message = self.read_message(body).await?;
        let mut span = Span::for_request(self.tracer.as_ref(), &parts.headers, &message);
        let id: Arc<str> = Arc::from(session_id.as_str());

        if message.method() == Some("initialize") {
            let (session, body) = self
                .handshake(&message, scope, crate::sessions::Opening::Sse(id), &caller)
                .await?;
            self.listeners.attach_session_stream(
                session.id.clone(),
                session.scope.clone(),
                stream.clone(),
            );
            session.set_stream(&stream);
            send(&stream, sse::encode_message(&body)).await;
            return Ok(accepted());
        }
        let Some(session) = self.sessions.get(&session_id) else {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "send initialize first",
            ));
        };
        let front = self.clone();
        let scope = scope.map(str::to_owned);
        // Answered on the stream, whenever it is ready; this POST is done.
        tokio::spawn(async move {
            let catalog = front.pool.catalog_for(session.asks).await;
            let routed = exchange::Request {
                pool: &front.pool,
                catalog,
                scope: scope.as_deref(),
                client: Client::Legacy(session),
                caller: &caller,
                forwarded: Vec::new(),
                span: &mut span,
            };
            let answered = async {
                match router::route(routed, message).await {
                    Outcome::Json(_, body) => send(&stream, sse::encode_message(&body)).await,
                    Outcome::Stream(mut frames) => {
                        while let Some(frame) = frames.recv().await {
                            if stream.send(frame).await.is_err() {
                                return;
                            }
                        }
                    }
                    Outcome::Accepted => {}
                }
            };
            // A client that leaves mid-call leaves nobody to answer:
            // dropping the call cancels it upstream instead of holding it
            // (and the session) until the upstream answers or times out.
            tokio::select! {
                _ = answered => {}
                _ = stream.closed() => {}
            }
        });
        Ok(accepted())
    }
}

fn accepted() -> Response<Body> {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .body(empty())
        .expect("static response")
}

async fn send(stream: &mpsc::Sender<Bytes>, frame: Bytes) {
    // A closed stream means the session is already being torn down.
    let _ = stream.send(frame).await;
}
