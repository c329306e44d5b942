//! Input across eras, toward a 2026-07-28 client: a 2025-era upstream that
//! asks for input in the middle of a call (`sampling/createMessage`,
//! `elicitation/create`, `roots/list` on the call's own stream, as rmcp and
//! the Python SDK send them) has no request to send it on, since that era
//! of client takes no server-to-client requests. So the gateway holds the
//! upstream call, answers the client with an `InputRequiredResult` whose
//! `requestState` names the held call, and when the client retries with
//! `inputResponses`, answers the upstream and goes on relaying that same
//! call: the upstream runs the tool once, however many rounds it asks.
//!
//! The held call lives on the replica that asked. A retry whose
//! `requestState` this replica does not hold (another replica's, or one
//! expired) is refused with `-32602` and a message saying to call again:
//! never a hang, never a second run of the call.

use std::sync::LazyLock;
use std::time::Duration;

use dashmap::DashMap;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Messages, Relay};
use crate::jsonrpc::{self, RpcError};

/// What every `requestState` of the gateway's starts with, so that an
/// upstream's own (a 2026-07-28 upstream's MRTR) passes through untouched.
const STATE_PREFIX: &str = "switchboard-input:";

/// The key of the one input request in each `InputRequiredResult`: the
/// upstream asks one thing at a time.
const INPUT_KEY: &str = "input";

/// An upstream call held until the client answers the input it asked for.
struct Held {
    /// The call, and who made it: only they may answer.
    relay: Relay,
    /// The rest of the upstream's answer stream.
    messages: Messages,
    /// The upstream's id of the request the client must answer.
    asked: Value,
}

/// Held calls by their `requestState`; each expires with its upstream's
/// call timeout.
static HELD: LazyLock<DashMap<String, Held>> = LazyLock::new(DashMap::new);

/// Whether `params` carry a `requestState` of the gateway's.
pub fn is_ours(params: Option<&Value>) -> bool {
    params
        .and_then(|p| p.get("requestState"))
        .and_then(Value::as_str)
        .is_some_and(|state| state.starts_with(STATE_PREFIX))
}

/// Holds the call and returns the `InputRequiredResult` frame's response
/// for the client, asking what `request` (from the upstream) asks.
pub(super) fn hold(relay: Relay, messages: Messages, mut request: Value) -> Value {
    let state = format!("{STATE_PREFIX}{}", uuid::Uuid::new_v4().simple());
    let asked = request
        .get_mut("id")
        .map(Value::take)
        .unwrap_or(Value::Null);
    let mut input = json!({ "method": request.get_mut("method").map(Value::take) });
    if let Some(params) = request.get_mut("params") {
        input["params"] = params.take();
    }
    let response = json!({
        "jsonrpc": "2.0",
        "id": relay.id.clone(),
        "result": {
            "resultType": "input_required",
            "inputRequests": { INPUT_KEY: input },
            "requestState": state,
        },
    });
    let ttl = relay.upstream.spec.timeout;
    HELD.insert(
        state.clone(),
        Held {
            relay,
            messages,
            asked,
        },
    );
    // Unanswered: dropping the held stream cancels the call upstream.
    tokio::spawn(async move {
        tokio::time::sleep(ttl.max(Duration::from_secs(1))).await;
        if let Some((_, held)) = HELD.remove(&state) {
            tracing::info!(upstream = %held.relay.upstream.name, "input asked of a client was never given; call cancelled");
        }
    });
    response
}

/// The client's retry of a held call (`id` is the retry's, routed to
/// `upstream` for `subject`): answers the upstream with the client's input
/// and relays the rest of the call.
pub async fn resume(
    id: &Value,
    params: &Value,
    upstream: &str,
    subject: Option<&str>,
) -> Result<mpsc::Receiver<bytes::Bytes>, RpcError> {
    let state = params
        .get("requestState")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Another caller's, or another upstream's, is as good as unknown.
    let held = HELD.remove_if(state, |_, held| {
        &*held.relay.upstream.name == upstream && held.relay.subject.as_deref() == subject
    });
    let Some((_, held)) = held else {
        return Err(RpcError::new(
            jsonrpc::INVALID_PARAMS,
            "requestState is unknown or expired (it may have been issued by another \
             gateway replica): call again without it",
        ));
    };
    let Held {
        mut relay,
        messages,
        asked,
    } = held;
    let given = params
        .get("inputResponses")
        .and_then(|responses| responses.get(INPUT_KEY));
    let answer = match given {
        Some(response) => json!({ "result": response }),
        None => json!({ "error": { "code": jsonrpc::INVALID_PARAMS,
                                   "message": "the client gave no answer" } }),
    };
    relay.id = id.clone();
    relay
        .upstream
        .answer_server_request(Some(relay.answer_slot()), asked, answer)
        .await;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(relay.run(Some(messages), None, tx));
    Ok(rx)
}
