//! Client authentication and authorization end to end: API keys, JWTs
//! (shared secret, PEM key, and a JWKS the test serves and rotates),
//! Kubernetes service-account tokens (TokenReview on the API double),
//! per-subject lists and calls, sessions bound to their subject, the rate
//! limit, the RFC 9728 metadata, and the credentials upstreams see.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use serde_json::{Value, json};
use support::kube_api::KubeApi;
use support::*;

const WAIT: Duration = Duration::from_secs(30);
const ALICE_KEY: &str = "alice-key-7f3c9a1e5b";
const BOB_KEY: &str = "bob-key-2d8e4f6a0c";
const CAROL_KEY: &str = "carol-key-9b1d3f5e7a";
const DAVE_KEY: &str = "dave-key-4c6e8a0b2d";
const UPSTREAM_TOKEN: &str = "upstream-a-own-token-51ac";
const HS_SECRET: &str = "hs256-shared-secret-0123456789abcdef";

fn with(credential: (&str, &str), mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers.push((credential.0.into(), credential.1.into()));
    headers
}

fn key(k: &str) -> (&'static str, String) {
    ("x-api-key", k.to_string())
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// Stateless `tools/list` as `credential`: the names, or the refusal.
async fn tools_as(url: &str, credential: &(&str, String)) -> Result<Vec<String>, HttpResponse> {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta()}});
    let headers = with(
        (credential.0, &credential.1),
        modern_headers("tools/list", None),
    );
    let response = post(url, &headers, &body.to_string()).await;
    if response.status != 200 {
        return Err(response);
    }
    let mut names: Vec<String> = response.json()["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    Ok(names)
}

/// Stateless `tools/call` of `tool` as `credential`.
async fn call_as(url: &str, credential: &(&str, String), tool: &str) -> HttpResponse {
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": meta()}});
    let headers = with(
        (credential.0, &credential.1),
        modern_headers("tools/call", Some(tool)),
    );
    post(url, &headers, &body.to_string()).await
}

