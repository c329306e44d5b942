//! The merged catalog: an immutable snapshot of every ready upstream's
//! tools, prompts and resources, with the indexes that route calls.
//!
//! Snapshots are built from scratch (a pure function of the upstream
//! listings), swapped in behind an atomic pointer by the pool, and read
//! without locks. Building one pre-serialises every exposed definition so
//! that `tools/list` is a concatenation, not a serialisation.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::protocol::param_headers::{self, ParamHeader};

/// What one upstream currently offers, as fetched from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The capabilities the upstream declared (discover or initialize).
    pub capabilities: Value,
    pub tools: Vec<Value>,
    pub prompts: Vec<Value>,
    pub resources: Vec<Value>,
    pub resource_templates: Vec<Value>,
}

/// The input for one upstream: its identity and, when it is ready, its listing.
#[derive(Debug, Clone)]
pub struct ServerInput {
    pub name: Arc<str>,
    pub prefix: Arc<str>,
    pub listing: Option<Arc<Listing>>,
}

/// One exposed item (tool or prompt) and where it goes.
#[derive(Debug)]
pub struct Entry {
    /// Index into [`Catalog::servers`].
    pub server: usize,
    /// The name the upstream knows.
    pub original: Arc<str>,
    /// The prefixed name clients see (and authorization rules match).
    pub exposed: Arc<str>,
    /// The definition as exposed on the aggregated endpoint (prefixed name),
    /// already serialised.
    pub exposed_json: Box<str>,
    /// The definition as the upstream gave it, serialised, for
    /// `/servers/{name}/mcp`.
    pub original_json: Box<str>,
    /// A tool's arguments mirrored into `Mcp-Param-*` headers (`None` for
    /// almost every tool: those without `x-mcp-header`).
    pub param_headers: Option<Arc<[ParamHeader]>>,
}

/// One server's part of the snapshot.
#[derive(Debug)]
pub struct Server {
    pub name: Arc<str>,
    pub prefix: Arc<str>,
    /// `None` while the upstream is not ready: its items are absent.
    pub listing: Option<Arc<Listing>>,
    /// Ranges into the catalog's entry vectors.
    tools: std::ops::Range<usize>,
    prompts: std::ops::Range<usize>,
}

/// Which lists differ between two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
}

impl Changes {
    pub fn any(self) -> bool {
        self.tools || self.prompts || self.resources
    }

    /// What differs between a scope of one snapshot and a scope of another
    /// (`None`: the scope does not exist there, so it lists nothing).
    fn between<'a>(
        old: &'a Catalog,
        old_scope: Option<Scope<'a>>,
        new: &'a Catalog,
        new_scope: Option<Scope<'a>>,
    ) -> Changes {
        // Compared in place: a rebuild must not copy every definition.
        let named_differ = |prompts: bool| {
            let old = old_scope.into_iter().flat_map(|s| old.named(prompts, s));
            let new = new_scope.into_iter().flat_map(|s| new.named(prompts, s));
            !old.eq(new)
        };
        let resources_differ = |templates: bool| {
            let old = old_scope
                .map(|s| old.resources(s, templates, None))
                .unwrap_or_default();
            let new = new_scope
                .map(|s| new.resources(s, templates, None))
                .unwrap_or_default();
            old != new
        };
        Changes {
            tools: named_differ(false),
            prompts: named_differ(true),
            resources: resources_differ(false) || resources_differ(true),
        }
    }
}

/// Everything a rebuild changed: on `/mcp`, and per server endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogChange {
    pub aggregate: Changes,
    pub servers: HashMap<Arc<str>, Changes>,
}

impl CatalogChange {
    pub fn any(&self) -> bool {
        self.aggregate.any() || self.servers.values().any(|c| c.any())
    }

    /// Adds what `other` says changed.
    pub fn absorb(&mut self, other: CatalogChange) {
        let or = |into: &mut Changes, from: Changes| {
            into.tools |= from.tools;
            into.prompts |= from.prompts;
            into.resources |= from.resources;
        };
        or(&mut self.aggregate, other.aggregate);
        for (server, changes) in other.servers {
            or(self.servers.entry(server).or_default(), changes);
        }
    }

    /// The changes seen on one endpoint (`None`: the aggregated one).
    pub fn for_scope(&self, scope: Option<&str>) -> Changes {
        match scope {
            None => self.aggregate,
            Some(name) => self.servers.get(name).copied().unwrap_or_default(),
        }
    }
}

