//! Tidy: the layer order of `src/`, checked from the source text (in the spirit of
//! rust-analyzer's tidy tests). Each top-level module sits in one layer; a module may use
//! modules of lower layers only. So no module reaches up, and no two modules import each other.
//!
//! Test code (`tests.rs`, `test_support.rs`, an inline `#[cfg(test)] mod tests`) may reach
//! across: a test of `tls` builds certificates with `certs`.

use std::collections::BTreeMap;
use std::path::Path;

/// Bottom to top. Modules in one layer must not use each other.
const LAYERS: &[&[&str]] = &[
    // leaf utilities and the generated wire types; serving HTTP with deadlines and caps
    &["hex", "date", "excerpt", "proto", "http"],
    // shared model: country, cube, period, dimensions, cells, consortium policy
    &["model"],
    &["record"],
    &["aggregate"],
    // sign, verify, feed rules; signed notes (attestations)
    &["dataset", "attest"],
    // the only module that knows sled
    &["store"],
    &["tls", "certs"],
    &["config"],
    // the consortium document as versioned state
    &["governance"],
    // transport through a trait it is given; the common view; files in and out
    &["exchange", "reconcile", "export", "ingest", "synth"],
    // a certified view: the view, its entries and the attestations over it, written and checked
    &["certify"],
    // the node's operations
    &["node"],
    // shells
    &["admin", "report"],
    // the web dashboard, over the node and the status report
    &["dashboard"],
    &["daemon"],
    &["cluster"],
    &["demo"],
];

/// Files of the library that are not a layer's module: the crate root, and the binary.
const OUTSIDE: &[&str] = &["lib", "main", "cli"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level modules a source text uses through `crate::`, without its test code.
fn uses(source: &str) -> Vec<String> {
    let code = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::B, c};`: every path in the group.
            let end = group.find('}').unwrap_or(group.len());
            for path in group[..end].split(',') {
                out.push(first_segment(path.trim()));
            }
        } else {
            out.push(first_segment(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out.sort();
    out.dedup();
    out
}

fn first_segment(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Every import against the layer order, as one line each.
fn violations(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, source) in files {
        let module = top_module(path);
        if OUTSIDE.contains(&module.as_str()) || is_test_file(path) {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            out.push(format!(
                "{path}: module `{module}` is in no layer: place it in LAYERS (tests/it/tidy.rs)"
            ));
            continue;
        };
        for used in uses(source) {
            if used == module {
                continue;
            }
            match layer_of(&used) {
                None => out.push(format!("{path}: uses `{used}`, which is in no layer")),
                Some(l) if l > own => out.push(format!(
                    "{path}: `{module}` (layer {own}) uses `{used}` (layer {l}), which sits above it"
                )),
                Some(l) if l == own => out.push(format!(
                    "{path}: `{module}` uses `{used}` of its own layer {own}: modules of one layer stay apart"
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// `src/store/feeds.rs` → `store`; `src/hex.rs` → `hex`.
fn top_module(path: &str) -> String {
    let rel = path.strip_prefix("src/").unwrap_or(path);
    let first = rel.split('/').next().unwrap_or(rel);
    first.strip_suffix(".rs").unwrap_or(first).to_string()
}

fn is_test_file(path: &str) -> bool {
    path.ends_with("/tests.rs") || path.ends_with("/test_support.rs") || path.contains("/tests/")
}

fn read_sources(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            out.insert(rel, text);
        }
    }
}

#[test]
fn src_follows_the_layer_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = BTreeMap::new();
    read_sources(&root.join("src"), root, &mut files);
    assert!(files.len() > 20, "read only {} files", files.len());
    let found = violations(&files);
    assert!(
        found.is_empty(),
        "imports against the layer order:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_catches_an_upward_import_and_a_pair_that_import_each_other() {
    let files: BTreeMap<String, String> = [
        (
            "src/record/mod.rs",
            "use crate::model::Country;\nuse crate::node::Node;\n",
        ),
        ("src/exchange/sync.rs", "use crate::{dataset::Head, reconcile::View};\n"),
        (
            "src/dataset/mod.rs",
            "use crate::model::Cube;\n#[cfg(test)]\nmod tests {\n use crate::node::Node;\n}\n",
        ),
        ("src/dataset/tests.rs", "use crate::node::Node;\n"),
        ("src/gadget.rs", "use crate::model::Country;\n"),
    ]
    .into_iter()
    .map(|(p, s)| (p.to_string(), s.to_string()))
    .collect();
    let found = violations(&files);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].contains("`exchange` uses `reconcile` of its own layer"),
        "{found:#?}"
    );
    assert!(found[1].contains("module `gadget` is in no layer"), "{found:#?}");
    assert!(
        found[2].contains("`record` (layer 2) uses `node` (layer 11), which sits above it"),
        "{found:#?}"
    );
}

#[test]
fn grouped_and_inline_paths_are_read() {
    assert_eq!(
        uses("use crate::{a::B, c};\nlet x = crate::d::e();\n#[cfg(test)]\nmod tests { use crate::z; }"),
        vec!["a", "c", "d"]
    );
}
