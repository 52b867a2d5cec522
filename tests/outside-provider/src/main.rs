//! `outside-provider install|uninstall [--log-file PATH]`: registers the namespace in the
//! Winsock catalog or removes it; the MSI runs both, with a log file that records the outcome
//! (`install: ok`, `uninstall: failed: <reason>`).
#![forbid(unsafe_code)]

use outside_provider::{DOMAIN, NAMESPACE_IDENTIFIER, PROVIDER_ID};
use std::io::Write as _;
use std::path::Path;
use winprov_nspv2::{Domain, NamespaceInstall, ProviderLevel, ProviderType};

fn install() -> Result<(), String> {
    let description = NamespaceInstall {
        id: PROVIDER_ID,
        identifier: NAMESPACE_IDENTIFIER.to_string(),
        version: 1,
        provider_type: ProviderType::Service,
        supports_wildcard: false,
        domains: vec![Domain {
            name: DOMAIN.to_string(),
            level: ProviderLevel::Primary,
        }],
    };
    winprov_nspv2::install(&description)
        .map_err(|error| format!("registering the namespace in the Winsock catalog: {error}"))
}

fn uninstall() -> Result<(), String> {
    // A catalog that does not hold the id (an installation without registration, the MSI's
    // SKIPREGISTRATION) is `Uninstalled::NotInstalled`: nothing to remove, not a failure.
    winprov_nspv2::uninstall(PROVIDER_ID)
        .map(|_| ())
        .map_err(|error| format!("removing the namespace: {error}"))
}

/// Appends `<command>: ok` or `<command>: failed: <reason>` to `log`.
fn record(log: &Path, command: &str, outcome: &Result<(), String>) -> std::io::Result<()> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    match outcome {
        Ok(()) => writeln!(file, "{command}: ok"),
        Err(reason) => writeln!(file, "{command}: failed: {reason}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, log) = match args.as_slice() {
        [command] => (command.as_str(), None),
        [command, flag, log] if flag == "--log-file" => (command.as_str(), Some(log)),
        _ => ("", None),
    };
    let outcome = match command {
        "install" => install(),
        "uninstall" => uninstall(),
        _ => {
            eprintln!("usage: outside-provider install|uninstall [--log-file PATH]");
            std::process::exit(2);
        }
    };
    if let Some(log) = log
        && let Err(error) = record(Path::new(log), command, &outcome)
    {
        eprintln!("error: writing {log}: {error}");
    }
    if let Err(reason) = outcome {
        eprintln!("error: {reason}");
        std::process::exit(1);
    }
}
