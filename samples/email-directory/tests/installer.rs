//! The installer descriptor (`[package.metadata.winprov.dist]` in Cargo.toml, read by
//! `cargo xtask dist`) names the service the way `src/identity.rs` does: the MSI creates the
//! service, the executable runs and deletes it under that name.
#![forbid(unsafe_code)]

use email_directory::identity;

fn dist() -> toml::Table {
    let manifest: toml::Table = include_str!("../Cargo.toml").parse().expect("Cargo.toml");
    manifest["package"]["metadata"]["winprov"]["dist"]
        .as_table()
        .expect("[package.metadata.winprov.dist]")
        .clone()
}

#[test]
fn the_installer_service_is_the_identity_service() {
    let dist = dist();
    let service = dist["service"].as_table().expect("[...dist.service]");
    assert_eq!(service["name"].as_str(), Some(identity::SERVICE_NAME));
    assert_eq!(
        service["display-name"].as_str(),
        Some(identity::SERVICE_DISPLAY_NAME)
    );
    assert_eq!(
        service["description"].as_str(),
        Some(identity::SERVICE_DESCRIPTION)
    );
    // `install` creates the service with these arguments when run by hand.
    assert_eq!(service["arguments"].as_str(), Some("service"));
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
