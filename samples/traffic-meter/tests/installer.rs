//! The installer descriptor (`[package.metadata.winprov.dist]` in Cargo.toml, read by `cargo
//! xtask dist`) agrees with `src/identity.rs`: the MSI puts the DLL in the system directory
//! under the name the default catalog path names, and the registration commands leave that
//! file to the MSI and their outcome in the log.
#![forbid(unsafe_code)]

use traffic_meter::identity::{DEFAULT_DLL_PATH, DLL_FILE_NAME, PRODUCT_NAME};

fn dist() -> toml::Table {
    let manifest: toml::Table = include_str!("../Cargo.toml").parse().expect("Cargo.toml");
    manifest["package"]["metadata"]["winprov"]["dist"]
        .as_table()
        .expect("[package.metadata.winprov.dist]")
        .clone()
}

#[test]
fn the_installer_puts_the_dll_where_the_catalog_entry_points() {
    let dist = dist();
    assert_eq!(dist["product"].as_str(), Some(PRODUCT_NAME));
    let files = dist["files"].as_array().expect("[[...dist.files]]");
    let dll = files
        .iter()
        .find(|file| file["artifact"].as_str() == Some("cdylib"))
        .expect("the layer's DLL");
    assert_eq!(dll["directory"].as_str(), Some("system"));
    // Installed under its built name: traffic_meter.dll in System32.
    assert!(dll.get("name").is_none());
    let manifest: toml::Table = include_str!("../Cargo.toml").parse().unwrap();
    assert_eq!(
        format!("{}.dll", manifest["lib"]["name"].as_str().unwrap()),
        DLL_FILE_NAME
    );
    assert!(
        DEFAULT_DLL_PATH
            .to_ascii_lowercase()
            .ends_with(&format!("\\system32\\{DLL_FILE_NAME}")),
        "{DEFAULT_DLL_PATH}"
    );
}

#[test]
fn the_registration_commands_leave_the_file_to_the_msi_and_evidence_in_the_log() {
    let dist = dist();
    let registration = dist["registration"]
        .as_table()
        .expect("[...dist.registration]");
    assert_eq!(registration["file"].as_str(), Some("traffic-meter.exe"));
    for command in ["install", "uninstall"] {
        let arguments = registration[command].as_str().expect("arguments");
        assert!(arguments.starts_with(command), "{arguments}");
        assert!(arguments.contains("--registration-only"), "{arguments}");
        assert!(arguments.contains("--log-file \"{log}\""), "{arguments}");
    }
}
