//! The installer descriptor of a provider package (`[package.metadata.winprov.dist]` in its
//! Cargo.toml) and the WiX v3 source generated from it. Pure functions: no files, no processes.
//!
//! The generated `.wxs` stays inside the subset that both wixl 0.101 (Linux) and WiX v3
//! (candle/light, cargo-wix) accept: per-machine, `Win64` components with key paths, one
//! MajorUpgrade, deferred no-impersonate custom actions placed by `Sequence=`, forward slashes in
//! `Source`, no SetProperty/UI/WixVariable. The format is documented in `docs/dist.md`.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

/// The public MSI property that installs the files without running the registration command:
/// `msiexec /i x.msi SKIPREGISTRATION=1`.
pub const SKIP_REGISTRATION: &str = "SKIPREGISTRATION";

/// The preprocessor variable [`crate::release`] defines for wixl only: wixl places MajorUpgrade's
/// RemoveExistingProducts after the last sequenced action, so it gets an explicit sequence there
/// (WiX v3 schedules it after InstallValidate by itself, and rejects a second one).
pub const WIXL_VARIABLE: &str = "WixlSequencing";

/// The preprocessor variable naming the directory of the built artifacts (the name cargo-wix
/// defines too).
pub const BIN_DIR_VARIABLE: &str = "CargoTargetBinDir";

/// Custom action ids and their fixed places in InstallExecuteSequence.
pub const REGISTER_ACTION: &str = "RegisterProvider";
pub const UNREGISTER_ACTION: &str = "UnregisterProvider";
/// After PublishProduct (6400), before InstallFinalize (6600): the last deferred action, so no
/// later step can fail after a successful registration (wixl has no rollback custom actions).
pub const REGISTER_SEQUENCE: i32 = 6401;
/// After StopServices (1900) and DeleteServices (2000), before RemoveRegistryValues (2600) and
/// RemoveFiles (3500): the service is gone, the executable is still there.
pub const UNREGISTER_SEQUENCE: i32 = 2001;
/// After InstallValidate (1400), before InstallInitialize (1500): the old version is removed
/// (and unregistered) before the new one is installed.
pub const REMOVE_EXISTING_SEQUENCE: i32 = 1401;

/// Which cargo artifact a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactKind {
    Bin,
    Cdylib,
}

/// Where a file is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetDir {
    /// `INSTALLDIR`, under ProgramFiles64Folder.
    Install,
    /// System64Folder (`C:\Windows\System32`), where TAPI looks for `.tsp` files.
    System,
}

impl TargetDir {
    /// The Directory id in the generated source and the MSI's Directory table.
    pub fn directory_id(self) -> &'static str {
        match self {
            TargetDir::Install => "INSTALLDIR",
            TargetDir::System => "System64Folder",
        }
    }
}

/// One installed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// The File id (and, prefixed, its Component id).
    pub id: String,
    pub artifact: ArtifactKind,
    /// The cargo target that builds it.
    pub target: String,
    /// The built file's name in `target/<triple>/release`.
    pub source: String,
    /// The installed file name.
    pub name: String,
    pub directory: TargetDir,
}

/// `ServiceInstall` start types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartType {
    Auto,
    Demand,
    Disabled,
}

impl StartType {
    pub fn wix(self) -> &'static str {
        match self {
            StartType::Auto => "auto",
            StartType::Demand => "demand",
            StartType::Disabled => "disabled",
        }
    }

    /// The ServiceInstall table's StartType value.
    pub fn msi(self) -> i32 {
        match self {
            StartType::Auto => 2,
            StartType::Demand => 3,
            StartType::Disabled => 4,
        }
    }
}

/// A Windows service the installer creates (and stops and deletes on uninstall). It is not
/// started by the installer: the registration command starts it once the provider is
/// registered, and under Wine it could not run anyway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The File id of the service executable.
    pub file_id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub start: StartType,
    pub arguments: String,
}

/// The registration commands, run from an installed executable by deferred, elevated custom
/// actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The File id of the executable.
    pub file_id: String,
    /// Arguments, `{log}` already expanded (MSI formatted text).
    pub install: String,
    pub uninstall: String,
    /// The log the commands append to, relative to %ProgramData%, with `/` separators.
    pub log: Option<String>,
}

/// The `ThreadingModel` value of an in-proc COM server's `InprocServer32` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadingModel {
    Apartment,
    Free,
    Both,
    Neutral,
}

impl ThreadingModel {
    pub const ALL: [ThreadingModel; 4] = [
        ThreadingModel::Apartment,
        ThreadingModel::Free,
        ThreadingModel::Both,
        ThreadingModel::Neutral,
    ];

    /// The registry value, as COM reads it.
    pub fn name(self) -> &'static str {
        match self {
            ThreadingModel::Apartment => "Apartment",
            ThreadingModel::Free => "Free",
            ThreadingModel::Both => "Both",
            ThreadingModel::Neutral => "Neutral",
        }
    }
}

/// An in-proc COM server the installer registers (a WMI provider is one). wixl has no
/// `File/Class` element, so the registration is plain registry values in the DLL's own
/// component, under `HKLM\Software\Classes\CLSID\{CLSID}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComServer {
    /// The File id of the DLL.
    pub file_id: String,
    /// Lower case, no braces.
    pub clsid: String,
    pub threading_model: ThreadingModel,
    /// The CLSID key's default value, if any (plain text).
    pub description: Option<String>,
}

impl ComServer {
    /// `Software\Classes\CLSID\{CLSID}` below HKLM, the GUID in upper case.
    pub fn clsid_key(&self) -> String {
        format!(
            "Software\\Classes\\CLSID\\{{{}}}",
            self.clsid.to_ascii_uppercase()
        )
    }

    /// The `InprocServer32` key below HKLM.
    pub fn inproc_key(&self) -> String {
        format!("{}\\InprocServer32", self.clsid_key())
    }

    /// The `InprocServer32` default value: MSI formats `[#file]` as the installed file's full
    /// path.
    pub fn server_value(&self) -> String {
        format!("[#{}]", self.file_id)
    }

    /// The registry values, (key below HKLM, value name or `None` for the default, value), in
    /// the order the generated source writes them.
    pub fn values(&self) -> Vec<(String, Option<&'static str>, String)> {
        let mut values = Vec::new();
        if let Some(description) = &self.description {
            values.push((self.clsid_key(), None, description.clone()));
        }
        values.push((self.inproc_key(), None, self.server_value()));
        values.push((
            self.inproc_key(),
            Some("ThreadingModel"),
            self.threading_model.name().to_string(),
        ));
        values
    }
}

