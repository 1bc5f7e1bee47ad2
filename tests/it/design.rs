//! docs/DESIGN.md against the code: the layers it lists are the modules and crates
//! there are, no import runs up a layer, and every file and test it (or the README)
//! cites exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text of the section `## title`, up to the next `## `.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("no section {title}"));
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// Every `backticked` word of `text`.
fn ticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The bands of the layers table, top to bottom.
const BANDS: [&str; 5] = [
    "entry points",
    "orchestration",
    "adapters",
    "seams and core",
    "foundations",
];

/// The layers table: each top-level module (`detector`, `cli`, ...) with its rank, its
/// place in the table read top to bottom (a module may import only modules of a
/// higher rank), and every crate named.
fn layers() -> (BTreeMap<String, usize>, BTreeSet<String>) {
    let doc = read("docs/DESIGN.md");
    let mut modules = BTreeMap::new();
    let mut crates = BTreeSet::new();
    let mut bands = Vec::new();
    for row in section(&doc, "Layers").lines() {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(band) = cells.get(1).filter(|c| BANDS.contains(c)) else {
            continue;
        };
        bands.push(*band);
        assert!(cells.len() >= 5, "a band row has four cells: {row}");
        for m in ticked(cells[2]) {
            let name = m.trim_end_matches('/').trim_end_matches(".rs");
            let rank = modules.len();
            assert!(
                modules.insert(name.to_string(), rank).is_none(),
                "{m} is listed twice"
            );
        }
        crates.extend(ticked(cells[3]).into_iter().map(str::to_string));
    }
    assert_eq!(bands, BANDS, "the five bands, in order");
    assert!(modules.len() > 10, "the layers table is read: {modules:?}");
    (modules, crates)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src is readable")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each file under src/, by its path below src/.
fn sources() -> Vec<(String, String)> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&src)
                .expect("below src")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).expect("readable");
            (rel, text)
        })
        .collect()
}

/// The top-level module a path below src/ belongs to.
fn module_of(rel: &str) -> &str {
    rel.split('/').next().unwrap_or(rel).trim_end_matches(".rs")
}

#[test]
fn the_layers_name_every_module_and_every_crate() {
    let (modules, crates) = layers();
    for (rel, _) in sources() {
        assert!(
            modules.contains_key(module_of(&rel)),
            "src/{rel} is in no layer of docs/DESIGN.md"
        );
    }
    for m in modules.keys() {
        let src = root().join("src");
        assert!(
            src.join(format!("{m}.rs")).is_file() || src.join(m).is_dir(),
            "docs/DESIGN.md lists {m}, which src/ does not have"
        );
    }
    let manifest = read("Cargo.toml");
    let deps = manifest
        .split("\n[dependencies]\n")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] table");
    for line in deps.lines() {
        let Some((name, _)) = line.split_once(" = ") else {
            continue;
        };
        if line.starts_with('#') {
            continue;
        }
        assert!(
            crates.contains(name.trim()),
            "the crate {name} is in no layer of docs/DESIGN.md"
        );
    }
}

