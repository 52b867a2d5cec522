//! Project automation for winprov, run as `cargo xtask <command>`.
//!
//! - `test`: everything CI checks, in order, installing what is missing first.
//! - `dist`: release Windows artifacts and an MSI per sample into `target/dist/`.
//! - `codegen`: regenerate the checked-in bindings (`--check` only compares).
//! - `msi-test`, `outside-provider`: only the MSI stages of `test`, only its stage that packages
//!   the provider crate outside the workspace with `cargo winprov`.
//! - `docs`, `package`: only the documentation stage of `test` (rustdoc, warnings denied), only
//!   its packaging of the published crates.
//! - `harness <name>...`: only the named Wine ABI harnesses of `test`.
//! - `wine-prefix`: prepare the project's Wine prefix; `wine <exe> [args]`: run an exe in it.

#![allow(
    clippy::print_stdout,
    reason = "a command-line tool talks to its user on stdout"
)]

mod codegen;
mod discover;
mod dist;
mod publish;
mod test;
mod tidy;

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
// Packaging, the Wine prefix and the command runner are the `winprov-dist` library's, shared
// with `cargo winprov`.
use winprov_dist::{WINDOWS_TARGET, installer, msi_wine, prereq, stage, wine};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [--no-wine]        format, clippy (Linux + Windows), unit/loom/trybuild/codegen tests,
                          the documentation and the packages of the published crates,
                          Windows cross-build, the Wine ABI tests, the samples' MSIs and the
                          provider outside the workspace; installs prerequisites
  dist [--wxs-only] [-p <sample>]...
                          release Windows artifacts and an MSI per sample into target/dist/
                          (--wxs-only: only the WiX sources, for candle/light on Windows;
                          -p: only these samples); fails when a DLL exceeds its budget
  msi-test [--no-wine] [-p <sample>]...
                          only the MSI stages of `test`: build and check every sample's MSI
                          (or those named), then install, upgrade, roll back and uninstall it
                          under Wine
  outside-provider [--no-wine]
                          only the last stage of `test`: `cargo winprov test-install` (`dist`
                          with --no-wine) on tests/outside-provider, a provider crate outside
                          the workspace
  docs                    only the documentation stage of `test`: cargo doc of the workspace
                          with every feature, warnings denied, for Linux and Windows
  package                 only the packaging stage of `test`: cargo package (verified) of
                          every published crate together
  harness <name>...       only the named Wine ABI harnesses of `test` (e.g. base_host), their
                          DLLs built first
  codegen [--check]       regenerate bindings/src/*.rs from their args files
  wine-prefix             create target/wine/prefix with the ProcessPrng shim
  wine <exe> [args...]    run a Windows executable in the project's Wine prefix
";

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    std::env::set_current_dir(workspace_root())?;
    match command.as_str() {
        "test" => test::run(&rest),
        "dist" => dist::run(&rest),
        "msi-test" => test::run_msi(&rest),
        "outside-provider" => test::run_outside_provider(&rest),
        "docs" => test::run_publish_stage(true, &rest),
        "package" => test::run_publish_stage(false, &rest),
        "harness" => test::run_harnesses(&rest),
        "codegen" => match rest.as_slice() {
            [] => codegen::run(codegen::Mode::Write),
            [flag] if flag == "--check" => codegen::run(codegen::Mode::Check),
            _ => bail!("codegen takes only --check\n\n{USAGE}"),
        },
        "wine-prefix" => {
            no_args(&rest)?;
            prereq::ensure(prereq::Need::Wine)?;
            wine::Prefix::prepare(&target_dir()).map(|_| ())
        }
        "wine" => {
            let Some((exe, exe_args)) = rest.split_first() else {
                bail!("wine needs an executable\n\n{USAGE}");
            };
            prereq::ensure(prereq::Need::Wine)?;
            let prefix = wine::Prefix::prepare(&target_dir())?;
            let status = prefix.command(Path::new(exe)).args(exe_args).status()?;
            std::process::exit(status.code().unwrap_or(1));
        }
        "" | "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

fn no_args(rest: &[String]) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        bail!("unexpected arguments {rest:?}\n\n{USAGE}")
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// `target/` of the workspace, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}