/// Everything the installer of one package is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// The cargo package (its name in `<target>/dist/<package>-<version>-x64.msi`).
    pub package: String,
    /// The crate version, also the MSI ProductVersion.
    pub version: String,
    pub product: String,
    pub manufacturer: String,
    /// Lower case, no braces.
    pub upgrade_code: String,
    /// Folders under ProgramFiles64Folder; the last is INSTALLDIR.
    pub install_dir: Vec<String>,
    pub files: Vec<FileSpec>,
    pub service: Option<Service>,
    pub registration: Option<Registration>,
    pub com_server: Option<ComServer>,
    /// Values under `HKLM\Software\<manufacturer>\<product>`: name, MSI formatted text.
    pub registry: Vec<(String, String)>,
    /// The largest size the release DLL (the package's cdylib) may have, in bytes:
    /// the release build fails above it.
    pub max_dll_bytes: Option<u64>,
    /// What the registration command's `install: failed: …` line must say under Wine (the
    /// Wine tests' rollback step): `[package.metadata.winprov.dist.wine] registration-error`.
    pub wine_registration_error: Option<String>,
}

impl Descriptor {
    /// Reads the descriptor of one package of `cargo metadata --format-version 1`;
    /// `Ok(None)` when the package has no `[package.metadata.winprov.dist]`.
    pub fn from_package(package: &Value) -> Result<Option<Self>> {
        let name = package["name"].as_str().context("package without a name")?;
        let Some(dist) = package["metadata"]
            .get("winprov")
            .and_then(|w| w.get("dist"))
        else {
            return Ok(None);
        };
        let version = package["version"]
            .as_str()
            .context("package without a version")?;
        let targets: Vec<(String, Vec<String>)> = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let kinds = t["kind"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect();
                (t["name"].as_str().unwrap_or_default().to_string(), kinds)
            })
            .collect();
        parse(name, version, dist, &targets)
            .with_context(|| format!("[package.metadata.winprov.dist] of package `{name}`"))
            .map(Some)
    }

    /// The same descriptor with another ProductVersion (the upgrade test builds a newer MSI).
    pub fn with_version(&self, version: &str) -> Result<Self> {
        check_version(version)?;
        Ok(Self {
            version: version.to_string(),
            ..self.clone()
        })
    }

    /// `<package>-<version>-x64.msi`.
    pub fn msi_name(&self) -> String {
        format!("{}-{}-x64.msi", self.package, self.version)
    }

    /// The registry key of [`Descriptor::registry`], below HKLM.
    pub fn registry_key(&self) -> String {
        format!("Software\\{}\\{}", self.manufacturer, self.product)
    }

    pub fn file(&self, id: &str) -> Option<&FileSpec> {
        self.files.iter().find(|f| f.id == id)
    }

    /// The package's DLL (its cdylib), if it installs it: the built file's name in
    /// `target/<triple>/release`.
    pub fn dll(&self) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.artifact == ArtifactKind::Cdylib)
            .map(|f| f.source.as_str())
    }
}

/// The keys a table may have; anything else is a mistake worth stopping for.
pub fn only_keys(table: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<()> {
    for key in table.keys() {
        if !allowed.contains(&key.as_str()) {
            bail!(
                "unknown key `{key}` in {what} (allowed: {})",
                allowed.join(", ")
            );
        }
    }
    Ok(())
}

pub fn table<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .with_context(|| format!("{what} must be a table"))
}

fn required<'a>(table: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a str> {
    let value = table
        .get(key)
        .with_context(|| format!("{what}: `{key}` is missing"))?;
    let text = value
        .as_str()
        .with_context(|| format!("{what}: `{key}` must be a string"))?;
    if text.trim().is_empty() {
        bail!("{what}: `{key}` is empty");
    }
    if text.contains("$(") {
        bail!("{what}: `{key}` contains `$(`, which the WiX preprocessor would expand");
    }
    Ok(text)
}

fn optional<'a>(table: &'a Map<String, Value>, key: &str, what: &str) -> Result<Option<&'a str>> {
    match table.get(key) {
        None => Ok(None),
        Some(_) => required(table, key, what).map(Some),
    }
}

