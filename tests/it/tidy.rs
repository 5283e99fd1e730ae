//! Tidy: the tiers and layers of `src/`, checked from the source text (in the spirit of
//! rust-analyzer's tidy tests). `src/` holds a handful of tiers in data-flow order (`proto`,
//! `domain`, `io`, `node`, `shell`, `tools`); inside a tier folder each module sits in one layer.
//! A module may use lower tiers, and in its own tier lower layers only: nothing reaches up, and no
//! two modules import each other. The `domain` tier does no I/O: no files, sockets, processes,
//! tokio or sled.
//!
//! Test code (`tests.rs`, `test_support.rs`, an inline `#[cfg(test)] mod tests`) may reach
//! across: a test of `tls` builds certificates with `certs`.

use std::collections::BTreeMap;
use std::path::Path;

/// The tiers, bottom to top; each but `proto` and `node` is a folder of modules.
const TIERS: &[&str] = &["proto", "domain", "io", "node", "shell", "tools"];

/// The pure tier, which does no I/O.
const PURE: &str = "domain";

/// What I/O looks like in source text.
const IO: &[&str] = &["std::fs", "std::net", "std::process", "tokio", "sled"];

/// Bottom to top, tier by tier. Modules in one layer must not use each other.
const LAYERS: &[&[&str]] = &[
    // the generated wire types
    &["proto"],
    // text forms: hex, dates, the excerpt an error may quote
    &["domain::hex", "domain::date", "domain::excerpt"],
    // shared model: country, cube, period, dimensions, cells, consortium policy
    &["domain::model"],
    // what configuration files share: their error, member codes, disclosure floors
    &["domain::config"],
    // the consortium: policy, canonical document and digest, the version in force
    &["domain::consortium"],
    &["domain::record"],
    &["domain::aggregate"],
    // sign, verify, feed rules; signed notes (attestations)
    &["domain::dataset", "domain::attest"],
    // the common view; the export file's format
    &["domain::reconcile", "domain::export"],
    // record files; serving HTTP with deadlines and caps
    &["io::reader", "io::http"],
    // the only module that knows sled
    &["io::store"],
    // the only module that builds rustls configurations
    &["io::tls"],
    &["io::config"],
    // transport through a trait it is given; files into the store
    &["io::exchange", "io::ingest"],
    // a certified view, written to and checked from a bundle directory
    &["io::certify"],
    // the node's operations
    &["node"],
    // shells; SDMX REST over the node's view
    &["shell::admin", "shell::report", "shell::sdmx"],
    // the web dashboard (its listener serves SDMX too), over the node and the status report
    &["shell::dashboard"],
    &["shell::daemon"],
    // tools
    &["tools::certs", "tools::synth"],
    &["tools::cluster"],
    &["tools::demo"],
];

/// The tiers that are folders of modules.
const FOLDERS: &[&str] = &["domain", "io", "shell", "tools"];

