//! The release Windows artifacts of a project's providers and, from each one's descriptor
//! (`[package.metadata.winprov.dist]`, see `docs/dist.md`), its MSI:
//! `<target>/dist/<package>-<version>-x64.msi`, built by wixl and checked table by table.

use crate::WINDOWS_TARGET;
use crate::installer::{self, Descriptor};
use crate::project::Project;
use crate::stage::{describe, run as sh};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The release build of the samples' packages for Windows: one `cargo build --release` of them
/// all (the executables), then each package's DLL again on its own, `cargo rustc --lib
/// --crate-type cdylib`. The samples' libraries are `["cdylib", "rlib"]` (their tests link the
/// rlib), and cargo does not pass `-C lto` for a crate that is also an rlib
/// (rust-lang/cargo#9672): the workspace's `lto = true` applies to a cdylib built alone. That
/// build writes the same `<lib>.dll` into the same directory, after the first.
pub fn release_build(project: &Project, descriptors: &[Descriptor]) -> Result<()> {
    if descriptors.is_empty() {
        bail!("no package to build: none has an installer descriptor");
    }
    for mut command in release_commands(project, descriptors) {
        sh(&mut command)?;
    }
    report_dlls(descriptors, &project.bin_dir())
}

fn release_commands(project: &Project, descriptors: &[Descriptor]) -> Vec<Command> {
    let mut build = project.cargo("build");
    build.args(["--release", "--target", WINDOWS_TARGET]);
    for d in descriptors {
        build.args(["-p", &d.package]);
    }
    let mut commands = vec![build];
    // `cargo rustc` builds one package at a time.
    for d in descriptors.iter().filter(|d| d.dll().is_some()) {
        let mut dll = project.cargo("rustc");
        dll.args(["--release", "--target", WINDOWS_TARGET]).args([
            "-p",
            &d.package,
            "--lib",
            "--crate-type",
            "cdylib",
        ]);
        commands.push(dll);
    }
    commands
}

