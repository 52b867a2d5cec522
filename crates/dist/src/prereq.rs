//! Prerequisites: the Windows Rust target, rustfmt/clippy, mingw-w64, Wine and msitools/wixl.
//!
//! What is missing is installed when that is safe to do unattended: `rustup target add` and
//! `rustup component add` always; Debian/Ubuntu packages only as root. Anywhere else the command
//! stops and prints the exact command to run.

use crate::WINDOWS_TARGET;
use crate::stage::{output, run};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a command needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Need {
    /// Cross-building for Windows: the Rust target and mingw-w64.
    CrossBuild,
    /// Cross-building and running under Wine.
    Wine,
    /// Everything `cargo xtask test` uses, lints and MSI tools included.
    Everything,
    /// `cargo xtask dist`, `cargo winprov dist`: cross-building and the MSI tools (wixl,
    /// msiinfo).
    Dist,
}

/// A system package and the program that shows it is present.
struct Package {
    debian: &'static str,
    program: &'static str,
    needed_for: &'static [Need],
}

const PACKAGES: &[Package] = &[
    Package {
        debian: "mingw-w64",
        program: "x86_64-w64-mingw32-gcc",
        needed_for: &[Need::CrossBuild, Need::Wine, Need::Everything, Need::Dist],
    },
    Package {
        debian: "mingw-w64",
        program: "x86_64-w64-mingw32-dlltool",
        needed_for: &[Need::CrossBuild, Need::Wine, Need::Everything, Need::Dist],
    },
    Package {
        debian: "wine64",
        program: "wine64",
        needed_for: &[Need::Wine, Need::Everything],
    },
    Package {
        debian: "wixl",
        program: "wixl",
        needed_for: &[Need::Everything, Need::Dist],
    },
    Package {
        debian: "msitools",
        program: "msiinfo",
        needed_for: &[Need::Everything, Need::Dist],
    },
];

pub fn ensure(need: Need) -> Result<()> {
    ensure_rust_target()?;
    if need == Need::Everything {
        ensure_rust_components()?;
    }
    let mut missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|p| p.needed_for.contains(&need) && find_program(p.program).is_none())
        .map(|p| p.debian)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        println!("prerequisites present");
        return Ok(());
    }
    install_packages(&missing)?;
    let still: Vec<&str> = PACKAGES
        .iter()
        .filter(|p| p.needed_for.contains(&need) && find_program(p.program).is_none())
        .map(|p| p.program)
        .collect();
    if !still.is_empty() {
        bail!("still missing after installation: {}", still.join(", "));
    }
    Ok(())
}

/// The Rust standard library for [`WINDOWS_TARGET`]: `rustup target add` when it is missing.
pub fn ensure_rust_target() -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]));
    match installed {
        Some(list) if list.lines().any(|l| l.trim() == WINDOWS_TARGET) => Ok(()),
        Some(_) => {
            println!("installing the Rust target {WINDOWS_TARGET}");
            run(Command::new("rustup").args(["target", "add", WINDOWS_TARGET]))
        }
        None => {
            // No rustup: the target may still come with the toolchain (distro Rust).
            let sysroot =
                output(Command::new("rustc").args(["--print", "sysroot"])).unwrap_or_default();
            let lib = Path::new(sysroot.trim())
                .join("lib/rustlib")
                .join(WINDOWS_TARGET);
            if lib.is_dir() {
                Ok(())
            } else {
                bail!(
                    "the Rust standard library for {WINDOWS_TARGET} is missing and rustup is \
                     not available; install rustup and run `rustup target add {WINDOWS_TARGET}`"
                )
            }
        }
    }
}

fn ensure_rust_components() -> Result<()> {
    let mut missing = Vec::new();
    if output(crate::stage::cargo().args(["fmt", "--version"])).is_none() {
        missing.push("rustfmt");
    }
    if output(crate::stage::cargo().args(["clippy", "--version"])).is_none() {
        missing.push("clippy");
    }
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing Rust components: {}", missing.join(", "));
    run(Command::new("rustup")
        .args(["component", "add"])
        .args(&missing))
}

fn install_packages(packages: &[&str]) -> Result<()> {
    let list = packages.join(" ");
    let command = format!("apt-get install -y --no-install-recommends {list}");
    if !is_debian_like() {
        bail!(
            "missing system packages (Debian/Ubuntu names): {list}\n\
             this system is not Debian or Ubuntu: install the equivalents with its package \
             manager, so that these programs are on PATH: x86_64-w64-mingw32-gcc, \
             x86_64-w64-mingw32-dlltool, wine64 (or wine), wixl, msiinfo"
        );
    }
    if !is_root() {
        bail!("missing system packages: {list}\nrun: sudo apt-get update && sudo {command}");
    }
    println!("installing system packages: {list} (this takes a few minutes)");
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null());
        cmd
    };
    run(&mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(packages);
    run(&mut install)
}

fn is_debian_like() -> bool {
    let Ok(text) = std::fs::read_to_string("/etc/os-release") else {
        return false;
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("ID=").or_else(|| l.strip_prefix("ID_LIKE=")))
        .flat_map(|v| v.trim_matches('"').split_whitespace())
        .any(|id| id == "debian" || id == "ubuntu")
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

/// Looks a program up on PATH; for Wine also where Debian's `wine64` package puts it without
/// a PATH entry (`/usr/lib/wine`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if name.starts_with("wine") {
        dirs.push(PathBuf::from("/usr/lib/wine"));
    }
    // Distributions that package only the wow64 loader name it `wine`.
    let names: &[&str] = if name == "wine64" {
        &["wine64", "wine"]
    } else {
        &[name]
    };
    names.iter().find_map(|name| {
        dirs.iter()
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}
