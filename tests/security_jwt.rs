//! JWT client authentication: a shared secret, a PEM public key and a JWKS
//! the test serves and rotates; every claim checked with its reason in the
//! challenge, `switchboard token`'s tokens accepted, refetches on unknown
//! keys rate limited.

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
use support::security::*;
use support::*;

const HS_SECRET: &str = "hs256-shared-secret-0123456789abcdef";

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
