//! One forwarded call's answer relayed as an event stream: the upstream's
//! progress and log notifications, its requests of the client (relayed, or
//! held as input between eras), rounds of input, and the final response
//! in the client's era; cancelled when the client goes.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::adapt::Adapt;
use super::{
    MAX_INPUT_ROUNDS, cancelled, cancelled_failure, frame, input, needs_input, send,
    upstream_failure,
};
use crate::jsonrpc::{self, RpcError};
use crate::protocol::Relayable;
use crate::sessions::{ClientSession, Tracked};
use crate::traces::Span;
use crate::upstream::session::SessionSlot;
use crate::upstream::{Reply, Upstream, UpstreamError};

/// Everything needed to relay one forwarded request's messages.
pub(super) struct Relay {
    pub(super) upstream: Arc<Upstream>,
    /// The client's session (2025 clients).
    pub(super) session: Option<Arc<ClientSession>>,
    /// The client's upstream session slot (2025 clients).
    pub(super) slot: Option<Arc<SessionSlot>>,
    /// What the client can be asked.
    pub(super) asks: Relayable,
    /// The authenticated caller, to whom a held call belongs.
    pub(super) subject: Option<Arc<str>>,
    pub(super) adapt: Adapt,
    /// The client's request id.
    pub(super) id: Value,
    pub(super) tracked: Option<Tracked>,
    /// The original request, when a 2026 upstream may ask a 2025 client for
    /// input: retried with the answers.
    pub(super) retry_template: Option<Value>,
    pub(super) forwarded: Vec<(http::HeaderName, http::HeaderValue)>,
    /// The upstream call's span: it ends with the relay.
    pub(super) span: Span,
    /// The call's own upstream session (a 2026-07-28 client's that may
    /// need input): ended when the relay ends.
    pub(super) _own_session: Option<super::own_session::OwnSession>,
    /// Counts the call until the relay ends.
    pub(super) _in_flight: crate::metrics::Held,
}

impl Relay {
    /// A 2026 client gets the upstream's status (404 for an unknown
    /// method); a 2025 client gets errors in a 200, as that era does.
    pub(super) fn status(&self, upstream_status: StatusCode) -> StatusCode {
        if self.adapt.client_modern {
            upstream_status
        } else {
            StatusCode::OK
        }
    }

    /// The status of an adapted JSON answer: a 2025 upstream's "method not
    /// found" comes in a 200, where the 2026-07-28 transport says 404.
    pub(super) fn adapted_status(
        &self,
        response: &Value,
        upstream_status: StatusCode,
    ) -> StatusCode {
        if self.adapt.client_modern
            && !self.adapt.upstream_modern
            && response.pointer("/error/code") == Some(&Value::from(jsonrpc::METHOD_NOT_FOUND))
        {
            StatusCode::NOT_FOUND
        } else {
            self.status(upstream_status)
        }
    }

    /// Relays until the final response: from `messages` (an upstream event
    /// stream), or starting from a `pending` response that needs input.
    pub(super) async fn run(
        mut self,
        mut messages: Option<mpsc::Receiver<Result<Value, UpstreamError>>>,
        mut pending: Option<Value>,
        tx: mpsc::Sender<Bytes>,
    ) {
        // While it streams, this answer carries the upstream's requests made
        // outside any call to a client without a stream of its own.
        let _lent = self
            .session
            .as_ref()
            .map(|session| session.lend_call_stream(&self.upstream.name, &tx));
        let mut rounds = 0;
        loop {
            let message = match pending.take() {
                Some(message) => message,
                None => {
                    let Some(stream) = messages.as_mut() else {
                        return;
                    };
                    let next = tokio::select! {
                        next = stream.recv() => next,
                        _ = cancelled(self.tracked.as_ref()) => {
                            // Dropping the stream cancels upstream.
                            let _ = tx.send(self.error_frame(cancelled_failure().1)).await;
                            return;
                        }
                        _ = tx.closed() => return,
                    };
                    match next {
                        Some(Ok(message)) => message,
                        Some(Err(error)) => {
                            let (_, rpc) = upstream_failure(&self.upstream, error);
                            let _ = tx.send(self.error_frame(rpc)).await;
                            return;
                        }
                        None => return,
                    }
                }
            };
            let mut message = message;
            let is_response = jsonrpc::is_response(&message);
            if !is_response
                && let Some(prefix) = &self.adapt.task_prefix
                && super::tasks::names_a_task(&message)
            {
                super::tasks::prefix_ids(&mut message, prefix);
            }
            if !is_response && message.get("id").is_some() {
                if self.holds_for_input(&message)
                    && let Some(stream) = messages.take()
                {
                    // The answer to this request ends this exchange; the
                    // client's retry takes the call on (relay::input).
                    let response = input::hold(self, stream, message);
                    let _ = tx.send(frame(&response)).await;
                    return;
                }
                self.relay_upstream_request(message, &tx).await;
                continue;
            }
            if !is_response {
                if tx.send(frame(&message)).await.is_err() {
                    return;
                }
                continue;
            }
            if self.retry_template.is_some() && needs_input(&message) {
                rounds += 1;
                match self.answer_input(&message, rounds, &tx).await {
                    Ok(next) => {
                        messages = next.0;
                        pending = next.1;
                        continue;
                    }
                    Err(rpc) => {
                        let _ = tx.send(self.error_frame(rpc)).await;
                        return;
                    }
                }
            }
            let mut response = message;
            response["id"] = self.id.clone();
            self.span.record_response(&response);
            self.adapt.apply(&mut response);
            let _ = tx.send(frame(&response)).await;
            return;
        }
    }

