use serde_json::json;

use super::*;

fn tool(name: &str) -> Value {
    json!({ "name": name, "description": format!("{name} tool"), "inputSchema": { "type": "object" } })
}

fn server(name: &str, prefix: &str, tools: &[&str]) -> ServerInput {
    ServerInput {
        name: Arc::from(name),
        prefix: Arc::from(prefix),
        listing: Some(Arc::new(Listing {
            tools: tools.iter().map(|t| tool(t)).collect(),
            ..Listing::default()
        })),
    }
}

fn names(page: &Page<'_>) -> Vec<String> {
    page.items
        .iter()
        .map(|item| {
            serde_json::from_str::<Value>(item).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn merges_in_server_then_tool_order_with_prefixes() {
    let catalog = Catalog::build(vec![
        server("zeta", "z_", &["b", "a"]),
        server("alpha", "a_", &["y", "x"]),
    ]);
    let page = catalog.tools_page(Scope::Aggregate, None, None).unwrap();
    assert_eq!(names(&page), ["a_x", "a_y", "z_a", "z_b"]);
    assert!(page.next_cursor.is_none());
}

#[test]
fn routes_by_exposed_name_to_the_original() {
    let catalog = Catalog::build(vec![
        server("weather", "weather_", &["echo"]),
        server("w", "w_", &["x"]),
    ]);
    let (server, entry) = catalog.tool("weather_echo").unwrap();
    assert_eq!(&*server.name, "weather");
    assert_eq!(&*entry.original, "echo");
    assert!(catalog.tool("echo").is_none());
    assert!(catalog.tool("weather_").is_none());
}

#[test]
fn a_server_scope_lists_its_tools_unprefixed() {
    let catalog = Catalog::build(vec![
        server("a", "a_", &["one"]),
        server("b", "b_", &["two"]),
    ]);
    let scope = Scope::Server(catalog.server("b").unwrap());
    assert_eq!(
        names(&catalog.tools_page(scope, None, None).unwrap()),
        ["two"]
    );
}

#[test]
fn a_server_that_is_not_ready_contributes_nothing() {
    let mut down = server("down", "d_", &[]);
    down.listing = None;
    let catalog = Catalog::build(vec![down, server("up", "u_", &["t"])]);
    assert_eq!(
        names(&catalog.tools_page(Scope::Aggregate, None, None).unwrap()),
        ["u_t"]
    );
}

#[test]
fn paginates_with_cursors_it_issued_and_refuses_others() {
    let many: Vec<String> = (0..PAGE_SIZE + 5).map(|i| format!("t{i:05}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let catalog = Catalog::build(vec![server("s", "s_", &refs)]);
    let first = catalog.tools_page(Scope::Aggregate, None, None).unwrap();
    assert_eq!(first.items.len(), PAGE_SIZE);
    let cursor = first.next_cursor.clone().unwrap();
    let second = catalog
        .tools_page(Scope::Aggregate, Some(&cursor), None)
        .unwrap();
    assert_eq!(second.items.len(), 5);
    assert!(second.next_cursor.is_none());
    assert_eq!(names(&second)[0], format!("s_t{:05}", PAGE_SIZE));
    assert!(
        catalog
            .tools_page(Scope::Aggregate, Some("nonsense"), None)
            .is_err()
    );
    assert!(
        catalog
            .tools_page(Scope::Aggregate, Some("999999"), None)
            .is_err()
    );
}

#[test]
fn diff_reports_only_real_changes_per_endpoint() {
    let before = Catalog::build(vec![server("a", "a_", &["x"]), server("b", "b_", &["z"])]);
    let same = Catalog::build(vec![server("a", "a_", &["x"]), server("b", "b_", &["z"])]);
    assert!(!before.diff(&same).any());
    let added = Catalog::build(vec![
        server("a", "a_", &["x", "y"]),
        server("b", "b_", &["z"]),
    ]);
    let change = before.diff(&added);
    let tools_only = Changes {
        tools: true,
        prompts: false,
        resources: false,
    };
    assert_eq!(change.for_scope(None), tools_only);
    assert_eq!(change.for_scope(Some("a")), tools_only);
    assert!(
        !change.for_scope(Some("b")).any(),
        "b's endpoint saw no change"
    );
    let gone = Catalog::build(vec![server("b", "b_", &["z"])]);
    assert!(before.diff(&gone).for_scope(Some("a")).tools);
    // A new prefix changes every exposed name on /mcp but nothing on the
    // server's own endpoint.
    let renamed = Catalog::build(vec![server("a", "new_", &["x"]), server("b", "b_", &["z"])]);
    let change = before.diff(&renamed);
    assert!(change.for_scope(None).tools);
    assert!(!change.for_scope(Some("a")).any());
}

#[test]
fn resources_route_by_uri_and_template_and_report_collisions() {
    let with_resources = |name: &str, uri: &str, template: &str| ServerInput {
        name: Arc::from(name),
        prefix: Arc::from(format!("{name}_")),
        listing: Some(Arc::new(Listing {
            resources: vec![json!({ "uri": uri, "name": uri })],
            resource_templates: vec![json!({ "uriTemplate": template, "name": template })],
            ..Listing::default()
        })),
    };
    let catalog = Catalog::build(vec![
        with_resources("a", "file:///shared", "a://items/{id}"),
        with_resources("b", "file:///shared", "a://items/special/{id}"),
    ]);
    assert_eq!(
        &*catalog.resource_server("file:///shared").unwrap().name,
        "a"
    );
    assert_eq!(catalog.collisions.len(), 1);
    assert_eq!(&*catalog.resource_server("a://items/7").unwrap().name, "a");
    assert_eq!(
        &*catalog.resource_server("a://items/special/7").unwrap().name,
        "b"
    );
    assert!(catalog.resource_server("z://nothing").is_none());
}

#[test]
fn aggregate_capabilities_are_the_union_of_what_is_ready() {
    let mut with_completions = server("a", "a_", &["x"]);
    with_completions.listing = Some(Arc::new(Listing {
        capabilities: json!({ "tools": {}, "completions": {} }),
        ..Listing::default()
    }));
    let plain = server("b", "b_", &["y"]);
    let capabilities =
        Catalog::build(vec![with_completions, plain.clone()]).aggregate_capabilities();
    assert_eq!(capabilities["tools"]["listChanged"], true);
    assert!(capabilities.get("completions").is_some());
    assert!(capabilities.get("logging").is_none());
    let capabilities = Catalog::build(vec![plain]).aggregate_capabilities();
    assert!(capabilities.get("completions").is_none());
    assert!(capabilities.get("tasks").is_none() && capabilities.get("extensions").is_none());
}

#[test]
fn tasks_and_extensions_offered_by_any_ready_upstream_are_merged() {
    let offering = |name: &str, capabilities: Value| {
        let mut input = server(name, &format!("{name}_"), &["x"]);
        input.listing = Some(Arc::new(Listing {
            capabilities,
            ..Listing::default()
        }));
        input
    };
    let capabilities = Catalog::build(vec![
        offering("a", json!({ "tasks": { "list": {}, "requests": { "tools": { "call": {} } } } })),
        offering("b", json!({ "tasks": { "cancel": {} }, "extensions": { "io.modelcontextprotocol/ui": {} } })),
        offering("c", json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } })),
    ])
    .aggregate_capabilities();
    assert_eq!(
        capabilities["tasks"],
        json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } })
    );
    assert_eq!(
        capabilities["extensions"],
        json!({ "io.modelcontextprotocol/ui": {}, "io.modelcontextprotocol/tasks": {} })
    );
}

#[test]
fn filtered_pages_hold_only_visible_items_and_still_page_by_position() {
    let many: Vec<String> = (0..2 * PAGE_SIZE + 10)
        .map(|i| format!("t{i:05}"))
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let catalog = Catalog::build(vec![server("s", "s_", &refs)]);
    // Every third tool is visible.
    let visible = |name: &str| name[3..].parse::<usize>().unwrap() % 3 == 0;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = catalog
            .tools_page(Scope::Aggregate, cursor.as_deref(), Some(&visible))
            .unwrap();
        assert!(page.items.len() <= PAGE_SIZE);
        seen.extend(names(&page));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..2 * PAGE_SIZE + 10)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("s_t{i:05}"))
        .collect();
    assert_eq!(seen, expected);
    let entry = catalog
        .entry_of(catalog.server("s").unwrap(), false, "t00003")
        .unwrap();
    assert_eq!(&*entry.exposed, "s_t00003");
}
