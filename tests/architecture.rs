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

/// The file's text without its unit-test modules: `#[cfg(test)]` before
/// `mod NAME;` (a file of its own, skipped by the callers) or before
/// `mod NAME {` up to the `}` that closes it at the same indentation
/// (rustfmt's layout). Code after an inline test module is kept.
fn non_test(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let next = lines.get(i + 1).copied().unwrap_or("");
        let t = next.trim_start();
        if lines[i].trim() == "#[cfg(test)]" && t.starts_with("mod ") {
            let close = format!("{}}}", &next[..next.len() - t.len()]);
            i = if t.ends_with(';') {
                i + 2
            } else {
                (i + 2..lines.len())
                    .find(|&j| lines[j] == close)
                    .map_or(lines.len(), |j| j + 1)
            };
            continue;
        }
        out.push(lines[i]);
        i += 1;
    }
    out.join("\n")
}

/// The layers as docs/architecture.md states them: each row of its layer
/// table, `| RANK | `folder/` | … |`. The doc is the rule; this test only
/// reads it, so the two cannot drift apart.
fn layers() -> BTreeMap<String, u32> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let doc = std::fs::read_to_string(doc).unwrap();
    let mut layers = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(rank), Some(folder)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let (Ok(rank), Some(folder)) = (
            rank.parse::<u32>(),
            folder.strip_prefix('`').and_then(|f| f.strip_suffix("/`")),
        ) else {
            continue;
        };
        layers.insert(folder.to_string(), rank);
    }
    assert!(
        layers.len() >= 10,
        "the layer table of docs/architecture.md: {layers:?}"
    );
    layers
}

/// The layer (top folder of `src/`) a library file belongs to; `None` for
/// the binary (`main.rs`, `cli/`) and `lib.rs`.
fn layer_of(rel: &Path) -> Option<String> {
    let first = rel.iter().next()?.to_string_lossy().into_owned();
    match first.as_str() {
        "main.rs" | "lib.rs" | "cli" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// Items of lib.rs itself, which any layer may name.
const ROOT_ITEMS: [&str; 4] = ["tool_version", "Error", "Result", "Code"];

/// The library's files outside unit tests, each with its path under `src/`
/// and its text before any unit-test module.
fn library_files() -> Vec<(PathBuf, String)> {
    crate_files()
        .into_iter()
        .filter(|(rel, _)| layer_of(rel).is_some())
        .collect()
}

/// Every file under `src/`, the binary's too, as [`library_files`] reads
/// them (paths under `src/`, unit tests left out).
fn crate_files() -> Vec<(PathBuf, String)> {
    let root = src();
    let mut files = Vec::new();
    sources(&root, &mut files);
    // Unit-test modules kept in their own file are test code, not edges.
    files.retain(|f| f.file_name().is_some_and(|n| n != "tests.rs"));
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let text = non_test(&text);
            (f.strip_prefix(&root).unwrap().to_path_buf(), text)
        })
        .collect()
}

/// The module path of a library file: `format/usage.rs` is
/// `["format", "usage"]`, `format/mod.rs` is `["format"]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The identifiers and `::` that follow `at` in `text`.
fn path_at(text: &str, at: usize) -> String {
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':' || *c == '*')
        .collect()
}

/// The members of the `{…}` group that starts at `at`, each as written.
fn group_at(text: &str, at: usize) -> Vec<String> {
    let mut depth = 0;
    let mut members = vec![String::new()];
    for c in text[at..].chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 1 => members.push(String::new()),
            _ if depth == 1 => members.last_mut().unwrap().push(c),
            _ => {}
        }
        if depth == 0 {
            break;
        }
    }
    members
        .into_iter()
        .map(|m| m.split_whitespace().collect::<String>())
        .filter(|m| !m.is_empty())
        .map(|m| if m == "self" { String::new() } else { m })
        .collect()
}

/// Every path from the crate root that the file at module path `me`
/// names: `crate::a::b` and `$crate::a::b`; `super::` chains resolved
/// against `me`; `{…}` groups expanded. A path that climbs above the root
/// is returned as `super::` (no layer), so the callers report it.
fn crate_paths(text: &str, me: &[String]) -> Vec<String> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    for (i, _) in text
        .match_indices("crate::")
        .chain(text.match_indices("super::"))
    {
        let before = &text[..i];
        if before.ends_with(ident) || before.ends_with("super::") {
            continue;
        }
        let (base, mut at) = if text[i..].starts_with("crate::") {
            (Vec::new(), i + "crate::".len())
        } else {
            let mut up = 0;
            let mut at = i;
            while text[at..].starts_with("super::") {
                up += 1;
                at += "super::".len();
            }
            match me.len().checked_sub(up) {
                Some(n) => (me[..n].to_vec(), at),
                None => {
                    out.push("super::".to_string());
                    continue;
                }
            }
        };
        let head = path_at(text, at);
        at += head.len();
        let join = |tail: &str| {
            let mut p = base.clone();
            p.extend(
                head.split("::")
                    .chain(tail.split("::"))
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
            p.join("::")
        };
        if text[at..].starts_with('{') {
            out.extend(group_at(text, at).iter().map(|m| join(m)));
        } else {
            out.push(join(""));
        }
    }
    out
}