/// What a list request covers: everything, or one server unprefixed.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Aggregate,
    Server(&'a Server),
}

/// Which resources (or templates) of a server a caller may see.
pub type ResourceFilter<'f> = &'f dyn Fn(&Server, &Value) -> bool;

/// A page of serialised definitions and the cursor of the next page.
pub struct Page<'a> {
    pub items: Vec<&'a str>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    /// Servers in name order: the order of every merged list.
    pub servers: Vec<Server>,
    server_index: HashMap<Arc<str>, usize>,
    tools: Vec<Entry>,
    tool_index: HashMap<Arc<str>, usize>,
    prompts: Vec<Entry>,
    prompt_index: HashMap<Arc<str>, usize>,
    /// Resource URI → server; the first server (in name order) wins a
    /// collision, which is reported in `collisions`.
    resource_index: HashMap<String, usize>,
    /// Human-readable problems found while building (URI collisions).
    pub collisions: Vec<String>,
}

/// Largest page of a merged list; clients follow `nextCursor` for the rest.
pub const PAGE_SIZE: usize = 1000;

impl Catalog {
    pub fn build(mut inputs: Vec<ServerInput>) -> Catalog {
        inputs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut catalog = Catalog::default();
        for (server_idx, input) in inputs.into_iter().enumerate() {
            let tools_start = catalog.tools.len();
            let prompts_start = catalog.prompts.len();
            if let Some(listing) = &input.listing {
                // A client must not list a tool with invalid x-mcp-header
                // annotations (2026-07-28); nor does the gateway, as one.
                let mut excluded = Vec::new();
                add_named(
                    &mut catalog.tools,
                    &mut catalog.tool_index,
                    &listing.tools,
                    server_idx,
                    &input.prefix,
                    Some(&mut excluded),
                );
                for (tool, why) in excluded {
                    catalog
                        .collisions
                        .push(format!("tool {tool} of {} is left out: {why}", input.name));
                }
                add_named(
                    &mut catalog.prompts,
                    &mut catalog.prompt_index,
                    &listing.prompts,
                    server_idx,
                    &input.prefix,
                    None,
                );
                for resource in &listing.resources {
                    let Some(uri) = resource.get("uri").and_then(Value::as_str) else {
                        continue;
                    };
                    if let Some(&first) = catalog.resource_index.get(uri) {
                        let first: &Server = &catalog.servers[first];
                        catalog.collisions.push(format!(
                            "resource {uri} is served by both {} and {}; {} keeps it",
                            first.name, input.name, first.name
                        ));
                    } else {
                        catalog.resource_index.insert(uri.to_string(), server_idx);
                    }
                }
            }
            catalog.server_index.insert(input.name.clone(), server_idx);
            catalog.servers.push(Server {
                name: input.name,
                prefix: input.prefix,
                listing: input.listing,
                tools: tools_start..catalog.tools.len(),
                prompts: prompts_start..catalog.prompts.len(),
            });
        }
        catalog
    }

    pub fn server(&self, name: &str) -> Option<&Server> {
        self.server_index.get(name).map(|&i| &self.servers[i])
    }

    /// Routes an exposed tool name: one hash lookup, whatever the size.
    pub fn tool(&self, exposed: &str) -> Option<(&Server, &Entry)> {
        let entry = &self.tools[*self.tool_index.get(exposed)?];
        Some((&self.servers[entry.server], entry))
    }

    pub fn prompt(&self, exposed: &str) -> Option<(&Server, &Entry)> {
        let entry = &self.prompts[*self.prompt_index.get(exposed)?];
        Some((&self.servers[entry.server], entry))
    }

    /// The server for a resource URI: an exact listed URI first, then the
    /// longest literal prefix of a resource template.
    pub fn resource_server(&self, uri: &str) -> Option<&Server> {
        if let Some(&i) = self.resource_index.get(uri) {
            return Some(&self.servers[i]);
        }
        let mut best: Option<(usize, &Server)> = None;
        for server in &self.servers {
            let Some(listing) = &server.listing else {
                continue;
            };
            for template in &listing.resource_templates {
                let Some(pattern) = template.get("uriTemplate").and_then(Value::as_str) else {
                    continue;
                };
                let literal = &pattern[..pattern.find('{').unwrap_or(pattern.len())];
                if uri.starts_with(literal) && best.is_none_or(|(len, _)| literal.len() > len) {
                    best = Some((literal.len(), server));
                }
            }
        }
        best.map(|(_, server)| server)
    }

