//! Watches the config file: an edit to the upstreams takes effect without
//! a restart; an invalid edit is logged and the previous config keeps
//! serving.
//!
//! Polling (a read every second, compared byte for byte) rather than
//! inotify: it sees every way a file can be replaced — editors that write
//! a new file and rename it, Kubernetes ConfigMap symlink swaps — and costs
//! one small read a second.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Config};
use crate::pool::{Origin, Pool};

pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Re-applies the file's upstreams whenever its contents change.
pub async fn watch(path: PathBuf, mut current: Config, pool: Arc<Pool>) {
    let mut last = std::fs::read(&path).ok();
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let contents = match tokio::fs::read(&path).await {
            Ok(contents) => contents,
            Err(error) => {
                // Mid-replacement, or deleted: keep serving what we have.
                if last.is_some() {
                    tracing::warn!(file = %path.display(), "config file unreadable, keeping the previous config: {error}");
                    last = None;
                }
                continue;
            }
        };
        if last.as_deref() == Some(&contents[..]) {
            continue;
        }
        last = Some(contents.clone());
        let text = String::from_utf8_lossy(&contents);
        let file = path.display().to_string();
        let next = match config::parse(&text, &file, &config::process_env) {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(
                    "config change rejected, the previous config keeps serving: {error}"
                );
                continue;
            }
        };
        for (setting, changed) in [
            ("listen", next.listen != current.listen),
            (
                "allowedOrigins",
                next.allowed_origins != current.allowed_origins,
            ),
            (
                "maxBodyBytes",
                next.max_body_bytes != current.max_body_bytes,
            ),
            (
                "sessionIdleTimeout",
                next.session_idle_timeout != current.session_idle_timeout,
            ),
            ("health", next.health != current.health),
            ("sessions", next.sealing != current.sealing),
        ] {
            if changed {
                tracing::warn!(
                    file,
                    setting,
                    "changed in the config file; takes effect on restart"
                );
            }
        }
        tracing::info!(
            file,
            upstreams = next.upstreams.len(),
            "config file changed, applying upstreams"
        );
        pool.apply(Origin::ConfigFile, next.upstreams.clone()).await;
        current = next;
    }
}
