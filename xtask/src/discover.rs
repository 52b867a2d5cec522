//! What `cargo xtask test` runs beyond the workspace-wide commands, read from
//! `cargo metadata` and each member's `[package.metadata.winprov.test]` table:
//!
//! ```toml
//! [package.metadata.winprov.test]
//! loom = "lib:loom_models"      # or "test:loom", or a list of both
//! stress-operations = 2000000   # its `stress` test, in release, at this size
//! wine-unit-tests = true        # its unit and integration tests also run under Wine
//! wine-harnesses = ["tests/wine-nspv2/host/nsp_host.c"]  # C harnesses that drive its DLL
//! wine-c-dlls = ["tests/wine-lsp/base/wsp_base.c"]       # C DLLs its harnesses load too
//! ```
//!
//! The layout is checked against the declarations: a `src/loom_models.rs`, a `tests/loom.rs` or
//! a `tests/stress.rs` that no key names is an error, so none is silently left out.
//!
//! A harness is run with the package's DLLs as arguments: its cdylib (if it builds one), then
//! its `wine-c-dlls` in their order. A C DLL is a provider written against mingw-w64's headers
//! that the Wine tests need beside the package's own (a base provider under a layered one, which
//! Wine cannot supply); xtask builds it with mingw-w64 into the harness directory, linked with
//! ws2_32. Two packages may declare the same source (each names what its harnesses load); two
//! sources with one file name may not.

use crate::installer::{only_keys, table};
use crate::stage::{cargo, output};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where a package's loom models are, as cargo selects them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loom {
    /// `lib:<filter>`: the library's unit tests whose path contains the filter (a module).
    Lib(String),
    /// `test:<name>`: an integration test target.
    Test(String),
}

impl Loom {
    fn parse(text: &str) -> Result<Self> {
        let (kind, name) = text
            .split_once(':')
            .with_context(|| format!("`{text}` is neither `lib:<module>` nor `test:<target>`"))?;
        if name.is_empty() {
            bail!("`{text}` names nothing after the `:`");
        }
        match kind {
            "lib" => Ok(Self::Lib(name.to_string())),
            "test" => Ok(Self::Test(name.to_string())),
            _ => bail!("`{text}` is neither `lib:<module>` nor `test:<target>`"),
        }
    }
}

/// A package's loom models, compiled with `--cfg loom`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoomRun {
    pub package: String,
    pub loom: Loom,
}

impl LoomRun {
    /// The package and target selection for `cargo test`.
    pub fn args(&self) -> [&str; 4] {
        match &self.loom {
            Loom::Lib(filter) => ["-p", &self.package, "--lib", filter],
            Loom::Test(target) => ["-p", &self.package, "--test", target],
        }
    }
}

/// A package's `stress` integration test, run in release with `WINPROV_STRESS_OPERATIONS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StressRun {
    pub package: String,
    pub operations: u64,
}

/// A Wine ABI test: a C host harness (compiled with mingw-w64, against its headers) that loads a
/// provider DLL from the workspace through its exports and plays the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WineHarness {
    /// Name of the test, the harness exe and its log: the source's file stem.
    pub name: String,
    /// The harness source, relative to the workspace root.
    pub source: PathBuf,
    /// Cargo package that declares the harness, and its cdylib's file name if it builds one
    /// (copied from the Windows cross-build).
    pub package: String,
    pub cargo_dll: Option<String>,
    /// The harness's arguments: the package's cdylib, then its C DLLs (never empty).
    pub dlls: Vec<String>,
}

/// A C DLL the Wine harnesses load (`wine-c-dlls`), built with mingw-w64 into their directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CDll {
    /// The source's file stem; the DLL is `<name>.dll`.
    pub name: String,
    /// The source, relative to the workspace root.
    pub source: PathBuf,
}

impl CDll {
    /// The DLL's file name.
    pub fn file(&self) -> String {
        format!("{}.dll", self.name)
    }
}

/// The Wine rig's package: its harness proves the rig every other harness relies on.
const RIG_DIR: &str = "tests/wine-rig";

