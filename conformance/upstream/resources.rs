//! The resources: the static ones, the `test://template/{id}/data`
//! template, and what reading each returns. Subscriptions are only tracked
//! (`server`): nothing here changes.

use rmcp::model::{Resource, ResourceContents, ResourceTemplate};
use serde_json::json;

use crate::RED_PIXEL_PNG;

/// What `resources/list` lists.
pub(crate) fn resources() -> Vec<Resource> {
    vec![
        Resource::new("test://static-text", "static-text")
            .with_description("A static text resource")
            .with_mime_type("text/plain"),
        Resource::new("test://static-binary", "static-binary")
            .with_description("A static binary resource (1x1 PNG)")
            .with_mime_type("image/png"),
        Resource::new("test://watched-resource", "watched-resource")
            .with_description("A resource that can be subscribed to")
            .with_mime_type("text/plain"),
    ]
}

/// What `resources/templates/list` lists.
pub(crate) fn resource_templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("test://template/{id}/data", "template-data")
            .with_description("JSON data for the given id")
            .with_mime_type("application/json"),
    ]
}

const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

pub(crate) fn read(uri: &str) -> Option<ResourceContents> {
    let text = |mime: &str, text: String| ResourceContents::TextResourceContents {
        uri: uri.to_string(),
        mime_type: Some(mime.to_string()),
        text,
        meta: None,
    };
    match uri {
        "test://static-text" => Some(text(
            "text/plain",
            "This is the content of the static text resource.".into(),
        )),
        "test://static-binary" => {
            Some(ResourceContents::blob(RED_PIXEL_PNG, uri).with_mime_type("image/png"))
        }
        "test://watched-resource" => Some(text(
            "text/plain",
            "This resource is watched for updates.".into(),
        )),
        _ => {
            // test://template/{id}/data
            let id = uri
                .strip_prefix(TEMPLATE_PREFIX)?
                .strip_suffix(TEMPLATE_SUFFIX)
                .filter(|id| !id.is_empty() && !id.contains('/'))?;
            let body =
                json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
            Some(text("application/json", body.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn template_reads_substitute_the_id() {
        let Some(ResourceContents::TextResourceContents { text, .. }) =
            read("test://template/123/data")
        else {
            panic!("template did not resolve");
        };
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({ "id": "123", "templateTest": true, "data": "Data for ID: 123" })
        );
        assert!(read("test://template//data").is_none());
        assert!(read("test://nothing").is_none());
    }
}