    pub(super) fn error_frame(&mut self, rpc: RpcError) -> Bytes {
        self.span.fail_rpc(&rpc);
        frame(&rpc.response(Some(&self.id)))
    }

    /// The upstream session this call's requests come from (and their
    /// answers go to): the client's own, or the shared one for what the
    /// client declared.
    pub(super) fn answer_slot(&self) -> &SessionSlot {
        match &self.slot {
            Some(slot) => slot,
            None => self.upstream.shared_for(self.asks),
        }
    }

    /// Whether the upstream's request is input a 2026-07-28 client can
    /// give through an `InputRequiredResult` (a 2025 upstream asking).
    pub(super) fn holds_for_input(&self, request: &Value) -> bool {
        self.session.is_none()
            && !self.adapt.upstream_modern
            && request
                .get("method")
                .and_then(Value::as_str)
                .is_some_and(|method| self.asks.covers(method))
    }

    /// A request the upstream makes of the client in the middle of a call
    /// (2025 upstreams): relayed on this call's stream.
    async fn relay_upstream_request(&self, request: Value, tx: &mpsc::Sender<Bytes>) {
        match &self.session {
            Some(session) => {
                super::standalone::ask_client_on(
                    &self.upstream,
                    self.slot.as_ref(),
                    session,
                    request,
                    tx,
                )
                .await
            }
            None => {
                self.upstream
                    .refuse_server_request(Some(self.answer_slot()), &request)
                    .await
            }
        }
    }

    /// MRTR toward a 2025 client: asks it each input the upstream wants,
    /// then retries the original request with the answers. Returns the
    /// retry's reply (a stream, or a response to look at).
    async fn answer_input(
        &mut self,
        response: &Value,
        round: usize,
        tx: &mpsc::Sender<Bytes>,
    ) -> Result<
        (
            Option<mpsc::Receiver<Result<Value, UpstreamError>>>,
            Option<Value>,
        ),
        RpcError,
    > {
        let refuse = |why: String| RpcError::new(jsonrpc::INTERNAL_ERROR, why);
        if round > MAX_INPUT_ROUNDS {
            return Err(refuse(format!(
                "upstream {} asked for input more than {MAX_INPUT_ROUNDS} times",
                self.upstream.name
            )));
        }
        let session = self
            .session
            .clone()
            .ok_or_else(|| refuse("no session".into()))?;
        let result = &response["result"];
        let mut answers = Map::new();
        if let Some(requests) = result.get("inputRequests").and_then(Value::as_object) {
            for (key, input) in requests {
                let method = input
                    .get("method")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !session.can_answer(method) {
                    return Err(refuse(format!(
                        "upstream {} needs {method}, which this client did not declare",
                        self.upstream.name
                    )));
                }
                let (client_id, answer) = session.ask();
                let ask = json!({
                    "jsonrpc": "2.0", "id": client_id, "method": method,
                    "params": input.get("params").cloned().unwrap_or_else(|| json!({})),
                });
                if tx.send(frame(&ask)).await.is_err() {
                    session.forget_ask(&client_id);
                    return Err(refuse("the client went away".into()));
                }
                let answered = tokio::select! {
                    answered = tokio::time::timeout(self.upstream.spec.timeout, answer) => answered,
                    _ = cancelled(self.tracked.as_ref()) => {
                        session.forget_ask(&client_id);
                        return Err(cancelled_failure().1);
                    }
                };
                let answered = match answered {
                    Ok(Ok(answered)) => answered,
                    _ => {
                        session.forget_ask(&client_id);
                        return Err(refuse(format!(
                            "the client did not answer {method} in time"
                        )));
                    }
                };
                match answered.get("result") {
                    Some(result) => {
                        answers.insert(key.clone(), result.clone());
                    }
                    None => {
                        let message = answered
                            .pointer("/error/message")
                            .and_then(Value::as_str)
                            .unwrap_or("no result");
                        return Err(refuse(format!("the client refused {method}: {message}")));
                    }
                }
            }
        }
        let mut retry = self.retry_template.clone().expect("set when bridging");
        // MRTR: the retry is a new request (new id) carrying the answers
        // and, verbatim, the upstream's state.
        retry["id"] = json!(format!("{}-input-{round}", self.id));
        let params = retry
            .as_object_mut()
            .and_then(|m| m.get_mut("params"))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| refuse("request without params".into()))?;
        params.insert("inputResponses".into(), Value::Object(answers));
        match result.get("requestState") {
            Some(state) => params.insert("requestState".into(), state.clone()),
            None => params.remove("requestState"),
        };
        let reply = send(
            &self.upstream,
            retry,
            self.slot.as_deref(),
            Some(&session),
            session.asks,
            &self.forwarded,
        )
        .await
        .map_err(|error| upstream_failure(&self.upstream, error).1)?;
        match reply {
            Reply::Stream { messages, .. } => Ok((Some(messages), None)),
            Reply::Json { body, .. } => serde_json::from_slice(&body)
                .map(|value| (None, Some(value)))
                .map_err(|e| refuse(format!("upstream answered with invalid JSON: {e}"))),
            Reply::Accepted => Err(refuse(
                "upstream accepted a request without answering".into(),
            )),
        }
    }
}
