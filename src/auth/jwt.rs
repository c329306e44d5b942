//! JWT bearer tokens: one [`Issuer`] per `auth.jwt` entry, with its keys
//! (a shared secret, a PEM public key, or a JWKS fetched and cached).
//! The algorithm comes from the key, never from the token, so a token
//! cannot pick a weaker check than its issuer's key allows.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

use super::Principal;
use crate::config::{JwtKeys, JwtSettings};
use crate::net::HttpClient;
use crate::refusal::Refusal;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 30;
/// A JWKS older than this is fetched again before use.
const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// The largest JWKS document read.
const JWKS_MAX_BYTES: usize = 1 << 20;

/// One verification key and the algorithm it verifies.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

pub struct Issuer {
    settings: JwtSettings,
    keys: RwLock<Arc<Vec<Key>>>,
    jwks: Option<Jwks>,
}

struct Jwks {
    url: String,
    client: HttpClient,
    /// When the keys were last fetched (or a fetch was tried).
    fetched: RwLock<Option<Instant>>,
    /// One fetch at a time; the others wait and use its result.
    fetching: tokio::sync::Mutex<()>,
}

impl Issuer {
    pub fn new(settings: &JwtSettings) -> Result<Issuer, String> {
        let issuer = &settings.issuer;
        let (keys, jwks) = match &settings.keys {
            JwtKeys::Secret(secret) => (
                vec![Key {
                    kid: None,
                    algorithm: Algorithm::HS256,
                    key: DecodingKey::from_secret(secret.as_bytes()),
                }],
                None,
            ),
            JwtKeys::PublicKeyPem(pem) => (
                vec![public_key(pem).map_err(|e| format!("auth.jwt {issuer}: {e}"))?],
                None,
            ),
            JwtKeys::Jwks { url, ca_pem } => {
                let client = crate::net::client::client_with(ca_pem.as_deref(), None)
                    .map_err(|e| format!("auth.jwt {issuer}: caFile: {e}"))?;
                (
                    Vec::new(),
                    Some(Jwks {
                        url: url.clone(),
                        client,
                        fetched: RwLock::new(None),
                        fetching: tokio::sync::Mutex::new(()),
                    }),
                )
            }
        };
        Ok(Issuer {
            settings: settings.clone(),
            keys: RwLock::new(Arc::new(keys)),
            jwks,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Verifies a token this issuer claims to have issued.
    pub async fn verify(&self, token: &str) -> Result<Principal, Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Malformed)?;
        let mut keys = self.candidates(&header).await;
        if keys.is_empty() {
            return Err(if header.kid.is_some() {
                Refusal::UnknownKey
            } else {
                Refusal::BadSignature
            });
        }
        for key in keys.drain(..) {
            let mut validation = Validation::new(key.algorithm);
            validation.leeway = LEEWAY_SECONDS;
            validation.validate_nbf = true;
            validation.set_issuer(&[&self.settings.issuer]);
            validation.set_audience(&self.settings.audiences);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
                Ok(data) => return self.principal(&data.claims),
                // Another key of the issuer may still verify it.
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm
                    ) => {}
                // The signature held: the claims are what is wrong.
                Err(error) => {
                    return Err(match error.kind() {
                        ErrorKind::ExpiredSignature => Refusal::Expired,
                        ErrorKind::ImmatureSignature => Refusal::NotYetValid,
                        ErrorKind::InvalidIssuer => Refusal::WrongIssuer,
                        ErrorKind::InvalidAudience => Refusal::WrongAudience,
                        _ => Refusal::Malformed,
                    });
                }
            }
        }
        Err(Refusal::BadSignature)
    }

    fn principal(&self, claims: &Value) -> Result<Principal, Refusal> {
        let subject = claims
            .get(&self.settings.subject_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(Refusal::Malformed)?;
        let groups = match claims.get(&self.settings.groups_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(Arc::from)
                .collect(),
            Some(Value::String(list)) => list.split_whitespace().map(Arc::from).collect(),
            _ => Vec::new(),
        };
        Ok(Principal {
            subject: Arc::from(subject),
            groups,
            method: "jwt",
        })
    }

    /// The keys that may have signed a token with `header`: by `kid` when
    /// it names one, and of the token's algorithm. An unknown `kid`
    /// refreshes the JWKS (at most once per cooldown): the issuer rotated.
    async fn candidates(&self, header: &Header) -> Vec<Key> {
        let pick = |keys: &[Key]| -> Vec<Key> {
            keys.iter()
                .filter(|k| k.algorithm == header.alg)
                // A key without a `kid` may have signed any token.
                .filter(|k| match (&header.kid, &k.kid) {
                    (Some(wanted), Some(kid)) => wanted == kid,
                    _ => true,
                })
                .cloned()
                .collect()
        };
        let current = self.current_keys();
        let Some(jwks) = &self.jwks else {
            return pick(&current);
        };
        let fetched = *jwks.fetched.read().unwrap_or_else(|p| p.into_inner());
        let stale = fetched.is_none_or(|at| at.elapsed() > JWKS_MAX_AGE);
        let found = pick(&current);
        let unknown_kid = found.is_empty()
            && fetched.is_none_or(|at| at.elapsed() >= self.settings.jwks_refresh_cooldown);
        if stale || unknown_kid {
            self.refresh(jwks, fetched).await;
            return pick(&self.current_keys());
        }
        found
    }

    fn current_keys(&self) -> Arc<Vec<Key>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fetches the JWKS unless another request did since `seen`.
    async fn refresh(&self, jwks: &Jwks, seen: Option<Instant>) {
        let _one_at_a_time = jwks.fetching.lock().await;
        if *jwks.fetched.read().unwrap_or_else(|p| p.into_inner()) != seen {
            return;
        }
        *jwks.fetched.write().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        match fetch_jwks(&jwks.client, &jwks.url).await {
            Ok(keys) => {
                tracing::info!(issuer = %self.settings.issuer, keys = keys.len(), "JWKS fetched");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
            }
            // The keys held so far stay in use.
            Err(error) => {
                tracing::warn!(issuer = %self.settings.issuer, "JWKS fetch from {} failed: {error}", jwks.url)
            }
        }
    }
}

