//! The installer descriptor (`[package.metadata.winprov.dist]` in Cargo.toml, read by
//! `cargo xtask dist`) agrees with `src/config.rs`: the MSI puts the DLL in the system
//! directory under the name `line-simulator install` registers, and the registration commands
//! leave that file to the MSI and their outcome in the log.
#![forbid(unsafe_code)]

use line_simulator::config::{BUILT_DLL_NAME, PROVIDER_NAME, TSP_FILE_NAME};

fn dist() -> toml::Table {
    let manifest: toml::Table = include_str!("../Cargo.toml").parse().expect("Cargo.toml");
    manifest["package"]["metadata"]["winprov"]["dist"]
        .as_table()
        .expect("[package.metadata.winprov.dist]")
        .clone()
}

#[test]
fn the_installer_puts_the_tsp_where_install_registers_it() {
    let dist = dist();
    assert_eq!(dist["product"].as_str(), Some(PROVIDER_NAME));
    let files = dist["files"].as_array().expect("[[...dist.files]]");
    let tsp = files
        .iter()
        .find(|file| file["artifact"].as_str() == Some("cdylib"))
        .expect("the provider DLL");
    assert_eq!(tsp["name"].as_str(), Some(TSP_FILE_NAME));
    assert_eq!(tsp["directory"].as_str(), Some("system"));
    // The cdylib is built as line_simulator.dll; the installed name is the .tsp.
    assert_eq!(BUILT_DLL_NAME, "line_simulator.dll");
}

#[test]
fn the_registration_commands_leave_the_file_to_the_msi_and_evidence_in_the_log() {
    let dist = dist();
    let registration = dist["registration"]
        .as_table()
        .expect("[...dist.registration]");
    assert_eq!(registration["file"].as_str(), Some("line-simulator.exe"));
    for command in ["install", "uninstall"] {
        let arguments = registration[command].as_str().expect("arguments");
        assert!(arguments.starts_with(command), "{arguments}");
        assert!(arguments.contains("--registration-only"), "{arguments}");
        assert!(arguments.contains("--log-file \"{log}\""), "{arguments}");
    }
}
