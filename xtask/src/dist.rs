//! `cargo xtask dist`: release Windows artifacts into `target/dist/`.

use crate::prereq::{self, Need};
use crate::stage::{Stages, cargo, run as sh};
use crate::{WINDOWS_TARGET, target_dir};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

/// A shipped Windows artifact: the package that builds it and its file name.
#[derive(Debug, PartialEq, Eq)]
pub struct Artifact {
    pub package: String,
    pub file: String,
}

/// Every `cdylib` and `bin` target of the packages under `samples/` ships; test crates do not.
pub fn artifacts() -> Result<Vec<Artifact>> {
    let out =
        crate::stage::output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))
            .context("cargo metadata failed")?;
    let metadata: serde_json::Value = serde_json::from_str(&out)?;
    let samples = crate::workspace_root().join("samples");
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
        if !manifest.starts_with(&samples) {
            continue;
        }
        let name = package["name"].as_str().unwrap_or_default();
        for target in package["targets"].as_array().into_iter().flatten() {
            let target_name = target["name"].as_str().unwrap_or_default();
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str())
                .collect();
            if kinds.contains(&"cdylib") {
                found.push(Artifact {
                    package: name.to_string(),
                    file: format!("{}.dll", target_name.replace('-', "_")),
                });
            }
            if kinds.contains(&"bin") {
                found.push(Artifact {
                    package: name.to_string(),
                    file: format!("{target_name}.exe"),
                });
            }
        }
    }
    Ok(found)
}

pub fn run() -> Result<()> {
    let mut stages = Stages::new(3);
    stages.run("prerequisites", || prereq::ensure(Need::CrossBuild))?;
    let artifacts = artifacts()?;
    stages.run("release build for Windows", || {
        let mut cmd = cargo();
        cmd.args(["build", "--release", "--locked", "--target", WINDOWS_TARGET]);
        if artifacts.is_empty() {
            // No sample yet: still check that the library crates build in release mode.
            cmd.args(["--workspace", "--exclude", "xtask"]);
        }
        for artifact in &artifacts {
            cmd.args(["-p", &artifact.package]);
        }
        sh(&mut cmd)
    })?;
    let copied = stages.run("copy into target/dist", || copy_artifacts(&artifacts))?;
    stages.summary();
    if copied.is_empty() {
        println!("\nno sample provider exists yet: target/dist/ is empty");
    } else {
        println!("\n{:>12}  artifact", "bytes");
        for (path, size) in &copied {
            println!("{size:>12}  {}", path.display());
        }
    }
    Ok(())
}

fn copy_artifacts(artifacts: &[Artifact]) -> Result<Vec<(PathBuf, u64)>> {
    let release = target_dir().join(WINDOWS_TARGET).join("release");
    let dist = target_dir().join("dist");
    std::fs::create_dir_all(&dist)?;
    let mut copied = Vec::new();
    for artifact in artifacts {
        let from = release.join(&artifact.file);
        if !from.is_file() {
            bail!(
                "{} was not built by -p {}",
                from.display(),
                artifact.package
            );
        }
        let to = dist.join(&artifact.file);
        let size =
            std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
        copied.push((to, size));
    }
    Ok(copied)
}
