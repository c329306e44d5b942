//! An upstream served inside the gateway's own process (the cluster
//! tools): it answers JSON-RPC messages as a 2026-07-28 server, with no
//! transport between. The upstream layer knows only this trait, so what
//! implements it may read the layers above (the pool's health) without a
//! cycle.

use futures_util::future::BoxFuture;
use serde_json::Value;

pub trait InProcessServer: Send + Sync {
    /// Answers one message; `None` for notifications. Boxed: an answer may
    /// need Kubernetes API calls whose future is large, and inline it would
    /// make every forwarded request's future that large.
    fn handle<'a>(&'a self, message: &'a Value) -> BoxFuture<'a, Option<Value>>;
}