/// Everything found, in workspace order; of the Wine harnesses, the rig's first, then those of
/// the other packages under `tests/` (the Wine tests of the framework itself), then the samples'.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub loom: Vec<LoomRun>,
    pub stress: Vec<StressRun>,
    /// Packages whose unit and integration tests also run for the Windows target under Wine.
    pub wine_unit_tests: Vec<String>,
    pub wine_harnesses: Vec<WineHarness>,
    /// The C DLLs the harnesses load, each once.
    pub wine_c_dlls: Vec<CDll>,
}

/// `cargo metadata --format-version 1 --no-deps` of the workspace.
pub fn cargo_metadata() -> Result<Value> {
    let out = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))
        .context("cargo metadata failed")?;
    Ok(serde_json::from_str(&out)?)
}

impl Discovered {
    /// Reads the workspace.
    pub fn find() -> Result<Self> {
        Self::from_metadata(&cargo_metadata()?)
    }

    /// Reads `cargo metadata --format-version 1 --no-deps` output.
    pub fn from_metadata(metadata: &Value) -> Result<Self> {
        let root = PathBuf::from(
            metadata["workspace_root"]
                .as_str()
                .context("cargo metadata without a workspace_root")?,
        );
        let mut found = Self::default();
        let mut rig_harnesses = Vec::new();
        let mut test_harnesses = Vec::new();
        let mut harnesses = Vec::new();
        for package in metadata["packages"].as_array().into_iter().flatten() {
            let name = package["name"].as_str().context("package without a name")?;
            let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
            let tests = read_package(package, name, &root)
                .with_context(|| format!("[package.metadata.winprov.test] of package `{name}`"))?;
            found.loom.extend(tests.loom);
            found.stress.extend(tests.stress);
            found.wine_unit_tests.extend(tests.wine_unit_tests);
            for dll in tests.wine_c_dlls {
                match found.wine_c_dlls.iter().find(|d| d.name == dll.name) {
                    Some(same) if same.source == dll.source => {}
                    Some(other) => bail!(
                        "two C DLLs named `{}.dll` ({} and {}): they would overwrite each other",
                        dll.name,
                        other.source.display(),
                        dll.source.display()
                    ),
                    None => found.wine_c_dlls.push(dll),
                }
            }
            if manifest.starts_with(root.join(RIG_DIR)) {
                rig_harnesses.extend(tests.wine_harnesses);
            } else if manifest.starts_with(root.join("tests")) {
                test_harnesses.extend(tests.wine_harnesses);
            } else {
                harnesses.extend(tests.wine_harnesses);
            }
        }
        found.wine_harnesses = rig_harnesses
            .into_iter()
            .chain(test_harnesses)
            .chain(harnesses)
            .collect();
        for (i, harness) in found.wine_harnesses.iter().enumerate() {
            if let Some(other) = found.wine_harnesses[..i]
                .iter()
                .find(|h| h.name == harness.name)
            {
                bail!(
                    "two Wine harnesses named `{}` ({} and {}): their exes and logs would collide",
                    harness.name,
                    other.source.display(),
                    harness.source.display()
                );
            }
        }
        for dll in &found.wine_c_dlls {
            if let Some(harness) = found
                .wine_harnesses
                .iter()
                .find(|h| h.cargo_dll.as_ref() == Some(&dll.file()))
            {
                bail!(
                    "the C DLL {} and the cdylib of `{}` are both `{}`: one would overwrite the \
                     other",
                    dll.source.display(),
                    harness.package,
                    dll.file()
                );
            }
        }
        Ok(found)
    }
}

/// A cargo target: name, kinds, source path.
struct Target<'a> {
    name: &'a str,
    kinds: Vec<&'a str>,
    src_path: &'a Path,
}

impl Target<'_> {
    fn is(&self, kind: &str) -> bool {
        self.kinds.contains(&kind)
    }

    fn is_lib(&self) -> bool {
        self.kinds
            .iter()
            .any(|k| matches!(*k, "lib" | "rlib" | "dylib" | "cdylib" | "staticlib"))
    }
}

