//! What changes in a result on its way back: shapes bridged between eras
//! (what a 2026-07-28 client requires of a 2025 upstream's result —
//! `resultType`, caching hints, error codes — and what a 2025 client must
//! not see of a 2026 upstream's), and task ids prefixed on `/mcp`.

use std::sync::Arc;

use serde_json::Value;

use crate::jsonrpc::{self, RpcError};

/// The code 2025-era servers answer an unknown resource with.
const LEGACY_RESOURCE_NOT_FOUND: i64 = -32002;

/// What a result needs on its way back; nothing, for most.
pub(super) struct Adapt {
    pub(super) client_modern: bool,
    pub(super) upstream_modern: bool,
    /// The method's 2026-07-28 result is a `CacheableResult`.
    pub(super) cacheable: bool,
    /// The upstream's prefix, for task ids in what comes back (on `/mcp`,
    /// for the answers that may hold them: see [`super::tasks`]).
    pub(super) task_prefix: Option<Arc<str>>,
}

impl Adapt {
    pub(super) fn needed(&self) -> bool {
        self.eras_differ() || self.task_prefix.is_some()
    }

    fn eras_differ(&self) -> bool {
        self.client_modern != self.upstream_modern
    }

    pub(super) fn apply(&self, response: &mut Value) {
        if let Some(prefix) = &self.task_prefix {
            super::tasks::prefix_ids(response, prefix);
        }
        if !self.eras_differ() {
            return;
        }
        // 2025's "resource not found" (-32002) is -32602 in 2026-07-28
        // (SEP-2164).
        if self.client_modern
            && let Some(code) = response.pointer_mut("/error/code")
            && *code == LEGACY_RESOURCE_NOT_FOUND
        {
            *code = jsonrpc::INVALID_PARAMS.into();
        }
        let Some(result) = response.get_mut("result").and_then(Value::as_object_mut) else {
            return;
        };
        if self.client_modern {
            result
                .entry("resultType")
                .or_insert_with(|| "complete".into());
            if self.cacheable {
                // 2026-07-28 requires caching hints a 2025 upstream never
                // gives: the safe ones are "stale at once, for this
                // caller only".
                result.entry("ttlMs").or_insert_with(|| 0.into());
                result
                    .entry("cacheScope")
                    .or_insert_with(|| "private".into());
            }
        } else if result.get("resultType").and_then(Value::as_str) == Some("input_required") {
            // Reached only when the input could not be bridged.
            let error = RpcError::new(
                jsonrpc::INTERNAL_ERROR,
                "the upstream asked for client input (2026-07-28 InputRequiredResult) \
                 that this session cannot answer",
            );
            let id = response.get("id").cloned();
            *response = error.response(id.as_ref());
        } else {
            // A 2025 client knows nothing of 2026-07-28's fields; keep
            // results tidy for strict clients.
            result.remove("resultType");
            if self.cacheable {
                result.remove("ttlMs");
                result.remove("cacheScope");
            }
        }
    }
}
