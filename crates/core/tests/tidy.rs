//! Source rules the compiler does not check: `unsafe` lives only in `src/ffi.rs` and
//! `src/lease.rs`, and every
//! module starts with `//!` documentation.
#![cfg(not(loom))]

use std::path::Path;

fn sources() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn unsafe_code_is_confined_to_the_named_modules() {
    for (name, text) in sources() {
        if name == "ffi.rs" || name == "lease.rs" {
            continue;
        }
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let mentions_unsafe = code
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|word| word == "unsafe");
            assert!(
                !mentions_unsafe,
                "src/{name}:{}: unsafe outside src/ffi.rs and src/lease.rs",
                number + 1
            );
        }
    }
}

#[test]
fn every_module_is_documented() {
    for (name, text) in sources() {
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("//!") || first.starts_with("#![doc"),
            "src/{name} does not start with module documentation"
        );
    }
}
