//! `cargo xtask test`: every check CI runs, in order, each step timed.

use crate::discover::{CDll, Discovered, LoomRun, StressRun, WineHarness};
use crate::installer::Descriptor;
use crate::prereq::{self, Need};
use crate::publish;
use crate::stage::{Handoff, Stages, cargo, run as sh};
use crate::wine::Prefix;
use crate::{WINDOWS_TARGET, target_dir, workspace_root};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;
use winprov_dist::project::{Project, select};
use winprov_dist::release::build_msi;

pub fn run(args: &[String]) -> Result<()> {
    let wine = match args {
        [] => true,
        [flag] if flag == "--no-wine" => false,
        _ => bail!("test takes only --no-wine"),
    };
    let found = Discovered::find()?;
    let handoffs = Handoffs::new();
    plan(&found, &handoffs, wine).run()?;
    println!("\nall checks passed");
    Ok(())
}

/// What one stage makes for later ones.
#[derive(Debug)]
struct Handoffs {
    prefix: Handoff<Prefix>,
    installers: Handoff<(Project, Vec<Descriptor>)>,
}

impl Handoffs {
    fn new() -> Self {
        Self {
            prefix: Handoff::new("the Wine prefix"),
            installers: Handoff::new("the MSIs"),
        }
    }
}

/// The stages of `cargo xtask test`.
fn plan<'a>(found: &'a Discovered, handoffs: &'a Handoffs, wine: bool) -> Stages<'a> {
    let mut stages = Stages::new();
    stages.add("prerequisites", || prereq::ensure(Need::Everything));
    stages.add("format", || {
        sh(cargo().args(["fmt", "--all", "--", "--check"]))
    });
    stages.add("clippy (Linux)", || {
        sh(cargo()
            .args(["clippy", "--workspace", "--all-targets", "--locked"])
            .args(["--", "-D", "warnings"]))
    });
    stages.add("clippy (Windows)", || {
        // xtask is a host tool; everything else must be clean for the Windows target too.
        sh(cargo()
            .args([
                "clippy",
                "--workspace",
                "--exclude",
                "xtask",
                "--all-targets",
            ])
            .args([
                "--locked",
                "--target",
                WINDOWS_TARGET,
                "--",
                "-D",
                "warnings",
            ]))
    });
    stages.add("tests (unit, trybuild, codegen freshness)", || {
        sh(cargo().args(["test", "--workspace", "--locked"]))
    });
    stages.add(DOCS_STAGE, publish::docs);
    stages.add(PACKAGE_STAGE, publish::package);
    stages.add("loom models", || loom(&found.loom));
    stages.add("stress (randomized host sequences)", || {
        stress(&found.stress)
    });
    stages.add("Windows cross-build", || {
        sh(cargo()
            .args(["build", "--workspace", "--exclude", "xtask", "--locked"])
            .args(["--target", WINDOWS_TARGET]))?;
        build_c_dlls(&found.wine_c_dlls)
    });
    if wine {
        stages.add("Wine prefix", || {
            handoffs.prefix.put(Prefix::prepare(&target_dir())?)
        });
        stages.add("unit tests under Wine", || {
            wine_unit_tests(handoffs.prefix.get()?, &found.wine_unit_tests)
        });
        stages.add("Wine ABI harnesses", || {
            let prefix = handoffs.prefix.get()?;
            for harness in &found.wine_harnesses {
                run_harness(prefix, harness)?;
            }
            prefix.wait()
        });
    }
    msi_stages(&mut stages, handoffs, wine, &[]);
    stages.add(OUTSIDE_STAGE, move || outside_provider(wine));
    stages
}

/// The stage that builds the documentation as docs.rs does.
const DOCS_STAGE: &str = "documentation (rustdoc, warnings denied)";

/// The stage that packages the published crates as crates.io receives them.
const PACKAGE_STAGE: &str = "packages of the published crates (cargo package)";

/// `cargo xtask docs` / `cargo xtask package`: that stage of `test` alone.
pub fn run_publish_stage(docs: bool, args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!(
            "{} takes no arguments",
            if docs { "docs" } else { "package" }
        );
    }
    let mut stages = Stages::new();
    if docs {
        stages.add(DOCS_STAGE, publish::docs);
    } else {
        stages.add(PACKAGE_STAGE, publish::package);
    }
    stages.run()?;
    Ok(())
}

/// The stage that packages the provider crate outside the workspace.
const OUTSIDE_STAGE: &str = "provider outside the workspace (cargo winprov)";

