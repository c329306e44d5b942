use super::*;

fn env(var: &str) -> Option<String> {
    match var {
        "WEATHER_TOKEN" => Some("s3cret".into()),
        _ => None,
    }
}

fn parse_ok(text: &str) -> Config {
    parse(text, "test.yaml", &env).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> String {
    parse(text, "test.yaml", &env).expect_err(text).to_string()
}

#[test]
fn the_issue_example_parses() {
    let config = parse_ok(
        r#"
listen: "127.0.0.1:8080"
upstreams:
  - name: weather
    url: "http://127.0.0.1:9001/mcp"
    prefix: "weather_"
    headers:
      Authorization: "Bearer ${WEATHER_TOKEN}"
    timeout: "60s"
  - name: files
    command: "npx"
    args: ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]
    env: {}
"#,
    );
    assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.upstreams.len(), 2);
    let weather = &config.upstreams[0];
    assert_eq!(weather.prefix, "weather_");
    assert_eq!(weather.timeout, Duration::from_secs(60));
    assert_eq!(
        weather.transport,
        TransportSpec::Http {
            url: "http://127.0.0.1:9001/mcp".into(),
            headers: vec![("Authorization".into(), "Bearer s3cret".into())],
            legacy_sse: LegacySse::Never,
            ca_pem: None,
            dial_pods: false,
        }
    );
    let files = &config.upstreams[1];
    assert_eq!(files.prefix, "files_", "default prefix is <name>_");
    assert!(matches!(&files.transport, TransportSpec::Stdio { command, .. } if command == "npx"));
}

#[test]
fn the_embedded_default_parses() {
    let config = parse(EMBEDDED_DEFAULT, EMBEDDED_DEFAULT_NAME, &env).unwrap();
    assert!(
        config.upstreams.len() >= 2,
        "the README promises two upstreams"
    );
}

#[test]
fn errors_name_the_file_the_key_and_the_line() {
    let cases: &[(&str, &[&str])] = &[
        (
            "upstreams:\n  - name: a\n    url: http://x/mcp\n    colour: red\n",
            &["test.yaml", "colour"],
        ),
        (
            "listen: nowhere\n",
            &["test.yaml", "line 1", "listen", "nowhere"],
        ),
        (
            "upstreams:\n  - name: a\n    url: http://x/mcp\n  - name: a\n    url: http://y/mcp\n",
            &[
                "line 4",
                "upstreams[1].name",
                "duplicate name",
                "upstreams[0]",
            ],
        ),
        (
            "upstreams:\n  - name: a\n    url: http://x/mcp\n    prefix: p_\n  - name: b\n    url: http://y/mcp\n    prefix: p_\n",
            &["line 7", "upstreams[1].prefix", "duplicate prefix"],
        ),
        (
            "upstreams:\n  - name: a\n    url: http://x/mcp\n  - name: b\n    url: http://y/mcp\n    prefix: a_\n",
            &["upstreams[1].prefix", "duplicate prefix \"a_\""],
        ),
        (
            "upstreams:\n  - name: a\n",
            &["line 2", "upstreams[0].url", "missing url"],
        ),
        (
            "upstreams:\n  - name: a\n    url: ftp://x\n",
            &["line 3", "upstreams[0].url", "not an http"],
        ),
        (
            "upstreams:\n  - name: Bad\n    url: http://x/mcp\n",
            &["upstreams[0].name", "[a-z0-9]"],
        ),
        (
            "upstreams:\n  - name: a\n    url: http://x/mcp\n    timeout: soon\n",
            &["line 4", "upstreams[0].timeout", "duration"],
        ),
        (
            "upstreams:\n  - name: a\n    url: http://x/mcp\n    headers:\n      X-Key: \"${NOT_SET}\"\n",
            &["upstreams[0].headers.X-Key", "NOT_SET"],
        ),
        (
            "upstreams:\n  - name: a\n    url: http://x/mcp\n    command: npx\n",
            &["either url or command"],
        ),
    ];
    for (text, needles) in cases {
        let message = parse_err(text);
        for needle in *needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
    }
}

