//! Tool parameters mirrored into HTTP headers (2026-07-28, SEP-2243): a
//! property of a tool's input schema may carry `x-mcp-header: Name`, and a
//! client calling the tool over Streamable HTTP sends the argument's value
//! as `Mcp-Param-Name`. A tool whose annotations are invalid must not be
//! listed by a client; the gateway, a client of its upstreams, leaves it
//! out. Toward a 2026-07-28 upstream the gateway sends the headers a 2025
//! client cannot know to send.

use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

/// One valid annotation: the argument at `path` goes in `Mcp-Param-{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    pub name: String,
    pub path: Vec<String>,
}

/// The annotations of a tool's input schema; an error says why the tool
/// must be left out. An annotation is valid on a property reached from the
/// root through `properties` alone, of type string, integer or boolean,
/// naming a non-empty HTTP token unique in the tool (ignoring case).
pub fn of_schema(input_schema: &Value) -> Result<Vec<ParamHeader>, String> {
    let mut found = Vec::new();
    visit(input_schema, &mut Vec::new(), false, &mut found)?;
    let mut seen = std::collections::HashSet::new();
    for header in &found {
        if !seen.insert(header.name.to_ascii_lowercase()) {
            return Err(format!("x-mcp-header {:?} is used twice", header.name));
        }
    }
    Ok(found)
}

fn visit(
    node: &Value,
    path: &mut Vec<String>,
    is_property: bool,
    found: &mut Vec<ParamHeader>,
) -> Result<(), String> {
    match node {
        Value::Object(map) => {
            if let Some(name) = map.get("x-mcp-header") {
                if !is_property {
                    return Err("x-mcp-header outside a property".into());
                }
                let Some(name) = name.as_str().filter(|n| !n.is_empty()) else {
                    return Err("x-mcp-header must be a non-empty string".into());
                };
                if !name.bytes().all(is_token_char) {
                    return Err(format!("x-mcp-header {name:?} is not an HTTP token"));
                }
                let primitive = matches!(
                    map.get("type").and_then(Value::as_str),
                    Some("string" | "integer" | "boolean")
                );
                if !primitive {
                    return Err(format!(
                        "x-mcp-header {name:?} is on a property that is not a string, integer or boolean"
                    ));
                }
                found.push(ParamHeader {
                    name: name.to_string(),
                    path: path.clone(),
                });
            }
            for (key, value) in map {
                match (key.as_str(), value) {
                    // Only a chain of `properties` reaches a mirrored argument.
                    ("properties", Value::Object(properties)) if is_property || path.is_empty() => {
                        for (name, schema) in properties {
                            path.push(name.clone());
                            visit(schema, path, true, found)?;
                            path.pop();
                        }
                    }
                    ("x-mcp-header", _) => {}
                    _ => visit(value, &mut Vec::new(), false, found)?,
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| visit(item, &mut Vec::new(), false, found)),
        _ => Ok(()),
    }
}

/// RFC 9110 `tchar`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The headers for one call's `arguments`: a value that is absent, null or
/// not a primitive is left out.
pub fn values(headers: &[ParamHeader], arguments: &Value) -> Vec<(HeaderName, HeaderValue)> {
    headers
        .iter()
        .filter_map(|header| {
            let mut value = arguments;
            for key in &header.path {
                value = value.get(key)?;
            }
            let text = match value {
                Value::String(text) => encode(text),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                _ => return None,
            };
            let name =
                HeaderName::from_bytes(format!("mcp-param-{}", header.name).as_bytes()).ok()?;
            Some((name, HeaderValue::from_str(&text).ok()?))
        })
        .collect()
}

/// A value as it may go in a header: as it is when it is visible ASCII
/// without surrounding whitespace, else `=?base64?…?=`.
fn encode(text: &str) -> String {
    let plain = text.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && text.trim() == text
        && !text.starts_with("=?base64?");
    if plain {
        text.to_string()
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        format!("=?base64?{encoded}?=")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(properties: Value) -> Value {
        json!({ "type": "object", "properties": properties })
    }

    #[test]
    fn valid_annotations_are_found_and_invalid_ones_refuse_the_tool() {
        let tool = schema(json!({
            "region": { "type": "string", "x-mcp-header": "Region" },
            "priority": { "type": "integer", "x-mcp-header": "Priority" },
            "nested": { "type": "object", "properties": {
                "flag": { "type": "boolean", "x-mcp-header": "Flag" } } },
            "plain": { "type": "number" },
        }));
        let mut found = of_schema(&tool).unwrap();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            found,
            [
                ParamHeader {
                    name: "Flag".into(),
                    path: vec!["nested".into(), "flag".into()]
                },
                ParamHeader {
                    name: "Priority".into(),
                    path: vec!["priority".into()]
                },
                ParamHeader {
                    name: "Region".into(),
                    path: vec!["region".into()]
                },
            ]
        );
        for invalid in [
            json!({ "a": { "type": "string", "x-mcp-header": "" } }),
            json!({ "a": { "type": "object", "x-mcp-header": "A" } }),
            json!({ "a": { "type": "number", "x-mcp-header": "A" } }),
            json!({ "a": { "type": "string", "x-mcp-header": "A" },
                    "b": { "type": "string", "x-mcp-header": "a" } }),
            json!({ "a": { "type": "string", "x-mcp-header": "has space" } }),
            json!({ "a": { "type": "string", "x-mcp-header": "has:colon" } }),
            json!({ "a": { "type": "string", "x-mcp-header": "naïve" } }),
            json!({ "a": { "type": "array", "items": { "type": "string", "x-mcp-header": "A" } } }),
        ] {
            assert!(of_schema(&schema(invalid.clone())).is_err(), "{invalid}");
        }
        assert_eq!(
            of_schema(&schema(json!({ "a": { "type": "string" } }))),
            Ok(vec![])
        );
    }

    #[test]
    fn values_are_mirrored_and_encoded_as_the_transport_says() {
        let headers = of_schema(&schema(json!({
            "region": { "type": "string", "x-mcp-header": "Region" },
            "priority": { "type": "integer", "x-mcp-header": "Priority" },
            "debug": { "type": "boolean", "x-mcp-header": "Debug" },
            "greeting": { "type": "string", "x-mcp-header": "Greeting" },
            "padded": { "type": "string", "x-mcp-header": "Padded" },
            "absent": { "type": "string", "x-mcp-header": "Absent" },
            "nothing": { "type": "string", "x-mcp-header": "Nothing" },
        })))
        .unwrap();
        let arguments = json!({ "region": "us-west1", "priority": 42, "debug": true,
                                "greeting": "Hello, 世界", "padded": " x ", "nothing": null });
        let mut sent: Vec<(String, String)> = values(&headers, &arguments)
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
            .collect();
        sent.sort();
        assert_eq!(
            sent,
            [
                ("mcp-param-debug".to_string(), "true".to_string()),
                (
                    "mcp-param-greeting".to_string(),
                    "=?base64?SGVsbG8sIOS4lueVjA==?=".to_string()
                ),
                (
                    "mcp-param-padded".to_string(),
                    "=?base64?IHgg?=".to_string()
                ),
                ("mcp-param-priority".to_string(), "42".to_string()),
                ("mcp-param-region".to_string(), "us-west1".to_string()),
            ]
        );
    }
}