async fn fetch_jwks(client: &HttpClient, url: &str) -> Result<Vec<Key>, String> {
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let body = Limited::new(response.into_body(), JWKS_MAX_BYTES)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("not a JWKS: {e}"))?;
    Ok(set
        .keys
        .iter()
        .filter_map(|jwk| {
            let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                (Some(named), _) => named.to_string().parse().ok()?,
                (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
                (None, AlgorithmParameters::EllipticCurve(p)) => match p.curve {
                    EllipticCurve::P256 => Algorithm::ES256,
                    EllipticCurve::P384 => Algorithm::ES384,
                    _ => return None,
                },
                (None, AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
                // Shared secrets have no business in a public key set.
                (None, AlgorithmParameters::OctetKey(_)) => return None,
            };
            if matches!(
                algorithm,
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
            ) {
                return None;
            }
            Some(Key {
                kid: jwk.common.key_id.clone(),
                algorithm,
                key: DecodingKey::from_jwk(jwk).ok()?,
            })
        })
        .collect())
}

/// A PEM `PUBLIC KEY` (SubjectPublicKeyInfo): RSA → RS256, EC P-256 →
/// ES256, Ed25519 → EdDSA.
fn public_key(pem: &str) -> Result<Key, String> {
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "publicKeyFile: expected a PEM \"PUBLIC KEY\"".to_string())?;
    let (algorithm, key) = spki_key(&spki)
        .ok_or_else(|| "publicKeyFile: not an RSA, EC P-256 or Ed25519 public key".to_string())?;
    let key = match algorithm {
        Algorithm::RS256 => DecodingKey::from_rsa_der(key),
        Algorithm::ES256 => DecodingKey::from_ec_der(key),
        _ => DecodingKey::from_ed_der(key),
    };
    Ok(Key {
        kid: None,
        algorithm,
        key,
    })
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Splits a SubjectPublicKeyInfo into its algorithm and the key bytes ring
/// verifies with (PKCS#1 for RSA, the point for EC, the raw Ed25519 key).
fn spki_key(der: &[u8]) -> Option<(Algorithm, &[u8])> {
    let (spki, _) = der_element(der, 0x30)?;
    let (algorithm, rest) = der_element(spki, 0x30)?;
    let (bits, _) = der_element(rest, 0x03)?;
    let key = bits.strip_prefix(&[0])?; // no unused bits
    let (oid, parameters) = der_element(algorithm, 0x06)?;
    let algorithm = match oid {
        OID_RSA => Algorithm::RS256,
        OID_ED25519 => Algorithm::EdDSA,
        OID_EC if der_element(parameters, 0x06)?.0 == OID_P256 => Algorithm::ES256,
        _ => return None,
    };
    Some((algorithm, key))
}

