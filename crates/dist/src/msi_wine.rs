//! The MSIs installed for real under Wine (`wine msiexec … /qn /l*v log`), in a fresh prefix of
//! their own (`target/wine/msi-prefix` for `cargo xtask`, `<target>/winprov/msi-prefix` for
//! `cargo winprov test-install`):
//!
//! 1. **rollback**: install with registration. Wine has no namespace-catalog (nor TAPI, nor
//!    layer-install) functions, so the registration command fails, saying so (what it says, when
//!    the descriptor's `[..dist.wine] registration-error` gives it); msiexec must roll
//!    everything back: no file, registry value, service, CLSID key or product entry remains.
//! 2. **install** with `SKIPREGISTRATION=1`: the files land in Program Files (or System32),
//!    the registry values, the service and a COM server's CLSID keys (`InprocServer32` = the
//!    installed DLL) exist, the product is registered once, and the registration command did
//!    not run.
//! 3. **upgrade**: the same package with a higher version replaces it in place (one product,
//!    the new version), and the old version's unregistration ran.
//! 4. **uninstall** (`/x`): the unregistration command ran first; then files, values, service
//!    and product entry are gone.
//!
//! The evidence that a custom action ran is the registration log the descriptor names: the
//! commands append `install: ok`, `uninstall: failed: …` lines to it. msiexec's exit status
//! reaches Linux cut to 8 bits (1603 shows as 67), so success is read from the verbose log.

use crate::installer::{Descriptor, REGISTER_ACTION, SKIP_REGISTRATION, TargetDir};
use crate::project::Project;
use crate::release::build_msi;
use crate::wine::Prefix;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One msiexec run.
struct Run {
    /// The exit status as Linux sees it (8 bits).
    code: Option<i32>,
    log: String,
    log_path: PathBuf,
}

impl Run {
    /// The verbose log's verdict on the top-level action.
    fn succeeded(&self) -> bool {
        self.action_result("INSTALL") == Some(1)
    }

    /// `Action ended <time>: <action>. Return value <n>.` of the last run of `action`.
    fn action_result(&self, action: &str) -> Option<i32> {
        let marker = format!(": {action}. Return value ");
        self.log
            .lines()
            .filter(|l| l.starts_with("Action ended"))
            .filter_map(|l| l.split_once(&marker).map(|(_, rest)| rest))
            .filter_map(|rest| rest.trim().trim_end_matches('.').parse().ok())
            .next_back()
    }
}

