//! The crate's modules import each other without a circle: `src/` reads as a stack
//! (README, "Architecture"), so that each module can be understood from the ones below
//! it. Read from the source: every `crate::a::b` path (and `use crate::a::{b, c}`),
//! `super::x`, and a module's use of its own submodules (`x::` inside `mod.rs`) is an
//! edge to the deepest module the path names. Comments and `#[cfg(test)]` code are left
//! out; a path into an enclosing module (a child using its parent) is not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`a::b`) of every file under `src/`, except the binary's `main.rs`.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts == ["main"] || parts == ["lib"] {
                continue;
            }
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            found.insert(parts.join("::"), code_of(&text));
        }
    }
    found
}

/// The source without its tests and comment lines.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lower-case path segments following `at` in `code`: `crate::a::b::C` gives `a::b`.
fn path_after(code: &str, at: usize) -> (String, usize) {
    let rest = &code[at..];
    let mut end = 0;
    let mut segments = Vec::new();
    loop {
        let word: String = rest[end..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if word.is_empty() {
            break;
        }
        end += word.len();
        segments.push(word);
        if rest[end..].starts_with("::") {
            end += 2;
        } else {
            break;
        }
    }
    (segments.join("::"), at + end)
}

/// Every module path `module`'s code names.
fn references(module: &str, code: &str, all: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let (path, end) = path_after(code, at + "crate::".len());
        paths.push(path.clone());
        // `use crate::a::{b, c::d}`
        if code[end..].starts_with('{') {
            let group = &code[end + 1..end + code[end..].find('}').unwrap_or(1)];
            for item in group.split(',') {
                let item = item.trim();
                if item.starts_with(|c: char| c.is_ascii_lowercase()) {
                    let (inner, _) = path_after(item, 0);
                    paths.push(format!("{path}::{inner}"));
                }
            }
        }
    }
    let parent = module.rsplit_once("::").map(|(p, _)| p);
    for (at, _) in code.match_indices("super::") {
        let (path, _) = path_after(code, at + "super::".len());
        if let Some(parent) = parent {
            paths.push(format!("{parent}::{path}"));
        }
    }
    for (at, _) in code.match_indices("::") {
        // `child::item` inside a module that has that child.
        let start = code[..at]
            .rfind(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map_or(0, |i| i + 1);
        if start > 0 && code[..start].ends_with("::") {
            continue;
        }
        let child = format!("{module}::{}", &code[start..at]);
        if all.contains_key(&child) {
            paths.push(child);
        }
    }
    let mut edges = BTreeSet::new();
    for path in paths {
        let parts: Vec<&str> = path.split("::").collect();
        let target = (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|candidate| all.contains_key(candidate));
        if let Some(target) = target {
            let enclosing = module == target || module.starts_with(&format!("{target}::"));
            if !enclosing {
                edges.insert(target);
            }
        }
    }
    edges
}

/// A circle in `graph`, as the modules along it, if there is one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in &graph[node] {
            if let Some(circle) = visit(next, graph, done, path) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn the_modules_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let all = modules(&src);
    assert!(all.contains_key("config::live") && all.contains_key("stock::health"));
    let graph: BTreeMap<String, BTreeSet<String>> = all
        .iter()
        .map(|(module, code)| (module.clone(), references(module, code, &all)))
        .collect();
    // The reader sees real edges: the readiness route uses the router, the shard mounts
    // the stock routes.
    assert!(graph["stock::health"].contains("router"), "{graph:?}");
    assert!(graph["shard"].contains("stock"), "{graph:?}");
    if let Some(circle) = find_circle(&graph) {
        panic!("import circle: {}", circle.join(" -> "));
    }
}

#[test]
fn a_circle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into_iter().map(String::from).collect()))
    .collect();
    let circle = find_circle(&graph).unwrap();
    assert_eq!(circle.first(), circle.last());
    assert_eq!(circle.len(), 4, "{circle:?}");
}
