//! The command line as the README and users run it: the embedded default
//! config, `--listen`, and `check-config` errors.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::*;

/// The README's first command: `switchboard serve` on the embedded default,
/// whose two stdio upstreams come from the npm registry through `npx`.
#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_default_serves_two_upstreams() {
    let gateway = Gateway::start_with_args(&["--listen", "127.0.0.1:0"]);
    // npx may have to download both packages on a fresh machine.
    gateway
        .wait_for_tools_within(
            &["everything_echo", "memory_read_graph"],
            Duration::from_secs(240),
        )
        .await;
    let output = ts_client(
        &gateway.mcp(),
        "legacy",
        &json!({ "calls": [{ "name": "everything_echo", "arguments": { "message": "readme" } }] }),
    );
    assert_eq!(call_text(&output, 0), "Echo: readme");
    run_readme_commands(&gateway);
}

/// The README's `sh` blocks.
fn readme_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    readme
        .split("```sh\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap().to_string())
        .collect()
}

/// Runs, as written, every README command that needs neither a cluster
/// nor Claude Code, against the embedded default (`127.0.0.1:8080` becomes
/// its address; `switchboard` is this build). The others: `kubectl
/// kustomize manifests/` runs in `.ci/run`, `cargo bench` too (briefly).
fn run_readme_commands(gateway: &Gateway) {
    let blocks = readme_blocks();
    let block_with = |needle: &str| {
        blocks
            .iter()
            .find(|b| b.contains(needle))
            .unwrap_or_else(|| panic!("no README block with {needle:?}"))
            .clone()
    };
    let workdir = TempDir::new();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_switchboard"),
        workdir.path.join("switchboard"),
    )
    .unwrap();
    std::fs::write(
        workdir.path.join("jwt.secret"),
        "a-secret-of-at-least-32-bytes-....",
    )
    .unwrap();
    let address = gateway.base.trim_start_matches("http://").to_string();
    let run = |script: &str| {
        let script = script.replace("127.0.0.1:8080", &address);
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(&workdir.path)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    workdir.path.display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "README command failed:\n{script}\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };

    let modern = run(&block_with("Mcp-Name: everything_echo"));
    assert!(modern.contains("Echo: hi"), "{modern}");
    let legacy = run(&block_with("SID=$(curl"));
    assert!(legacy.contains("\"everything_echo\""), "{legacy}");
    let cli = block_with("switchboard tools http");
    let tools = cli
        .lines()
        .find(|l| l.starts_with("switchboard tools"))
        .unwrap();
    assert!(
        run(tools)
            .lines()
            .any(|l| l.starts_with("everything_echo "))
    );
    let call = cli
        .lines()
        .find(|l| l.starts_with("switchboard call"))
        .unwrap();
    assert_eq!(run(call).trim(), "Echo: hi");
    let watch = run(&block_with("8080/status"));
    assert!(watch.contains("\"upstreams\"") && watch.contains("switchboard_requests_total"));
    let token = run(&block_with("switchboard token"));
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");

    // Claude Code itself (npm @anthropic-ai/claude-code): the README's
    // `claude mcp add`, then `claude mcp list`, whose health check connects.
    let add = block_with("claude mcp add --transport http switchboard http://");
    let listed = claude_code(&workdir.path, &add.replace("127.0.0.1:8080", &address), &[]);
    assert!(
        listed.contains(&format!(
            "switchboard: http://{address}/mcp (HTTP) - ✔ Connected"
        )),
        "{listed}"
    );
}

/// Runs `script` (a README `claude mcp add`) with Claude Code from
/// tests/peers and a home of its own under `dir`, then `claude mcp list`;
/// returns what the list printed.
fn claude_code(dir: &std::path::Path, script: &str, env: &[(&str, &str)]) -> String {
    let home = dir.join("claude-home");
    std::fs::create_dir_all(&home).unwrap();
    let path = format!(
        "{}:{}",
        peers().join("node_modules/.bin").display(),
        std::env::var("PATH").unwrap()
    );
    // `claude mcp list` exits non-zero when a server fails its health
    // check, which the wrong-credential case expects; the add must succeed.
    let run = |script: &str, must_succeed: bool| {
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(dir)
            .env("HOME", &home)
            .env("PATH", &path)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success() || !must_succeed, "{script}: {text}");
        text
    };
    run(script, true);
    run("timeout 60 claude mcp list", false)
}

