//! `cargo xtask dist`: the release Windows artifacts of every sample provider and, from each
//! sample's descriptor (`[package.metadata.winprov.dist]`, see `docs/dist.md`), its MSI:
//! `target/dist/<sample>-<version>-x64.msi`, built by wixl and checked table by table.

use crate::installer::{self, Descriptor};
use crate::prereq::{self, Need};
use crate::stage::{Handoff, Stages, cargo, describe, run as sh};
use crate::{WINDOWS_TARGET, target_dir};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The samples' installer descriptors, in workspace order. Samples without one are reported
/// and skipped.
pub fn descriptors() -> Result<Vec<Descriptor>> {
    let metadata = crate::discover::cargo_metadata()?;
    let samples = crate::workspace_root().join("samples");
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
        if !manifest.starts_with(&samples) {
            continue;
        }
        match Descriptor::from_package(package)? {
            Some(descriptor) => found.push(descriptor),
            None => println!(
                "note: {} has no [package.metadata.winprov.dist]: no installer for it",
                manifest.display()
            ),
        }
    }
    Ok(found)
}

/// Where the release Windows artifacts are.
pub fn bin_dir() -> PathBuf {
    target_dir().join(WINDOWS_TARGET).join("release")
}

/// Only the descriptors of `packages` (all of them when it is empty), in workspace order; a
/// name without a descriptor is an error.
pub fn select(descriptors: Vec<Descriptor>, packages: &[String]) -> Result<Vec<Descriptor>> {
    if let Some(unknown) = packages
        .iter()
        .find(|p| !descriptors.iter().any(|d| &d.package == *p))
    {
        let known: Vec<&str> = descriptors.iter().map(|d| d.package.as_str()).collect();
        bail!(
            "no sample `{unknown}` with an installer descriptor (there are {})",
            known.join(", ")
        );
    }
    Ok(descriptors
        .into_iter()
        .filter(|d| packages.is_empty() || packages.contains(&d.package))
        .collect())
}

/// Splits `-p <package>` / `--package <package>` (any number) from the other arguments.
pub fn package_args(args: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    let mut packages = Vec::new();
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "-p" || arg == "--package" {
            let Some(package) = args.next() else {
                bail!("{arg} needs a package name");
            };
            packages.push(package.clone());
        } else if let Some(package) = arg.strip_prefix("--package=") {
            packages.push(package.to_string());
        } else {
            rest.push(arg.clone());
        }
    }
    Ok((rest, packages))
}

/// The release build of the samples' packages for Windows: one `cargo build --release` of them
/// all (the executables), then each package's DLL again on its own, `cargo rustc --lib
/// --crate-type cdylib`. The samples' libraries are `["cdylib", "rlib"]` (their tests link the
/// rlib), and cargo does not pass `-C lto` for a crate that is also an rlib
/// (rust-lang/cargo#9672): the workspace's `lto = true` applies to a cdylib built alone. That
/// build writes the same `<lib>.dll` into the same directory, after the first.
pub fn release_build(descriptors: &[Descriptor]) -> Result<()> {
    for mut command in release_commands(descriptors) {
        sh(&mut command)?;
    }
    report_dlls(descriptors, &bin_dir())
}

fn release_commands(descriptors: &[Descriptor]) -> Vec<Command> {
    let mut build = cargo();
    build.args(["build", "--release", "--locked", "--target", WINDOWS_TARGET]);
    for d in descriptors {
        build.args(["-p", &d.package]);
    }
    if descriptors.is_empty() {
        // No sample yet: still check that the library crates build in release mode.
        build.args(["--workspace", "--exclude", "xtask"]);
    }
    let mut commands = vec![build];
    // `cargo rustc` builds one package at a time.
    for d in descriptors.iter().filter(|d| d.dll().is_some()) {
        let mut dll = cargo();
        dll.args(["rustc", "--release", "--locked", "--target", WINDOWS_TARGET])
            .args(["-p", &d.package, "--lib", "--crate-type", "cdylib"]);
        commands.push(dll);
    }
    commands
}

/// Prints every sample's DLL size (and budget); fails when one exceeds its descriptor's
/// `max-dll-bytes`.
fn report_dlls(descriptors: &[Descriptor], bin: &Path) -> Result<()> {
    let mut over = Vec::new();
    println!(
        "
{:<20} {:>12} {:>12}  DLL",
        "sample", "bytes", "budget"
    );
    for d in descriptors {
        let Some(dll) = d.dll() else { continue };
        let bytes = size(&bin.join(dll))?;
        let budget = d
            .max_dll_bytes
            .map_or_else(|| "-".to_string(), |b| b.to_string());
        println!("{:<20} {bytes:>12} {budget:>12}  {dll}", d.package);
        if let Err(error) = check_dll_budget(d, bytes) {
            over.push(format!("{error:#}"));
        }
    }
    if !over.is_empty() {
        bail!("{}", over.join("\n"));
    }
    Ok(())
}