/// Parses the `dist` table; `targets` are the package's cargo targets (name, kinds).
pub fn parse(
    package: &str,
    version: &str,
    dist: &Value,
    targets: &[(String, Vec<String>)],
) -> Result<Descriptor> {
    let dist = table(dist, "[package.metadata.winprov.dist]")?;
    only_keys(
        dist,
        &[
            "product",
            "manufacturer",
            "upgrade-code",
            "install-dir",
            "files",
            "service",
            "registration",
            "com-server",
            "registry",
            "max-dll-bytes",
            "wine",
        ],
        "the dist table",
    )?;
    check_version(version)?;
    let product = required(dist, "product", "dist")?.to_string();
    let manufacturer = required(dist, "manufacturer", "dist")?.to_string();
    let upgrade_code = check_guid(required(dist, "upgrade-code", "dist")?, "upgrade-code")?;
    let install_dir: Vec<String> = match optional(dist, "install-dir", "dist")? {
        Some(path) => path.split('/').map(str::to_string).collect(),
        None => vec![manufacturer.clone(), product.clone()],
    };
    for segment in &install_dir {
        check_file_name(segment, "install-dir")?;
    }

    let files_value = dist
        .get("files")
        .context("dist: `files` is missing (a list of [[...dist.files]] tables)")?;
    let file_tables = files_value
        .as_array()
        .context("dist: `files` must be a list of tables")?;
    if file_tables.is_empty() {
        bail!("dist: `files` is empty: an installer installs at least one file");
    }
    let mut files: Vec<FileSpec> = Vec::new();
    for (index, value) in file_tables.iter().enumerate() {
        let what = format!("files[{index}]");
        let file = parse_file(table(value, &what)?, &what, targets)?;
        if let Some(other) = files.iter().find(|f| f.id == file.id) {
            bail!(
                "{what}: `{}` and `{}` would both have the id `{}`: rename one",
                file.name,
                other.name,
                file.id
            );
        }
        files.push(file);
    }

    let find_file = |name: &str, what: &str| -> Result<&FileSpec> {
        let file = files
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .with_context(|| format!("{what}: `file = \"{name}\"` names no installed file"))?;
        if file.artifact != ArtifactKind::Bin {
            bail!("{what}: `{name}` is not an executable (artifact = \"bin\")");
        }
        Ok(file)
    };

    let service = match dist.get("service") {
        None => None,
        Some(value) => {
            let what = "service";
            let service = table(value, what)?;
            only_keys(
                service,
                &[
                    "file",
                    "name",
                    "display-name",
                    "description",
                    "start",
                    "arguments",
                ],
                what,
            )?;
            let file = find_file(required(service, "file", what)?, what)?;
            let name = required(service, "name", what)?;
            if name.contains(['/', '\\']) {
                bail!("service: `name` must not contain slashes");
            }
            let start = match optional(service, "start", what)?.unwrap_or("auto") {
                "auto" => StartType::Auto,
                "demand" => StartType::Demand,
                "disabled" => StartType::Disabled,
                other => bail!("service: `start = \"{other}\"` (auto, demand or disabled)"),
            };
            Some(Service {
                file_id: file.id.clone(),
                name: name.to_string(),
                display_name: optional(service, "display-name", what)?
                    .unwrap_or(name)
                    .to_string(),
                description: optional(service, "description", what)?
                    .unwrap_or_default()
                    .to_string(),
                start,
                arguments: optional(service, "arguments", what)?
                    .unwrap_or_default()
                    .to_string(),
            })
        }
    };

    let registration = match dist.get("registration") {
        None => None,
        Some(value) => {
            let what = "registration";
            let registration = table(value, what)?;
            only_keys(registration, &["file", "install", "uninstall", "log"], what)?;
            let file = find_file(required(registration, "file", what)?, what)?;
            let log = optional(registration, "log", what)?.map(str::to_string);
            if let Some(log) = &log {
                for segment in log.split('/') {
                    check_file_name(segment, "registration: `log`")?;
                }
            }
            let expand = |key: &str| -> Result<String> {
                let text = required(registration, key, what)?;
                match &log {
                    Some(log) => Ok(text.replace(
                        "{log}",
                        &format!("[CommonAppDataFolder]{}", log.replace('/', "\\")),
                    )),
                    None if text.contains("{log}") => {
                        bail!("registration: `{key}` uses {{log}} but no `log` is given")
                    }
                    None => Ok(text.to_string()),
                }
            };
            Some(Registration {
                file_id: file.id.clone(),
                install: expand("install")?,
                uninstall: expand("uninstall")?,
                log,
            })
        }
    };

    let com_server = match dist.get("com-server") {
        None => None,
        Some(value) => {
            let what = "com-server";
            let com = table(value, what)?;
            only_keys(
                com,
                &["file", "clsid", "threading-model", "description"],
                what,
            )?;
            let name = required(com, "file", what)?;
            let file = files
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(name))
                .with_context(|| format!("{what}: `file = \"{name}\"` names no installed file"))?;
            let is_dll = file
                .name
                .rsplit_once('.')
                .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("dll"));
            if file.artifact != ArtifactKind::Cdylib || !is_dll {
                bail!("{what}: `{name}` is not a DLL (artifact = \"cdylib\", installed as .dll)");
            }
            let clsid = check_guid(required(com, "clsid", what)?, "com-server: `clsid`")?;
            let threading_model = match optional(com, "threading-model", what)? {
                None => ThreadingModel::Both,
                Some(text) => ThreadingModel::ALL
                    .into_iter()
                    .find(|m| m.name() == text)
                    .with_context(|| {
                        format!(
                            "{what}: `threading-model = \"{text}\"` (Apartment, Free, Both or \
                             Neutral)"
                        )
                    })?,
            };
            let description = optional(com, "description", what)?.map(str::to_string);
            if let Some(text) = &description
                && text.contains(['[', ']', '{', '}'])
            {
                bail!("{what}: `description` must be plain text: MSI would format [..] and {{..}}");
            }
            Some(ComServer {
                file_id: file.id.clone(),
                clsid,
                threading_model,
                description,
            })
        }
    };

    let registry = match dist.get("registry") {
        None => Vec::new(),
        Some(value) => {
            let mut values = Vec::new();
            for (name, value) in table(value, "registry")? {
                check_identifier_text(name, "registry value name")?;
                let text = value
                    .as_str()
                    .with_context(|| format!("registry: `{name}` must be a string"))?;
                values.push((name.clone(), text.to_string()));
            }
            values
        }
    };

    let max_dll_bytes = match dist.get("max-dll-bytes") {
        None => None,
        Some(value) => {
            let bytes = value
                .as_u64()
                .filter(|&n| n > 0)
                .context("dist: `max-dll-bytes` must be a positive whole number of bytes")?;
            if !files.iter().any(|f| f.artifact == ArtifactKind::Cdylib) {
                bail!(
                    "dist: `max-dll-bytes` is given but no file is the DLL (artifact = \"cdylib\")"
                );
            }
            Some(bytes)
        }
    };

    let wine_registration_error = match dist.get("wine") {
        None => None,
        Some(value) => {
            let what = "wine";
            let wine = table(value, what)?;
            only_keys(wine, &["registration-error"], what)?;
            let error = optional(wine, "registration-error", what)?.map(str::to_string);
            if error.is_some() && registration.is_none() {
                bail!("wine: `registration-error` is given but there is no [..dist.registration]");
            }
            error
        }
    };

    Ok(Descriptor {
        package: package.to_string(),
        version: version.to_string(),
        product,
        manufacturer,
        upgrade_code,
        install_dir,
        files,
        service,
        registration,
        com_server,
        registry,
        max_dll_bytes,
        wine_registration_error,
    })
}

fn parse_file(
    file: &Map<String, Value>,
    what: &str,
    targets: &[(String, Vec<String>)],
) -> Result<FileSpec> {
    only_keys(file, &["artifact", "target", "name", "directory"], what)?;
    let (artifact, kind) = match required(file, "artifact", what)? {
        "bin" => (ArtifactKind::Bin, "bin"),
        "cdylib" => (ArtifactKind::Cdylib, "cdylib"),
        other => bail!("{what}: `artifact = \"{other}\"` (bin or cdylib)"),
    };
    let candidates: Vec<&str> = targets
        .iter()
        .filter(|(_, kinds)| kinds.iter().any(|k| k == kind))
        .map(|(name, _)| name.as_str())
        .collect();
    let target = match optional(file, "target", what)? {
        Some(name) if candidates.contains(&name) => name.to_string(),
        Some(name) => bail!("{what}: the package has no {kind} target `{name}`"),
        None => match candidates.as_slice() {
            [only] => only.to_string(),
            [] => bail!("{what}: the package has no {kind} target"),
            several => bail!(
                "{what}: the package has several {kind} targets ({}): add `target = \"…\"`",
                several.join(", ")
            ),
        },
    };
    let source = match artifact {
        ArtifactKind::Bin => format!("{target}.exe"),
        ArtifactKind::Cdylib => format!("{}.dll", target.replace('-', "_")),
    };
    let name = optional(file, "name", what)?
        .map(str::to_string)
        .unwrap_or_else(|| source.clone());
    check_file_name(&name, what)?;
    let directory = match optional(file, "directory", what)?.unwrap_or("install") {
        "install" => TargetDir::Install,
        "system" => TargetDir::System,
        other => bail!("{what}: `directory = \"{other}\"` (install or system)"),
    };
    Ok(FileSpec {
        id: identifier(&name),
        artifact,
        target,
        source,
        name,
        directory,
    })
}

/// An MSI identifier from a file name: letters, digits, `_` and `.`, not starting with a digit
/// or `.`.
pub fn identifier(name: &str) -> String {
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !id.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        id.insert(0, '_');
    }
    id
}

