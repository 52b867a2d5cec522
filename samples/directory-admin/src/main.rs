//! The `directory-admin` command: installs the provider's classes and registrations into WMI
//! (the MOF, compiled by WMI's own compiler), removes them, or prints the MOF.
//!
//! The COM registration of `directory_admin.dll` is the installer's (registry rows), or
//! `regsvr32 directory_admin.dll` by hand.
#![forbid(unsafe_code)]
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool talks to its user on stdout"
)]

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use directory_admin::classes::mof;
use std::path::{Path, PathBuf};
use winprov_wbem::compile_mof;

/// Manage the WMI registration of the e-mail directory admin provider.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compile the provider's MOF into WMI: the `root\winprov` namespace, the classes and the
    /// provider's registrations (needs an elevated administrator). On failure what was
    /// compiled is removed again.
    Install {
        /// Append one line with the outcome (`install: ok`, `install: failed: <reason>`).
        #[arg(long)]
        log_file: Option<PathBuf>,
    },
    /// Remove the classes and registrations from WMI (nothing there is not an error).
    Uninstall {
        /// Append one line with the outcome.
        #[arg(long)]
        log_file: Option<PathBuf>,
    },
    /// Print the MOF (to compile with `mofcomp` yourself).
    Mof {
        /// The MOF that removes the classes and registrations instead.
        #[arg(long)]
        uninstall: bool,
    },
}

fn main() {
    let outcome = match Cli::parse().command {
        Command::Install { log_file } => record("install", log_file.as_deref(), install()),
        Command::Uninstall { log_file } => record("uninstall", log_file.as_deref(), uninstall()),
        Command::Mof { uninstall } => print_mof(uninstall),
    };
    if let Err(error) = outcome {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn print_mof(uninstall: bool) -> Result<()> {
    let mof = mof();
    let text = match uninstall {
        true => mof.uninstall(),
        false => mof.install(),
    };
    print!("{}", text.context("writing the MOF")?);
    Ok(())
}

fn install() -> Result<()> {
    let mof = mof();
    let compiled = compile_mof(&mof.install().context("writing the MOF")?);
    if let Err(error) = compiled {
        // Leave nothing half-registered (a no-op when the compiler itself is missing).
        if let Ok(text) = mof.uninstall() {
            let _ = compile_mof(&text);
        }
        return Err(error).context("compiling the provider's MOF into WMI");
    }
    println!("installed: the provider's classes are in WMI");
    Ok(())
}

fn uninstall() -> Result<()> {
    let text = mof().uninstall().context("writing the MOF")?;
    match compile_mof(&text) {
        Ok(()) => println!("uninstalled: the provider's classes are gone from WMI"),
        // No WMI, so nothing of the provider's can be in it.
        Err(error) if error.compiler_unavailable() => println!("nothing to uninstall: {error}"),
        Err(error) => return Err(error).context("removing the provider's classes from WMI"),
    }
    Ok(())
}

/// Appends `<command>: ok` or `<command>: failed: <reason>` to `log_file` (the installer's
/// evidence: an MSI log does not keep a custom action's output), and passes `outcome` on.
fn record(command: &str, log_file: Option<&Path>, outcome: Result<()>) -> Result<()> {
    let Some(path) = log_file else {
        return outcome;
    };
    let line = match &outcome {
        Ok(()) => format!("{command}: ok\n"),
        Err(error) => {
            let reason = format!("{error:#}").replace(['\r', '\n'], " ");
            format!("{command}: failed: {reason}\n")
        }
    };
    let appended = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            use std::io::Write as _;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?
                .write_all(line.as_bytes())
        });
    if let Err(error) = appended {
        eprintln!("warning: writing {}: {error}", path.display());
    }
    outcome
}
