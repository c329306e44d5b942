//! Log and progress notifications: the level a client asked for (2025
//! `logging/setLevel`, 2026-07-28 `_meta`), and the two tools that notify
//! while they run.

use std::time::Duration;

use rmcp::{
    model::{
        CallToolResponse, LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam,
    },
    service::{RequestContext, RoleServer},
};
use serde_json::json;

use crate::server::{Upstream, is_2026_or_later};
use crate::tools::text_result;

/// The pause between the notifications of the logging and progress tools:
/// the suite checks that several notifications arrive during one call.
const STEP: Duration = Duration::from_millis(50);

/// Severity order of the MCP (syslog) levels.
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl Upstream {
    async fn log(&self, context: &RequestContext<RoleServer>, level: LoggingLevel, message: &str) {
        // 2026-07-28 has no logging/setLevel: a request that wants log
        // messages names a level in its _meta, and one that does not gets none.
        let threshold = if is_2026_or_later(context) {
            context.meta.log_level()
        } else {
            Some(*self.log_level.lock().expect("log level lock"))
        };
        if threshold.is_none_or(|threshold| severity(level) < severity(threshold)) {
            return;
        }
        let notification = LoggingMessageNotificationParam::new(level, json!(message))
            .with_logger("conformance-upstream");
        if let Err(error) = context.peer.notify_logging_message(notification).await {
            tracing::debug!(%error, "log notification not delivered");
        }
    }

    pub(crate) async fn run_with_logging(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        self.log(context, LoggingLevel::Info, "Tool execution started")
            .await;
        tokio::time::sleep(STEP).await;
        self.log(context, LoggingLevel::Info, "Tool processing data")
            .await;
        tokio::time::sleep(STEP).await;
        self.log(context, LoggingLevel::Info, "Tool execution completed")
            .await;
        text_result("Tool with logging executed successfully")
    }

    pub(crate) async fn run_with_progress(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let token = context.meta.get_progress_token();
        for (step, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
            if step > 0 {
                tokio::time::sleep(STEP).await;
            }
            if let Some(token) = &token {
                let notification =
                    ProgressNotificationParam::new(token.clone(), progress).with_total(100.0);
                if let Err(error) = context.peer.notify_progress(notification).await {
                    tracing::debug!(%error, "progress notification not delivered");
                }
            }
        }
        text_result("Tool with progress executed successfully")
    }
}