#[test]
fn header_values_never_appear_in_errors() {
    let message = parse_err(
        "upstreams:\n  - name: a\n    url: http://x/mcp\n    headers:\n      \"bad header\": \"${WEATHER_TOKEN}\"\n",
    );
    assert!(!message.contains("s3cret"), "{message}");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("5"), None);
    assert_eq!(parse_duration("s"), None);
    assert_eq!(parse_duration("99999999999999999999h"), None);
}

#[test]
fn the_legacy_sse_transport_is_chosen_or_detected() {
    let sse_of = |upstream: &str| match &parse_ok(&format!("upstreams:\n  - name: a\n{upstream}"))
        .upstreams[0]
        .transport
    {
        TransportSpec::Http { legacy_sse, .. } => *legacy_sse,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        sse_of("    url: http://x/sse\n    transport: sse\n"),
        LegacySse::Always
    );
    assert_eq!(sse_of("    url: http://x/sse\n"), LegacySse::Detect);
    assert_eq!(
        sse_of("    url: http://x/sse\n    transport: streamable-http\n"),
        LegacySse::Never
    );
    assert_eq!(sse_of("    url: http://x/mcp\n"), LegacySse::Never);
    let message = parse_err(
        "upstreams:\n  - name: a\n    url: http://x/mcp\n    transport: carrier-pigeon\n",
    );
    assert!(
        message.contains("upstreams[0].transport") && message.contains("line 4"),
        "{message}"
    );
}

#[test]
fn kubernetes_and_cluster_tools_settings() {
    let config = parse_ok(
        "kubernetes:\n  namespaces: [team, shop]\nclusterTools:\n  namespaces: [shop]\n  restartDeployments: [\"shop/web\"]\n  triggerJobs: [\"shop/nightly\"]\n",
    );
    assert_eq!(config.kubernetes.unwrap().namespaces, ["team", "shop"]);
    let tools = config.cluster_tools.unwrap();
    assert_eq!(tools.namespaces, ["shop"]);
    assert_eq!(tools.restart_deployments, ["shop/web"]);
    assert_eq!(tools.trigger_jobs, ["shop/nightly"]);

    let off = parse_ok("clusterTools:\n  enabled: false\n  restartDeployments: [\"shop/web\"]\n");
    assert_eq!(off.cluster_tools, None, "enabled: false switches them off");
    assert_eq!(parse_ok("listen: \"127.0.0.1:0\"\n").kubernetes, None);

    for (text, fragment) in [
        (
            "clusterTools:\n  restartDeployments: [\"web\"]\n",
            "line 2: clusterTools.restartDeployments: \"web\" is not namespace/name",
        ),
        (
            "clusterTools:\n  triggerJobs: [\"a/b/c\"]\n",
            "clusterTools.triggerJobs: \"a/b/c\" is not namespace/name",
        ),
        (
            "kubernetes:\n  namespaces: [Team]\n",
            "kubernetes.namespaces: \"Team\" is not a namespace name",
        ),
        (
            "clusterTools:\n  namespaces: [\"-x\"]\n",
            "clusterTools.namespaces: \"-x\" is not a namespace name",
        ),
        ("kubernetes:\n  watch: all\n", "watch"),
    ] {
        let error = parse_err(text);
        assert!(
            error.contains(fragment),
            "{error:?} should contain {fragment:?}"
        );
    }
}

