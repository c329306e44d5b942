//! Replicas without a shared store: with a session key configured, the
//! client session id is sealed, so any replica with the key serves the
//! session — and reaches the same upstream session — while one with
//! another key, or a tampered id, gets 404.

mod support;

use serde_json::Value;
use support::*;

const KEY: &str = "a-shared-replica-key-that-is-long-enough";

fn replica(url: &str, key: &str) -> Gateway {
    Gateway::start_with_env(
        &format!(
            "sessions:\n  key: \"${{SESSION_KEY}}\"\n  maxAge: 1h\nupstreams:\n  - name: aff\n    url: \"{url}\"\n"
        ),
        &[("SESSION_KEY", key)],
    )
}

async fn upstream_session(gateway: &Gateway, session: &str, id: u32) -> Result<String, u16> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"aff_session_info","arguments":{{}}}}}}"#
    );
    let response = post(&gateway.mcp(), &legacy_headers(Some(session)), &body).await;
    if response.status != 200 {
        return Err(response.status);
    }
    let message = response.json();
    let text = message
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{message}"));
    let info: Value = serde_json::from_str(text).unwrap();
    Ok(info["sessionId"]
        .as_str()
        .expect("an upstream session")
        .to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn any_replica_with_the_key_serves_the_session_and_its_upstream_session() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let a = replica(&url, KEY);
    let b = replica(&url, KEY);
    let other = replica(&url, "another-key-entirely-and-also-long-enough");
    for gateway in [&a, &b, &other] {
        gateway.wait_for_tools(&["aff_session_info"]).await;
    }

    let session = initialize(&a.mcp()).await;
    let on_a = upstream_session(&a, &session, 1).await.unwrap();
    let on_b = upstream_session(&b, &session, 2).await.unwrap();
    assert_eq!(on_a, on_b, "both replicas reach the same upstream session");
    assert_eq!(upstream_session(&a, &session, 3).await.unwrap(), on_a);

    // Another client gets another upstream session, on whichever replica.
    let second = initialize(&b.mcp()).await;
    let theirs = upstream_session(&a, &second, 1).await.unwrap();
    assert_ne!(theirs, on_a);

    assert_eq!(
        upstream_session(&other, &session, 1).await,
        Err(404),
        "a foreign key"
    );
    let mut tampered = session.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        upstream_session(&b, &tampered, 1).await,
        Err(404),
        "a tampered id"
    );
    // Still serving everyone else.
    assert_eq!(upstream_session(&b, &session, 4).await.unwrap(), on_a);
}

#[test]
fn a_short_session_key_is_refused_without_echoing_it() {
    let file = TempFile::new(
        "yaml",
        "sessions:\n  key: \"tooshort-secret\"\nupstreams: []\n",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg(&file.path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("sessions.key") && !stderr.contains("tooshort-secret"),
        "{stderr}"
    );
}

/// A request an upstream sends a client outside any call reaches it on its
/// GET stream at one replica, and the client's answer may reach another
/// (a plain Service spreads a client's connections): the id it answers
/// names the upstream session, which the sealed session carries to every
/// replica, so the answer lands where the request came from.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_relayed_at_one_replica_is_answered_at_another() {
    let (_server, url) = ts_sdk1_server();
    let replica = || {
        Gateway::start_with_env(
            &format!(
                "sessions:\n  key: \"${{SESSION_KEY}}\"\nupstreams:\n  - name: sdk1\n    url: \"{url}\"\n"
            ),
            &[("SESSION_KEY", KEY)],
        )
    };
    let (a, b) = (replica(), replica());
    for gateway in [&a, &b] {
        gateway.wait_for_tools(&["sdk1_sample_unrelated"]).await;
    }
    let initialize = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{}},"clientInfo":{"name":"raw-test","version":"0"}}}"#;
    let response = post(&a.mcp(), &legacy_headers(None), initialize).await;
    let session = response.header("mcp-session-id").expect("session id");
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(
        post(&a.mcp(), &legacy_headers(Some(&session)), initialized)
            .await
            .status,
        202
    );

    // The client's GET stream on replica A; the call on A too.
    let mut stream = EventStream::open("GET", &a.mcp(), &stream_headers(&session), "").await;
    assert_eq!(stream.status, 200);
    let call = tokio::spawn({
        let (mcp, session) = (a.mcp(), session.clone());
        async move {
            let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"sdk1_sample_unrelated","arguments":{"prompt":"hi"}}}"#;
            post(&mcp, &legacy_headers(Some(&session)), body).await
        }
    });
    let request = loop {
        let message = stream
            .next(std::time::Duration::from_secs(15))
            .await
            .expect("the upstream's request on the client's stream");
        if message["method"] == "sampling/createMessage" {
            break message;
        }
    };

    // The answer reaches replica B.
    let answer = serde_json::json!({
        "jsonrpc": "2.0", "id": request["id"],
        "result": { "role": "assistant", "model": "m", "content": { "type": "text", "text": "from b" } },
    });
    let answered = post(
        &b.mcp(),
        &legacy_headers(Some(&session)),
        &answer.to_string(),
    )
    .await;
    assert_eq!(answered.status, 202, "{:?}", answered.body);

    let done = call.await.unwrap();
    let text = String::from_utf8_lossy(&done.body).to_string();
    assert!(text.contains("sampled: from b"), "{text}");

    // An id naming no request of this session's is refused.
    let bogus = serde_json::json!({ "jsonrpc": "2.0", "id": "sb:nope:1", "result": {} });
    let refused = post(
        &b.mcp(),
        &legacy_headers(Some(&session)),
        &bogus.to_string(),
    )
    .await;
    assert_eq!(refused.status, 400);
}