/// The manifest of the provider crate outside the workspace, relative to the workspace root.
const OUTSIDE_PROVIDER: &str = "tests/outside-provider/Cargo.toml";

/// `cargo xtask outside-provider`: that stage alone.
pub fn run_outside_provider(args: &[String]) -> Result<()> {
    let wine = match args {
        [] => true,
        [flag] if flag == "--no-wine" => false,
        _ => bail!("outside-provider takes only --no-wine"),
    };
    let mut stages = Stages::new();
    stages.add(OUTSIDE_STAGE, move || outside_provider(wine));
    stages.run()?;
    Ok(())
}

/// The provider crate outside the workspace: its format and its tests (on the simulator), then
/// `cargo winprov dist` on it as its author runs it (the `cargo-winprov` binary, given
/// `winprov` first as cargo does), and with Wine its installation tests (`test-install`). It builds in the workspace's target directory (one
/// cache, the Wine shim shared); the winprov crates are built again for it, with its profile
/// and features.
fn outside_provider(wine: bool) -> Result<()> {
    sh(cargo().args(["fmt", "--check", "--manifest-path", OUTSIDE_PROVIDER]))?;
    // Its own tests, on winprov-nspv2's simulator (the `testing` dev-dependency).
    sh(cargo().args(["test", "--locked", "--manifest-path", OUTSIDE_PROVIDER]))?;
    sh(cargo().args(["build", "--locked", "-p", "cargo-winprov"]))?;
    let exe = target_dir()
        .join("debug")
        .join(format!("cargo-winprov{}", std::env::consts::EXE_SUFFIX));
    let msi = target_dir().join("dist/outside-provider-0.1.0-x64.msi");
    let _ = std::fs::remove_file(&msi);
    sh(Command::new(exe)
        .args(["winprov", if wine { "test-install" } else { "dist" }])
        .args(["--manifest-path", OUTSIDE_PROVIDER, "--locked"])
        .env("CARGO_TARGET_DIR", target_dir()))?;
    if !msi.is_file() {
        bail!("cargo winprov succeeded without making {}", msi.display());
    }
    Ok(())
}

/// `cargo xtask harness <name>...`: the named Wine ABI harnesses alone, after building the
/// DLLs they load (their packages' cdylibs for Windows, the C DLLs).
pub fn run_harnesses(names: &[String]) -> Result<()> {
    let found = Discovered::find()?;
    let known = || {
        let names: Vec<&str> = found
            .wine_harnesses
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        names.join(", ")
    };
    if names.is_empty() {
        bail!("harness needs the names of harnesses: {}", known());
    }
    let selected = names
        .iter()
        .map(|name| {
            found
                .wine_harnesses
                .iter()
                .find(|h| &h.name == name)
                .with_context(|| format!("no Wine harness `{name}` (there are {})", known()))
        })
        .collect::<Result<Vec<_>>>()?;
    prereq::ensure(Need::Wine)?;
    let packages: Vec<&str> = selected
        .iter()
        .filter(|h| h.cargo_dll.is_some())
        .map(|h| h.package.as_str())
        .collect();
    if !packages.is_empty() {
        let mut build = cargo();
        build.args(["build", "--locked", "--target", WINDOWS_TARGET]);
        for package in packages {
            build.args(["-p", package]);
        }
        sh(&mut build)?;
    }
    build_c_dlls(&found.wine_c_dlls)?;
    let prefix = Prefix::prepare(&target_dir())?;
    for harness in selected {
        run_harness(&prefix, harness)?;
    }
    prefix.wait()
}

/// The loom models each package declares, compiled with `--cfg loom` into their own target
/// directory so the normal build cache survives.
fn loom(runs: &[LoomRun]) -> Result<()> {
    loom_commands(runs).iter_mut().try_for_each(sh)
}

fn loom_commands(runs: &[LoomRun]) -> Vec<Command> {
    let loom_target = target_dir().join("loom");
    runs.iter()
        .map(|run| {
            let mut cmd = cargo();
            cmd.args(["test", "--locked", "--release"])
                .args(run.args())
                .env("RUSTFLAGS", "--cfg loom")
                .env("CARGO_TARGET_DIR", &loom_target)
                .env("LOOM_MAX_PREEMPTIONS", "3");
            cmd
        })
        .collect()
}

