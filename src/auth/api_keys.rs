//! Static API keys. Keys are kept only as SHA-256 digests and compared in
//! constant time, so neither memory dumps nor timing reveal them.

use std::sync::Arc;

use ring::digest::{SHA256, digest};

use super::Principal;
use crate::config::ApiKeySettings;

pub struct ApiKeys {
    keys: Vec<(Vec<u8>, Principal)>,
}

impl ApiKeys {
    pub fn new(settings: &[ApiKeySettings]) -> ApiKeys {
        ApiKeys {
            keys: settings
                .iter()
                .map(|k| {
                    (
                        digest(&SHA256, k.key.as_bytes()).as_ref().to_vec(),
                        Principal {
                            subject: Arc::from(k.subject.as_str()),
                            groups: k.groups.iter().map(|g| Arc::from(g.as_str())).collect(),
                            method: "api_key",
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The holder of `presented`. Every key is compared, whatever matches.
    pub fn find(&self, presented: &str) -> Option<Principal> {
        if self.keys.is_empty() {
            return None;
        }
        let presented = digest(&SHA256, presented.as_bytes());
        let mut found = None;
        for (key, principal) in &self.keys {
            if constant_time_eq(key, presented.as_ref()) && found.is_none() {
                found = Some(principal.clone());
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_holder_of_a_key_and_nobody_else() {
        let keys = ApiKeys::new(&[
            ApiKeySettings {
                subject: "alice".into(),
                key: "alice-key-0123456789".into(),
                groups: vec!["platform".into()],
            },
            ApiKeySettings {
                subject: "bob".into(),
                key: "bob-key-0123456789ab".into(),
                groups: vec![],
            },
        ]);
        assert_eq!(
            &*keys.find("alice-key-0123456789").unwrap().subject,
            "alice"
        );
        assert_eq!(&*keys.find("bob-key-0123456789ab").unwrap().subject, "bob");
        assert!(keys.find("alice-key-012345678").is_none());
        assert!(keys.find("").is_none());
    }
}
