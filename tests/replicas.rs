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
