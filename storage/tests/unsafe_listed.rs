//! Every `unsafe` block in `storage/src` is listed in `storage/UNSAFE.md` and carries a
//! `// SAFETY:` comment.
//!
//! Goal: UNSAFE.md stays true. Method: count the `unsafe {` blocks of each source file
//! (comments skipped) and compare with the table rows naming that file; check that the
//! lines just above each block hold a `// SAFETY:` comment.

use std::collections::BTreeMap;
use std::path::Path;

/// `unsafe` blocks per file, and the blocks without a `// SAFETY:` comment above them.
fn unsafe_blocks(src: &Path) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut counts = BTreeMap::new();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("//") || !line.contains("unsafe {") {
                continue;
            }
            *counts.entry(name.clone()).or_insert(0) += 1;
            let above = &lines[index.saturating_sub(3)..index];
            if !above.iter().any(|l| l.trim_start().starts_with("// SAFETY:")) {
                missing.push(format!("{name}:{}", index + 1));
            }
        }
    }
    (counts, missing)
}

#[test]
fn every_unsafe_block_is_listed_with_its_reason() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (counts, missing) = unsafe_blocks(&root.join("src"));
    assert!(missing.is_empty(), "unsafe blocks without a // SAFETY: comment: {missing:?}");
    let listing = std::fs::read_to_string(root.join("UNSAFE.md")).unwrap();
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    for line in listing.lines() {
        let Some(rest) = line.strip_prefix("| `") else { continue };
        let Some((file, _)) = rest.split_once('`') else { continue };
        *rows.entry(file.to_string()).or_insert(0) += 1;
    }
    assert_eq!(counts, rows, "unsafe blocks per file (left: sources, right: UNSAFE.md)");
}
