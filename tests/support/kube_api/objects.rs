//! Objects as the API server keeps them: create or replace with uid,
//! generation and resourceVersion; JSON merge patch; label and field
//! selectors.

use serde_json::{Value, json};

use super::{Inner, text};

impl Inner {
    /// Stores `object` (create or replace); returns it and the event type.
    /// `from_client` requests keep the stored status (status is written
    /// only through the subresource).
    pub(super) fn store(&mut self, mut object: Value, from_client: bool) -> (Value, &'static str) {
        let id = (
            text(&object, "/apiVersion"),
            text(&object, "/kind"),
            text(&object, "/metadata/namespace"),
            text(&object, "/metadata/name"),
        );
        self.rv += 1;
        let previous = self.objects.get(&id).cloned();
        if object.get("metadata").is_none_or(|m| !m.is_object()) {
            object["metadata"] = json!({});
        }
        let event = match &previous {
            None => {
                self.next_uid += 1;
                let metadata = &mut object["metadata"];
                metadata["uid"] = json!(format!("00000000-0000-0000-0000-{:012}", self.next_uid));
                if metadata.get("creationTimestamp").is_none_or(Value::is_null) {
                    metadata["creationTimestamp"] = json!(now());
                }
                metadata["generation"] = json!(1);
                "ADDED"
            }
            Some(previous) => {
                let metadata = &mut object["metadata"];
                metadata["uid"] = previous["metadata"]["uid"].clone();
                metadata["creationTimestamp"] = previous["metadata"]["creationTimestamp"].clone();
                let generation = previous["metadata"]["generation"].as_i64().unwrap_or(1);
                let changed = without(previous, &["metadata", "status"])
                    != without(&object, &["metadata", "status"]);
                object["metadata"]["generation"] = json!(generation + i64::from(changed));
                if from_client || object.get("status").is_none() {
                    match previous.get("status") {
                        Some(status) => object["status"] = status.clone(),
                        None => {
                            if let Some(map) = object.as_object_mut() {
                                map.remove("status");
                            }
                        }
                    }
                }
                "MODIFIED"
            }
        };
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.objects.insert(id, object.clone());
        (object, event)
    }
}

fn without(object: &Value, keys: &[&str]) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for key in keys {
            map.remove(*key);
        }
    }
    copy
}

fn now() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// RFC 3339 in UTC to the second, as the API server writes times (no date
/// crate: the civil date from days since the epoch, Howard Hinnant's way).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let seconds = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// RFC 7386 JSON merge patch.
pub(super) fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(entries) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().unwrap();
            for (key, value) in entries {
                if value.is_null() {
                    map.remove(key);
                } else {
                    merge(map.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Label selector: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated.
pub(super) fn labels_match(object: &Value, selector: &str) -> bool {
    let labels = object.pointer("/metadata/labels");
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            label(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            label(k.trim()) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            label(k.trim()).is_none()
        } else {
            label(term.trim()).is_some()
        }
    })
}

pub(super) fn fields_match(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) else {
            return true;
        };
        match k {
            "metadata.name" => text(object, "/metadata/name") == v,
            "metadata.namespace" => text(object, "/metadata/namespace") == v,
            _ => true,
        }
    })
}
