//! Holds the module map: every module of `src/` uses only the modules the
//! layering table in `src/lib.rs` allows it, and no files import each other
//! in a cycle. Reads the source, so an up-arrow fails here with the file,
//! the import and the rule it breaks, before it can tangle the house.
//!
//! A file's references are its `use` paths and the paths in its code that
//! start with `crate::`, `super::`, `self::` or a child module it declares;
//! comments, strings and `#[cfg(test)]` modules are not read. A module file
//! and the files of its own submodules may use each other (a parent declares
//! its children and they share its types): that is not a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAP: &str = "the layering table at the top of src/lib.rs";

#[test]
fn every_module_uses_only_what_the_layering_table_allows() {
    let source = Source::read();
    let rows = layering_table(&source.lib);
    let table: BTreeMap<String, BTreeSet<String>> = rows.iter().cloned().collect();
    let mut broken = Vec::new();
    // The table itself points down: a row names only rows below it.
    for (at, (module, uses)) in rows.iter().enumerate() {
        for used in uses {
            match rows.iter().position(|(m, _)| m == used) {
                Some(below) if below > at => {}
                Some(_) => broken.push(format!(
                    "{MAP}: `{module}` may use `{used}`, which is above it in the table"
                )),
                None => broken.push(format!(
                    "{MAP}: `{module}` may use `{used}`, which has no row"
                )),
            }
        }
    }
    for module in source.top_modules() {
        if !table.contains_key(&module) {
            broken.push(format!(
                "src/{module}: the module is missing from {MAP}; add a row saying what it may use"
            ));
        }
    }
    for (file, references) in &source.references {
        let from = top(&source.modules[file]);
        let Some(allowed) = table.get(from) else {
            continue;
        };
        for reference in references {
            let to = top(&source.modules[&reference.file]);
            if to != from && !allowed.contains(to) {
                broken.push(format!(
                    "{}:{}: `{}` makes `{from}` use `{to}`, which {MAP} does not allow \
                     (`{from}` may use: {})",
                    file.display(),
                    reference.line,
                    reference.path,
                    list(allowed),
                ));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn no_files_import_each_other_in_a_cycle() {
    let source = Source::read();
    let mut edges: BTreeMap<&PathBuf, BTreeSet<&PathBuf>> = BTreeMap::new();
    for (file, references) in &source.references {
        let from = &source.modules[file];
        for reference in references {
            let to = &source.modules[&reference.file];
            if !nested(from, to) && !nested(to, from) {
                edges.entry(file).or_default().insert(&reference.file);
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        let mut steps = Vec::new();
        for pair in cycle.windows(2) {
            let reference = source.references[pair[0]]
                .iter()
                .find(|r| &r.file == pair[1])
                .expect("an edge comes from a reference");
            steps.push(format!(
                "{}:{} uses `{}`",
                pair[0].display(),
                reference.line,
                reference.path
            ));
        }
        panic!("files import each other in a cycle:\n{}", steps.join("\n"));
    }
}

/// The parser must see what the tests rely on, or they would pass on nothing.
#[test]
fn the_reader_finds_references_of_every_form() {
    let text = r#"
        //! [`crate::ignored`] in a doc comment
        use crate::a::{self, b::{C, d}};
        use super::e;
        mod child;
        fn f() { crate::g::h(); let s = "crate::in_string"; child::x(); }
        #[cfg(test)]
        mod tests { use crate::only_in_tests; }
    "#;
    let found: Vec<String> = references_in(text, &["child".to_string()])
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        found,
        [
            "crate::a",
            "crate::a::b::C",
            "crate::a::b::d",
            "super::e",
            "crate::g::h",
            "child::x"
        ]
    );
    let table = layering_table("//! | module | may use |\n//! |---|---|\n//! | `a` | `b`, `c` |\n");
    assert_eq!(
        table,
        [(
            "a".to_string(),
            BTreeSet::from(["b".to_string(), "c".to_string()])
        )]
    );
}

/// `cargo test --test layering -- --ignored --nocapture` prints which
/// module uses which (for a note, or to redraw the table).
#[test]
#[ignore]
fn print_module_graph() {
    let source = Source::read();
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (file, references) in &source.references {
        let from = top(&source.modules[file]);
        let uses = graph.entry(from).or_default();
        for reference in references {
            let to = top(&source.modules[&reference.file]);
            if to != from {
                uses.insert(to);
            }
        }
    }
    for (module, uses) in graph {
        let uses: Vec<&str> = uses.into_iter().collect();
        println!("{module} → {}", uses.join(", "));
    }
}

// ---------------------------------------------------------------------------
// Reading the source
// ---------------------------------------------------------------------------

struct Reference {
    /// The path as written (after expanding `use` braces).
    path: String,
    line: usize,
    /// The file it resolves to.
    file: PathBuf,
}

struct Source {
    lib: String,
    /// Each file of src/ and its module path (`["upstream", "http"]`).
    modules: BTreeMap<PathBuf, Vec<String>>,
    references: BTreeMap<PathBuf, Vec<Reference>>,
}

impl Source {
    fn read() -> Source {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&root, &mut files);
        let modules: BTreeMap<PathBuf, Vec<String>> = files
            .iter()
            .filter_map(|file| {
                let relative = file.strip_prefix(&root).ok()?;
                Some((Path::new("src").join(relative), module_path(relative)?))
            })
            .collect();
        let by_module: BTreeMap<&Vec<String>, &PathBuf> = modules
            .iter()
            .map(|(file, module)| (module, file))
            .collect();
        let mut references = BTreeMap::new();
        for (file, module) in &modules {
            let text = fs::read_to_string(file.as_path()).expect("a source file reads");
            let children: Vec<String> = child_modules(&text);
            let mut found = Vec::new();
            for (path, line) in references_in(&text, &children) {
                let absolute = absolute(module, &path);
                // The longest prefix that is a module of its own file.
                let target = (1..=absolute.len())
                    .rev()
                    .find_map(|n| by_module.get(&absolute[..n].to_vec()).copied());
                if let Some(target) = target.filter(|t| *t != file) {
                    found.push(Reference {
                        path,
                        line,
                        file: target.clone(),
                    });
                }
            }
            references.insert(file.clone(), found);
        }
        let lib = fs::read_to_string(root.join("lib.rs")).expect("src/lib.rs reads");
        Source {
            lib,
            modules,
            references,
        }
    }

    fn top_modules(&self) -> BTreeSet<String> {
        self.modules
            .values()
            .filter_map(|m| m.first().cloned())
            .collect()
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ reads") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// `upstream/http.rs` → `[upstream, http]`; `upstream/mod.rs` → `[upstream]`;
/// `lib.rs` → `[]`. Binaries (`main.rs`, `bin/`) are not modules of the library.
fn module_path(relative: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") || parts == ["main"] {
        return None;
    }
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    Some(parts)
}

/// `super::x` and `self::x` made absolute; `crate::` dropped.
fn absolute(module: &[String], path: &str) -> Vec<String> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<String> = module.to_vec();
    match segments.first().copied() {
        Some("crate") => {
            segments.remove(0);
            base.clear();
        }
        Some("self") => {
            segments.remove(0);
        }
        _ => {
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
        }
    }
    base.extend(segments.iter().map(|s| s.to_string()));
    base
}

fn top(module: &[String]) -> &str {
    module.first().map_or("lib", String::as_str)
}

/// Whether `inner` is `outer` or inside it.
fn nested(outer: &[String], inner: &[String]) -> bool {
    inner.starts_with(outer)
}

fn child_modules(text: &str) -> Vec<String> {
    let code = code_only(text);
    let mut children = Vec::new();
    for line in code.lines() {
        let line = line.trim();
        let line = line
            .strip_prefix("pub ")
            .or_else(|| line.strip_prefix("pub(crate) "))
            .unwrap_or(line);
        if let Some(name) = line.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            children.push(name.trim().to_string());
        }
    }
    children
}

/// The paths a file refers to, with their line numbers.
fn references_in(text: &str, children: &[String]) -> Vec<(String, usize)> {
    let code = code_only(text);
    let bytes = code.as_bytes();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let word = &code[start..i];
        if word == "use" {
            let end = code[i..].find(';').map_or(code.len(), |e| i + e);
            for path in expand_use(code[i..end].trim()) {
                let first = path.split("::").next().unwrap_or("");
                if ["crate", "super", "self"].contains(&first)
                    || children.iter().any(|c| c == first)
                {
                    found.push((path, line_of(start)));
                }
            }
            i = end;
        } else if (["crate", "super", "self"].contains(&word) || children.iter().any(|c| c == word))
            && code[i..].starts_with("::")
        {
            let mut end = i;
            while code[end..].starts_with("::") {
                let next = end + 2;
                let len = code[next..].bytes().take_while(|b| is_ident(*b)).count();
                if len == 0 {
                    break;
                }
                end = next + len;
            }
            if end > i {
                found.push((code[start..end].to_string(), line_of(start)));
            }
            i = end;
        }
    }
    found
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `a::{self, b::{C, d}}` → `a`, `a::b::C`, `a::b::d` (aliases dropped).
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    expand_into("", &tree, &mut out);
    out
}

fn expand_into(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let base = join(prefix, head);
        let mut depth = 0;
        let mut from = 0;
        for (at, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_into(&base, &inner[from..at], out);
                    from = at + 1;
                }
                _ => {}
            }
        }
        expand_into(&base, &inner[from..], out);
    } else {
        let item = tree.split(" as ").next().unwrap_or("").trim();
        match item {
            "" | "*" => {
                if !prefix.is_empty() {
                    out.push(prefix.to_string());
                }
            }
            "self" => out.push(prefix.to_string()),
            _ => out.push(join(prefix, item.trim_end_matches("::*"))),
        }
    }
}

fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}::{rest}"),
    }
}

/// The text with comments, string and char literals blanked and
/// `#[cfg(test)]` items removed; newlines kept so line numbers hold.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |slice: &str, out: &mut String| {
        out.extend(slice.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
    };
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let (open, close) = if rest.starts_with("r#") {
                (3, "\"#")
            } else {
                (2, "\"")
            };
            let end = rest[open..]
                .find(close)
                .map_or(rest.len(), |e| open + e + close.len());
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest.starts_with('"') {
            let mut end = 1;
            let b = rest.as_bytes();
            while end < b.len() && b[end] != b'"' {
                end += if b[end] == b'\\' { 2 } else { 1 };
            }
            let end = (end + 1).min(rest.len());
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest.starts_with("#[cfg(test)]") {
            // The attribute and the item after it: up to its `;` or the
            // brace closing its body.
            let mut end = 0;
            let mut depth = 0;
            for (at, c) in rest.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = at + 1;
                            break;
                        }
                    }
                    ';' if depth == 0 => {
                        end = at + 1;
                        break;
                    }
                    _ => {}
                }
            }
            let end = if end == 0 { rest.len() } else { end };
            blank(&rest[..end], &mut out);
            i += end;
        } else {
            let c = rest.chars().next().expect("not at the end");
            // A char literal (not a lifetime): blank it, so '{' and '"' count for nothing.
            if c == '\'' {
                let len = char_literal_len(rest);
                if len > 0 {
                    blank(&rest[..len], &mut out);
                    i += len;
                    continue;
                }
            }
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of a char literal at the start of `rest`, 0 if it is a lifetime.
fn char_literal_len(rest: &str) -> usize {
    let b = rest.as_bytes();
    if b.len() >= 4 && b[1] == b'\\' {
        return rest[2..].find('\'').map_or(0, |e| e + 3);
    }
    let mut chars = rest.char_indices().skip(1);
    match (chars.next(), chars.next()) {
        (Some((_, _)), Some((at, '\''))) => at + 1,
        _ => 0,
    }
}

/// The `| module | may use |` rows of the table in `src/lib.rs`, in order.
fn layering_table(lib: &str) -> Vec<(String, BTreeSet<String>)> {
    let names = |cell: &str| -> BTreeSet<String> {
        cell.split(',')
            .map(|n| n.trim().trim_matches('`').trim().to_string())
            .filter(|n| !n.is_empty())
            .collect()
    };
    let mut table = Vec::new();
    for line in lib.lines() {
        let Some(row) = line.trim().strip_prefix("//!").map(str::trim) else {
            continue;
        };
        let cells: Vec<&str> = row.trim_matches('|').split('|').collect();
        if !row.starts_with('|') || cells.len() != 2 {
            continue;
        }
        let module = cells[0].trim().trim_matches('`').trim();
        if module.is_empty() || module == "module" || module.starts_with('-') {
            continue;
        }
        table.push((module.to_string(), names(cells[1])));
    }
    table
}

fn list(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// A cycle as the files along it, the first repeated at the end.
fn find_cycle<'a>(
    edges: &BTreeMap<&'a PathBuf, BTreeSet<&'a PathBuf>>,
) -> Option<Vec<&'a PathBuf>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        node: &'a PathBuf,
        edges: &BTreeMap<&'a PathBuf, BTreeSet<&'a PathBuf>>,
        marks: &mut BTreeMap<&'a PathBuf, Mark>,
        stack: &mut Vec<&'a PathBuf>,
    ) -> Option<Vec<&'a PathBuf>> {
        marks.insert(node, Mark::Open);
        stack.push(node);
        for next in edges.get(node).into_iter().flatten() {
            match marks.get(next) {
                Some(Mark::Open) => {
                    let from = stack.iter().position(|n| n == next).expect("on the stack");
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next);
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(cycle) = visit(next, edges, marks, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        if !marks.contains_key(node) {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(node, edges, &mut marks, &mut stack) {
                return Some(cycle);
            }
        }
    }
    None
}