fn read_package(package: &Value, name: &str, root: &Path) -> Result<Discovered> {
    let targets: Vec<Target<'_>> = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| Target {
            name: t["name"].as_str().unwrap_or_default(),
            kinds: t["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect(),
            src_path: Path::new(t["src_path"].as_str().unwrap_or_default()),
        })
        .collect();
    let empty = serde_json::Map::new();
    let test = match package["metadata"]
        .get("winprov")
        .and_then(|w| w.get("test"))
    {
        Some(test) => table(test, "[package.metadata.winprov.test]")?,
        None => &empty,
    };
    only_keys(
        test,
        &[
            "loom",
            "stress-operations",
            "wine-unit-tests",
            "wine-harnesses",
            "wine-c-dlls",
        ],
        "the test table",
    )?;
    let mut found = Discovered::default();

    let declared: Vec<String> = match test.get("loom") {
        None => Vec::new(),
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .context("`loom` must be a string or a list of strings")?,
        Some(_) => bail!("`loom` must be a string or a list of strings"),
    };
    for text in declared {
        let loom = Loom::parse(&text).context("`loom`")?;
        match &loom {
            Loom::Lib(_) if !targets.iter().any(Target::is_lib) => {
                bail!("`loom = \"{text}\"`: the package has no library")
            }
            Loom::Test(target) if !targets.iter().any(|t| t.is("test") && t.name == target) => {
                bail!("`loom = \"{text}\"`: the package has no test target `{target}`")
            }
            _ => {}
        }
        found.loom.push(LoomRun {
            package: name.to_string(),
            loom,
        });
    }
    // The documented layout: models in the library's `loom_models` module or in `tests/loom.rs`.
    let has_loom = |loom: Loom| found.loom.iter().any(|run| run.loom == loom);
    if let Some(lib) = targets.iter().find(|t| t.is_lib()) {
        let dir = lib.src_path.parent().unwrap_or(Path::new(""));
        if (dir.join("loom_models.rs").is_file() || dir.join("loom_models/mod.rs").is_file())
            && !has_loom(Loom::Lib("loom_models".to_string()))
        {
            bail!(
                "{} has loom models that would never run: declare `loom = \"lib:loom_models\"`",
                dir.join("loom_models.rs").display()
            );
        }
    }
    if targets.iter().any(|t| t.is("test") && t.name == "loom")
        && !has_loom(Loom::Test("loom".to_string()))
    {
        bail!("the test target `loom` would never run under loom: declare `loom = \"test:loom\"`");
    }

    let has_stress_test = targets.iter().any(|t| t.is("test") && t.name == "stress");
    match test.get("stress-operations") {
        None if has_stress_test => bail!(
            "the test target `stress` would run only at its default size: declare \
             `stress-operations = <count>`"
        ),
        None => {}
        Some(value) => {
            let operations = value
                .as_u64()
                .filter(|n| *n > 0)
                .context("`stress-operations` must be a positive integer")?;
            if !has_stress_test {
                bail!("`stress-operations`: the package has no test target `stress`");
            }
            found.stress.push(StressRun {
                package: name.to_string(),
                operations,
            });
        }
    }

    match test.get("wine-unit-tests") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => found.wine_unit_tests.push(name.to_string()),
        Some(_) => bail!("`wine-unit-tests` must be true or false"),
    }

    let sources = c_sources(test, "wine-harnesses", root)?;
    for source in &c_sources(test, "wine-c-dlls", root)? {
        found.wine_c_dlls.push(CDll {
            name: file_stem(source)?,
            source: source.clone(),
        });
    }
    if sources.is_empty() && !found.wine_c_dlls.is_empty() {
        bail!("`wine-c-dlls` without `wine-harnesses`: no harness would load them");
    }
    let cargo_dll = targets
        .iter()
        .find(|t| t.is("cdylib"))
        .map(|cdylib| format!("{}.dll", cdylib.name));
    let dlls: Vec<String> = cargo_dll
        .iter()
        .cloned()
        .chain(found.wine_c_dlls.iter().map(CDll::file))
        .collect();
    for source in sources {
        if dlls.is_empty() {
            bail!(
                "`wine-harnesses`: `{}` drives this package's DLL, but it builds none (no cdylib \
                 target, no `wine-c-dlls`)",
                source.display()
            );
        }
        found.wine_harnesses.push(WineHarness {
            name: file_stem(&source)?,
            package: name.to_string(),
            cargo_dll: cargo_dll.clone(),
            dlls: dlls.clone(),
            source,
        });
    }
    Ok(found)
}

