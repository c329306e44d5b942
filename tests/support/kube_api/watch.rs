//! Watch streams: newline-delimited events replayed from a
//! resourceVersion (or every object, for a watch from the start), then
//! live, with bookmarks; `410 Gone` for a version older than compaction.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::http::Target;
use super::objects::{fields_match, labels_match};
use super::{Body, Change, KindInfo, Shared, text};

/// A watch: newline-delimited events from `resourceVersion` on.
pub(super) fn watch_stream(
    shared: &Arc<Shared>,
    target: &Target,
    info: &KindInfo,
    params: &HashMap<String, String>,
) -> hyper::Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(256);
    let api_version = target.api_version.clone();
    let kind = info.kind.clone();
    let namespace = target.namespace.clone();
    let labels = params.get("labelSelector").cloned();
    let fields = params.get("fieldSelector").cloned();
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let from: Option<u64> = params
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .and_then(|v| v.parse().ok());
    let matches = move |change: &Change| {
        change.api_version == api_version
            && change.kind == kind
            && namespace.as_ref().is_none_or(|ns| *ns == change.namespace)
            && labels
                .as_ref()
                .is_none_or(|s| labels_match(&change.object, s))
            && fields
                .as_ref()
                .is_none_or(|s| fields_match(&change.object, s))
    };
    let line = |kind_of_event: &str, object: &Value| {
        Ok(Frame::data(Bytes::from(
            json!({"type": kind_of_event, "object": object}).to_string() + "\n",
        )))
    };

    // Under the lock: what to replay, and a subscription so nothing falls
    // between the replay and the live events.
    let mut live = shared.changes.subscribe();
    let mut cut = shared.cut.subscribe();
    let (replay, mut last_rv, expired) = {
        let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        match from {
            Some(rv) if rv < inner.compacted => (Vec::new(), inner.rv, Some(rv)),
            Some(rv) => (
                inner
                    .history
                    .iter()
                    .filter(|c| c.rv > rv && matches(c))
                    .map(|c| line(c.kind_of_event, &c.object))
                    .collect::<Vec<_>>(),
                inner.rv.max(rv),
                None,
            ),
            None => (
                inner
                    .objects
                    .values()
                    .map(|o| Change {
                        rv: 0,
                        api_version: text(o, "/apiVersion"),
                        kind: text(o, "/kind"),
                        namespace: text(o, "/metadata/namespace"),
                        kind_of_event: "ADDED",
                        object: o.clone(),
                    })
                    .filter(|c| matches(c))
                    .map(|c| line("ADDED", &c.object))
                    .collect(),
                inner.rv,
                None,
            ),
        }
    };
    let shared = shared.clone();
    let bookmark_kind = info.kind.clone();
    let bookmark_version = target.api_version.clone();
    tokio::spawn(async move {
        if let Some(rv) = expired {
            let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "reason": "Expired", "code": 410,
                              "message": format!("too old resource version: {rv} ({last_rv})")});
            let _ = tx.send(line("ERROR", &gone)).await;
            return;
        }
        for event in replay {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            let bookmark = tokio::select! {
                change = live.recv() => match change {
                    Ok(change) => {
                        if change.rv > last_rv || change.rv == 0 {
                            last_rv = last_rv.max(change.rv);
                            if matches(&change) && tx.send(line(change.kind_of_event, &change.object)).await.is_err() {
                                return;
                            }
                        }
                        false
                    }
                    // Fell behind: end the watch, as the real server does.
                    Err(_) => return,
                },
                _ = ticker.tick() => true,
                _ = shared.bookmark.notified() => true,
                _ = cut.changed() => return,
                _ = tokio::time::sleep_until(deadline) => return,
            };
            if bookmark && bookmarks {
                let object = json!({"kind": bookmark_kind, "apiVersion": bookmark_version,
                                    "metadata": {"resourceVersion": last_rv.to_string()}});
                if tx.send(line("BOOKMARK", &object)).await.is_err() {
                    return;
                }
            }
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    hyper::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}
