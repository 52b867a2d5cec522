//! The installer descriptor (`[package.metadata.winprov.dist]` in Cargo.toml, read by
//! `cargo xtask dist`) registers the COM class `src/identity.rs` names, and the MOF the
//! registration command compiles is the one checked in for administrators who use `mofcomp`.
//!
//! When the classes or the registration change on purpose, rewrite the checked-in MOF with
//! `WINPROV_BLESS=1 cargo test -p directory-admin --test installer` and review the diff.
#![forbid(unsafe_code)]

use directory_admin::classes::mof;
use directory_admin::identity;
use std::path::PathBuf;

fn dist() -> toml::Table {
    let manifest: toml::Table = include_str!("../Cargo.toml").parse().expect("Cargo.toml");
    manifest["package"]["metadata"]["winprov"]["dist"]
        .as_table()
        .expect("[package.metadata.winprov.dist]")
        .clone()
}

#[test]
fn the_installer_registers_the_identity_clsid() {
    let dist = dist();
    let com = dist["com-server"].as_table().expect("[...dist.com-server]");
    let clsid = com["clsid"].as_str().expect("clsid");
    assert_eq!(
        clsid.to_ascii_uppercase(),
        format!("{:?}", identity::CLSID).to_ascii_uppercase(),
        "the descriptor's CLSID is not identity::CLSID"
    );
    assert_eq!(com["file"].as_str(), Some("directory_admin.dll"));
    // WMI loads providers into multithreaded hosts.
    assert_eq!(com["threading-model"].as_str(), Some("Both"));
}

#[test]
fn the_registration_commands_leave_evidence() {
    let dist = dist();
    let registration = dist["registration"]
        .as_table()
        .expect("[...dist.registration]");
    for command in ["install", "uninstall"] {
        let arguments = registration[command].as_str().expect("arguments");
        assert!(arguments.starts_with(command), "{arguments}");
        assert!(arguments.contains("--log-file \"{log}\""), "{arguments}");
    }
}

/// Compares `text` with the checked-in file `name` (rewrites it under `WINPROV_BLESS=1`).
fn golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    if std::env::var_os("WINPROV_BLESS").is_some() {
        std::fs::write(&path, text).expect("writing the MOF");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if let Some((line, (want, got))) = checked_in
        .lines()
        .zip(text.lines())
        .enumerate()
        .find(|(_, (want, got))| want != got)
    {
        panic!(
            "{name} line {}: checked in `{want}`, the classes write `{got}` \
             (WINPROV_BLESS=1 rewrites it)",
            line + 1
        );
    }
    assert_eq!(
        checked_in, text,
        "{name} differs in length from the MOF the classes write (WINPROV_BLESS=1 rewrites it)"
    );
}

#[test]
fn the_checked_in_mof_is_what_the_classes_write() {
    let mof = mof();
    golden("directory-admin.mof", &mof.install().expect("install MOF"));
    golden(
        "directory-admin.uninstall.mof",
        &mof.uninstall().expect("uninstall MOF"),
    );
}