/// A list of C sources relative to the workspace root, under `key`.
fn c_sources(
    test: &serde_json::Map<String, Value>,
    key: &str,
    root: &Path,
) -> Result<Vec<PathBuf>> {
    let Some(value) = test.get(key) else {
        return Ok(Vec::new());
    };
    let list = value
        .as_array()
        .and_then(|list| list.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
        .with_context(|| {
            format!("`{key}` must be a list of paths (relative to the workspace root)")
        })?;
    list.into_iter()
        .map(|source| {
            let source = PathBuf::from(source);
            if source.is_absolute() || source.extension().is_none_or(|e| e != "c") {
                bail!(
                    "`{key}`: `{}` is not a C file relative to the workspace root ({})",
                    source.display(),
                    root.display()
                );
            }
            Ok(source)
        })
        .collect()
}

fn file_stem(source: &Path) -> Result<String> {
    Ok(source
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("`{}` has no file name", source.display()))?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(name: &str, kinds: &[&str], src_path: &str) -> Value {
        json!({"name": name, "kind": kinds, "src_path": src_path})
    }

    fn package(name: &str, dir: &str, targets: Vec<Value>, test: Value) -> Value {
        json!({
            "name": name,
            "version": "0.1.0",
            "manifest_path": format!("/ws/{dir}/Cargo.toml"),
            "targets": targets,
            "metadata": if test.is_null() { Value::Null } else { json!({"winprov": {"test": test}}) },
        })
    }

    /// A library crate at `/ws/crates/<dir>` with the given test targets.
    fn library(name: &str, dir: &str, tests: &[&str], test: Value) -> Value {
        let lib = name.replace('-', "_");
        let mut targets = vec![target(&lib, &["lib"], &format!("/ws/{dir}/src/lib.rs"))];
        for t in tests {
            targets.push(target(t, &["test"], &format!("/ws/{dir}/tests/{t}.rs")));
        }
        package(name, dir, targets, test)
    }

    /// A provider sample at `/ws/samples/<name>` building `<lib>.dll`.
    fn sample(name: &str, harness: &str) -> Value {
        let lib = name.replace('-', "_");
        let targets = vec![
            target(
                &lib,
                &["cdylib", "rlib"],
                &format!("/ws/samples/{name}/src/lib.rs"),
            ),
            target(name, &["bin"], &format!("/ws/samples/{name}/src/main.rs")),
        ];
        package(
            name,
            &format!("samples/{name}"),
            targets,
            json!({"wine-harnesses": [harness]}),
        )
    }

    /// `cargo metadata` of a workspace shaped like this one, in its member order.
    fn metadata(extra: &[Value]) -> Value {
        let mut packages = vec![
            library("winprov-bindings", "bindings", &[], Value::Null),
            library(
                "winprov-core",
                "crates/core",
                &["compiletest", "loom", "tidy"],
                json!({"loom": "test:loom", "wine-unit-tests": true}),
            ),
            library(
                "winprov-nspv2",
                "crates/nspv2",
                &["compiletest", "rules", "stress"],
                json!({"loom": "lib:loom_models", "stress-operations": 2_000_000}),
            ),
            sample("email-directory", "tests/wine-nspv2/host/nsp_host.c"),
            package(
                "winprov-wine-rig",
                "tests/wine-rig",
                vec![target(
                    "winprov_wine_rig",
                    &["cdylib", "rlib"],
                    "/ws/tests/wine-rig/src/lib.rs",
                )],
                json!({"wine-harnesses": ["tests/wine-rig/host/rig_host.c"]}),
            ),
            package(
                "xtask",
                "xtask",
                vec![target("xtask", &["bin"], "/ws/xtask/src/main.rs")],
                Value::Null,
            ),
        ];
        packages.extend(extra.iter().cloned());
        json!({"packages": packages, "workspace_root": "/ws"})
    }

    fn harness(name: &str, source: &str, package: &str, dll: &str) -> WineHarness {
        WineHarness {
            name: name.to_string(),
            source: PathBuf::from(source),
            package: package.to_string(),
            cargo_dll: Some(dll.to_string()),
            dlls: vec![dll.to_string()],
        }
    }

    fn c_dll(source: &str) -> CDll {
        CDll {
            name: Path::new(source)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            source: PathBuf::from(source),
        }
    }

    /// A package under `tests/` with a harness and C DLLs, and a cdylib if `cdylib` names one.
    fn c_dll_package(name: &str, cdylib: Option<&str>, harness: &str, dlls: &[&str]) -> Value {
        let dir = format!("tests/{name}");
        let kinds: &[&str] = if cdylib.is_some() {
            &["cdylib"]
        } else {
            &["lib"]
        };
        let lib = cdylib.map_or_else(|| name.replace('-', "_"), str::to_string);
        package(
            name,
            &dir,
            vec![target(&lib, kinds, &format!("/ws/{dir}/src/lib.rs"))],
            json!({"wine-harnesses": [harness], "wine-c-dlls": dlls}),
        )
    }

    fn loom_args(found: &Discovered) -> Vec<[&str; 4]> {
        found.loom.iter().map(LoomRun::args).collect()
    }

    fn stress(found: &Discovered) -> Vec<(&str, u64)> {
        found
            .stress
            .iter()
            .map(|s| (s.package.as_str(), s.operations))
            .collect()
    }

    /// What `cargo xtask test` ran from hand-written lists before it read the workspace.
    #[test]
    fn the_workspace_declares_every_run() {
        let found = Discovered::find().unwrap();
        // The crates that existed then, word for word; a crate added since adds its own runs
        // (and needs no edit here).
        let loom = loom_args(&found);
        for expected in [
            ["-p", "winprov-core", "--test", "loom"],
            ["-p", "winprov-nspv2", "--lib", "loom_models"],
            ["-p", "winprov-tspi", "--lib", "loom_models"],
        ] {
            assert!(loom.contains(&expected), "{expected:?} in {loom:?}");
        }
        let stress = stress(&found);
        for expected in [("winprov-nspv2", 2_000_000), ("winprov-tspi", 8_000_000)] {
            assert!(stress.contains(&expected), "{expected:?} in {stress:?}");
        }
        assert!(found.wine_unit_tests.iter().any(|p| p == "winprov-core"));
        let expected = [
            harness(
                "rig_host",
                "tests/wine-rig/host/rig_host.c",
                "winprov-wine-rig",
                "winprov_wine_rig.dll",
            ),
            harness(
                "nsp_host",
                "tests/wine-nspv2/host/nsp_host.c",
                "email-directory",
                "email_directory.dll",
            ),
            harness(
                "tsp_host",
                "tests/wine-tspi/host/tsp_host.c",
                "line-simulator",
                "line_simulator.dll",
            ),
        ];
        // The rig's first; the others in workspace order, among any added since.
        assert_eq!(found.wine_harnesses.first(), Some(&expected[0]));
        for harness in &expected {
            assert!(found.wine_harnesses.contains(harness), "{harness:?}");
        }
        // The C base provider and the harness that drives it alone.
        let base = c_dll("tests/wine-lsp/base/wsp_base.c");
        assert!(found.wine_c_dlls.contains(&base), "{:?}", found.wine_c_dlls);
        let base_host = found
            .wine_harnesses
            .iter()
            .find(|h| h.name == "base_host")
            .expect("base_host is declared");
        assert_eq!(
            base_host.source,
            Path::new("tests/wine-lsp/host/base_host.c")
        );
        assert_eq!(base_host.package, "winprov-wine-lsp");
        assert_eq!(base_host.dlls.last(), Some(&base.file()));
    }

    #[test]
    fn a_fixed_metadata_sample_is_read() {
        let found = Discovered::from_metadata(&metadata(&[])).unwrap();
        assert_eq!(
            loom_args(&found),
            [
                ["-p", "winprov-core", "--test", "loom"],
                ["-p", "winprov-nspv2", "--lib", "loom_models"],
            ]
        );
        assert_eq!(stress(&found), [("winprov-nspv2", 2_000_000)]);
        assert_eq!(found.wine_unit_tests, ["winprov-core"]);
        // The rig's harness first although its package comes later in the workspace.
        assert_eq!(
            found.wine_harnesses,
            [
                harness(
                    "rig_host",
                    "tests/wine-rig/host/rig_host.c",
                    "winprov-wine-rig",
                    "winprov_wine_rig.dll"
                ),
                harness(
                    "nsp_host",
                    "tests/wine-nspv2/host/nsp_host.c",
                    "email-directory",
                    "email_directory.dll"
                ),
            ]
        );
    }

    #[test]
    fn a_new_interface_crate_and_its_sample_need_only_their_manifests() {
        let wbem = library(
            "winprov-wbem",
            "crates/wbem",
            &["rules", "stress"],
            json!({
                "loom": "lib:loom_models",
                "stress-operations": 500_000,
                "wine-unit-tests": true
            }),
        );
        let provider = sample("wmi-inventory", "tests/wine-wbem/host/wbem_host.c");
        let before = Discovered::from_metadata(&metadata(&[])).unwrap();
        let after = Discovered::from_metadata(&metadata(&[wbem, provider])).unwrap();
        assert_eq!(after.loom[..before.loom.len()], before.loom);
        assert_eq!(
            loom_args(&after)[before.loom.len()..],
            [["-p", "winprov-wbem", "--lib", "loom_models"]]
        );
        assert_eq!(
            stress(&after),
            [("winprov-nspv2", 2_000_000), ("winprov-wbem", 500_000)]
        );
        assert_eq!(after.wine_unit_tests, ["winprov-core", "winprov-wbem"]);
        assert_eq!(after.wine_harnesses[..2], before.wine_harnesses);
        assert_eq!(
            after.wine_harnesses[2..],
            [harness(
                "wbem_host",
                "tests/wine-wbem/host/wbem_host.c",
                "wmi-inventory",
                "wmi_inventory.dll"
            )]
        );
    }

    #[test]
    fn c_dlls_are_built_once_and_follow_the_cdylib_in_the_arguments() {
        let base = "tests/wine-lsp/base/wsp_base.c";
        // A package that builds no DLL of its own: its harness drives the C DLL alone.
        let alone = c_dll_package(
            "wine-base",
            None,
            "tests/wine-lsp/host/base_host.c",
            &[base],
        );
        // A layer over the same base: its cdylib first, then the base.
        let layered = c_dll_package(
            "wine-layer",
            Some("wine_layer"),
            "tests/wine-lsp/host/lsp_host.c",
            &[base, "tests/wine-lsp/base/extra.c"],
        );
        let found = Discovered::from_metadata(&metadata(&[alone, layered])).unwrap();
        assert_eq!(
            found.wine_c_dlls,
            [c_dll(base), c_dll("tests/wine-lsp/base/extra.c")]
        );
        assert_eq!(found.wine_c_dlls[0].file(), "wsp_base.dll");
        let args: Vec<(&str, Option<&str>, Vec<&str>)> = found
            .wine_harnesses
            .iter()
            .map(|h| {
                (
                    h.name.as_str(),
                    h.cargo_dll.as_deref(),
                    h.dlls.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            args,
            [
                (
                    "rig_host",
                    Some("winprov_wine_rig.dll"),
                    vec!["winprov_wine_rig.dll"]
                ),
                ("base_host", None, vec!["wsp_base.dll"]),
                (
                    "lsp_host",
                    Some("wine_layer.dll"),
                    vec!["wine_layer.dll", "wsp_base.dll", "extra.dll"]
                ),
                (
                    "nsp_host",
                    Some("email_directory.dll"),
                    vec!["email_directory.dll"]
                ),
            ]
        );
    }

    #[test]
    fn a_package_can_declare_both_kinds_of_loom_models() {
        let both = library(
            "winprov-wsp",
            "crates/wsp",
            &["loom"],
            json!({"loom": ["lib:loom_models", "test:loom"]}),
        );
        let found = Discovered::from_metadata(&metadata(&[both])).unwrap();
        assert_eq!(
            loom_args(&found)[2..],
            [
                ["-p", "winprov-wsp", "--lib", "loom_models"],
                ["-p", "winprov-wsp", "--test", "loom"],
            ]
        );
    }

    fn error(extra: Value) -> String {
        errors(&[extra])
    }

    fn errors(extra: &[Value]) -> String {
        let error = Discovered::from_metadata(&metadata(extra)).unwrap_err();
        format!("{error:#}")
    }

    #[test]
    fn two_c_dlls_of_one_name_are_an_error() {
        let message = errors(&[
            c_dll_package("wine-a", None, "tests/a/a_host.c", &["tests/a/base.c"]),
            c_dll_package("wine-b", None, "tests/b/b_host.c", &["tests/b/base.c"]),
        ]);
        assert!(
            message.contains("two C DLLs named `base.dll` (tests/a/base.c and tests/b/base.c)"),
            "{message}"
        );
    }

    #[test]
    fn undeclared_loom_models_and_stress_tests_are_errors() {
        let message = error(library(
            "winprov-wbem",
            "crates/wbem",
            &["loom"],
            Value::Null,
        ));
        assert!(
            message.contains("declare `loom = \"test:loom\"`"),
            "{message}"
        );
        assert!(message.contains("`winprov-wbem`"), "{message}");
        let message = error(library(
            "winprov-wbem",
            "crates/wbem",
            &["stress"],
            Value::Null,
        ));
        assert!(message.contains("declare `stress-operations"), "{message}");
        // A `loom_models` module next to the library's root, found on disk: this workspace's
        // NSPv2 crate without its declaration.
        let nspv2 = crate::workspace_root().join("crates/nspv2");
        let mut undeclared = library("winprov-nspv2", "crates/nspv2", &[], Value::Null);
        undeclared["targets"][0]["src_path"] = json!(nspv2.join("src/lib.rs"));
        let message = error(undeclared);
        assert!(
            message.contains("declare `loom = \"lib:loom_models\"`"),
            "{message}"
        );
        assert!(message.contains("loom_models.rs"), "{message}");
    }

    #[test]
    fn wrong_declarations_are_errors() {
        let wbem =
            |tests: &[&str], test: Value| library("winprov-wbem", "crates/wbem", tests, test);
        for (package, expected) in [
            (wbem(&[], json!({"lom": "lib:x"})), "unknown key `lom`"),
            (
                wbem(&[], json!({"loom": "bin:x"})),
                "neither `lib:<module>`",
            ),
            (wbem(&[], json!({"loom": "lib:"})), "names nothing"),
            (wbem(&[], json!({"loom": 3})), "a string or a list"),
            (
                wbem(&[], json!({"loom": "test:loom"})),
                "no test target `loom`",
            ),
            (
                wbem(&["stress"], json!({"stress-operations": 0})),
                "positive integer",
            ),
            (
                wbem(&["stress"], json!({"stress-operations": "9"})),
                "positive integer",
            ),
            (
                wbem(&[], json!({"stress-operations": 9})),
                "no test target `stress`",
            ),
            (
                wbem(&[], json!({"wine-unit-tests": "yes"})),
                "true or false",
            ),
            (
                wbem(&[], json!({"wine-harnesses": ["h.c"]})),
                "no cdylib target, no `wine-c-dlls`",
            ),
            (
                wbem(&[], json!({"wine-c-dlls": ["b.c"]})),
                "without `wine-harnesses`",
            ),
            (
                c_dll_package("wine-base", None, "tests/b/h.c", &["tests/b/base.h"]),
                "`wine-c-dlls`: `tests/b/base.h` is not a C file relative",
            ),
            (
                wbem(
                    &[],
                    json!({"wine-harnesses": ["h.c"], "wine-c-dlls": "b.c"}),
                ),
                "`wine-c-dlls` must be a list of paths",
            ),
            (
                c_dll_package(
                    "wine-base",
                    None,
                    "tests/b/h.c",
                    &["tests/b/winprov_wine_rig.c"],
                ),
                "the C DLL tests/b/winprov_wine_rig.c and the cdylib of `winprov-wine-rig`",
            ),
            (
                wbem(&[], json!({"wine-harnesses": "h.c"})),
                "a list of paths",
            ),
            (sample("s", "/abs/host.c"), "not a C file relative"),
            (
                sample("s", "tests/wine-s/host/host.h"),
                "not a C file relative",
            ),
            (
                sample("s", "tests/wine-s/host/nsp_host.c"),
                "two Wine harnesses named `nsp_host`",
            ),
        ] {
            let message = error(package);
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }
}
