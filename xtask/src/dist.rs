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

/// `cargo build --release` of the samples' packages for Windows.
pub fn release_build(descriptors: &[Descriptor]) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--locked", "--target", WINDOWS_TARGET]);
    for d in descriptors {
        cmd.args(["-p", &d.package]);
    }
    if descriptors.is_empty() {
        // No sample yet: still check that the library crates build in release mode.
        cmd.args(["--workspace", "--exclude", "xtask"]);
    }
    sh(&mut cmd)
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
    let wxs_only = match args {
        [] => false,
        [flag] if flag == "--wxs-only" => true,
        _ => bail!("dist takes only --wxs-only"),
    };
    let dist = target_dir().join("dist");
    let descriptors = Handoff::new("the installer descriptors");
    if wxs_only {
        // On Windows: the sources for candle/light or cargo-wix, no wixl needed.
        let written = Handoff::new("the WiX sources");
        let mut stages = Stages::new();
        stages.add("read the installer descriptors", || {
            descriptors.put(self::descriptors()?)
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
        descriptors.put(self::descriptors()?)
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