    /// A page of tools; `visible` (by exposed name) filters it for a
    /// caller whose authorization does not cover everything.
    pub fn tools_page<'a>(
        &'a self,
        scope: Scope<'a>,
        cursor: Option<&str>,
        visible: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<Page<'a>, BadCursor> {
        self.page(&self.tools, scope, |s| s.tools.clone(), cursor, visible)
    }

    pub fn prompts_page<'a>(
        &'a self,
        scope: Scope<'a>,
        cursor: Option<&str>,
        visible: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<Page<'a>, BadCursor> {
        self.page(&self.prompts, scope, |s| s.prompts.clone(), cursor, visible)
    }

    /// The tool or prompt `original` of `server`, as the catalog has it.
    pub fn entry_of(&self, server: &Server, prompt: bool, original: &str) -> Option<&Entry> {
        let exposed = format!("{}{original}", server.prefix);
        let (found, entry) = if prompt {
            self.prompt(&exposed)?
        } else {
            self.tool(&exposed)?
        };
        // Another server's prefix may end where this one's name begins.
        (found.name == server.name).then_some(entry)
    }

    /// Resources and templates are not renamed: the merged list is the
    /// concatenation in server order (one page; upstream lists are small).
    /// `visible` (the item's server, the item) filters it for a caller
    /// whose authorization does not cover everything.
    pub fn resources<'a>(
        &'a self,
        scope: Scope<'a>,
        templates: bool,
        visible: Option<ResourceFilter<'_>>,
    ) -> Vec<&'a Value> {
        let servers = match scope {
            Scope::Server(server) => std::slice::from_ref(server),
            Scope::Aggregate => &self.servers[..],
        };
        let mut items = Vec::new();
        for server in servers {
            let Some(listing) = server.listing.as_deref() else {
                continue;
            };
            let list = if templates {
                &listing.resource_templates
            } else {
                &listing.resources
            };
            items.extend(
                list.iter()
                    .filter(|item| visible.is_none_or(|visible| visible(server, item))),
            );
        }
        items
    }

    /// Pages by position in the (deterministic) merged order. The cursor
    /// names the offset; a cursor from an older snapshot still pages
    /// forward, which at worst repeats or skips items around a change that
    /// `list_changed` announces anyway.
    fn page<'a>(
        &'a self,
        entries: &'a [Entry],
        scope: Scope<'a>,
        range_of: impl Fn(&Server) -> std::ops::Range<usize>,
        cursor: Option<&str>,
        visible: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<Page<'a>, BadCursor> {
        let (range, exposed) = match scope {
            Scope::Aggregate => (0..entries.len(), true),
            Scope::Server(server) => (range_of(server), false),
        };
        let offset = match cursor {
            None => 0,
            Some(c) => c.parse::<usize>().map_err(|_| BadCursor)?,
        };
        if offset > range.len() {
            return Err(BadCursor);
        }
        let start = range.start + offset;
        let serialised = |e: &'a Entry| {
            if exposed {
                &*e.exposed_json
            } else {
                &*e.original_json
            }
        };
        let Some(visible) = visible else {
            let end = (start + PAGE_SIZE).min(range.end);
            let items = entries[start..end].iter().map(serialised).collect();
            let next_cursor = (end < range.end).then(|| (end - range.start).to_string());
            return Ok(Page { items, next_cursor });
        };
        // Filtered: the cursor still counts positions in the whole list.
        let mut items = Vec::new();
        let mut end = start;
        while end < range.end && items.len() < PAGE_SIZE {
            let entry = &entries[end];
            if visible(&entry.exposed) {
                items.push(serialised(entry));
            }
            end += 1;
        }
        let next_cursor = (end < range.end).then(|| (end - range.start).to_string());
        Ok(Page { items, next_cursor })
    }

    /// Compares two snapshots list by list, on what a client would see:
    /// on the aggregated endpoint and on each server's own endpoint.
    pub fn diff(&self, newer: &Catalog) -> CatalogChange {
        let mut servers = HashMap::new();
        let names = self.servers.iter().chain(&newer.servers).map(|s| &s.name);
        for name in names {
            if servers.contains_key(name) {
                continue;
            }
            let old = self.server(name).map(Scope::Server);
            let new = newer.server(name).map(Scope::Server);
            let changes = Changes::between(self, old, newer, new);
            servers.insert(name.clone(), changes);
        }
        CatalogChange {
            aggregate: Changes::between(
                self,
                Some(Scope::Aggregate),
                newer,
                Some(Scope::Aggregate),
            ),
            servers,
        }
    }

    /// The tools or prompts a scope lists, serialised as that scope shows them.
    fn named<'a>(&'a self, prompts: bool, scope: Scope<'a>) -> impl Iterator<Item = &'a str> {
        let entries = if prompts { &self.prompts } else { &self.tools };
        let (range, exposed) = match scope {
            Scope::Aggregate => (0..entries.len(), true),
            Scope::Server(server) => {
                let range = if prompts {
                    server.prompts.clone()
                } else {
                    server.tools.clone()
                };
                (range, false)
            }
        };
        entries[range].iter().map(move |e| {
            if exposed {
                &*e.exposed_json
            } else {
                &*e.original_json
            }
        })
    }

    /// Whether some ready upstream takes resource subscriptions.
    pub fn offers_resource_subscriptions(&self) -> bool {
        self.servers
            .iter()
            .filter_map(|s| s.listing.as_ref())
            .any(|l| l.capabilities.pointer("/resources/subscribe") == Some(&Value::Bool(true)))
    }

    /// What the aggregated endpoint offers: the three merged lists (with
    /// change notifications), plus completions and logging when some ready
    /// upstream offers them, and what the ready upstreams offer of tasks
    /// and extensions, merged (task ids route back by prefix; an
    /// extension's requests go to the upstreams that offer it).
    pub fn aggregate_capabilities(&self) -> Value {
        let mut capabilities = serde_json::json!({
            "tools": { "listChanged": true },
            "prompts": { "listChanged": true },
            "resources": { "listChanged": true },
        });
        let offered: Vec<&Value> = self
            .servers
            .iter()
            .filter_map(|s| s.listing.as_ref())
            .map(|l| &l.capabilities)
            .collect();
        for optional in ["completions", "logging"] {
            if offered.iter().any(|c| c.get(optional).is_some()) {
                capabilities[optional] = serde_json::json!({});
            }
        }
        for merged in ["tasks", "extensions"] {
            for upstream in offered.iter().filter_map(|c| c.get(merged)) {
                merge_into(&mut capabilities[merged], upstream);
            }
        }
        capabilities
    }
}

