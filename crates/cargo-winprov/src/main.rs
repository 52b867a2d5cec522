//! `cargo winprov`: packages a winprov provider crate — any crate with a
//! `[package.metadata.winprov.dist]` descriptor — as an MSI, and tests that MSI's installation
//! under Wine. The work is `winprov-dist`'s, the library `cargo xtask dist` runs for the
//! workspace's own samples.

#![allow(
    clippy::print_stdout,
    reason = "a command-line tool talks to its user on stdout"
)]
#![allow(
    rustdoc::invalid_html_tags,
    reason = "the doc comments are the commands' --help text, where <target> is a placeholder"
)]

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use winprov_dist::installer::{BIN_DIR_VARIABLE, Descriptor};
use winprov_dist::prereq::{self, Need};
use winprov_dist::project::Project;
use winprov_dist::release::{build_msis, print_sizes, release_build, write_wxs};
use winprov_dist::stage::{Handoff, Stages};
use winprov_dist::{WINDOWS_TARGET, msi_wine};

/// Cargo runs `cargo-winprov winprov <args>` for `cargo winprov <args>`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo")]
enum Cli {
    Winprov(Winprov),
}

const LONG_ABOUT: &str = "\
Package a winprov provider crate as an MSI and test its installation.

The crate describes its installer in [package.metadata.winprov.dist] of its Cargo.toml
(product, manufacturer, upgrade code, the files, an optional service, registration commands,
registry values, a COM server, a DLL size budget `max-dll-bytes`; the format is winprov's
docs/dist.md). Everything is built for x86_64-pc-windows-gnu in release mode, each DLL as a
cdylib on its own so that the profile's LTO applies; the results go to the target directory
(CARGO_TARGET_DIR is honoured): <target>/dist/<package>-<version>-x64.msi.

On Linux the MSI is built with wixl and checked table by table; missing tools (the Rust target;
mingw-w64, wixl, msitools, wine64 on Debian or Ubuntu as root) are installed, elsewhere the
command to run is printed. On Windows, `dist` writes the WiX source and prints the WiX Toolset v3
(candle, light) and cargo-wix commands that build it.";

#[derive(Debug, Args)]
#[command(
    version,
    about = "Package a winprov provider crate as an MSI and test its installation",
    long_about = LONG_ABOUT
)]
struct Winprov {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the MSI of each selected provider package
    ///
    /// The release artifacts for x86_64-pc-windows-gnu, the WiX source, the MSI (wixl), its
    /// tables checked against the descriptor; prints each DLL's size against its budget
    /// (`max-dll-bytes`: fails above it) and the sizes of the MSI and its payloads.
    Dist(DistArgs),
    /// Build the MSIs, then test their installation under Wine
    ///
    /// `dist`, then, in a fresh Wine prefix of its own (<target>/winprov/msi-prefix), each MSI
    /// installed with msiexec while its registration fails (everything rolled back), installed
    /// with SKIPREGISTRATION=1, upgraded to the next patch version and uninstalled; after each
    /// step the files, registry values, service, COM keys and product entry are checked.
    TestInstall(Selection),
}

#[derive(Debug, Args)]
struct Selection {
    /// Path to the Cargo.toml of the provider crate or of its workspace [default: the current
    /// directory's]
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// A package to build (repeatable) [default: the manifest's package; for a virtual
    /// workspace, every member with a descriptor]
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    packages: Vec<String>,
    /// Pass --locked to cargo: Cargo.lock must be up to date
    #[arg(long)]
    locked: bool,
}

#[derive(Debug, Args)]
struct DistArgs {
    #[command(flatten)]
    selection: Selection,
    /// Only write the WiX sources (<target>/dist/wix/<package>-<version>.wxs) and print the
    /// WiX commands that build them: no build, no wixl
    #[arg(long)]
    wxs_only: bool,
}

fn main() {
    let Cli::Winprov(winprov) = Cli::parse();
    if let Err(error) = run(winprov.command) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Dist(args) if args.wxs_only => wix_sources(&args.selection, false),
        Command::Dist(args) if cfg!(windows) => wix_sources(&args.selection, true),
        Command::Dist(args) => dist(&args.selection, false),
        Command::TestInstall(_) if cfg!(windows) => bail!(
            "the installation tests run the MSI under Wine, on Linux; on Windows, build the MSI \
             with `cargo winprov dist` and the commands it prints, and install it with msiexec"
        ),
        Command::TestInstall(selection) => dist(&selection, true),
    }
}

impl Selection {
    fn project(&self) -> Result<Project> {
        Ok(Project::load(self.manifest_path.as_deref())?.locked(self.locked))
    }
}

/// The release build, the MSIs with their table checks and, with `install_test`, the Wine
/// installation tests.
fn dist(selection: &Selection, install_test: bool) -> Result<()> {
    let project = selection.project()?;
    let out = project.dist_dir();
    let descriptors = Handoff::new("the installer descriptors");
    let built = Handoff::new("the MSIs");
    let mut stages = Stages::new();
    stages.add("prerequisites", || {
        prereq::ensure(Need::Dist)?;
        if install_test {
            prereq::ensure(Need::Wine)?;
        }
        Ok(())
    });
    stages.add("read the installer descriptors", || {
        descriptors.put(project.selected(&selection.packages)?)
    });
    stages.add("release build for Windows", || {
        release_build(&project, descriptors.get()?)
    });
    stages.add("MSIs (generate .wxs, wixl, check the tables)", || {
        built.put(build_msis(&project, descriptors.get()?, &out)?)
    });
    if install_test {
        stages.add(
            "MSI install, upgrade, rollback, uninstall under Wine",
            || {
                let prefix = project.target_dir().join("winprov/msi-prefix");
                msi_wine::run(&project, descriptors.get()?, &out, &prefix)
            },
        );
    }
    stages.run()?;
    print_sizes(built.get()?, "package")
}