#[test]
fn no_import_runs_up_a_layer() {
    let (modules, _) = layers();
    // Names lib.rs hands on from a module (`crate::error_chain` is `errors`'s).
    let lib = read("src/lib.rs");
    let mut reexports = BTreeMap::new();
    for line in lib.lines() {
        if let Some(rest) = line.strip_prefix("pub use ") {
            if let Some((module, names)) = rest.split_once("::") {
                for name in names.trim_matches(|c| "{};".contains(c)).split(',') {
                    reexports.insert(name.trim().to_string(), module.to_string());
                }
            }
        }
    }
    let mut checked = 0;
    for (rel, text) in sources() {
        let from = module_of(&rel);
        if rel == "lib.rs" || from == "testing" || rel.ends_with("/tests.rs") {
            continue;
        }
        // Test modules may use the test support above everything.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for part in line.split("crate::").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let to = reexports.get(&name).map_or(name.as_str(), String::as_str);
                if to == from {
                    continue;
                }
                let (Some(a), Some(b)) = (modules.get(from), modules.get(to)) else {
                    panic!("src/{rel}:{}: crate::{name} is in no layer", n + 1);
                };
                assert!(
                    b > a,
                    "src/{rel}:{}: {from} (rank {a}) imports {to} (rank {b}), which is not listed after it",
                    n + 1
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "imports were read: {checked}");
}

/// The names of every test: a Rust function under `#[test]` or `#[tokio::test]` (other
/// attributes may come between), a case of the store's conformance suite, and a
/// Python `test_` method.
fn test_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for dir in ["src", "tests", "benches"] {
        let mut files = Vec::new();
        collect_text(&root().join(dir), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            // The conformance suite's cases, which every store's tests run.
            if f.to_string_lossy().contains("store/conformance/") {
                names.extend(lines.iter().filter_map(|l| {
                    l.strip_prefix("pub async fn ")
                        .and_then(|r| r.split(['(', '<']).next())
                        .map(str::to_string)
                }));
            }
            for (i, line) in lines.iter().enumerate() {
                if let Some(name) = line
                    .strip_prefix("def test_")
                    .and_then(|r| r.split('(').next())
                {
                    names.insert(format!("test_{name}"));
                }
                if !(line.starts_with("#[test]") || line.starts_with("#[tokio::test")) {
                    continue;
                }
                let after = lines[i + 1..].iter().find(|l| !l.starts_with("#["));
                if let Some(name) = after
                    .and_then(|l| l.split("fn ").nth(1))
                    .and_then(|r| r.split(['(', '<']).next())
                {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names
}

#[test]
fn every_file_and_test_the_docs_cite_exists() {
    let tests = test_names();
    assert!(tests.len() > 300, "the tests are read: {}", tests.len());
    for doc in ["docs/DESIGN.md", "README.md"] {
        let text = read(doc);
        for cited in ticked(&text) {
            let path = cited.split([':', ' ', '#']).next().unwrap_or(cited);
            // What the test command installs is not in a fresh clone.
            let installed = path.contains("node_modules") || path.starts_with(".venv");
            let in_a_folder = [
                "src/", "tests/", "benches/", "scripts/", "deploy/", "docs/", "events/",
            ]
            .iter()
            .any(|p| path.starts_with(p));
            let at_the_root = !path.contains('/')
                && !path.starts_with('.')
                && [".yaml", ".toml", ".md", ".txt", ".lock"]
                    .iter()
                    .any(|e| path.ends_with(e));
            if (in_a_folder || at_the_root) && !installed && !path.contains('*') {
                assert!(
                    root().join(path).exists(),
                    "{doc} cites {path}, which does not exist"
                );
            }
            let is_test_name = cited.matches('_').count() >= 3
                && !cited.starts_with("aws_")
                && cited
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_test_name {
                assert!(
                    tests.contains(cited),
                    "{doc} cites the test {cited}, which is no test"
                );
            }
        }
    }
}

fn collect_text(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if !p.ends_with("node_modules") {
                collect_text(&p, out);
            }
        } else if p
            .extension()
            .is_some_and(|x| x == "rs" || x == "py" || x == "sh")
        {
            out.push(p);
        }
    }
}

/// The top-level modules each top-level module imports (test code aside).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in sources() {
        let from = module_of(&rel).to_string();
        if rel == "lib.rs" || rel.ends_with("/tests.rs") {
            continue;
        }
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for part in line.split("crate::").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name != from && !name.is_empty() {
                    out.entry(from.clone()).or_default().insert(name);
                }
            }
        }
    }
    out
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let imports = imports();
    for (from, tos) in &imports {
        for to in tos {
            assert!(
                !imports.get(to).is_some_and(|back| back.contains(from)),
                "{from} and {to} import each other"
            );
        }
    }
}

#[test]
fn no_file_under_src_is_over_700_lines_but_tests() {
    for (rel, text) in sources() {
        if rel.ends_with("/tests.rs") {
            continue;
        }
        let lines = text.lines().count();
        assert!(
            lines <= 700,
            "src/{rel} has {lines} lines: split it by what it holds (docs/DESIGN.md, \"Where things go\")"
        );
    }
}
