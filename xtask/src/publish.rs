//! The published crates: their documentation as docs.rs builds it, and their packages as
//! crates.io receives them.
//!
//! A workspace member is published unless its manifest says `publish = false`; a new one is
//! picked up by itself, and `publish_metadata_is_complete` holds it to what crates.io and
//! docs.rs show (description, README, keywords, categories, docs.rs targets and features).

use crate::WINDOWS_TARGET;
use crate::discover::cargo_metadata;
use crate::stage::{cargo, run as sh};
use anyhow::Result;
use serde_json::Value;

/// The members published to crates.io (`publish` unset or naming crates-io), in workspace order.
pub fn published(metadata: &Value) -> Vec<String> {
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|package| match &package["publish"] {
            Value::Null => true,
            Value::Array(registries) => registries.iter().any(|r| r == "crates-io"),
            _ => false,
        })
        .filter_map(|package| package["name"].as_str().map(str::to_string))
        .collect()
}

/// The documentation stage: `cargo doc` of the workspace with every feature (as docs.rs builds
/// the published crates: the `testing` simulators included), warnings denied (unresolved or
/// ambiguous intra-doc links, broken HTML), for Linux and for the Windows target (the docs.rs
/// default target of the interface crates).
pub fn docs() -> Result<()> {
    for target in [None, Some(WINDOWS_TARGET)] {
        let mut doc = cargo();
        doc.args([
            "doc",
            "--workspace",
            "--all-features",
            "--no-deps",
            "--locked",
        ])
        .env("RUSTDOCFLAGS", "-D warnings");
        if let Some(target) = target {
            doc.args(["--target", target]);
        }
        sh(&mut doc)?;
    }
    Ok(())
}

/// The packaging stage: `cargo package` of every published crate together, as `cargo publish`
/// would upload them: the crates depending on one another by version resolve against the
/// packages just made, and each is verified (built from its unpacked `.crate`, so a file left
/// out of the package or a path outside the crate fails here). About 25 s with a warm cache.
pub fn package() -> Result<()> {
    let packages = published(&cargo_metadata()?);
    sh(&mut package_command(&packages))
}

fn package_command(packages: &[String]) -> std::process::Command {
    let mut package = cargo();
    // --allow-dirty: the check runs on a working tree too, not only on a clean CI checkout.
    package.args(["package", "--locked", "--allow-dirty"]);
    for name in packages {
        package.args(["-p", name]);
    }
    package
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::describe;

    /// The crates an author depends on, and the tools that package a provider: published; the
    /// samples, the Wine test crates and xtask: not.
    #[test]
    fn the_published_crates_are_the_libraries_and_cargo_winprov() {
        let published = published(&cargo_metadata().unwrap());
        let mut sorted = published.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "cargo-winprov",
                "winprov-bindings",
                "winprov-core",
                "winprov-dist",
                "winprov-nspv2",
                "winprov-tspi",
                "winprov-wbem",
                "winprov-windows-core",
                "winprov-wsp",
            ]
        );
        let command = describe(&package_command(&published));
        assert!(
            command.ends_with(&format!(
                "package --locked --allow-dirty -p {}",
                published.join(" -p ")
            )),
            "{command}"
        );
    }

    /// What crates.io and docs.rs show of each published crate is there: a description, a
    /// README that exists, 1 to 5 keywords, categories, and docs.rs metadata building every
    /// feature for the Windows target and Linux.
    #[test]
    fn publish_metadata_is_complete() {
        let metadata = cargo_metadata().unwrap();
        let published = published(&metadata);
        for package in metadata["packages"].as_array().unwrap() {
            let name = package["name"].as_str().unwrap();
            if !published.iter().any(|p| p == name) {
                continue;
            }
            let text = |key: &str| package[key].as_str().unwrap_or_default().to_string();
            assert!(text("description").len() > 20, "{name}: description");
            assert!(!text("license").is_empty(), "{name}: license");
            assert!(!text("repository").is_empty(), "{name}: repository");
            let manifest = std::path::PathBuf::from(text("manifest_path"));
            let readme = text("readme");
            assert_eq!(readme, "README.md", "{name}: readme");
            let readme = manifest.parent().unwrap().join(readme);
            let readme = std::fs::read_to_string(&readme).unwrap();
            assert!(
                readme.starts_with(&format!("# {name}\n")),
                "{name}: README title"
            );
            let keywords = package["keywords"].as_array().unwrap();
            assert!((1..=5).contains(&keywords.len()), "{name}: keywords");
            for keyword in keywords {
                let keyword = keyword.as_str().unwrap();
                assert!(
                    keyword.len() <= 20
                        && keyword
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                    "{name}: keyword {keyword}"
                );
            }
            assert!(
                !package["categories"].as_array().unwrap().is_empty(),
                "{name}: categories"
            );
            let docs_rs = &package["metadata"]["docs"]["rs"];
            assert_eq!(
                docs_rs["all-features"], true,
                "{name}: docs.rs all-features"
            );
            let targets: Vec<&str> = docs_rs["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: docs.rs targets"))
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            assert!(targets.contains(&WINDOWS_TARGET), "{name}: {targets:?}");
            assert!(
                targets.contains(&"x86_64-unknown-linux-gnu"),
                "{name}: {targets:?}"
            );
            let default = docs_rs["default-target"].as_str().unwrap();
            assert!(targets.contains(&default), "{name}: {default}");
        }
    }
}
