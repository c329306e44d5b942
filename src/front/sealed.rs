//! Sealed client session ids, so that gateway replicas share sessions
//! without a shared store: the id a 2025 client gets from `initialize` is
//! the session itself — negotiated version, client info and capabilities,
//! endpoint, expiry, and the upstream sessions it is pinned to — encrypted
//! and authenticated (ChaCha20-Poly1305) under a key the replicas share.
//! Any replica opens it; a tampered, expired or foreign id opens nowhere.
//!
//! Upstream sessions must be in the id for affinity to hold on every
//! replica, so with sealing on they are opened at `initialize` rather than
//! on first use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::aead::{self, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a sealed id carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedSession {
    /// Negotiated protocol version.
    pub v: String,
    /// Client info and capabilities from `initialize`.
    pub i: Option<Value>,
    pub c: Value,
    /// Endpoint scope (`None`: `/mcp`).
    pub s: Option<String>,
    /// The authenticated subject the session is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub e: u64,
    /// Upstream sessions: (upstream name, `Mcp-Session-Id`, protocol version).
    pub u: Vec<(String, String, String)>,
    /// The pod each Kubernetes upstream session lives on: (upstream name,
    /// address). Apart from `u` so ids sealed before it still open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub p: Vec<(String, String)>,
}

pub struct Sealer {
    /// Seals new ids; opens them too.
    current: LessSafeKey,
    /// Keys being rotated out: they still open ids.
    previous: Vec<LessSafeKey>,
    max_age: Duration,
    random: SystemRandom,
}

/// Derives a 256-bit key from the configured secret (any length; a
/// passphrase works as well as random bytes, though random is better).
fn key(secret: &str) -> LessSafeKey {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, digest.as_ref()).expect("32-byte key");
    LessSafeKey::new(unbound)
}

/// Associated data binds ids to this use, so a ciphertext made for
/// anything else with the same key does not open as a session.
const AAD: &[u8] = b"switchboard session v1";

impl Sealer {
    pub fn new(secret: &str, previous: &[String], max_age: Duration) -> Sealer {
        Sealer {
            current: key(secret),
            previous: previous.iter().map(|p| key(p)).collect(),
            max_age,
            random: SystemRandom::new(),
        }
    }

    pub fn expiry(&self) -> u64 {
        now() + self.max_age.as_secs()
    }

    pub fn seal(&self, session: &SealedSession) -> String {
        let mut nonce = [0u8; aead::NONCE_LEN];
        self.random.fill(&mut nonce).expect("system randomness");
        let mut data = serde_json::to_vec(session).expect("serialisable");
        self.current
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut data,
            )
            .expect("sealing cannot fail for these sizes");
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&data);
        base64url(&raw)
    }

    /// The session behind an id, if it was sealed with one of our keys and
    /// has not expired.
    pub fn open(&self, id: &str) -> Option<SealedSession> {
        let raw = super::modern::decode_base64(id)?;
        // One spelling per session: an id whose last character differs
        // only in bits base64 drops would otherwise open the same session.
        if raw.len() < aead::NONCE_LEN + CHACHA20_POLY1305.tag_len() || base64url(&raw) != id {
            return None;
        }
        let (nonce, sealed) = raw.split_at(aead::NONCE_LEN);
        let nonce: [u8; aead::NONCE_LEN] = nonce.try_into().ok()?;
        let session = std::iter::once(&self.current)
            .chain(&self.previous)
            .find_map(|key| {
                let mut data = sealed.to_vec();
                let plain = key
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(AAD),
                        &mut data,
                    )
                    .ok()?;
                serde_json::from_slice::<SealedSession>(plain).ok()
            })?;
        (session.e > now()).then_some(session)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// URL-safe base64 without padding: a session id must be visible ASCII.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> SealedSession {
        SealedSession {
            v: "2025-11-25".into(),
            i: Some(serde_json::json!({ "name": "c", "version": "1" })),
            c: serde_json::json!({}),
            s: None,
            a: Some("alice".into()),
            e: now() + 60,
            u: vec![("up".into(), "abc".into(), "2025-11-25".into())],
            p: vec![("up".into(), "10.0.0.7:8080".into())],
        }
    }

    #[test]
    fn opens_what_it_sealed_and_nothing_else() {
        let sealer = Sealer::new("replica secret", &[], Duration::from_secs(60));
        let id = sealer.seal(&session());
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(sealer.open(&id), Some(session()));
        assert_ne!(sealer.seal(&session()), id, "fresh nonce every time");

        // Tampered: every position of the id matters (sealed ids of every
        // length mod 3, so the last character's unused bits are covered).
        let mut ids = vec![id.clone()];
        let mut padded = session();
        for extra in 1..=2 {
            padded.s = Some("x".repeat(extra));
            ids.push(sealer.seal(&padded));
        }
        for id in &ids {
            for i in [0, id.len() / 2, id.len() - 1] {
                // Flip the lowest bit of the character's value: in the last
                // character that is a bit base64 may drop.
                const ALPHABET: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                let mut bytes = id.clone().into_bytes();
                let value = ALPHABET.iter().position(|c| *c == bytes[i]).unwrap();
                bytes[i] = ALPHABET[value ^ 1];
                assert_eq!(
                    sealer.open(&String::from_utf8(bytes).unwrap()),
                    None,
                    "position {i}"
                );
            }
        }
        assert_eq!(sealer.open(""), None);
        assert_eq!(sealer.open("not base64 !"), None);

        let foreign = Sealer::new("another secret", &[], Duration::from_secs(60));
        assert_eq!(foreign.open(&id), None);
        // Rotation: the old key still opens during the grace.
        let rotated = Sealer::new(
            "new secret",
            &["replica secret".into()],
            Duration::from_secs(60),
        );
        assert_eq!(rotated.open(&id), Some(session()));
    }

    #[test]
    fn an_expired_id_does_not_open() {
        let sealer = Sealer::new("s", &[], Duration::from_secs(60));
        let mut old = session();
        old.e = now() - 1;
        assert_eq!(sealer.open(&sealer.seal(&old)), None);
    }
}
