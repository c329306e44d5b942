//! Server-Sent Events framing: an incremental decoder for upstream streams
//! and the encoder for client streams. Only what MCP uses: `data`, `event`,
//! `id` fields and comments.

use bytes::{Bytes, BytesMut};

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

/// Feeds bytes in, takes whole events out. Tolerates `\n`, `\r\n` and `\r`
/// line endings and chunk boundaries anywhere, as the SSE spec requires.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: BytesMut,
    current: Event,
    has_data: bool,
    /// The stream's last event id, set by any `id:` field (an event with
    /// no data included, as the priming event of a resumable stream is).
    last_event_id: Option<String>,
    /// The reconnection delay the server asked for (`retry:`), in ms.
    retry_ms: Option<u64>,
}

/// Bound on one unterminated line, so a hostile upstream cannot make the
/// gateway buffer without limit.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("event stream line longer than {MAX_LINE} bytes")]
pub struct LineTooLong;

impl Decoder {
    /// Where to resume this stream from (`Last-Event-ID`).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// How long to wait before resuming, if the server said.
    pub fn retry(&self) -> Option<std::time::Duration> {
        self.retry_ms.map(std::time::Duration::from_millis)
    }

    /// Starts on the stream that resumes this one: what was half-read is
    /// dropped; the last event id and the delay are kept.
    pub fn resume(&mut self) {
        self.buffer.clear();
        self.current = Event::default();
        self.has_data = false;
    }

    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), LineTooLong> {
        self.buffer.extend_from_slice(chunk);
        loop {
            let Some(end) = self.buffer.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if self.buffer.len() > MAX_LINE {
                    return Err(LineTooLong);
                }
                return Ok(());
            };
            // A lone `\r` at the end of the buffer may be the first half of `\r\n`.
            if self.buffer[end] == b'\r' && end + 1 == self.buffer.len() {
                return Ok(());
            }
            let skip = if self.buffer[end] == b'\r' && self.buffer.get(end + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            let line = self.buffer.split_to(end);
            let _ = self.buffer.split_to(skip);
            self.line(&line, out);
        }
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data {
                out.push(std::mem::take(&mut self.current));
            } else {
                self.current = Event::default();
            }
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return; // comment (keep-alive)
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let value = &text[i + 1..];
                (&text[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&*text, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.current.event = Some(value.to_string()),
            "id" if !value.contains('\0') => {
                self.current.id = Some(value.to_string());
                self.last_event_id = Some(value.to_string());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry_ms = value.parse().ok();
            }
            _ => {}
        }
    }
}

/// Frames one JSON message as a `message` event. Multi-line payloads (a
/// pretty-printed upstream body) become several `data:` lines, as the
/// format requires.
pub fn encode_message(json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(json.len() + 24);
    out.extend_from_slice(b"event: message\n");
    for line in json.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
    out.freeze()
}

/// A comment line: keeps idle connections (and the proxies between) open.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_chunks(input: &[u8], chunk: usize) -> Vec<Event> {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            decoder.push(piece, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn decodes_across_any_chunking_and_line_endings() {
        let input = b": ping\r\n\r\nevent: message\r\nid: 7\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata:x\n\nretry: 5\n\n";
        for chunk in 1..input.len() {
            let events = decode_in_chunks(input, chunk);
            assert_eq!(events.len(), 2, "chunk size {chunk}");
            assert_eq!(events[0].data, "{\"a\":\n1}");
            assert_eq!(events[0].id.as_deref(), Some("7"));
            assert_eq!(events[0].event.as_deref(), Some("message"));
            assert_eq!(events[1].data, "x");
        }
    }

    #[test]
    fn encoding_round_trips_multiline_json() {
        let json = b"{\n  \"a\": 1\n}";
        let events = decode_in_chunks(&encode_message(json), 3);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.as_bytes(), json);
    }

    #[test]
    fn keeps_where_to_resume_from_even_without_data() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        // A priming event (an id, no data), then the server's retry delay.
        decoder
            .push(b"id: 42\ndata\n\nretry: 500\n\nid: 43\n", &mut out)
            .unwrap();
        assert_eq!(decoder.last_event_id(), Some("43"));
        assert_eq!(decoder.retry(), Some(std::time::Duration::from_millis(500)));
        decoder.push(b"retry: soon\n\n", &mut out).unwrap();
        assert_eq!(decoder.retry(), Some(std::time::Duration::from_millis(500)));
        decoder.resume();
        decoder.push(b"data: {}\n\n", &mut out).unwrap();
        assert_eq!(out.last().map(|e| e.data.as_str()), Some("{}"));
        assert_eq!(decoder.last_event_id(), Some("43"));
    }

    #[test]
    fn refuses_an_endless_line() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let big = vec![b'a'; MAX_LINE + 1];
        assert_eq!(decoder.push(&big, &mut out), Err(LineTooLong));
    }
}
