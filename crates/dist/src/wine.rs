//! A Wine prefix (a project's `<target>/wine/prefix`, or one of the MSI tests' own) and running
//! Windows executables in it.
//!
//! Wine 8 lacks `bcryptprimitives.dll!ProcessPrng`, which Rust's std imports; the prefix gets a
//! shim built from `crates/dist/wine/processprng.c` (forwarding to `SystemFunction036`). The
//! source is compiled into this library, so the shim is built wherever the library runs.

use crate::prereq::find_program;
use crate::stage::run;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shim's C source.
const SHIM_SOURCE: &str = include_str!("../wine/processprng.c");
const SHIM_DLL: &str = "bcryptprimitives.dll";

#[derive(Debug)]
pub struct Prefix {
    dir: PathBuf,
    loader: PathBuf,
    server: PathBuf,
}

impl Prefix {
    /// A project's prefix, `<target_dir>/wine/prefix`: created when missing, the ProcessPrng
    /// shim (re)installed when it changed.
    pub fn prepare(target_dir: &Path) -> Result<Self> {
        Self::prepare_at(target_dir.join("wine/prefix"), &Self::shim_dir(target_dir))
    }

    /// Where the shim is built for a project: `<target_dir>/wine/shim`.
    pub fn shim_dir(target_dir: &Path) -> PathBuf {
        target_dir.join("wine/shim")
    }

    /// [`Prefix::prepare`] for a prefix in `dir` (the MSI tests use one of their own), the shim
    /// built in `shim_dir`.
    pub fn prepare_at(dir: PathBuf, shim_dir: &Path) -> Result<Self> {
        let loader =
            find_program("wine64").context("wine64 not found (see prereq: it installs it)")?;
        let server = find_program("wineserver").context("wineserver not found")?;
        let prefix = Self {
            dir,
            loader,
            server,
        };
        if !prefix.dir.join("system.reg").is_file() {
            println!(
                "creating Wine prefix {} (about 10 s, 700 MB)",
                prefix.dir.display()
            );
            std::fs::create_dir_all(&prefix.dir)?;
            let mut boot = prefix.command(Path::new("wineboot"));
            boot.arg("-i");
            // wineboot reports harmless problems (no display, no 32-bit loader) on stderr.
            boot.stderr(std::process::Stdio::null());
            run(&mut boot)?;
            prefix.wait()?;
            if !prefix.dir.join("system.reg").is_file() {
                bail!("wineboot did not create {}", prefix.dir.display());
            }
        }
        prefix.install_shim(shim_dir)?;
        Ok(prefix)
    }

    fn install_shim(&self, shim_dir: &Path) -> Result<()> {
        std::fs::create_dir_all(shim_dir)?;
        // The source is written out only when it differs, so its time stamp says when it
        // changed.
        let source = shim_dir.join("processprng.c");
        if std::fs::read_to_string(&source).ok().as_deref() != Some(SHIM_SOURCE) {
            std::fs::write(&source, SHIM_SOURCE)
                .with_context(|| format!("writing {}", source.display()))?;
        }
        let built = shim_dir.join(SHIM_DLL);
        if is_stale(&built, &source) {
            run(Command::new("x86_64-w64-mingw32-gcc")
                .args(["-shared", "-O2", "-Wall", "-Werror", "-s", "-o"])
                .arg(&built)
                .arg(&source)
                .arg("-ladvapi32"))?;
        }
        let installed = self.dir.join("drive_c/windows/system32").join(SHIM_DLL);
        let same = std::fs::read(&installed).ok() == Some(std::fs::read(&built)?);
        if !same {
            std::fs::copy(&built, &installed)
                .with_context(|| format!("installing {}", installed.display()))?;
            println!(
                "installed the ProcessPrng shim into {}",
                installed.display()
            );
        }
        Ok(())
    }

    /// A command running `exe` (a path, or a program of the prefix such as `wineboot`) under Wine.
    pub fn command(&self, exe: &Path) -> Command {
        let mut cmd = Command::new(&self.loader);
        cmd.arg(exe);
        self.env(&mut cmd);
        cmd
    }

    /// The environment that selects this prefix, also for `cargo test` runners.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("WINEPREFIX", &self.dir)
            .env("WINEDEBUG", "-all")
            .env(
                "WINEDLLOVERRIDES",
                "bcryptprimitives=n,b;winemenubuilder.exe=d",
            )
            .env("WINESERVER", &self.server);
    }

    pub fn loader(&self) -> &Path {
        &self.loader
    }

    /// The prefix directory (`drive_c/` and `system.reg` are in it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops every process of the prefix (`wineserver -k`); quiet, for a prefix about to go.
    pub fn kill(&self) {
        let mut cmd = Command::new(&self.server);
        cmd.arg("-k")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        self.env(&mut cmd);
        let _ = cmd.status();
    }

    /// Waits until every process of the prefix has exited.
    pub fn wait(&self) -> Result<()> {
        let mut cmd = Command::new(&self.server);
        cmd.arg("-w");
        self.env(&mut cmd);
        let status = cmd.status().context("running wineserver -w")?;
        if !status.success() {
            bail!("wineserver -w failed with {status}");
        }
        Ok(())
    }
}

fn is_stale(built: &Path, source: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(built), modified(source)) {
        (Some(built), Some(source)) => built < source,
        _ => true,
    }
}
