//! The README's Rust examples are the example targets, byte for byte, so the code a
//! newcomer copies is the code that CI compiles and runs (`scripts/readme-test.sh` runs
//! the examples and the README's shell blocks against real processes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

fn readme() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join("README.md")).expect("README.md")
}

/// `(path, code)` of every `<!-- readme-example: PATH ... -->` and the fenced block after it.
fn examples(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("<!-- readme-example: ") else { continue };
        let path = rest.trim_end_matches(" -->").split(' ').next().unwrap().to_string();
        let fence = lines.next().expect("a fenced block after the marker");
        assert!(fence.starts_with("```"), "marker for {path} not followed by a fence: {fence}");
        let mut code = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            code.push_str(l);
            code.push('\n');
        }
        out.push((path, code));
    }
    out
}

#[test]
fn readme_examples_are_the_example_targets() {
    let text = readme();
    let found = examples(&text);
    assert!(
        found.iter().any(|(p, _)| p == "client/examples/readme.rs"),
        "README shows no client/examples/readme.rs: {:?}",
        found.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (path, code) in found {
        let file = std::fs::read_to_string(root.join(&path))
            .unwrap_or_else(|e| panic!("README names {path}: {e}"));
        assert_eq!(code, file, "README's block for {path} differs from the file");
    }
}

#[test]
fn readme_marks_the_commands_the_readme_test_runs() {
    let text = readme();
    for name in ["start", "bench", "cluster"] {
        let marker = format!("<!-- readme-test: {name} -->");
        let at = text.find(&marker).unwrap_or_else(|| panic!("README lacks {marker}"));
        let after = &text[at + marker.len()..];
        assert!(after.trim_start().starts_with("```sh"), "{marker} is not followed by a sh block");
    }
}
