//! `cargo xtask dist`: the release Windows artifacts of every sample provider and, from each
//! sample's descriptor (`[package.metadata.winprov.dist]`, see `docs/dist.md`), its MSI:
//! `target/dist/<sample>-<version>-x64.msi`, built by wixl and checked table by table — by
//! `winprov-dist`, the library `cargo winprov` runs for provider crates outside the workspace.

use crate::installer::Descriptor;
use crate::prereq::{self, Need};
use crate::stage::{Handoff, Stages, cargo, run as sh};
use crate::{WINDOWS_TARGET, workspace_root};
use anyhow::{Result, bail};
use winprov_dist::project::{Project, select};
use winprov_dist::release::{self, build_msis, print_sizes, write_wxs};

/// The workspace, its cargo commands `--locked`.
pub fn project() -> Result<Project> {
    Ok(Project::load(None)?.locked(true))
}

/// The samples' installer descriptors, in workspace order. Samples without one are reported
/// and skipped.
pub fn descriptors(project: &Project) -> Result<Vec<Descriptor>> {
    project.descriptors(Some(&workspace_root().join("samples")))
}

/// The release build of the samples' packages for Windows (`winprov_dist::release`); with no
/// sample to build, the library crates are still built in release mode.
pub fn release_build(project: &Project, descriptors: &[Descriptor]) -> Result<()> {
    if descriptors.is_empty() {
        return sh(cargo()
            .args(["build", "--release", "--locked", "--target", WINDOWS_TARGET])
            .args(["--workspace", "--exclude", "xtask"]));
    }
    release::release_build(project, descriptors)
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

pub fn run(args: &[String]) -> Result<()> {
    let (flags, packages) = package_args(args)?;
    let wxs_only = match flags.as_slice() {
        [] => false,
        [flag] if flag == "--wxs-only" => true,
        _ => bail!("dist takes only --wxs-only and -p <package>"),
    };
    let project = project()?;
    let dist = project.dist_dir();
    let descriptors = Handoff::new("the installer descriptors");
    if wxs_only {
        // On Windows: the sources for candle/light or cargo-wix, no wixl needed.
        let written = Handoff::new("the WiX sources");
        let mut stages = Stages::new();
        stages.add("read the installer descriptors", || {
            descriptors.put(select(self::descriptors(&project)?, &packages)?)
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
        descriptors.put(select(self::descriptors(&project)?, &packages)?)
    });
    stages.add("release build for Windows", || {
        release_build(&project, descriptors.get()?)
    });
    stages.add("MSIs (generate .wxs, wixl, check the tables)", || {
        built.put(build_msis(&project, descriptors.get()?, &dist)?)
    });
    stages.run()?;
    let built = built.get()?;
    if built.is_empty() {
        println!("\nno sample provider has an installer descriptor: target/dist/ has no MSI");
        return Ok(());
    }
    print_sizes(built, "sample")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_arguments_are_split_from_the_others() {
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

    /// The samples' descriptors are read from the workspace, each sample by name.
    #[test]
    fn the_samples_have_descriptors() {
        let project = project().unwrap();
        let all = descriptors(&project).unwrap();
        let names: Vec<&str> = all.iter().map(|d| d.package.as_str()).collect();
        for sample in ["email-directory", "line-simulator", "traffic-meter"] {
            assert!(names.contains(&sample), "{sample} in {names:?}");
        }
        let one = select(all, &["traffic-meter".to_string()]).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].package, "traffic-meter");
    }
}
