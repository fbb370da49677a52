//! The host's modules form no import cycle: each file is a module, each
//! `crate::…` or `super::…` path (and, in a `mod.rs`, each path into one of
//! its own children) an edge to the module it names. A module that needs
//! another's internals while that one needs it back shows a missing shared
//! module; this test names the cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("host/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `a/b.rs` is `a::b`, `a/mod.rs` is `a`, `lib.rs` the root.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Module = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The code outside `#[cfg(test)]` blocks and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `prefix::a::b::…` path in `code`, as its segments.
fn paths<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let needle = format!("{prefix}::");
    let mut rest = code;
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().last();
        rest = &rest[at + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let segments: Vec<&str> = rest[..end].split("::").filter(|s| !s.is_empty()).collect();
        out.push(segments);
    }
    out
}

/// The deepest known module `path` (from `base`) names.
fn resolve(modules: &BTreeSet<Module>, base: &Module, path: &[&str]) -> Option<Module> {
    let mut best = None;
    let mut m = base.clone();
    for s in path {
        m.push((*s).to_string());
        if modules.contains(&m) {
            best = Some(m.clone());
        } else {
            break;
        }
    }
    best
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module.is_empty() || file.ends_with("main.rs") {
            continue;
        }
        let is_dir_module = file.ends_with("mod.rs");
        let text = code(&std::fs::read_to_string(file).expect("a readable source"));
        let mut targets = BTreeSet::new();
        for p in paths(&text, "crate") {
            targets.extend(resolve(&modules, &Vec::new(), &p));
        }
        // `super` is the parent of the file's module (of the folder's, for mod.rs).
        let parent: Module = module[..module.len() - 1].to_vec();
        for p in paths(&text, "super") {
            targets.extend(
                resolve(&modules, &parent, &p)
                    .or_else(|| (!parent.is_empty()).then(|| parent.clone())),
            );
        }
        if is_dir_module {
            // Paths into its own children (`pub use child::Item`, `child::run(..)`).
            for child in modules
                .iter()
                .filter(|m| m.len() == module.len() + 1 && m.starts_with(&module))
            {
                let name = child.last().expect("a child has a name");
                if !paths(&text, name).is_empty() {
                    targets.insert(child.clone());
                }
            }
        }
        targets.remove(&module);
        edges.entry(module).or_default().extend(targets);
    }
    edges
}

/// A cycle through `start`, if any, as its modules in order.
fn cycle_from(
    edges: &BTreeMap<Module, BTreeSet<Module>>,
    node: &Module,
    stack: &mut Vec<Module>,
    done: &mut BTreeSet<Module>,
) -> Option<Vec<Module>> {
    if let Some(at) = stack.iter().position(|m| m == node) {
        let mut cycle = stack[at..].to_vec();
        cycle.push(node.clone());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    stack.push(node.clone());
    for next in edges.get(node).into_iter().flatten() {
        if let Some(c) = cycle_from(edges, next, stack, done) {
            return Some(c);
        }
    }
    stack.pop();
    done.insert(node.clone());
    None
}

#[test]
fn no_module_imports_another_that_imports_it_back() {
    let edges = graph();
    assert!(
        edges.len() > 20,
        "the host's modules were found: {:?}",
        edges.keys()
    );
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = cycle_from(&edges, node, &mut Vec::new(), &mut done) {
            let shown: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
            panic!("an import cycle: {}", shown.join(" -> "));
        }
    }
}

#[test]
fn the_check_sees_a_cycle() {
    let a: Module = vec!["a".into()];
    let b: Module = vec!["b".into()];
    let edges = BTreeMap::from([
        (a.clone(), BTreeSet::from([b.clone()])),
        (b.clone(), BTreeSet::from([a.clone()])),
    ]);
    let cycle = cycle_from(&edges, &a, &mut Vec::new(), &mut BTreeSet::new());
    assert_eq!(cycle, Some(vec![a.clone(), b, a]));
    let modules = BTreeSet::from([
        vec!["delivery".to_string()],
        vec!["delivery".into(), "step".into()],
    ]);
    let code = "use crate::delivery::step::{Step, Waiter};\nfn f() { crate::delivery::run(); }";
    let targets: Vec<_> = paths(code, "crate")
        .iter()
        .filter_map(|p| resolve(&modules, &Vec::new(), p))
        .collect();
    assert_eq!(
        targets,
        vec![
            vec!["delivery".to_string(), "step".into()],
            vec!["delivery".into()]
        ]
    );
}