/// Files of the library that are not a layer's module: the crate root, the binary, and the
/// folders' own `mod.rs`, which only declare their modules.
const OUTSIDE: &[&str] = &["lib", "main", "cli", "domain", "io", "shell", "tools"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn tier_of(module: &str) -> usize {
    let tier = module.split("::").next().unwrap_or(module);
    TIERS.iter().position(|t| *t == tier).unwrap_or(usize::MAX)
}

/// The module a path names: `domain::model` for `domain::model::Cube`, `node` for `node::Node`.
fn module_of(segments: &[String]) -> String {
    match segments {
        [tier, module, ..] if FOLDERS.contains(&tier.as_str()) => format!("{tier}::{module}"),
        [first, ..] => first.clone(),
        [] => String::new(),
    }
}

/// Source text without its test code and without `//` comments.
fn code_of(source: &str) -> String {
    let code = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    code.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules a source text uses through `crate::`, without its test code.
fn uses(source: &str) -> Vec<String> {
    let code = code_of(source);
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let mut paths = Vec::new();
        use_tree(rest, &mut Vec::new(), &mut paths);
        out.extend(paths.iter().map(|p| module_of(p)));
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out.sort();
    out.dedup();
    out
}

/// Reads a use tree (`a::b`, `a::{b::C, d}`, nested groups) from the start of `text`, each path
/// it names pushed (its first two segments are all that matter) onto `paths`; the text read.
fn use_tree(text: &str, prefix: &mut Vec<String>, paths: &mut Vec<Vec<String>>) -> usize {
    let mut at = 0;
    let depth = prefix.len();
    loop {
        let rest = &text[at..];
        let skipped = rest.len() - rest.trim_start().len();
        at += skipped;
        let rest = &text[at..];
        if let Some(group) = rest.strip_prefix('{') {
            at += 1;
            let mut inner = group;
            loop {
                let read = use_tree(inner, prefix, paths);
                at += read;
                inner = &inner[read..];
                let trimmed = inner.trim_start();
                at += inner.len() - trimmed.len();
                inner = trimmed;
                match inner.chars().next() {
                    Some(',') => {
                        at += 1;
                        inner = &inner[1..];
                    }
                    Some('}') => {
                        at += 1;
                        break;
                    }
                    _ => break,
                }
            }
            prefix.truncate(depth);
            return at;
        }
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            // `a::*` or the end of the text: the path read so far.
            if !prefix.is_empty() {
                paths.push(prefix.clone());
            }
            prefix.truncate(depth);
            return at;
        }
        at += ident.len();
        prefix.push(ident);
        if text[at..].starts_with("::") {
            at += 2;
            continue;
        }
        paths.push(prefix.clone());
        prefix.truncate(depth);
        return at;
    }
}

/// Every import against the tier and layer order, and every I/O in the pure tier, one line each.
fn violations(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, source) in files {
        let module = file_module(path);
        if OUTSIDE.contains(&module.as_str()) || is_test_file(path) {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            out.push(format!(
                "{path}: module `{module}` is in no layer: place it in LAYERS (tests/it/tidy.rs)"
            ));
            continue;
        };
        if module.starts_with(&format!("{PURE}::")) {
            let code = code_of(source);
            for io in IO {
                if code.contains(io) {
                    out.push(format!("{path}: `{module}` is in the pure tier but uses `{io}`"));
                }
            }
        }
        for used in uses(source) {
            if used == module {
                continue;
            }
            let (tier, used_tier) = (tier_of(&module), tier_of(&used));
            match layer_of(&used) {
                None => out.push(format!("{path}: uses `{used}`, which is in no layer")),
                Some(_) if used_tier > tier => out.push(format!(
                    "{path}: `{module}` (tier {}) uses `{used}` (tier {}), a tier above it",
                    TIERS[tier], TIERS[used_tier]
                )),
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

/// `src/io/store/feeds.rs` → `io::store`; `src/node/publish.rs` → `node`; `src/io/mod.rs` → `io`.
fn file_module(path: &str) -> String {
    let rel = path.strip_prefix("src/").unwrap_or(path);
    let segments: Vec<String> = rel
        .split('/')
        .map(|s| s.strip_suffix(".rs").unwrap_or(s).to_string())
        .collect();
    match segments.as_slice() {
        [tier, module, ..] if FOLDERS.contains(&tier.as_str()) && module != "mod" => {
            format!("{tier}::{module}")
        }
        [first, ..] => first.clone(),
        [] => String::new(),
    }
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
fn src_follows_the_tier_and_layer_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = BTreeMap::new();
    read_sources(&root.join("src"), root, &mut files);
    assert!(files.len() > 20, "read only {} files", files.len());
    let found = violations(&files);
    assert!(
        found.is_empty(),
        "imports against the tier and layer order:\n{}",
        found.join("\n")
    );
}

#[test]
fn src_has_at_most_eight_top_level_modules_in_tier_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut top: Vec<String> = std::fs::read_dir(&root)
        .expect("read src")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != "lib.rs" && name != "main.rs")
        .collect();
    // `proto` is declared inline in lib.rs.
    top.push("proto".into());
    assert!(top.len() <= 8, "src/ has {} top-level modules: {top:?}", top.len());
    // The layers list the tiers in order.
    let tiers: Vec<usize> = LAYERS.iter().flat_map(|l| l.iter()).map(|m| tier_of(m)).collect();
    assert!(
        tiers.windows(2).all(|w| w[0] <= w[1]),
        "LAYERS out of tier order: {tiers:?}"
    );
}

#[test]
fn the_checker_catches_upward_imports_pairs_and_io_in_the_pure_tier() {
    let files: BTreeMap<String, String> = [
        (
            "src/domain/record/mod.rs",
            "use crate::domain::model::Country;\nuse crate::node::Node;\n",
        ),
        (
            "src/io/exchange/sync.rs",
            "use crate::{domain::dataset::Head, io::ingest::Ingest};\n",
        ),
        (
            "src/domain/dataset/mod.rs",
            "use crate::domain::model::Cube;\n// std::fs in a comment is fine\n#[cfg(test)]\nmod tests {\n use crate::node::Node;\n}\n",
        ),
        ("src/domain/dataset/tests.rs", "use crate::node::Node;\n"),
        ("src/domain/gadget.rs", "use crate::domain::model::Country;\n"),
        ("src/domain/model/files.rs", "pub fn load() { let _ = std::fs::read(\"x\"); }\n"),
        ("src/io/store/mod.rs", "use crate::domain::{model::Cube, record::{Record, validate}};\nuse crate::shell::admin::Admin;\n"),
    ]
    .into_iter()
    .map(|(p, s)| (p.to_string(), s.to_string()))
    .collect();
    let found = violations(&files);
    assert_eq!(found.len(), 5, "{found:#?}");
    // One line per violation, in path order.
    assert!(
        found[0].contains("module `domain::gadget` is in no layer"),
        "{found:#?}"
    );
    assert!(
        found[1].contains("`domain::model` is in the pure tier but uses `std::fs`"),
        "{found:#?}"
    );
    assert!(
        found[2].contains("`domain::record` (tier domain) uses `node` (tier node), a tier above it"),
        "{found:#?}"
    );
    assert!(
        found[3].contains("`io::exchange` uses `io::ingest` of its own layer"),
        "{found:#?}"
    );
    assert!(
        found[4].contains("`io::store` (tier io) uses `shell::admin` (tier shell), a tier above it"),
        "{found:#?}"
    );
}

#[test]
fn grouped_nested_and_inline_paths_are_read() {
    assert_eq!(
        uses("use crate::{a::B, c};\nlet x = crate::d::e();\n#[cfg(test)]\nmod tests { use crate::z; }"),
        vec!["a", "c", "d"]
    );
    assert_eq!(
        uses("use crate::{domain::{model::Cube, record::{Record, validate}}, io::store::Store, node};"),
        vec!["domain::model", "domain::record", "io::store", "node"]
    );
    assert_eq!(uses("let t = crate::domain::date::unix_now();"), vec!["domain::date"]);
}
