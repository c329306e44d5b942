//! Kubernetes service-account tokens as client credentials: reviewed by
//! the API server (TokenReview on the API double) for the gateway's
//! audience, cached, and authorized by their groups.

mod support;

use std::time::{Duration, Instant};

use support::kube_api::KubeApi;
use support::security::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_are_reviewed_by_the_api_server() {
    let api = KubeApi::start().await;
    let dir = TempDir::new();
    let kubeconfig = api.write_kubeconfig(&dir.path);
    let agent_token = "sa-token-agent-5e7c";
    api.set_token(
        agent_token,
        "system:serviceaccount:agents:planner",
        &["system:serviceaccounts", "system:serviceaccounts:agents"],
        &["switchboard"],
    );
    let other_audience = "sa-token-for-vault-1a2b";
    api.set_token(
        other_audience,
        "system:serviceaccount:agents:planner",
        &[],
        &["vault"],
    );
    let (_a, a_url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let config = format!(
        r#"
upstreams:
  - name: a
    url: "{a_url}"
auth:
  kubernetes:
    audiences: [switchboard]
authorization:
  - subjects: ["group:system:serviceaccounts:agents"]
    allow: ["a_test_*"]
"#
    );
    let gateway = Gateway::start_with_env(&config, &[("KUBECONFIG", kubeconfig.to_str().unwrap())]);
    let url = gateway.mcp();
    let deadline = Instant::now() + WAIT;
    loop {
        let tools = tools_as(&url, &bearer(agent_token))
            .await
            .expect("the agent's token");
        if !tools.is_empty() {
            assert!(tools.iter().all(|t| t.starts_with("a_test_")), "{tools:?}");
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reviews = |api: &KubeApi| {
        api.requests()
            .iter()
            .filter(|r| r.path.ends_with("/tokenreviews"))
            .count()
    };
    let before = reviews(&api);
    for _ in 0..5 {
        assert!(tools_as(&url, &bearer(agent_token)).await.is_ok());
    }
    assert_eq!(reviews(&api), before, "answers are cached");
    let refused = tools_as(&url, &bearer(other_audience)).await.unwrap_err();
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains("rejected")
    );
    let refused = tools_as(&url, &bearer("not.a-valid.token"))
        .await
        .unwrap_err();
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains("rejected")
    );
    logs_hold_none_of(&gateway, &[agent_token, other_audience]);
}
