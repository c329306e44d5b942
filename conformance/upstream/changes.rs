//! `--list-changed`: lists that change on request, for the suite's
//! `server-stateless` checks that a server declaring `tools.listChanged` /
//! `prompts.listChanged` tells its `subscriptions/listen` streams.
//!
//! The suite mutates the lists through two diagnostic tools,
//! `test_trigger_tool_change` and `test_trigger_prompt_change`: each toggles
//! one extra entry (`test_dynamic_tool`, `test_dynamic_prompt`) and then
//! sends the matching `list_changed` notification to every open listen
//! stream (rmcp's sink drops it where the stream's filter did not ask for
//! it) and, for a 2025 client, to the calling session.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use rmcp::{
    ErrorData,
    model::{CallToolResponse, Prompt, Tool},
    service::{RequestContext, RoleServer, SubscriptionSendError, SubscriptionSink},
};

use crate::tools::{no_arguments, text_result};

pub(crate) const TRIGGER_TOOL_CHANGE: &str = "test_trigger_tool_change";
pub(crate) const TRIGGER_PROMPT_CHANGE: &str = "test_trigger_prompt_change";
const DYNAMIC_TOOL: &str = "test_dynamic_tool";
pub(crate) const DYNAMIC_PROMPT: &str = "test_dynamic_prompt";

/// What changes, and who is told.
#[derive(Default)]
pub(crate) struct ListChanges {
    /// `--list-changed` was given: the capabilities are declared and the
    /// trigger tools listed.
    pub(crate) enabled: bool,
    dynamic_tool: AtomicBool,
    dynamic_prompt: AtomicBool,
    next_listener: AtomicU64,
    /// Open `subscriptions/listen` streams of every session.
    listeners: Mutex<HashMap<u64, SubscriptionSink>>,
}

enum Change {
    Tools,
    Prompts,
}

impl ListChanges {
    pub(crate) fn new(enabled: bool) -> Self {
        ListChanges {
            enabled,
            ..ListChanges::default()
        }
    }

    /// The tools to list besides the fixed ones.
    pub(crate) fn tools(&self) -> Vec<Tool> {
        if !self.enabled {
            return Vec::new();
        }
        let mut tools = vec![
            Tool::new(
                TRIGGER_TOOL_CHANGE,
                "Adds or removes test_dynamic_tool, then sends tools/list_changed",
                no_arguments(),
            ),
            Tool::new(
                TRIGGER_PROMPT_CHANGE,
                "Adds or removes test_dynamic_prompt, then sends prompts/list_changed",
                no_arguments(),
            ),
        ];
        if self.dynamic_tool.load(Ordering::SeqCst) {
            tools.push(Tool::new(
                DYNAMIC_TOOL,
                "Listed between two calls of test_trigger_tool_change",
                no_arguments(),
            ));
        }
        tools
    }

    /// The prompts to list besides the fixed ones.
    pub(crate) fn prompts(&self) -> Vec<Prompt> {
        if self.enabled && self.dynamic_prompt.load(Ordering::SeqCst) {
            vec![Prompt::new(
                DYNAMIC_PROMPT,
                Some("Listed between two calls of test_trigger_prompt_change"),
                None,
            )]
        } else {
            Vec::new()
        }
    }

    /// Holds a listen stream's sink until the stream ends.
    pub(crate) async fn listen(&self, sink: SubscriptionSink, ended: impl Future<Output = ()>) {
        let key = self.next_listener.fetch_add(1, Ordering::SeqCst);
        self.listeners
            .lock()
            .expect("listeners lock")
            .insert(key, sink);
        ended.await;
        self.listeners.lock().expect("listeners lock").remove(&key);
    }

    /// `tools/call` of one of the tools above; `None` for any other name.
    pub(crate) async fn call(
        &self,
        name: &str,
        context: &RequestContext<RoleServer>,
    ) -> Option<Result<CallToolResponse, ErrorData>> {
        if !self.enabled {
            return None;
        }
        let change = match name {
            TRIGGER_TOOL_CHANGE => {
                self.dynamic_tool.fetch_xor(true, Ordering::SeqCst);
                Change::Tools
            }
            TRIGGER_PROMPT_CHANGE => {
                self.dynamic_prompt.fetch_xor(true, Ordering::SeqCst);
                Change::Prompts
            }
            DYNAMIC_TOOL if self.dynamic_tool.load(Ordering::SeqCst) => {
                return Some(Ok(text_result("dynamic tool ok")));
            }
            _ => return None,
        };
        self.announce(&change, context).await;
        Some(Ok(text_result(match change {
            Change::Tools => "tool list changed",
            Change::Prompts => "prompt list changed",
        })))
    }

    async fn announce(&self, change: &Change, context: &RequestContext<RoleServer>) {
        let sinks: Vec<SubscriptionSink> = self
            .listeners
            .lock()
            .expect("listeners lock")
            .values()
            .cloned()
            .collect();
        for sink in sinks {
            let sent = match change {
                Change::Tools => sink.notify_tool_list_changed().await,
                Change::Prompts => sink.notify_prompt_list_changed().await,
            };
            match sent {
                Ok(()) | Err(SubscriptionSendError::NotificationNotAccepted(_)) => {}
                Err(error) => tracing::debug!(%error, "list_changed not sent to a listener"),
            }
        }
        // A 2025 session has no listen stream: it is told on its own.
        if !crate::server::is_2026_or_later(context) {
            let sent = match change {
                Change::Tools => context.peer.notify_tool_list_changed().await,
                Change::Prompts => context.peer.notify_prompt_list_changed().await,
            };
            if let Err(error) = sent {
                tracing::debug!(%error, "list_changed not sent to the session");
            }
        }
    }
}
