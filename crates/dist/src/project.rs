//! A cargo project as `cargo metadata --no-deps` shows it: its members' installer descriptors,
//! its target directory (`CARGO_TARGET_DIR` and `build.target-dir` honoured, as cargo resolves
//! them) and the cargo commands that build it.

use crate::WINDOWS_TARGET;
use crate::installer::Descriptor;
use crate::stage::{cargo, describe};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A workspace (or a single package, its own workspace), from a manifest path or the current
/// directory.
#[derive(Debug, Clone)]
pub struct Project {
    /// The manifest the cargo commands are given (`--manifest-path`); none: the current
    /// directory's.
    manifest_path: Option<PathBuf>,
    /// The package manifest the command was pointed at (the given one, or the current
    /// directory's nearest); a virtual workspace manifest names no package.
    selected_manifest: Option<PathBuf>,
    /// Whether cargo commands get `--locked`.
    locked: bool,
    root: PathBuf,
    target_dir: PathBuf,
    metadata: Value,
}

/// Runs a cargo command that prints JSON or a path; its error output is the error.
fn cargo_output(cmd: &mut Command) -> Result<String> {
    let line = describe(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Project {
    /// Reads the project of `manifest_path` (a `Cargo.toml`), or of the current directory.
    pub fn load(manifest_path: Option<&Path>) -> Result<Self> {
        let mut metadata = cargo();
        metadata.args(["metadata", "--format-version", "1", "--no-deps"]);
        let mut locate = cargo();
        locate.args(["locate-project", "--message-format", "plain"]);
        if let Some(path) = manifest_path {
            metadata.arg("--manifest-path").arg(path);
            locate.arg("--manifest-path").arg(path);
        }
        let metadata: Value = serde_json::from_str(&cargo_output(&mut metadata)?)
            .context("reading the output of cargo metadata")?;
        let located = PathBuf::from(cargo_output(&mut locate)?.trim());
        Self::from_metadata(metadata, manifest_path, &located)
    }

    /// A project from `cargo metadata --format-version 1 --no-deps` output; `located` is the
    /// manifest cargo found for the command (`cargo locate-project`).
    pub fn from_metadata(
        metadata: Value,
        manifest_path: Option<&Path>,
        located: &Path,
    ) -> Result<Self> {
        let root = PathBuf::from(
            metadata["workspace_root"]
                .as_str()
                .context("cargo metadata without a workspace_root")?,
        );
        let target_dir = PathBuf::from(
            metadata["target_directory"]
                .as_str()
                .context("cargo metadata without a target_directory")?,
        );
        let selected_manifest = packages(&metadata)
            .any(|p| Path::new(p["manifest_path"].as_str().unwrap_or_default()) == located)
            .then(|| located.to_path_buf());
        Ok(Self {
            manifest_path: manifest_path.map(Path::to_path_buf),
            selected_manifest,
            locked: false,
            root,
            target_dir,
            metadata,
        })
    }

    /// The same project, its cargo commands with `--locked` (`Cargo.lock` must be up to date)
    /// when `locked`.
    pub fn locked(self, locked: bool) -> Self {
        Self { locked, ..self }
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The target directory.
    pub fn target_dir(&self) -> &Path {
        &self.target_dir
    }

    /// Where the release Windows artifacts are: `<target>/x86_64-pc-windows-gnu/release`.
    pub fn bin_dir(&self) -> PathBuf {
        self.target_dir.join(WINDOWS_TARGET).join("release")
    }

    /// Where the MSIs go: `<target>/dist`.
    pub fn dist_dir(&self) -> PathBuf {
        self.target_dir.join("dist")
    }

    /// `cargo <subcommand>` for this project (`--manifest-path` when one was given,
    /// `--locked` when [`Project::locked`]).
    pub fn cargo(&self, subcommand: &str) -> Command {
        let mut cmd = cargo();
        cmd.arg(subcommand);
        if let Some(path) = &self.manifest_path {
            cmd.arg("--manifest-path").arg(path);
        }
        if self.locked {
            cmd.arg("--locked");
        }
        cmd
    }

    /// The installer descriptors of the members whose manifest is under `under` (every member
    /// when `None`), in workspace order. Members without one are reported and skipped.
    pub fn descriptors(&self, under: Option<&Path>) -> Result<Vec<Descriptor>> {
        self.read_descriptors(under, true)
    }

    /// [`Project::descriptors`], the members without one reported when `report`.
    fn read_descriptors(&self, under: Option<&Path>, report: bool) -> Result<Vec<Descriptor>> {
        let mut found = Vec::new();
        for package in packages(&self.metadata) {
            let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
            if under.is_some_and(|dir| !manifest.starts_with(dir)) {
                continue;
            }
            match Descriptor::from_package(package)? {
                Some(descriptor) => found.push(descriptor),
                None if report => println!(
                    "note: {} has no [package.metadata.winprov.dist]: no installer for it",
                    manifest.display()
                ),
                None => {}
            }
        }
        Ok(found)
    }

    /// The package cargo would build without `-p`: the one whose manifest the command was
    /// pointed at; `None` for a virtual workspace manifest (then every member is meant).
    pub fn current_package(&self) -> Option<&str> {
        let selected = self.selected_manifest.as_deref()?;
        packages(&self.metadata)
            .find(|p| Path::new(p["manifest_path"].as_str().unwrap_or_default()) == selected)
            .and_then(|p| p["name"].as_str())
    }

    /// The descriptors a command means: those of `packages` when some are named; else the
    /// current package's ([`Project::current_package`]); else every member's (members without
    /// one are skipped quietly: a workspace has libraries too). A package named or meant
    /// without a descriptor is an error.
    pub fn selected(&self, packages: &[String]) -> Result<Vec<Descriptor>> {
        let all = self.read_descriptors(None, false)?;
        match (packages, self.current_package()) {
            ([], Some(current)) => select(all, &[current.to_string()]),
            ([], None) if all.is_empty() => bail!(
                "no package of {} has a [package.metadata.winprov.dist] (docs/dist.md)",
                self.root.display()
            ),
            _ => select(all, packages),
        }
    }
}

fn packages(metadata: &Value) -> impl Iterator<Item = &Value> {
    metadata["packages"].as_array().into_iter().flatten()
}

/// Only the descriptors of `packages` (all of them when it is empty), in workspace order; a
/// name without a descriptor is an error.
pub fn select(descriptors: Vec<Descriptor>, packages: &[String]) -> Result<Vec<Descriptor>> {
    if let Some(unknown) = packages
        .iter()
        .find(|p| !descriptors.iter().any(|d| &d.package == *p))
    {
        let known: Vec<&str> = descriptors.iter().map(|d| d.package.as_str()).collect();
        if known.is_empty() {
            bail!("no package `{unknown}` with an installer descriptor (there is none)");
        }
        bail!(
            "no package `{unknown}` with an installer descriptor (there are {})",
            known.join(", ")
        );
    }
    Ok(descriptors
        .into_iter()
        .filter(|d| packages.is_empty() || packages.contains(&d.package))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package(name: &str, manifest: &str, dist: bool) -> Value {
        let lib = name.replace('-', "_");
        let mut metadata = Value::Null;
        if dist {
            metadata = json!({"winprov": {"dist": {
                "product": format!("winprov {name}"),
                "manufacturer": "winprov",
                "upgrade-code": "ab2a8109-f139-4b84-878d-69f260af7f78",
                "files": [{"artifact": "cdylib"}],
            }}});
        }
        json!({
            "name": name,
            "version": "0.1.0",
            "manifest_path": manifest,
            "targets": [{"name": lib, "kind": ["cdylib"], "src_path": "/x/src/lib.rs"}],
            "metadata": metadata,
        })
    }

    fn metadata() -> Value {
        json!({
            "workspace_root": "/ws",
            "target_directory": "/ws/target",
            "packages": [
                package("winprov-core", "/ws/crates/core/Cargo.toml", false),
                package("email-directory", "/ws/samples/email-directory/Cargo.toml", true),
                package("line-simulator", "/ws/samples/line-simulator/Cargo.toml", true),
            ],
        })
    }

    fn names(descriptors: Vec<Descriptor>) -> Vec<String> {
        descriptors.into_iter().map(|d| d.package).collect()
    }

    #[test]
    fn the_command_means_the_package_it_was_pointed_at() {
        let manifest = Path::new("/ws/samples/line-simulator/Cargo.toml");
        let project = Project::from_metadata(metadata(), Some(manifest), manifest).unwrap();
        assert_eq!(project.current_package(), Some("line-simulator"));
        assert_eq!(names(project.selected(&[]).unwrap()), ["line-simulator"]);
        // -p names others of the workspace.
        let both = ["email-directory".to_string(), "line-simulator".to_string()];
        assert_eq!(names(project.selected(&both).unwrap()), both);
        assert_eq!(
            project.bin_dir(),
            Path::new("/ws/target/x86_64-pc-windows-gnu/release")
        );
        assert_eq!(project.dist_dir(), Path::new("/ws/target/dist"));
        let build = project.cargo("build");
        assert_eq!(
            describe(&build).split_once(' ').unwrap().1,
            "build --manifest-path /ws/samples/line-simulator/Cargo.toml"
        );
    }

    #[test]
    fn a_virtual_manifest_means_every_member_with_a_descriptor() {
        let manifest = Path::new("/ws/Cargo.toml");
        let project = Project::from_metadata(metadata(), None, manifest).unwrap();
        assert_eq!(project.current_package(), None);
        assert_eq!(
            names(project.selected(&[]).unwrap()),
            ["email-directory", "line-simulator"]
        );
        assert_eq!(
            names(
                project
                    .descriptors(Some(Path::new("/ws/samples/line-simulator")))
                    .unwrap()
            ),
            ["line-simulator"]
        );
        // No --manifest-path given: cargo finds the manifest from the current directory.
        assert_eq!(
            describe(&project.cargo("build")).split_once(' ').unwrap().1,
            "build"
        );
        let locked = project.locked(true);
        assert_eq!(
            describe(&locked.cargo("rustc")).split_once(' ').unwrap().1,
            "rustc --locked"
        );
    }

    #[test]
    fn a_package_without_a_descriptor_is_an_error() {
        let manifest = Path::new("/ws/crates/core/Cargo.toml");
        let project = Project::from_metadata(metadata(), Some(manifest), manifest).unwrap();
        let error = format!("{:#}", project.selected(&[]).unwrap_err());
        assert!(
            error.contains(
                "no package `winprov-core` with an installer descriptor (there are \
                 email-directory, line-simulator)"
            ),
            "{error}"
        );
        let mut empty = metadata();
        empty["packages"] = json!([package("lib-only", "/ws/Cargo.toml", false)]);
        let project = Project::from_metadata(empty, None, Path::new("/ws/other/Cargo.toml"));
        let error = format!("{:#}", project.unwrap().selected(&[]).unwrap_err());
        assert!(error.contains("no package of /ws has a [package.metadata.winprov.dist]"));
    }

    #[test]
    fn this_workspace_is_read_with_its_target_directory() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let project = Project::load(Some(&root.join("Cargo.toml"))).unwrap();
        assert_eq!(project.root(), root.canonicalize().unwrap());
        // A virtual manifest: every sample with a descriptor.
        let names = names(project.selected(&[]).unwrap());
        assert!(names.contains(&"email-directory".to_string()), "{names:?}");
        let sample = root.join("samples/email-directory/Cargo.toml");
        let project = Project::load(Some(&sample)).unwrap();
        assert_eq!(project.current_package(), Some("email-directory"));
        let error = format!(
            "{:#}",
            Project::load(Some(&root.join("nope.toml"))).unwrap_err()
        );
        assert!(error.contains("cargo metadata"), "{error}");
    }
}
