//! Shared pieces of the tools' output: ages, bounds, truncation notes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::MAX_TEXT_BYTES;

/// "3d4h", "12m", "40s": how long ago `time` was.
pub fn age(time: Option<&Time>) -> String {
    let Some(time) = time else {
        return "?".into();
    };
    let seconds = k8s_openapi::jiff::Timestamp::now()
        .duration_since(time.0)
        .as_secs()
        .max(0);
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    if days > 0 {
        format!("{days}d{hours}h")
    } else if hours > 0 {
        format!("{hours}h{minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m")
    } else {
        format!("{seconds}s")
    }
}

/// Cuts text longer than the bound at a line (or char) boundary, saying so.
pub fn bounded(text: String) -> String {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind('\n').unwrap_or(end);
    format!(
        "{}\n[truncated: {} of {} bytes shown; narrow the request]",
        &text[..cut],
        cut,
        text.len()
    )
}

/// Keeps at most `max` items; returns whether any were dropped.
pub fn cap<T>(items: &mut Vec<T>, max: usize) -> bool {
    let truncated = items.len() > max;
    items.truncate(max);
    truncated
}

/// The line that says a list was cut.
pub fn truncation_note(truncated: bool, max: usize) -> String {
    if truncated {
        format!("\n[truncated: only the first {max} shown; narrow by namespace or selector]")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_line_and_says_so() {
        let line = "x".repeat(99) + "\n";
        let text = line.repeat(1000);
        let cut = bounded(text.clone());
        assert!(cut.len() < MAX_TEXT_BYTES + 100);
        assert!(cut.ends_with("narrow the request]"));
        assert!(cut.starts_with(&line));
        assert_eq!(bounded("short".into()), "short");
    }
}
