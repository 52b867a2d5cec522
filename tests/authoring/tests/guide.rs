//! `docs/authoring.md` shows only what is compiled and tested:
//!
//! - every ```rust block is a contiguous run of lines of a compiled file: this crate's, the
//!   provider outside the workspace's (`tests/outside-provider`, built and tested by its xtask
//!   stage) or a sample's; a line `// …` separates excerpts of one file, in their order;
//! - every ```toml block is part of a manifest that is built: the outside provider's or a
//!   sample's (each value equal, a table a subset of the manifest's), except that the package's
//!   name and description are the author's, and a dependency on a winprov crate is checked
//!   against that crate instead: its path ends with the crate's directory, its version is the
//!   workspace's `major.minor`, its features exist.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use toml::{Table, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The guide's fenced blocks whose info string starts with `language`, with their first line.
fn blocks(guide: &str, language: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut current: Option<(usize, bool, String)> = None;
    for (number, line) in guide.lines().enumerate() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => {
                let wanted = info.split([',', ' ']).next() == Some(language);
                current = Some((number + 2, wanted, String::new()));
            }
            (Some(_), Some("")) => {
                let (first, wanted, text) = current.take().unwrap();
                if wanted {
                    found.push((first, text));
                }
            }
            (Some((_, _, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    found
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
}

/// The compiled files a Rust block may quote.
fn quotable() -> Vec<PathBuf> {
    let root = root();
    let mut dirs = vec![
        root.join("tests/authoring/src"),
        root.join("tests/authoring/tests"),
        root.join("tests/outside-provider/src"),
        root.join("tests/outside-provider/tests"),
    ];
    for sample in std::fs::read_dir(root.join("samples")).unwrap() {
        dirs.push(sample.unwrap().path().join("src"));
    }
    dirs.iter().flat_map(|dir| rust_files(dir)).collect()
}

/// Whether `excerpts` (each a run of lines) appear in `file`, in order, each contiguous.
fn quotes(file: &str, excerpts: &[Vec<&str>]) -> bool {
    let lines: Vec<&str> = file.lines().map(str::trim_end).collect();
    let mut from = 0;
    for excerpt in excerpts {
        let found =
            (from..lines.len()).find(|&start| lines[start..].starts_with(excerpt.as_slice()));
        match found {
            Some(start) => from = start + excerpt.len(),
            None => return false,
        }
    }
    true
}

#[test]
fn every_rust_block_is_compiled_code() {
    let guide = read(&root().join("docs/authoring.md"));
    let files: Vec<(PathBuf, String)> = quotable()
        .into_iter()
        .map(|p| (p.clone(), read(&p)))
        .collect();
    let rust = blocks(&guide, "rust");
    assert!(rust.len() >= 10, "{} Rust blocks", rust.len());
    for (line, block) in rust {
        let mut excerpts = vec![Vec::new()];
        for text in block.lines().map(str::trim_end) {
            if text == "// …" {
                excerpts.push(Vec::new());
            } else {
                excerpts.last_mut().unwrap().push(text);
            }
        }
        assert!(
            excerpts.iter().all(|e| !e.is_empty()),
            "docs/authoring.md:{line}: an empty excerpt"
        );
        assert!(
            files.iter().any(|(_, text)| quotes(text, &excerpts)),
            "docs/authoring.md:{line}: this block is not in any compiled file (tests/authoring, \
             tests/outside-provider, samples/*/src):\n{block}"
        );
    }
}

/// The published winprov crates an author depends on: name, directory, features.
fn winprov_crates() -> Vec<(String, String, Table)> {
    let root = root();
    [
        "crates/core",
        "crates/nspv2",
        "crates/tspi",
        "crates/wbem",
        "crates/wsp",
    ]
    .into_iter()
    .map(|dir| {
        let manifest: Table = read(&root.join(dir).join("Cargo.toml")).parse().unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_string();
        let features = manifest
            .get("features")
            .and_then(Value::as_table)
            .cloned()
            .unwrap_or_default();
        (name, dir.to_string(), features)
    })
    .collect()
}

/// The workspace's version as a dependency requirement: `major.minor`.
fn requirement() -> String {
    let manifest: Table = read(&root().join("Cargo.toml")).parse().unwrap();
    let version = manifest["workspace"]["package"]["version"]
        .as_str()
        .unwrap();
    let mut parts = version.split('.');
    format!("{}.{}", parts.next().unwrap(), parts.next().unwrap())
}

/// A dependency on a winprov crate, as the guide writes it.
fn check_dependency(name: &str, spec: &Value, at: &str) {
    let crates = winprov_crates();
    let (_, dir, features) = crates
        .iter()
        .find(|(crate_name, _, _)| crate_name == name)
        .unwrap_or_else(|| panic!("{at}: `{name}` is not a published winprov crate"));
    let version = |v: &Value| {
        assert_eq!(
            v.as_str(),
            Some(requirement().as_str()),
            "{at}: {name}'s version"
        )
    };
    match spec {
        Value::String(_) => version(spec),
        Value::Table(table) => {
            for (key, value) in table {
                match key.as_str() {
                    "version" => version(value),
                    "path" => {
                        let path = value.as_str().unwrap();
                        assert!(
                            path.ends_with(dir.as_str()),
                            "{at}: {name} at {path}, not …/{dir}"
                        );
                    }
                    "git" => assert_eq!(
                        value.as_str(),
                        root_manifest_repository().as_deref(),
                        "{at}: {name}'s git repository"
                    ),
                    "features" => {
                        for feature in value.as_array().unwrap() {
                            let feature = feature.as_str().unwrap();
                            assert!(
                                features.contains_key(feature),
                                "{at}: {name} has no feature {feature}"
                            );
                        }
                    }
                    other => panic!("{at}: {name}: unexpected key {other}"),
                }
            }
        }
        other => panic!("{at}: {name} = {other}"),
    }
}

fn root_manifest_repository() -> Option<String> {
    let manifest: Table = read(&root().join("Cargo.toml")).parse().unwrap();
    manifest["workspace"]["package"]["repository"]
        .as_str()
        .map(str::to_string)
}

/// Whether `part` is contained in `whole`: tables key by key (except the keys `free` names and
/// the dependency tables, checked by `check_dependency` instead), everything else equal.
fn contained(part: &Value, whole: Option<&Value>, path: &str) -> bool {
    match (part, whole) {
        (_, _) if matches!(path, "package.name" | "package.description") => true,
        (Value::Table(deps), _) if path == "dependencies" || path == "dev-dependencies" => {
            for (name, spec) in deps {
                check_dependency(name, spec, path);
            }
            true
        }
        (Value::Table(part), Some(Value::Table(whole))) => part
            .iter()
            .all(|(key, value)| contained(value, whole.get(key), &join(path, key))),
        (_, Some(whole)) => part == whole,
        (_, None) => false,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[test]
fn every_toml_block_agrees_with_a_built_manifest() {
    let root = root();
    let guide = read(&root.join("docs/authoring.md"));
    let mut manifests = vec![root.join("tests/outside-provider/Cargo.toml")];
    for sample in [
        "directory-admin",
        "email-directory",
        "line-simulator",
        "traffic-meter",
    ] {
        manifests.push(root.join("samples").join(sample).join("Cargo.toml"));
    }
    let manifests: Vec<Value> = manifests
        .iter()
        .map(|m| Value::Table(read(m).parse().unwrap()))
        .collect();
    let toml = blocks(&guide, "toml");
    assert!(toml.len() >= 5, "{} TOML blocks", toml.len());
    for (line, block) in toml {
        let part = Value::Table(
            block
                .parse::<Table>()
                .unwrap_or_else(|e| panic!("docs/authoring.md:{line}: {e}")),
        );
        assert!(
            manifests
                .iter()
                .any(|whole| contained(&part, Some(whole), "")),
            "docs/authoring.md:{line}: this block is not part of tests/outside-provider's or a \
             sample's Cargo.toml:\n{block}"
        );
    }
}

/// The checks themselves see a block that drifted.
#[test]
fn the_checks_see_what_drifted() {
    let file = "fn a() {\n    one();\n    two();\n}\n\nfn b() {}\n";
    assert!(quotes(file, &[vec!["    one();", "    two();"]]));
    assert!(quotes(file, &[vec!["fn a() {"], vec!["fn b() {}"]]));
    assert!(
        !quotes(file, &[vec!["fn b() {}"], vec!["fn a() {"]]),
        "out of order"
    );
    assert!(!quotes(file, &[vec!["    one();", "    three();"]]));
    let whole: Value = Value::Table(
        "[profile.release]\nlto = true\nstrip = \"symbols\"\n"
            .parse()
            .unwrap(),
    );
    let part = |text: &str| Value::Table(text.parse().unwrap());
    assert!(contained(
        &part("[profile.release]\nlto = true\n"),
        Some(&whole),
        ""
    ));
    assert!(!contained(
        &part("[profile.release]\nlto = false\n"),
        Some(&whole),
        ""
    ));
    assert!(!contained(
        &part("[profile.release]\npanic = \"abort\"\n"),
        Some(&whole),
        ""
    ));
    let requirement = requirement();
    let deps = part(&format!(
        "[dependencies]\nwinprov-nspv2 = \"{requirement}\"\n"
    ));
    assert!(contained(&deps, Some(&whole), ""));
    let bad_feature = part(
        "[dev-dependencies]\nwinprov-nspv2 = { path = \"x/crates/nspv2\", features = [\"simulator\"] }\n",
    );
    let caught = std::panic::catch_unwind(|| contained(&bad_feature, Some(&whole), ""));
    assert!(caught.is_err(), "a feature the crate does not have");
}
