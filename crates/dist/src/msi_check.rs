//! Opens a built MSI with the `msi` crate and checks it, table by table, against the
//! descriptor it was generated from: wixl drops rows it does not support with only a warning,
//! so what the source says is not proof of what the package holds.

use crate::installer::{
    self, Descriptor, REGISTER_ACTION, REGISTRY_COMPONENT, SKIP_REGISTRATION, UNREGISTER_ACTION,
};
use anyhow::{Context, Result, bail};
use msi::{Package, Select, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

/// Custom action type bits (msidbCustomActionType*).
const TYPE_EXE_FROM_FILE: i32 = 18; // msidbCustomActionTypeExe (2) + SourceFile (16)
const TYPE_CONTINUE: i32 = 0x40;
const TYPE_ROLLBACK: i32 = 0x100;
const TYPE_COMMIT: i32 = 0x200;
const TYPE_IN_SCRIPT: i32 = 0x400;
const TYPE_NO_IMPERSONATE: i32 = 0x800;
/// Component attribute msidbComponentAttributes64bit.
const COMPONENT_64BIT: i32 = 0x100;
/// ServiceControl events.
const EVENT_START_ANY: i32 = 0x01 | 0x10;
const EVENT_UNINSTALL_STOP: i32 = 0x20;
const EVENT_UNINSTALL_DELETE: i32 = 0x80;
/// Registry root HKLM.
pub(crate) const ROOT_HKLM: i32 = 2;

pub(crate) type Row = BTreeMap<String, Value>;

pub(crate) fn rows(package: &mut Package<File>, table: &str) -> Result<Vec<Row>> {
    if !package.has_table(table) {
        return Ok(Vec::new());
    }
    let selected = package
        .select_rows(Select::table(table))
        .with_context(|| format!("reading table {table}"))?;
    let columns: Vec<String> = selected
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let mut out = Vec::new();
    for row in selected {
        let mut map = Row::new();
        for column in &columns {
            map.insert(column.clone(), row[column.as_str()].clone());
        }
        out.push(map);
    }
    Ok(out)
}

pub(crate) fn text(row: &Row, column: &str) -> String {
    row.get(column)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(crate) fn int(row: &Row, column: &str) -> Option<i32> {
    row.get(column).and_then(Value::as_int)
}

/// The long name of a `short|long` file name.
fn long_name(name: &str) -> &str {
    name.rsplit('|').next().unwrap_or(name)
}

/// Checks the MSI at `path`; `bin_dir` holds the artifacts it was built from. Returns one line
/// per table checked; fails listing every difference.
pub fn check(path: &Path, d: &Descriptor, bin_dir: &Path) -> Result<Vec<String>> {
    let mut package =
        msi::open(path).with_context(|| format!("opening {} as an MSI", path.display()))?;
    let mut problems: Vec<String> = Vec::new();
    let mut checked: Vec<String> = Vec::new();
    let mut expect = |ok: bool, problem: String| {
        if !ok {
            problems.push(problem);
        }
    };

    // Summary information.
    let arch = package.summary_info().arch().map(str::to_string);
    expect(
        arch.as_deref() == Some("x64"),
        format!("summary information: platform {arch:?}, expected x64"),
    );
    checked.push("summary: x64".to_string());

    // Property.
    let properties: BTreeMap<String, String> = rows(&mut package, "Property")?
        .iter()
        .map(|r| (text(r, "Property"), text(r, "Value")))
        .collect();
    let property = |name: &str| properties.get(name).cloned().unwrap_or_default();
    expect(
        property("ProductVersion") == d.version,
        format!(
            "ProductVersion {:?}, expected the crate version {:?}",
            property("ProductVersion"),
            d.version
        ),
    );
    let upgrade_code = property("UpgradeCode");
    expect(
        installer::check_guid(&upgrade_code, "UpgradeCode")
            .ok()
            .as_deref()
            == Some(d.upgrade_code.as_str()),
        format!(
            "UpgradeCode {upgrade_code:?}, expected the descriptor's {}",
            d.upgrade_code
        ),
    );
    expect(
        property("ProductName") == d.product && property("Manufacturer") == d.manufacturer,
        format!(
            "ProductName/Manufacturer {:?}/{:?}, expected {:?}/{:?}",
            property("ProductName"),
            property("Manufacturer"),
            d.product,
            d.manufacturer
        ),
    );
    expect(
        property("ALLUSERS") == "1",
        "ALLUSERS is not 1: not a per-machine package".to_string(),
    );
    checked.push(format!(
        "Property: version {}, upgrade code {}, per-machine",
        d.version, d.upgrade_code
    ));

    // Upgrade: MajorUpgrade's detection rows carry the same code.
    let upgrades = rows(&mut package, "Upgrade")?;
    expect(
        !upgrades.is_empty()
            && upgrades.iter().all(|r| {
                installer::check_guid(&text(r, "UpgradeCode"), "UpgradeCode")
                    .ok()
                    .as_deref()
                    == Some(d.upgrade_code.as_str())
            }),
        format!(
            "Upgrade table: {} rows, not all with the upgrade code",
            upgrades.len()
        ),
    );
    checked.push(format!("Upgrade: {} rows", upgrades.len()));

    // Component: every component has a key path and is 64-bit.
    let components = rows(&mut package, "Component")?;
    let component_dir: BTreeMap<String, String> = components
        .iter()
        .map(|r| (text(r, "Component"), text(r, "Directory_")))
        .collect();
    for c in &components {
        let id = text(c, "Component");
        expect(
            !text(c, "KeyPath").is_empty(),
            format!("component {id} has no key path"),
        );
        expect(
            int(c, "Attributes").is_some_and(|a| a & COMPONENT_64BIT != 0),
            format!("component {id} is not 64-bit"),
        );
        expect(
            text(c, "ComponentId").starts_with('{'),
            format!("component {id} has no GUID"),
        );
    }
    let expected_components = d.files.len() + usize::from(!d.registry.is_empty());
    expect(
        components.len() == expected_components,
        format!(
            "{} components, expected {expected_components}",
            components.len()
        ),
    );
    checked.push(format!(
        "Component: {} rows, each 64-bit with a key path",
        components.len()
    ));

    // File: the right payloads, in the right directories, as their components' key paths.
    let files = rows(&mut package, "File")?;
    expect(
        files.len() == d.files.len(),
        format!("{} File rows, expected {}", files.len(), d.files.len()),
    );
    for spec in &d.files {
        let Some(row) = files.iter().find(|r| text(r, "File") == spec.id) else {
            expect(false, format!("no File row {}", spec.id));
            continue;
        };
        expect(
            long_name(&text(row, "FileName")) == spec.name,
            format!(
                "File {}: name {:?}, expected {:?}",
                spec.id,
                text(row, "FileName"),
                spec.name
            ),
        );
        let component = text(row, "Component_");
        expect(
            component == installer::component_id(&spec.id),
            format!("File {} in component {component}", spec.id),
        );
        let directory = component_dir.get(&component).cloned().unwrap_or_default();
        expect(
            directory == spec.directory.directory_id(),
            format!(
                "File {} installed to {directory}, expected {}",
                spec.id,
                spec.directory.directory_id()
            ),
        );
        let key_path = components
            .iter()
            .find(|c| text(c, "Component") == component)
            .map(|c| text(c, "KeyPath"));
        expect(
            key_path.as_deref() == Some(spec.id.as_str()),
            format!("component {component}: key path {key_path:?}, expected the file"),
        );
        let built = bin_dir.join(&spec.source);
        let size = std::fs::metadata(&built)
            .with_context(|| format!("{} (the payload of {})", built.display(), spec.id))?
            .len();
        expect(
            int(row, "FileSize").map(i64::from) == Some(size as i64),
            format!(
                "File {}: size {:?}, but {} has {size} bytes",
                spec.id,
                int(row, "FileSize"),
                built.display()
            ),
        );
    }
    checked.push(format!(
        "File: {}",
        d.files
            .iter()
            .map(|f| format!("{} -> [{}]{}", f.source, f.directory.directory_id(), f.name))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // Registry: the descriptor's values, and the COM server's in the DLL's own component.
    let registry = rows(&mut package, "Registry")?;
    let com_values = d
        .com_server
        .as_ref()
        .map(|c| c.values())
        .unwrap_or_default();
    let expected_rows = d.registry.len() + com_values.len();
    expect(
        registry.len() == expected_rows,
        format!("{} Registry rows, expected {expected_rows}", registry.len()),
    );
    for (name, value) in &d.registry {
        let found = registry.iter().any(|r| {
            int(r, "Root") == Some(ROOT_HKLM)
                // wixl writes the key with a trailing backslash, WiX without.
                && text(r, "Key").trim_end_matches('\\') == d.registry_key()
                && text(r, "Name") == *name
                && text(r, "Value") == *value
                && text(r, "Component_") == REGISTRY_COMPONENT
        });
        expect(
            found,
            format!(
                "no Registry row HKLM\\{}\\{name} = {value}",
                d.registry_key()
            ),
        );
    }
    if let Some(com) = &d.com_server {
        let component = installer::component_id(&com.file_id);
        for (key, name, value) in &com_values {
            let found = registry.iter().any(|r| {
                int(r, "Root") == Some(ROOT_HKLM)
                    && text(r, "Key").trim_end_matches('\\') == key
                    // The default value: a NULL Name.
                    && text(r, "Name") == name.unwrap_or_default()
                    && text(r, "Value") == *value
                    && text(r, "Component_") == component
            });
            expect(
                found,
                format!(
                    "no Registry row HKLM\\{key}\\{} = {value} in component {component}",
                    name.unwrap_or("(default)")
                ),
            );
        }
        checked.push(format!(
            "Registry: COM server {{{}}} -> {}, ThreadingModel {}",
            com.clsid.to_ascii_uppercase(),
            com.server_value(),
            com.threading_model.name()
        ));
    }
    checked.push(format!("Registry: {} values", registry.len()));

    // ServiceInstall / ServiceControl.
    let installs = rows(&mut package, "ServiceInstall")?;
    let controls = rows(&mut package, "ServiceControl")?;
    match &d.service {
        Some(service) => {
            let component = installer::component_id(&service.file_id);
            let ok = installs.len() == 1
                && installs.iter().all(|r| {
                    text(r, "Name") == service.name
                        && text(r, "DisplayName") == service.display_name
                        && int(r, "StartType") == Some(service.start.msi())
                        && int(r, "ServiceType") == Some(0x10)
                        && text(r, "Arguments") == service.arguments
                        && text(r, "Component_") == component
                });
            expect(
                ok,
                format!("ServiceInstall rows {installs:?} do not match {service:?}"),
            );
            let ok = controls.len() == 1
                && controls.iter().all(|r| {
                    let event = int(r, "Event").unwrap_or_default();
                    text(r, "Name") == service.name
                        && event & EVENT_UNINSTALL_STOP != 0
                        && event & EVENT_UNINSTALL_DELETE != 0
                        && event & EVENT_START_ANY == 0
                        && text(r, "Component_") == component
                });
            expect(
                ok,
                format!(
                    "ServiceControl rows {controls:?}: expected stop + delete on uninstall, no start"
                ),
            );
            checked.push(format!(
                "ServiceInstall/ServiceControl: {} ({}), stopped and deleted on uninstall",
                service.name,
                service.start.wix()
            ));
        }
        None => expect(
            installs.is_empty() && controls.is_empty(),
            "service rows without a service in the descriptor".to_string(),
        ),
    }

    // CustomAction and InstallExecuteSequence.
    let actions = rows(&mut package, "CustomAction")?;
    let sequence: BTreeMap<String, (i32, String)> = rows(&mut package, "InstallExecuteSequence")?
        .iter()
        .map(|r| {
            (
                text(r, "Action"),
                (int(r, "Sequence").unwrap_or(-1), text(r, "Condition")),
            )
        })
        .collect();
    let at = |action: &str| sequence.get(action).map(|(s, _)| *s);
    let order =
        |first: &str, second: &str| matches!((at(first), at(second)), (Some(a), Some(b)) if a < b);
    expect(
        order("InstallValidate", "RemoveExistingProducts")
            && order("RemoveExistingProducts", "InstallInitialize"),
        format!(
            "RemoveExistingProducts at {:?}: expected between InstallValidate and InstallInitialize",
            at("RemoveExistingProducts")
        ),
    );
    match &d.registration {
        Some(r) => {
            expect(
                actions.len() == 2,
                format!("{} CustomAction rows, expected 2", actions.len()),
            );
            for (id, command) in [
                (REGISTER_ACTION, &r.install),
                (UNREGISTER_ACTION, &r.uninstall),
            ] {
                let Some(row) = actions.iter().find(|a| text(a, "Action") == id) else {
                    expect(false, format!("no CustomAction {id}"));
                    continue;
                };
                let kind = int(row, "Type").unwrap_or_default();
                expect(
                    kind & 0x3f == TYPE_EXE_FROM_FILE,
                    format!("{id}: type {kind} does not run an installed exe"),
                );
                expect(
                    kind & TYPE_IN_SCRIPT != 0 && kind & (TYPE_ROLLBACK | TYPE_COMMIT) == 0,
                    format!("{id}: type {kind} is not deferred"),
                );
                expect(
                    kind & TYPE_NO_IMPERSONATE != 0,
                    format!("{id}: type {kind} impersonates the user"),
                );
                expect(
                    kind & TYPE_CONTINUE == 0,
                    format!("{id}: type {kind} ignores the exit code"),
                );
                expect(
                    text(row, "Source") == r.file_id && text(row, "Target") == *command,
                    format!(
                        "{id}: runs {} {:?}, expected {} {command:?}",
                        text(row, "Source"),
                        text(row, "Target"),
                        r.file_id
                    ),
                );
                let condition = sequence.get(id).map(|(_, c)| c.clone()).unwrap_or_default();
                expect(
                    condition.contains(SKIP_REGISTRATION),
                    format!("{id}: condition {condition:?} ignores {SKIP_REGISTRATION}"),
                );
            }
            expect(
                order("InstallFiles", REGISTER_ACTION)
                    && order("PublishProduct", REGISTER_ACTION)
                    && order(REGISTER_ACTION, "InstallFinalize")
                    && (d.service.is_none() || order("InstallServices", REGISTER_ACTION)),
                format!(
                    "{REGISTER_ACTION} at {:?}: expected after the files, services and \
                     PublishProduct, before InstallFinalize",
                    at(REGISTER_ACTION)
                ),
            );
            expect(
                order("InstallInitialize", UNREGISTER_ACTION)
                    && order(UNREGISTER_ACTION, "RemoveFiles")
                    && order(UNREGISTER_ACTION, "RemoveRegistryValues")
                    && (d.service.is_none() || order("DeleteServices", UNREGISTER_ACTION)),
                format!(
                    "{UNREGISTER_ACTION} at {:?}: expected after the services stop, before \
                     files and values go",
                    at(UNREGISTER_ACTION)
                ),
            );
            checked.push(format!(
                "CustomAction: {REGISTER_ACTION} at {:?}, {UNREGISTER_ACTION} at {:?}, \
                 deferred, no impersonation",
                at(REGISTER_ACTION),
                at(UNREGISTER_ACTION)
            ));
        }
        None => expect(
            actions.is_empty(),
            "custom actions without registration commands".to_string(),
        ),
    }
    checked.push(format!(
        "InstallExecuteSequence: RemoveExistingProducts at {:?}",
        at("RemoveExistingProducts")
    ));

    if !problems.is_empty() {
        bail!(
            "{} does not match its descriptor:\n  - {}",
            path.display(),
            problems.join("\n  - ")
        );
    }
    Ok(checked)
}
