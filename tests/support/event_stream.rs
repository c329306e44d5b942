//! An event stream (SSE) read event by event, for long-lived responses.

use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::Value;

use super::http_client::send;

/// A response read event by event, for long-lived streams.
pub struct EventStream {
    body: hyper::body::Incoming,
    decoder: Vec<u8>,
    pub status: u16,
}

impl EventStream {
    /// Sends a request and returns its (unfinished) response.
    pub async fn open(
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> EventStream {
        let response = send(method, url, headers, body).await;
        EventStream {
            status: response.status().as_u16(),
            body: response.into_body(),
            decoder: Vec::new(),
        }
    }

    /// The next JSON message on the stream, or `None` if none comes within
    /// `wait` (comments and keep-alives are skipped).
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let (_, data) = self.next_event(wait).await?;
        serde_json::from_str(&data).ok()
    }

    /// Whether the server ends the stream within `wait` (events before the
    /// end are skipped).
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next event with data: its `event` name and its data.
    pub async fn next_event(&mut self, wait: Duration) -> Option<(Option<String>, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = find_event_end(&self.decoder) {
                let event: Vec<u8> = self.decoder.drain(..end).collect();
                let text = String::from_utf8_lossy(&event);
                let data: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                    .collect();
                let name = text
                    .lines()
                    .find_map(|l| l.strip_prefix("event:"))
                    .map(|n| n.trim().to_string());
                if !data.is_empty() {
                    return Some((name, data.join("\n")));
                }
                continue;
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.decoder.extend_from_slice(&data);
            }
        }
    }
}

/// The end (past the blank line) of the first complete event in `buffer`.
fn find_event_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}
