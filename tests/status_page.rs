//! The status page at `/`, rendered by headless Chromium (Debian's
//! `chromium`, installed by tests/setup): every upstream is shown with its
//! health, the failing one marked and its error visible, and the tools an
//! upstream contributes listed.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// Chromium's flags for a closed network (see the machine notes): no
/// background traffic, a fresh profile.
fn chromium(dir: &std::path::Path, extra: &[&str], url: &str) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--window-size=1280,720",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium is installed (bash tests/setup installs Debian's chromium)")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_every_upstream_and_marks_the_failing_one() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: good\n    url: \"{url}\"\n  - name: down\n    url: \"http://127.0.0.1:1/mcp\"\n"
    ));
    gateway.wait_for_tools(&["good_echo"]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !request("GET", &format!("{}/status", gateway.base), &[], "")
        .await
        .json()["upstreams"]
        .to_string()
        .contains("failing")
    {
        assert!(Instant::now() < deadline, "down never failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let page = format!("{}/", gateway.base);
    let dir = std::env::temp_dir().join(format!("switchboard-status-page-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = chromium(&dir, &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        dom.contains(r#"<tr class="ready" data-upstream="good">"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr class="failing" data-upstream="down">"#),
        "{dom}"
    );
    assert!(
        dom.contains("Connection refused"),
        "the failing one's error is shown: {dom}"
    );
    assert!(
        dom.contains("good_echo"),
        "the tools of an upstream are listed: {dom}"
    );
    assert!(dom.contains("2026-07-28"), "eras are shown");
    assert!(!dom.contains("loading…"), "the page rendered /status");

    // A screenshot for people (its path is printed; CI keeps nothing).
    let shot = dir.join("status-page.png");
    let output = chromium(&dir, &[&format!("--screenshot={}", shot.display())], &page);
    assert!(output.status.success());
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 1000)
            .unwrap_or(false)
    );
    eprintln!("status page screenshot: {}", shot.display());
}

/// With auth on, the page loads without a credential but shows nothing
/// until given one (here as `#token=`, which never leaves the browser).
#[tokio::test(flavor = "multi_thread")]
async fn with_auth_the_page_asks_for_a_credential_and_then_shows_status() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let key = "status-page-key-0123456789";
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: good\n    url: \"{url}\"\n\
         auth:\n  apiKeys:\n    - subject: alice\n      key: \"{key}\"\n\
         authorization:\n  - subjects: [alice]\n    allow: [\"*\"]\n"
    ));
    let status = format!("{}/status", gateway.base);
    let bearer = [("authorization".to_string(), format!("Bearer {key}"))];
    let deadline = Instant::now() + Duration::from_secs(20);
    while request("GET", &status, &bearer, "").await.json()["upstreams"][0]["health"] != "ready" {
        assert!(Instant::now() < deadline, "good never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(request("GET", &status, &[], "").await.status, 401);

    let dir = std::env::temp_dir().join(format!(
        "switchboard-status-page-auth-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let page = format!("{}/", gateway.base);
    let bare = chromium(&dir, &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&bare.stdout);
    assert!(dom.contains("needs a credential"), "{dom}");
    assert!(!dom.contains("data-upstream"), "{dom}");

    let with_token = chromium(&dir, &["--dump-dom"], &format!("{page}#token={key}"));
    let dom = String::from_utf8_lossy(&with_token.stdout);
    assert!(
        dom.contains(r#"<tr class="ready" data-upstream="good">"#),
        "{dom}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