/// The WiX sources, after the release build when `build`, and the commands that make the MSIs
/// from them on Windows.
fn wix_sources(selection: &Selection, build: bool) -> Result<()> {
    let project = selection.project()?;
    let descriptors = Handoff::new("the installer descriptors");
    let written = Handoff::new("the WiX sources");
    let mut stages = Stages::new();
    if build {
        stages.add("the Rust target", prereq::ensure_rust_target);
    }
    stages.add("read the installer descriptors", || {
        descriptors.put(project.selected(&selection.packages)?)
    });
    if build {
        stages.add("release build for Windows", || {
            release_build(&project, descriptors.get()?)
        });
    }
    stages.add("write the WiX sources", || {
        written.put(
            descriptors
                .get()?
                .iter()
                .map(|d| write_wxs(d, &project.dist_dir()))
                .collect::<Result<Vec<_>>>()?,
        )
    });
    stages.run()?;
    for (d, wxs) in descriptors.get()?.iter().zip(written.get()?) {
        println!("\n{}: {}", d.package, wxs.display());
        if !build {
            println!(
                "  build first: cargo winprov dist -p {} (or cargo build --release --target \
                 {WINDOWS_TARGET} -p {}, its DLL again with cargo rustc --release --target \
                 {WINDOWS_TARGET} -p {} --lib --crate-type cdylib)",
                d.package, d.package, d.package
            );
        }
        let (wix, cargo_wix) = wix_commands(&project, d, wxs);
        println!("  with the WiX Toolset v3:");
        for line in wix {
            println!("    {line}");
        }
        println!("  or with cargo-wix:\n    {cargo_wix}");
    }
    Ok(())
}

/// The WiX Toolset v3 commands (candle, light) that build `d`'s MSI from its source `wxs`, and
/// the cargo-wix command that does the same.
fn wix_commands(project: &Project, d: &Descriptor, wxs: &Path) -> (Vec<String>, String) {
    let object = wxs.with_extension("wixobj");
    let msi = project.dist_dir().join(d.msi_name());
    let wix = vec![
        format!(
            "candle -arch x64 -d{BIN_DIR_VARIABLE}={} -out {} {}",
            project.bin_dir().display(),
            object.display(),
            wxs.display()
        ),
        format!("light -out {} {}", msi.display(), object.display()),
    ];
    let cargo_wix = format!(
        "cargo wix --no-build --package {} --target {WINDOWS_TARGET} --include {} --output {}",
        d.package,
        wxs.display(),
        msi.display()
    );
    (wix, cargo_wix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Command {
        let Cli::Winprov(winprov) = Cli::try_parse_from(args).unwrap();
        winprov.command
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cargo_passes_the_subcommand_name_first() {
        let Command::Dist(args) = parse(&[
            "cargo-winprov",
            "winprov",
            "dist",
            "--manifest-path",
            "p/Cargo.toml",
            "-p",
            "a",
            "--package",
            "b",
            "--locked",
        ]) else {
            panic!("dist");
        };
        assert_eq!(
            args.selection.manifest_path.as_deref(),
            Some(Path::new("p/Cargo.toml"))
        );
        assert_eq!(args.selection.packages, ["a", "b"]);
        assert!(args.selection.locked && !args.wxs_only);
        let Command::TestInstall(selection) = parse(&["cargo-winprov", "winprov", "test-install"])
        else {
            panic!("test-install");
        };
        assert!(selection.manifest_path.is_none() && selection.packages.is_empty());
        assert!(Cli::try_parse_from(["cargo-winprov", "dist"]).is_err());
    }

    #[test]
    fn the_windows_commands_build_the_msi_from_the_release_artifacts() {
        // This workspace, read from the package's directory as `cargo test` runs it.
        let project = Project::load(None).unwrap();
        let root = project.root().to_path_buf();
        let target = project.target_dir().to_path_buf();
        let d = project
            .descriptors(Some(&root.join("samples/email-directory")))
            .unwrap();
        let wxs = target.join("dist/wix/email-directory-0.1.0.wxs");
        let (wix, cargo_wix) = wix_commands(&project, &d[0], &wxs);
        let t = target.display();
        assert_eq!(
            wix,
            [
                format!(
                    "candle -arch x64 -dCargoTargetBinDir={t}/x86_64-pc-windows-gnu/release -out \
                     {t}/dist/wix/email-directory-0.1.0.wixobj {t}/dist/wix/email-directory-0.1.0.wxs"
                ),
                format!(
                    "light -out {t}/dist/email-directory-0.1.0-x64.msi \
                     {t}/dist/wix/email-directory-0.1.0.wixobj"
                ),
            ]
        );
        assert_eq!(
            cargo_wix,
            format!(
                "cargo wix --no-build --package email-directory --target x86_64-pc-windows-gnu \
                 --include {t}/dist/wix/email-directory-0.1.0.wxs --output \
                 {t}/dist/email-directory-0.1.0-x64.msi"
            )
        );
    }
}