fn assert_refused(response: &HttpResponse, reason: Option<&str>, base: &str) {
    assert_eq!(response.status, 401, "{:?}", response.body);
    let challenge = response.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.starts_with(&format!(
            "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{challenge}"
    );
    match reason {
        None => assert!(!challenge.contains("error="), "{challenge}"),
        Some(reason) => assert!(
            challenge.contains(&format!(
                "error=\"invalid_token\", error_description=\"{reason}\""
            )),
            "wanted {reason}: {challenge}"
        ),
    }
    assert_eq!(response.json()["error"]["code"], -32002);
}

fn logs_hold_none_of(gateway: &Gateway, secrets: &[&str]) {
    let log = gateway.proc.drain(Duration::from_millis(300)).join("\n");
    assert!(log.contains("request refused"), "the refusals are logged");
    for secret in secrets {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_authorize_per_subject_and_credentials_stay_at_the_gateway() {
    let (_a, a_url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let (_b, b_url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let bob_key_file = TempFile::new("key", &format!("{BOB_KEY}\n"));
    let config = format!(
        r#"
upstreams:
  - name: a
    url: "{a_url}"
    headers:
      Authorization: "Bearer {UPSTREAM_TOKEN}"
  - name: b
    url: "{b_url}"
auth:
  apiKeys:
    - subject: alice
      key: "${{ALICE_KEY}}"
      groups: [platform]
    - subject: bob
      keyFile: "{bob}"
    - subject: carol
      key: "{CAROL_KEY}"
    - subject: dave
      key: "{DAVE_KEY}"
authorization:
  - subjects: [alice]
    allow: ["a_*"]
    deny: ["a_test_error_handling"]
  - subjects: ["group:platform"]
    allow: ["b_test_simple_text"]
  - subjects: [bob, dave]
    allow: ["b_*"]
rateLimit:
  requestsPerSecond: 2
  burst: 30
"#,
        bob = bob_key_file.path.display()
    );
    let gateway = Gateway::start_with_env(&config, &[("ALICE_KEY", ALICE_KEY)]);
    let url = gateway.mcp();
    let base = gateway.base.clone();
    let (alice, bob, carol, dave) = (
        key(ALICE_KEY),
        bearer(BOB_KEY),
        key(CAROL_KEY),
        key(DAVE_KEY),
    );

    // Health stays open; everything else wants credentials.
    assert_eq!(
        request("GET", &format!("{base}/healthz"), &[], "")
            .await
            .status,
        200
    );
    // Ready once its upstream has connected; never a 401 meanwhile.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = request("GET", &format!("{base}/readyz"), &[], "")
            .await
            .status;
        assert!(status == 200 || status == 503, "/readyz answered {status}");
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let anonymous = post(&url, &modern_headers("tools/list", None), "{}").await;
    assert_refused(&anonymous, None, &base);
    assert_refused(
        &request("GET", &format!("{base}/status"), &[], "").await,
        None,
        &base,
    );
    assert_refused(
        &request("GET", &format!("{base}/metrics"), &[], "").await,
        None,
        &base,
    );
    let wrong = tools_as(&url, &key("not-a-key-at-all-000"))
        .await
        .unwrap_err();
    assert_refused(&wrong, Some("unknown_credential"), &base);
    let basic = tools_as(&url, &("authorization", "Basic YTpi".into()))
        .await
        .unwrap_err();
    assert_refused(&basic, Some("malformed"), &base);

    // RFC 9728 metadata, at the path the challenge names and without it.
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let metadata = request("GET", &format!("{base}{path}"), &[], "").await;
        assert_eq!(metadata.status, 200);
        assert_eq!(metadata.json()["resource"], format!("{base}/mcp"));
        assert_eq!(
            metadata.json()["bearer_methods_supported"],
            json!(["header"])
        );
    }

    // Each subject lists exactly what the rules give it.
    let deadline = Instant::now() + WAIT;
    let alice_tools = loop {
        let tools = tools_as(&url, &alice).await.unwrap();
        if tools.iter().any(|t| t.starts_with("a_")) && tools.iter().any(|t| t.starts_with("b_")) {
            break tools;
        }
        assert!(Instant::now() < deadline, "upstreams not ready: {tools:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(alice_tools.contains(&"a_session_info".to_string()));
    assert!(
        !alice_tools.contains(&"a_test_error_handling".to_string()),
        "denied by her rule"
    );
    let alice_b: Vec<_> = alice_tools.iter().filter(|t| t.starts_with("b_")).collect();
    assert_eq!(alice_b, ["b_test_simple_text"], "granted through her group");
    let bob_tools = tools_as(&url, &bob).await.unwrap();
    assert!(
        !bob_tools.is_empty() && bob_tools.iter().all(|t| t.starts_with("b_")),
        "{bob_tools:?}"
    );
    assert!(
        tools_as(&url, &carol).await.unwrap().is_empty(),
        "no rule, no tools"
    );

    // Resources follow the upstream: a rule covering its whole prefix.
    let resources_as = |credential: (&'static str, String)| {
        let url = url.clone();
        async move {
            let body = json!({"jsonrpc": "2.0", "id": 3, "method": "resources/list", "params": {"_meta": meta()}});
            let headers = with(
                (credential.0, &credential.1),
                modern_headers("resources/list", None),
            );
            let listed = post(&url, &headers, &body.to_string()).await.json();
            listed["result"]["resources"]
                .as_array()
                .expect("resources")
                .len()
        }
    };
    let (for_alice, for_bob) = (
        resources_as(alice.clone()).await,
        resources_as(bob.clone()).await,
    );
    let body =
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/list", "params": {"_meta": meta()}});
    let one_upstream = post(
        &a_url,
        &modern_headers("resources/list", None),
        &body.to_string(),
    )
    .await
    .json()["result"]["resources"]
        .as_array()
        .expect("the upstream's resources")
        .len();
    assert!(one_upstream > 0);
    // Both upstreams are the same server: each caller sees one of them.
    assert_eq!(for_alice, one_upstream, "a's resources for alice (a_*)");
    assert_eq!(for_bob, one_upstream, "b's resources for bob (b_*)");
    assert_eq!(
        resources_as(carol.clone()).await,
        0,
        "no rule, no resources"
    );

    // A forbidden call reads exactly like a call of a tool that does not exist.
    let forbidden = call_as(&url, &alice, "b_session_info").await;
    let missing = call_as(&url, &alice, "b_no_such_tool").await;
    assert_eq!(forbidden.status, missing.status);
    let (forbidden, missing) = (forbidden.json(), missing.json());
    assert_eq!(forbidden["error"]["code"], missing["error"]["code"]);
    assert_eq!(
        forbidden["error"]["message"],
        "Unknown tool: b_session_info"
    );
    assert_eq!(missing["error"]["message"], "Unknown tool: b_no_such_tool");
    assert_eq!(forbidden.get("result"), None);

    // Upstreams see their own credential, never the client's.
    let info = call_as(&url, &alice, "a_session_info").await.json();
    let seen: Value =
        serde_json::from_str(info["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        seen["headers"]["authorization"],
        format!("Bearer {UPSTREAM_TOKEN}")
    );
    assert!(seen["headers"].get("x-api-key").is_none(), "{seen}");
    let info = call_as(&url, &bob, "b_session_info").await.json();
    let seen: Value =
        serde_json::from_str(info["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert!(
        seen["headers"].get("authorization").is_none(),
        "bob's key was forwarded: {seen}"
    );

    // A 2025 session is bound to the subject that opened it.
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    let opened = post(&url, &with((alice.0, &alice.1), legacy_headers(None)), init).await;
    assert_eq!(opened.status, 200);
    let session = opened.header("mcp-session-id").unwrap();
    let ping = r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#;
    let as_alice = post(
        &url,
        &with((alice.0, &alice.1), legacy_headers(Some(&session))),
        ping,
    )
    .await;
    assert_eq!(as_alice.status, 200, "{:?}", as_alice.body);
    let as_bob = post(
        &url,
        &with((bob.0, &bob.1), legacy_headers(Some(&session))),
        ping,
    )
    .await;
    assert_eq!(as_bob.status, 404, "another subject's session is unknown");
    let list = r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#;
    let listed = post(
        &url,
        &with((alice.0, &alice.1), legacy_headers(Some(&session))),
        list,
    )
    .await;
    assert_eq!(
        listed.json()["result"]["tools"].as_array().unwrap().len(),
        alice_tools.len()
    );

    // A burst beyond the bucket gets 429 with Retry-After, for dave alone.
    let burst = (0..60).map(|_| {
        let (url, dave) = (url.clone(), dave.clone());
        async move { post(&url, &with((dave.0, &dave.1), modern_headers("server/discover", None)),
            &json!({"jsonrpc":"2.0","id":9,"method":"server/discover","params":{"_meta": meta()}}).to_string()).await }
    });
    let answers = futures_util::future::join_all(burst).await;
    let limited: Vec<_> = answers.iter().filter(|r| r.status == 429).collect();
    assert!(limited.len() >= 25, "{} of 60 limited", limited.len());
    assert!(answers.iter().all(|r| r.status == 200 || r.status == 429));
    assert!(answers.iter().filter(|r| r.status == 200).count() >= 25);
    let retry: u64 = limited[0].header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(limited[0].json()["error"]["code"], -32003);
    assert!(
        tools_as(&url, &bob).await.is_ok(),
        "bob has a bucket of his own"
    );

    // Refusals by reason, and 429s, reach /metrics.
    let metrics = request(
        "GET",
        &format!("{base}/metrics"),
        &[(bob.0.into(), bob.1.clone())],
        "",
    )
    .await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    assert!(
        text.contains("switchboard_auth_failures_total{reason=\"missing\"} 3"),
        "{text}"
    );
    assert!(text.contains("switchboard_auth_failures_total{reason=\"unknown_credential\"} 1"));
    assert!(text.contains("switchboard_auth_failures_total{reason=\"malformed\"} 1"));
    assert!(text.contains(&format!("switchboard_rate_limited_total {}", limited.len())));

    logs_hold_none_of(
        &gateway,
        &[ALICE_KEY, BOB_KEY, CAROL_KEY, DAVE_KEY, UPSTREAM_TOKEN],
    );
}

// ---------------------------------------------------------------------------
// JWT
// ---------------------------------------------------------------------------

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signing keys of the test's identity provider, with their JWKs.
struct Keys {
    rsa: (EncodingKey, Value),
    ec: (EncodingKey, Value),
    ed: (EncodingKey, Value),
    /// An Ed25519 key of a PEM-configured issuer, and its PEM.
    pem: (EncodingKey, String),
}

fn keys(dir: &std::path::Path) -> Keys {
    let rng = SystemRandom::new();
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    openssl(&["genrsa", "-traditional", "-out", "rsa.pem", "2048"]);
    openssl(&[
        "rsa",
        "-in",
        "rsa.pem",
        "-traditional",
        "-outform",
        "DER",
        "-out",
        "rsa.der",
    ]);
    let rsa_der = std::fs::read(dir.join("rsa.der")).unwrap();
    let pair = RsaKeyPair::from_der(&rsa_der).unwrap();
    let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
    let rsa_jwk = json!({"kty": "RSA", "kid": "k-rsa", "alg": "RS256", "use": "sig",
        "n": base64url(&public.n), "e": base64url(&public.e)});

    let ec_pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec_pkcs8.as_ref(), &rng)
        .unwrap();
    let point = ec.public_key().as_ref();
    let ec_jwk = json!({"kty": "EC", "kid": "k-ec", "crv": "P-256",
        "x": base64url(&point[1..33]), "y": base64url(&point[33..65])});

    let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed = Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref()).unwrap();
    let ed_jwk = json!({"kty": "OKP", "kid": "k-ed", "crv": "Ed25519", "alg": "EdDSA",
        "x": base64url(ed.public_key().as_ref())});

    let pem_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pem_pair = Ed25519KeyPair::from_pkcs8(pem_pkcs8.as_ref()).unwrap();
    // SubjectPublicKeyInfo for Ed25519 is a fixed prefix and the key.
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(pem_pair.public_key().as_ref());
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64(&spki)
    );

    Keys {
        rsa: (EncodingKey::from_rsa_der(&rsa_der), rsa_jwk),
        ec: (EncodingKey::from_ec_der(ec_pkcs8.as_ref()), ec_jwk),
        ed: (EncodingKey::from_ed_der(ed_pkcs8.as_ref()), ed_jwk),
        pem: (EncodingKey::from_ed_der(pem_pkcs8.as_ref()), pem),
    }
}

fn sign(algorithm: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// The identity provider's JWKS endpoint: serves whatever set is current
/// and counts the fetches.
struct JwksServer {
    url: String,
    set: Arc<Mutex<Value>>,
    fetches: Arc<std::sync::atomic::AtomicUsize>,
}

async fn jwks_server(set: Value) -> JwksServer {
    let set = Arc::new(Mutex::new(set));
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (shared, counter) = (set.clone(), fetches.clone());
    let base = serve_http(move |_request| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = shared.lock().unwrap().to_string();
        async move {
            hyper::Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        }
    })
    .await;
    let url = format!("{base}/jwks.json");
    JwksServer { url, set, fetches }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_are_checked_claim_by_claim_and_follow_key_rotation() {
    let dir = TempDir::new();
    let keys = keys(&dir.path);
    let idp = jwks_server(json!({"keys": [keys.rsa.1, keys.ec.1]})).await;
    let (_a, a_url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let secret_file = TempFile::new("secret", HS_SECRET);
    let pem_file = TempFile::new("pem", &keys.pem.1);
    let audience = "https://mcp.example.net/mcp";
    let config = format!(
        r#"
upstreams:
  - name: a
    url: "{a_url}"
auth:
  resource: "{audience}"
  jwt:
    - issuer: "https://small.example"
      audiences: ["{audience}"]
      secretFile: "{secret}"
    - issuer: "https://idp.example"
      audiences: ["{audience}"]
      jwksUrl: "{jwks}"
      jwksRefreshCooldown: 1s
      groupsClaim: roles
    - issuer: "https://pem.example"
      audiences: ["{audience}"]
      publicKeyFile: "{pem}"
authorization:
  - subjects: ["group:readers"]
    allow: ["a_test_simple_text"]
  - subjects: ["*"]
    allow: ["a_session_info"]
"#,
        secret = secret_file.path.display(),
        jwks = idp.url,
        pem = pem_file.path.display(),
    );
    let gateway = Gateway::start(&config);
    let url = gateway.mcp();
    let base = gateway.base.clone();
    let t = now();
    let claims = |iss: &str| json!({"iss": iss, "sub": "agent-7", "aud": audience, "exp": t + 600, "nbf": t - 10, "roles": ["readers"], "groups": ["readers"]});
    let hs = EncodingKey::from_secret(HS_SECRET.as_bytes());

    // The metadata names the configured resource and the issuers.
    let metadata = request(
        "GET",
        &format!("{base}/.well-known/oauth-protected-resource/mcp"),
        &[],
        "",
    )
    .await
    .json();
    assert_eq!(metadata["resource"], audience);
    assert_eq!(
        metadata["authorization_servers"],
        json!([
            "https://small.example",
            "https://idp.example",
            "https://pem.example"
        ])
    );

    // Good tokens of each kind of key, with their groups.
    let good = sign(
        Algorithm::HS256,
        None,
        &hs,
        &claims("https://small.example"),
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let tools = tools_as(&url, &bearer(&good))
            .await
            .expect("a good HS256 token");
        if tools.len() == 2 {
            assert_eq!(tools, ["a_session_info", "a_test_simple_text"]);
            break;
        }
        assert!(Instant::now() < deadline, "{tools:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rs = sign(
        Algorithm::RS256,
        Some("k-rsa"),
        &keys.rsa.0,
        &claims("https://idp.example"),
    );
    let es = sign(
        Algorithm::ES256,
        Some("k-ec"),
        &keys.ec.0,
        &claims("https://idp.example"),
    );
    let ed = sign(
        Algorithm::EdDSA,
        None,
        &keys.pem.0,
        &claims("https://pem.example"),
    );
    for (token, kind) in [
        (&rs, "RS256 from the JWKS"),
        (&es, "ES256 from the JWKS"),
        (&ed, "EdDSA from a PEM file"),
    ] {
        let tools = tools_as(&url, &bearer(token))
            .await
            .unwrap_or_else(|r| panic!("{kind}: {r:?}"));
        assert_eq!(tools.len(), 2, "{kind}");
    }
    // `switchboard token` mints what the shared-secret issuer accepts.
    let minted = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["token", "--secret-file"])
        .arg(&secret_file.path)
        .args([
            "--sub",
            "cli-user",
            "--ttl",
            "5m",
            "--aud",
            audience,
            "--iss",
            "https://small.example",
            "--groups",
            "readers,x",
        ])
        .output()
        .unwrap();
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let minted = String::from_utf8(minted.stdout).unwrap();
    assert_eq!(
        tools_as(&url, &bearer(minted.trim())).await.unwrap().len(),
        2
    );

    // Every bad claim is refused with its reason.
    let mut expired = claims("https://small.example");
    expired["exp"] = json!(t - 120);
    let mut early = claims("https://small.example");
    early["nbf"] = json!(t + 300);
    let mut elsewhere = claims("https://small.example");
    elsewhere["aud"] = json!("https://other.example/mcp");
    let mut no_subject = claims("https://small.example");
    no_subject.as_object_mut().unwrap().remove("sub");
    let other_secret = EncodingKey::from_secret(b"another-secret-another-secret-0123");
    let cases = [
        (sign(Algorithm::HS256, None, &hs, &expired), "expired"),
        (sign(Algorithm::HS256, None, &hs, &early), "not_yet_valid"),
        (
            sign(Algorithm::HS256, None, &hs, &elsewhere),
            "wrong_audience",
        ),
        (
            sign(
                Algorithm::HS256,
                None,
                &hs,
                &claims("https://unknown.example"),
            ),
            "wrong_issuer",
        ),
        (
            sign(
                Algorithm::HS256,
                None,
                &other_secret,
                &claims("https://small.example"),
            ),
            "bad_signature",
        ),
        (sign(Algorithm::HS256, None, &hs, &no_subject), "malformed"),
        ("e30.e30.sig".to_string(), "malformed"),
        // An HS256 token must not pass as one of the JWKS issuer's.
        (
            sign(
                Algorithm::HS256,
                Some("k-rsa"),
                &hs,
                &claims("https://idp.example"),
            ),
            "unknown_key",
        ),
        // The PEM issuer's key signs EdDSA only; another Ed25519 key fails.
        (
            sign(
                Algorithm::EdDSA,
                None,
                &keys.ed.0,
                &claims("https://pem.example"),
            ),
            "bad_signature",
        ),
    ];
    for (token, reason) in &cases {
        let refused = tools_as(&url, &bearer(token)).await.unwrap_err();
        assert_eq!(
            refused.header("www-authenticate").unwrap(),
            format!(
                "Bearer resource_metadata=\"https://mcp.example.net/.well-known/oauth-protected-resource/mcp\", error=\"invalid_token\", error_description=\"{reason}\""
            )
        );
        assert_eq!(refused.status, 401);
    }

    // Rotation: a token under a key the JWKS does not publish yet is
    // refused; once the provider publishes it (and drops the RSA key) the
    // gateway refetches on the unknown kid and accepts it.
    let rotated = sign(
        Algorithm::EdDSA,
        Some("k-ed"),
        &keys.ed.0,
        &claims("https://idp.example"),
    );
    let refused = tools_as(&url, &bearer(&rotated)).await.unwrap_err();
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains("unknown_key")
    );
    let fetched_before = idp.fetches.load(std::sync::atomic::Ordering::SeqCst);
    *idp.set.lock().unwrap() = json!({"keys": [keys.ec.1, keys.ed.1]});
    let deadline = Instant::now() + WAIT;
    while tools_as(&url, &bearer(&rotated)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the rotated key was never fetched"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(idp.fetches.load(std::sync::atomic::Ordering::SeqCst) > fetched_before);
    let dropped = tools_as(&url, &bearer(&rs)).await.unwrap_err();
    assert!(
        dropped
            .header("www-authenticate")
            .unwrap()
            .contains("unknown_key")
    );
    // Refetches are rate limited: a burst of unknown kids costs one fetch at most.
    let fetched = idp.fetches.load(std::sync::atomic::Ordering::SeqCst);
    for i in 0..20 {
        let stray = sign(
            Algorithm::EdDSA,
            Some(&format!("stray-{i}")),
            &keys.ed.0,
            &claims("https://idp.example"),
        );
        assert!(tools_as(&url, &bearer(&stray)).await.is_err());
    }
    assert!(idp.fetches.load(std::sync::atomic::Ordering::SeqCst) <= fetched + 1);

    logs_hold_none_of(&gateway, &[HS_SECRET, &good, &rs, minted.trim()]);
}

// ---------------------------------------------------------------------------
// Kubernetes service-account tokens
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Transport: TLS serving, limits, and the refusal to serve openly
// ---------------------------------------------------------------------------

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

/// Reads from `stream` until it closes or `within` passes; what arrived.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&received).into_owned()),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_oversized_requests_are_cut_off_and_others_are_served() {
    use tokio::io::AsyncWriteExt;
    let gateway = Gateway::start(
        "limits:\n  headerReadTimeout: 1s\n  idleTimeout: 1s\n  maxHeaderBytes: 16384\n",
    );
    let address = gateway.base.trim_start_matches("http://").to_string();

    // Headers that never finish: the connection is closed.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let closed = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(
        closed.is_some(),
        "a half-sent head held the connection open"
    );

    // A kept-alive connection left idle is closed too.
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(10))
            .await
            .is_some()
    );

    // A body that stalls gets 408 with a JSON-RPC error.
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\":")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stalled, Duration::from_secs(10))
        .await
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request body stalled"), "{answer}");

    // A head beyond the limit gets 431.
    let mut huge = tokio::net::TcpStream::connect(&address).await.unwrap();
    let filler = "x".repeat(20_000);
    huge.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: {filler}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut huge, Duration::from_secs(10))
        .await
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Everyone else is still served.
    assert_eq!(
        request("GET", &format!("{}/healthz", gateway.base), &[], "")
            .await
            .status,
        200
    );
}

