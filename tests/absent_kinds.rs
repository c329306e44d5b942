//! A missing CRD costs nothing: a kind the API server does not serve is
//! found out once, said once, re-checked with a growing backoff through
//! API discovery (not by listing it), and picked up without a restart when
//! it is installed. Switchboard's real kube client against the in-test API
//! server, which counts what each path is asked.

mod support;

use std::time::{Duration, Instant};

use support::kube_api::fixtures::*;
use support::kube_api::{Counts, KubeApi};
use support::*;

/// How long an absent kind is watched being left alone. Discovery's
/// re-checks come 1, 2, 4, ... s apart, so a window of a few seconds sees
/// at most a few.
const HOLD: Duration = Duration::from_secs(4);

const KAGENTI_ABSENT: &str = "MCPServer (mcp.kagenti.com/v1alpha1) not installed; not watched";
const KAGENTI_INSTALLED: &str = "MCPServer (mcp.kagenti.com/v1alpha1) installed; watching";

/// A bound on what one path may have been asked.
type Bound<'a> = (&'a str, &'a dyn Fn(Counts) -> bool);

/// Asserts every bound at each look (10 a second), for `window`.
async fn hold(api: &KubeApi, window: Duration, bounds: &[Bound<'_>]) {
    let end = Instant::now() + window;
    loop {
        for (path, within) in bounds {
            let counts = api.counts(path);
            assert!(within(counts), "{path} asked too often: {counts:?}");
        }
        if Instant::now() >= end {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lines of `log` containing `needle`.
fn lines_with<'a>(log: &'a [String], needle: &str) -> Vec<&'a String> {
    log.iter().filter(|l| l.contains(needle)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_absent_optional_kind_is_said_once_left_alone_and_picked_up_when_installed() {
    let api = api_serving_registrations().await;
    let dir = TempDir::new();
    let (_pod, url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    serve_pod(&api, "weather", "weather-route", &url);
    api.put(open_registration("weather", "weather-route", "weather_"));

    let gateway = kube_gateway(&api, &dir, "");
    // Synced and serving, the kagenti CRD absent all along.
    wait_ready(&gateway).await;
    gateway.wait_for_tools(&["weather_echo"]).await;
    gateway.proc.wait_for(KAGENTI_ABSENT, WAIT);

    // Left alone: listed once (the 404 that found it absent), never
    // watched, and re-checked through discovery only a few times.
    let kagenti = KubeApi::path_of(KAGENTI.0, "mcpservers", None);
    let discovery = format!("/apis/{}", KAGENTI.0);
    hold(
        &api,
        HOLD,
        &[
            (&kagenti, &|c| c.reads <= 1 && c.watches == 0),
            (&discovery, &|c| c.reads <= 4),
        ],
    )
    .await;
    assert_eq!(
        api.counts(&kagenti).reads,
        1,
        "listed once: the 404 that found it absent"
    );
    let log = gateway.proc.drain(Duration::from_millis(100));
    // `wait_for` consumed the first one: no second.
    assert!(
        lines_with(&log, "not installed").is_empty(),
        "said again: {:?}",
        lines_with(&log, "not installed")
    );
    // No watch restarts at INFO while nothing happens.
    let info_watching: Vec<_> = log
        .iter()
        .filter(|l| l.contains("INFO") && l.contains("watching"))
        .collect();
    assert!(info_watching.is_empty(), "{info_watching:?}");

    // Installed, with one object: picked up without a restart, within the
    // backoff (the next re-check is at most a few seconds away).
    serve_kagenti(&api);
    api.put(kagenti_server("legacy", "weather-route", "old_"));
    gateway.wait_for_tools_within(&["old_echo"], WAIT).await;
    wait_for_reason(&api, KAGENTI, "legacy", "Ready").await;
    gateway.proc.wait_for(KAGENTI_INSTALLED, WAIT);
    assert!(
        api.counts(&kagenti).watches >= 1,
        "{:?}",
        api.counts(&kagenti)
    );
    let log = gateway.proc.drain(Duration::from_millis(100));
    assert!(lines_with(&log, "not installed").is_empty(), "{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_absent_registration_kind_keeps_discovery_unready_until_installed() {
    // No CRD at all: the built-in kinds only.
    let api = KubeApi::start().await;
    let dir = TempDir::new();
    let (_pod, url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    serve_pod(&api, "weather", "weather-route", &url);

    let gateway = kube_gateway(&api, &dir, "");
    gateway.proc.wait_for(
        "MCPServerRegistration (mcp.kuadrant.io/v1) not installed; not watched",
        WAIT,
    );
    // Readiness is as before: discovery has not synced without its kind.
    let registrations = KubeApi::path_of(REGISTRATION.0, "mcpserverregistrations", None);
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        assert_eq!(readyz(&gateway).await, 503);
        let counts = api.counts(&registrations);
        assert!(counts.reads <= 1 && counts.watches == 0, "{counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    serve_registrations(&api);
    api.put(open_registration("weather", "weather-route", "weather_"));
    wait_ready(&gateway).await;
    gateway.wait_for_tools(&["weather_echo"]).await;
    wait_for_reason(&api, REGISTRATION, "weather", "Ready").await;
    let log = gateway.proc.drain(Duration::from_millis(100));
    let said: Vec<_> = lines_with(
        &log,
        "MCPServerRegistration (mcp.kuadrant.io/v1) not installed",
    );
    assert!(said.is_empty(), "said again: {said:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kind_whose_crd_is_removed_is_withdrawn_and_said_once() {
    let api = api_serving_registrations().await;
    serve_kagenti(&api);
    let dir = TempDir::new();
    let (_pod, url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    serve_pod(&api, "weather", "weather-route", &url);
    api.put(kagenti_server("legacy", "weather-route", "old_"));

    let gateway = kube_gateway(&api, &dir, "");
    gateway.wait_for_tools(&["old_echo"]).await;

    // The CRD goes while the watch is down: the deletions of its objects
    // are never seen (the double even keeps them), the next watch finds
    // the kind gone, and its objects go with it.
    api.unregister(KAGENTI.0, KAGENTI.1);
    api.break_watches();
    gateway.proc.wait_for(KAGENTI_ABSENT, WAIT);
    let deadline = Instant::now() + WAIT;
    while list_tool_names(&gateway.mcp())
        .await
        .iter()
        .any(|t| t.starts_with("old_"))
    {
        assert!(Instant::now() < deadline, "the removed kind's tools stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kagenti = KubeApi::path_of(KAGENTI.0, "mcpservers", None);
    let before = api.counts(&kagenti);
    hold(
        &api,
        Duration::from_secs(3),
        &[(&kagenti, &|c| c == before)],
    )
    .await;
    let log = gateway.proc.drain(Duration::from_millis(100));
    assert!(lines_with(&log, "not installed").is_empty(), "{log:?}");
}