/// `Z:\…` for a Linux path (a leading `/` would read as an msiexec option).
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// Reads a verbose log in the ANSI or UTF-16 form msiexec may write.
fn read_log(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let utf16 = bytes.starts_with(&[0xff, 0xfe]) || (bytes.len() > 1 && bytes[1] == 0);
    Ok(if utf16 {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
            .trim_start_matches('\u{feff}')
            .to_string()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn msiexec(
    prefix: &Prefix,
    verb: &str,
    msi: &Path,
    properties: &[&str],
    log: &Path,
) -> Result<Run> {
    let _ = std::fs::remove_file(log);
    let mut cmd = prefix.command(Path::new("msiexec"));
    cmd.args([verb, &windows_path(msi), "/qn", "/l*v", &windows_path(log)])
        .args(properties);
    println!(
        "$ wine msiexec {verb} {} /qn /l*v {} {}",
        msi.display(),
        log.display(),
        properties.join(" ")
    );
    let out = cmd.output().context("running wine msiexec")?;
    // The registration commands' own output reaches msiexec's console.
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
    {
        println!("    | {line}");
    }
    prefix.wait()?;
    let run = Run {
        code: out.status.code(),
        log: read_log(log)?,
        log_path: log.to_path_buf(),
    };
    println!(
        "    exit status {:?} (the low 8 bits of the Windows code), log verdict: INSTALL returned {:?}",
        run.code,
        run.action_result("INSTALL")
    );
    Ok(run)
}

/// The values of `system.reg` (HKEY_LOCAL_MACHINE), by lower-case key path and value name; a
/// key's default value (`@=` in the file) has the name `""`.
#[derive(Debug, Default)]
struct Registry(BTreeMap<String, BTreeMap<String, String>>);

/// Unescapes a `"…"` string of a Wine registry file starting at `s[0] == '"'`; returns the
/// text and the rest after the closing quote.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '0' => out.push('\0'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

impl Registry {
    fn key(&self, path: &str) -> Option<&BTreeMap<String, String>> {
        self.0.get(&path.to_ascii_lowercase())
    }

    fn value(&self, key: &str, name: &str) -> Option<&str> {
        self.key(key)?
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The keys at `path` and below it (Wine's file lists a key only when it has values or no
    /// subkeys).
    fn subtree(&self, path: &str) -> Vec<&str> {
        let path = path.to_ascii_lowercase();
        self.0
            .keys()
            .filter(|key| {
                key.strip_prefix(&path)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('\\'))
            })
            .map(String::as_str)
            .collect()
    }

    /// The service's key (Wine stores CurrentControlSet as ControlSet001).
    fn service(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        ["CurrentControlSet", "ControlSet001"]
            .iter()
            .find_map(|set| self.key(&format!("System\\{set}\\Services\\{name}")))
    }

    /// DisplayVersion of every Add/Remove Programs entry named `product`.
    fn products(&self, product: &str) -> Vec<String> {
        let prefix = "software\\microsoft\\windows\\currentversion\\uninstall\\";
        self.0
            .iter()
            .filter(|(key, values)| {
                key.starts_with(prefix)
                    && values.get("displayname").map(String::as_str) == Some(product)
            })
            .map(|(_, values)| values.get("displayversion").cloned().unwrap_or_default())
            .collect()
    }
}

/// Where the installed files and the evidence are in the prefix.
struct Layout {
    drive_c: PathBuf,
    /// The built payloads the installed files must equal.
    bin: PathBuf,
}

impl Layout {
    fn install_dir(&self, d: &Descriptor) -> PathBuf {
        let mut dir = self.drive_c.join("Program Files");
        dir.extend(&d.install_dir);
        dir
    }

    /// `C:\Program Files\…\` as MSI formats `[INSTALLDIR]`.
    fn install_dir_windows(d: &Descriptor) -> String {
        format!("C:\\Program Files\\{}\\", d.install_dir.join("\\"))
    }

    fn file(&self, d: &Descriptor, name: &str, directory: TargetDir) -> PathBuf {
        match directory {
            TargetDir::Install => self.install_dir(d).join(name),
            TargetDir::System => self.drive_c.join("windows/system32").join(name),
        }
    }

    /// An installed file's path as MSI formats `[#file]`.
    fn file_windows(d: &Descriptor, name: &str, directory: TargetDir) -> String {
        match directory {
            TargetDir::Install => format!("{}{name}", Self::install_dir_windows(d)),
            TargetDir::System => format!("C:\\windows\\system32\\{name}"),
        }
    }

    fn evidence(&self, d: &Descriptor) -> Option<PathBuf> {
        let log = d.registration.as_ref()?.log.as_ref()?;
        Some(self.drive_c.join("ProgramData").join(log))
    }

    fn evidence_lines(&self, d: &Descriptor) -> Vec<String> {
        self.evidence(d)
            .and_then(|path| std::fs::read_to_string(path).ok())
            .map(|text| text.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

/// Collects failed expectations so one run reports them all.
#[derive(Default)]
struct Expect(Vec<String>);

impl Expect {
    fn that(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }

    fn finish(self, step: &str, run: &Run) -> Result<()> {
        if self.0.is_empty() {
            println!("    ok: {step}");
            return Ok(());
        }
        bail!(
            "{step}: {}\n  (msiexec log: {})",
            self.0.join("\n  "),
            run.log_path.display()
        )
    }
}

fn check_installed(e: &mut Expect, layout: &Layout, d: &Descriptor, version: &str) -> Result<()> {
    for file in &d.files {
        let installed = layout.file(d, &file.name, file.directory);
        let built = std::fs::metadata(layout.bin.join(&file.source))?.len();
        let size = std::fs::metadata(&installed).map(|m| m.len()).ok();
        e.that(size == Some(built), || {
            format!(
                "{} is {size:?} bytes, the payload {built}",
                installed.display()
            )
        });
    }
    let registry = Registry::read_for(layout)?;
    let key = d.registry_key();
    for (name, value) in &d.registry {
        let expected = match value.as_str() {
            "[ProductVersion]" => Some(version.to_string()),
            "[INSTALLDIR]" => Some(Layout::install_dir_windows(d)),
            _ => None,
        };
        let found = registry.value(&key, name);
        e.that(
            found.is_some() && (expected.is_none() || found == expected.as_deref()),
            || format!("HKLM\\{key}\\{name} is {found:?}, expected {expected:?}"),
        );
    }
    if let Some(service) = &d.service {
        let values = registry.service(&service.name);
        let image = values
            .and_then(|v| v.get("imagepath"))
            .cloned()
            .unwrap_or_default();
        let exe = d
            .file(&service.file_id)
            .map(|f| f.name.clone())
            .unwrap_or_default();
        e.that(
            image
                .to_ascii_lowercase()
                .contains(&exe.to_ascii_lowercase())
                && image.ends_with(&service.arguments),
            || format!("service {}: ImagePath {image:?}", service.name),
        );
        let start = values.and_then(|v| v.get("start")).cloned();
        e.that(
            start == Some(format!("dword:{:08x}", service.start.msi())),
            || format!("service {}: Start {start:?}", service.name),
        );
    }
    check_com_installed(e, &registry, d);
    let products = registry.products(&d.product);
    e.that(products == [version], || {
        format!(
            "product entries {products:?} for {:?}, expected exactly one at {version}",
            d.product
        )
    });
    Ok(())
}

/// The COM server's registration: `InprocServer32` names the installed DLL by its Windows path,
/// with the descriptor's threading model (and the CLSID key has its description).
fn check_com_installed(e: &mut Expect, registry: &Registry, d: &Descriptor) {
    if let Some(com) = &d.com_server {
        let inproc = com.inproc_key();
        let server = registry.value(&inproc, "");
        let dll = d
            .file(&com.file_id)
            .map(|f| Layout::file_windows(d, &f.name, f.directory))
            .unwrap_or_default();
        e.that(server.is_some_and(|s| s.eq_ignore_ascii_case(&dll)), || {
            format!("HKLM\\{inproc}\\(default) is {server:?}, expected {dll:?}")
        });
        let model = registry.value(&inproc, "ThreadingModel");
        e.that(model == Some(com.threading_model.name()), || {
            format!(
                "HKLM\\{inproc}\\ThreadingModel is {model:?}, expected {}",
                com.threading_model.name()
            )
        });
        if let Some(description) = &com.description {
            let found = registry.value(&com.clsid_key(), "");
            e.that(found == Some(description.as_str()), || {
                format!(
                    "HKLM\\{}\\(default) is {found:?}, expected {description:?}",
                    com.clsid_key()
                )
            });
        }
    }
}

/// No key of the COM server's CLSID remains.
fn check_com_removed(e: &mut Expect, registry: &Registry, d: &Descriptor) {
    if let Some(com) = &d.com_server {
        let left = registry.subtree(&com.clsid_key());
        e.that(left.is_empty(), || {
            format!("the COM registration remains: {left:?}")
        });
    }
}

fn check_removed(e: &mut Expect, layout: &Layout, d: &Descriptor) -> Result<()> {
    for file in &d.files {
        let installed = layout.file(d, &file.name, file.directory);
        e.that(!installed.exists(), || {
            format!("{} remains", installed.display())
        });
    }
    // Wine's msi leaves the empty parent folders it created; no file may remain in them.
    let top = layout.drive_c.join("Program Files").join(&d.install_dir[0]);
    let mut left = Vec::new();
    files_under(&top, &mut left);
    e.that(left.is_empty(), || format!("files remain: {left:?}"));
    let registry = Registry::read_for(layout)?;
    let key = d.registry_key();
    e.that(registry.key(&key).is_none_or(|v| v.is_empty()), || {
        format!("HKLM\\{key} remains: {:?}", registry.key(&key))
    });
    if let Some(service) = &d.service {
        e.that(registry.service(&service.name).is_none(), || {
            format!("service {} remains", service.name)
        });
    }
    check_com_removed(e, &registry, d);
    let products = registry.products(&d.product);
    e.that(products.is_empty(), || {
        format!("product entries remain: {products:?}")
    });
    Ok(())
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

impl Registry {
    fn read_for(layout: &Layout) -> Result<Self> {
        let prefix_dir = layout
            .drive_c
            .parent()
            .context("drive_c has a parent")?
            .to_path_buf();
        let path = prefix_dir.join("system.reg");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(Self::parse(&text))
    }
}

impl Registry {
    fn parse(text: &str) -> Self {
        let mut keys: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix('[') {
                let Some(end) = rest.rfind(']') else { continue };
                let key = rest[..end].replace("\\\\", "\\").to_ascii_lowercase();
                keys.entry(key.clone()).or_default();
                current = Some(key);
            } else if line.starts_with(['"', '@']) {
                let named = match line.strip_prefix('@') {
                    Some(rest) => Some((String::new(), rest)),
                    None => quoted(line),
                };
                let (Some(key), Some((name, rest))) = (&current, named) else {
                    continue;
                };
                let Some(value) = rest.strip_prefix('=') else {
                    continue;
                };
                let value = match quoted(value) {
                    Some((text, _)) if value.starts_with('"') => text,
                    _ => value.to_string(),
                };
                keys.get_mut(key)
                    .expect("inserted above")
                    .insert(name.to_ascii_lowercase(), value);
            }
        }
        Self(keys)
    }
}

/// The four steps for one sample. `v1` is the dist MSI, `v2` the same descriptor at a higher
/// version.
fn test_sample(
    prefix: &Prefix,
    bin: &Path,
    logs: &Path,
    v1: (&Descriptor, &Path),
    v2: (&Descriptor, &Path),
) -> Result<()> {
    let d = v1.0;
    let layout = Layout {
        drive_c: prefix.dir().join("drive_c"),
        bin: bin.to_path_buf(),
    };
    let log = |step: &str| logs.join(format!("{}-{step}.log", d.package));
    let skip = format!("{SKIP_REGISTRATION}=1");

    if let Some(registration) = &d.registration {
        println!("\n--- {}: rollback when the registration fails", d.package);
        let before = layout.evidence_lines(d).len();
        let run = msiexec(prefix, "/i", v1.1, &[], &log("rollback"))?;
        let mut e = Expect::default();
        e.that(!run.succeeded() && run.code != Some(0), || {
            format!(
                "the installation succeeded (exit {:?}), so the registration did not fail",
                run.code
            )
        });
        let register = run.action_result(REGISTER_ACTION);
        e.that(matches!(register, Some(r) if r != 1), || {
            format!("the log shows {REGISTER_ACTION} returning {register:?}, expected a failure")
        });
        if registration.log.is_some() {
            let lines = layout.evidence_lines(d);
            let new: Vec<&String> = lines.iter().skip(before).collect();
            println!("    registration log: {new:?}");
            // The reason is the command's own (no namespace catalog, no TAPI): shown above.
            e.that(
                new.len() == 1 && new[0].starts_with("install: failed: ") && new[0].len() > 40,
                || {
                    format!(
                        "the registration log should have one `install: failed: <reason>` line, \
                         has {new:?}"
                    )
                },
            );
            // The reason the descriptor expects under Wine (`[..dist.wine] registration-error`).
            if let Some(expected) = &d.wine_registration_error {
                e.that(
                    new.iter().any(|line| line.contains(expected.as_str())),
                    || format!("the registration failed, but not with {expected:?}: {new:?}"),
                );
            }
        }
        check_removed(&mut e, &layout, d)?;
        e.finish("a failed registration rolls the installation back", &run)?;
    }

    println!("\n--- {}: install {} with {skip}", d.package, d.version);
    let before = layout.evidence_lines(d);
    let run = msiexec(prefix, "/i", v1.1, &[&skip], &log("install"))?;
    let mut e = Expect::default();
    e.that(run.succeeded() && run.code == Some(0), || {
        format!("the installation failed (exit {:?})", run.code)
    });
    e.that(run.action_result(REGISTER_ACTION).is_none(), || {
        format!("{REGISTER_ACTION} ran despite {skip}")
    });
    check_installed(&mut e, &layout, d, &d.version)?;
    let after = layout.evidence_lines(d);
    e.that(after == before, || {
        format!("the registration command ran despite {skip}: {after:?}")
    });
    e.finish("installed without registration", &run)?;

    let (d2, msi2) = v2;
    println!("\n--- {}: upgrade to {} with {skip}", d.package, d2.version);
    let before = layout.evidence_lines(d).len();
    let run = msiexec(prefix, "/i", msi2, &[&skip], &log("upgrade"))?;
    let mut e = Expect::default();
    e.that(run.succeeded() && run.code == Some(0), || {
        format!("the upgrade failed (exit {:?})", run.code)
    });
    check_installed(&mut e, &layout, d2, &d2.version)?;
    if d.registration.as_ref().is_some_and(|r| r.log.is_some()) {
        let lines = layout.evidence_lines(d);
        let new: Vec<&String> = lines.iter().skip(before).collect();
        println!("    registration log: {new:?}");
        e.that(new.iter().map(|l| l.as_str()).eq(["uninstall: ok"]), || {
            format!("removing the old version should have unregistered once: {new:?}")
        });
    }
    e.finish("upgraded in place: one product, the new version", &run)?;

    println!("\n--- {}: uninstall", d.package);
    let before = layout.evidence_lines(d).len();
    let run = msiexec(prefix, "/x", msi2, &[], &log("uninstall"))?;
    let mut e = Expect::default();
    e.that(run.succeeded() && run.code == Some(0), || {
        format!("the uninstallation failed (exit {:?})", run.code)
    });
    if d.registration.as_ref().is_some_and(|r| r.log.is_some()) {
        let lines = layout.evidence_lines(d);
        let new: Vec<&String> = lines.iter().skip(before).collect();
        println!("    registration log: {new:?}");
        e.that(new.iter().map(|l| l.as_str()).eq(["uninstall: ok"]), || {
            format!("the uninstallation should have unregistered once: {new:?}")
        });
    }
    check_removed(&mut e, &layout, d)?;
    e.finish(
        "uninstalled: unregistered, files, values, service and entry gone",
        &run,
    )?;
    Ok(())
}

/// A version above `version` (the next patch), for the upgrade test.
pub fn next_version(version: &str) -> String {
    let mut parts: Vec<u64> = version.split('.').filter_map(|p| p.parse().ok()).collect();
    if let Some(last) = parts.last_mut() {
        *last += 1;
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Builds the upgrade MSIs and runs the four steps for every package in a fresh prefix at
/// `prefix_dir` (its ProcessPrng shim built in the project's target directory). The MSIs
/// are `dist/<package>-<version>-x64.msi`, made from the project's release artifacts.
pub fn run(
    project: &Project,
    descriptors: &[Descriptor],
    dist: &Path,
    prefix_dir: &Path,
) -> Result<()> {
    let dir = prefix_dir.to_path_buf();
    let shim = Prefix::shim_dir(project.target_dir());
    if dir.exists() {
        // A fresh prefix every run: what an installation leaves is what the test sees.
        Prefix::prepare_at(dir.clone(), &shim)?.kill();
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let prefix = Prefix::prepare_at(dir, &shim)?;
    let scratch = dist.join("upgrade-test");
    let logs = scratch.join("logs");
    std::fs::create_dir_all(&logs)?;
    for d in descriptors {
        let v1 = dist.join(d.msi_name());
        if !v1.is_file() {
            bail!("{} is missing: run the MSI build first", v1.display());
        }
        let d2 = d.with_version(&next_version(&d.version))?;
        println!("\n--- {}: the upgrade package {}", d.package, d2.version);
        let v2 = build_msi(project, &d2, &scratch)?;
        test_sample(&prefix, &project.bin_dir(), &logs, (d, &v1), (&d2, &v2))?;
    }
    prefix.kill();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wine_registry_files_are_read() {
        let text = r#"WINE REGISTRY Version 2
#arch=win64

[Software\\winprov\\E-mail Directory] 1732213584
#time=1db3c1e2b6b1a2c
"InstallDir"="C:\\Program Files\\winprov\\E-mail Directory\\"
"Version"="0.1.0"

[System\\ControlSet001\\Services\\EmailDirectory] 1732213584
"ImagePath"="C:\\Program Files\\winprov\\E-mail Directory\\email-directory.exe service"
"Start"=dword:00000002
"Say \"hi\""="a\"b"

[Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{B99F1BF6-598E-48C1-B20C-2BF1D94B6AD3}] 1
"DisplayName"="winprov E-mail Directory"
"DisplayVersion"="0.1.0"
"#;
        let r = Registry::parse(text);
        assert_eq!(
            r.value("Software\\winprov\\E-mail Directory", "installdir"),
            Some("C:\\Program Files\\winprov\\E-mail Directory\\")
        );
        let service = r.service("EmailDirectory").unwrap();
        assert_eq!(service["start"], "dword:00000002");
        assert_eq!(service["say \"hi\""], "a\"b");
        assert!(service["imagepath"].ends_with("email-directory.exe service"));
        assert_eq!(r.products("winprov E-mail Directory"), ["0.1.0"]);
        assert!(r.products("other").is_empty());
        assert!(r.key("Software\\nothing").is_none());
    }

    /// `system.reg` after installing a COM server's MSI under Wine 8.0 (captured).
    const COM_INSTALLED: &str = r#"WINE REGISTRY Version 2
#arch=win64

[Software\\Classes\\CLSID\\{715D6D12-24E0-4836-B6F6-0FBA71B04A73}] 1796028313
#time=1dd80a71d737610
@="winprov Directory Admin"

[Software\\Classes\\CLSID\\{715D6D12-24E0-4836-B6F6-0FBA71B04A73}\\InprocServer32] 1796028313
#time=1dd80a71d738268
@="C:\\Program Files\\winprov\\COM Test\\directory_admin.dll"
"ThreadingModel"="Both"
"#;

    /// Another server's CLSID.
    const OTHER_CLSID: &str = r#"
[Software\\Classes\\CLSID\\{715D6D12-24E0-4836-B6F6-0FBA71B04A74}\\InprocServer32] 1796028313
@="C:\\elsewhere.dll"
"#;

    fn com_descriptor(directory: &str) -> Descriptor {
        let dist = serde_json::json!({
            "product": "winprov COM Test",
            "manufacturer": "winprov",
            "upgrade-code": "0a6b2c1d-3e4f-4a5b-8c7d-9e0f1a2b3c4e",
            "install-dir": "winprov/COM Test",
            "files": [{"artifact": "cdylib", "directory": directory}],
            "com-server": {
                "file": "directory_admin.dll",
                "clsid": "715d6d12-24e0-4836-b6f6-0fba71b04a73",
                "description": "winprov Directory Admin"
            }
        });
        let targets = [("directory_admin".to_string(), vec!["cdylib".to_string()])];
        crate::installer::parse("com-test", "0.1.0", &dist, &targets).unwrap()
    }

    fn com_problems(text: &str, d: &Descriptor, installed: bool) -> Vec<String> {
        let mut e = Expect::default();
        let registry = Registry::parse(text);
        if installed {
            check_com_installed(&mut e, &registry, d);
        } else {
            check_com_removed(&mut e, &registry, d);
        }
        e.0
    }

    #[test]
    fn com_registrations_are_read_from_wine_registry_files() {
        let installed = format!("{COM_INSTALLED}{OTHER_CLSID}");
        let d = com_descriptor("install");
        let r = Registry::parse(&installed);
        let com = d.com_server.as_ref().unwrap();
        assert_eq!(
            r.value(&com.inproc_key(), ""),
            Some(r"C:\Program Files\winprov\COM Test\directory_admin.dll")
        );
        assert_eq!(
            r.value(&com.clsid_key(), ""),
            Some("winprov Directory Admin")
        );
        assert_eq!(r.subtree(&com.clsid_key()).len(), 2);
        assert!(com_problems(&installed, &d, true).is_empty());

        // Another threading model, another path, another description: each is reported.
        let apartment = installed.replace(
            r#""ThreadingModel"="Both""#,
            r#""ThreadingModel"="Apartment""#,
        );
        let problems = com_problems(&apartment, &d, true);
        assert!(
            matches!(&problems[..], [p] if p.contains(r#"InprocServer32\ThreadingModel is Some("Apartment")"#)),
            "{problems:?}"
        );
        let problems = com_problems(&installed, &com_descriptor("system"), true);
        assert!(
            matches!(&problems[..], [p] if p.contains(r#"expected "C:\\windows\\system32\\directory_admin.dll""#)),
            "{problems:?}"
        );
        let renamed = installed.replace(r#"@="winprov Directory Admin""#, r#"@="other""#);
        assert_eq!(com_problems(&renamed, &d, true).len(), 1);
        let unregistered = installed.replace("InprocServer32]", "Other]");
        assert_eq!(com_problems(&unregistered, &d, true).len(), 2);

        // Removal: the keys are reported while any remains, also a subkey alone (Wine lists
        // only the InprocServer32 key when the CLSID key has no value of its own).
        let problems = com_problems(&installed, &d, false);
        assert!(
            matches!(&problems[..], [p] if p.contains("the COM registration remains")),
            "{problems:?}"
        );
        let clsid_header =
            r"[Software\\Classes\\CLSID\\{715D6D12-24E0-4836-B6F6-0FBA71B04A73}] 1796028313";
        let subkey_only = installed
            .replacen(r#"@="winprov Directory Admin""#, "", 1)
            .replacen(clsid_header, "", 1);
        assert!(
            Registry::parse(&subkey_only)
                .key(&com.clsid_key())
                .is_none()
        );
        assert_eq!(com_problems(&subkey_only, &d, false).len(), 1);
        // After the uninstallation only the other server's CLSID remains.
        assert!(com_problems(OTHER_CLSID, &d, false).is_empty());
        // Without a com-server, nothing is asked of the registry.
        let plain = com_descriptor("install");
        let plain = Descriptor {
            com_server: None,
            ..plain
        };
        assert!(com_problems("", &plain, true).is_empty());
    }

    #[test]
    fn log_verdicts_are_read() {
        let run = Run {
            code: Some(91),
            log: "Action ended 6:26:26: RegisterProvider. Return value 3.\n\
                  Action ended 6:26:26: INSTALL. Return value 3.\n"
                .to_string(),
            log_path: PathBuf::new(),
        };
        assert_eq!(run.action_result(REGISTER_ACTION), Some(3));
        assert!(!run.succeeded());
        let ok = Run {
            code: Some(0),
            log: "Action ended 6:26:22: INSTALL. Return value 1.\n".to_string(),
            log_path: PathBuf::new(),
        };
        assert!(ok.succeeded());
        assert_eq!(ok.action_result(REGISTER_ACTION), None);
    }

    #[test]
    fn utf16_logs_are_decoded() {
        let dir = crate::scratch("utf16-log");
        let path = dir.join("xtask-utf16-log-test.log");
        let mut bytes = vec![0xff, 0xfe];
        for unit in "INSTALL. Return value 1.".encode_utf16() {
            bytes.extend(unit.to_le_bytes());
        }
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(read_log(&path).unwrap(), "INSTALL. Return value 1.");
        std::fs::write(&path, "plain").unwrap();
        assert_eq!(read_log(&path).unwrap(), "plain");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn paths_and_versions() {
        assert_eq!(
            windows_path(Path::new("/work/a b/x.msi")),
            "Z:\\work\\a b\\x.msi"
        );
        assert_eq!(next_version("0.1.0"), "0.1.1");
        assert_eq!(next_version("1.2.9"), "1.2.10");
    }
}
