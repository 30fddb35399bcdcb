//! The layout keeps its promises: the pipeline is pure, imports run downwards, and no two
//! modules import each other. Read from the source files, so a new import that breaks a rule
//! fails here with the file and the path that broke it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What code under src/pipeline/ must not name: an I/O runtime, Kafka, the metrics registry,
/// files, sockets, or the layers built on top of the pipeline.
const NOT_IN_PIPELINE: &[&str] = &[
    "tokio",
    "rdkafka",
    "prometheus",
    "std::fs",
    "std::net",
    "crate::worker",
    "crate::tools",
    "crate::config",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/pipeline/index/mod.rs` is `pipeline::index`; `src/worker/run.rs` is `worker::run`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("a file under src/").with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Lines of code, without comments (doc links name modules without importing them).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|line| !line.trim_start().starts_with("//"))
}

/// Every `crate::a::b::...` path in `line`, as the longest prefix that is a module of the crate.
fn imported_modules<'m>(line: &str, modules: &'m BTreeSet<String>) -> Vec<&'m String> {
    let mut found = Vec::new();
    for (at, _) in line.match_indices("crate::") {
        let path: String = line[at + "crate::".len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        for len in (1..=parts.len()).rev() {
            if let Some(module) = modules.get(&parts[..len].join("::")) {
                found.push(module);
                break;
            }
        }
    }
    found
}

fn sources() -> (PathBuf, Vec<(PathBuf, String)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let read = files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "main.rs" && n != "lib.rs"))
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
            (f, text)
        })
        .collect();
    (src, read)
}

#[test]
fn the_pipeline_names_no_runtime_kafka_metrics_files_sockets_or_outer_layer() {
    let (src, files) = sources();
    let mut broken = Vec::new();
    for (file, text) in &files {
        if !file.starts_with(src.join("pipeline")) {
            continue;
        }
        for (number, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for name in NOT_IN_PIPELINE {
                if line.contains(name) {
                    broken.push(format!("{}:{}: {name}", file.display(), number + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "the pipeline must stay pure:\n{}", broken.join("\n"));
}

#[test]
fn imports_run_one_way_and_no_two_modules_import_each_other() {
    let (src, files) = sources();
    let modules: BTreeSet<String> = files.iter().map(|(f, _)| module_of(&src, f)).collect();
    let mut imports: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
    for (file, text) in &files {
        let module = modules.get(&module_of(&src, file)).expect("listed above");
        for line in code_lines(text) {
            for target in imported_modules(line, &modules) {
                if target != module {
                    imports.entry(module).or_default().insert(target);
                }
            }
        }
    }
    let mut broken = Vec::new();
    for (module, targets) in &imports {
        for target in targets {
            if module.starts_with("pipeline") && !target.starts_with("pipeline") {
                broken.push(format!(
                    "{module} imports {target}: the pipeline imports nothing outside it"
                ));
            }
            if module.as_str() < target.as_str() && imports.get(target).is_some_and(|t| t.contains(module)) {
                broken.push(format!("{module} and {target} import each other"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    // The check reads what it should: the engine imports the index.
    assert!(imports[&"pipeline::engine".to_string()].contains(&"pipeline::index".to_string()));
}