/// One DER element of type `tag`: its content and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length, rest) = rest.split_first()?;
    let (length, rest) = if length < 0x80 {
        (usize::from(length), rest)
    } else {
        let count = usize::from(length & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        (
            bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)),
            rest,
        )
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}

/// Mints an HS256 token (`switchboard token`), for small setups.
pub fn mint(
    secret: &str,
    subject: &str,
    ttl: Duration,
    audience: Option<&str>,
    issuer: Option<&str>,
    groups: &[String],
) -> Result<String, String> {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = json!({
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + ttl.as_secs(),
    });
    if let Some(audience) = audience {
        claims["aud"] = audience.into();
    }
    if let Some(issuer) = issuer {
        claims["iss"] = issuer.into();
    }
    if !groups.is_empty() {
        claims["groups"] = groups.into();
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

/// The `iss` a token claims, read before anything is verified, to pick
/// the issuer that must verify it.
pub fn claimed_issuer(token: &str) -> Option<String> {
    let mut validation = Validation::default();
    validation.insecure_disable_signature_validation();
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(&[]), &validation).ok()?;
    data.claims.get("iss")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_walk_refuses_truncated_and_wrong_input() {
        assert!(spki_key(&[]).is_none());
        assert!(spki_key(&[0x30, 0x82, 0xff]).is_none());
        assert!(spki_key(&[0x30, 0x03, 0x30, 0x01, 0x06]).is_none());
        assert!(der_element(&[0x02, 0x01, 0x05], 0x30).is_none());
        assert_eq!(
            der_element(&[0x02, 0x01, 0x05, 0xff], 0x02),
            Some((&[0x05][..], &[0xff][..]))
        );
    }

    #[test]
    fn ed25519_spki_yields_the_raw_key() {
        // RFC 8410 §10.1's example public key.
        let pem = "-----BEGIN PUBLIC KEY-----\n\
                   MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
                   -----END PUBLIC KEY-----\n";
        let key = public_key(pem).expect("parses");
        assert_eq!(key.algorithm, Algorithm::EdDSA);
        assert!(public_key("not pem").is_err());
    }

    #[tokio::test]
    async fn minted_tokens_verify_and_claims_are_checked() {
        let secret = "0123456789abcdef0123456789abcdef";
        let settings = JwtSettings {
            issuer: "switchboard".into(),
            audiences: vec!["gw".into()],
            keys: JwtKeys::Secret(secret.into()),
            subject_claim: "sub".into(),
            groups_claim: "groups".into(),
            jwks_refresh_cooldown: Duration::from_secs(10),
        };
        let issuer = Issuer::new(&settings).unwrap();
        let hour = Duration::from_secs(3600);
        let good = mint(
            secret,
            "ann",
            hour,
            Some("gw"),
            Some("switchboard"),
            &["ops".into()],
        )
        .unwrap();
        let ann = issuer.verify(&good).await.expect("valid");
        assert_eq!(&*ann.subject, "ann");
        assert_eq!(&*ann.groups[0], "ops");
        assert_eq!(claimed_issuer(&good).as_deref(), Some("switchboard"));

        let other_audience =
            mint(secret, "ann", hour, Some("other"), Some("switchboard"), &[]).unwrap();
        assert_eq!(
            issuer.verify(&other_audience).await.unwrap_err(),
            Refusal::WrongAudience
        );
        let wrong_secret = mint(
            "another-secret-another-secret-xx",
            "ann",
            hour,
            Some("gw"),
            Some("switchboard"),
            &[],
        )
        .unwrap();
        assert_eq!(
            issuer.verify(&wrong_secret).await.unwrap_err(),
            Refusal::BadSignature
        );
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[2] = "AAAA";
        assert_eq!(
            issuer.verify(&parts.join(".")).await.unwrap_err(),
            Refusal::BadSignature
        );
        assert_eq!(
            issuer.verify("x.y.z").await.unwrap_err(),
            Refusal::Malformed
        );
    }
}
