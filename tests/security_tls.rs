//! Serving TLS: a certificate from a private CA, trusted only with it, no
//! plain HTTP on its port, and a rotated certificate served without a
//! restart.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use support::security::WAIT;
use support::*;

/// `switchboard tools <url>` trusting `ca_file`: its output, or its error.
fn tools_over_tls(url: &str, ca_file: Option<&std::path::Path>) -> Result<String, String> {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.arg("tools").arg(url);
    if let Some(ca) = ca_file {
        command.arg("--ca-file").arg(ca);
    }
    let output = command.output().unwrap();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_served_with_a_private_ca_and_a_rotated_certificate_without_restart() {
    let (first, second, serving) = (TempDir::new(), TempDir::new(), TempDir::new());
    let (_, cert1, key1) = private_ca(&first.path, &["localhost"]);
    let (_, cert2, key2) = private_ca(&second.path, &["localhost"]);
    let (cert, key) = (serving.path.join("tls.crt"), serving.path.join("tls.key"));
    std::fs::copy(&cert1, &cert).unwrap();
    std::fs::copy(&key1, &key).unwrap();
    let (_a, a_url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: a\n    url: \"{a_url}\"\ntls:\n  certFile: \"{}\"\n  keyFile: \"{}\"\n",
        cert.display(),
        key.display()
    ));
    assert!(gateway.base.starts_with("https://"), "{}", gateway.base);
    let url = gateway.mcp().replace("127.0.0.1", "localhost");
    let (ca1, ca2) = (first.path.join("ca.pem"), second.path.join("ca.pem"));

    // Trusting the CA connects; trusting only the system roots does not.
    let deadline = Instant::now() + WAIT;
    loop {
        match tools_over_tls(&url, Some(&ca1)) {
            Ok(listed) if listed.contains("a_session_info") => break,
            other => assert!(Instant::now() < deadline, "{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let untrusted = tools_over_tls(&url, None).unwrap_err();
    assert!(untrusted.contains("--ca-file"), "{untrusted}");
    // Plain HTTP on the TLS port is not served.
    let plain = tokio::time::timeout(
        Duration::from_secs(10),
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Full<Bytes>>()
            .get(
                gateway
                    .mcp()
                    .replace("https://", "http://")
                    .parse()
                    .unwrap(),
            ),
    )
    .await
    .expect("an answer in time");
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    // cert-manager rotates the Secret: new files, same paths, no restart.
    std::fs::copy(&key2, &key).unwrap();
    std::fs::copy(&cert2, &cert).unwrap();
    let deadline = Instant::now() + WAIT;
    while tools_over_tls(&url, Some(&ca2)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the rotated certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        tools_over_tls(&url, Some(&ca1)).is_err(),
        "the old certificate is gone"
    );
    // Panics unless the reload was logged.
    gateway.proc.wait_for("TLS certificate reloaded", WAIT);
}
