//! The shape of the crate, checked from its sources (docs/architecture.md):
//! the library's modules depend on each other one way only, and no function
//! in `src/` is longer than a reader can hold without a reason written beside
//! it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest function, in lines from `fn` to its closing brace, without a
/// `// Long:` reason above it.
const MAX_FN_LINES: usize = 60;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The text before the file's unit-test module.
fn non_test(text: &str) -> &str {
    text.split("\n#[cfg(test)]").next().unwrap_or(text)
}

/// A library module's node name: the top-level module, except that the
/// format layer and pipelines inside `bundle/` are each their own node.
fn node(rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let parts: Vec<&str> = parts
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "mod")
        .collect();
    match parts.as_slice() {
        ["main"] | ["cli", ..] | ["lib"] => None,
        ["bundle"] => Some("bundle".into()),
        ["bundle", sub, ..] => Some(format!("bundle::{sub}")),
        [top, ..] => Some(top.to_string()),
        [] => None,
    }
}

fn dependency_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Unit-test modules kept in their own file are test code, not edges.
    files.retain(|f| f.file_name().is_some_and(|n| n != "tests.rs"));
    for f in files {
        let Some(me) = node(f.strip_prefix(&root).unwrap()) else {
            continue;
        };
        let text = std::fs::read_to_string(&f).unwrap();
        let deps = graph.entry(me.clone()).or_default();
        for (i, _) in non_test(&text).match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let ident = |s: &str| -> String {
                s.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            };
            let top = ident(rest);
            let dep = if top == "bundle" {
                match rest["bundle".len()..].strip_prefix("::") {
                    Some(r) if r.starts_with(|c: char| c.is_ascii_lowercase()) => {
                        format!("bundle::{}", ident(r))
                    }
                    _ => "bundle".into(),
                }
            } else {
                top
            };
            // Items of lib.rs itself (`crate::tool_version`) are no module.
            let path = dep.replace("::", "/");
            if root.join(format!("{path}.rs")).exists() || root.join(&path).is_dir() {
                deps.insert(dep);
            }
        }
        deps.remove(&me);
    }
    graph
}

/// A module reachable from itself: the path, for the message.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    for start in graph.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if next == start {
                    let mut p = path.clone();
                    p.push(next.clone());
                    return Some(p);
                }
                if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    None
}

#[test]
fn library_modules_have_no_import_cycle() {
    let graph = dependency_graph();
    // The check sees what it must: the format layer is a node, pipelines use it.
    assert!(graph["bundle::verify"].contains("bundle::manifest"));
    assert!(graph["bundle::export"].contains("bundle::verify"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_format_layer_depends_on_no_pipeline() {
    let graph = dependency_graph();
    let pipelines = [
        "bundle::export",
        "bundle::verify",
        "bundle::sign",
        "import",
        "handover",
        "watch",
        "cloud",
        "fleet",
    ];
    for layer in [
        "bundle::manifest",
        "bundle::types",
        "bundle::rules",
        "bundle::container",
        "crypt",
    ] {
        for p in pipelines {
            assert!(
                !graph[layer].contains(p),
                "{layer} (format layer) depends on the pipeline {p}"
            );
        }
    }
}

/// Each function of `src/` (outside unit-test modules) with its length.
fn long_functions() -> Vec<(String, usize)> {
    let root = src();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut long = Vec::new();
    // Unit-test modules kept in their own file are test code.
    files.retain(|f| f.file_name().is_some_and(|n| n != "tests.rs"));
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = non_test(&text).lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i];
            let indent = l.len() - l.trim_start().len();
            let t = l.trim_start();
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "const fn ",
            ]
            .iter()
            .any(|p| t.starts_with(p));
            if !is_fn || t.ends_with(';') {
                i += 1;
                continue;
            }
            // rustfmt closes a body at the signature's indentation.
            let close = format!("{}}}", &l[..indent]);
            let one_line = |j: usize| j == i && lines[j].ends_with('}');
            let Some(end) = (i..lines.len()).find(|&j| lines[j] == close || one_line(j)) else {
                break;
            };
            let n = end - i + 1;
            // The reason sits in the comments and attributes right above.
            let reason = lines[..i]
                .iter()
                .rev()
                .take_while(|p| {
                    let p = p.trim_start();
                    p.starts_with("//") || p.starts_with("#[")
                })
                .any(|p| p.trim_start().starts_with("// Long:"));
            if n > MAX_FN_LINES && !reason {
                let rel = f.strip_prefix(&root).unwrap().display().to_string();
                long.push((format!("src/{rel}:{} {}", i + 1, t), n));
            }
            i = end + 1;
        }
    }
    long
}

#[test]
fn no_long_function_without_a_reason() {
    let long = long_functions();
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines without a `// Long:` reason above them:\n{}",
        long.iter()
            .map(|(f, n)| format!("  {n:4} {f}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Longest file in `src/`, every line counted (unit tests may live in a
/// sibling `tests.rs`, which is a file like any other).
const MAX_FILE_LINES: usize = 800;

#[test]
fn no_file_over_800_lines() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut over: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MAX_FILE_LINES).then(|| format!("  {n:5} {}", f.display()))
        })
        .collect();
    over.sort();
    assert!(
        over.is_empty(),
        "files in src/ over {MAX_FILE_LINES} lines (split by job, or move unit tests to a sibling tests.rs):\n{}",
        over.join("\n")
    );
}

/// The manifest's free-text fields are exactly those whose values have no
/// fixed set (a tool name, a host name, a server id, a member name); every
/// other field is typed (`src/bundle/types.rs`), so a misspelt kind or time
/// cannot compile.
#[test]
fn manifest_fields_with_fixed_values_are_typed() {
    let text = std::fs::read_to_string(src().join("bundle/manifest.rs")).unwrap();
    let text = non_test(&text);
    let mut strings = Vec::new();
    for name in ["Manifest", "Fields", "Source", "Sequence", "PayloadEntry"] {
        let start = text
            .find(&format!("struct {name} {{"))
            .unwrap_or_else(|| panic!("struct {name}"));
        let body = &text[start..start + text[start..].find("\n}").unwrap()];
        for line in body.lines() {
            let l = line.trim().trim_start_matches("pub ");
            if let Some((field, ty)) = l.split_once(": ") {
                if ty.trim_end_matches(',').contains("String") {
                    strings.push(format!("{name}.{field}"));
                }
            }
        }
    }
    assert_eq!(
        strings,
        [
            "Manifest.tool",
            "Fields.tool",
            "Source.host_name",
            "Source.server_id",
            "PayloadEntry.name"
        ]
    );
}