/// The MSI stages: build and check the installers of `packages` (every sample's when empty),
/// then (with Wine) install, upgrade, roll back and uninstall them.
fn msi_stages<'a>(
    stages: &mut Stages<'a>,
    handoffs: &'a Handoffs,
    wine: bool,
    packages: &'a [String],
) {
    stages.add("MSIs (release build, wixl, table checks)", move || {
        let project = crate::dist::project()?;
        let descriptors = msi_build(&project, packages)?;
        handoffs.installers.put((project, descriptors))
    });
    if wine {
        stages.add(
            "MSI install, upgrade, rollback, uninstall under Wine",
            || {
                let (project, descriptors) = handoffs.installers.get()?;
                crate::msi_wine::run(
                    project,
                    descriptors,
                    &project.dist_dir(),
                    &target_dir().join("wine/msi-prefix"),
                )
            },
        );
    }
}

/// `cargo xtask msi-test`: the MSI stages of `cargo xtask test` alone.
pub fn run_msi(args: &[String]) -> Result<()> {
    let (flags, packages) = crate::dist::package_args(args)?;
    let wine = match flags.as_slice() {
        [] => true,
        [flag] if flag == "--no-wine" => false,
        _ => bail!("msi-test takes only --no-wine and -p <package>"),
    };
    let handoffs = Handoffs::new();
    msi_plan(&handoffs, wine, &packages).run()?;
    Ok(())
}

/// The stages of `cargo xtask msi-test`.
fn msi_plan<'a>(handoffs: &'a Handoffs, wine: bool, packages: &'a [String]) -> Stages<'a> {
    let mut stages = Stages::new();
    stages.add("prerequisites", move || {
        prereq::ensure(Need::Dist)?;
        if wine {
            prereq::ensure(Need::Wine)?;
        }
        Ok(())
    });
    msi_stages(&mut stages, handoffs, wine, packages);
    stages
}

/// Builds the MSI of each sample of `packages` (every sample's when empty) into `target/dist`
/// (the table checks run on each) and proves that the checks can fail: each MSI must be
/// rejected against a descriptor with another upgrade code or version.
fn msi_build(project: &Project, packages: &[String]) -> Result<Vec<Descriptor>> {
    let descriptors = select(crate::dist::descriptors(project)?, packages)?;
    crate::dist::release_build(project, &descriptors)?;
    let dist = project.dist_dir();
    for d in &descriptors {
        let msi = build_msi(project, d, &dist)?;
        let mut other = d.with_version(&crate::msi_wine::next_version(&d.version))?;
        other.upgrade_code = "00000000-0000-4000-8000-000000000001".to_string();
        let Err(error) = winprov_dist::msi_check::check(&msi, &other, &project.bin_dir()) else {
            bail!(
                "the table checks accepted {} for another product",
                msi.display()
            );
        };
        let message = format!("{error:#}");
        if !message.contains("ProductVersion") || !message.contains("UpgradeCode") {
            bail!("the table checks missed a difference: {message}");
        }
        println!("  ok  the checks reject it for another version and upgrade code");
    }
    Ok(descriptors)
}

/// The randomized host sequences, optimized, at full size (each package's
/// `stress-operations`: a plain `cargo test` runs a smaller count so the test is never skipped).
fn stress(runs: &[StressRun]) -> Result<()> {
    stress_commands(runs).iter_mut().try_for_each(sh)
}

fn stress_commands(runs: &[StressRun]) -> Vec<Command> {
    runs.iter()
        .map(|run| {
            let mut cmd = cargo();
            cmd.args(["test", "--locked", "--release", "-p", &run.package])
                .args(["--test", "stress", "--", "--nocapture"])
                .env("WINPROV_STRESS_OPERATIONS", run.operations.to_string());
            cmd
        })
        .collect()
}

