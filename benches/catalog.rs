//! Micro-benchmarks of the catalog snapshot, the part of the request path
//! that grows with the number of upstreams and tools:
//!
//! ```text
//! cargo bench --bench catalog
//! ```
//!
//! - finding the upstream for a prefixed tool name (10 × 5 and 100 × 50
//!   tools: the time must not grow with the catalog);
//! - producing `tools/list` for 5,000 tools (every page);
//! - rebuilding and diffing the catalog after one upstream changed.

use std::sync::Arc;

use divan::{Bencher, black_box};
use serde_json::{Value, json};
use switchboard::catalog::{Catalog, Listing, Scope, ServerInput};
use switchboard::router::list_body;

fn main() {
    divan::main();
}

fn tool(name: &str) -> Value {
    json!({
        "name": name,
        "description": format!("Does {name} for the caller, with a description of realistic length."),
        "inputSchema": { "type": "object", "properties": { "q": { "type": "string" } }, "required": ["q"] },
    })
}

fn inputs(upstreams: usize, tools: usize) -> Vec<ServerInput> {
    (0..upstreams)
        .map(|u| ServerInput {
            name: Arc::from(format!("server{u:03}")),
            prefix: Arc::from(format!("s{u:03}_")),
            listing: Some(Arc::new(Listing {
                tools: (0..tools).map(|t| tool(&format!("tool{t:03}"))).collect(),
                ..Listing::default()
            })),
        })
        .collect()
}

#[divan::bench(args = [(10, 5), (100, 50)])]
fn route_lookup(bencher: Bencher, (upstreams, tools): (usize, usize)) {
    let catalog = Catalog::build(inputs(upstreams, tools));
    let name = format!("s{:03}_tool{:03}", upstreams / 2, tools / 2);
    bencher.bench(|| {
        catalog
            .tool(black_box(&name))
            .map(|(server, _)| server.name.len())
    });
}

#[divan::bench]
fn tools_list_5000_tools_all_pages(bencher: Bencher) {
    let catalog = Catalog::build(inputs(100, 50));
    let id = json!(1);
    bencher.bench(|| {
        let mut cursor: Option<String> = None;
        let mut bytes = 0;
        loop {
            let page = catalog
                .tools_page(Scope::Aggregate, cursor.as_deref(), None)
                .unwrap();
            let body = list_body(&id, "tools", &page.items, page.next_cursor.as_deref(), true);
            bytes += body.len();
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return bytes,
            }
        }
    });
}

#[divan::bench]
fn rebuild_and_diff_after_one_upstream_changed(bencher: Bencher) {
    let before = inputs(100, 50);
    let old = Catalog::build(before.clone());
    let mut after = before;
    let mut changed = (*after[42].listing.clone().unwrap()).clone();
    changed.tools.push(tool("brand_new"));
    after[42].listing = Some(Arc::new(changed));
    bencher
        .with_inputs(|| after.clone())
        .bench_values(|inputs| {
            let new = Catalog::build(inputs);
            old.diff(&new).any()
        });
}