fn check_file_name(name: &str, what: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." {
        bail!("{what}: `{name}` is not a file or folder name");
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(c, '\\' | '/' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control()
    }) {
        bail!("{what}: `{name}` contains {c:?}, which Windows file names cannot");
    }
    Ok(())
}

fn check_identifier_text(name: &str, what: &str) -> Result<()> {
    if name.is_empty() || name.contains(['[', ']', '{', '}', '\\']) {
        bail!("{what} `{name}` must be plain text");
    }
    Ok(())
}

/// An MSI ProductVersion: `major.minor.build`, major and minor below 256, build below 65536.
pub fn check_version(version: &str) -> Result<()> {
    let limits = [255u32, 255, 65535];
    let parts: Vec<&str> = version.split('.').collect();
    let valid = parts.len() == 3
        && parts
            .iter()
            .zip(limits)
            .all(|(part, limit)| part.parse::<u32>().is_ok_and(|n| n <= limit));
    if !valid {
        bail!(
            "version `{version}` cannot be an MSI ProductVersion (major.minor.patch, numbers \
             only, major and minor up to 255, patch up to 65535)"
        );
    }
    Ok(())
}

/// A GUID `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (braces allowed), returned in lower case
/// without braces; `what` names it in the error.
pub fn check_guid(text: &str, what: &str) -> Result<String> {
    let bare = text.trim_start_matches('{').trim_end_matches('}');
    let groups: Vec<&str> = bare.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    let valid = groups.len() == 5
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid || bare.chars().all(|c| c == '0' || c == '-') {
        bail!("{what} `{text}` is not a GUID (generate one with `uuidgen`)");
    }
    Ok(bare.to_ascii_lowercase())
}

/// Escapes text for an XML attribute value (double-quoted) or element content.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The component id of a file.
pub fn component_id(file_id: &str) -> String {
    format!("c_{file_id}")
}

/// The component holding the registry values.
pub const REGISTRY_COMPONENT: &str = "c_registry";

/// The condition of the registration custom action.
pub fn register_condition() -> String {
    format!("NOT Installed AND NOT {SKIP_REGISTRATION}")
}

/// The condition of the unregistration custom action.
pub fn unregister_condition() -> String {
    format!("REMOVE~=\"ALL\" AND NOT {SKIP_REGISTRATION}")
}