fn wine_unit_tests(prefix: &Prefix, packages: &[String]) -> Result<()> {
    let mut cmd = cargo();
    cmd.args([
        "test",
        "--locked",
        "--target",
        WINDOWS_TARGET,
        "--lib",
        "--tests",
    ]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    cmd.env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", prefix.loader());
    prefix.env(&mut cmd);
    sh(&mut cmd)
}

/// Where the harnesses, their DLLs and their files live while they run.
fn harness_dir() -> PathBuf {
    target_dir().join("wine/bin")
}

/// The compiler flags of every C file of the Wine tests, harnesses and DLLs alike.
const C_FLAGS: [&str; 6] = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror"];

/// Builds the C DLLs the harnesses load into the harness directory.
fn build_c_dlls(dlls: &[CDll]) -> Result<()> {
    std::fs::create_dir_all(harness_dir())?;
    dlls.iter().try_for_each(|dll| sh(&mut c_dll_command(dll)))
}

fn c_dll_command(dll: &CDll) -> Command {
    let mut cmd = Command::new("x86_64-w64-mingw32-gcc");
    cmd.args(C_FLAGS)
        .args(["-shared", "-o"])
        .arg(harness_dir().join(dll.file()))
        .arg(workspace_root().join(&dll.source))
        .arg("-lws2_32");
    cmd
}

fn run_harness(prefix: &Prefix, harness: &WineHarness) -> Result<()> {
    let root = workspace_root();
    let bin = harness_dir();
    std::fs::create_dir_all(&bin)?;
    let exe = bin.join(format!("{}.exe", harness.name));
    sh(Command::new("x86_64-w64-mingw32-gcc")
        .args(C_FLAGS)
        .arg("-o")
        .arg(&exe)
        .arg(root.join(&harness.source)))?;
    if let Some(file) = &harness.cargo_dll {
        let dll = built_windows_artifact(file);
        std::fs::copy(&dll, bin.join(file)).with_context(|| {
            format!(
                "copying {} (built by -p {})",
                dll.display(),
                harness.package
            )
        })?;
    }
    let mut cmd = prefix.command(&exe);
    // Panics are expected (the boundary tests): keep their default-hook output short.
    cmd.args(&harness.dlls)
        .current_dir(&bin)
        .env("RUST_BACKTRACE", "0");
    println!("$ wine {} {}", exe.display(), harness.dlls.join(" "));
    let out = cmd.output().context("running the harness under Wine")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let summary = stdout
        .lines()
        .rev()
        .find_map(parse_summary)
        .with_context(|| format!("{}: no `N passed, N failed` line", harness.name))?;
    if !out.status.success() || summary.1 != 0 || summary.0 == 0 {
        bail!(
            "{}: {} passed, {} failed, exit {}",
            harness.name,
            summary.0,
            summary.1,
            out.status
        );
    }
    Ok(())
}

/// Parses the harness' closing `N passed, M failed` line.
fn parse_summary(line: &str) -> Option<(u32, u32)> {
    let (passed, failed) = line.trim().split_once(", ")?;
    let passed = passed.strip_suffix(" passed")?.parse().ok()?;
    let failed = failed.strip_suffix(" failed")?.parse().ok()?;
    Some((passed, failed))
}

/// A debug artifact of the Windows cross-build.
pub fn built_windows_artifact(file: &str) -> PathBuf {
    target_dir().join(WINDOWS_TARGET).join("debug").join(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::describe;

    #[test]
    fn summary_line_is_parsed() {
        assert_eq!(parse_summary("12 passed, 0 failed"), Some((12, 0)));
        assert_eq!(parse_summary("3 passed, 2 failed\r"), Some((3, 2)));
        assert_eq!(parse_summary("ok 3 - something"), None);
    }

    #[test]
    fn the_plans_count_their_stages() {
        let found = Discovered::default();
        let handoffs = Handoffs::new();
        let common = [
            "prerequisites",
            "format",
            "clippy (Linux)",
            "clippy (Windows)",
            "tests (unit, trybuild, codegen freshness)",
            "documentation (rustdoc, warnings denied)",
            "packages of the published crates (cargo package)",
            "loom models",
            "stress (randomized host sequences)",
            "Windows cross-build",
        ];
        let wine = ["Wine prefix", "unit tests under Wine", "Wine ABI harnesses"];
        let msi = "MSIs (release build, wixl, table checks)";
        let msi_wine = "MSI install, upgrade, rollback, uninstall under Wine";
        let outside = "provider outside the workspace (cargo winprov)";
        let with_wine: Vec<&str> = common
            .iter()
            .chain(&wine)
            .chain(&[msi, msi_wine, outside])
            .copied()
            .collect();
        let without_wine: Vec<&str> = common.iter().chain(&[msi, outside]).copied().collect();
        assert_eq!(plan(&found, &handoffs, true).names(), with_wine);
        assert_eq!(plan(&found, &handoffs, false).names(), without_wine);
        assert_eq!(with_wine.len(), 16);
        assert_eq!(without_wine.len(), 12);
        assert_eq!(
            msi_plan(&handoffs, true, &[]).names(),
            ["prerequisites", msi, msi_wine]
        );
        assert_eq!(
            msi_plan(&handoffs, false, &[]).names(),
            ["prerequisites", msi]
        );
    }

    /// The loom and stress commands of this workspace: those `cargo xtask test` ran when it
    /// listed them by hand.
    #[test]
    fn the_loom_and_stress_commands_are_found() {
        let found = Discovered::find().unwrap();
        let lines = |commands: Vec<Command>| -> Vec<String> {
            commands
                .iter()
                .map(|cmd| {
                    let program = cmd.get_program().to_string_lossy().into_owned();
                    describe(cmd).replacen(&program, "cargo", 1)
                })
                .collect()
        };
        let loom_env = format!(
            "CARGO_TARGET_DIR={} LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS=--cfg loom",
            target_dir().join("loom").display()
        );
        // The runs of the crates that existed when the lists were hand-written, word for word;
        // a crate added later adds its own runs without an edit here.
        let loom = lines(loom_commands(&found.loom));
        for package in ["winprov-nspv2", "winprov-tspi"] {
            let expected =
                format!("{loom_env} cargo test --locked --release -p {package} --lib loom_models");
            assert!(loom.contains(&expected), "{expected} in {loom:?}");
        }
        let core = format!("{loom_env} cargo test --locked --release -p winprov-core --test loom");
        assert_eq!(loom.first(), Some(&core));
        let stress = lines(stress_commands(&found.stress));
        for (package, operations) in [("winprov-nspv2", 2_000_000), ("winprov-tspi", 8_000_000)] {
            let expected = format!(
                "WINPROV_STRESS_OPERATIONS={operations} cargo test --locked --release -p \
                 {package} --test stress -- --nocapture"
            );
            assert!(stress.contains(&expected), "{expected} in {stress:?}");
        }
    }

    /// The `[[package]]` entries of a Cargo.lock: (name, version).
    fn locked_packages(path: &std::path::Path) -> std::collections::BTreeSet<(String, String)> {
        let text = std::fs::read_to_string(path).unwrap();
        let value = |line: &str, key: &str| {
            line.strip_prefix(key).map(|v| {
                v.trim_matches(|c| c == ' ' || c == '=' || c == '"')
                    .to_string()
            })
        };
        let mut found = std::collections::BTreeSet::new();
        let mut name = None;
        for line in text.lines() {
            if let Some(n) = value(line, "name ") {
                name = Some(n);
            } else if let (Some(v), Some(n)) = (value(line, "version "), name.take()) {
                found.insert((n, v));
            }
        }
        found
    }

    /// The provider outside the workspace builds with `--locked`: its Cargo.lock must need no
    /// change (the winprov crates' dependencies move under it) and pin what the workspace's
    /// pins, so that it is built with the versions the workspace is tested with.
    #[test]
    fn the_outside_provider_lock_agrees_with_the_workspace() {
        let root = workspace_root();
        let fix = "copy the workspace's Cargo.lock to tests/outside-provider/ and run `cargo \
                   metadata --manifest-path tests/outside-provider/Cargo.toml` (it keeps the \
                   versions and drops what the provider does not use)";
        let status = cargo()
            .args(["metadata", "--format-version", "1", "--locked", "--offline"])
            .args(["--manifest-path", OUTSIDE_PROVIDER])
            .current_dir(&root)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "tests/outside-provider/Cargo.lock is stale: {fix}"
        );
        let workspace = locked_packages(&root.join("Cargo.lock"));
        let outside = locked_packages(&root.join("tests/outside-provider/Cargo.lock"));
        assert!(outside.len() > 10, "{outside:?}");
        let differing: Vec<_> = outside
            .iter()
            .filter(|(name, _)| name != "outside-provider")
            .filter(|package| !workspace.contains(package))
            .collect();
        assert!(
            differing.is_empty(),
            "{differing:?} are not the workspace's: {fix}"
        );
    }

    #[test]
    fn harness_sources_exist() {
        let found = Discovered::find().unwrap();
        assert!(!found.wine_harnesses.is_empty());
        let sources = found.wine_harnesses.iter().map(|h| &h.source);
        for source in sources.chain(found.wine_c_dlls.iter().map(|d| &d.source)) {
            assert!(
                workspace_root().join(source).is_file(),
                "{}",
                source.display()
            );
        }
    }

    /// The workspace's C base provider is built into the harness directory with the harnesses'
    /// flags, as a DLL linked with ws2_32.
    #[test]
    fn the_c_dlls_are_built_beside_the_harnesses() {
        let found = Discovered::find().unwrap();
        let base = found
            .wine_c_dlls
            .iter()
            .find(|d| d.name == "wsp_base")
            .expect("tests/wine-lsp declares wsp_base.c");
        assert_eq!(
            describe(&c_dll_command(base)),
            format!(
                "x86_64-w64-mingw32-gcc -std=c11 -O1 -g -Wall -Wextra -Werror -shared -o {} {} \
                 -lws2_32",
                target_dir().join("wine/bin/wsp_base.dll").display(),
                workspace_root()
                    .join("tests/wine-lsp/base/wsp_base.c")
                    .display()
            )
        );
    }
}