/// The README's `claude mcp add … --header "Authorization: Bearer …"`
/// against a gateway with auth: Claude Code connects with the credential,
/// and not with a wrong one.
#[tokio::test(flavor = "multi_thread")]
async fn claude_code_connects_with_the_readmes_credential_header() {
    let key = "claude-code-key-0123456789";
    let gateway = Gateway::start(&format!(
        "auth:\n  apiKeys:\n    - subject: claude\n      key: \"{key}\"\n\
         authorization:\n  - subjects: [claude]\n    allow: [\"*\"]\n"
    ));
    let add = readme_blocks()
        .into_iter()
        .find(|b| b.contains("--header \"Authorization: Bearer $SWITCHBOARD_TOKEN\""))
        .expect("the README's claude mcp add with a credential");
    let add = add.replace("https://<gateway-address>", &gateway.base);
    let dir = TempDir::new();
    let listed = claude_code(&dir.path, &add, &[("SWITCHBOARD_TOKEN", key)]);
    assert!(listed.contains("- ✔ Connected"), "{listed}");

    let wrong = TempDir::new();
    let listed = claude_code(
        &wrong.path,
        &add,
        &[("SWITCHBOARD_TOKEN", "not-the-key-0123456789")],
    );
    assert!(!listed.contains("✔ Connected"), "{listed}");
    assert!(listed.contains("switchboard"), "{listed}");
}