#[test]
fn a_public_address_is_served_only_with_auth_or_an_explicit_opt_out() {
    let open = TempFile::new("yaml", "listen: \"0.0.0.0:0\"\n");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(&open.path)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("refusing to serve 0.0.0.0:0 without client authentication"),
        "{message}"
    );
    assert!(message.contains("--insecure-no-auth"), "{message}");

    let mut opted_out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    opted_out
        .args(["serve", "--insecure-no-auth", "--config"])
        .arg(&open.path);
    let _served = Proc::start(opted_out, "switchboard listening on");

    let with_auth = TempFile::new(
        "yaml",
        "listen: \"0.0.0.0:0\"\nauth:\n  apiKeys:\n    - subject: ops\n      key: \"ops-key-0123456789abcdef\"\nauthorization:\n  - subjects: [ops]\n    allow: [\"*\"]\n",
    );
    let mut authenticated = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    authenticated
        .args(["serve", "--config"])
        .arg(&with_auth.path);
    let _served = Proc::start(authenticated, "switchboard listening on");
}

/// The README's Security example is a config `check-config` accepts.
#[test]
fn the_readme_security_example_is_a_valid_config() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = &readme[readme.find("## Security").expect("a Security section")..];
    let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let file = TempFile::new("yaml", example);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg(&file.path)
        .env("ALICE_KEY", "alice-key-from-the-environment")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One upstream at its `maxConcurrency`: a further call waits up to half
