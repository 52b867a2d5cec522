//! Packaging for winprov providers, the one implementation behind `cargo winprov` (any provider
//! crate) and `cargo xtask dist` / `msi-test` (this workspace's samples):
//!
//! - [`project`]: a cargo project read with `cargo metadata` from a manifest path — its
//!   packages' installer descriptors (`[package.metadata.winprov.dist]`, `docs/dist.md`), its
//!   target directory;
//! - [`installer`]: the descriptor and the WiX source generated from it (pure functions);
//! - [`release`]: the release cross-build for `x86_64-pc-windows-gnu` (each DLL a cdylib on its
//!   own, so LTO applies; its size against `max-dll-bytes`), the `.wxs`, wixl;
//! - [`msi_check`]: the built MSI opened with the `msi` crate and checked table by table;
//! - [`wine`], [`msi_wine`]: a Wine prefix with the ProcessPrng shim (its C source is compiled
//!   into this library, so an installed `cargo-winprov` needs no checkout), and the MSI
//!   installed, rolled back, upgraded and uninstalled in it;
//! - [`prereq`]: the Rust target, mingw-w64, Wine and wixl/msitools, installed when missing;
//! - [`stage`]: named, timed steps and the command runner.
//!
//! It is the body of two command-line tools: it reports progress on stdout, and its errors are
//! `anyhow` messages for the person running them.

#![allow(
    clippy::print_stdout,
    reason = "the library is the body of two command-line tools and reports their progress"
)]

pub mod installer;
pub mod msi_check;
pub mod msi_wine;
pub mod prereq;
pub mod project;
pub mod release;
pub mod stage;
pub mod wine;

/// The Windows target every provider is built for.
pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// A fresh directory for one test's files.
#[cfg(test)]
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("winprov-dist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