/// Prints every package's DLL size (and budget); fails when one exceeds its descriptor's
/// `max-dll-bytes`.
fn report_dlls(descriptors: &[Descriptor], bin: &Path) -> Result<()> {
    let mut over = Vec::new();
    println!(
        "
{:<20} {:>12} {:>12}  DLL",
        "package", "bytes", "budget"
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
pub fn build_msi(project: &Project, d: &Descriptor, out: &Path) -> Result<PathBuf> {
    build_msi_from(d, out, &project.bin_dir())
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

/// One package's installer as `dist` leaves it in `<target>/dist`.
#[derive(Debug, Clone)]
pub struct Built {
    pub package: String,
    pub msi: PathBuf,
    /// The installed files, copied next to the MSI for whoever installs by hand.
    pub payloads: Vec<PathBuf>,
}

/// The MSI of each descriptor (built by [`release_build`] before) into `out`, its payloads
/// copied beside it.
pub fn build_msis(project: &Project, descriptors: &[Descriptor], out: &Path) -> Result<Vec<Built>> {
    let mut made = Vec::new();
    for d in descriptors {
        println!("\n--- {} {}", d.package, d.version);
        let msi = build_msi(project, d, out)?;
        let mut payloads = Vec::new();
        for file in &d.files {
            let to = out.join(&file.source);
            std::fs::copy(project.bin_dir().join(&file.source), &to)
                .with_context(|| format!("copying {}", file.source))?;
            payloads.push(to);
        }
        made.push(Built {
            package: d.package.clone(),
            msi,
            payloads,
        });
    }
    Ok(made)
}

/// Prints each MSI's and payload's size, under a column named `noun` ("sample", "package").
pub fn print_sizes(built: &[Built], noun: &str) -> Result<()> {
    println!("\n{noun:<20} {:>12}  file", "bytes");
    for b in built {
        for path in std::iter::once(&b.msi).chain(&b.payloads) {
            println!("{:<20} {:>12}  {}", b.package, size(path)?, path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::{ThreadingModel, parse};
    use crate::msi_check::{ROOT_HKLM, check, int, rows, text};
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
        let release = "--locked --release --target x86_64-pc-windows-gnu";
        let root = Path::new("/ws/Cargo.toml");
        let metadata = json!({"workspace_root": "/ws", "target_directory": "/ws/target"});
        let project = Project::from_metadata(metadata, None, root)
            .unwrap()
            .locked(true);
        assert_eq!(
            lines(release_commands(&project, &samples)),
            [
                format!("cargo build {release} -p email-directory -p exe-only -p traffic-meter"),
                format!("cargo rustc {release} -p email-directory --lib --crate-type cdylib"),
                format!("cargo rustc {release} -p traffic-meter --lib --crate-type cdylib"),
            ]
        );
        // An outside provider: its manifest is given to every command.
        let manifest = Path::new("/p/Cargo.toml");
        let metadata = json!({"workspace_root": "/p", "target_directory": "/p/target"});
        let project = Project::from_metadata(metadata, Some(manifest), manifest).unwrap();
        let release = "--manifest-path /p/Cargo.toml --release --target x86_64-pc-windows-gnu";
        assert_eq!(
            lines(release_commands(&project, &samples[..1])),
            [
                format!("cargo build {release} -p email-directory"),
                format!("cargo rustc {release} -p email-directory --lib --crate-type cdylib"),
            ]
        );
        let error = release_build(&project, &[]).unwrap_err();
        assert!(
            format!("{error:#}").contains("no package to build"),
            "{error:#}"
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

        let dir = crate::scratch("dll-budget-test");
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

    /// A COM server's registration as wixl builds it: the rows are in the MSI, in the DLL's
    /// component (whose key path stays the file), the checks accept the package, and they
    /// reject it against a descriptor that differs in any of those rows.
    #[test]
    fn a_com_server_built_by_wixl_has_its_registry_rows() {
        if crate::prereq::find_program("wixl").is_none() {
            // `cargo xtask test` installs wixl before it runs the unit tests.
            println!("wixl not found: the MSI is not built here");
            return;
        }
        let dir = crate::scratch("com-server-msi");
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("directory_admin.dll"), vec![0x4d; 3000]).unwrap();
        std::fs::write(bin.join("directory-admin.exe"), vec![0x5a; 2000]).unwrap();
        let dist = json!({
            "product": "winprov Directory Admin",
            "manufacturer": "winprov",
            "upgrade-code": "5c0b8e1a-7d2f-4b6e-9a3c-1f4d2e6b8a90",
            "files": [{"artifact": "cdylib"}, {"artifact": "bin"}],
            "com-server": {
                "file": "directory_admin.dll",
                "clsid": "715d6d12-24e0-4836-b6f6-0fba71b04a73",
                "threading-model": "Both",
                "description": "winprov Directory Admin WMI provider"
            },
            "registry": {"InstallDir": "[INSTALLDIR]"}
        });
        let targets = [
            ("directory_admin".to_string(), vec!["cdylib".to_string()]),
            ("directory-admin".to_string(), vec!["bin".to_string()]),
        ];
        let d = parse("directory-admin", "0.1.0", &dist, &targets).unwrap();
        // wixl without a warning, then the table checks.
        let msi = build_msi_from(&d, &dir, &bin).unwrap();

        let mut package = msi::open(&msi).unwrap();
        let clsid = r"Software\Classes\CLSID\{715D6D12-24E0-4836-B6F6-0FBA71B04A73}";
        let mut com_rows: Vec<(Option<i32>, String, String, String, String)> =
            rows(&mut package, "Registry")
                .unwrap()
                .iter()
                .filter(|r| text(r, "Key").contains("CLSID"))
                .map(|r| {
                    (
                        int(r, "Root"),
                        text(r, "Key").trim_end_matches('\\').to_string(),
                        text(r, "Name"),
                        text(r, "Value"),
                        text(r, "Component_"),
                    )
                })
                .collect();
        com_rows.sort();
        let row = |key: String, name: &str, value: &str| {
            (
                Some(ROOT_HKLM),
                key,
                name.to_string(),
                value.to_string(),
                "c_directory_admin.dll".to_string(),
            )
        };
        assert_eq!(
            com_rows,
            [
                row(
                    clsid.to_string(),
                    "",
                    "winprov Directory Admin WMI provider"
                ),
                row(
                    format!(r"{clsid}\InprocServer32"),
                    "",
                    "[#directory_admin.dll]"
                ),
                row(format!(r"{clsid}\InprocServer32"), "ThreadingModel", "Both"),
            ]
        );
        let key_path = rows(&mut package, "Component")
            .unwrap()
            .iter()
            .find(|c| text(c, "Component") == "c_directory_admin.dll")
            .map(|c| text(c, "KeyPath"));
        assert_eq!(key_path.as_deref(), Some("directory_admin.dll"));

        type Change = fn(&mut Descriptor);
        let changes: [(Change, &str); 5] = [
            (
                |d| d.com_server.as_mut().unwrap().threading_model = ThreadingModel::Apartment,
                r"\InprocServer32\ThreadingModel = Apartment in component c_directory_admin.dll",
            ),
            (
                |d| {
                    d.com_server.as_mut().unwrap().clsid =
                        "0a6b2c1d-3e4f-4a5b-8c7d-9e0f1a2b3c4d".into()
                },
                r"no Registry row HKLM\Software\Classes\CLSID\{0A6B2C1D-3E4F-4A5B-8C7D-9E0F1A2B3C4D}\InprocServer32\(default) = [#directory_admin.dll]",
            ),
            (
                |d| d.com_server.as_mut().unwrap().file_id = "directory_admin.exe".into(),
                r"\InprocServer32\(default) = [#directory_admin.exe] in component c_directory_admin.exe",
            ),
            (
                |d| d.com_server.as_mut().unwrap().description = None,
                "4 Registry rows, expected 3",
            ),
            (|d| d.com_server = None, "4 Registry rows, expected 1"),
        ];
        for (change, message) in changes {
            let mut other = d.clone();
            change(&mut other);
            let e = format!("{:#}", check(&msi, &other, &bin).unwrap_err());
            assert!(e.contains(message), "{message}: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
