//! Memory and state return to baseline: after client sessions are opened
//! and deleted, left to expire, streams opened and dropped, calls dropped
//! mid-way and upstream sessions ended by the upstream, every live count
//! of what clients hold in `/status` (and `/metrics`) is back to zero, and
//! what the gateway holds for itself is as it was while they were here, in
//! both client eras and over HTTP+SSE. While sessions and streams are open
//! the counts are checked to be what they hold, so a count that stayed at
//! zero would fail too.
//!
//! Upstreams: the rmcp upstream as a 2025-era server with sessions and
//! a GET stream (`--legacy-only`) and as a stateless one (`--stateless`,
//! served in 2026-07-28), and `@modelcontextprotocol/server-everything`
//! (2025, sends `roots/list` on a session's GET stream).

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// How long a count may take to come back (teardown runs in the
/// background; a follower notices its client left within 5 s).
const SETTLE: Duration = Duration::from_secs(20);

/// For what goes when the client goes: well under the 15 s keep-alive
/// that would otherwise be the first to notice a stream's client left.
const AT_ONCE: Duration = Duration::from_secs(5);

/// The upstreams and the gateway in front of them.
struct Fixture {
    legacy_url: String,
    _legacy: Proc,
    _modern: Proc,
    _everything: Proc,
    gateway: Gateway,
}