/// `bytes` against `d`'s `max-dll-bytes`.
pub fn check_dll_budget(d: &Descriptor, bytes: u64) -> Result<()> {
    match d.max_dll_bytes {
        Some(budget) if bytes > budget => bail!(
            "{}: {} is {bytes} bytes, over its budget of {budget} (`max-dll-bytes` of \
             its [package.metadata.winprov.dist])",
            d.package,
            d.dll().unwrap_or("the DLL"),
        ),
        _ => Ok(()),
    }
}

/// Writes `<out>/wix/<package>-<version>.wxs`.
pub fn write_wxs(d: &Descriptor, out: &Path) -> Result<PathBuf> {
    let dir = out.join("wix");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}-{}.wxs", d.package, d.version));
    std::fs::write(&path, installer::wxs(d)).with_context(|| format!("{}", path.display()))?;
    Ok(path)
}

/// Generates the source, compiles it with wixl into `<out>/<package>-<version>-x64.msi` and
/// checks the tables. Any wixl line with WARNING or CRITICAL fails: wixl reports unsupported
/// constructs that way and still writes a package without them.
pub fn build_msi(d: &Descriptor, out: &Path) -> Result<PathBuf> {
    build_msi_from(d, out, &bin_dir())
}

/// [`build_msi`] from the artifacts in `bin`.
pub fn build_msi_from(d: &Descriptor, out: &Path, bin: &Path) -> Result<PathBuf> {
    let wxs = write_wxs(d, out)?;
    let msi = out.join(d.msi_name());
    let _ = std::fs::remove_file(&msi);
    let mut cmd = Command::new("wixl");
    cmd.args(["-a", "x64"])
        .arg("-D")
        .arg(format!("{}=.", installer::BIN_DIR_VARIABLE))
        .arg("-D")
        .arg(format!("{}=1", installer::WIXL_VARIABLE))
        .arg("-o")
        .arg(&msi)
        .arg(&wxs)
        // wixl resolves `Source` relative to the working directory and rejects absolute paths.
        .current_dir(bin);
    let line = describe(&cmd);
    println!("$ (cd {} && {line})", bin.display());
    let output = cmd
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    let messages = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    print!("{messages}");
    let flagged: Vec<&str> = messages
        .lines()
        .filter(|l| {
            let upper = l.to_ascii_uppercase();
            upper.contains("WARNING") || upper.contains("CRITICAL")
        })
        .collect();
    if !output.status.success() {
        bail!("`{line}` failed with {}", output.status);
    }
    if !flagged.is_empty() {
        bail!(
            "wixl reported problems with {} (treated as errors: it drops what it does not \
             support):\n  {}",
            wxs.display(),
            flagged.join("\n  ")
        );
    }
    let checked = crate::msi_check::check(&msi, d, bin)?;
    for line in checked {
        println!("  ok  {line}");
    }
    Ok(msi)
}

fn size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .len())
}