/// The `use crate::` edges between layers: (from, to) → the first file
/// that makes the edge. A `crate::` path whose first segment is no layer
/// folder (an old path lib.rs re-exports for the binary) is returned apart.
fn layer_edges() -> (BTreeMap<(String, String), String>, Vec<String>) {
    let root = src();
    let mut edges = BTreeMap::new();
    let mut stray = Vec::new();
    for (rel, text) in library_files() {
        let me = layer_of(&rel).unwrap();
        for path in crate_paths(&text, &module_path(&rel)) {
            let top = path.split("::").next().unwrap_or("").to_string();
            if ROOT_ITEMS.contains(&top.as_str()) {
                continue;
            }
            let is_layer = !top.is_empty()
                && (root.join(&top).is_dir() || root.join(format!("{top}.rs")).is_file());
            if !is_layer || top == "cli" {
                stray.push(format!("src/{}: crate::{path}", rel.display()));
            } else if top != me {
                edges
                    .entry((me.clone(), top))
                    .or_insert_with(|| rel.display().to_string());
            }
        }
    }
    (edges, stray)
}

#[test]
fn every_folder_of_src_is_a_layer_of_the_doc() {
    let mut folders = BTreeSet::new();
    for e in std::fs::read_dir(src()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let name = name.trim_end_matches(".rs").to_string();
        if !["main", "lib", "cli"].contains(&name.as_str()) {
            folders.insert(name);
        }
    }
    let documented: BTreeSet<String> = layers().keys().cloned().collect();
    assert_eq!(
        folders, documented,
        "src/ and the layer table of docs/architecture.md"
    );
}