#[test]
fn check_config_accepts_a_good_file_and_names_what_is_wrong_in_a_bad_one() {
    let good = TempFile::new(
        "yaml",
        "upstreams:\n  - name: a\n    url: http://127.0.0.1:1/mcp\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["check-config"])
        .arg(&good.path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok (1 upstream)"));

    let bad = TempFile::new(
        "yaml",
        "upstreams:\n  - name: a\n    url: http://127.0.0.1:1/mcp\n  - name: b\n    url: http://127.0.0.1:2/mcp\n    prefix: a_\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["check-config"])
        .arg(&bad.path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = bad.path.display().to_string();
    for needle in [
        file.as_str(),
        "line 6",
        "upstreams[1].prefix",
        "duplicate prefix",
    ] {
        assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
    }

    // `serve` refuses the same file before listening.
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(&bad.path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("duplicate prefix"));
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_overrides_the_file() {
    // The file names a port the override must win over.
    let config = TempFile::new("yaml", "listen: \"127.0.0.1:9\"\nupstreams: []\n");
    let path = config.path.display().to_string();
    let gateway = Gateway::start_with_args(&["--config", &path, "--listen", "127.0.0.1:0"]);
    assert!(!gateway.base.ends_with(":9"), "{}", gateway.base);
    let health = request("GET", &format!("{}/healthz", gateway.base), &[], "").await;
    assert_eq!(health.status, 200);
}

/// SIGTERM: the call in flight finishes, open streams end, new connections
/// are refused, and the process exits well before the drain limit.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_calls_in_flight_finish() {
    let (_up, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let mut gateway = Gateway::start(&format!("upstreams:\n  - name: up\n    url: \"{url}\"\n"));
    gateway.wait_for_tools(&["up_sleep"]).await;
    let session = initialize(&gateway.mcp()).await;
    let mut stream = EventStream::open("GET", &gateway.mcp(), &stream_headers(&session), "").await;
    assert_eq!(stream.status, 200);

    let call = tokio::spawn({
        let mcp = gateway.mcp();
        let session = session.clone();
        async move {
            let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up_sleep","arguments":{"ms":1500}}}"#;
            post(&mcp, &legacy_headers(Some(&session)), body).await
        }
    });
    // Signal once the call is running upstream.
    wait_until_sleeping(&gateway, "up", 1).await;
    let signalled = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &gateway.proc.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let answer = call.await.unwrap().json();
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("slept 1500 ms")),
        "{answer}"
    );
    assert!(
        stream.ends_within(Duration::from_secs(5)).await,
        "the GET stream ended"
    );
    let exited = loop {
        if let Some(status) = gateway.proc.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(15),
            "still running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exited.success(), "{exited:?}");
    let refused = tokio::net::TcpStream::connect(gateway.base.trim_start_matches("http://")).await;
    assert!(refused.is_err(), "no longer accepting");
}

/// `switchboard <args>` as a user runs it: (success, stdout, stderr).
fn switchboard(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `tools` and `call` against the gateway (prefixed names, either era of
/// upstream behind it) and against a third-party server directly.
#[tokio::test(flavor = "multi_thread")]
async fn tools_and_call_speak_to_any_mcp_endpoint() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let gateway = Gateway::start(&format!("upstreams:\n  - name: up\n    url: \"{url}\"\n"));
    gateway.wait_for_tools(&["up_echo"]).await;
    let mcp = gateway.mcp();

    let (ok, out, err) = switchboard(&["tools", &mcp]);
    assert!(ok, "{err}");
    let echo = out
        .lines()
        .find(|l| l.starts_with("up_echo "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        echo.len() > "up_echo ".len() + 3,
        "a description follows: {echo:?}"
    );
    let (ok, out, err) = switchboard(&["tools", &mcp, "--json"]);
    assert!(ok, "{err}");
    let tools: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        tools
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "up_echo")
    );

    let (ok, out, err) = switchboard(&[
        "call",
        &mcp,
        "up_echo",
        r#"{"text": "through the gateway"}"#,
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "through the gateway");
    let (ok, out, _) = switchboard(&["call", &mcp, "up_echo", r#"{"text": "x"}"#, "--json"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["isError"],
        false
    );

    // A third-party server, straight (2025-era, its own tool names).
    let (_everything, everything_url) = everything();
    let (ok, out, err) = switchboard(&["tools", &everything_url]);
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.starts_with("echo ")), "{out}");
    let (ok, out, err) = switchboard(&["call", &everything_url, "echo", r#"{"message": "hello"}"#]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Echo: hello");

    // Mistakes get advice.
    let wrong_path = mcp.replace("/mcp", "/api");
    let (ok, _, err) = switchboard(&["tools", &wrong_path]);
    assert!(!ok);
    assert!(err.contains("this server answers at /mcp"), "{err}");
    let (ok, _, err) = switchboard(&["call", &mcp, "up_nope", "{}"]);
    assert!(!ok);
    assert!(
        err.contains("has no tool \"up_nope\"") && err.contains("switchboard tools"),
        "{err}"
    );
    let (ok, _, err) = switchboard(&["call", &mcp, "up_echo", "not json"]);
    assert!(!ok);
    assert!(err.contains("must be a JSON object"), "{err}");
    let (ok, _, err) = switchboard(&["tools", "http://127.0.0.1:1/mcp"]);
    assert!(!ok);
    assert!(err.contains("is the server running"), "{err}");
}

/// A private CA: refused with advice, then trusted with --ca-file.
#[tokio::test(flavor = "multi_thread")]
async fn tls_failures_say_how_to_pass_a_ca() {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_, cert, key) = private_ca(&dir, &["localhost"]);
    let (_upstream, port) = tls_upstream(&cert, &key);
    let url = format!("https://localhost:{port}/mcp");
    let (ok, _, err) = switchboard(&["tools", &url]);
    assert!(!ok);
    assert!(err.contains("--ca-file"), "{err}");
    let ca = dir.join("ca.pem");
    let (ok, out, err) = switchboard(&["tools", &url, "--ca-file", ca.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("echo"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `switchboard stdio`: the Python SDK's stdio client launches it and, through
/// it, lists and calls the tools of a remote gateway and of a third-party
/// server.
#[tokio::test(flavor = "multi_thread")]
async fn the_stdio_bridge_serves_a_stdio_client() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let gateway = Gateway::start(&format!("upstreams:\n  - name: up\n    url: \"{url}\"\n"));
    gateway.wait_for_tools(&["up_echo"]).await;
    let (_everything, everything_url) = everything();
    for (remote, tool, arguments, expected) in [
        (
            gateway.mcp(),
            "up_echo",
            json!({"text": "over stdio"}),
            "over stdio",
        ),
        (
            everything_url,
            "echo",
            json!({"message": "bridged"}),
            "Echo: bridged",
        ),
    ] {
        let plan = json!({
            "command": env!("CARGO_BIN_EXE_switchboard"),
            "args": ["stdio", remote],
            "calls": [{"name": tool, "arguments": arguments}],
        });
        let output = py_client("stdio", &plan);
        assert!(
            output["tools"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == tool),
            "{output}"
        );
        assert_eq!(call_text(&output, 0), expected);
    }
}

/// `--log-format json`: one JSON object per log line, RUST_LOG-style filters.
#[tokio::test(flavor = "multi_thread")]
async fn logs_can_be_json() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let config = TempFile::new(
        "yaml",
        &format!("listen: \"127.0.0.1:0\"\nupstreams:\n  - name: up\n    url: \"{url}\"\n"),
    );
    let gateway = Gateway::start_with_args(&[
        "--config",
        config.path.to_str().unwrap(),
        "--log-format",
        "json",
    ]);
    let line = gateway
        .proc
        .wait_for("upstream ready", Duration::from_secs(30));
    let entry: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
    assert_eq!(entry["level"], "INFO");
    assert_eq!(entry["fields"]["message"], "upstream ready");
    assert_eq!(entry["fields"]["upstream"], "up");
}