/// The WiX v3 source of the installer.
pub fn wxs(d: &Descriptor) -> String {
    let a = |text: &str| xml_escape(text);
    let mut x = String::new();
    let mut line = |indent: usize, text: &str| {
        x.push_str(&"  ".repeat(indent));
        x.push_str(text);
        x.push('\n');
    };
    line(0, r#"<?xml version="1.0" encoding="utf-8"?>"#);
    line(
        0,
        &format!(
            "<!-- Generated by winprov-dist (cargo winprov dist) from the \
             [package.metadata.winprov.dist] table of package {}; do not edit. Build: wixl -a x64 -D {BIN_DIR_VARIABLE}=DIR -D \
             {WIXL_VARIABLE}=1, or candle -arch x64 -d{BIN_DIR_VARIABLE}=DIR and light \
             (docs/dist.md). -->",
            a(&d.package).replace("--", "- -")
        ),
    );
    line(
        0,
        r#"<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">"#,
    );
    line(
        1,
        &format!(
            r#"<Product Id="*" Name="{}" Language="1033" Version="{}" Manufacturer="{}" UpgradeCode="{}">"#,
            a(&d.product),
            a(&d.version),
            a(&d.manufacturer),
            d.upgrade_code.to_ascii_uppercase()
        ),
    );
    line(
        2,
        &format!(
            r#"<Package InstallerVersion="500" Compressed="yes" InstallScope="perMachine" Description="{} {}" Manufacturer="{}"/>"#,
            a(&d.product),
            a(&d.version),
            a(&d.manufacturer)
        ),
    );
    line(
        2,
        r#"<MajorUpgrade DowngradeErrorMessage="A newer version of [ProductName] is already installed."/>"#,
    );
    line(2, r#"<Media Id="1" Cabinet="product.cab" EmbedCab="yes"/>"#);

    line(2, r#"<Directory Id="TARGETDIR" Name="SourceDir">"#);
    line(3, r#"<Directory Id="ProgramFiles64Folder">"#);
    let depth = d.install_dir.len();
    for (level, segment) in d.install_dir.iter().enumerate() {
        let id = if level + 1 == depth {
            "INSTALLDIR".to_string()
        } else {
            format!("INSTALLDIR_{level}")
        };
        line(
            4 + level,
            &format!(r#"<Directory Id="{id}" Name="{}">"#, a(segment)),
        );
    }
    let inner = 4 + depth;
    for file in d.files.iter().filter(|f| f.directory == TargetDir::Install) {
        file_component(&mut line, inner, d, file);
    }
    if let Some(((first, first_value), rest)) = d.registry.split_first() {
        line(
            inner,
            &format!(r#"<Component Id="{REGISTRY_COMPONENT}" Guid="*" Win64="yes">"#),
        );
        line(
            inner + 1,
            &format!(
                r#"<RegistryKey Root="HKLM" Key="{}">"#,
                a(&d.registry_key())
            ),
        );
        line(
            inner + 2,
            &format!(
                r#"<RegistryValue Name="{}" Type="string" Value="{}" KeyPath="yes"/>"#,
                a(first),
                a(first_value)
            ),
        );
        for (name, value) in rest {
            line(
                inner + 2,
                &format!(
                    r#"<RegistryValue Name="{}" Type="string" Value="{}"/>"#,
                    a(name),
                    a(value)
                ),
            );
        }
        line(inner + 1, "</RegistryKey>");
        line(inner, "</Component>");
    }
    for level in (0..depth).rev() {
        line(4 + level, "</Directory>");
    }
    line(3, "</Directory>");
    let system: Vec<&FileSpec> = d
        .files
        .iter()
        .filter(|f| f.directory == TargetDir::System)
        .collect();
    if !system.is_empty() {
        line(3, r#"<Directory Id="System64Folder">"#);
        for file in system {
            file_component(&mut line, 4, d, file);
        }
        line(3, "</Directory>");
    }
    line(2, "</Directory>");

    line(2, r#"<Feature Id="Complete" Level="1">"#);
    for file in &d.files {
        line(
            3,
            &format!(r#"<ComponentRef Id="{}"/>"#, component_id(&file.id)),
        );
    }
    if !d.registry.is_empty() {
        line(3, &format!(r#"<ComponentRef Id="{REGISTRY_COMPONENT}"/>"#));
    }
    line(2, "</Feature>");

    if let Some(r) = &d.registration {
        for (id, command) in [
            (REGISTER_ACTION, &r.install),
            (UNREGISTER_ACTION, &r.uninstall),
        ] {
            line(
                2,
                &format!(
                    r#"<CustomAction Id="{id}" FileKey="{}" ExeCommand="{}" Execute="deferred" Impersonate="no" Return="check"/>"#,
                    r.file_id,
                    a(command)
                ),
            );
        }
    }
    line(2, "<InstallExecuteSequence>");
    line(0, &format!("<?ifdef var.{WIXL_VARIABLE}?>"));
    line(
        3,
        &format!(r#"<RemoveExistingProducts Sequence="{REMOVE_EXISTING_SEQUENCE}"/>"#),
    );
    line(0, "<?endif?>");
    if d.registration.is_some() {
        line(
            3,
            &format!(
                r#"<Custom Action="{REGISTER_ACTION}" Sequence="{REGISTER_SEQUENCE}">{}</Custom>"#,
                a(&register_condition())
            ),
        );
        line(
            3,
            &format!(
                r#"<Custom Action="{UNREGISTER_ACTION}" Sequence="{UNREGISTER_SEQUENCE}">{}</Custom>"#,
                a(&unregister_condition())
            ),
        );
    }
    line(2, "</InstallExecuteSequence>");
    line(1, "</Product>");
    line(0, "</Wix>");
    x
}

/// One component holding one file as its key path, with the service it runs if any.
fn file_component(
    line: &mut impl FnMut(usize, &str),
    indent: usize,
    d: &Descriptor,
    file: &FileSpec,
) {
    let a = |text: &str| xml_escape(text);
    line(
        indent,
        &format!(
            r#"<Component Id="{}" Guid="*" Win64="yes">"#,
            component_id(&file.id)
        ),
    );
    line(
        indent + 1,
        &format!(
            r#"<File Id="{}" Name="{}" Source="$(var.{BIN_DIR_VARIABLE})/{}" KeyPath="yes"/>"#,
            file.id,
            a(&file.name),
            a(&file.source)
        ),
    );
    if let Some(service) = d.service.as_ref().filter(|s| s.file_id == file.id) {
        line(
            indent + 1,
            &format!(
                r#"<ServiceInstall Id="{}" Name="{}" DisplayName="{}" Description="{}" Type="ownProcess" Start="{}" ErrorControl="normal" Arguments="{}" Vital="yes"/>"#,
                identifier(&format!("svc_{}", service.name)),
                a(&service.name),
                a(&service.display_name),
                a(&service.description),
                service.start.wix(),
                a(&service.arguments)
            ),
        );
        line(
            indent + 1,
            &format!(
                r#"<ServiceControl Id="{}" Name="{}" Stop="both" Remove="uninstall" Wait="yes"/>"#,
                identifier(&format!("svcctl_{}", service.name)),
                a(&service.name)
            ),
        );
    }
    if let Some(com) = d.com_server.as_ref().filter(|c| c.file_id == file.id) {
        // Plain registry values (wixl has no File/Class); the file stays the key path.
        let values = com.values();
        let mut keys: Vec<&str> = values.iter().map(|(key, _, _)| key.as_str()).collect();
        keys.dedup();
        for key in keys {
            line(
                indent + 1,
                &format!(r#"<RegistryKey Root="HKLM" Key="{}">"#, a(key)),
            );
            for (_, name, value) in values.iter().filter(|(k, _, _)| k == key) {
                let name = name.map(|n| format!(r#" Name="{}""#, a(n)));
                line(
                    indent + 2,
                    &format!(
                        r#"<RegistryValue{} Type="string" Value="{}"/>"#,
                        name.unwrap_or_default(),
                        a(value)
                    ),
                );
            }
            line(indent + 1, "</RegistryKey>");
        }
    }
    line(indent, "</Component>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn email_targets() -> Vec<(String, Vec<String>)> {
        vec![
            (
                "email_directory".to_string(),
                vec!["cdylib".to_string(), "rlib".to_string()],
            ),
            ("email-directory".to_string(), vec!["bin".to_string()]),
            ("provider".to_string(), vec!["test".to_string()]),
        ]
    }

    fn email_dist() -> Value {
        json!({
            "product": "winprov E-mail Directory",
            "manufacturer": "winprov",
            "upgrade-code": "FF1B07FA-D6E7-4A4E-8D91-8812D8222EF6",
            "files": [{"artifact": "bin"}, {"artifact": "cdylib"}],
            "service": {
                "file": "email-directory.exe",
                "name": "EmailDirectory",
                "display-name": "winprov E-mail Directory",
                "description": "Answers <NS_EMAIL> lookups & more",
                "start": "auto",
                "arguments": "service"
            },
            "registration": {
                "file": "email-directory.exe",
                "install": "install --log-file \"{log}\"",
                "uninstall": "uninstall --log-file \"{log}\"",
                "log": "winprov/email-directory/registration.log"
            },
            "registry": {"InstallDir": "[INSTALLDIR]", "Version": "[ProductVersion]"}
        })
    }

    fn email() -> Descriptor {
        parse("email-directory", "0.1.0", &email_dist(), &email_targets()).unwrap()
    }

    fn error(dist: &Value) -> String {
        let e = parse("email-directory", "0.1.0", dist, &email_targets()).unwrap_err();
        format!("{e:#}")
    }

    #[test]
    fn the_email_directory_descriptor_is_read() {
        let d = email();
        assert_eq!(d.upgrade_code, "ff1b07fa-d6e7-4a4e-8d91-8812d8222ef6");
        assert_eq!(d.install_dir, ["winprov", "winprov E-mail Directory"]);
        assert_eq!(d.files.len(), 2);
        assert_eq!(d.files[0].source, "email-directory.exe");
        assert_eq!(d.files[0].name, "email-directory.exe");
        assert_eq!(d.files[0].id, "email_directory.exe");
        assert_eq!(d.files[1].source, "email_directory.dll");
        assert_eq!(d.files[1].directory, TargetDir::Install);
        let service = d.service.as_ref().unwrap();
        assert_eq!(service.file_id, "email_directory.exe");
        assert_eq!(service.start, StartType::Auto);
        let r = d.registration.as_ref().unwrap();
        assert_eq!(
            r.install,
            r#"install --log-file "[CommonAppDataFolder]winprov\email-directory\registration.log""#
        );
        assert_eq!(d.msi_name(), "email-directory-0.1.0-x64.msi");
        assert_eq!(
            d.registry_key(),
            r"Software\winprov\winprov E-mail Directory"
        );
    }

    #[test]
    fn the_generated_source_has_the_expected_structure() {
        let x = wxs(&email());
        let expect = [
            r#"<Product Id="*" Name="winprov E-mail Directory" Language="1033" Version="0.1.0" Manufacturer="winprov" UpgradeCode="FF1B07FA-D6E7-4A4E-8D91-8812D8222EF6">"#,
            r#"InstallScope="perMachine""#,
            "<MajorUpgrade ",
            r#"<Directory Id="ProgramFiles64Folder">"#,
            r#"<Directory Id="INSTALLDIR_0" Name="winprov">"#,
            r#"<Directory Id="INSTALLDIR" Name="winprov E-mail Directory">"#,
            r#"<Component Id="c_email_directory.exe" Guid="*" Win64="yes">"#,
            r#"<File Id="email_directory.exe" Name="email-directory.exe" Source="$(var.CargoTargetBinDir)/email-directory.exe" KeyPath="yes"/>"#,
            r#"Name="EmailDirectory" DisplayName="winprov E-mail Directory" Description="Answers &lt;NS_EMAIL&gt; lookups &amp; more" Type="ownProcess" Start="auto" ErrorControl="normal" Arguments="service""#,
            r#"<ServiceControl Id="svcctl_EmailDirectory" Name="EmailDirectory" Stop="both" Remove="uninstall" Wait="yes"/>"#,
            r#"<RegistryKey Root="HKLM" Key="Software\winprov\winprov E-mail Directory">"#,
            r#"<RegistryValue Name="InstallDir" Type="string" Value="[INSTALLDIR]" KeyPath="yes"/>"#,
            r#"<RegistryValue Name="Version" Type="string" Value="[ProductVersion]"/>"#,
            r#"<ComponentRef Id="c_registry"/>"#,
            r#"<CustomAction Id="RegisterProvider" FileKey="email_directory.exe" ExeCommand="install --log-file &quot;[CommonAppDataFolder]winprov\email-directory\registration.log&quot;" Execute="deferred" Impersonate="no" Return="check"/>"#,
            r#"<Custom Action="RegisterProvider" Sequence="6401">NOT Installed AND NOT SKIPREGISTRATION</Custom>"#,
            r#"<Custom Action="UnregisterProvider" Sequence="2001">REMOVE~=&quot;ALL&quot; AND NOT SKIPREGISTRATION</Custom>"#,
            "<?ifdef var.WixlSequencing?>",
            r#"<RemoveExistingProducts Sequence="1401"/>"#,
        ];
        for fragment in expect {
            assert!(x.contains(fragment), "missing {fragment}\n{x}");
        }
        // Outside the shared subset, or what wixl misplaces.
        for forbidden in [
            "Before=",
            "After=",
            "SetProperty",
            "<UI",
            "WixVariable",
            "Execute=\"immediate\"",
            "Impersonate=\"yes\"",
            "System64Folder",
        ] {
            assert!(!x.contains(forbidden), "{forbidden}\n{x}");
        }
        for source in x.split("Source=\"").skip(1) {
            let path = &source[..source.find('"').unwrap()];
            assert!(!path.contains('\\'), "backslash in Source {path}");
        }
        // Every opened element is closed, in order.
        let mut open = Vec::new();
        for l in x.lines().map(str::trim) {
            if l.starts_with("<?") || l.starts_with("<!--") || l.ends_with("/>") {
                continue;
            }
            if let Some(name) = l.strip_prefix("</") {
                assert_eq!(open.pop(), Some(name.trim_end_matches('>').to_string()));
            } else if let Some(rest) = l.strip_prefix('<') {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                if !l.contains(&format!("</{name}>")) {
                    open.push(name);
                }
            }
        }
        assert!(open.is_empty(), "unclosed {open:?}");
    }

    #[test]
    fn a_tsp_like_descriptor_installs_a_renamed_dll_into_system32() {
        let dist = json!({
            "product": "winprov Simulated Line",
            "manufacturer": "winprov",
            "upgrade-code": "{0a6b2c1d-3e4f-4a5b-8c7d-9e0f1a2b3c4d}",
            "install-dir": "winprov/Simulated Line",
            "files": [
                {"artifact": "cdylib", "name": "simline.tsp", "directory": "system"},
                {"artifact": "bin"}
            ],
            "registration": {
                "file": "simline-admin.exe",
                "install": "add-provider simline.tsp",
                "uninstall": "remove-provider simline.tsp"
            }
        });
        let targets = vec![
            ("simline".to_string(), vec!["cdylib".to_string()]),
            ("simline-admin".to_string(), vec!["bin".to_string()]),
        ];
        let d = parse("simline", "1.2.3", &dist, &targets).unwrap();
        assert_eq!(d.files[0].source, "simline.dll");
        assert_eq!(d.files[0].name, "simline.tsp");
        assert_eq!(d.files[0].directory, TargetDir::System);
        assert!(d.service.is_none() && d.registry.is_empty());
        let x = wxs(&d);
        assert!(x.contains(
            "<Directory Id=\"System64Folder\">\n        <Component Id=\"c_simline.tsp\" Guid=\"*\" Win64=\"yes\">\n          <File Id=\"simline.tsp\" Name=\"simline.tsp\" Source=\"$(var.CargoTargetBinDir)/simline.dll\" KeyPath=\"yes\"/>"
        ), "{x}");
        assert!(x.contains(r#"<Directory Id="INSTALLDIR" Name="Simulated Line">"#));
        assert!(x.contains(r#"ExeCommand="add-provider simline.tsp""#));
        assert!(!x.contains("ServiceInstall") && !x.contains("RegistryKey"));
        assert_eq!(d.msi_name(), "simline-1.2.3-x64.msi");
    }

    fn wmi_targets() -> Vec<(String, Vec<String>)> {
        vec![
            (
                "directory_admin".to_string(),
                vec!["cdylib".to_string(), "rlib".to_string()],
            ),
            ("directory-admin".to_string(), vec!["bin".to_string()]),
        ]
    }

    fn wmi_dist() -> Value {
        json!({
            "product": "winprov Directory Admin",
            "manufacturer": "winprov",
            "upgrade-code": "5c0b8e1a-7d2f-4b6e-9a3c-1f4d2e6b8a90",
            "files": [{"artifact": "cdylib"}, {"artifact": "bin"}],
            "com-server": {
                "file": "directory_admin.dll",
                "clsid": "{715D6D12-24E0-4836-B6F6-0FBA71B04A73}",
                "threading-model": "Free",
                "description": "winprov Directory Admin WMI provider"
            }
        })
    }

    fn wmi(dist: &Value) -> Result<Descriptor> {
        parse("directory-admin", "0.1.0", dist, &wmi_targets())
    }

    /// The lines of the component of `file_id` in the generated source.
    fn component_lines(x: &str, file_id: &str) -> Vec<String> {
        x.lines()
            .map(str::trim)
            .skip_while(|l| *l != format!(r#"<Component Id="c_{file_id}" Guid="*" Win64="yes">"#))
            .take_while(|l| *l != "</Component>")
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_com_server_descriptor_is_read() {
        let d = wmi(&wmi_dist()).unwrap();
        let com = d.com_server.as_ref().unwrap();
        assert_eq!(com.file_id, "directory_admin.dll");
        assert_eq!(d.file(&com.file_id).unwrap().source, "directory_admin.dll");
        assert_eq!(com.clsid, "715d6d12-24e0-4836-b6f6-0fba71b04a73");
        assert_eq!(com.threading_model, ThreadingModel::Free);
        assert_eq!(
            com.inproc_key(),
            r"Software\Classes\CLSID\{715D6D12-24E0-4836-B6F6-0FBA71B04A73}\InprocServer32"
        );
        assert_eq!(com.server_value(), "[#directory_admin.dll]");
        assert_eq!(com.values().len(), 3);
        // The defaults: Both, no description (no value on the CLSID key itself).
        let mut dist = wmi_dist();
        let table = dist["com-server"].as_object_mut().unwrap();
        table.remove("threading-model");
        table.remove("description");
        let com = wmi(&dist).unwrap().com_server.unwrap();
        assert_eq!(com.threading_model, ThreadingModel::Both);
        assert_eq!(com.description, None);
        assert_eq!(
            com.values(),
            [
                (com.inproc_key(), None, "[#directory_admin.dll]".to_string()),
                (com.inproc_key(), Some("ThreadingModel"), "Both".to_string()),
            ]
        );
        assert!(email().com_server.is_none());
    }

    #[test]
    fn the_com_registration_is_in_the_dll_component() {
        let x = wxs(&wmi(&wmi_dist()).unwrap());
        let clsid_key = r"Software\Classes\CLSID\{715D6D12-24E0-4836-B6F6-0FBA71B04A73}";
        assert_eq!(
            component_lines(&x, "directory_admin.dll"),
            [
                r#"<Component Id="c_directory_admin.dll" Guid="*" Win64="yes">"#.to_string(),
                r#"<File Id="directory_admin.dll" Name="directory_admin.dll" Source="$(var.CargoTargetBinDir)/directory_admin.dll" KeyPath="yes"/>"#.to_string(),
                format!(r#"<RegistryKey Root="HKLM" Key="{clsid_key}">"#),
                r#"<RegistryValue Type="string" Value="winprov Directory Admin WMI provider"/>"#.to_string(),
                "</RegistryKey>".to_string(),
                format!(r#"<RegistryKey Root="HKLM" Key="{clsid_key}\InprocServer32">"#),
                r#"<RegistryValue Type="string" Value="[#directory_admin.dll]"/>"#.to_string(),
                r#"<RegistryValue Name="ThreadingModel" Type="string" Value="Free"/>"#.to_string(),
                "</RegistryKey>".to_string(),
            ]
        );
        // The exe's component has none of it, and there is no separate registry component.
        assert!(
            !component_lines(&x, "directory_admin.exe")
                .iter()
                .any(|l| l.contains("Registry"))
        );
        assert!(!x.contains(REGISTRY_COMPONENT), "{x}");
        assert_eq!(x.matches("KeyPath=").count(), 2, "{x}");
        // Without a description the CLSID key gets no value of its own.
        let mut dist = wmi_dist();
        dist["com-server"]
            .as_object_mut()
            .unwrap()
            .remove("description");
        let x = wxs(&wmi(&dist).unwrap());
        assert!(!x.contains(&format!(r#"Key="{clsid_key}">"#)), "{x}");
        assert_eq!(x.matches("<RegistryValue ").count(), 2, "{x}");
        // No COM server, no CLSID.
        assert!(!wxs(&email()).contains("CLSID"));
    }

    #[test]
    fn bad_com_servers_are_rejected() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "progid",
                json!("Winprov.X"),
                "unknown key `progid` in com-server",
            ),
            ("file", json!("other.dll"), "names no installed file"),
            ("file", json!("directory-admin.exe"), "is not a DLL"),
            (
                "clsid",
                json!("715d6d12-24e0-4836-b6f6"),
                "com-server: `clsid` `715d6d12-24e0-4836-b6f6` is not a GUID",
            ),
            (
                "clsid",
                json!("00000000-0000-0000-0000-000000000000"),
                "is not a GUID",
            ),
            (
                "threading-model",
                json!("both"),
                "(Apartment, Free, Both or Neutral)",
            ),
            (
                "threading-model",
                json!("Single"),
                "`threading-model = \"Single\"`",
            ),
            (
                "description",
                json!("a [ProductName] b"),
                "must be plain text",
            ),
            ("description", json!(""), "`description` is empty"),
        ];
        for (key, value, message) in cases {
            let mut dist = wmi_dist();
            dist["com-server"][key] = value.clone();
            let e = format!("{:#}", wmi(&dist).unwrap_err());
            assert!(e.contains(message), "{key} = {value}: {e}");
        }
        for key in ["file", "clsid"] {
            let mut dist = wmi_dist();
            dist["com-server"].as_object_mut().unwrap().remove(key);
            let e = format!("{:#}", wmi(&dist).unwrap_err());
            assert!(
                e.contains(&format!("com-server: `{key}` is missing")),
                "{e}"
            );
        }
        // A cdylib installed under another extension is not a COM server DLL.
        let mut dist = wmi_dist();
        dist["files"][0]["name"] = json!("directory_admin.tsp");
        dist["com-server"]["file"] = json!("directory_admin.tsp");
        assert!(format!("{:#}", wmi(&dist).unwrap_err()).contains("is not a DLL"));
        let mut dist = wmi_dist();
        dist["com-server"] = json!("directory_admin.dll");
        assert!(format!("{:#}", wmi(&dist).unwrap_err()).contains("com-server must be a table"));
    }

    #[test]
    fn xml_is_escaped() {
        assert_eq!(
            xml_escape(r#"a&b<c>"d"'e'"#),
            "a&amp;b&lt;c&gt;&quot;d&quot;&apos;e&apos;"
        );
        let mut dist = email_dist();
        dist["product"] = json!("R&D <\"Tools\">");
        // Not a valid folder name, so the folder is named separately.
        assert!(error(&dist).contains("which Windows file names cannot"));
        dist["install-dir"] = json!("winprov/Tools");
        let x = wxs(&parse("email-directory", "0.1.0", &dist, &email_targets()).unwrap());
        assert!(
            x.contains(r#"Name="R&amp;D &lt;&quot;Tools&quot;&gt;""#),
            "{x}"
        );
        assert!(!x.contains("R&D"));
    }

    #[test]
    fn missing_fields_are_rejected() {
        for key in ["product", "manufacturer", "upgrade-code", "files"] {
            let mut dist = email_dist();
            dist.as_object_mut().unwrap().remove(key);
            assert!(
                error(&dist).contains(&format!("`{key}` is missing")),
                "{key}: {}",
                error(&dist)
            );
        }
        let mut dist = email_dist();
        dist["service"].as_object_mut().unwrap().remove("name");
        assert!(error(&dist).contains("service: `name` is missing"));
        let mut dist = email_dist();
        dist["registration"]
            .as_object_mut()
            .unwrap()
            .remove("uninstall");
        assert!(error(&dist).contains("`uninstall` is missing"));
        let mut dist = email_dist();
        dist["files"] = json!([]);
        assert!(error(&dist).contains("`files` is empty"));
    }

    #[test]
    fn bad_descriptors_are_rejected() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("upgrade-code", json!("not-a-guid"), "is not a GUID"),
            (
                "upgrade-code",
                json!("00000000-0000-0000-0000-000000000000"),
                "is not a GUID",
            ),
            ("product", json!(""), "`product` is empty"),
            ("product", json!(3), "must be a string"),
            ("product", json!("a $(var.X)"), "would expand"),
            ("colour", json!("blue"), "unknown key `colour`"),
            (
                "files",
                json!([{"artifact": "bin"}, {"artifact": "bin"}]),
                "would both have the id `email_directory.exe`",
            ),
            (
                "files",
                json!([{"artifact": "bin"}, {"artifact": "cdylib", "name": "email_directory.exe"}]),
                "would both have the id",
            ),
            (
                "files",
                json!([{"artifact": "staticlib"}]),
                "(bin or cdylib)",
            ),
            (
                "files",
                json!([{"artifact": "bin", "target": "nope"}]),
                "no bin target `nope`",
            ),
            (
                "files",
                json!([{"artifact": "bin", "name": "a\\b.exe"}]),
                "contains '\\\\'",
            ),
            (
                "files",
                json!([{"artifact": "bin", "directory": "windows"}]),
                "(install or system)",
            ),
            (
                "files",
                json!([{"artifact": "bin", "bogus": 1}]),
                "unknown key `bogus`",
            ),
        ];
        for (key, value, message) in cases {
            let mut dist = email_dist();
            dist[key] = value.clone();
            let e = error(&dist);
            assert!(e.contains(message), "{key} = {value}: {e}");
        }
        let mut dist = email_dist();
        dist["service"]["file"] = json!("email_directory.dll");
        assert!(error(&dist).contains("is not an executable"));
        let mut dist = email_dist();
        dist["registration"]["file"] = json!("other.exe");
        assert!(error(&dist).contains("names no installed file"));
        let mut dist = email_dist();
        dist["registration"].as_object_mut().unwrap().remove("log");
        assert!(error(&dist).contains("uses {log} but no `log`"));
        let mut dist = email_dist();
        dist["service"]["start"] = json!("boot");
        assert!(error(&dist).contains("auto, demand or disabled"));
        let several = vec![
            ("a".to_string(), vec!["bin".to_string()]),
            ("b".to_string(), vec!["bin".to_string()]),
        ];
        let e = parse("p", "0.1.0", &json!({"product": "P", "manufacturer": "M", "upgrade-code": "ff1b07fa-d6e7-4a4e-8d91-8812d8222ef6", "files": [{"artifact": "bin"}]}), &several).unwrap_err();
        assert!(format!("{e:#}").contains("several bin targets (a, b)"));
    }

    #[test]
    fn a_dll_size_budget_is_read() {
        assert_eq!(email().max_dll_bytes, None);
        assert_eq!(email().dll(), Some("email_directory.dll"));
        let mut dist = email_dist();
        dist["max-dll-bytes"] = json!(409_600);
        let d = parse("email-directory", "0.1.0", &dist, &email_targets()).unwrap();
        assert_eq!(d.max_dll_bytes, Some(409_600));
        for bad in [json!(0), json!(-1), json!(1.5), json!("400 KB")] {
            dist["max-dll-bytes"] = bad.clone();
            assert!(
                error(&dist).contains("`max-dll-bytes` must be a positive whole number"),
                "{bad}: {}",
                error(&dist)
            );
        }
        // A budget for a DLL the package does not install is a mistake.
        dist["max-dll-bytes"] = json!(409_600);
        dist["files"] = json!([{"artifact": "bin"}]);
        dist.as_object_mut().unwrap().remove("service");
        dist.as_object_mut().unwrap().remove("registration");
        assert!(
            error(&dist).contains("no file is the DLL"),
            "{}",
            error(&dist)
        );
        dist.as_object_mut().unwrap().remove("max-dll-bytes");
        let exe_only = parse("email-directory", "0.1.0", &dist, &email_targets()).unwrap();
        assert_eq!(exe_only.dll(), None);
    }

    #[test]
    fn the_expected_wine_registration_error_is_read() {
        assert_eq!(email().wine_registration_error, None);
        let mut dist = email_dist();
        dist["wine"] = json!({"registration-error": "WSCInstallNameSpaceEx"});
        let d = parse("email-directory", "0.1.0", &dist, &email_targets()).unwrap();
        assert_eq!(
            d.wine_registration_error.as_deref(),
            Some("WSCInstallNameSpaceEx")
        );
        dist["wine"] = json!({"registration-eror": "x"});
        assert!(error(&dist).contains("unknown key `registration-eror` in wine"));
        dist["wine"] = json!({"registration-error": ""});
        assert!(error(&dist).contains("`registration-error` is empty"));
        dist["wine"] = json!({"registration-error": "x"});
        dist.as_object_mut().unwrap().remove("registration");
        assert!(
            error(&dist).contains("there is no [..dist.registration]"),
            "{}",
            error(&dist)
        );
    }

    #[test]
    fn versions_must_fit_msi() {
        for good in ["0.1.0", "1.2.3", "255.255.65535"] {
            check_version(good).unwrap();
        }
        for bad in [
            "0.1",
            "0.1.0-alpha.1",
            "256.0.0",
            "1.2.65536",
            "1.2.3.4",
            "a.b.c",
        ] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
        assert!(
            parse(
                "email-directory",
                "0.1.0-rc.1",
                &email_dist(),
                &email_targets()
            )
            .is_err()
        );
        assert_eq!(email().with_version("0.1.1").unwrap().version, "0.1.1");
        assert!(email().with_version("x").is_err());
    }

    #[test]
    fn the_descriptor_is_found_in_cargo_metadata() {
        let package = json!({
            "name": "email-directory",
            "version": "0.1.0",
            "targets": [
                {"name": "email_directory", "kind": ["cdylib", "rlib"]},
                {"name": "email-directory", "kind": ["bin"]}
            ],
            "metadata": {"winprov": {"dist": email_dist()}}
        });
        assert_eq!(Descriptor::from_package(&package).unwrap(), Some(email()));
        let plain = json!({"name": "x", "version": "0.1.0", "targets": [], "metadata": null});
        assert_eq!(Descriptor::from_package(&plain).unwrap(), None);
    }

    #[test]
    fn identifiers_are_msi_identifiers() {
        assert_eq!(identifier("email-directory.exe"), "email_directory.exe");
        assert_eq!(identifier("7zip.dll"), "_7zip.dll");
        assert_eq!(identifier("a b+c.tsp"), "a_b_c.tsp");
    }
}