/// Adds what `from` offers to `into`: objects key by key, anything else
/// as `from` has it when `into` has nothing there yet.
fn merge_into(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                merge_into(into.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (into @ Value::Null, from) => *into = from.clone(),
        _ => {}
    }
}

/// A `cursor` the gateway did not issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadCursor;

/// Adds a server's named items in name order, prefixed. Tools (with
/// `excluded`) have their `x-mcp-header` annotations read; one whose are
/// invalid is left out, and named in `excluded` with why.
fn add_named(
    entries: &mut Vec<Entry>,
    index: &mut HashMap<Arc<str>, usize>,
    items: &[Value],
    server: usize,
    prefix: &str,
    mut excluded: Option<&mut Vec<(String, String)>>,
) {
    let mut named: Vec<(&str, &Value)> = items
        .iter()
        .filter_map(|item| Some((item.get("name")?.as_str()?, item)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    named.dedup_by(|a, b| a.0 == b.0);
    for (name, item) in named {
        let mut param_headers = None;
        if let Some(excluded) = excluded.as_deref_mut() {
            match param_headers::of_schema(item.get("inputSchema").unwrap_or(&Value::Null)) {
                Ok(found) if found.is_empty() => {}
                Ok(found) => param_headers = Some(Arc::from(found)),
                Err(why) => {
                    excluded.push((name.to_string(), why));
                    continue;
                }
            }
        }
        let exposed_name: Arc<str> = Arc::from(format!("{prefix}{name}"));
        let mut exposed = item.clone();
        exposed["name"] = Value::String(exposed_name.to_string());
        index.insert(exposed_name.clone(), entries.len());
        entries.push(Entry {
            server,
            original: Arc::from(name),
            exposed: exposed_name,
            exposed_json: exposed.to_string().into_boxed_str(),
            original_json: item.to_string().into_boxed_str(),
            param_headers,
        });
    }
}

#[cfg(test)]
mod tests;