impl Fixture {
    /// Starts everything with client sessions expiring after `idle`; the
    /// upstream timeout is long, so a count that comes back did not wait
    /// for it.
    async fn start(idle: &str) -> Fixture {
        let (legacy, legacy_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
        let (modern, modern_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
        let (everything, everything_url) = everything();
        let gateway = Gateway::start(&format!(
            "sessionIdleTimeout: {idle}\nupstreams:\n\
             \x20 - name: legacy\n    url: \"{legacy_url}\"\n    timeout: 90s\n\
             \x20 - name: modern\n    url: \"{modern_url}\"\n    timeout: 90s\n\
             \x20 - name: everything\n    url: \"{everything_url}\"\n    timeout: 90s\n"
        ));
        gateway
            .wait_for_tools(&["legacy_echo", "modern_echo", "everything_echo"])
            .await;
        let fixture = Fixture {
            legacy_url,
            _legacy: legacy,
            _modern: modern,
            _everything: everything,
            gateway,
        };
        fixture
            .wait_for_baseline("the gateway connected", &Fixture::gateway_baseline())
            .await;
        fixture
    }

    /// What the gateway holds for itself once connected: its own session
    /// and change stream with each 2025 upstream, a `subscriptions/listen`
    /// stream to the 2026 one.
    fn gateway_baseline() -> Value {
        json!([2, 3, 0])
    }

    /// The session and stream counts of `/status`.
    async fn counts(&self) -> Value {
        let response = request("GET", &format!("{}/status", self.gateway.base), &[], "").await;
        assert_eq!(response.status, 200);
        let status = response.json();
        json!({ "sessions": status["sessions"], "streams": status["streams"], "live": status["live"] })
    }

    /// Polls `/status` until `check` holds; panics with the last counts
    /// when it does not within [`SETTLE`].
    async fn wait_until(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.wait_until_within(what, SETTLE, check).await
    }

    async fn wait_until_within(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let counts = self.counts().await;
            if check(&counts) {
                return counts;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; the counts are {counts:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until clients hold nothing and the gateway's own share is
    /// `gateway` (see [`gateway_side`]).
    async fn wait_for_baseline(&self, what: &str, gateway: &Value) {
        let counts = self
            .wait_until(
                &format!("{what}: nothing held for clients, {gateway} by the gateway"),
                |c| client_side(c).iter().all(|n| *n == 0) && gateway_side(c) == *gateway,
            )
            .await;
        // `/metrics` says the same.
        let metrics = self.metrics().await;
        for (series, value) in [
            (
                "switchboard_client_sessions{transport=\"streamable-http\"}",
                0.0,
            ),
            ("switchboard_client_sessions{transport=\"sse\"}", 0.0),
            ("switchboard_upstream_sessions{holder=\"client\"}", 0.0),
            ("switchboard_client_streams{kind=\"get\"}", 0.0),
            ("switchboard_client_streams{kind=\"listen\"}", 0.0),
            ("switchboard_client_streams{kind=\"sse\"}", 0.0),
            ("switchboard_upstream_streams{kind=\"client\"}", 0.0),
            ("switchboard_awaiting_client_answers", 0.0),
            ("switchboard_calls_in_flight", 0.0),
        ] {
            assert_eq!(metrics.get(series), Some(&value), "{series}: {counts}");
        }
    }

    /// `/metrics` as series → value.
    async fn metrics(&self) -> HashMap<String, f64> {
        let response = request("GET", &format!("{}/metrics", self.gateway.base), &[], "").await;
        assert_eq!(response.status, 200);
        String::from_utf8_lossy(&response.body)
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect()
    }

    fn mcp(&self) -> String {
        self.gateway.mcp()
    }
}

/// What clients hold: all zero when none is here.
const CLIENT_SIDE: [&str; 11] = [
    "/sessions",
    "/streams",
    "/live/clientSessions/streamableHttp",
    "/live/clientSessions/sse",
    "/live/clientStreams/get",
    "/live/clientStreams/listen",
    "/live/clientStreams/sse",
    "/live/upstreamSessions/client",
    "/live/upstreamStreams/client",
    "/live/awaitingClientAnswers",
    "/live/callsInFlight",
];

fn client_side(counts: &Value) -> Vec<u64> {
    CLIENT_SIDE.iter().map(|p| count(counts, p)).collect()
}

/// What the gateway holds for itself: its sessions and change streams
/// with each upstream (and HTTP+SSE connections, none here). It may grow
/// with the first client of a kind the gateway keeps a session for (per
/// set of declared capabilities), never with each client: once every kind
/// has been seen, it stays as it is while clients come and go.
fn gateway_side(counts: &Value) -> Value {
    json!([
        count(counts, "/live/upstreamSessions/gateway"),
        count(counts, "/live/upstreamStreams/watch"),
        count(counts, "/live/upstreamStreams/sse"),
    ])
}

fn count(counts: &Value, pointer: &str) -> u64 {
    counts
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no {pointer} in {counts}"))
}

/// Opens a 2025 session declaring `capabilities`.
async fn open_session(url: &str, capabilities: Value) -> String {
    let body = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": capabilities,
        "clientInfo": { "name": "churn", "version": "0" } } });
    let response = post(url, &legacy_headers(None), &body.to_string()).await;
    assert_eq!(response.status, 200, "initialize: {:?}", response.body);
    let session = response.header("mcp-session-id").expect("a session id");
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let accepted = post(url, &legacy_headers(Some(&session)), &note.to_string()).await;
    assert_eq!(accepted.status, 202);
    session
}

/// The text of a tool's answer to a 2025 session's call.
async fn legacy_call(url: &str, session: &str, tool: &str, arguments: Value) -> String {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": { "name": tool, "arguments": arguments } });
    let response = post(url, &legacy_headers(Some(session)), &body.to_string()).await;
    assert_eq!(response.status, 200, "{tool}: {:?}", response.body);
    text_of(&response.json(), tool)
}

/// The text of a tool's answer to a stateless 2026-07-28 call.
async fn modern_call(url: &str, tool: &str, arguments: Value) -> String {
    let response = post(
        url,
        &modern_headers("tools/call", Some(tool)),
        &modern_body(
            1,
            "tools/call",
            json!({ "name": tool, "arguments": arguments }),
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{tool}: {:?}", response.body);
    text_of(&response.json(), tool)
}

fn modern_body(id: u64, method: &str, mut params: Value) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

fn text_of(message: &Value, tool: &str) -> String {
    message
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{tool}: no text in {message}"))
        .to_string()
}

/// One call to each upstream, answered.
async fn call_everyone(url: &str, session: &str) {
    assert_eq!(
        legacy_call(url, session, "legacy_echo", json!({ "text": "a" })).await,
        "a"
    );
    assert_eq!(
        legacy_call(url, session, "modern_echo", json!({ "text": "b" })).await,
        "b"
    );
    assert_eq!(
        legacy_call(url, session, "everything_echo", json!({ "message": "c" })).await,
        "Echo: c"
    );
}

/// The next request on a stream with `method`, skipping other messages.
async fn next_request(stream: &mut EventStream, method: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = stream
            .next(left)
            .await
            .unwrap_or_else(|| panic!("no {method} request on the stream"));
        if message["method"] == method && message.get("id").is_some() {
            return message;
        }
    }
}

async fn delete(url: &str, session: &str) -> u16 {
    request(
        "DELETE",
        url,
        &[
            ("mcp-session-id".into(), session.into()),
            ("mcp-protocol-version".into(), "2025-11-25".into()),
        ],
        "",
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_sessions_leave_nothing_behind() {
    let fixture = Fixture::start("6s").await;
    let url = fixture.mcp();

    // Six sessions: the first three declare roots (server-everything then
    // asks them for theirs) and elicitation, the first five hold a GET
    // stream; each calls every upstream.
    let mut sessions = Vec::new();
    let mut streams = Vec::new();
    for i in 0..6 {
        let capabilities = if i < 3 {
            json!({ "roots": {}, "elicitation": {} })
        } else {
            json!({})
        };
        let session = open_session(&url, capabilities).await;
        if i < 5 {
            let stream = EventStream::open("GET", &url, &stream_headers(&session), "").await;
            assert_eq!(stream.status, 200);
            streams.push(Some(stream));
        }
        call_everyone(&url, &session).await;
        sessions.push(session);
    }

    // server-everything's roots/list reaches each client that declared
    // roots, on its GET stream. The gateway holds nothing for it: the id
    // the client answers names the upstream session (relay::standalone).
    let mut asked = Vec::new();
    for stream in streams.iter_mut().take(3) {
        asked.push(next_request(stream.as_mut().unwrap(), "roots/list").await);
    }
    assert_eq!(
        count(&fixture.counts().await, "/live/awaitingClientAnswers"),
        0
    );
    let answer = json!({ "jsonrpc": "2.0", "id": asked[0]["id"], "result": { "roots": [] } });
    let accepted = post(
        &url,
        &legacy_headers(Some(&sessions[0])),
        &answer.to_string(),
    )
    .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);

    // The gateway's own asking does wait: a 2026-07-28 upstream's
    // InputRequiredResult becomes an elicitation/create on session 2's
    // call, left unanswered (until the session expires, below).
    let call = json!({ "jsonrpc": "2.0", "id": 11, "method": "tools/call",
                       "params": { "name": "modern_test_elicitation",
                                   "arguments": { "message": "Who are you?" } } });
    let mut asking = EventStream::open(
        "POST",
        &url,
        &legacy_headers(Some(&sessions[2])),
        &call.to_string(),
    )
    .await;
    assert_eq!(asking.status, 200);
    next_request(&mut asking, "elicitation/create").await;
    fixture
        .wait_until("the gateway's question awaits its answer", |c| {
            count(c, "/live/awaitingClientAnswers") == 1
        })
        .await;

    // The upstream ends session 4's upstream session on its own: the next
    // call opens another one, transparently.
    let before = session_info(&url, &sessions[4], "legacy_session_info", 7).await;
    let upstream_session = before["sessionId"].as_str().expect("an upstream session");
    let ended = request(
        "DELETE",
        &fixture.legacy_url,
        &[
            ("mcp-session-id".into(), upstream_session.into()),
            ("mcp-protocol-version".into(), "2025-11-25".into()),
        ],
        "",
    )
    .await;
    assert!(ended.status < 300, "DELETE upstream: {}", ended.status);
    let after = session_info(&url, &sessions[4], "legacy_session_info", 8).await;
    assert_ne!(after["sessionId"], before["sessionId"]);

    // A call the client drops half-way stops counting as soon as it goes,
    // long before the upstream would have answered.
    let sleeping = {
        let url = url.clone();
        let session = sessions[5].clone();
        tokio::spawn(async move {
            legacy_call(&url, &session, "legacy_sleep", json!({ "ms": 60000 })).await
        })
    };
    // (Session 2's asking call is in flight too.)
    fixture
        .wait_until("the sleeping call is in flight", |c| {
            count(c, "/live/callsInFlight") == 2
        })
        .await;
    sleeping.abort();
    fixture
        .wait_until("the dropped call is no longer in flight", |c| {
            count(c, "/live/callsInFlight") == 1
        })
        .await;

    // Everything is held while the clients are here (each session has used
    // its idle time for less than the timeout: touch them all first).
    for session in &sessions {
        let ping = json!({ "jsonrpc": "2.0", "id": 9, "method": "ping" });
        let pong = post(&url, &legacy_headers(Some(session)), &ping.to_string()).await;
        assert_eq!(pong.status, 200, "{:?}", pong.body);
    }
    let open = fixture.counts().await;
    eprintln!("open: {open}");
    assert_eq!(open["sessions"], 6, "{open}");
    assert_eq!(open["streams"], 5, "{open}");
    assert_eq!(count(&open, "/live/clientSessions/streamableHttp"), 6);
    assert_eq!(count(&open, "/live/clientStreams/get"), 5);
    // One each with the two 2025 upstreams; the 2026 one has none.
    assert_eq!(count(&open, "/live/upstreamSessions/client"), 12);
    // Held for every client with a stream of its own.
    assert!(count(&open, "/live/upstreamStreams/client") >= 8, "{open}");
    assert_eq!(count(&open, "/live/awaitingClientAnswers"), 1);
    let metrics = fixture.metrics().await;
    assert_eq!(
        metrics.get("switchboard_client_sessions{transport=\"streamable-http\"}"),
        Some(&6.0)
    );
    assert_eq!(
        metrics.get("switchboard_client_streams{kind=\"get\"}"),
        Some(&5.0)
    );
    assert_eq!(
        metrics.get("switchboard_upstream_sessions{holder=\"client\"}"),
        Some(&12.0)
    );

    // Session 3 drops its stream, then is deleted; session 1 is deleted
    // with its stream open and roots/list unanswered; session 0 is deleted;
    // sessions 2 (a request unanswered), 4 and 5 are left to expire.
    streams[3] = None;
    fixture
        .wait_until_within("a dropped GET stream is gone at once", AT_ONCE, |c| {
            count(c, "/live/clientStreams/get") == 4 && c["streams"] == 4
        })
        .await;
    for i in [3, 1, 0] {
        assert_eq!(delete(&url, &sessions[i]).await, 200, "DELETE session {i}");
    }
    for i in [0, 1] {
        let stream = streams[i].as_mut().unwrap();
        assert!(
            stream.ends_within(SETTLE).await,
            "session {i}'s GET stream ends with it"
        );
    }
    fixture
        .wait_for_baseline("sessions deleted and expired", &gateway_side(&open))
        .await;
    for i in [2, 4] {
        let stream = streams[i].as_mut().unwrap();
        assert!(
            stream.ends_within(Duration::from_secs(1)).await,
            "expired session {i}'s GET stream ends with it"
        );
    }
    for (i, session) in sessions.iter().enumerate() {
        assert_eq!(delete(&url, session).await, 404, "session {i} is gone");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn modern_calls_and_listen_streams_leave_nothing_behind() {
    let fixture = Fixture::start("30s").await;
    let url = fixture.mcp();

    let mut listening = Vec::new();
    for id in 0..5 {
        let body = modern_body(
            id,
            "subscriptions/listen",
            json!({ "notifications": { "toolsListChanged": true } }),
        );
        let mut stream = EventStream::open(
            "POST",
            &url,
            &modern_headers("subscriptions/listen", None),
            &body,
        )
        .await;
        assert_eq!(stream.status, 200);
        let ack = stream.next(Duration::from_secs(10)).await.expect("an ack");
        assert_eq!(
            ack["method"], "notifications/subscriptions/acknowledged",
            "{ack}"
        );
        listening.push(stream);
    }

    // 2026-07-28 calls to every upstream era, sixteen clients at once.
    let callers: Vec<_> = (0..16)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                for round in 0..4 {
                    let text = format!("{i}-{round}");
                    assert_eq!(
                        modern_call(&url, "legacy_echo", json!({ "text": text })).await,
                        text
                    );
                    assert_eq!(
                        modern_call(&url, "modern_echo", json!({ "text": text })).await,
                        text
                    );
                    assert_eq!(
                        modern_call(&url, "everything_echo", json!({ "message": text })).await,
                        format!("Echo: {text}")
                    );
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }

    // Calls the clients drop half-way, to a 2025 and a 2026 upstream.
    let sleeping: Vec<_> = ["legacy_sleep", "modern_sleep"]
        .into_iter()
        .map(|tool| {
            let url = url.clone();
            tokio::spawn(async move { modern_call(&url, tool, json!({ "ms": 60000 })).await })
        })
        .collect();
    let open = fixture
        .wait_until("two calls in flight", |c| {
            count(c, "/live/callsInFlight") == 2
        })
        .await;
    eprintln!("open: {open}");
    assert_eq!(count(&open, "/live/clientStreams/listen"), 5);
    assert_eq!(open["streams"], 5);
    assert_eq!(
        fixture
            .metrics()
            .await
            .get("switchboard_client_streams{kind=\"listen\"}"),
        Some(&5.0)
    );
    // Stateless clients hold no session, here or upstream.
    assert_eq!(count(&open, "/live/clientSessions/streamableHttp"), 0);
    assert_eq!(count(&open, "/live/upstreamSessions/client"), 0);
    for call in sleeping {
        call.abort();
    }
    fixture
        .wait_until("the dropped calls are no longer in flight", |c| {
            count(c, "/live/callsInFlight") == 0
        })
        .await;

    listening.truncate(2);
    fixture
        .wait_until_within(
            "three dropped listen streams are gone at once",
            AT_ONCE,
            |c| count(c, "/live/clientStreams/listen") == 2 && c["streams"] == 2,
        )
        .await;
    listening.clear();
    fixture
        .wait_for_baseline("listen streams dropped", &gateway_side(&open))
        .await;
}

/// An HTTP+SSE (2024-11-05) client: its stream and where it posts.
struct SseClient {
    stream: EventStream,
    post_url: String,
}

impl SseClient {
    async fn open(base: &str) -> SseClient {
        let mut stream = EventStream::open(
            "GET",
            &format!("{base}/sse"),
            &[("accept".into(), "text/event-stream".into())],
            "",
        )
        .await;
        assert_eq!(stream.status, 200);
        let (event, endpoint) = stream
            .next_event(Duration::from_secs(10))
            .await
            .expect("the endpoint event");
        assert_eq!(event.as_deref(), Some("endpoint"));
        SseClient {
            stream,
            post_url: format!("{base}{endpoint}"),
        }
    }

    /// Posts a message; its answer (if any) comes on the stream.
    async fn send(&self, message: Value) {
        let response = post(
            &self.post_url,
            &[("content-type".into(), "application/json".into())],
            &message.to_string(),
        )
        .await;
        assert_eq!(response.status, 202, "{message}: {:?}", response.body);
    }

    /// The response to `id` on the stream.
    async fn response(&mut self, id: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self
                .stream
                .next(left)
                .await
                .unwrap_or_else(|| panic!("no response to {id} on the stream"));
            if message["id"] == id && message.get("method").is_none() {
                return message;
            }
        }
    }

    async fn initialize(&mut self) {
        self.send(
            json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": { "name": "churn-sse", "version": "0" } } }),
        )
        .await;
        let answer = self.response(0).await;
        assert!(answer["result"]["protocolVersion"].is_string(), "{answer}");
        self.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
    }

    async fn ping(&mut self, id: u64) {
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": "ping" }))
            .await;
        let pong = self.response(id).await;
        assert!(pong.get("result").is_some(), "{pong}");
    }

    async fn call(&mut self, id: u64, tool: &str, arguments: Value) -> String {
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": { "name": tool, "arguments": arguments } }))
            .await;
        text_of(&self.response(id).await, tool)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_clients_leave_nothing_behind() {
    let fixture = Fixture::start("6s").await;
    let base = fixture.gateway.base.clone();

    // Four sessions over HTTP+SSE, each calling every upstream, and one
    // stream that never initializes.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut client = SseClient::open(&base).await;
        client.initialize().await;
        assert_eq!(
            client.call(1, "legacy_echo", json!({ "text": "a" })).await,
            "a"
        );
        assert_eq!(
            client.call(2, "modern_echo", json!({ "text": "b" })).await,
            "b"
        );
        assert_eq!(
            client
                .call(3, "everything_echo", json!({ "message": "c" }))
                .await,
            "Echo: c"
        );
        clients.push(Some(client));
    }
    let bare = SseClient::open(&base).await;
    let open = fixture.counts().await;
    eprintln!("open: {open}");
    assert_eq!(count(&open, "/live/clientSessions/sse"), 4);
    assert_eq!(count(&open, "/live/clientSessions/streamableHttp"), 0);
    assert_eq!(count(&open, "/live/clientStreams/sse"), 5);
    assert_eq!(count(&open, "/live/upstreamSessions/client"), 8);
    assert!(count(&open, "/live/upstreamStreams/client") >= 8, "{open}");
    assert_eq!(
        fixture
            .metrics()
            .await
            .get("switchboard_client_sessions{transport=\"sse\"}"),
        Some(&4.0)
    );

    // Three clients go (one mid-call) and so does the bare stream; the
    // last one stays until its session expires, which ends its stream.
    clients[3].as_mut().unwrap().ping(5).await;
    drop(bare);
    clients[0] = None;
    clients[1] = None;
    let client = clients[2].as_mut().unwrap();
    client
        .send(json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/call",
                      "params": { "name": "modern_sleep", "arguments": { "ms": 60000 } } }))
        .await;
    fixture
        .wait_until("the call is in flight", |c| {
            count(c, "/live/callsInFlight") == 1
        })
        .await;
    clients[2] = None;
    fixture
        .wait_until_within("three streams and a bare one gone", AT_ONCE, |c| {
            count(c, "/live/clientStreams/sse") == 1
        })
        .await;
    fixture
        .wait_until("three clients' sessions and call gone", |c| {
            count(c, "/live/clientSessions/sse") == 1 && count(c, "/live/callsInFlight") == 0
        })
        .await;
    let last = clients[3].as_mut().unwrap();
    assert!(
        last.stream.ends_within(SETTLE).await,
        "the expired session's stream ends"
    );
    fixture
        .wait_for_baseline("HTTP+SSE clients gone and expired", &gateway_side(&open))
        .await;
}