/// the call timeout for a slot, then gets an error saying so; other upstreams
/// are not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_at_its_concurrency_bound_refuses_the_excess_and_only_that() {
    let (_a, a_url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let (_b, b_url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: a\n    url: \"{a_url}\"\n    maxConcurrency: 1\n    timeout: 2s\n  - name: b\n    url: \"{b_url}\"\n"
    ));
    gateway.wait_for_tools(&["a_sleep", "b_sleep"]).await;
    let url = gateway.mcp();
    let sleep = |tool: &'static str, ms: u64| {
        let url = url.clone();
        async move {
            let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": tool, "arguments": {"ms": ms}, "_meta": meta()}});
            post(
                &url,
                &modern_headers("tools/call", Some(tool)),
                &body.to_string(),
            )
            .await
        }
    };
    let holding = tokio::spawn(sleep("a_sleep", 1500));
    // Wait until the first call holds a's one slot (asking a itself: through
    // the gateway the question would need that slot).
    let deadline = Instant::now() + WAIT;
    loop {
        let body = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "sleep_stats", "arguments": {}, "_meta": meta()}});
        let stats = post(
            &a_url,
            &modern_headers("tools/call", Some("sleep_stats")),
            &body.to_string(),
        )
        .await
        .json();
        let text = stats["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or("{}")
            .to_string();
        if serde_json::from_str::<Value>(&text).unwrap_or_default()["started"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first call never started: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let (refused, other) = tokio::join!(sleep("a_sleep", 0), sleep("b_sleep", 0));
    assert_eq!(
        refused.json()["error"]["code"],
        -32001,
        "{:?}",
        refused.body
    );
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("upstream a is busy: 1 requests in flight"),
        "{message}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it waited for a slot first"
    );
    assert_eq!(other.status, 200, "b is not held up");
    assert_eq!(
        holding.await.unwrap().status,
        200,
        "the call in its slot finishes"
    );
    // The slot is free again.
    assert_eq!(sleep("a_sleep", 0).await.status, 200);
}