#[test]
fn security_settings_parse_and_secrets_never_appear_in_errors() {
    let config = parse_ok(
        r#"
auth:
  apiKeys:
    - subject: alice
      key: "prefix-${WEATHER_TOKEN}-0123456789"
      groups: [platform]
  jwt:
    - issuer: "https://idp.example"
      audiences: ["https://gw.example/mcp"]
      jwksUrl: "https://idp.example/jwks.json"
authorization:
  - subjects: ["alice"]
    allow: ["a_*"]
rateLimit:
  requestsPerSecond: 5
limits:
  headerReadTimeout: 5s
"#,
    );
    let security = &config.security;
    let auth = security.auth.as_ref().unwrap();
    assert_eq!(auth.api_keys[0].key, "prefix-s3cret-0123456789");
    assert!(
        !format!("{auth:?}").contains("s3cret"),
        "Debug prints no key"
    );
    assert_eq!(auth.jwt[0].subject_claim, "sub");
    assert_eq!(security.rate_limit.unwrap().burst, 10);
    assert_eq!(security.limits.header_read_timeout, Duration::from_secs(5));
    assert_eq!(security.limits.idle_timeout, Duration::from_secs(30));

    let short = parse_err("auth:\n  apiKeys:\n    - subject: a\n      key: \"tiny-secret\"\n");
    assert!(
        short.contains("line 3: auth.apiKeys[0].key: use at least 16"),
        "{short}"
    );
    assert!(!short.contains("tiny-secret"), "{short}");
    let unset = parse_err("auth:\n  apiKeys:\n    - subject: a\n      key: \"${NOPE}\"\n");
    assert!(
        unset.contains("environment variable NOPE is not set"),
        "{unset}"
    );
    let both = parse_err(
        "auth:\n  jwt:\n    - issuer: x\n      audiences: [a]\n      secret: \"0123456789012345678901234567890123\"\n      jwksUrl: \"https://x/j\"\n",
    );
    assert!(
        both.contains("line 3: auth.jwt[0]: give exactly one of"),
        "{both}"
    );
    let no_audience = parse_err("auth:\n  jwt:\n    - issuer: x\n      jwksUrl: \"https://x/j\"\n");
    assert!(no_audience.contains("audiences"), "{no_audience}");
    let rules_alone = parse_err("authorization:\n  - subjects: [a]\n    allow: [\"*\"]\n");
    assert!(
        rules_alone.contains("need an auth section"),
        "{rules_alone}"
    );
    let slow = parse_err("limits:\n  idleTimeout: soon\n");
    assert!(
        slow.contains("line 2: limits.idleTimeout: \"soon\" is not a duration"),
        "{slow}"
    );
    let empty_auth = parse_err("auth: {}\n");
    assert!(
        empty_auth.contains("at least one of apiKeys, jwt or kubernetes"),
        "{empty_auth}"
    );
}

#[test]
fn trace_settings() {
    let config = parse_ok(
        "traces:\n  otlpEndpoint: \"http://collector:4318/\"\n  headers:\n    Authorization: \"Bearer ${WEATHER_TOKEN}\"\n  sampleRatio: 0.25\n",
    );
    let traces = config.traces.expect("traces on");
    assert_eq!(traces.endpoint, "http://collector:4318/v1/traces");
    assert_eq!(traces.service_name, "switchboard");
    assert_eq!(traces.headers[0].1, "Bearer s3cret");
    assert_eq!(traces.sample_ratio, 0.25);
    assert!(!format!("{traces:?}").contains("s3cret"));
    // A full traces URL is taken as it is.
    let config = parse_ok("traces:\n  otlpEndpoint: \"https://c.example/v1/traces\"\n");
    assert_eq!(
        config.traces.unwrap().endpoint,
        "https://c.example/v1/traces"
    );
    assert_eq!(parse_ok("listen: \"127.0.0.1:1\"\n").traces, None);

    for (text, expected) in [
        (
            "traces:\n  otlpEndpoint: \"collector:4318\"\n",
            "line 2: traces.otlpEndpoint: \"collector:4318\" is not an http:// or https:// URL",
        ),
        (
            "traces:\n  otlpEndpoint: \"http://c:4318\"\n  sampleRatio: 2\n",
            "line 3: traces.sampleRatio: 2 is not between 0 and 1",
        ),
        (
            "traces:\n  otlpEndpoint: \"http://c:4318\"\n  headers:\n    X: \"${NOPE}\"\n",
            "traces.headers.X: environment variable NOPE is not set",
        ),
        (
            "traces:\n  otlpEndpoint: \"http://c:4318\"\n  caFile: /nonexistent/ca.pem\n",
            "line 3: traces.caFile: cannot read \"/nonexistent/ca.pem\"",
        ),
    ] {
        let error = parse_err(text);
        assert!(error.contains(expected), "{error}");
    }
    let error = parse_err(
        "traces:\n  otlpEndpoint: \"http://c:4318\"\n  headers:\n    X: \"s3cret\\x01\"\n",
    );
    assert!(error.contains("not a valid HTTP header"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
}
