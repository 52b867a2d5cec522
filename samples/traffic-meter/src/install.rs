//! What the `traffic-meter` command does with the Winsock catalog, over any
//! [`CatalogWriter`]: the system's on Windows (`winprov_wsp::abi::System`), a simulated one in
//! the tests (`winprov_wsp::testing::catalog::Simulated`).

#![forbid(unsafe_code)]

use crate::identity::{LAYER_NAME, PROVIDER_ID};
use crate::meter::TrafficMeter;
use std::fmt::Write as _;
use winprov_wsp::GUID;
use winprov_wsp::abi::{CatalogWriter, WscError};
use winprov_wsp::install::{
    self, Handles, InstallError, InstalledLayer, LayerInstall, LspCategories, Over, UninstallError,
    Uninstalled, entry_name,
};
use winprov_wsp::layer::Handles as _;

/// The catalog entries `install` asks for: the layer's hidden entry (non-IFS, as
/// [`TrafficMeter`]'s `Handles` type says) with the DLL at `path`, and chains over TCP on IPv4
/// and IPv6; `LSP_INSPECTOR` (it only looks at the traffic); in the native catalog only (the
/// sample ships a 64-bit DLL: a 32-bit process given the layer would fail its TCP sockets).
pub fn layer_install(path: &str) -> LayerInstall {
    let handles = if <<TrafficMeter as winprov_wsp::Layer>::Handles>::IFS {
        Handles::Ifs
    } else {
        Handles::NonIfs
    };
    LayerInstall::new(PROVIDER_ID, LAYER_NAME, path)
        .handles(handles)
        .over(Over::tcp())
        .categories(LspCategories::INSPECTOR)
        .native_only()
}

/// What [`install()`] did.
#[derive(Debug, PartialEq)]
pub enum InstallOutcome {
    /// The layer was installed: these entries, per catalog.
    Installed(Vec<InstalledLayer>),
    /// It was installed already (a repair, or `install` run twice): nothing changed.
    AlreadyInstalled(Vec<InstalledLayer>),
}

/// Installs the layer with its DLL at `path`, unless some catalog has it already.
pub fn install<C: CatalogWriter + ?Sized>(
    catalog: &C,
    path: &str,
) -> Result<InstallOutcome, InstallError> {
    if let Ok(found) = install::find(catalog, &PROVIDER_ID)
        && !found.is_empty()
    {
        return Ok(InstallOutcome::AlreadyInstalled(found));
    }
    install::install(catalog, &layer_install(path))
        .map(|installed| InstallOutcome::Installed(installed.layers))
}

/// Removes the layer from every catalog (succeeds when it is not installed).
pub fn uninstall<C: CatalogWriter + ?Sized>(catalog: &C) -> Result<Uninstalled, UninstallError> {
    install::uninstall(catalog, &PROVIDER_ID)
}

/// The layer in each catalog that has it.
pub fn find<C: CatalogWriter + ?Sized>(catalog: &C) -> Result<Vec<InstalledLayer>, WscError> {
    install::find(catalog, &PROVIDER_ID)
}

/// A GUID as the registry and `netsh` write it.
pub fn guid_text(guid: &GUID) -> String {
    format!("{{{guid:?}}}")
}

/// What `traffic-meter list` prints: every layer of every catalog with its chains, this one
/// marked.
pub fn describe(layers: &[InstalledLayer]) -> String {
    let mut out = String::new();
    if layers.is_empty() {
        out.push_str("no layered provider is installed\n");
    }
    for layer in layers {
        let mark = if layer.provider() == PROVIDER_ID {
            " (this layer)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{}: {} {}{mark}: catalog id {}, {} handles",
            layer.view,
            layer.name(),
            guid_text(&layer.provider()),
            layer.catalog_id(),
            if layer.ifs() { "IFS" } else { "non-IFS" },
        );
        for chain in &layer.chains {
            let len = usize::try_from(chain.ProtocolChain.ChainLen).unwrap_or(0);
            let entries = chain.ProtocolChain.ChainEntries.get(..len).unwrap_or(&[]);
            let _ = writeln!(
                out,
                "  chain {}: {} {entries:?}",
                chain.dwCatalogEntryId,
                entry_name(chain),
            );
        }
    }
    out
}
