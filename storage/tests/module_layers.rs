//! The modules of `storage/src` form layers, and each imports only from layers below it,
//! so the crate has no import cycle (the layering is described in `src/lib.rs`).
//!
//! Goal: a new `use crate::…` that points up a layer (and so could close a cycle) fails
//! here, naming the module and the import. Method: read every module declared in
//! `src/lib.rs`, collect the `crate::<module>` paths in its source (comments skipped,
//! unit tests included), and check each against the table below.

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, lowest first. A module may use modules of lower layers only.
const LAYERS: &[(&str, &[&str])] = &[
    ("vocabulary", &["error", "config", "io", "log_offset", "placement"]),
    ("files and signals", &["fault_io", "segment", "checkpoint", "store_meta", "watch"]),
    ("log structures", &["commit_log", "consume_queue", "index"]),
    ("one open log", &["log_state", "recovery"]),
    ("its tasks and its opening", &["log_writer", "replay"]),
    ("the facade", &["log_store"]),
    ("extensions of the facade", &["query", "replica", "retention"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, modules)| modules.contains(&module))
}

/// Modules declared in `lib.rs` (`mod x;` or `pub mod x;`).
fn declared_modules(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod "))?;
            Some(rest.strip_suffix(';')?.to_string())
        })
        .collect()
}

/// The `crate::<module>` paths a source file uses, outside comments.
fn crate_imports(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in source.lines().filter(|line| !line.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String =
                rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            assert!(
                !name.is_empty(),
                "use one `crate::<module>::…` path per import, so this test can read it: {line}"
            );
            out.insert(name);
        }
    }
    out
}

#[test]
fn storage_modules_import_only_from_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let modules = declared_modules(&lib);
    assert!(modules.len() >= 20, "lib.rs declares {modules:?}");
    let mut violations = Vec::new();
    for module in &modules {
        let Some(layer) = layer_of(module) else {
            violations.push(format!("{module} is in no layer: add it to LAYERS and lib.rs"));
            continue;
        };
        let source = std::fs::read_to_string(src.join(format!("{module}.rs"))).unwrap();
        for import in crate_imports(&source) {
            match layer_of(&import) {
                Some(used) if used < layer => {}
                Some(used) => violations.push(format!(
                    "{module} ({}) uses crate::{import} ({}), not a lower layer",
                    LAYERS[layer].0, LAYERS[used].0
                )),
                None => violations.push(format!("{module} uses crate::{import}, in no layer")),
            }
        }
    }
    for (_, listed) in LAYERS {
        for module in *listed {
            if !modules.iter().any(|m| m == module) {
                violations.push(format!("LAYERS lists {module}, which lib.rs does not declare"));
            }
        }
    }
    assert!(violations.is_empty(), "storage layering broken:\n{}", violations.join("\n"));
}

#[test]
fn the_scanner_sees_an_upward_import() {
    // The check above cannot pass vacuously: the scanner finds paths in code and skips
    // comments.
    let source = "use crate::log_store::LogStore;\n// crate::replica\nfn f() { crate::io::x(); }";
    let found: Vec<String> = crate_imports(source).into_iter().collect();
    assert_eq!(found, ["io", "log_store"]);
}