#[test]
fn layers_depend_only_on_lower_layers() {
    let layers = layers();
    let (edges, stray) = layer_edges();
    assert!(
        stray.is_empty(),
        "library code names a path that is no layer folder (write the folder path):\n  {}",
        stray.join("\n  ")
    );
    // The check sees what it must: the core uses the format, export the core.
    assert!(edges.contains_key(&("verify".into(), "format".into())));
    assert!(edges.contains_key(&("export".into(), "verify".into())));
    let bad: Vec<String> = edges
        .iter()
        .filter(|((from, to), _)| layers[from] <= layers[to])
        .map(|((from, to), file)| {
            format!(
                "{from} ({}) -> {to} ({}) in src/{file}",
                layers[from], layers[to]
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "edges to the same or a higher layer (docs/architecture.md, The layers):\n  {}",
        bad.join("\n  ")
    );
}

/// The module graph by file: a module is its path under `src/` without
/// `mod.rs`/`.rs`; an edge is a `crate::` path whose longest prefix names
/// another module's file (not one of its own parents).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let module_of = |rel: &Path| -> String {
        let s = rel.with_extension("").to_string_lossy().replace('/', "::");
        s.strip_suffix("::mod").map(str::to_string).unwrap_or(s)
    };
    let files = library_files();
    let known: BTreeSet<String> = files.iter().map(|(rel, _)| module_of(rel)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in &files {
        let me = module_of(rel);
        let deps = graph.entry(me.clone()).or_default();
        for path in crate_paths(text, &module_path(rel)) {
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            let dep = (1..=parts.len())
                .rev()
                .map(|n| parts[..n].join("::"))
                .find(|m| known.contains(m));
            if let Some(dep) = dep.filter(|d| *d != me && !me.starts_with(&format!("{d}::"))) {
                deps.insert(dep);
            }
        }
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
    let graph = module_graph();
    // The check sees what it must: the core uses the manifest, export the core.
    assert!(graph["verify"].contains("format::manifest"));
    assert!(graph["export"].contains("verify"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
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
        let code = non_test(&text);
        let lines: Vec<&str> = code.lines().collect();
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
/// other field is typed (`src/format/types.rs`), so a misspelt kind or time
/// cannot compile.
#[test]
fn manifest_fields_with_fixed_values_are_typed() {
    let text = std::fs::read_to_string(src().join("format/manifest.rs")).unwrap();
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

/// Library files (outside unit tests) that contain any of `needles`,
/// except the `allowed` ones (paths under `src/`, a folder ending in `/`).
fn library_files_saying(needles: &[&str], allowed: &[&str]) -> Vec<String> {
    files_saying(library_files(), needles, allowed)
}

/// Of `files`, those that contain any of `needles` outside comments, except
/// the `allowed` ones, each with the needles it contains.
fn files_saying(files: Vec<(PathBuf, String)>, needles: &[&str], allowed: &[&str]) -> Vec<String> {
    files
        .into_iter()
        .filter(|(rel, _)| {
            let rel = rel.to_string_lossy();
            !allowed
                .iter()
                .any(|a| rel == *a || (a.ends_with('/') && rel.starts_with(a)))
        })
        .filter_map(|(rel, text)| {
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let hits: Vec<&str> = needles
                .iter()
                .copied()
                .filter(|n| code.contains(n))
                .collect();
            (!hits.is_empty()).then(|| format!("src/{}: {}", rel.display(), hits.join(", ")))
        })
        .collect()
}

/// docs/architecture.md: "The library never prints and never exits."
#[test]
fn the_library_never_prints_and_never_exits() {
    let found = library_files_saying(
        &[
            "println!",
            "eprintln!",
            "print!(",
            "eprint!(",
            "dbg!(",
            "process::exit",
            " exit(",
            "io::stdout()",
            "io::stderr()",
        ],
        &[],
    );
    assert!(
        found.is_empty(),
        "the library prints or exits:\n  {}",
        found.join("\n  ")
    );
}

/// docs/architecture.md: "Threads start through `fsutil::spawn_thread`",
/// in the library and the binary alike; only the stand-ins' test server
/// starts its own. A closure passed to `.spawn(` is a thread (a process's
/// `spawn()` takes none), and importing from `std::thread` by braces could
/// bring in `spawn` or `Builder` under a bare name.
#[test]
fn threads_start_only_through_spawn_thread() {
    let needles = [
        "thread::spawn",
        "thread::Builder",
        "thread::{",
        ".spawn_scoped(",
        ".spawn(move",
        ".spawn(|",
    ];
    let found = files_saying(
        crate_files(),
        &needles,
        &["io/mem.rs", "cli/standin_server.rs"],
    );
    assert!(
        found.is_empty(),
        "a thread started without spawn_thread:\n  {}",
        found.join("\n  ")
    );
}

/// docs/architecture.md: "Time is an input": the library never reads the
/// clock itself, but through `clock::Clock` (monotonic `Instant`s measure
/// deadlines, which decide nothing about a bundle).
#[test]
fn the_library_reads_the_clock_only_through_clock() {
    let found = library_files_saying(
        &["SystemTime::now", "UNIX_EPOCH.elapsed"],
        // Clock::System only.
        &["base/clock.rs"],
    );
    assert!(
        found.is_empty(),
        "the library reads the clock itself:\n  {}",
        found.join("\n  ")
    );
}

/// docs/architecture.md: "The environment is read once, in
/// `config::Settings::load`", with the exceptions it lists.
#[test]
fn the_environment_is_read_in_settings_and_the_listed_places_only() {
    let found = library_files_saying(
        &["env::var", "var_os(", "env::{"],
        &[
            "config/mod.rs",   // Settings::load
            "io/hooks.rs",     // the test hooks, debug builds only
            "io/dirs.rs",      // HOME: where directories may be created
            "net/mod.rs",      // SSL_CERT_*: only to name one unreadable
            "net/proxy.rs",    // ProxyVars::from_process, for the demo
            "crypto/agent.rs", // SSH_AUTH_SOCK
        ],
    );
    assert!(
        found.is_empty(),
        "environment read outside Settings and the exceptions of docs/architecture.md:\n  {}",
        found.join("\n  ")
    );
}

/// The layers are the folders only if every file is where its module is:
/// no `#[path]`, `include!` or `extern crate self` in the library may load
/// a file of another folder, or the crate under another name, unseen by
/// the checks above (lib.rs declares the layers and is not checked).
#[test]
fn no_library_file_loads_code_around_the_layers() {
    let found = library_files_saying(&["#[path", "include!(", "extern crate"], &[]);
    assert!(
        found.is_empty(),
        "library code loaded around the folder layout:\n  {}",
        found.join("\n  ")
    );
}

/// docs/architecture.md: "Progress is a parameter", and the process-wide
/// state left in the library is what it lists: the notices' receiver, the
/// temp-file registry the signal handler needs, and constant data.
#[test]
fn the_library_keeps_no_process_wide_state_but_the_listed() {
    let allowed = [
        ("base/progress.rs", "static NOTES"),
        ("io/temp.rs", "static LIVE"),
        ("io/temp.rs", "static SWEPT"),
        ("io/mem.rs", "static ZEROS"),
    ];
    let mut found = Vec::new();
    for (rel, text) in library_files() {
        let rel = rel.to_string_lossy().into_owned();
        for line in text.lines() {
            let l = line.trim_start();
            let l = ["pub(crate) ", "pub "]
                .iter()
                .find_map(|p| l.strip_prefix(p))
                .unwrap_or(l);
            let statics = l.starts_with("static ") || l.starts_with("thread_local!");
            if statics && !allowed.iter().any(|(f, s)| rel == *f && l.starts_with(s)) {
                found.push(format!("src/{rel}: {}", l.trim_end()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "process-wide state in the library that docs/architecture.md does not list:\n  {}",
        found.join("\n  ")
    );
}

/// Output as types (decision 89): the binary writes no JSON by hand; every
/// `--json` document is a report type's serialisation.
#[test]
fn the_binary_writes_no_json_by_hand() {
    let mut files = Vec::new();
    sources(&src().join("cli"), &mut files);
    files.retain(|f| f.file_name().is_some_and(|n| n != "tests.rs"));
    let found: Vec<String> = files
        .iter()
        .filter(|f| non_test(&std::fs::read_to_string(f).unwrap()).contains("json!("))
        .map(|f| f.display().to_string())
        .collect();
    assert!(found.is_empty(), "json! in src/cli/: {found:?}");
}