pub fn run(args: &[String]) -> Result<()> {
    let (flags, packages) = package_args(args)?;
    let wxs_only = match flags.as_slice() {
        [] => false,
        [flag] if flag == "--wxs-only" => true,
        _ => bail!("dist takes only --wxs-only and -p <package>"),
    };
    let dist = target_dir().join("dist");
    let descriptors = Handoff::new("the installer descriptors");
    if wxs_only {
        // On Windows: the sources for candle/light or cargo-wix, no wixl needed.
        let written = Handoff::new("the WiX sources");
        let mut stages = Stages::new();
        stages.add("read the installer descriptors", || {
            descriptors.put(select(self::descriptors()?, &packages)?)
        });
        stages.add("write the WiX sources", || {
            written.put(
                descriptors
                    .get()?
                    .iter()
                    .map(|d| write_wxs(d, &dist))
                    .collect::<Result<Vec<_>>>()?,
            )
        });
        stages.run()?;
        for path in written.get()? {
            println!("{}", path.display());
        }
        return Ok(());
    }

    let built = Handoff::new("the MSIs");
    let mut stages = Stages::new();
    stages.add("prerequisites", || prereq::ensure(Need::Dist));
    stages.add("read the installer descriptors", || {
        descriptors.put(select(self::descriptors()?, &packages)?)
    });
    stages.add("release build for Windows", || {
        release_build(descriptors.get()?)
    });
    stages.add("MSIs (generate .wxs, wixl, check the tables)", || {
        let mut made = Vec::new();
        for d in descriptors.get()? {
            println!("\n--- {} {}", d.package, d.version);
            let msi = build_msi(d, &dist)?;
            // The payloads next to the MSI, for whoever installs by hand.
            let mut payloads = Vec::new();
            for file in &d.files {
                let to = dist.join(&file.source);
                std::fs::copy(bin_dir().join(&file.source), &to)
                    .with_context(|| format!("copying {}", file.source))?;
                payloads.push(to);
            }
            made.push((d.package.clone(), msi, payloads));
        }
        built.put(made)
    });
    stages.run()?;
    let built = built.get()?;
    if built.is_empty() {
        println!("\nno sample provider has an installer descriptor: target/dist/ has no MSI");
        return Ok(());
    }
    println!("\n{:<20} {:>12}  file", "sample", "bytes");
    for (package, msi, payloads) in built {
        for path in std::iter::once(msi).chain(payloads) {
            println!("{package:<20} {:>12}  {}", size(path)?, path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::describe;
    use serde_json::json;

    /// A sample named `package` with an exe, and a DLL when `dll`.
    fn sample(package: &str, dll: bool, budget: Option<u64>) -> Descriptor {
        let lib = package.replace('-', "_");
        let mut files = vec![json!({"artifact": "bin"})];
        if dll {
            files.push(json!({"artifact": "cdylib"}));
        }
        let mut dist = json!({
            "product": format!("winprov {package}"),
            "manufacturer": "winprov",
            "upgrade-code": "ab2a8109-f139-4b84-878d-69f260af7f78",
            "files": files,
        });
        if let Some(budget) = budget {
            dist["max-dll-bytes"] = json!(budget);
        }
        let targets = [
            (lib, vec!["cdylib".to_string(), "rlib".to_string()]),
            (package.to_string(), vec!["bin".to_string()]),
        ];
        crate::installer::parse(package, "0.1.0", &dist, &targets).unwrap()
    }

    fn lines(commands: Vec<Command>) -> Vec<String> {
        commands
            .iter()
            .map(|cmd| {
                let program = cmd.get_program().to_string_lossy().into_owned();
                describe(cmd).replacen(&program, "cargo", 1)
            })
            .collect()
    }

    /// The exes in one build; each DLL alone afterwards, so that the workspace's LTO applies
    /// to it, and it replaces the one the first build made.
    #[test]
    fn each_dll_is_built_again_as_a_cdylib_alone() {
        let samples = [
            sample("email-directory", true, None),
            sample("exe-only", false, None),
            sample("traffic-meter", true, Some(409_600)),
        ];
        let release = "--release --locked --target x86_64-pc-windows-gnu";
        assert_eq!(
            lines(release_commands(&samples)),
            [
                format!("cargo build {release} -p email-directory -p exe-only -p traffic-meter"),
                format!("cargo rustc {release} -p email-directory --lib --crate-type cdylib"),
                format!("cargo rustc {release} -p traffic-meter --lib --crate-type cdylib"),
            ]
        );
        assert_eq!(
            lines(release_commands(&[])),
            [format!("cargo build {release} --workspace --exclude xtask")]
        );
    }

    #[test]
    fn dlls_over_their_budget_fail() {
        let meter = sample("traffic-meter", true, Some(409_600));
        check_dll_budget(&meter, 409_600).unwrap();
        check_dll_budget(&meter, 386_048).unwrap();
        let error = format!("{:#}", check_dll_budget(&meter, 409_601).unwrap_err());
        assert!(
            error.contains(
                "traffic-meter: traffic_meter.dll is 409601 bytes, over its budget of 409600"
            ),
            "{error}"
        );
        // No budget, no limit.
        check_dll_budget(&sample("email-directory", true, None), u64::MAX).unwrap();

        let dir = crate::target_dir().join("tmp/xtask-dll-budget-test");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("traffic_meter.dll"), vec![0; 1000]).unwrap();
        std::fs::write(dir.join("email_directory.dll"), vec![0; 5000]).unwrap();
        let small = sample("traffic-meter", true, Some(1000));
        let smaller = sample("traffic-meter", true, Some(999));
        let other = sample("email-directory", true, None);
        report_dlls(
            &[small, other.clone(), sample("exe-only", false, None)],
            &dir,
        )
        .unwrap();
        let error = format!("{:#}", report_dlls(&[other, smaller], &dir).unwrap_err());
        assert!(
            error.contains("1000 bytes, over its budget of 999"),
            "{error}"
        );
        // A DLL that was not built is an error, not a pass.
        std::fs::remove_file(dir.join("traffic_meter.dll")).unwrap();
        let missing = sample("traffic-meter", true, None);
        assert!(report_dlls(&[missing], &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn samples_are_selected_by_name() {
        let all = || {
            vec![
                sample("email-directory", true, None),
                sample("traffic-meter", true, None),
            ]
        };
        let names = |ds: Vec<Descriptor>| ds.into_iter().map(|d| d.package).collect::<Vec<_>>();
        assert_eq!(
            names(select(all(), &[]).unwrap()),
            ["email-directory", "traffic-meter"]
        );
        assert_eq!(
            names(select(all(), &["traffic-meter".to_string()]).unwrap()),
            ["traffic-meter"]
        );
        let error = format!("{:#}", select(all(), &["nope".to_string()]).unwrap_err());
        assert!(
            error.contains("no sample `nope`") && error.contains("email-directory, traffic-meter"),
            "{error}"
        );

        let args = |list: &[&str]| -> Vec<String> { list.iter().map(|a| a.to_string()).collect() };
        let (rest, packages) = package_args(&args(&[
            "-p",
            "a",
            "--wxs-only",
            "--package",
            "b",
            "--package=c",
        ]))
        .unwrap();
        assert_eq!(rest, ["--wxs-only"]);
        assert_eq!(packages, ["a", "b", "c"]);
        assert!(package_args(&args(&["--no-wine", "-p"])).is_err());
    }
}
