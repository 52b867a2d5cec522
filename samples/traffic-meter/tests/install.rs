//! The `install`, `uninstall` and `list` commands' logic on the simulated catalogs of 64-bit
//! Windows (`testing::catalog::Simulated`: the native and the 32-bit catalog, Microsoft's
//! TCP/IP base entries in each).
#![forbid(unsafe_code)]

use traffic_meter::identity::{DEFAULT_DLL_PATH, LAYER_NAME, PROVIDER_ID};
use traffic_meter::install::{self, InstallOutcome, describe, guid_text};
use winprov_wsp::abi::{ServiceFlags, View};
use winprov_wsp::install::{LspCategories, Uninstalled, entry_name};
use winprov_wsp::testing::catalog::Simulated;

#[test]
fn install_then_list_then_uninstall() {
    let catalog = Simulated::msafd();
    let before = [catalog.entries(View::Native), catalog.entries(View::Wow64)];
    assert_eq!(install::find(&catalog).unwrap(), []);

    let InstallOutcome::Installed(layers) = install::install(&catalog, DEFAULT_DLL_PATH).unwrap()
    else {
        panic!("installed");
    };
    assert_eq!(install::find(&catalog).unwrap(), layers);
    assert_eq!(
        layers.iter().map(|l| l.view).collect::<Vec<_>>(),
        [View::Native],
        "a 64-bit DLL only: the 32-bit catalog is left as it was"
    );
    assert_eq!(catalog.entries(View::Wow64), before[1]);
    for layer in &layers {
        assert_eq!(layer.provider(), PROVIDER_ID);
        assert_eq!(layer.name(), LAYER_NAME);
        assert!(!layer.ifs(), "the layer's Handles type is NonIfs");
        let names: Vec<String> = layer.chains.iter().map(entry_name).collect();
        assert_eq!(
            names,
            [
                format!("{LAYER_NAME} over [MSAFD Tcpip [TCP/IP]]"),
                format!("{LAYER_NAME} over [MSAFD Tcpip [TCP/IPv6]]"),
            ]
        );
        assert!(
            layer
                .chains
                .iter()
                .all(|c| !ServiceFlags::from_bits_retain(c.dwServiceFlags1)
                    .contains(ServiceFlags::IFS_HANDLES)),
            "R-WSP-19: no chain of a non-IFS layer declares IFS handles"
        );
        assert_eq!(
            catalog.categories(layer.view, &PROVIDER_ID),
            Some(LspCategories::INSPECTOR.bits())
        );
        assert_eq!(
            catalog.path(layer.view, &PROVIDER_ID).as_deref(),
            Some(DEFAULT_DLL_PATH)
        );
    }

    let listed = describe(&winprov_wsp::install::list(&catalog).unwrap());
    assert!(listed.contains(&guid_text(&PROVIDER_ID)), "{listed}");
    assert!(listed.contains("(this layer)"), "{listed}");
    assert!(listed.contains("non-IFS handles"), "{listed}");
    assert_eq!(
        listed.matches("  chain ").count(),
        2,
        "two chains in the native catalog: {listed}"
    );

    // Run again (a repair): nothing changes.
    let entries = catalog.entries(View::Native);
    assert_eq!(
        install::install(&catalog, DEFAULT_DLL_PATH).unwrap(),
        InstallOutcome::AlreadyInstalled(layers.clone())
    );
    assert_eq!(catalog.entries(View::Native), entries);

    let Uninstalled::Removed { entries } = install::uninstall(&catalog).unwrap() else {
        panic!("removed");
    };
    assert_eq!(entries.len(), 3, "a hidden entry and two chains");
    assert_eq!(install::find(&catalog).unwrap(), []);
    assert_eq!(
        [catalog.entries(View::Native), catalog.entries(View::Wow64)],
        before,
        "the catalogs as they were"
    );
    assert_eq!(describe(&[]), "no layered provider is installed\n");
}

#[test]
fn uninstall_when_not_installed_succeeds() {
    let catalog = Simulated::msafd();
    assert_eq!(
        install::uninstall(&catalog).unwrap(),
        Uninstalled::NotInstalled
    );
}
